//! From key exchange to authenticated: the host key decision and user authentication, each
//! question answered through a Deferred (the policy, an identity signer, the prompter).

use std::rc::Rc;
use std::time::{Duration, Instant};

use twine_core::time::DelayedCall;
use twine_core::Deferred;

use super::connection::{Core, Shared};
use super::engine::EngineEvent;
use super::host_key::{HostKeyPolicy, HostKeyQuery};
use super::identity::IdentitySigner;
use super::prompt::{PasswordPrompt, Prompter};
use super::{ClientError, Connection, Pending};
use crate::keys::{FingerprintHash, PublicKey, SignatureAlgorithm};
use crate::userauth::{self, ClientEvent, PasswordAnswer};
use crate::wire::DisconnectReason;

/// The handshake's state, held by the driver until authentication ends.
pub(crate) struct Handshake {
    /// The host as the policy checks it (the `HostKeyAlias` when set).
    host: String,
    /// The host as the user named it (for prompts).
    display_host: String,
    port: u16,
    /// The port the host key is looked up with (22 under a `HostKeyAlias`, as OpenSSH does).
    key_port: u16,
    user: String,
    policy: Rc<dyn HostKeyPolicy>,
    prompter: Rc<dyn Prompter>,
    signers: Vec<Rc<dyn IdentitySigner>>,
    /// The keys offered, with the signer holding each.
    keys: Vec<(PublicKey, usize)>,
    /// The certified keys of the certificates offered, with their signer's index.
    cert_keys: Vec<(PublicKey, usize)>,
    /// Signers whose key lists have not arrived yet.
    keys_outstanding: usize,
    /// The policy's answer, held until the key lists are in (so that every key is offered
    /// before user authentication starts).
    decision: Option<(bool, HostKeyQuery)>,
    /// How long the version exchange and key exchange may take (`ConnectTimeout`).
    timeout: Duration,
    timer: Option<DelayedCall>,
    connected: Pending<Connection>,
}

/// What the handshake needs to know, from the client configuration.
pub(crate) struct HandshakeParams {
    pub(crate) host: String,
    pub(crate) display_host: String,
    pub(crate) port: u16,
    pub(crate) key_port: u16,
    pub(crate) user: String,
    pub(crate) policy: Rc<dyn HostKeyPolicy>,
    pub(crate) prompter: Rc<dyn Prompter>,
    pub(crate) signers: Vec<Rc<dyn IdentitySigner>>,
    pub(crate) timeout: Duration,
}

impl Handshake {
    pub(crate) fn new(params: HandshakeParams, connected: Pending<Connection>) -> Self {
        let keys_outstanding = params.signers.len();
        Self {
            host: params.host,
            display_host: params.display_host,
            port: params.port,
            key_port: params.key_port,
            user: params.user,
            policy: params.policy,
            prompter: params.prompter,
            signers: params.signers,
            keys: Vec::new(),
            cert_keys: Vec::new(),
            keys_outstanding,
            decision: None,
            timeout: params.timeout,
            timer: None,
            connected,
        }
    }

    /// Asks every signer for its keys; called once the driver exists.
    pub(crate) fn start(shared: &Shared) {
        let signers = match shared.handshake.borrow().as_ref() {
            Some(handshake) => handshake.signers.clone(),
            None => return,
        };
        for (index, signer) in signers.iter().enumerate() {
            let certificates = signer.certificates();
            if !certificates.is_empty() {
                with_handshake(shared, |handshake| {
                    let mut core = shared.core.borrow_mut();
                    for cert in certificates {
                        handshake.cert_keys.push((cert.key.clone(), index));
                        core.engine.add_certificate(cert);
                    }
                });
            }
            let keys = signer.public_keys(&shared.scheduler);
            let weak = shared.me.clone();
            let _done: Deferred<()> = keys.then(move |keys| {
                let Some(shared) = weak.upgrade() else { return Ok(()) };
                let keys = keys.unwrap_or_default();
                with_handshake(&shared, |handshake| {
                    let mut core = shared.core.borrow_mut();
                    for key in keys {
                        if handshake.keys.iter().all(|(known, _)| *known != key) {
                            core.engine.add_identity(key.clone());
                            handshake.keys.push((key, index));
                        }
                    }
                    handshake.keys_outstanding = handshake.keys_outstanding.saturating_sub(1);
                });
                shared.drive();
                Ok(())
            });
        }
    }

    /// The byte stream is up: the server must prove its host key within the timeout, as
    /// OpenSSH's `ConnectTimeout` covers the banner and key exchanges.
    pub(crate) fn stream_up(&mut self, shared: &Shared) {
        let weak = shared.me.clone();
        let (host, port) = (self.display_host.clone(), self.port);
        let call = shared.scheduler.call_later_boxed(
            self.timeout,
            Box::new(move || {
                let Some(shared) = weak.upgrade() else { return };
                let error = twine_core::Error::new(
                    twine_core::ErrorKind::TimedOut,
                    "banner and key exchange",
                );
                shared.fail(ClientError::Connect { host, port, error });
            }),
        );
        self.timer = Some(call);
    }

    /// Whether the handshake is over (its waiter settled).
    pub(crate) fn finished(&self) -> bool {
        self.connected.is_settled()
    }

    /// Settles the waiter with `reason`, unless already settled.
    pub(crate) fn fail(&self, reason: ClientError) {
        if let Some(timer) = &self.timer {
            timer.cancel();
        }
        self.connected.settle(Err(reason));
    }

