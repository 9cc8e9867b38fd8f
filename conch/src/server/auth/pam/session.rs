//! [`PamSession`]: a PAM login session opened and closed by the calling thread, for a
//! per-session privileged process (sshd's monitor) whose main thread must make the calls.

use std::ffi::{CStr, CString};

use pam_client::{Context, ConversationHandler, ErrorCode, Flag, SessionToken};

/// How much of the modules' text is kept (the rest is dropped, with a marker).
const MAX_MESSAGES_LEN: usize = 8192;

/// What a [`PamSession`] is opened for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PamSessionSetup {
    /// The PAM service (`/etc/pam.d/<service>`), `sshd` for sshd.
    pub service: String,
    /// The user logging in.
    pub user: String,
    /// `PAM_TTY`: the terminal's path (`/dev/pts/3`), or `ssh` for a session without one, as
    /// sshd sets it.
    pub tty: String,
    /// `PAM_RHOST`: the client's address.
    pub rhost: Option<String>,
    /// `SSH_CONNECTION` (client address and port, server address and port), put in the PAM
    /// environment as sshd does.
    pub ssh_connection: Option<String>,
}

impl PamSessionSetup {
    /// A session of `service` for `user`, without a terminal (`PAM_TTY` `ssh`).
    pub fn new(service: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            user: user.into(),
            tty: "ssh".to_owned(),
            rhost: None,
            ssh_connection: None,
        }
    }
}

/// An open PAM login session: `pam_start`, the items sshd sets (`PAM_TTY`, `PAM_RHOST`,
/// `PAM_RUSER`), `pam_setcred(PAM_ESTABLISH_CRED)` and `pam_open_session`; dropping it (or
/// [`close`](Self::close)) runs `pam_close_session`, `pam_setcred(PAM_DELETE_CRED)` and
/// `pam_end`.
///
/// Every call happens on the calling thread. Modules such as `pam_loginuid` (which writes
/// `/proc/self/loginuid`, allowed only from a process's main thread) and `pam_limits` act on
/// the calling process: the process that opens the session should then start the user's
/// program as its child, with [`environment`](Self::environment) added (what `pam_env` and
/// others set), and close the session when the child has ended, as sshd's privileged
/// process does. The conversation answers no prompt; what modules say (`pam_motd`,
/// `pam_mail`) is kept for [`take_messages`](Self::take_messages).
///
/// ```no_run
/// use twine_conch::server::{PamSession, PamSessionSetup};
///
/// let mut setup = PamSessionSetup::new("sshd", "alice");
/// setup.tty = "/dev/pts/3".to_owned();
/// let session = PamSession::open(&setup)?;
/// // ... start alice's shell with session.environment() and wait for it ...
/// session.close()?;
/// # Ok::<(), twine_core::Error>(())
/// ```
pub struct PamSession {
    context: Context<Collect>,
    session: Option<SessionToken>,
    user: String,
    service: String,
}

impl PamSession {
    /// Opens the session (blocking: the modules run now, on this thread).
    ///
    /// # Errors
    ///
    /// [`twine_core::ErrorKind::PermissionDenied`] with PAM's reason if the transaction could
    /// not start, an item could not be set, or the credentials or the session were refused.
    pub fn open(setup: &PamSessionSetup) -> Result<Self, twine_core::Error> {
        let fail = |what: &str, err: pam_client::Error| {
            twine_core::Error::new(
                twine_core::ErrorKind::PermissionDenied,
                format!("PAM session for {}: {what}: {err}", setup.user),
            )
        };
        if setup.user.contains('\0') || setup.service.contains('\0') {
            return Err(twine_core::Error::new(
                twine_core::ErrorKind::InvalidInput,
                "a PAM user or service with a NUL byte",
            ));
        }
        let mut context = Context::new(&setup.service, Some(&setup.user), Collect::default())
            .map_err(|err| fail("pam_start", err))?;
        context.set_tty(Some(&setup.tty)).map_err(|err| fail("PAM_TTY", err))?;
        if let Some(rhost) = &setup.rhost {
            context.set_rhost(Some(rhost)).map_err(|err| fail("PAM_RHOST", err))?;
        }
        // SSH names no remote user: the login name stands for it, as in the backend.
        context.set_ruser(Some(&setup.user)).map_err(|err| fail("PAM_RUSER", err))?;
        if let Some(connection) = &setup.ssh_connection {
            context
                .putenv(format!("SSH_CONNECTION={connection}"))
                .map_err(|err| fail("SSH_CONNECTION", err))?;
        }
        let session = context.open_session(Flag::NONE).map_err(|err| fail("open", err))?.leak();
        Ok(Self {
            context,
            session: Some(session),
            user: setup.user.clone(),
            service: setup.service.clone(),
        })
    }

    /// The PAM environment (`pam_getenvlist`), for the user's program.
    pub fn environment(&self) -> Vec<(String, String)> {
        self.context
            .envlist()
            .iter_tuples()
            .filter_map(|(name, value)| {
                Some((name.to_str()?.to_owned(), value.to_str()?.to_owned()))
            })
            .collect()
    }

    /// What the modules said (`PAM_TEXT_INFO` and `PAM_ERROR_MSG`, a line each) since the
    /// last call, as sshd shows it before a login shell.
    pub fn take_messages(&mut self) -> String {
        std::mem::take(&mut self.context.conversation_mut().messages)
    }

    /// The user the session is for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Closes the session now: `pam_close_session`, `pam_setcred(PAM_DELETE_CRED)`, then
    /// `pam_end`.
    ///
    /// # Errors
    ///
    /// [`twine_core::ErrorKind::PermissionDenied`] with PAM's reason if a module failed (the
    /// transaction still ends).
    pub fn close(mut self) -> Result<(), twine_core::Error> {
        self.close_now()
    }

    fn close_now(&mut self) -> Result<(), twine_core::Error> {
        let Some(token) = self.session.take() else { return Ok(()) };
        self.context.unleak_session(token).close(Flag::NONE).map_err(|err| {
            twine_core::Error::new(
                twine_core::ErrorKind::PermissionDenied,
                format!("closing the PAM session of {} ({}): {err}", self.user, self.service),
            )
        })
    }
}

impl Drop for PamSession {
    fn drop(&mut self) {
        if let Err(err) = self.close_now() {
            log::warn!("{err}");
        }
    }
}

impl std::fmt::Debug for PamSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PamSession")
            .field("user", &self.user)
            .field("service", &self.service)
            .field("open", &self.session.is_some())
            .finish()
    }
}

/// A conversation that answers nothing and keeps what the modules say.
#[derive(Default)]
struct Collect {
    messages: String,
}

impl Collect {
    fn remember(&mut self, message: &CStr) {
        let text = message.to_string_lossy();
        if self.messages.len() + text.len() + 1 > MAX_MESSAGES_LEN {
            if !self.messages.ends_with("...\n") {
                self.messages.push_str("...\n");
            }
            return;
        }
        self.messages.push_str(&text);
        self.messages.push('\n');
    }
}

impl ConversationHandler for Collect {
    fn prompt_echo_on(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        Err(ErrorCode::CONV_ERR)
    }

    fn prompt_echo_off(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        Err(ErrorCode::CONV_ERR)
    }

    fn text_info(&mut self, msg: &CStr) {
        self.remember(msg);
    }

    fn error_msg(&mut self, msg: &CStr) {
        self.remember(msg);
    }
}
