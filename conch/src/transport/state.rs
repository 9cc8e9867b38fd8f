//! The handshake states, each named for what it waits for, and the transitions between them.
//!
//! The negotiated algorithms, the exchange inputs, the ephemeral key and the derived keys
//! exist only in the states that have them. The strict key exchange rules (OpenSSH `PROTOCOL`
//! §1.9) are checked in the transitions: the peer's KEXINIT must be its first packet, nothing
//! but key exchange messages may arrive until its NEWKEYS, and each NEWKEYS resets the
//! sequence number of its direction.

use std::fmt;

use super::algorithms::{self, KeyMaterial, Protection, CLIENT_TO_SERVER, SERVER_TO_CLIENT};
use super::kex::{
    self, ExchangeInputs, Negotiated, EXT_INFO_C, EXT_INFO_S, KEX_STRICT_C, KEX_STRICT_S,
};
use super::version::{VersionRead, VersionReader};
use super::{Event, Role, Session, Side, Transport};
use crate::crypto::algorithms::Category;
use crate::crypto::{
    CryptoError, HashAlgorithm, KexClient, PacketOpener, PacketSealer, SharedSecret,
};
use crate::error::{Error, PeerIncompatible, PeerMisbehaved};
use crate::keys::{KeyError, PublicKey, SignatureAlgorithm};
use crate::wire::msgs::transport::{
    ExtInfo, Extension, KexEcdhInit, KexEcdhReply, KexInit, NewKeys,
};
use crate::wire::msgs::Message;
use crate::wire::{MessageType, NameList};

/// Where the connection is in its handshake (or rekey).
pub(super) enum State {
    /// Our line and KEXINIT are sent; waiting for the peer's identification line.
    ExpectVersion(ExpectVersion),
    /// Our KEXINIT is sent; waiting for the peer's.
    ExpectKexInit(ExpectKexInit),
    /// Client: our key exchange value is sent; waiting for the server's reply.
    ExpectKexReply(Box<ExpectKexReply>),
    /// Server: waiting for the client's key exchange value.
    ExpectKexDhInit(Box<ExpectKexDhInit>),
    /// Client, initial exchange: the host key proved itself; waiting for the application to
    /// accept it.
    ExpectHostKeyDecision(Box<ExpectHostKeyDecision>),
    /// Our NEWKEYS is sent and our new keys are in use; waiting for the peer's NEWKEYS.
    ExpectNewKeys(Box<ExpectNewKeys>),
    /// Keys in place, no key exchange running.
    Established,
    /// The connection is over.
    Closed,
    /// A placeholder while a transition consumes the old state; never seen outside one.
    Transition,
}

impl State {
    /// Whether upper-layer payloads can go out now under current keys: not before the first
    /// NEWKEYS we send, and not between a KEXINIT we sent and our next NEWKEYS.
    pub(super) fn outgoing_keys_ready(&self) -> bool {
        matches!(self, Self::Established | Self::ExpectNewKeys(_))
    }

