//! `PerSourceMaxStartups` and `PerSourcePenalties` (sshd_config(5)) at the accept path of a
//! conchd without privilege separation, after OpenSSH's `srclimit`. (With privilege
//! separation the monitor keeps them for every worker: `crate::startups`.)
//!
//! The outcome a penalty is judged on is what the reactor sees of the connection instead of a
//! child's exit status: [`Watch`] wraps the authentication policy and notes, per connection
//! (keyed by the client's address and port), whether authentication was tried and whether it
//! succeeded; the per-user settings ([`crate::policy::MatchSettings`]) note whether the user
//! named is valid and whether `RefuseConnection` ended the connection. When an
//! unauthenticated connection ends, its source earns, in sshd's order, `grace-exceeded` if it
//! lasted the `LoginGraceTime`, `refuseconnection` if the configuration refused it, `authfail`
//! if it tried to authenticate (a password, or a key for a valid user: sshd's monitor is not
//! asked about keys for an invalid one), `invaliduser` if it named no valid user, else
//! `noauth`. Authenticated connections earn nothing, and there is no worker to crash.
//!
//! The penalty table itself is the library's ([`Penalties`]); this module adds the exemption
//! list (an address list, as `addr_match_list` reads it), the per-source count of connections
//! not yet authenticated, and sshd's log line for a refused connection.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use twine::conch::config::pattern::{match_address_list, ListMatch};
use twine::conch::config::sshd::SshdConfig;
use twine::conch::server::privsep::{Overflow, Penalties, PenaltyConfig, PenaltyKind};
use twine::conch::server::{
    AccountStatus, AuthBackend, AuthRequest, ConnectionFacts, LoginRequest, Restrictions,
    SessionGrant,
};
use twine::conch::userauth::{Attempt, Decision};
use twine::internet::Deferred;

/// What a refused client is told before the socket closes (as sshd does).
pub(crate) const REFUSAL: &[u8] = b"Not allowed at this time\r\n";

/// The process's limits, set up with the listeners (absent in inetd mode: nothing is limited).
static LIMITS: OnceLock<Arc<SourceLimits>> = OnceLock::new();

/// Sets up the process's limits from `c`; later calls keep the first.
pub(crate) fn install(c: &SshdConfig) {
    let limits = SourceLimits::new(c);
    if let Err(why) = &limits.problem {
        log::warn!("PerSourcePenalties: {why}; using the defaults");
    }
    let _ = LIMITS.set(Arc::new(limits));
}

/// The accept path's check: whether `stream` from `peer` may be served. A refused connection
/// is logged as sshd logs it and told so; the caller drops it.
pub(crate) fn admit(stream: &TcpStream, peer: SocketAddr) -> bool {
    let Some(limits) = LIMITS.get() else { return true };
    match limits.admit(peer, Instant::now()) {
        Ok(()) => true,
        Err((startups, reason)) => {
            log::info!(
                "drop connection #{startups} from [{}]:{} on {} {reason}",
                peer.ip(),
                peer.port(),
                local_text(stream)
            );
            let _ = (&*stream).write(REFUSAL);
            false
        }
    }
}

/// The connection from `peer` named a user (`valid`: one with an account).
pub(crate) fn user_named(peer: SocketAddr, valid: bool) {
    if let Some(limits) = LIMITS.get() {
        limits.user_named(peer, valid);
    }
}

/// `RefuseConnection` ended the connection from `peer`.
pub(crate) fn refused(peer: SocketAddr) {
    if let Some(limits) = LIMITS.get() {
        limits.refused(peer);
    }
}

/// Our end of `stream` as sshd's drop lines show it (`[address]:port`).
pub(crate) fn local_text(stream: &TcpStream) -> String {
    stream
        .local_addr()
        .map_or_else(|_| "[UNKNOWN]:0".to_owned(), |a| format!("[{}]:{}", a.ip(), a.port()))
}

