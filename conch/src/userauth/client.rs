//! The client side: tries methods in the configured order as OpenSSH's `sshconnect2.c` does,
//! and asks the application for what only it has (signatures, passwords, answers).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use super::msgs::{
    MethodData, PublicKeyData, UserauthBanner, UserauthFailure, UserauthInfoRequest,
    UserauthInfoResponse, UserauthPasswdChangereq, UserauthPkOk, UserauthRequest, UserauthSuccess,
};
use super::{
    ends_connection, signed_data, Disposition, InfoRequest, Method, Outbox, Password, Prompt,
    EXTENSION_PUBLICKEY_HOSTBOUND, EXTENSION_SERVER_SIG_ALGS, SERVICE_CONNECTION,
};
use crate::error::{Error, LocalMisuse, PeerMisbehaved};
use crate::keys::{cert, Certificate, KeyType, PublicKey, SignatureAlgorithm};
use crate::wire::{InvalidMessage, MessageType, NameList, Reader};

/// How the client authenticates, shared by all connections (wrap it in an `Arc`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// OpenSSH's `PreferredAuthentications`, tried after the initial `none`: default
    /// `publickey`, `keyboard-interactive`, `password`.
    pub preferred_methods: Vec<Method>,
    /// OpenSSH's `NumberOfPasswordPrompts` (default 3): how many passwords, and how many
    /// keyboard-interactive conversations, to try.
    pub number_of_password_prompts: u32,
    /// OpenSSH's `KbdInteractiveDevices`: the submethods asked for (default empty).
    pub keyboard_interactive_submethods: String,
    /// OpenSSH's `PubkeyAcceptedAlgorithms`, in preference order: for RSA keys, the first
    /// `rsa-sha2-*` the server lists in `server-sig-algs` is used. Default: Ed25519, ECDSA,
    /// `rsa-sha2-512`, `rsa-sha2-256` (SHA-1 `ssh-rsa` off, as in OpenSSH since 8.8).
    pub publickey_algorithms: Vec<SignatureAlgorithm>,
    /// The algorithms certificates are offered with (the `*-cert-v01@openssh.com` names of
    /// `PubkeyAcceptedAlgorithms`, by signature algorithm). `None` (the default): the same as
    /// [`publickey_algorithms`](Self::publickey_algorithms).
    pub publickey_cert_algorithms: Option<Vec<SignatureAlgorithm>>,
}

