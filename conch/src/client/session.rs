//! Sessions: a command, a shell or a subsystem on the server, with its standard streams and its
//! exit status.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use twine_core::{Protocol, Transport};

use super::channel::{ChannelInner, ChannelKind as Kind, StderrSink};
use super::{ClientError, Connection, Pending};
use crate::connection::msgs::{ChannelKind, ChannelRequest, TerminalModes, WindowSize};
use crate::connection::ChannelId;

/// How a session ended, as the server reported it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitStatus {
    /// `exit-status`: the command exited with this code.
    Code(u32),
    /// `exit-signal`: the command was killed by a signal.
    Signal {
        /// The signal's name without `SIG` (`TERM`, `KILL`).
        name: String,
        /// Whether it dumped core.
        core_dumped: bool,
        /// The server's explanation, if any.
        message: String,
    },
    /// The channel closed without either.
    Unknown,
}

impl ExitStatus {
    /// The exit code, if the command exited normally.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Code(code) => Some(*code),
            _ => None,
        }
    }

    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.code() == Some(0)
    }

    /// The status OpenSSH's `ssh` exits with: the remote code (its low byte), or 255 after a
    /// signal or without a status.
    pub fn openssh_exit_code(&self) -> u8 {
        match self {
            Self::Code(code) => u8::try_from(code & 0xff).unwrap_or(u8::MAX),
            _ => u8::MAX,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit status {code}"),
            Self::Signal { name, core_dumped, .. } => {
                write!(f, "killed by signal {name}")?;
                if *core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
            Self::Unknown => f.write_str("no exit status"),
        }
    }
}

/// A pseudo-terminal to ask for (`pty-req`, RFC 4254 §6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PtyRequest {
    /// `TERM` (`xterm-256color`, `vt100`).
    pub term: String,
    /// The terminal's size.
    pub size: WindowSize,
    /// Terminal modes (RFC 4254 §8); empty keeps the server's defaults.
    pub modes: TerminalModes,
}

impl PtyRequest {
    /// A `term` terminal of `cols` × `rows` characters with the server's default modes.
    pub fn new(term: &str, cols: u32, rows: u32) -> Self {
        Self {
            term: term.to_owned(),
            size: WindowSize { cols, rows, width_px: 0, height_px: 0 },
            modes: TerminalModes::new(),
        }
    }

    /// The same request with these terminal modes.
    #[must_use]
    pub fn with_modes(mut self, modes: TerminalModes) -> Self {
        self.modes = modes;
        self
    }
}

/// What a session runs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Start {
    Exec(Vec<u8>),
    Shell,
    Subsystem(String),
}

impl Start {
    fn request(&self) -> ChannelRequest {
        match self {
            Self::Exec(command) => ChannelRequest::Exec { command: command.clone() },
            Self::Shell => ChannelRequest::Shell,
            Self::Subsystem(name) => ChannelRequest::Subsystem { name: name.clone() },
        }
    }
}

/// Prepares a session: environment, pty, where standard error goes; then starts it with
/// [`exec`](Self::exec), [`shell`](Self::shell) or [`subsystem`](Self::subsystem).
///
/// The protocol given to those gets `connection_made` with the session's channel as its
/// transport once the server accepted the start request: standard output arrives as
/// `data_received`, writes go to standard input, `write_eof` ends it, and `connection_lost`
/// follows when the session ends. Standard error goes to the sink set with
/// [`stderr`](Self::stderr), or is discarded.
#[must_use = "a SessionBuilder does nothing until exec, shell or subsystem"]
pub struct SessionBuilder {
    connection: Connection,
    env: Vec<(String, Vec<u8>)>,
    pty: Option<PtyRequest>,
    stderr: Option<StderrSink>,
    agent: bool,
}

impl SessionBuilder {
    pub(crate) fn new(connection: Connection) -> Self {
        Self { connection, env: Vec::new(), pty: None, stderr: None, agent: false }
    }

    /// Asks the server to set an environment variable (`env`; OpenSSH servers accept only the
    /// names their `AcceptEnv` lists, and refusals are ignored, as `ssh` does).
    pub fn env(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }

    /// Asks for a pseudo-terminal. A refusal is logged and the session goes on without one, as
    /// with `ssh`.
    pub fn pty(mut self, pty: PtyRequest) -> Self {
        self.pty = Some(pty);
        self
    }

    /// Asks the server to forward the agent to this session (`auth-agent-req@openssh.com`;
    /// the connection must have [`Connection::forward_agent`] set). A refusal is ignored.
    pub fn agent_forwarding(mut self) -> Self {
        self.agent = true;
        self
    }