    fn name(&self) -> &'static str {
        match self {
            Self::ExpectVersion(_) => "ExpectVersion",
            Self::ExpectKexInit(_) => "ExpectKexInit",
            Self::ExpectKexReply(_) => "ExpectKexReply",
            Self::ExpectKexDhInit(_) => "ExpectKexDhInit",
            Self::ExpectHostKeyDecision(_) => "ExpectHostKeyDecision",
            Self::ExpectNewKeys(_) => "ExpectNewKeys",
            Self::Established => "Established",
            Self::Closed => "Closed",
            Self::Transition => "Transition",
        }
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// See [`State::ExpectVersion`].
pub(super) struct ExpectVersion {
    our_kexinit: Vec<u8>,
    lines: VersionReader,
}

impl ExpectVersion {
    pub(super) fn new(our_kexinit: Vec<u8>) -> Self {
        Self { our_kexinit, lines: VersionReader::default() }
    }
}

/// See [`State::ExpectKexInit`].
pub(super) struct ExpectKexInit {
    /// Our KEXINIT payload, for the exchange hash.
    our_kexinit: Vec<u8>,
}

/// What every state after both KEXINITs knows.
struct KexContext {
    negotiated: Negotiated,
    inputs: ExchangeInputs,
    /// Whether this is the connection's first key exchange.
    initial: bool,
    /// Whether strict KEX is in force.
    strict: bool,
    /// The peer guessed wrong with `first_kex_packet_follows`: drop its next key exchange
    /// method message.
    skip_guess: bool,
}

impl KexContext {
    /// Whether non-KEX messages from the peer are a violation now.
    fn strict_initial(&self) -> bool {
        self.strict && self.initial
    }
}

/// See [`State::ExpectKexReply`].
pub(super) struct ExpectKexReply {
    ctx: KexContext,
    ephemeral: Box<dyn KexClient>,
}

/// See [`State::ExpectKexDhInit`].
pub(super) struct ExpectKexDhInit {
    ctx: KexContext,
}

/// See [`State::ExpectHostKeyDecision`].
pub(super) struct ExpectHostKeyDecision {
    ctx: KexContext,
    keys: DirectionKeys,
    session_id: Vec<u8>,
    host_key: PublicKey,
}

/// See [`State::ExpectNewKeys`].
pub(super) struct ExpectNewKeys {
    ctx: KexContext,
    opener: Box<dyn PacketOpener>,
    session_id: Vec<u8>,
    host_key: Option<PublicKey>,
}

/// The packet protection built from one key exchange's keys.
struct DirectionKeys {
    sealer: Box<dyn PacketSealer>,
    opener: Box<dyn PacketOpener>,
}

impl Transport {
    /// Reads the peer's identification line. `Ok(false)` when more bytes are needed.
    pub(super) fn read_version(&mut self) -> Result<bool, Error> {
        let State::ExpectVersion(st) = &mut self.state else {
            return Ok(false);
        };
        match st.lines.read(self.reader.unread(), self.side == Side::Client)? {
            VersionRead::Incomplete { consumed } => {
                self.reader.consume(consumed);
                Ok(false)
            }
            VersionRead::Complete { consumed, line } => {
                self.reader.consume(consumed);
                self.peer_line = Some(line);
                let our_kexinit = std::mem::take(&mut st.our_kexinit);
                self.state = State::ExpectKexInit(ExpectKexInit { our_kexinit });
                Ok(true)
            }
        }
    }

    /// Handles a transport message in `state`, returning the next state.
    pub(super) fn handle_in_state(
        &mut self,
        state: State,
        seq: u32,
        msg_type: MessageType,
        payload: &[u8],
    ) -> Result<State, Error> {
        match state {
            State::Established => {
                if msg_type == MessageType::KEXINIT {
                    let ours = self.send_kexinit()?;
                    return self.on_kexinit(ours, payload, seq);
                }
                self.handle_general(seq, msg_type, payload, false)?;
                Ok(State::Established)
            }
            State::ExpectKexInit(st) => {
                if msg_type == MessageType::KEXINIT {
                    return self.on_kexinit(st.our_kexinit, payload, seq);
                }
                self.handle_general(seq, msg_type, payload, true)?;
                Ok(State::ExpectKexInit(st))
            }
            State::ExpectKexReply(mut st) => {
                if self.screen_kex_message(&mut st.ctx, seq, msg_type, payload)? {
                    return Ok(State::ExpectKexReply(st));
                }
                if msg_type != MessageType::KEX_REPLY {
                    return Err(unexpected(&st.ctx, msg_type));
                }
                self.on_kex_reply(*st, payload)
            }
            State::ExpectKexDhInit(mut st) => {
                if self.screen_kex_message(&mut st.ctx, seq, msg_type, payload)? {
                    return Ok(State::ExpectKexDhInit(st));
                }
                if msg_type != MessageType::KEX_INIT {
                    return Err(unexpected(&st.ctx, msg_type));
                }
                self.on_kex_init(*st, payload)
            }
            State::ExpectNewKeys(mut st) => {
                if self.screen_kex_message(&mut st.ctx, seq, msg_type, payload)? {
                    return Ok(State::ExpectNewKeys(st));
                }
                if msg_type != MessageType::NEWKEYS {
                    return Err(unexpected(&st.ctx, msg_type));
                }
                self.on_newkeys(*st, payload)
            }
            State::ExpectVersion(_)
            | State::ExpectHostKeyDecision(_)
            | State::Closed
            | State::Transition => Err(PeerMisbehaved::UnexpectedMessage(msg_type).into()),
        }
    }

