//! `MaxStartups`, `PerSourceMaxStartups` and `PerSourcePenalties` (sshd_config(5)) for a
//! privilege-separated conchd: how many connections may wait unauthenticated, in all and from
//! one source's net block, and which sources are refused for what their connections did.
//!
//! sshd's listener counts the children that have not yet logged in, penalises sources by how
//! their children ended, and drops a new connection past the limits. conchd without privilege
//! separation does this on its acceptor (`server::Acceptor`, `crate::penalties`); with it,
//! every worker accepts on its own, so the monitor does it for all of them ([`Startups`]): a
//! worker asks before it serves a connection (`ConnectionPeer`); the connection stops counting
//! when it logs in or closes, or when its worker ends; one that closes without logging in earns
//! its source a penalty (`noauth`, `authfail`, `grace-exceeded`), as does a worker's crash.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use twine::conch::config::sshd::SshdConfig;
use twine::conch::crypto::{OsRandom, SecureRandom};
use twine::conch::server::privsep::{Penalties, PenaltyKind};
use twine::conch::server::ConnectionId;

/// Whether sshd's `should_drop_connection` drops a connection that arrives while `startups`
/// are unauthenticated under `MaxStartups begin:rate:full` (`begin` 0: no limit), with
/// `percentile` drawn uniformly from 0..100: none below `begin`, all from `full`, and in
/// between with a chance rising linearly from `rate`% to 100%.
pub(crate) fn past_max_startups(
    startups: u32,
    (begin, rate, full): (u32, u32, u32),
    percentile: u32,
) -> bool {
    if begin == 0 || startups < begin {
        return false;
    }
    if startups >= full || rate >= 100 {
        return true;
    }
    let span = full.saturating_sub(begin).max(1);
    let chance = (100 - rate) * (startups - begin) / span + rate;
    percentile < chance
}

/// A percentile for [`past_max_startups`], uniform over 0..100 (refusing when the system's
/// random source fails).
pub(crate) fn percentile() -> u32 {
    let mut bytes = [0u8; 4];
    if OsRandom::new().fill(&mut bytes).is_err() {
        return 0;
    }
    // 2^32 is not a multiple of 100: the bias is below one in forty million.
    u32::from_le_bytes(bytes) % 100
}

/// Why a connection was not admitted: sshd's count (`drop connection #N`) and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dropped {
    /// Unauthenticated connections when it arrived.
    pub(crate) startups: usize,
    /// sshd's words: `past MaxStartups`, `past Maxstartups` (the per-source limit), or the
    /// source's penalty (`penalty: failed authentication`, ...).
    pub(crate) reason: String,
}

impl Dropped {
    /// As a refusal's text between monitor and worker: `#N reason`.
    pub(crate) fn to_wire(&self) -> String {
        format!("#{} {}", self.startups, self.reason)
    }

    /// The text [`to_wire`](Self::to_wire) made, or `None` for any other refusal.
    pub(crate) fn from_wire(text: &str) -> Option<Self> {
        let (count, reason) = text.strip_prefix('#')?.split_once(' ')?;
        Some(Self { startups: count.parse().ok()?, reason: reason.to_owned() })
    }
}

/// sshd's reason for a connection past `MaxStartups`.
pub(crate) const MAX_STARTUPS: &str = "past MaxStartups";
/// sshd's reason for a connection past `PerSourceMaxStartups`.
pub(crate) const PER_SOURCE: &str = "past Maxstartups";

/// The connections of every worker that have not logged in, and the sources' penalties, for
/// the monitor.
#[derive(Debug)]
pub(crate) struct Startups {
    /// `MaxStartups`.
    max_startups: (u32, u32, u32),
    /// `PerSourceMaxStartups` (`None`: no limit).
    max_per_source: Option<usize>,
    /// `PerSourceNetBlockSize`: the prefix lengths a source is counted by (IPv4, IPv6).
    netblock: (u8, u8),
    /// `PerSourcePenaltyExemptList`.
    exempt: Option<String>,
    /// `LoginGraceTime` (`None`: no limit).
    grace: Option<Duration>,
    /// The origin of the penalty table's clock.
    origin: Instant,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// By worker (its pid) and connection: the client's address, and when it started.
    open: HashMap<(u32, ConnectionId), (IpAddr, Instant)>,
    /// Since when connections are being dropped past `MaxStartups`, and how many.
    throttling: Option<(Instant, u32)>,
    /// `PerSourcePenalties` (`crate::penalties::configured`).
    penalties: Penalties,
}