/// One connection not yet authenticated.
#[derive(Clone, Copy, Debug)]
struct Pending {
    started: Instant,
    /// Whether it asked for a check: a password, a key for a valid user, keyboard-interactive
    /// (not `none`).
    attempted: bool,
    /// Whether a user it named has no account.
    invalid_user: bool,
    /// Whether `RefuseConnection` ended it.
    refused: bool,
}

#[derive(Debug)]
struct State {
    penalties: Penalties,
    /// Connections accepted and not yet authenticated, by the client's address and port.
    pending: HashMap<SocketAddr, Pending>,
}

/// The limits every reactor of the process shares.
#[derive(Debug)]
pub(crate) struct SourceLimits {
    state: Mutex<State>,
    /// The origin of the penalty table's clock.
    origin: Instant,
    /// `PerSourceMaxStartups` (`None`: no limit).
    max_per_source: Option<usize>,
    /// `PerSourceNetBlockSize`: the prefix lengths a source is counted by (IPv4, IPv6).
    netblock: (u8, u8),
    /// `PerSourcePenaltyExemptList`.
    exempt: Option<String>,
    /// Whether penalties are kept (`PerSourcePenalties no` turns them off).
    penalising: bool,
    /// `LoginGraceTime` (`None`: no limit).
    grace: Option<Duration>,
    /// Why the penalty settings could not be read, if so.
    problem: Result<(), String>,
}

impl SourceLimits {
    /// Limits from the startup configuration.
    pub(crate) fn new(c: &SshdConfig) -> Self {
        let (config, problem) = configured(c);
        let netblock = (config.netblock4, config.netblock6);
        let penalising = config.enabled;
        Self {
            state: Mutex::new(State {
                penalties: Penalties::new(config, Vec::new()),
                pending: HashMap::new(),
            }),
            origin: Instant::now(),
            max_per_source: c.per_source_max_startups.and_then(|n| usize::try_from(n).ok()),
            netblock,
            exempt: c.per_source_penalty_exempt_list.clone(),
            penalising,
            grace: (c.login_grace_time > 0).then(|| Duration::from_secs(c.login_grace_time.into())),
            problem,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn clock(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.origin)
    }

    fn is_exempt(&self, addr: IpAddr) -> bool {
        exempt(self.exempt.as_deref(), addr)
    }

    fn block(&self, addr: IpAddr) -> IpAddr {
        mask(addr, if addr.is_ipv4() { self.netblock.0 } else { self.netblock.1 })
    }

    /// Admits a connection from `peer` and counts it as unauthenticated, or says why not: the
    /// number of unauthenticated connections (sshd's `#N`) and the reason.
    fn admit(&self, peer: SocketAddr, now: Instant) -> Result<(), (usize, &'static str)> {
        let clock = self.clock(now);
        let mut state = self.state();
        // A connection that failed to start never reports its end; the login grace time ends
        // every live one, so an entry twice as old is such a leftover.
        if let Some(grace) = self.grace {
            state.pending.retain(|_, p| now.saturating_duration_since(p.started) <= grace * 2);
        }
        let startups = state.pending.len();
        if self.penalising && !self.is_exempt(peer.ip()) {
            state.penalties.check(peer.ip(), clock).map_err(|reason| (startups, reason))?;
        }
        if let Some(max) = self.max_per_source {
            let block = self.block(peer.ip());
            let from_block = state.pending.keys().filter(|a| self.block(a.ip()) == block).count();
            if from_block >= max {
                return Err((startups, "past Maxstartups"));
            }
        }
        let pending =
            Pending { started: now, attempted: false, invalid_user: false, refused: false };
        state.pending.insert(peer, pending);
        Ok(())
    }

    /// The connection from `peer` asked to authenticate by `attempt`: a check, unless a key
    /// for a user it named without an account (sshd never asks its monitor about those).
    fn attempted(&self, peer: SocketAddr, attempt: &Attempt) {
        if let Some(pending) = self.state().pending.get_mut(&peer) {
            let key = matches!(attempt, Attempt::PublicKeyQuery { .. } | Attempt::PublicKey { .. });
            pending.attempted |= !(key && pending.invalid_user);
        }
    }

    /// The connection from `peer` named a user (`valid`: one with an account).
    fn user_named(&self, peer: SocketAddr, valid: bool) {
        if let Some(pending) = self.state().pending.get_mut(&peer) {
            pending.invalid_user |= !valid;
        }
    }

    /// `RefuseConnection` ended the connection from `peer`.
    fn refused(&self, peer: SocketAddr) {
        if let Some(pending) = self.state().pending.get_mut(&peer) {
            pending.refused = true;
        }
    }

    /// The connection from `peer` logged in: it no longer counts, and earns no penalty.
    fn authenticated(&self, peer: SocketAddr) {
        self.state().pending.remove(&peer);
    }

    /// The connection from `peer` ended at `now`: if it never logged in, its source earns the
    /// penalty for what it did.
    fn ended(&self, peer: SocketAddr, now: Instant) {
        let mut state = self.state();
        let Some(pending) = state.pending.remove(&peer) else { return };
        if !self.penalising || self.is_exempt(peer.ip()) {
            return;
        }
        let kind =
            if self.grace.is_some_and(|g| now.saturating_duration_since(pending.started) >= g) {
                PenaltyKind::GraceExceeded
            } else if pending.refused {
                PenaltyKind::RefuseConnection
            } else if pending.attempted {
                PenaltyKind::AuthFail
            } else if pending.invalid_user {
                PenaltyKind::InvalidUser
            } else {
                PenaltyKind::NoAuth
            };
        let clock = self.clock(now);
        let before = state.penalties.check(peer.ip(), clock).is_err();
        state.penalties.penalise(peer.ip(), kind, clock);
        if !before && state.penalties.check(peer.ip(), clock).is_err() {
            let bits = if peer.is_ipv4() { self.netblock.0 } else { self.netblock.1 };
            log::info!("{}/{bits}: penalty now active, {}", self.block(peer.ip()), kind.reason());
        } else {
            log::debug!("{}: {}", peer.ip(), kind.reason());
        }
    }
}

/// The authentication policy, watched for what [`SourceLimits`] judges connections on (the
/// limits are looked up per call: the main reactor's policy is built before they are
/// installed).
pub(crate) struct Watch<B> {
    inner: B,
}

impl<B> Watch<B> {
    /// `inner`, watched for the process's limits.
    pub(crate) fn new(inner: B) -> Self {
        Self { inner }
    }