    /// The rules shared by the states after both KEXINITs. Returns `Ok(true)` when the message
    /// was handled here (a general message, or a wrong guess dropped), `Ok(false)` when the
    /// state should look at it.
    fn screen_kex_message(
        &mut self,
        ctx: &mut KexContext,
        seq: u32,
        msg_type: MessageType,
        payload: &[u8],
    ) -> Result<bool, Error> {
        if msg_type == MessageType::KEXINIT {
            return Err(PeerMisbehaved::KexInitDuringKeyExchange.into());
        }
        if (30..=49).contains(&msg_type.0) && ctx.skip_guess {
            ctx.skip_guess = false;
            return Ok(true);
        }
        if msg_type.is_key_exchange() {
            return Ok(false);
        }
        if ctx.strict_initial() {
            return Err(PeerMisbehaved::UnexpectedMessageDuringStrictKex.into());
        }
        self.handle_general(seq, msg_type, payload, true)?;
        Ok(true)
    }

    /// Sends our KEXINIT and returns its payload.
    pub(super) fn send_kexinit(&mut self) -> Result<Vec<u8>, Error> {
        let mut cookie = [0; 16];
        self.rng.fill(&mut cookie)?;
        let role = self.config.clone();
        let algs = self.algorithms().clone();
        let markers: [&str; 2] = match self.side {
            Side::Client => [EXT_INFO_C, KEX_STRICT_C],
            Side::Server => [EXT_INFO_S, KEX_STRICT_S],
        };
        let kex_names = join(algs.list(Category::Kex).iter().copied().chain(markers));
        let host_key_names = match &role {
            Role::Client(_) => {
                // On a rekey, only algorithms of the key accepted at first: the server must
                // not switch keys.
                let initial = self.session.as_ref().and_then(|s| s.host_key.as_ref());
                join(
                    algs.list(Category::HostKey)
                        .iter()
                        .filter_map(|n| SignatureAlgorithm::from_name(n))
                        .filter(|a| initial.is_none_or(|k| k.supports(*a)))
                        .map(SignatureAlgorithm::name),
                )
            }
            Role::Server(config) => {
                join(config.offered_host_key_algorithms().map(SignatureAlgorithm::name))
            }
        };
        let ciphers = join(algs.list(Category::Cipher).iter().copied());
        let macs = join(algs.list(Category::Mac).iter().copied());
        let compression = join(algs.list(Category::Compression).iter().copied());
        fn list(s: &str) -> Result<NameList<'_>, Error> {
            NameList::parse(s.as_bytes()).map_err(Error::from)
        }
        let msg = KexInit {
            cookie,
            kex: list(&kex_names)?,
            host_key: list(&host_key_names)?,
            cipher_c2s: list(&ciphers)?,
            cipher_s2c: list(&ciphers)?,
            mac_c2s: list(&macs)?,
            mac_s2c: list(&macs)?,
            compression_c2s: list(&compression)?,
            compression_s2c: list(&compression)?,
            language_c2s: NameList::default(),
            language_s2c: NameList::default(),
            first_kex_packet_follows: false,
            reserved: 0,
        };
        let mut payload = Vec::new();
        msg.encode(&mut payload);
        self.writer.write_packet(&payload, &mut *self.rng)?;
        Ok(payload)
    }

    /// Starts a rekey by sending our KEXINIT.
    pub(super) fn start_rekey(&mut self) -> Result<(), Error> {
        let our_kexinit = self.send_kexinit()?;
        self.state = State::ExpectKexInit(ExpectKexInit { our_kexinit });
        Ok(())
    }