    /// Where standard error goes.
    pub fn stderr(mut self, sink: impl FnMut(&[u8]) + 'static) -> Self {
        self.stderr = Some(Box::new(sink));
        self
    }

    /// Runs `command` (`exec`).
    pub fn exec(
        self,
        command: impl Into<Vec<u8>>,
        protocol: impl Protocol + 'static,
    ) -> Pending<Session> {
        self.start(Start::Exec(command.into()), Box::new(protocol))
    }

    /// Starts the user's login shell (`shell`); usually with a [`pty`](Self::pty).
    pub fn shell(self, protocol: impl Protocol + 'static) -> Pending<Session> {
        self.start(Start::Shell, Box::new(protocol))
    }

    /// Starts a subsystem (`sftp`).
    pub fn subsystem(self, name: &str, protocol: impl Protocol + 'static) -> Pending<Session> {
        self.start(Start::Subsystem(name.to_owned()), Box::new(protocol))
    }

    fn start(self, start: Start, protocol: Box<dyn Protocol>) -> Pending<Session> {
        let scheduler = Rc::clone(self.connection.scheduler());
        let pending = Pending::new(&scheduler);
        let settle = pending.clone();
        let Self { connection, env, pty, stderr, agent } = self;
        let on_made = Box::new(move |result: Result<Rc<ChannelInner>, ClientError>| {
            let channel = match result {
                Ok(channel) => channel,
                Err(error) => return settle.settle(Err(error)),
            };
            // The channel is open: send the requests; the start request's answer makes it.
            channel.set_on_made(Box::new(move |result| {
                settle.settle(result.map(|channel| Session { channel }));
            }));
            if agent {
                if let Err(error) = channel.request(&ChannelRequest::AuthAgentReq, None) {
                    log::debug!("auth-agent-req not sent: {error}");
                }
            }
            if let Err(error) = send_requests(&channel, env, pty, &start) {
                channel.started(Err(error));
            }
        });
        let opened = connection.open(ChannelKind::Session, Kind::Session, protocol, on_made);
        match opened {
            Ok(channel) => {
                if let Some(sink) = stderr {
                    channel.set_stderr(sink);
                }
            }
            Err(error) => pending.settle(Err(error)),
        }
        pending
    }
}

impl fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("env", &self.env.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("pty", &self.pty)
            .field("stderr", &self.stderr.is_some())
            .finish_non_exhaustive()
    }
}

/// `env`, `pty-req`, then the start request whose answer makes the session.
fn send_requests(
    channel: &Rc<ChannelInner>,
    env: Vec<(String, Vec<u8>)>,
    pty: Option<PtyRequest>,
    start: &Start,
) -> Result<(), ClientError> {
    for (name, value) in env {
        channel.request(&ChannelRequest::Env { name, value }, None)?;
    }
    if let Some(pty) = pty {
        let request = ChannelRequest::PtyReq { term: pty.term, size: pty.size, modes: pty.modes };
        channel.request(
            &request,
            Some(Box::new(|channel: &ChannelInner, success| {
                if !success {
                    log::info!("PTY allocation request failed on {:?}", channel.id());
                }
            })),
        )?;
    }
    let request = start.request();
    let name = request.name().to_owned();
    channel.request(
        &request,
        Some(Box::new(move |channel: &ChannelInner, success| {
            let result =
                if success { Ok(()) } else { Err(ClientError::RequestRefused { request: name }) };
            channel.started(result);
        })),
    )
}

/// A running session: its channel (a [`Transport`] for standard input), window changes,
/// signals, and its exit status. Cheap to clone.
#[derive(Clone)]
pub struct Session {
    channel: Rc<ChannelInner>,
}

impl Session {
    /// The session's channel as a transport: `write` sends standard input, `write_eof` ends
    /// it, `lose_connection` closes the session. The same transport the protocol was given.
    pub fn transport(&self) -> Rc<dyn Transport> {
        self.channel.clone()
    }

    /// The channel's number.
    pub fn id(&self) -> ChannelId {
        self.channel.id()
    }

    /// Tells the server the terminal's new size (`window-change`).
    ///
    /// # Errors
    ///
    /// The session or the connection is gone.
    pub fn window_change(&self, size: WindowSize) -> Result<(), ClientError> {
        self.channel.request(&ChannelRequest::WindowChange { size }, None)
    }

