//! [`PamDriver`]: the same transactions as [`PamBackend`](super::PamBackend), for a
//! privilege-separated monitor (root, no reactor, one thread per worker) that relays
//! keyboard-interactive rounds to its worker. Nothing here waits for PAM: each call hands its
//! question to the transaction's thread and returns a [`PamPending`] to poll, so the monitor
//! serves the worker's other connections while PAM works (a failed password's delay,
//! `pam_faildelay`, lasts seconds).

use std::net::IpAddr;
use std::sync::mpsc;

use super::reply::later;
use super::transaction::{Answers, Command, Round, Setup, Threads, Transaction, Verdict};
use crate::server::privsep::PamStep;
use crate::userauth::{InfoRequest, Password};

/// PAM authentication and account checks for a monitor (see the module).
#[derive(Clone, Debug)]
pub struct PamDriver {
    service: String,
    empty_passwords: bool,
    root_passwords: bool,
    max_transactions: usize,
    threads: Threads,
}

/// A keyboard-interactive conversation between rounds: its transaction's thread waits for the
/// client's answers. Dropped, the conversation fails and the thread ends.
pub struct PamConversation {
    transaction: Transaction,
    answers: mpsc::Sender<Answers>,
    /// PAM's verdict, when a last round shows what it said before it.
    verdict: Option<Verdict>,
}

/// A PAM call whose answer may not have come yet: [`poll`](Self::poll) it. Dropped, the
/// transaction ends (its thread unwinds once PAM returns).
pub struct PamPending {
    state: Pending,
}

enum Pending {
    /// Answered already (a transaction that could not start, a kept verdict).
    Ready(PamStep),
    /// A conversation's next round.
    Round { conversation: PamConversation, round: mpsc::Receiver<Round> },
    /// A password's verdict.
    Verdict { _transaction: Transaction, verdict: mpsc::Receiver<Verdict> },
    /// An account check.
    Account { _transaction: Transaction, status: mpsc::Receiver<Result<(), String>> },
}

impl std::fmt::Debug for PamConversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PamConversation").field("user", &self.transaction.user()).finish()
    }
}

impl std::fmt::Debug for PamPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.state {
            Pending::Ready(step) => return f.debug_tuple("PamPending").field(step).finish(),
            Pending::Round { .. } => "round",
            Pending::Verdict { .. } => "password",
            Pending::Account { .. } => "account",
        };
        f.debug_tuple("PamPending").field(&what).finish()
    }
}

impl PamDriver {
    /// A driver for the PAM service `service`, with no empty passwords and root allowed.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            empty_passwords: false,
            root_passwords: true,
            max_transactions: super::PamBackend::DEFAULT_MAX_TRANSACTIONS,
            threads: Threads::default(),
        }
    }

    /// Whether PAM may accept an empty password (`PermitEmptyPasswords`).
    #[must_use]
    pub fn with_empty_passwords(mut self, permitted: bool) -> Self {
        self.empty_passwords = permitted;
        self
    }

    /// Whether root may log in by password or keyboard-interactive (`PermitRootLogin yes`).
    #[must_use]
    pub fn with_root_passwords(mut self, permitted: bool) -> Self {
        self.root_passwords = permitted;
        self
    }

    /// How many transactions (threads) may run at once.
    #[must_use]
    pub fn with_max_transactions(mut self, limit: usize) -> Self {
        self.max_transactions = limit;
        self
    }

    /// How many transaction threads run now.
    pub fn running_transactions(&self) -> usize {
        self.threads.running()
    }

    fn start(&self, user: &str, peer: Option<IpAddr>) -> Result<Transaction, PamPending> {
        let refused =
            |reason: String| PamPending { state: Pending::Ready(PamStep::Refused(reason)) };
        if user.contains('\0') {
            return Err(refused("a user name with a NUL byte cannot go to PAM".to_owned()));
        }
        let setup = Setup {
            service: self.service.clone(),
            user: user.to_owned(),
            rhost: peer.map_or_else(|| "UNKNOWN".to_owned(), |ip| ip.to_string()),
            ssh_connection: None,
            empty_passwords: self.empty_passwords,
            root_passwords: self.root_passwords,
        };
        Transaction::start(setup, &self.threads, self.max_transactions)
            .map_err(|e| refused(e.to_string()))
    }

    /// Starts a keyboard-interactive conversation for `user`; its first round comes from
    /// polling.
    pub fn converse(&self, user: &str, peer: Option<IpAddr>) -> PamPending {
        let transaction = match self.start(user, peer) {
            Ok(transaction) => transaction,
            Err(refused) => return refused,
        };
        let (answers, inbox) = mpsc::channel();
        let round = later(|reply| transaction.send(Command::Converse { answers: inbox, reply }));
        let conversation = PamConversation { transaction, answers, verdict: None };
        PamPending { state: Pending::Round { conversation, round } }
    }

    /// The password method: `pam_authenticate` with the password, then `pam_acct_mgmt`. An
    /// expired password is refused (the relay cannot ask for a new one).
    pub fn password(&self, user: &str, peer: Option<IpAddr>, password: &[u8]) -> PamPending {
        let transaction = match self.start(user, peer) {
            Ok(transaction) => transaction,
            Err(refused) => return refused,
        };
        let password = Password::new(password);
        let verdict = later(|reply| {
            transaction.send(Command::Authenticate { password, new_password: None, reply });
        });
        PamPending { state: Pending::Verdict { _transaction: transaction, verdict } }
    }

    /// `pam_acct_mgmt` for a user let in some other way (a public key).
    pub fn check_account(&self, user: &str, peer: Option<IpAddr>) -> PamPending {
        let transaction = match self.start(user, peer) {
            Ok(transaction) => transaction,
            Err(refused) => return refused,
        };
        let status = later(|reply| transaction.send(Command::CheckAccount { reply }));
        PamPending { state: Pending::Account { _transaction: transaction, status } }
    }
}