    /// Both KEXINITs are known: negotiate, and (client) send our key exchange value.
    fn on_kexinit(&mut self, ours: Vec<u8>, theirs: &[u8], seq: u32) -> Result<State, Error> {
        let peer = KexInit::decode(theirs)?;
        let own = KexInit::decode(&ours)?;
        let initial = self.session.is_none();
        let strict = match &self.session {
            Some(session) => session.strict,
            None => peer.kex.contains(match self.side {
                Side::Client => KEX_STRICT_S,
                Side::Server => KEX_STRICT_C,
            }),
        };
        if initial && strict {
            if seq != 0 {
                // The peer's KEXINIT was not its first packet (CVE-2023-48795).
                return Err(PeerMisbehaved::UnexpectedMessageDuringStrictKex.into());
            }
            self.reader.seq.forbid_wrap(true);
            self.writer.seq.forbid_wrap(true);
        }
        if initial && self.side == Side::Server {
            self.peer_extensions.wants_ext_info = peer.kex.contains(EXT_INFO_C);
        }
        let (client, server) = match self.side {
            Side::Client => (&own, &peer),
            Side::Server => (&peer, &own),
        };
        let negotiated = kex::negotiate(client, server)?;
        let skip_guess = peer.first_kex_packet_follows && !kex::guess_was_right(&peer, &negotiated);
        let peer_line = self.peer_line.clone().unwrap_or_default();
        let inputs = match self.side {
            Side::Client => ExchangeInputs {
                v_c: self.our_line.clone(),
                v_s: peer_line,
                i_c: ours,
                i_s: theirs.to_vec(),
            },
            Side::Server => ExchangeInputs {
                v_c: peer_line,
                v_s: self.our_line.clone(),
                i_c: theirs.to_vec(),
                i_s: ours,
            },
        };
        let ctx = KexContext { negotiated, inputs, initial, strict, skip_guess };
        match self.side {
            Side::Server => Ok(State::ExpectKexDhInit(Box::new(ExpectKexDhInit { ctx }))),
            Side::Client => {
                let method = kex_method(&ctx.negotiated)?;
                let ephemeral = method.start_client(&mut *self.rng)?;
                self.send_message(&KexEcdhInit { public: ephemeral.public() })?;
                Ok(State::ExpectKexReply(Box::new(ExpectKexReply { ctx, ephemeral })))
            }
        }
    }

    /// Server: the client's value arrived; reply, sign, and switch our outgoing keys.
    fn on_kex_init(&mut self, st: ExpectKexDhInit, payload: &[u8]) -> Result<State, Error> {
        let ctx = st.ctx;
        let msg = KexEcdhInit::decode(payload)?;
        let method = kex_method(&ctx.negotiated)?;
        let reply = method.respond(msg.public, &mut *self.rng).map_err(kex_error)?;
        let Role::Server(config) = &self.config else {
            return Err(PeerMisbehaved::UnexpectedMessage(MessageType::KEX_INIT).into());
        };
        let signer = config
            .host_key_for(ctx.negotiated.host_key)
            .ok_or(PeerIncompatible::NoCommonHostKey)?
            .clone();
        let host_key = signer.public_key().to_blob();
        let hash = method.hash();
        let h = ctx.inputs.exchange_hash(hash, &host_key, msg.public, &reply.public, &reply.secret);
        let session_id =
            self.session.as_ref().map_or_else(|| h.as_ref().to_vec(), |s| s.id.clone());
        let signature = signer.sign(ctx.negotiated.host_key, h.as_ref())?;
        self.send_message(&KexEcdhReply {
            host_key: &host_key,
            public: &reply.public,
            signature: &signature,
        })?;
        let keys =
            self.derive_keys(&ctx.negotiated, hash, &reply.secret, h.as_ref(), &session_id)?;
        self.send_newkeys(&ctx, keys.sealer)?;
        Ok(State::ExpectNewKeys(Box::new(ExpectNewKeys {
            ctx,
            opener: keys.opener,
            session_id,
            host_key: Some(signer.public_key().clone()),
        })))
    }

