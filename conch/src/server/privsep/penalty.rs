//! Per-source penalties (OpenSSH's `PerSourcePenalties`), sans-IO: the listener records what a
//! source did (crashed a worker, failed to authenticate, ...) and asks before accepting
//! whether that source is refused for now.
//!
//! Sources are grouped by network block (`PerSourceNetBlockSize`, 32:128 by default). Each
//! event adds its duration to the source's penalty, which is capped at `max`; a source is
//! refused while its penalty is *active*, which happens once it exceeds `min`. Penalties expire
//! on their own. The table holds at most `max-sources4`/`max-sources6` entries: on overflow,
//! `permissive` forgets the soonest-to-expire entries, `deny-all` refuses every source of that
//! family until entries expire. Exempt networks are never penalised.
//!
//! Time is the caller's: a monotonic [`Duration`] since any fixed origin.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

/// What a source did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PenaltyKind {
    /// Its connection's worker crashed (or was killed for breaking the monitor's rules).
    Crash,
    /// It failed to authenticate.
    AuthFail,
    /// It disconnected without trying to authenticate.
    NoAuth,
    /// It tried to authenticate as a user that does not exist.
    InvalidUser,
    /// `RefuseConnection` refused it.
    RefuseConnection,
    /// It exceeded `LoginGraceTime`.
    GraceExceeded,
}

impl PenaltyKind {
    /// The reason logged and given for a refusal, as OpenSSH words it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Crash => "penalty: caused crash",
            Self::AuthFail => "penalty: failed authentication",
            Self::NoAuth => "penalty: connections without attempting authentication",
            Self::InvalidUser => "penalty: attempted authentication by invalid user",
            Self::RefuseConnection => "penalty: connection prohibited by RefuseConnection",
            Self::GraceExceeded => "penalty: exceeded LoginGraceTime",
        }
    }
}

/// What to do when a family's table is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Forget the penalties closest to expiring.
    Permissive,
    /// Refuse every source of that family until entries expire.
    DenyAll,
}

/// `PerSourcePenalties` and `PerSourceNetBlockSize`, with OpenSSH's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PenaltyConfig {
    /// Whether penalties are kept at all (`PerSourcePenalties no` turns them off).
    pub enabled: bool,
    /// `crash:` (90 s).
    pub crash: Duration,
    /// `authfail:` (5 s).
    pub authfail: Duration,
    /// `noauth:` (1 s).
    pub noauth: Duration,
    /// `invaliduser:` (5 s).
    pub invaliduser: Duration,
    /// `refuseconnection:` (10 s).
    pub refuseconnection: Duration,
    /// `grace-exceeded:` (10 s).
    pub grace_exceeded: Duration,
    /// `min:` a penalty is enforced once it exceeds this (15 s).
    pub min: Duration,
    /// `max:` a penalty never exceeds this (10 min).
    pub max: Duration,
    /// `max-sources4:` (65536).
    pub max_sources4: usize,
    /// `max-sources6:` (65536).
    pub max_sources6: usize,
    /// `overflow:` (permissive).
    pub overflow4: Overflow,
    /// `overflow6:` (permissive).
    pub overflow6: Overflow,
    /// `PerSourceNetBlockSize` for IPv4 (32).
    pub netblock4: u8,
    /// `PerSourceNetBlockSize` for IPv6 (128).
    pub netblock6: u8,
}

impl Default for PenaltyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            crash: Duration::from_secs(90),
            authfail: Duration::from_secs(5),
            noauth: Duration::from_secs(1),
            invaliduser: Duration::from_secs(5),
            refuseconnection: Duration::from_secs(10),
            grace_exceeded: Duration::from_secs(10),
            min: Duration::from_secs(15),
            max: Duration::from_secs(600),
            max_sources4: 65_536,
            max_sources6: 65_536,
            overflow4: Overflow::Permissive,
            overflow6: Overflow::Permissive,
            netblock4: 32,
            netblock6: 128,
        }
    }
}