impl PamConversation {
    /// The client's answers to the last round; the next round or the outcome comes from
    /// polling.
    pub fn respond(mut self, responses: &[String]) -> PamPending {
        if let Some(verdict) = self.verdict.take() {
            return PamPending { state: Pending::Ready(conclude(Some(verdict))) };
        }
        let responses = responses.iter().map(|r| Password::new(r.as_bytes())).collect();
        let answers = self.answers.clone();
        let round = later(|next| {
            if answers.send(Answers { responses, next }).is_err() {
                log::debug!("PAM conversation of {} already ended", self.transaction.user());
            }
        });
        PamPending { state: Pending::Round { conversation: self, round } }
    }

    /// Turns PAM's next round into a step; what PAM said last is shown before the verdict,
    /// as a round without prompts (as [`PamBackend`](super::PamBackend) does).
    fn next(mut self, round: Option<Round>) -> (Option<Self>, PamStep) {
        match round {
            Some(Round::Ask(info)) => (Some(self), PamStep::Ask(info)),
            Some(Round::Done { verdict, messages }) if !messages.trim().is_empty() => {
                self.verdict = Some(verdict);
                let instruction = messages.trim_end().to_owned();
                (Some(self), PamStep::Ask(InfoRequest { instruction, ..InfoRequest::default() }))
            }
            Some(Round::Done { verdict, .. }) => (None, conclude(Some(verdict))),
            None => (None, conclude(None)),
        }
    }
}

impl PamPending {
    /// PAM's answer, if it has come: the step, and for a round the conversation that waits
    /// for the client's answers. `Err(self)` while PAM works.
    ///
    /// # Errors
    ///
    /// This call again, while there is no answer yet.
    pub fn poll(self) -> Result<(Option<PamConversation>, PamStep), Self> {
        /// The answer on `receiver`: `Ok(None)` if the thread dropped it unanswered.
        fn take<T>(receiver: &mpsc::Receiver<T>) -> Option<Option<T>> {
            match receiver.try_recv() {
                Ok(value) => Some(Some(value)),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(None),
            }
        }
        match self.state {
            Pending::Ready(step) => Ok((None, step)),
            Pending::Round { conversation, round } => match take(&round) {
                Some(answer) => Ok(conversation.next(answer)),
                None => Err(Self { state: Pending::Round { conversation, round } }),
            },
            Pending::Verdict { _transaction, verdict } => match take(&verdict) {
                Some(answer) => Ok((None, conclude(answer))),
                None => Err(Self { state: Pending::Verdict { _transaction, verdict } }),
            },
            Pending::Account { _transaction, status } => match take(&status) {
                Some(Some(Ok(()))) => Ok((None, PamStep::Accepted)),
                Some(Some(Err(reason))) => {
                    Ok((None, PamStep::Refused(format!("account refused: {reason}"))))
                }
                Some(None) => Ok((None, conclude(None))),
                None => Err(Self { state: Pending::Account { _transaction, status } }),
            },
        }
    }

    /// Waits (on this thread) for PAM's answer.
    pub fn wait(mut self) -> (Option<PamConversation>, PamStep) {
        loop {
            match self.poll() {
                Ok(answer) => return answer,
                Err(pending) => {
                    self = pending;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }
}

fn conclude(verdict: Option<Verdict>) -> PamStep {
    match verdict {
        Some(Verdict::Accepted) => PamStep::Accepted,
        Some(Verdict::Rejected(reason)) => PamStep::Refused(reason),
        Some(Verdict::AccountDenied(reason)) => {
            PamStep::Refused(format!("account refused: {reason}"))
        }
        Some(Verdict::PasswordExpired { .. }) => {
            PamStep::Refused("the password has expired and must be changed".to_owned())
        }
        None => PamStep::Refused("the PAM thread ended without an answer".to_owned()),
    }
}