    fn with(&self, connection: &ConnectionFacts, f: impl FnOnce(&SourceLimits, SocketAddr)) {
        if let (Some(limits), Some(peer)) = (LIMITS.get(), connection.peer) {
            f(limits, peer);
        }
    }
}

impl<B: AuthBackend> AuthBackend for Watch<B> {
    fn decide(&self, request: &AuthRequest) -> Deferred<Decision<Restrictions>> {
        self.with(&request.connection, |limits, peer| limits.attempted(peer, &request.attempt));
        self.inner.decide(request)
    }

    fn check_account(&self, login: &LoginRequest) -> Deferred<AccountStatus> {
        self.inner.check_account(login)
    }

    fn signature_refused(&self, request: &AuthRequest) {
        self.with(&request.connection, |limits, peer| limits.attempted(peer, &request.attempt));
        self.inner.signature_refused(request);
    }

    fn open_session(&self, login: &LoginRequest) -> Deferred<SessionGrant> {
        self.with(&login.connection, SourceLimits::authenticated);
        self.inner.open_session(login)
    }

    fn close_session(&self, login: &LoginRequest) {
        self.inner.close_session(login);
    }

    fn connection_ended(&self, connection: &ConnectionFacts) {
        self.inner.connection_ended(connection);
        self.with(connection, |limits, peer| limits.ended(peer, Instant::now()));
    }
}

/// The penalty table's configuration from `PerSourcePenalties` and `PerSourceNetBlockSize`
/// (OpenSSH's defaults where the settings cannot be read, with the reason).
pub(crate) fn configured(c: &SshdConfig) -> (PenaltyConfig, Result<(), String>) {
    let netblock = (
        u8::try_from(c.per_source_net_block_size.0.min(32)).unwrap_or(32),
        u8::try_from(c.per_source_net_block_size.1.min(128)).unwrap_or(128),
    );
    let (config, problem) = match penalty_config(&c.per_source_penalties) {
        Ok(config) => (config, Ok(())),
        Err(why) => (PenaltyConfig::default(), Err(why)),
    };
    (PenaltyConfig { netblock4: netblock.0, netblock6: netblock.1, ..config }, problem)
}

/// `PerSourcePenalties` as a penalty configuration (OpenSSH's defaults for what is not set).
fn penalty_config(items: &[String]) -> Result<PenaltyConfig, String> {
    let mut config = PenaltyConfig::default();
    for item in items {
        if item.eq_ignore_ascii_case("no") {
            config.enabled = false;
            continue;
        }
        if item.eq_ignore_ascii_case("yes") {
            continue;
        }
        let (key, value) = item.split_once(':').ok_or_else(|| format!("bad item {item:?}"))?;
        let time = || fractional_time(value).ok_or_else(|| format!("bad time in {item:?}"));
        let overflow = || match value {
            "deny-all" => Ok(Overflow::DenyAll),
            "permissive" => Ok(Overflow::Permissive),
            _ => Err(format!("bad overflow mode in {item:?}")),
        };
        let count = || value.parse::<usize>().map_err(|_| format!("bad count in {item:?}"));
        match key {
            "crash" => config.crash = time()?,
            "authfail" => config.authfail = time()?,
            "noauth" => config.noauth = time()?,
            "invaliduser" => config.invaliduser = time()?,
            "refuseconnection" => config.refuseconnection = time()?,
            "grace-exceeded" => config.grace_exceeded = time()?,
            "min" => config.min = time()?,
            "max" => config.max = time()?,
            "max-sources4" => config.max_sources4 = count()?,
            "max-sources6" => config.max_sources6 = count()?,
            "overflow" => config.overflow4 = overflow()?,
            "overflow6" => config.overflow6 = overflow()?,
            _ => return Err(format!("unknown item {item:?}")),
        }
    }
    Ok(config)
}

/// A time as `convtime_double` reads it: numbers with an optional fraction, each followed by
/// an optional unit (`s`, `m`, `h`, `d`, `w`; seconds without one), summed.
fn fractional_time(text: &str) -> Option<Duration> {
    let mut total = 0.0_f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let number: f64 = rest.get(..len)?.parse().ok()?;
        rest = rest.get(len..)?;
        let unit = match rest.chars().next() {
            Some(c) if "sS".contains(c) => 1.0,
            Some(c) if "mM".contains(c) => 60.0,
            Some(c) if "hH".contains(c) => 3600.0,
            Some(c) if "dD".contains(c) => 86_400.0,
            Some(c) if "wW".contains(c) => 604_800.0,
            Some(_) => return None,
            None => 1.0,
        };
        if !rest.is_empty() {
            rest = rest.get(1..)?;
        }
        total += number * unit;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Whether `addr` is on `PerSourcePenaltyExemptList` (`list`, an address list as
/// `addr_match_list` reads it).
pub(crate) fn exempt(list: Option<&str>, addr: IpAddr) -> bool {
    list.is_some_and(|list| {
        matches!(match_address_list(Some(&addr.to_string()), list), Ok(ListMatch::Match))
    })
}

/// `addr` with all but its first `bits` bits cleared.
pub(crate) fn mask(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let keep = u32::MAX.checked_shl(32 - u32::from(bits.min(32))).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & keep).into())
        }
        IpAddr::V6(v6) => {
            let keep = u128::MAX.checked_shl(128 - u32::from(bits.min(128))).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & keep).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(lines: &str) -> SourceLimits {
        let file = twine::conch::config::sshd::SshdConfigFile::parse_bytes(lines.as_bytes());
        SourceLimits::new(&file.unwrap().effective(None).unwrap())
    }

