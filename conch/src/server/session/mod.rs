//! Session backends: what a `session` channel runs once the client asks for a shell, a
//! command or a subsystem.
//!
//! The server adapter collects a session's setup requests (`pty-req`, `env` filtered by the
//! configured `AcceptEnv` patterns), applies the login's [`Restrictions`] (a forced command
//! replaces whatever was asked, and the original goes to `SSH_ORIGINAL_COMMAND`; `no-pty`
//! refuses `pty-req`), and on `shell`, `exec` or `subsystem` calls
//! [`SessionBackend::start`] with a [`SessionStart`]: the [`SessionInfo`] and the channel, to
//! [`attach`](SessionChannel::attach) a protocol to. The backend returns a [`SessionControl`]
//! that hears `window-change`, `signal` and `break` for the running session.
//!
//! Two backends:
//!
//! - [`UnixSessions`]: the user's login shell on a pty, `shell -c command` over pipes (standard
//!   error as extended data) or on the pty, subsystems (`sftp-server`), with the exit status
//!   or signal reported before CLOSE; the privileged part is a [`SessionSpawner`].
//! - [`InProcessSessions`]: the application installs its own [`Protocol`] on the channel (a
//!   [`conch::terminal`](crate::terminal) application, a `LineReceiver`).

mod in_process;
mod modes;
mod unix;

#[cfg(test)]
mod tests;

pub use in_process::InProcessSessions;
pub use unix::{KeptGroups, LocalSpawner, SessionSpawner, SpawnPlan, UnixSessions, GROUPS_KEPT};

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use twine_core::Protocol;

use super::channel::Channels;
use super::{Account, ChannelTransport, ConnectionFacts, Restrictions};
use crate::connection::msgs::{TerminalModes, WindowSize};
use crate::connection::ChannelId;
use crate::userauth::Method;

/// Runs sessions (see the [module documentation](self)).
pub trait SessionBackend {
    /// The client asked session `start.info` to run: attach a protocol to `start.channel` and
    /// return the session's control, or fail (the client's request gets `CHANNEL_FAILURE`).
    ///
    /// # Errors
    ///
    /// Whatever kept the session from starting: a missing account, a failed spawn, an unknown
    /// subsystem.
    fn start(&self, start: SessionStart) -> Result<Box<dyn SessionControl>, twine_core::Error>;
}

impl<B: SessionBackend + ?Sized> SessionBackend for Rc<B> {
    fn start(&self, start: SessionStart) -> Result<Box<dyn SessionControl>, twine_core::Error> {
        (**self).start(start)
    }
}

impl<B: SessionBackend + ?Sized> SessionBackend for Box<B> {
    fn start(&self, start: SessionStart) -> Result<Box<dyn SessionControl>, twine_core::Error> {
        (**self).start(start)
    }
}

/// A running session's controls: the session requests that may come after it started. Each
/// returns whether it was done (the reply the client gets, if it wants one).
pub trait SessionControl {
    /// `window-change`: the client's terminal was resized.
    fn window_changed(&mut self, size: WindowSize) {
        let _ = size;
    }

    /// `signal`: deliver the signal named `name` (`INT`, `TERM`, ... without `SIG`).
    fn signal(&mut self, name: &str) -> bool {
        let _ = name;
        false
    }

    /// `break` (RFC 4335): send a break of `length_ms` milliseconds.
    fn break_requested(&mut self, length_ms: u32) -> bool {
        let _ = length_ms;
        false
    }

    /// The SSH connection ended while the session ran: release what it holds (a Unix session
    /// hangs its process group up).
    fn connection_ended(&mut self) {}
}

/// A session control that does nothing: for sessions that need no controls.
#[derive(Debug, Default)]
pub struct NoControl;

impl SessionControl for NoControl {}

/// A user who is logged in: who, as which account, under which restrictions.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Login {
    /// The user name the client authenticated as.
    pub user: String,
    /// The system account, when the user has one (`None` for users of an application's own
    /// table).
    pub account: Option<Account>,
    /// What the sessions may do (every authentication step's restrictions combined).
    pub restrictions: Restrictions,
    /// The methods that authenticated the user, in order.
    pub methods: Vec<Method>,
    /// Variables the auth backend's login session adds (PAM's environment).
    pub environment: Vec<(String, String)>,
    /// The connection.
    pub connection: Rc<ConnectionFacts>,
}

impl Login {
    /// A login of `user` on `connection` with `restrictions`.
    pub fn new(
        user: impl Into<String>,
        restrictions: Restrictions,
        connection: Rc<ConnectionFacts>,
    ) -> Self {
        Self {
            user: user.into(),
            account: None,
            restrictions,
            methods: Vec::new(),
            environment: Vec::new(),
            connection,
        }
    }

    /// The same login with its system account.
    #[must_use]
    pub fn with_account(mut self, account: Option<Account>) -> Self {
        self.account = account;
        self
    }
}

/// What the client asked a session to run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionCommand {
    /// `shell`: the user's login shell (or the application's interactive session).
    Shell,
    /// `exec`: a command line.
    Exec(Vec<u8>),
    /// `subsystem`: a named subsystem such as `sftp`.
    Subsystem(String),
}

