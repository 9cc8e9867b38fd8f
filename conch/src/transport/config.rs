//! Configuration of a transport: algorithm preferences, identification, rekey limits, bounds,
//! and (on the server) the host keys.
//!
//! Configs are plain data shared by every connection through an `Arc`; [`super::Transport`]
//! checks one when a connection starts and refuses it with [`LocalMisuse::InvalidConfig`] if
//! some category has no algorithm we implement.

use std::sync::Arc;
use std::time::Duration;

use super::algorithms;
use crate::crypto::algorithms::{Category, Preferences, Side as PreferenceSide};
use crate::error::{Error, LocalMisuse};
use crate::keys::{HostKeySigner, SignatureAlgorithm};
use crate::wire::MAX_PACKET_LEN;

/// The software version in our identification line: `twine_<crate version>`.
pub const SOFTWARE_VERSION: &str = concat!("twine_", env!("CARGO_PKG_VERSION"));

/// Checks a side's algorithm preferences: every category has a name (a host key algorithm we
/// can sign or verify with), and MACs exist unless every cipher is an AEAD. Names are all
/// known: [`Preferences`] takes only supported ones.
fn check_preferences(prefs: &Preferences) -> Result<(), Error> {
    let has = |c: Category| !prefs.list(c).is_empty();
    let host_keys =
        prefs.list(Category::HostKey).iter().any(|n| SignatureAlgorithm::from_name(n).is_some());
    let macs_needed = !prefs.list(Category::Cipher).iter().all(|c| algorithms::is_aead(c));
    if has(Category::Kex)
        && host_keys
        && has(Category::Cipher)
        && has(Category::Compression)
        && (has(Category::Mac) || !macs_needed)
    {
        Ok(())
    } else {
        Err(LocalMisuse::InvalidConfig.into())
    }
}

/// When to start a key re-exchange on our own (RFC 4253 §9), once user authentication has
/// succeeded ([`super::Transport::enable_delayed_compression`]), as OpenSSH does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RekeyLimits {
    /// Bytes in either direction under one set of keys; `None` uses OpenSSH's rule for the
    /// negotiated cipher (2^(2 × block bits / 8) blocks for 16-byte blocks, else 1 GiB). A
    /// configured value only lowers that.
    pub bytes: Option<u64>,
    /// Time under one set of keys (OpenSSH's `RekeyLimit` second field); `None` for no limit.
    pub time: Option<Duration>,
    /// Packets in either direction under one set of keys: at most 2^31 (OpenSSH's
    /// `MAX_PACKETS`), which keeps sequence numbers from wrapping.
    pub packets: u64,
}

impl Default for RekeyLimits {
    fn default() -> Self {
        Self { bytes: None, time: None, packets: MAX_PACKETS_PER_KEY }
    }
}

/// The most packets one set of keys protects before a rekey (OpenSSH's `MAX_PACKETS`).
pub const MAX_PACKETS_PER_KEY: u64 = 1 << 31;

/// Bounds on what one connection may hold in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Received bytes buffered but not yet processed. At least one maximum packet plus its tag;
    /// [`super::Transport::input_capacity`] tells the reader how much more fits.
    pub max_input_buffer: usize,
    /// Outgoing bytes accepted but not yet taken by `poll_transmit`, payloads queued during a
    /// key exchange included. [`super::Transport::can_send`] turns false at this bound.
    pub max_send_queue: usize,
    /// Events not yet taken by `poll_event`; reading stops at this bound until they are.
    pub max_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_input_buffer: 2 * MAX_PACKET_LEN, max_send_queue: 1 << 20, max_events: 64 }
    }
}

impl Limits {
    fn check(&self) -> Result<(), Error> {
        if self.max_input_buffer < MAX_PACKET_LEN + 4 + algorithms::MAX_TAG_LEN
            || self.max_send_queue == 0
            || self.max_events == 0
        {
            return Err(LocalMisuse::InvalidConfig.into());
        }
        Ok(())
    }
}

/// What we say in our identification line: `SSH-2.0-<software_version>[ <comment>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identification {
    /// Printable US-ASCII without spaces; [`SOFTWARE_VERSION`] by default.
    pub software_version: String,
    /// Optional free text after a space.
    pub comment: Option<String>,
}