    /// Client: the server's reply arrived; check its host key signature, then ask the
    /// application about the key (initial exchange) or require the same key (rekey).
    fn on_kex_reply(&mut self, st: ExpectKexReply, payload: &[u8]) -> Result<State, Error> {
        let ExpectKexReply { ctx, ephemeral } = st;
        let msg = KexEcdhReply::decode(payload)?;
        let host_key = PublicKey::from_blob(msg.host_key).map_err(key_error)?;
        if !host_key.supports(ctx.negotiated.host_key) {
            return Err(PeerMisbehaved::HostKeyAlgorithmMismatch.into());
        }
        let method = kex_method(&ctx.negotiated)?;
        let client_public = ephemeral.public().to_vec();
        let secret = ephemeral.finish(msg.public).map_err(kex_error)?;
        let hash = method.hash();
        let h = ctx.inputs.exchange_hash(hash, msg.host_key, &client_public, msg.public, &secret);
        host_key
            .verify(ctx.negotiated.host_key, h.as_ref(), msg.signature)
            .map_err(|_| PeerMisbehaved::BadHostKeySignature)?;
        let session_id =
            self.session.as_ref().map_or_else(|| h.as_ref().to_vec(), |s| s.id.clone());
        let keys = self.derive_keys(&ctx.negotiated, hash, &secret, h.as_ref(), &session_id)?;
        let decision = ExpectHostKeyDecision { ctx, keys, session_id, host_key };
        if decision.ctx.initial {
            self.events.push_back(Event::HostKeyReceived {
                key: decision.host_key.clone(),
                algorithm: decision.ctx.negotiated.host_key,
            });
            return Ok(State::ExpectHostKeyDecision(Box::new(decision)));
        }
        if self.session.as_ref().and_then(|s| s.host_key.as_ref()) != Some(&decision.host_key) {
            return Err(PeerMisbehaved::HostKeyChangedDuringRekey.into());
        }
        self.finish_client_kex(decision)
    }

    /// Client: the host key is accepted; switch our outgoing keys.
    pub(super) fn finish_client_kex(&mut self, st: ExpectHostKeyDecision) -> Result<State, Error> {
        self.send_newkeys(&st.ctx, st.keys.sealer)?;
        Ok(State::ExpectNewKeys(Box::new(ExpectNewKeys {
            ctx: st.ctx,
            opener: st.keys.opener,
            session_id: st.session_id,
            host_key: Some(st.host_key),
        })))
    }

    /// Sends NEWKEYS and puts the new outgoing keys and compression in place; then EXT_INFO
    /// (server, initial exchange, if the client asked) and the payloads queued meanwhile.
    fn send_newkeys(
        &mut self,
        ctx: &KexContext,
        sealer: Box<dyn PacketSealer>,
    ) -> Result<(), Error> {
        self.send_message(&NewKeys)?;
        self.writer.set_sealer(sealer);
        if ctx.strict {
            self.writer.seq.reset();
        }
        self.writer.seq.forbid_wrap(false);
        let (cipher, method) = match self.side {
            Side::Client => (&ctx.negotiated.cipher_c2s, &ctx.negotiated.compression_c2s),
            Side::Server => (&ctx.negotiated.cipher_s2c, &ctx.negotiated.compression_s2c),
        };
        self.rekey.max_bytes_out = self.rekey_bytes(cipher);
        self.compression.method_out.clone_from(method);
        let compressor = if compression_active(method, self.compression.authenticated_out) {
            algorithms::compressor(method)?
        } else {
            None
        };
        self.writer.set_compressor(compressor);
        if ctx.initial && self.side == Side::Server && self.peer_extensions.wants_ext_info {
            self.send_ext_info()?;
        }
        self.flush_queue()
    }

    /// Server: `SSH_MSG_EXT_INFO` with the configured extensions (`server-sig-algs`, ...) and
    /// `ping@openssh.com`, as OpenSSH announces it.
    fn send_ext_info(&mut self) -> Result<(), Error> {
        let Role::Server(config) = self.config.clone() else {
            return Ok(());
        };
        let mut extensions: Vec<Extension<'_>> =
            config.ext_info.iter().map(|(name, value)| Extension { name, value }).collect();
        extensions.push(Extension { name: "ping@openssh.com", value: b"0" });
        self.send_message(&ExtInfo { extensions })
    }