    fn peer(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn password() -> Attempt {
        Attempt::Password { password: "guess".to_owned().into(), new_password: None }
    }

    fn key_query() -> Attempt {
        let key = twine::conch::keys::PrivateKey::ed25519_from_seed(&[3; 32]).unwrap();
        Attempt::PublicKeyQuery {
            algorithm: twine::conch::keys::SignatureAlgorithm::Ed25519,
            key: key.public_key().clone(),
            certificate: None,
        }
    }

    /// The penalty the connection from `p` earned, judged by a source refused right after.
    fn earned(l: &SourceLimits, p: SocketAddr, t: Instant) -> &'static str {
        l.ended(p, t);
        let next = SocketAddr::new(p.ip(), p.port() + 1000);
        l.admit(next, t).map_or_else(|(_, reason)| reason, |()| "nothing")
    }

    /// What a connection did, for [`refusal_attempt_and_invalid_user_earn_their_penalties_in_sshds_order`].
    #[derive(Clone, Copy)]
    enum Step {
        Named(bool),
        Refused,
        Key,
        Password,
    }

    /// In sshd's order: the configuration's refusal, then an attempt (a password for anyone, a
    /// key for a valid user), then an invalid user named; a key for an invalid user is no
    /// attempt (sshd never asks its monitor about it).
    #[test]
    fn refusal_attempt_and_invalid_user_earn_their_penalties_in_sshds_order() {
        let every = "PerSourcePenalties authfail:100 noauth:100 invaliduser:100 \
                     refuseconnection:100\n";
        let t = Instant::now();
        use Step::{Key, Named, Password, Refused};
        let outcomes = [
            (vec![Refused], "penalty: connection prohibited by RefuseConnection"),
            (vec![Named(false), Refused], "penalty: connection prohibited by RefuseConnection"),
            (vec![Named(false), Key], "penalty: attempted authentication by invalid user"),
            (vec![Named(false), Password], "penalty: failed authentication"),
            (vec![Named(true), Key], "penalty: failed authentication"),
            (vec![Named(true)], "penalty: connections without attempting authentication"),
        ];
        for (i, (what, reason)) in outcomes.into_iter().enumerate() {
            let l = limits(every);
            let p = peer("192.0.2.1:1");
            l.admit(p, t).unwrap();
            for step in what {
                match step {
                    Named(valid) => l.user_named(p, valid),
                    Refused => l.refused(p),
                    Key => l.attempted(p, &key_query()),
                    Password => l.attempted(p, &password()),
                }
            }
            assert_eq!(earned(&l, p, t), reason, "outcome {i}");
        }
    }