impl Identification {
    /// The line without CR LF, or an error if it breaks RFC 4253 §4.2 (printable US-ASCII,
    /// at most 255 bytes with CR LF).
    pub fn line(&self) -> Result<String, Error> {
        let mut line = format!("SSH-2.0-{}", self.software_version);
        if let Some(comment) = &self.comment {
            line.push(' ');
            line.push_str(comment);
        }
        let software_ok = !self.software_version.is_empty() && !self.software_version.contains(' ');
        if !software_ok || !super::version::is_valid_own_line(&line) {
            return Err(LocalMisuse::InvalidConfig.into());
        }
        Ok(line)
    }
}

impl Default for Identification {
    fn default() -> Self {
        Self { software_version: SOFTWARE_VERSION.to_owned(), comment: None }
    }
}

/// Configuration for the client side of connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Algorithm preferences: OpenSSH 10's client defaults, changed with
    /// [`Preferences::configure`] (OpenSSH's `+`, `-`, `^` syntax).
    pub algorithms: Preferences,
    /// Our identification line.
    pub identification: Identification,
    /// When to rekey on our own.
    pub rekey: RekeyLimits,
    /// Memory bounds.
    pub limits: Limits,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            algorithms: Preferences::defaults(PreferenceSide::Client),
            identification: Identification::default(),
            rekey: RekeyLimits::default(),
            limits: Limits::default(),
        }
    }
}

impl ClientConfig {
    pub(crate) fn check(&self) -> Result<String, Error> {
        check_preferences(&self.algorithms)?;
        self.limits.check()?;
        self.identification.line()
    }
}

/// Configuration for the server side of connections.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Algorithm preferences: OpenSSH 10's server defaults (no finite-field DH), changed with
    /// [`Preferences::configure`]. Host key algorithms are offered only if a host key can
    /// make them; an RSA key makes `rsa-sha2-512` and `rsa-sha2-256` (and `ssh-rsa` only if
    /// listed).
    pub algorithms: Preferences,
    /// The host keys, one per type at most. Signing goes through the trait, so a key can live
    /// in another process.
    pub host_keys: Vec<Arc<dyn HostKeySigner>>,
    /// The extensions announced in `SSH_MSG_EXT_INFO` (RFC 8308) to clients that offer
    /// `ext-info-c`, in this order; the transport adds `ping@openssh.com` (which it
    /// implements) after them. They describe the layer above: set them from
    /// `userauth::ServerConfig::ext_info_extensions()`. By default: `server-sig-algs` listing
    /// every public key algorithm we verify, and `publickey-hostbound@openssh.com`.
    pub ext_info: Vec<(&'static str, Vec<u8>)>,
    /// Our identification line.
    pub identification: Identification,
    /// When to rekey on our own.
    pub rekey: RekeyLimits,
    /// Memory bounds.
    pub limits: Limits,
}

impl ServerConfig {
    /// A configuration with default algorithms and the given host keys.
    pub fn new(host_keys: Vec<Arc<dyn HostKeySigner>>) -> Self {
        Self {
            algorithms: Preferences::defaults(PreferenceSide::Server),
            host_keys,
            ext_info: vec![
                (
                    "server-sig-algs",
                    Category::HostKey.defaults(PreferenceSide::Server).join(",").into_bytes(),
                ),
                ("publickey-hostbound@openssh.com", b"0".to_vec()),
            ],
            identification: Identification::default(),
            rekey: RekeyLimits::default(),
            limits: Limits::default(),
        }
    }

    /// The host key algorithms we can offer: the configured ones some host key can make.
    pub(crate) fn offered_host_key_algorithms(
        &self,
    ) -> impl Iterator<Item = SignatureAlgorithm> + '_ {
        self.algorithms
            .list(Category::HostKey)
            .iter()
            .filter_map(|name| SignatureAlgorithm::from_name(name))
            .filter(|alg| self.host_keys.iter().any(|k| k.public_key().supports(*alg)))
    }

    /// The host key that makes `algorithm`.
    pub(crate) fn host_key_for(
        &self,
        algorithm: SignatureAlgorithm,
    ) -> Option<&Arc<dyn HostKeySigner>> {
        self.host_keys.iter().find(|k| k.public_key().supports(algorithm))
    }

    pub(crate) fn check(&self) -> Result<String, Error> {
        check_preferences(&self.algorithms)?;
        self.limits.check()?;
        if self.offered_host_key_algorithms().next().is_none() {
            return Err(LocalMisuse::InvalidConfig.into());
        }
        self.identification.line()
    }
}
