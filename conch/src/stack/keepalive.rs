//! OpenSSH's keepalives (`ClientAliveInterval`/`ClientAliveCountMax` on the server,
//! `ServerAliveInterval`/`ServerAliveCountMax` on the client): after an interval with nothing
//! from the peer, a `keepalive@openssh.com` global request that wants a reply; any reply counts
//! as a sign of life; past the count of unanswered probes, the connection ends.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::connection::msgs::GlobalRequest;
use crate::connection::{Connection, RequestId};

/// The keepalive timer of one connection.
#[derive(Debug, Default)]
pub(super) struct Keepalive {
    interval: Option<Duration>,
    count_max: u32,
    /// `sshd` treats a zero `ClientAliveCountMax` as "never give up"; `ssh` gives up at once.
    zero_means_never: bool,
    deadline: Option<Instant>,
    unanswered: u32,
    /// Our probes awaiting a reply, oldest first (bounded by the connection's own limit on
    /// global requests awaiting a reply).
    outstanding: VecDeque<RequestId>,
}

/// The peer left too many probes unanswered.
#[derive(Debug)]
pub(super) struct PeerNotResponding;

impl Keepalive {
    /// A timer that probes after `interval` of silence (`None`: never) and gives up after
    /// `count_max` unanswered probes.
    pub(super) fn new(interval: Option<Duration>, count_max: u32, zero_means_never: bool) -> Self {
        Self {
            interval: interval.filter(|d| !d.is_zero()),
            count_max,
            zero_means_never,
            ..Self::default()
        }
    }

    /// Starts the timer (at authentication success).
    pub(super) fn start(&mut self, now: Instant) {
        self.deadline = self.interval.and_then(|i| now.checked_add(i));
    }

    /// Bytes came from the peer: the silence starts again.
    pub(super) fn input_seen(&mut self, now: Instant) {
        if self.deadline.is_some() {
            self.start(now);
        }
    }

    /// A reply to a global or channel request arrived; `request` names a global one. Returns
    /// whether it answered one of our probes (and should not reach the application).
    pub(super) fn answered(&mut self, request: Option<RequestId>) -> bool {
        self.unanswered = 0;
        let Some(request) = request else { return false };
        let Some(position) = self.outstanding.iter().position(|r| *r == request) else {
            return false;
        };
        self.outstanding.remove(position);
        true
    }

    /// Runs the timer: when the silence has lasted an interval, probes (through `connection`) or,
    /// past the count, gives up.
    pub(super) fn fire(
        &mut self,
        now: Instant,
        connection: &mut Connection,
    ) -> Result<(), PeerNotResponding> {
        let (Some(deadline), Some(interval)) = (self.deadline, self.interval) else {
            return Ok(());
        };
        if now < deadline {
            return Ok(());
        }
        self.unanswered = self.unanswered.saturating_add(1);
        let never = self.zero_means_never && self.count_max == 0;
        if !never && self.unanswered > self.count_max {
            self.deadline = None;
            return Err(PeerNotResponding);
        }
        // A full queue of unanswered requests is itself a sign the peer is not answering; the
        // count above still ends it.
        if let Ok(Some(id)) = connection.send_global_request(&GlobalRequest::Keepalive, true) {
            self.outstanding.push_back(id);
        }
        self.deadline = now.checked_add(interval);
        Ok(())
    }

    /// When the timer next fires.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}