impl ClientConfig {
    /// OpenSSH's defaults.
    pub fn new() -> Self {
        Self {
            preferred_methods: vec![
                Method::PublicKey,
                Method::KeyboardInteractive,
                Method::Password,
            ],
            number_of_password_prompts: 3,
            keyboard_interactive_submethods: String::new(),
            publickey_algorithms: vec![
                SignatureAlgorithm::Ed25519,
                SignatureAlgorithm::EcdsaP256,
                SignatureAlgorithm::EcdsaP384,
                SignatureAlgorithm::EcdsaP521,
                SignatureAlgorithm::RsaSha512,
                SignatureAlgorithm::RsaSha256,
            ],
            publickey_cert_algorithms: None,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// What the client tells the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server's banner, to show before anything else; control characters other than
    /// newline and tab are removed.
    Banner {
        /// The text.
        message: String,
    },
    /// The server would accept this key: sign `data` with it (from a key file or the agent)
    /// and call [`Client::signature_ready`].
    SignatureRequested {
        /// The key.
        key: PublicKey,
        /// The algorithm to sign with.
        algorithm: SignatureAlgorithm,
        /// The data to sign (RFC 4252 §7).
        data: Vec<u8>,
    },
    /// Ask the user for a password and call [`Client::password_ready`].
    PasswordRequested {
        /// 1 for the first password, then 2, ... (OpenSSH prints "Permission denied, please
        /// try again." from the second on).
        attempt: u32,
        /// The server's reason when it asks for a new password (answer with
        /// [`PasswordAnswer::Change`]); sanitized as the banner is.
        change_prompt: Option<String>,
    },
    /// Show the name and instruction, ask each prompt, and call
    /// [`Client::info_responses_ready`]; texts are sanitized as the banner is.
    InfoRequested(InfoRequest),
    /// The method succeeded, but the server wants more.
    PartialSuccess {
        /// The method.
        method: Method,
    },
    /// Authenticated: route later payloads to the connection layer.
    Succeeded {
        /// The method of the final step.
        method: Method,
    },
    /// Every method we could try failed: `Permission denied (methods_left).` The caller should
    /// disconnect with `SSH_DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE`.
    Failed {
        /// The methods the server would still accept.
        methods_left: Vec<String>,
    },
}

/// The user's answer to [`ClientEvent::PasswordRequested`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PasswordAnswer {
    /// A password.
    Password(Password),
    /// The old and the new password, answering a change request.
    Change {
        /// The current password.
        old: Password,
        /// The new password.
        new: Password,
    },
}

/// The client's user authentication state machine.
///
/// It sends `none` as soon as it is made, then works through
/// [`ClientConfig::preferred_methods`] as the server's failures allow. Inputs:
/// [`handle_payload`](Self::handle_payload) for each payload of message number 50 and above
/// until [`ClientEvent::Succeeded`], [`handle_ext_info`](Self::handle_ext_info) for the
/// server's `SSH_MSG_EXT_INFO` extensions, and the answers
/// [`signature_ready`](Self::signature_ready), [`password_ready`](Self::password_ready) and
/// [`info_responses_ready`](Self::info_responses_ready). Outputs:
/// [`poll_payload`](Self::poll_payload) and [`poll_event`](Self::poll_event). There are no
/// timers.
pub struct Client {
    config: Arc<ClientConfig>,
    user: String,
    session_id: Vec<u8>,
    host_key_blob: Vec<u8>,
    server_sig_algs: Option<Vec<String>>,
    hostbound: bool,
    identities: Vec<Identity>,
    phase: Phase,
    methods_left: Option<Vec<String>>,
    cursor: usize,
    current: Option<Method>,
    disabled: Vec<Method>,
    password_attempts: u32,
    kbdint_attempts: u32,
    info_request_seen: bool,
    outgoing: Outbox,
    events: VecDeque<ClientEvent>,
}

impl Client {
    /// A client logging in as `user`, after key exchange: `session_id` is the first exchange
    /// hash, `host_key_blob` the server's host key from the first key exchange. The `none`
    /// request is ready to send at once.
    pub fn new(
        config: Arc<ClientConfig>,
        user: &str,
        session_id: &[u8],
        host_key_blob: &[u8],
    ) -> Self {
        let mut client = Self {
            config,
            user: user.to_owned(),
            session_id: session_id.to_vec(),
            host_key_blob: host_key_blob.to_vec(),
            server_sig_algs: None,
            hostbound: false,
            identities: Vec::new(),
            phase: Phase::AwaitReply(Sent::None),
            methods_left: None,
            cursor: 0,
            current: None,
            disabled: Vec::new(),
            password_attempts: 0,
            kbdint_attempts: 0,
            info_request_seen: false,
            outgoing: Outbox::default(),
            events: VecDeque::new(),
        };
        client.send_request(MethodData::None);
        client
    }

    /// Adds a public key to offer, after those added before (a key file's, or the agent's).
    /// Keys added while `publickey` is still being tried are offered too.
    pub fn add_identity(&mut self, key: PublicKey) {
        let blob = key.to_blob();
        if self.identities.iter().all(|i| i.blob != blob) {
            self.identities.push(Identity { key, blob, certificate: false, tried: false });
        }
    }

    /// Adds an OpenSSH certificate to offer (as `*-cert-v01@openssh.com`), after those added
    /// before; the signature is asked of its certified key, as for
    /// [`add_identity`](Self::add_identity).
    pub fn add_certificate(&mut self, cert: &Certificate) {
        let blob = cert.to_blob().to_vec();
        if self.identities.iter().all(|i| i.blob != blob) {
            let key = cert.key.clone();
            self.identities.push(Identity { key, blob, certificate: true, tried: false });
        }
    }

    /// The public key algorithm name `identity` is offered under with `algorithm`.
    fn offered_name(&self, identity: usize, algorithm: SignatureAlgorithm) -> &'static str {
        match self.identities.get(identity) {
            Some(i) if i.certificate => cert::cert_algorithm_name(algorithm),
            _ => algorithm.name(),
        }
    }