impl Startups {
    /// The limits of the startup configuration `c`.
    pub(crate) fn new(c: &SshdConfig) -> Self {
        let (netblock4, netblock6) = c.per_source_net_block_size;
        let (config, problem) = crate::penalties::configured(c);
        if let Err(why) = problem {
            log::warn!("PerSourcePenalties: {why}; using the defaults");
        }
        Self {
            max_startups: c.max_startups,
            max_per_source: c.per_source_max_startups.and_then(|n| usize::try_from(n).ok()),
            netblock: (
                u8::try_from(netblock4.min(32)).unwrap_or(32),
                u8::try_from(netblock6.min(128)).unwrap_or(128),
            ),
            exempt: c.per_source_penalty_exempt_list.clone(),
            grace: (c.login_grace_time > 0).then(|| Duration::from_secs(c.login_grace_time.into())),
            origin: Instant::now(),
            state: Mutex::new(State {
                open: HashMap::new(),
                throttling: None,
                penalties: Penalties::new(config, Vec::new()),
            }),
        }
    }

    fn clock(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.origin)
    }

    fn is_exempt(&self, addr: IpAddr) -> bool {
        crate::penalties::exempt(self.exempt.as_deref(), addr)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn block(&self, addr: IpAddr) -> IpAddr {
        crate::penalties::mask(addr, if addr.is_ipv4() { self.netblock.0 } else { self.netblock.1 })
    }

    /// Connection `id` of worker `worker` from `peer` starts at `now`, and counts until
    /// [`done`](Self::done) or [`abandoned`](Self::abandoned); or it is dropped: its source's
    /// penalty, `MaxStartups` (`percentile` as for [`past_max_startups`]), then
    /// `PerSourceMaxStartups`, in sshd's order. Logs sshd's lines for the start and end of
    /// throttling.
    pub(crate) fn open(
        &self,
        worker: u32,
        id: ConnectionId,
        peer: IpAddr,
        percentile: u32,
        now: Instant,
    ) -> Result<(), Dropped> {
        let clock = self.clock(now);
        let exempt = self.is_exempt(peer);
        let mut state = self.state();
        let startups = state.open.len();
        if !exempt {
            if let Err(reason) = state.penalties.check(peer, clock) {
                return Err(Dropped { startups, reason: reason.to_owned() });
            }
        }
        let counted = u32::try_from(startups).unwrap_or(u32::MAX);
        if past_max_startups(counted, self.max_startups, percentile) {
            match &mut state.throttling {
                Some((_, dropped)) => *dropped = dropped.saturating_add(1),
                None => {
                    log::error!("beginning MaxStartups throttling");
                    state.throttling = Some((Instant::now(), 1));
                }
            }
            return Err(Dropped { startups, reason: MAX_STARTUPS.to_owned() });
        }
        if let Some(max) = self.max_per_source {
            let block = self.block(peer);
            if state.open.values().filter(|(a, _)| self.block(*a) == block).count() >= max {
                return Err(Dropped { startups, reason: PER_SOURCE.to_owned() });
            }
        }
        let (begin, _, _) = self.max_startups;
        if counted.saturating_add(1) < begin {
            if let Some((since, dropped)) = state.throttling.take() {
                log::info!(
                    "exited MaxStartups throttling after {}s, {dropped} connections dropped",
                    since.elapsed().as_secs()
                );
            }
        }
        state.open.insert((worker, id), (peer, now));
        Ok(())
    }

    /// The connection logged in or closed: it no longer counts.
    pub(crate) fn done(&self, worker: u32, id: ConnectionId) {
        self.state().open.remove(&(worker, id));
    }

    /// The connection from `peer` ended at `now` without logging in; `kind` is what it did
    /// (`AuthFail` or `NoAuth`), made `GraceExceeded` if it lasted the `LoginGraceTime`. It no
    /// longer counts, and its source earns the penalty.
    pub(crate) fn abandoned(
        &self,
        worker: u32,
        id: ConnectionId,
        peer: IpAddr,
        kind: PenaltyKind,
        now: Instant,
    ) {
        let started = self.state().open.remove(&(worker, id)).map(|(_, started)| started);
        let lasted = started.map(|started| now.saturating_duration_since(started));
        let kind = match (self.grace, lasted) {
            (Some(grace), Some(lasted)) if lasted >= grace => PenaltyKind::GraceExceeded,
            _ => kind,
        };
        self.penalise(peer, kind, now);
    }

    /// `peer` earned a penalty of `kind` at `now` (unless exempt); logs sshd's line when its
    /// block's penalty becomes active.
    pub(crate) fn penalise(&self, peer: IpAddr, kind: PenaltyKind, now: Instant) {
        if self.is_exempt(peer) {
            return;
        }
        let clock = self.clock(now);
        let mut state = self.state();
        let before = state.penalties.check(peer, clock).is_err();
        state.penalties.penalise(peer, kind, clock);
        if !before && state.penalties.check(peer, clock).is_err() {
            let bits = if peer.is_ipv4() { self.netblock.0 } else { self.netblock.1 };
            log::info!("{}/{bits}: penalty now active, {}", self.block(peer), kind.reason());
        } else {
            log::debug!("{peer}: {}", kind.reason());
        }
    }

    /// Worker `worker` ended: none of its connections count.
    pub(crate) fn worker_gone(&self, worker: u32) {
        self.state().open.retain(|(w, _), _| *w != worker);
    }

    /// How many connections count now.
    #[cfg(test)]
    fn count(&self) -> usize {
        self.state().open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startups(config: &str) -> Startups {
        let file = twine::conch::config::sshd::SshdConfigFile::parse_bytes(config.as_bytes());
        Startups::new(&file.unwrap().effective(None).unwrap())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn below_begin_nothing_is_dropped_and_from_full_everything_is() {
        for percentile in [0, 50, 99] {
            assert!(!past_max_startups(9, (10, 30, 100), percentile));
            assert!(past_max_startups(100, (10, 30, 100), percentile));
            assert!(past_max_startups(150, (10, 30, 100), percentile));
        }
    }

    #[test]
    fn between_begin_and_full_the_chance_rises_from_rate_to_a_hundred() {
        // At begin: rate% (30) of the percentiles drop.
        let at_begin = (0..100).filter(|p| past_max_startups(10, (10, 30, 100), *p)).count();
        assert_eq!(at_begin, 30);
        // Half way (55): 30 + 70 * 45 / 90 = 65.
        let half = (0..100).filter(|p| past_max_startups(55, (10, 30, 100), *p)).count();
        assert_eq!(half, 65);
    }

    #[test]
    fn max_startups_zero_means_no_limit() {
        assert!(!past_max_startups(1_000_000, (0, 30, 0), 0));
    }

    /// `open` at the start of time.
    fn open(
        s: &Startups,
        worker: u32,
        id: u64,
        peer: &str,
        percentile: u32,
    ) -> Result<(), Dropped> {
        s.open(worker, ConnectionId(id), ip(peer), percentile, s.origin)
    }

    fn dropped(startups: usize, reason: &str) -> Result<(), Dropped> {
        Err(Dropped { startups, reason: reason.to_owned() })
    }

    #[test]
    fn every_workers_connections_count_toward_one_max_startups() {
        let s = startups("MaxStartups 3\n");
        assert_eq!(open(&s, 1, 1, "10.0.0.1", 99), Ok(()));
        assert_eq!(open(&s, 2, 1, "10.0.0.2", 99), Ok(()));
        assert_eq!(open(&s, 2, 2, "10.0.0.3", 99), Ok(()));
        assert_eq!(open(&s, 1, 2, "10.0.0.4", 99), dropped(3, MAX_STARTUPS));
        // One logs in: room for one more.
        s.done(2, ConnectionId(1));
        assert_eq!(open(&s, 1, 3, "10.0.0.4", 99), Ok(()));
        assert_eq!(s.count(), 3);
    }

    #[test]
    fn per_source_max_startups_counts_a_net_block_across_workers() {
        let s = startups("PerSourceMaxStartups 2\nPerSourceNetBlockSize 24\n");
        assert_eq!(open(&s, 1, 1, "10.0.0.1", 0), Ok(()));
        assert_eq!(open(&s, 2, 1, "10.0.0.2", 0), Ok(()));
        assert_eq!(open(&s, 2, 2, "10.0.0.3", 0), dropped(2, PER_SOURCE));
        // Another block is served.
        assert_eq!(open(&s, 2, 3, "10.0.1.1", 0), Ok(()));
    }

    #[test]
    fn a_worker_that_ends_takes_its_connections_out_of_the_count() {
        let s = startups("MaxStartups 2\n");
        assert_eq!(open(&s, 7, 1, "10.0.0.1", 0), Ok(()));
        assert_eq!(open(&s, 7, 2, "10.0.0.2", 0), Ok(()));
        assert!(open(&s, 8, 1, "10.0.0.3", 0).is_err());
        s.worker_gone(7);
        assert_eq!(s.count(), 0);
        assert_eq!(open(&s, 8, 1, "10.0.0.3", 0), Ok(()));
    }

    #[test]
    fn a_source_whose_connection_failed_to_log_in_is_refused_on_every_worker() {
        let s = startups("PerSourcePenalties authfail:10 min:5\n");
        assert_eq!(open(&s, 1, 1, "10.0.0.1", 0), Ok(()));
        s.abandoned(1, ConnectionId(1), ip("10.0.0.1"), PenaltyKind::AuthFail, s.origin);
        let refusal = dropped(0, PenaltyKind::AuthFail.reason());
        assert_eq!(open(&s, 1, 2, "10.0.0.1", 0), refusal);
        assert_eq!(open(&s, 2, 1, "10.0.0.1", 0), refusal);
        // Another source is served; the penalty ends with its time.
        assert_eq!(open(&s, 2, 2, "10.0.0.9", 0), Ok(()));
        let later = s.origin + Duration::from_secs(11);
        assert_eq!(s.open(2, ConnectionId(3), ip("10.0.0.1"), 0, later), Ok(()));
    }

    #[test]
    fn a_connection_that_outlasts_the_login_grace_time_earns_grace_exceeded() {
        let config = "LoginGraceTime 30\nPerSourcePenalties grace-exceeded:20 noauth:1 min:1\n";
        let s = startups(config);
        assert_eq!(open(&s, 1, 1, "10.0.0.1", 0), Ok(()));
        let at_grace = s.origin + Duration::from_secs(30);
        s.abandoned(1, ConnectionId(1), ip("10.0.0.1"), PenaltyKind::NoAuth, at_grace);
        let refusal = dropped(0, PenaltyKind::GraceExceeded.reason());
        assert_eq!(s.open(1, ConnectionId(2), ip("10.0.0.1"), 0, at_grace), refusal);
        // Past noauth's second, grace-exceeded's twenty still hold.
        let later = at_grace + Duration::from_secs(10);
        assert!(s.open(1, ConnectionId(3), ip("10.0.0.1"), 0, later).is_err());
    }

    #[test]
    fn an_exempt_source_is_never_penalised() {
        let s = startups(
            "PerSourcePenalties authfail:10 min:5\nPerSourcePenaltyExemptList 10.0.0.0/8\n",
        );
        assert_eq!(open(&s, 1, 1, "10.0.0.1", 0), Ok(()));
        s.abandoned(1, ConnectionId(1), ip("10.0.0.1"), PenaltyKind::AuthFail, s.origin);
        s.penalise(ip("10.0.0.1"), PenaltyKind::Crash, s.origin);
        assert_eq!(open(&s, 1, 2, "10.0.0.1", 0), Ok(()));
    }

    #[test]
    fn a_refusal_goes_to_the_worker_and_back_unchanged() {
        for dropped in [
            Dropped { startups: 12, reason: MAX_STARTUPS.to_owned() },
            Dropped { startups: 0, reason: PER_SOURCE.to_owned() },
            Dropped { startups: 3, reason: PenaltyKind::Crash.reason().to_owned() },
        ] {
            assert_eq!(Dropped::from_wire(&dropped.to_wire()), Some(dropped));
        }
        assert_eq!(Dropped::from_wire("some other refusal"), None);
        assert_eq!(Dropped::from_wire("#x past MaxStartups"), None);
    }
}
