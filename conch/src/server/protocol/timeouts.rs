//! `ChannelTimeout` and `UnusedConnectionTimeout` for one connection, sans-IO: the adapter
//! reports channels opening, running something and closing, and what it reads of their data
//! counters; this says when to look again and what has expired.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::settings::{ChannelTimeout, MAX_CHANNEL_TIMEOUTS};
use crate::connection::ChannelId;

/// One watched channel.
#[derive(Debug)]
struct Watched {
    kind: String,
    interval: Option<Duration>,
    /// The channel's data counter when it last changed, and when that was seen.
    reading: Option<u64>,
    since: Instant,
}

/// What has run out.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Expired {
    /// Channels to close.
    pub(super) channels: Vec<ChannelId>,
    /// The connection has had no channel for `UnusedConnectionTimeout`.
    pub(super) unused: bool,
}

/// The timers of one connection.
#[derive(Debug, Default)]
pub(super) struct Timeouts {
    rules: Vec<ChannelTimeout>,
    global: Option<Duration>,
    unused: Option<Duration>,
    /// Bounded by the connection layer's channel limit: only open channels are here.
    channels: HashMap<ChannelId, Watched>,
    /// The sum of every channel's counter when it last changed, and when that was seen.
    total: (u64, Option<Instant>),
    /// Since when no channel has been open (after authentication).
    unused_since: Option<Instant>,
    started: bool,
}

impl Timeouts {
    /// Applies `rules` and `unused` (a new user's settings); channels already open keep theirs.
    pub(super) fn configure(&mut self, rules: &[ChannelTimeout], unused: Option<Duration>) {
        let rules = rules.iter().take(MAX_CHANNEL_TIMEOUTS);
        self.global = rules.clone().find(|r| r.pattern == "global").map(|r| r.interval);
        self.rules = rules.filter(|r| r.pattern != "global").cloned().collect();
        self.unused = unused.filter(|d| !d.is_zero());
    }

    /// The user is in: the unused-connection clock may run from `now`.
    pub(super) fn start(&mut self, now: Instant) {
        self.started = true;
        self.unused_since = Some(now);
    }

    /// Whether anything is timed at all (the adapter reads counters only then).
    pub(super) fn active(&self) -> bool {
        self.started && (self.unused.is_some() || self.global.is_some() || !self.rules.is_empty())
    }

    /// A channel of type `kind` opened.
    pub(super) fn opened(&mut self, id: ChannelId, kind: &str, now: Instant) {
        let interval = self.interval_for(kind);
        let watched = Watched { kind: kind.to_owned(), interval, reading: None, since: now };
        self.channels.insert(id, watched);
    }

    /// A session started something: its type becomes `kind` (`session:shell`, ...).
    pub(super) fn retyped(&mut self, id: ChannelId, kind: &str, now: Instant) {
        let interval = self.interval_for(kind);
        if let Some(watched) = self.channels.get_mut(&id) {
            watched.kind = kind.to_owned();
            watched.interval = interval;
            watched.since = now;
        }
    }

    /// A channel is gone.
    pub(super) fn closed(&mut self, id: ChannelId) {
        self.channels.remove(&id);
    }

    fn interval_for(&self, kind: &str) -> Option<Duration> {
        self.rules.iter().find(|r| r.covers(kind)).map(|r| r.interval).filter(|d| !d.is_zero())
    }

    /// Takes the channels' data counters (`activity`) and how many channels are open.
    pub(super) fn observe(
        &mut self,
        now: Instant,
        open_channels: u32,
        activity: impl Fn(ChannelId) -> Option<u64>,
    ) {
        if !self.started {
            return;
        }
        let mut sum = 0u64;
        // A channel the connection no longer knows (refused, freed) leaves the table.
        self.channels.retain(|id, watched| {
            let Some(reading) = activity(*id) else { return false };
            sum = sum.wrapping_add(reading);
            // The first reading is where the channel starts, not a sign of use.
            if watched.reading.is_some_and(|r| r != reading) {
                watched.since = now;
            }
            watched.reading = Some(reading);
            true
        });
        if self.total.1.is_none() || self.total.0 != sum {
            self.total = (sum, Some(now));
        }
        if open_channels > 0 {
            self.unused_since = None;
        } else if self.unused_since.is_none() {
            self.unused_since = Some(now);
        }
    }