impl PenaltyConfig {
    fn duration(&self, kind: PenaltyKind) -> Duration {
        match kind {
            PenaltyKind::Crash => self.crash,
            PenaltyKind::AuthFail => self.authfail,
            PenaltyKind::NoAuth => self.noauth,
            PenaltyKind::InvalidUser => self.invaliduser,
            PenaltyKind::RefuseConnection => self.refuseconnection,
            PenaltyKind::GraceExceeded => self.grace_exceeded,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    expiry: Duration,
    active: bool,
    reason: &'static str,
}

#[derive(Debug, Default)]
struct Table {
    by_addr: BTreeMap<IpAddr, Entry>,
    by_expiry: BTreeSet<(Duration, IpAddr)>,
}

impl Table {
    fn expire(&mut self, now: Duration) {
        while let Some(&(expiry, addr)) = self.by_expiry.first() {
            if expiry >= now {
                break;
            }
            self.by_expiry.remove(&(expiry, addr));
            self.by_addr.remove(&addr);
        }
    }

    fn set(&mut self, addr: IpAddr, entry: Entry) {
        if let Some(old) = self.by_addr.insert(addr, entry) {
            self.by_expiry.remove(&(old.expiry, addr));
        }
        self.by_expiry.insert((entry.expiry, addr));
    }

    fn shrink_to(&mut self, max: usize) {
        while self.by_addr.len() > max {
            let Some((_, addr)) = self.by_expiry.pop_first() else { break };
            self.by_addr.remove(&addr);
        }
    }
}

/// The penalty table of a listener.
#[derive(Debug)]
pub struct Penalties {
    config: PenaltyConfig,
    exempt: Vec<(IpAddr, u8)>,
    v4: Table,
    v6: Table,
}

impl Penalties {
    /// A table with `config`, never penalising the networks in `exempt` (address, prefix
    /// length: `PerSourcePenaltyExemptList`).
    pub fn new(config: PenaltyConfig, exempt: Vec<(IpAddr, u8)>) -> Self {
        Self { config, exempt, v4: Table::default(), v6: Table::default() }
    }

    fn is_exempt(&self, addr: IpAddr) -> bool {
        self.exempt.iter().any(|&(net, bits)| mask(net, bits) == mask(addr, bits))
    }

    fn family(&mut self, addr: IpAddr) -> (&mut Table, usize, Overflow, u8) {
        match addr {
            IpAddr::V4(_) => (
                &mut self.v4,
                self.config.max_sources4,
                self.config.overflow4,
                self.config.netblock4,
            ),
            IpAddr::V6(_) => (
                &mut self.v6,
                self.config.max_sources6,
                self.config.overflow6,
                self.config.netblock6,
            ),
        }
    }

    /// Records that `addr` did `kind` at `now`.
    pub fn penalise(&mut self, addr: IpAddr, kind: PenaltyKind, now: Duration) {
        let duration = self.config.duration(kind);
        if !self.config.enabled || duration.is_zero() || self.is_exempt(addr) {
            return;
        }
        let (min, max) = (self.config.min, self.config.max);
        let (table, max_sources, overflow, bits) = self.family(addr);
        table.expire(now);
        let key = mask(addr, bits);
        let entry = match table.by_addr.get(&key) {
            None => {
                if table.by_addr.len() >= max_sources && overflow == Overflow::DenyAll {
                    return;
                }
                Entry { expiry: now + duration, active: duration > min, reason: kind.reason() }
            }
            Some(old) => {
                let expiry = (old.expiry + duration).min(now + max);
                let active = old.active || expiry.saturating_sub(now) > min;
                Entry { expiry, active, reason: kind.reason() }
            }
        };
        table.set(key, entry);
        table.shrink_to(max_sources);
    }

    /// Whether a connection from `addr` may be accepted at `now`; the refusal's reason if not.
    pub fn check(&mut self, addr: IpAddr, now: Duration) -> Result<(), &'static str> {
        if !self.config.enabled || self.is_exempt(addr) {
            return Ok(());
        }
        let (table, max_sources, overflow, bits) = self.family(addr);
        table.expire(now);
        if table.by_addr.len() >= max_sources && overflow == Overflow::DenyAll {
            return Err("too many penalised addresses");
        }
        match table.by_addr.get(&mask(addr, bits)) {
            Some(entry) if entry.active => Err(entry.reason),
            _ => Ok(()),
        }
    }

    /// How many sources of each family (IPv4, IPv6) carry a penalty, expired ones included
    /// until the next call that expires them.
    pub fn len(&self) -> (usize, usize) {
        (self.v4.by_addr.len(), self.v6.by_addr.len())
    }
}

/// `addr` with all but its first `bits` bits cleared.
fn mask(addr: IpAddr, bits: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(bits.min(32));
            let m = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u32::from(bits.min(128));
            let m = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}