/// The terminal a session asked for with `pty-req`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtyRequest {
    /// `TERM`.
    pub term: String,
    /// The initial size.
    pub size: WindowSize,
    /// The terminal modes.
    pub modes: TerminalModes,
}

/// An in-process session's window-change callback.
type ResizeCallback = Box<dyn FnMut(WindowSize)>;

/// Everything known about a session when it starts.
pub struct SessionInfo {
    /// Who is logged in.
    pub login: Login,
    /// What to run: with a forced command, that command (as [`SessionCommand::Exec`]).
    pub command: SessionCommand,
    /// Whether `command` was forced by the login's restrictions.
    pub forced: bool,
    /// The client's command when a forced command replaced it (`SSH_ORIGINAL_COMMAND`).
    pub original_command: Option<Vec<u8>>,
    /// The terminal, if the client asked for one.
    pub pty: Option<PtyRequest>,
    /// The `env` requests the server accepted, in order.
    pub env: Vec<(String, Vec<u8>)>,
    resize: RefCell<Option<ResizeCallback>>,
    exit_status: Rc<Cell<u32>>,
}

impl SessionInfo {
    /// A session of `login` running `command`.
    pub fn new(login: Login, command: SessionCommand) -> Self {
        Self {
            login,
            command,
            forced: false,
            original_command: None,
            pty: None,
            env: Vec::new(),
            resize: RefCell::new(None),
            exit_status: Rc::new(Cell::new(0)),
        }
    }

    /// Applies the login's forced command: it replaces `command`, which is kept as the
    /// original.
    #[must_use]
    pub fn with_forced_command(mut self) -> Self {
        let Some(forced) = self.login.restrictions.forced_command.clone() else { return self };
        let original =
            std::mem::replace(&mut self.command, SessionCommand::Exec(forced.into_bytes()));
        self.original_command = match original {
            SessionCommand::Exec(command) => Some(command),
            SessionCommand::Subsystem(name) => Some(name.into_bytes()),
            SessionCommand::Shell => None,
        };
        self.forced = true;
        self
    }

    /// The terminal type, when a pty was asked for.
    pub fn term(&self) -> Option<&str> {
        self.pty.as_ref().map(|pty| pty.term.as_str())
    }

    /// The terminal size, when a pty was asked for.
    pub fn window_size(&self) -> Option<WindowSize> {
        self.pty.as_ref().map(|pty| pty.size)
    }

    /// Calls `f` with each new terminal size (`window-change`), for in-process sessions.
    pub fn on_window_change(&self, f: impl FnMut(WindowSize) + 'static) {
        *self.resize.borrow_mut() = Some(Box::new(f));
    }

    /// The exit status an in-process session reports when its protocol ends the channel with
    /// [`lose_connection`](twine_core::Transport::lose_connection) (default 0; `ssh` exits
    /// with it). Set it before ending the session.
    pub fn set_exit_status(&self, code: u32) {
        self.exit_status.set(code);
    }

    pub(crate) fn exit_status(&self) -> Rc<Cell<u32>> {
        Rc::clone(&self.exit_status)
    }

    pub(crate) fn window_changed(&self, size: WindowSize) {
        let callback = self.resize.borrow_mut().take();
        if let Some(mut callback) = callback {
            callback(size);
            let mut slot = self.resize.borrow_mut();
            if slot.is_none() {
                *slot = Some(callback);
            }
        }
    }
}

impl fmt::Debug for SessionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionInfo")
            .field("user", &self.login.user)
            .field("command", &self.command)
            .field("forced", &self.forced)
            .field("pty", &self.pty)
            .field("env", &self.env.len())
            .finish_non_exhaustive()
    }
}

/// The channel a starting session runs on: attach the session's protocol to it.
pub struct SessionChannel {
    channels: Rc<Channels>,
    id: ChannelId,
}

impl SessionChannel {
    pub(crate) fn new(channels: Rc<Channels>, id: ChannelId) -> Self {
        Self { channels, id }
    }

    /// Runs `protocol` over the channel; it gets `connection_made` from the loop. The returned
    /// transport also writes standard error and ends the channel with an exit status.
    pub fn attach(self, protocol: impl Protocol + 'static) -> Rc<ChannelTransport> {
        self.channels.attach(self.id, Box::new(protocol))
    }
}

impl fmt::Debug for SessionChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionChannel").field("id", &self.id).finish()
    }
}

/// A session about to start: what to run, and where.
#[derive(Debug)]
#[non_exhaustive]
pub struct SessionStart {
    /// What to run, for whom.
    pub info: Rc<SessionInfo>,
    /// The channel to run it on.
    pub channel: SessionChannel,
}

impl SessionStart {
    /// A session start, as the server adapter builds it.
    pub fn new(info: Rc<SessionInfo>, channel: SessionChannel) -> Self {
        Self { info, channel }
    }
}

/// Whether an `env` request's variable `name` is accepted under `patterns` (sshd's
/// `AcceptEnv`: globs with `*` and `?`; none accepts nothing).
pub fn env_accepted(name: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|pattern| crate::keys::pattern::match_pattern(name, pattern))
}