    /// When something next runs out, if ever.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        if !self.started {
            return None;
        }
        let channels = self
            .channels
            .values()
            .filter_map(|w| w.interval.and_then(|i| w.since.checked_add(i)))
            .min();
        let global = match (self.global, self.total.1) {
            (Some(interval), Some(since)) if !self.channels.is_empty() => {
                since.checked_add(interval)
            }
            _ => None,
        };
        let unused = match (self.unused, self.unused_since) {
            (Some(interval), Some(since)) => since.checked_add(interval),
            _ => None,
        };
        [channels, global, unused].into_iter().flatten().min()
    }

    /// What has run out by `now` (call [`Self::observe`] first).
    pub(super) fn expired(&mut self, now: Instant) -> Expired {
        let mut out = Expired::default();
        if !self.started {
            return out;
        }
        let due = |since: Instant, interval: Duration| {
            since.checked_add(interval).is_some_and(|at| at <= now)
        };
        let global_due = matches!(
            (self.global, self.total.1),
            (Some(interval), Some(since)) if due(since, interval)
        );
        for (id, watched) in &mut self.channels {
            let own = watched.interval.is_some_and(|i| due(watched.since, i));
            if own || global_due {
                out.channels.push(*id);
                // Asked once: the channel is closing.
                watched.interval = None;
            }
        }
        if global_due {
            self.total.1 = Some(now);
        }
        out.channels.sort_by_key(|id| id.as_u32());
        if let (Some(interval), Some(since)) = (self.unused, self.unused_since) {
            if due(since, interval) {
                out.unused = true;
                self.unused = None;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(entry: &str) -> ChannelTimeout {
        ChannelTimeout::parse(entry).unwrap()
    }

    fn id(n: u32) -> ChannelId {
        ChannelId::from_u32_for_tests(n)
    }

    #[test]
    fn a_silent_command_session_expires_after_its_interval_and_a_busy_one_does_not() {
        let t0 = Instant::now();
        let mut t = Timeouts::default();
        t.configure(&[rule("session:command=1")], None);
        t.start(t0);
        t.opened(id(0), "session", t0);
        t.opened(id(1), "session", t0);
        t.retyped(id(0), "session:command", t0);
        t.retyped(id(1), "session:command", t0);
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(1)));
        let half = t0 + Duration::from_millis(600);
        t.observe(t0, 2, |_| Some(0));
        t.observe(half, 2, |c| Some(if c == id(1) { 10 } else { 0 }));
        let later = t0 + Duration::from_millis(1100);
        t.observe(later, 2, |c| Some(if c == id(1) { 10 } else { 0 }));
        assert_eq!(t.expired(later).channels, [id(0)]);
        assert_eq!(t.poll_timeout(), Some(half + Duration::from_secs(1)));
    }

    #[test]
    fn a_rule_for_another_session_type_leaves_the_channel_alone() {
        let t0 = Instant::now();
        let mut t = Timeouts::default();
        t.configure(&[rule("session:shell=1")], None);
        t.start(t0);
        t.opened(id(0), "session", t0);
        t.retyped(id(0), "session:command", t0);
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.expired(t0 + Duration::from_secs(5)), Expired::default());
    }

    #[test]
    fn the_unused_timeout_runs_only_while_no_channel_is_open() {
        let t0 = Instant::now();
        let mut t = Timeouts::default();
        t.configure(&[], Some(Duration::from_secs(2)));
        assert!(!t.active());
        t.start(t0);
        assert!(t.active());
        t.observe(t0 + Duration::from_secs(1), 1, |_| None);
        assert_eq!(t.poll_timeout(), None);
        let free = t0 + Duration::from_secs(5);
        t.observe(free, 0, |_| None);
        assert_eq!(t.poll_timeout(), Some(free + Duration::from_secs(2)));
        assert!(!t.expired(free + Duration::from_secs(1)).unused);
        assert!(t.expired(free + Duration::from_secs(2)).unused);
    }

    #[test]
    fn parsing_takes_units_and_refuses_entries_without_an_interval() {
        assert_eq!(rule("session=5m").interval, Duration::from_secs(300));
        assert_eq!(ChannelTimeout::parse("session"), None);
        assert_eq!(ChannelTimeout::parse("=5"), None);
        assert!(rule("*=1").covers("direct-tcpip"));
        assert!(rule("session=1").covers("session:subsystem:sftp"));
        assert!(rule("session:subsystem:sftp=1").covers("session:subsystem:sftp"));
        assert!(!rule("session:subsystem:command=1").covers("session:subsystem:sftp"));
    }
}