    /// The peer's NEWKEYS: its new keys protect the next packet.
    fn on_newkeys(&mut self, st: ExpectNewKeys, payload: &[u8]) -> Result<State, Error> {
        NewKeys::decode(payload)?;
        let ExpectNewKeys { ctx, opener, session_id, host_key } = st;
        self.reader.set_opener(opener);
        if ctx.strict {
            self.reader.seq.reset();
        }
        self.reader.seq.forbid_wrap(false);
        let (cipher, method) = match self.side {
            Side::Client => (&ctx.negotiated.cipher_s2c, &ctx.negotiated.compression_s2c),
            Side::Server => (&ctx.negotiated.cipher_c2s, &ctx.negotiated.compression_c2s),
        };
        self.rekey.max_bytes_in = self.rekey_bytes(cipher);
        self.compression.method_in.clone_from(method);
        let decompressor = if compression_active(method, self.compression.authenticated_in) {
            algorithms::decompressor(method)?
        } else {
            None
        };
        self.reader.set_decompressor(decompressor);
        match &mut self.session {
            Some(session) => session.negotiated = ctx.negotiated,
            None => {
                self.session = Some(Session {
                    id: session_id,
                    strict: ctx.strict,
                    negotiated: ctx.negotiated,
                    host_key,
                });
            }
        }
        let interval = self.rekey_limits().time;
        self.rekey.next_at = self.now.zip(interval).map(|(now, d)| now + d);
        self.events.push_back(Event::KexCompleted { initial: ctx.initial });
        Ok(State::Established)
    }

    /// Builds both directions' packet protection from the exchange's keys.
    fn derive_keys(
        &self,
        negotiated: &Negotiated,
        hash: HashAlgorithm,
        secret: &SharedSecret,
        exchange_hash: &[u8],
        session_id: &[u8],
    ) -> Result<DirectionKeys, Error> {
        let material = KeyMaterial { hash, secret, exchange_hash, session_id };
        let c2s = Protection { cipher: &negotiated.cipher_c2s, mac: negotiated.mac_c2s.as_deref() };
        let s2c = Protection { cipher: &negotiated.cipher_s2c, mac: negotiated.mac_s2c.as_deref() };
        let keys = match self.side {
            Side::Client => DirectionKeys {
                sealer: algorithms::sealer(c2s, &material, CLIENT_TO_SERVER)?,
                opener: algorithms::opener(s2c, &material, SERVER_TO_CLIENT)?,
            },
            Side::Server => DirectionKeys {
                sealer: algorithms::sealer(s2c, &material, SERVER_TO_CLIENT)?,
                opener: algorithms::opener(c2s, &material, CLIENT_TO_SERVER)?,
            },
        };
        Ok(keys)
    }

    /// Bytes one direction may carry under one key: OpenSSH's rule for the cipher's block
    /// size, lowered by the configured limit.
    pub(super) fn rekey_bytes(&self, cipher: &str) -> u64 {
        let block = u64::try_from(algorithms::cipher_block_size(cipher)).unwrap_or(8).max(1);
        let blocks = if block >= 16 { 1u64 << (block * 2).min(62) } else { (1u64 << 30) / block };
        let by_cipher = blocks.saturating_mul(block);
        self.rekey_limits().bytes.map_or(by_cipher, |limit| limit.min(by_cipher))
    }
}

/// Whether compression `method` compresses now: `zlib` always, `zlib@openssh.com` once user
/// authentication has succeeded.
fn compression_active(method: &str, authenticated: bool) -> bool {
    method == "zlib" || (algorithms::is_delayed_compression(method) && authenticated)
}

/// The negotiated key exchange method's implementation.
fn kex_method(negotiated: &Negotiated) -> Result<&'static dyn crate::crypto::KexAlgorithm, Error> {
    algorithms::kex(&negotiated.kex).ok_or_else(|| PeerIncompatible::NoCommonKex.into())
}

/// The error for a message the state does not expect.
fn unexpected(ctx: &KexContext, msg_type: MessageType) -> Error {
    if ctx.strict_initial() {
        PeerMisbehaved::UnexpectedMessageDuringStrictKex.into()
    } else {
        PeerMisbehaved::UnexpectedMessage(msg_type).into()
    }
}

/// A key exchange failure: a bad peer value is the peer's fault, anything else ours.
fn kex_error(e: CryptoError) -> Error {
    match e {
        CryptoError::InvalidPublicValue => PeerMisbehaved::InvalidKexPublicValue.into(),
        other => other.into(),
    }
}

/// A host key blob that does not parse: malformed bytes, or a key of another kind.
fn key_error(e: KeyError) -> Error {
    match e {
        KeyError::Malformed(m) => m.into(),
        _ => PeerMisbehaved::HostKeyAlgorithmMismatch.into(),
    }
}

/// Names joined with commas.
fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
    }
    out
}