    /// Four failed logins from one address (5 s each) pass `min` (15 s): the fifth connection
    /// is refused, while another address is still admitted.
    #[test]
    fn repeated_failed_logins_refuse_that_source_only() {
        let l = limits("");
        let t = Instant::now();
        for port in 1..=4 {
            let p = peer(&format!("127.0.0.2:{port}"));
            l.admit(p, t).unwrap();
            l.attempted(p, &password());
            l.ended(p, t);
        }
        let refused = l.admit(peer("127.0.0.2:9"), t).unwrap_err();
        assert_eq!(refused.1, "penalty: failed authentication");
        l.admit(peer("127.0.0.3:9"), t).unwrap();
    }

    /// A connection that logged in earns nothing however it ends.
    #[test]
    fn authenticated_connections_earn_no_penalty() {
        let l = limits("PerSourcePenalties authfail:100 noauth:100\n");
        let t = Instant::now();
        let p = peer("127.0.0.2:1");
        l.admit(p, t).unwrap();
        l.attempted(p, &password());
        l.authenticated(p);
        l.ended(p, t);
        l.admit(peer("127.0.0.2:2"), t).unwrap();
    }

    /// Exempt addresses and `PerSourcePenalties no` are never refused.
    #[test]
    fn exempt_sources_and_disabled_penalties_are_never_refused() {
        for config in [
            "PerSourcePenalties authfail:100\nPerSourcePenaltyExemptList 127.0.0.0/24,::1\n",
            "PerSourcePenalties no\n",
        ] {
            let l = limits(config);
            let t = Instant::now();
            for port in 1..=5 {
                let p = peer(&format!("127.0.0.2:{port}"));
                l.admit(p, t).unwrap();
                l.attempted(p, &password());
                l.ended(p, t);
            }
            l.admit(peer("127.0.0.2:9"), t).unwrap();
        }
    }

