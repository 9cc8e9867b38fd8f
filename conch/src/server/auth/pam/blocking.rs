//! [`PamDriver`]: the same transactions as [`PamBackend`](super::PamBackend), waited for on
//! the calling thread, for a privilege-separated monitor (root, no reactor, one thread per
//! worker) that relays keyboard-interactive rounds to its worker.

use std::net::IpAddr;
use std::sync::mpsc;

use super::reply::wait;
use super::transaction::{Answers, Command, Round, Setup, Threads, Transaction, Verdict};
use crate::server::privsep::PamStep;
use crate::userauth::{InfoRequest, Password};

/// PAM authentication and account checks for a monitor: each call blocks until PAM answers
/// (a keyboard-interactive round blocks until the next prompt, not for the client's answer:
/// a [`PamConversation`] holds the transaction in between, on its own thread).
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

impl std::fmt::Debug for PamConversation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PamConversation").field("user", &self.transaction.user()).finish()
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

    fn start(&self, user: &str, peer: Option<IpAddr>) -> Result<Transaction, String> {
        if user.contains('\0') {
            return Err("a user name with a NUL byte cannot go to PAM".to_owned());
        }
        let setup = Setup {
            service: self.service.clone(),
            user: user.to_owned(),
            rhost: peer.map_or_else(|| "UNKNOWN".to_owned(), |ip| ip.to_string()),
            ssh_connection: None,
            empty_passwords: self.empty_passwords,
            root_passwords: self.root_passwords,
        };
        Transaction::start(setup, &self.threads, self.max_transactions).map_err(|e| e.to_string())
    }

    /// Starts a keyboard-interactive conversation for `user`: its first round (and the
    /// conversation, waiting for the answers), or the outcome.
    pub fn converse(&self, user: &str, peer: Option<IpAddr>) -> (Option<PamConversation>, PamStep) {
        let transaction = match self.start(user, peer) {
            Ok(transaction) => transaction,
            Err(reason) => return (None, PamStep::Refused(reason)),
        };
        let (answers, inbox) = mpsc::channel();
        let round = wait(|reply| transaction.send(Command::Converse { answers: inbox, reply }));
        PamConversation { transaction, answers, verdict: None }.next(round)
    }

    /// The password method: `pam_authenticate` with the password, then `pam_acct_mgmt`. An
    /// expired password is refused (the relay cannot ask for a new one).
    pub fn password(&self, user: &str, peer: Option<IpAddr>, password: &[u8]) -> PamStep {
        let transaction = match self.start(user, peer) {
            Ok(transaction) => transaction,
            Err(reason) => return PamStep::Refused(reason),
        };
        let password = Password::new(password);
        let verdict = wait(|reply| {
            transaction.send(Command::Authenticate { password, new_password: None, reply });
        });
        conclude(verdict)
    }

    /// `pam_acct_mgmt` for a user let in some other way (a public key).
    pub fn check_account(&self, user: &str, peer: Option<IpAddr>) -> PamStep {
        let transaction = match self.start(user, peer) {
            Ok(transaction) => transaction,
            Err(reason) => return PamStep::Refused(reason),
        };
        match wait(|reply| transaction.send(Command::CheckAccount { reply })) {
            Some(Ok(())) => PamStep::Accepted,
            Some(Err(reason)) => PamStep::Refused(format!("account refused: {reason}")),
            None => PamStep::Refused("the PAM thread ended without an answer".to_owned()),
        }
    }
}

impl PamConversation {
    /// The client's answers to the last round: the next round (and the conversation), or the
    /// outcome.
    pub fn respond(mut self, responses: &[String]) -> (Option<Self>, PamStep) {
        if let Some(verdict) = self.verdict.take() {
            return (None, conclude(Some(verdict)));
        }
        let responses = responses.iter().map(|r| Password::new(r.as_bytes())).collect();
        let answers = self.answers.clone();
        let round = wait(|next| {
            if answers.send(Answers { responses, next }).is_err() {
                log::debug!("PAM conversation of {} already ended", self.transaction.user());
            }
        });
        self.next(round)
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