    /// Takes one extension of the server's `SSH_MSG_EXT_INFO`: `server-sig-algs` picks the
    /// RSA signature algorithm, `publickey-hostbound@openssh.com` (value `0`) turns on
    /// host-bound signatures. Others are ignored.
    ///
    /// # Errors
    ///
    /// An invalid `server-sig-algs` name-list ends the connection.
    pub fn handle_ext_info(&mut self, name: &str, value: &[u8]) -> Result<(), Error> {
        match name {
            EXTENSION_SERVER_SIG_ALGS => match NameList::parse(value) {
                Ok(list) => self.server_sig_algs = Some(list.iter().map(str::to_owned).collect()),
                Err(e) => return self.close_on_error(Err(e.into())),
            },
            EXTENSION_PUBLICKEY_HOSTBOUND => self.hostbound = value == b"0",
            _ => {}
        }
        Ok(())
    }

    /// Takes one payload from the server.
    ///
    /// # Errors
    ///
    /// A peer error ends the connection (see [`Error::disconnect_reason`]): an undecodable
    /// message, a client-to-server message, an answer to a question we did not ask, a `PK_OK`
    /// for another key, a message of 80 or above before success.
    /// [`LocalMisuse::WrongLayer`] for a payload this layer does not own.
    pub fn handle_payload(&mut self, payload: &[u8]) -> Result<Disposition, Error> {
        let result = self.dispatch(payload);
        self.close_on_error(result)
    }

    /// Answers [`ClientEvent::SignatureRequested`] with a signature blob
    /// (`string algorithm || string signature`), or `None` when the key cannot sign (the agent
    /// refused, the passphrase was not given): the next key or method is tried.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::NotExpected`] when no signature was asked for;
    /// [`LocalMisuse::InvalidAnswer`] when the blob is not of the algorithm asked for (the
    /// question stays open).
    pub fn signature_ready(&mut self, signature: Option<Vec<u8>>) -> Result<(), Error> {
        let Phase::AwaitSignature { identity, algorithm, hostbound } = self.phase else {
            return Err(self.not_expected());
        };
        let Some(signature) = signature else {
            self.next_method(false);
            return Ok(());
        };
        let mut r = Reader::new(&signature);
        if r.read_string().ok() != Some(algorithm.name().as_bytes()) {
            return Err(LocalMisuse::InvalidAnswer.into());
        }
        let key_blob = self.identities.get(identity).map(|i| i.blob.clone()).unwrap_or_default();
        let host_key_blob = self.host_key_blob.clone();
        self.send_request(MethodData::PublicKey(PublicKeyData {
            algorithm: self.offered_name(identity, algorithm),
            key_blob: &key_blob,
            host_key_blob: hostbound.then_some(host_key_blob.as_slice()),
            signature: Some(&signature),
        }));
        self.phase = Phase::AwaitReply(Sent::PublicKey);
        Ok(())
    }

    /// Answers [`ClientEvent::PasswordRequested`]; `None` gives up on passwords and tries the
    /// next method.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::NotExpected`] when no password was asked for.
    pub fn password_ready(&mut self, answer: Option<PasswordAnswer>) -> Result<(), Error> {
        if !matches!(self.phase, Phase::AwaitPassword) {
            return Err(self.not_expected());
        }
        let Some(answer) = answer else {
            self.disabled.push(Method::Password);
            self.next_method(false);
            return Ok(());
        };
        let method = match &answer {
            PasswordAnswer::Password(password) => {
                MethodData::Password { password: password.as_bytes(), new_password: None }
            }
            PasswordAnswer::Change { old, new } => MethodData::Password {
                password: old.as_bytes(),
                new_password: Some(new.as_bytes()),
            },
        };
        self.send_request(method);
        self.phase = Phase::AwaitReply(Sent::Password);
        Ok(())
    }