    /// A connection that outlives `LoginGraceTime` unauthenticated earns `grace-exceeded`; one
    /// that never asks to authenticate earns `noauth`.
    #[test]
    fn grace_and_no_auth_outcomes_earn_their_penalties() {
        let l = limits("LoginGraceTime 10\nPerSourcePenalties grace-exceeded:20 noauth:30\n");
        let t = Instant::now();
        let p = peer("127.0.0.2:1");
        l.admit(p, t).unwrap();
        l.attempted(p, &password());
        l.ended(p, t + Duration::from_secs(10));
        let refused = l.admit(peer("127.0.0.2:2"), t + Duration::from_secs(10)).unwrap_err();
        assert_eq!(refused.1, "penalty: exceeded LoginGraceTime");
        let q = peer("[::1]:1");
        l.admit(q, t).unwrap();
        l.ended(q, t);
        let refused = l.admit(peer("[::1]:2"), t).unwrap_err();
        assert_eq!(refused.1, "penalty: connections without attempting authentication");
    }

    /// `PerSourceMaxStartups 2` refuses a third unauthenticated connection from one net block
    /// (`PerSourceNetBlockSize 24`), not one from another block, and admits again once one
    /// logs in.
    #[test]
    fn per_source_max_startups_counts_unauthenticated_connections_per_block() {
        let l = limits("PerSourceMaxStartups 2\nPerSourceNetBlockSize 24\n");
        let t = Instant::now();
        l.admit(peer("10.0.0.1:1"), t).unwrap();
        l.admit(peer("10.0.0.2:1"), t).unwrap();
        assert_eq!(l.admit(peer("10.0.0.3:1"), t), Err((2, "past Maxstartups")));
        l.admit(peer("10.0.1.1:1"), t).unwrap();
        l.authenticated(peer("10.0.0.1:1"));
        l.admit(peer("10.0.0.3:1"), t).unwrap();
    }

    /// An entry left by a connection that never reported its end stops counting once it is
    /// twice the login grace time old.
    #[test]
    fn a_connection_that_never_reports_its_end_stops_counting_after_twice_the_grace_time() {
        let l = limits("PerSourceMaxStartups 1\nLoginGraceTime 10\n");
        let t = Instant::now();
        l.admit(peer("10.0.0.1:1"), t).unwrap();
        assert!(l.admit(peer("10.0.0.1:2"), t + Duration::from_secs(20)).is_err());
        l.admit(peer("10.0.0.1:3"), t + Duration::from_secs(21)).unwrap();
    }

    /// Times read as OpenSSH reads them; bad items are errors.
    #[test]
    fn penalty_settings_read_as_openssh_reads_them() {
        assert_eq!(fractional_time("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(fractional_time("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(fractional_time("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(fractional_time("x"), None);
        let c = penalty_config(&["authfail:1m".into(), "overflow:deny-all".into()]).unwrap();
        assert_eq!(c.authfail, Duration::from_secs(60));
        assert_eq!(c.overflow4, Overflow::DenyAll);
        assert!(!penalty_config(&["no".into()]).unwrap().enabled);
        assert!(penalty_config(&["bogus:1".into()]).is_err());
    }
}