    /// Sends a signal to the command (`signal`, names without `SIG`: `INT`, `TERM`). OpenSSH
    /// servers before 8.1 ignore it.
    ///
    /// # Errors
    ///
    /// The session or the connection is gone.
    pub fn signal(&self, name: &str) -> Result<(), ClientError> {
        self.channel.request(&ChannelRequest::Signal { name: name.to_owned() }, None)
    }

    /// Sends a break (`break`, RFC 4335) of `length_ms` milliseconds.
    ///
    /// # Errors
    ///
    /// The session or the connection is gone.
    pub fn send_break(&self, length_ms: u32) -> Result<(), ClientError> {
        self.channel.request(&ChannelRequest::Break { length_ms }, None)
    }

    /// Settles with the exit status once the session's channel has closed.
    pub fn exit_status(&self) -> Pending<ExitStatus> {
        self.channel.exit_status()
    }

    /// The exit status, if the server has sent it yet.
    pub fn exit(&self) -> Option<ExitStatus> {
        self.channel.exit()
    }

    /// Closes the session at once, discarding unsent input.
    pub fn close(&self) {
        self.channel.abort_connection();
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Session").field(&self.channel).finish()
    }
}

/// What [`Connection::run`] collects.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Output {
    /// Everything the command wrote to standard output.
    pub stdout: Vec<u8>,
    /// Everything it wrote to standard error.
    pub stderr: Vec<u8>,
    /// How it ended.
    pub status: ExitStatus,
}

/// Collects a command's output up to a bound shared by both streams.
struct Collector {
    state: Rc<RefCell<Collected>>,
}

#[derive(Default)]
struct Collected {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    limit: usize,
    exceeded: bool,
    transport: Option<Rc<dyn Transport>>,
}

impl Collected {
    /// Appends to one stream; past the limit, closes the session.
    fn take(&mut self, stderr: bool, data: &[u8]) {
        if self.exceeded {
            return;
        }
        if self.stdout.len() + self.stderr.len() + data.len() > self.limit {
            self.exceeded = true;
            if let Some(transport) = &self.transport {
                transport.abort_connection();
            }
            return;
        }
        let target = if stderr { &mut self.stderr } else { &mut self.stdout };
        target.extend_from_slice(data);
    }
}

impl Protocol for Collector {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        transport.write_eof();
        self.state.borrow_mut().transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.state.borrow_mut().take(false, data);
    }
}

impl Connection {
    /// Prepares a session (environment, pty, standard error) to start.
    pub fn session(&self) -> SessionBuilder {
        SessionBuilder::new(self.clone())
    }

    /// Runs `command`, handing its standard output to `protocol` (see [`SessionBuilder`]).
    pub fn exec(
        &self,
        command: impl Into<Vec<u8>>,
        protocol: impl Protocol + 'static,
    ) -> Pending<Session> {
        self.session().exec(command, protocol)
    }

    /// Starts the login shell, with a pty if `pty` is given.
    pub fn shell(
        &self,
        pty: Option<PtyRequest>,
        protocol: impl Protocol + 'static,
    ) -> Pending<Session> {
        let builder = self.session();
        match pty {
            Some(pty) => builder.pty(pty).shell(protocol),
            None => builder.shell(protocol),
        }
    }

    /// Starts the subsystem `name`.
    pub fn subsystem(&self, name: &str, protocol: impl Protocol + 'static) -> Pending<Session> {
        self.session().subsystem(name, protocol)
    }

    /// Runs `command` with empty standard input and collects its output and exit status.
    /// Output beyond `limit` bytes (both streams together) closes the session and fails with
    /// [`ClientError::OutputLimitExceeded`].
    pub fn run(&self, command: impl Into<Vec<u8>>, limit: usize) -> Pending<Output> {
        let collected = Rc::new(RefCell::new(Collected { limit, ..Collected::default() }));
        let stderr = Rc::clone(&collected);
        let started = self
            .session()
            .stderr(move |data| stderr.borrow_mut().take(true, data))
            .exec(command, Collector { state: Rc::clone(&collected) });
        let pending = Pending::new(self.scheduler());
        let settle = pending.clone();
        started.on_settled(move |result| {
            let session = match result {
                Ok(session) => session,
                Err(error) => return settle.settle(Err(error)),
            };
            session.exit_status().on_settled(move |status| {
                let mut collected = collected.borrow_mut();
                collected.transport = None;
                if collected.exceeded {
                    return settle.settle(Err(ClientError::OutputLimitExceeded { limit }));
                }
                let output = status.map(|status| Output {
                    stdout: std::mem::take(&mut collected.stdout),
                    stderr: std::mem::take(&mut collected.stderr),
                    status,
                });
                settle.settle(output);
            });
        });
        pending
    }
}