    /// Answers [`ClientEvent::InfoRequested`] with one response per prompt; `None` gives up on
    /// keyboard-interactive and tries the next method.
    ///
    /// # Errors
    ///
    /// [`LocalMisuse::NotExpected`] when nothing was asked; [`LocalMisuse::InvalidAnswer`]
    /// when the number of responses is not the number of prompts (the question stays open).
    pub fn info_responses_ready(&mut self, responses: Option<Vec<Password>>) -> Result<(), Error> {
        let Phase::AwaitInfoResponses { prompts } = self.phase else {
            return Err(self.not_expected());
        };
        let Some(responses) = responses else {
            self.disabled.push(Method::KeyboardInteractive);
            self.next_method(false);
            return Ok(());
        };
        if responses.len() != prompts {
            return Err(LocalMisuse::InvalidAnswer.into());
        }
        let message =
            UserauthInfoResponse { responses: responses.iter().map(Password::as_bytes).collect() };
        self.outgoing.push(|w| message.encode(w));
        self.phase = Phase::AwaitReply(Sent::KeyboardInteractive);
        Ok(())
    }

    /// Appends the next payload to send to `buf`; `false` when there is none.
    pub fn poll_payload(&mut self, buf: &mut Vec<u8>) -> bool {
        self.outgoing.pop_into(buf)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Whether authentication has succeeded.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.phase, Phase::Succeeded)
    }

    /// The methods the server's last failure said could continue.
    pub fn methods_left(&self) -> Option<&[String]> {
        self.methods_left.as_deref()
    }

    fn dispatch(&mut self, payload: &[u8]) -> Result<Disposition, Error> {
        let number = *payload.first().ok_or(InvalidMessage::EmptyMessage)?;
        let t = MessageType(number);
        let unexpected = || Err(PeerMisbehaved::UnexpectedMessage(t).into());
        match (&self.phase, number) {
            (Phase::Closed, _) => Err(Error::ConnectionClosed),
            (_, 0..=49) => Err(LocalMisuse::WrongLayer.into()),
            (_, 54..=59 | 62..=79) => Ok(Disposition::Unrecognized),
            (Phase::Succeeded, 80..=255) => Err(LocalMisuse::WrongLayer.into()),
            (_, 80..=255) => Err(PeerMisbehaved::MessageBeforeAuthentication(t).into()),
            (_, 50 | 61) | (Phase::Succeeded, _) => unexpected(),
            (_, 53) => {
                let banner = UserauthBanner::decode(payload)?;
                self.events
                    .push_back(ClientEvent::Banner { message: display_text(banner.message) });
                Ok(Disposition::Handled)
            }
            (Phase::AwaitReply(sent), 51) => {
                let sent = *sent;
                self.failure_received(sent, payload)?;
                Ok(Disposition::Handled)
            }
            (Phase::AwaitReply(sent), 52) => {
                let method = sent.method();
                UserauthSuccess::decode(payload)?;
                self.phase = Phase::Succeeded;
                self.events.push_back(ClientEvent::Succeeded { method });
                Ok(Disposition::Handled)
            }
            (Phase::AwaitReply(Sent::PublicKeyQuery { identity, algorithm }), 60) => {
                let (identity, algorithm) = (*identity, *algorithm);
                self.pk_ok_received(identity, algorithm, payload)?;
                Ok(Disposition::Handled)
            }
            (Phase::AwaitReply(Sent::Password), 60) => {
                let request = UserauthPasswdChangereq::decode(payload)?;
                self.events.push_back(ClientEvent::PasswordRequested {
                    attempt: self.password_attempts,
                    change_prompt: Some(display_text(request.prompt)),
                });
                self.phase = Phase::AwaitPassword;
                Ok(Disposition::Handled)
            }
            (Phase::AwaitReply(Sent::KeyboardInteractive), 60) => {
                let request = UserauthInfoRequest::decode(payload)?;
                self.info_request_seen = true;
                let info = InfoRequest {
                    name: display_text(request.name),
                    instruction: display_text(request.instruction),
                    prompts: request
                        .prompts
                        .iter()
                        .map(|(text, echo)| Prompt { text: display_text(text), echo: *echo })
                        .collect(),
                };
                self.phase = Phase::AwaitInfoResponses { prompts: info.prompts.len() };
                self.events.push_back(ClientEvent::InfoRequested(info));
                Ok(Disposition::Handled)
            }
            _ => unexpected(),
        }
    }

    /// `input_userauth_failure`: note a partial success, then go on with the server's list.
    fn failure_received(&mut self, sent: Sent, payload: &[u8]) -> Result<(), Error> {
        let failure = UserauthFailure::decode(payload)?;
        let methods: Vec<String> = failure.methods.iter().map(str::to_owned).collect();
        if failure.partial_success {
            self.events.push_back(ClientEvent::PartialSuccess { method: sent.method() });
            self.identities.iter_mut().for_each(|i| i.tried = false);
        }
        let same_list = self.methods_left.as_ref() == Some(&methods);
        self.methods_left = Some(methods);
        self.next_method(!same_list);
        Ok(())
    }

    /// `input_userauth_pk_ok`: the key must be the one queried; then ask for the signature.
    fn pk_ok_received(
        &mut self,
        identity: usize,
        algorithm: SignatureAlgorithm,
        payload: &[u8],
    ) -> Result<(), Error> {
        let ok = UserauthPkOk::decode(payload)?;
        let Some(queried) = self.identities.get(identity) else {
            return Err(PeerMisbehaved::PkOkForUnrequestedKey.into());
        };
        let name = self.offered_name(identity, algorithm);
        if ok.algorithm != name || ok.key_blob != queried.blob {
            return Err(PeerMisbehaved::PkOkForUnrequestedKey.into());
        }
        let hostbound = self.hostbound;
        let data = signed_data(
            &self.session_id,
            &self.user,
            SERVICE_CONNECTION,
            name,
            &queried.blob,
            hostbound.then_some(self.host_key_blob.as_slice()),
        );
        let key = queried.key.clone();
        self.events.push_back(ClientEvent::SignatureRequested { key, algorithm, data });
        self.phase = Phase::AwaitSignature { identity, algorithm, hostbound };
        Ok(())
    }

    /// OpenSSH's `userauth()` and `authmethod_get()`: with a new list, start again from the top
    /// of the preferred methods; with the same list, retry the current method while it has
    /// something left to try; a method with nothing left is disabled for good.
    fn next_method(&mut self, start_over: bool) {
        if start_over {
            self.cursor = 0;
            self.current = None;
        } else if let Some(method) = self.current.filter(|m| !self.disabled.contains(m)) {
            if self.start(method) {
                return;
            }
            self.disabled.push(method);
        }
        loop {
            let list = self.methods_left.as_deref().unwrap_or_default();
            let rest = self.config.preferred_methods.get(self.cursor..).unwrap_or_default();
            let Some(offset) = rest.iter().position(|m| list.iter().any(|n| n == m.name())) else {
                let methods_left = list.to_vec();
                self.phase = Phase::Failed;
                self.events.push_back(ClientEvent::Failed { methods_left });
                return;
            };
            let method = rest.get(offset).copied();
            self.cursor += offset + 1;
            let Some(method) = method.filter(|m| !self.disabled.contains(m)) else {
                continue;
            };
            self.current = Some(method);
            if self.start(method) {
                return;
            }
            self.disabled.push(method);
        }
    }

    /// Starts (or continues) a method; `false` when it has nothing (more) to try.
    fn start(&mut self, method: Method) -> bool {
        match method {
            Method::PublicKey => self.next_identity(),
            Method::Password => {
                if self.password_attempts >= self.config.number_of_password_prompts {
                    return false;
                }
                self.password_attempts += 1;
                self.events.push_back(ClientEvent::PasswordRequested {
                    attempt: self.password_attempts,
                    change_prompt: None,
                });
                self.phase = Phase::AwaitPassword;
                true
            }
            Method::KeyboardInteractive => {
                if self.kbdint_attempts >= self.config.number_of_password_prompts
                    || (self.kbdint_attempts >= 1 && !self.info_request_seen)
                {
                    return false;
                }
                self.kbdint_attempts += 1;
                let config = Arc::clone(&self.config);
                self.send_request(MethodData::KeyboardInteractive {
                    language: "",
                    submethods: &config.keyboard_interactive_submethods,
                });
                self.phase = Phase::AwaitReply(Sent::KeyboardInteractive);
                true
            }
            Method::None => false,
        }
    }

    /// Queries the next untried key that has a signature algorithm both sides accept.
    fn next_identity(&mut self) -> bool {
        while let Some(index) = self.identities.iter().position(|i| !i.tried) {
            let Some(identity) = self.identities.get_mut(index) else {
                return false;
            };
            identity.tried = true;
            let key = identity.key.clone();
            let blob = identity.blob.clone();
            let certificate = identity.certificate;
            let Some(algorithm) = self.signature_algorithm(&key, certificate) else {
                continue;
            };
            self.send_request(MethodData::PublicKey(PublicKeyData {
                algorithm: self.offered_name(index, algorithm),
                key_blob: &blob,
                host_key_blob: None,
                signature: None,
            }));
            self.phase = Phase::AwaitReply(Sent::PublicKeyQuery { identity: index, algorithm });
            return true;
        }
        false
    }

    /// OpenSSH's `key_sig_algorithm`: the key's own algorithm if we accept it; for RSA keys,
    /// once the server sent `server-sig-algs`, our first accepted algorithm that it lists.
    fn signature_algorithm(
        &self,
        key: &PublicKey,
        certificate: bool,
    ) -> Option<SignatureAlgorithm> {
        let server = self.server_sig_algs.as_ref().filter(|_| key.key_type() == KeyType::Rsa);
        let accepted = match &self.config.publickey_cert_algorithms {
            Some(list) if certificate => list,
            _ => &self.config.publickey_algorithms,
        };
        accepted.iter().copied().find(|&a| {
            key.supports(a)
                && match server {
                    Some(names) => names.iter().any(|n| n == a.name()),
                    None => a.name() == key.key_type().name(),
                }
        })
    }

    fn send_request(&mut self, method: MethodData<'_>) {
        let request = UserauthRequest { user: &self.user, service: SERVICE_CONNECTION, method };
        self.outgoing.push(|w| request.encode(w));
    }

    fn not_expected(&self) -> Error {
        match self.phase {
            Phase::Closed => Error::ConnectionClosed,
            _ => LocalMisuse::NotExpected.into(),
        }
    }

    fn close_on_error<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if result.as_ref().is_err_and(ends_connection) {
            self.phase = Phase::Closed;
        }
        result
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("user", &self.user)
            .field("phase", &self.phase)
            .field("methods_left", &self.methods_left)
            .finish_non_exhaustive()
    }
}