    /// Called on every drive with the stack: applies a held host key decision once every
    /// signer's keys are in.
    pub(crate) fn poll_stack(&mut self, core: &mut Core, now: Instant) {
        if self.keys_outstanding > 0 {
            return;
        }
        if let Some((accept, _)) = self.decision.take() {
            if let Err(err) = core.engine.host_key_decided(now, accept) {
                log::debug!("host key decision refused: {err}");
            }
        }
    }

    /// Acts on a handshake event; answers come back later through the driver.
    pub(crate) fn handle(&mut self, shared: &Shared, event: EngineEvent) {
        match event {
            EngineEvent::HostKeyReceived { key, algorithm } => {
                self.host_key(shared, key, algorithm)
            }
            EngineEvent::Auth(event) => self.auth(shared, event),
            _ => {}
        }
    }

    fn host_key(&mut self, shared: &Shared, key: PublicKey, algorithm: SignatureAlgorithm) {
        // The server proved its key: what follows waits for the user, not for the network.
        if let Some(timer) = self.timer.take() {
            timer.cancel();
        }
        let query = HostKeyQuery::new(&self.host, self.key_port, key, algorithm);
        let answer = self.policy.check_host_key(&shared.scheduler, &query);
        let weak = shared.me.clone();
        let _done: Deferred<()> = answer.then(move |accept| {
            let Some(shared) = weak.upgrade() else { return Ok(()) };
            let accept = accept.unwrap_or(false);
            if !accept {
                let fingerprint = query.key.fingerprint(FingerprintHash::Sha256).to_string();
                let reason = ClientError::HostKeyRejected {
                    host: query.host.clone(),
                    port: query.port,
                    fingerprint,
                };
                let now = shared.now();
                let result = shared.core.borrow_mut().engine.host_key_decided(now, false);
                if let Err(err) = result {
                    log::debug!("host key refusal not sent: {err}");
                }
                shared.fail(reason);
                return Ok(());
            }
            with_handshake(&shared, |handshake| handshake.decision = Some((true, query)));
            shared.drive();
            Ok(())
        });
    }

    fn auth(&mut self, shared: &Shared, event: ClientEvent) {
        match event {
            ClientEvent::Banner { message } => self.prompter.banner(&message),
            ClientEvent::SignatureRequested { key, algorithm, data } => {
                let signer = self
                    .keys
                    .iter()
                    .chain(&self.cert_keys)
                    .find(|(known, _)| *known == key)
                    .and_then(|(_, index)| self.signers.get(*index))
                    .cloned();
                let signature = match signer {
                    Some(signer) => signer.sign(&shared.scheduler, &key, algorithm, &data),
                    None => Deferred::succeed(Rc::clone(&shared.scheduler), None),
                };
                answer(shared, signature, |userauth, signature| {
                    userauth.signature_ready(signature)
                });
            }
            ClientEvent::PasswordRequested { attempt, change_prompt } => {
                if attempt > 1 {
                    self.prompter.notice("Permission denied, please try again.");
                }
                let prompt = PasswordPrompt {
                    user: self.user.clone(),
                    host: self.display_host.clone(),
                    attempt,
                    change_prompt,
                };
                let password = self.prompter.password(&shared.scheduler, &prompt);
                answer(shared, password, |userauth, password: Option<PasswordAnswer>| {
                    userauth.password_ready(password)
                });
            }
            ClientEvent::InfoRequested(request) => {
                let responses = self.prompter.keyboard_interactive(&shared.scheduler, &request);
                answer(shared, responses, |userauth, responses| {
                    userauth.info_responses_ready(responses)
                });
            }
            ClientEvent::PartialSuccess { method } => {
                log::info!("Authenticated using \"{method}\" with partial success.");
            }
            ClientEvent::Succeeded { method } => {
                log::info!("Authenticated to {} using \"{method}\".", self.display_host);
                match shared.handle() {
                    Some(connection) => self.connected.settle(Ok(connection)),
                    None => self.connected.settle(Err(ClientError::ConnectionLost(None))),
                }
            }
            ClientEvent::Failed { methods_left } => {
                let reason = ClientError::AuthFailed { methods_left };
                shared.core.borrow_mut().engine.disconnect(
                    DisconnectReason::NO_MORE_AUTH_METHODS_AVAILABLE,
                    "No more authentication methods available",
                );
                shared.fail(reason);
            }
        }
    }
}

/// Runs `f` on the handshake if it is still there.
fn with_handshake(shared: &Shared, f: impl FnOnce(&mut Handshake)) {
    if let Some(handshake) = shared.handshake.borrow_mut().as_mut() {
        f(handshake);
    }
}

/// Hands an answer to the user authentication layer once it arrives, then drives.
fn answer<T: Default + 'static>(
    shared: &Shared,
    deferred: Deferred<T>,
    apply: impl FnOnce(&mut userauth::Client, T) -> Result<(), crate::Error> + 'static,
) {
    let weak = shared.me.clone();
    let _done: Deferred<()> = deferred.then(move |value| {
        let Some(shared) = weak.upgrade() else { return Ok(()) };
        let value = value.unwrap_or_default();
        let result = match shared.core.borrow_mut().engine.userauth_mut() {
            Some(userauth) => apply(userauth, value),
            None => Ok(()),
        };
        if let Err(err) = result {
            log::debug!("authentication answer refused: {err}");
        }
        shared.drive();
        Ok(())
    });
}