/// Where the client is.
#[derive(Debug)]
enum Phase {
    /// A request went out: waiting for the server's answer.
    AwaitReply(Sent),
    /// `PK_OK` came: waiting for the application's signature.
    AwaitSignature { identity: usize, algorithm: SignatureAlgorithm, hostbound: bool },
    /// Waiting for the application's password.
    AwaitPassword,
    /// An `INFO_REQUEST` came: waiting for the application's responses.
    AwaitInfoResponses { prompts: usize },
    /// `USERAUTH_SUCCESS` came.
    Succeeded,
    /// Nothing is left to try.
    Failed,
    /// A terminal error happened.
    Closed,
}

/// The request the client is waiting on.
#[derive(Clone, Copy, Debug)]
enum Sent {
    None,
    PublicKeyQuery { identity: usize, algorithm: SignatureAlgorithm },
    PublicKey,
    Password,
    KeyboardInteractive,
}

impl Sent {
    fn method(self) -> Method {
        match self {
            Self::None => Method::None,
            Self::PublicKeyQuery { .. } | Self::PublicKey => Method::PublicKey,
            Self::Password => Method::Password,
            Self::KeyboardInteractive => Method::KeyboardInteractive,
        }
    }
}

#[derive(Debug)]
struct Identity {
    /// The key that signs (a certificate's certified key).
    key: PublicKey,
    /// What is offered: the key's blob or the certificate's.
    blob: Vec<u8>,
    /// Whether `blob` is a certificate.
    certificate: bool,
    tried: bool,
}

/// Server-provided text made safe to print: invalid UTF-8 replaced, control characters other
/// than newline and tab removed (OpenSSH passes such text through `vis`).
fn display_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect()
}
