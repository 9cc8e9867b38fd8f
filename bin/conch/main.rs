//! `conch`: an SSH client with OpenSSH's `ssh` command line, configuration, files, messages
//! and exit statuses: `conch [options] [user@]host[:port] | ssh://user@host:port [command]`.
//!
//! The exit status is the remote command's, or 255 when the client itself failed.

mod background;
mod cli;
mod control;
mod escape;
mod forward;
#[path = "../ckeygen/getopt.rs"]
mod getopt;
mod logging;
mod prompt;
mod session;
mod setup;
mod stdio;
mod terminal;

use std::cell::RefCell;
use std::io::Write as _;
use std::process::ExitCode;
use std::rc::Rc;

use twine_conch::client::{ClientError, Connection, ExitStatus, PtyRequest};
use twine_conch::config::pattern::match_pattern;
use twine_conch::config::ssh::{Endpoint, Forward, RequestTty, SshConfig};
use twine_conch::config::values::LogLevel;
use twine_core::reactor::Signal;
use twine_core::{Deferred, Reactor};

use cli::{Cli, Refused, USAGE};

fn main() -> ExitCode {
    let _restore = terminal::RestoreOnDrop;
    let args: Vec<String> = std::env::args().skip(1).collect();
    ExitCode::from(run(&args))
}

/// Runs the command line; the exit status.
fn run(args: &[String]) -> u8 {
    let cli = match Cli::parse(args) {
        Ok(cli) => cli,
        Err(Refused(message)) => {
            match message {
                Some(message) => eprintln!("{message}"),
                None => eprintln!("{USAGE}"),
            }
            return 255;
        }
    };
    if cli.version {
        eprintln!("conch {} (twine), OpenSSH-compatible", env!("CARGO_PKG_VERSION"));
        if cli.host.is_empty() {
            return 0;
        }
    }
    if let Some(topic) = &cli.query {
        return query(topic);
    }
    let local = setup::Local::discover();
    // The destination's user goes where the destination was: options before it win over it,
    // options after it lose (the first value wins, as in OpenSSH).
    let mut options = cli.options.clone();
    if let Some(user) = &cli.user {
        let at = cli.destination_position.min(options.len());
        options.insert(at, format!("User {user}"));
    }
    if let Some(port) = cli.port {
        options.push(format!("Port {port}"));
    }
    if cli.stdio_forward_flags {
        options.push("ExitOnForwardFailure yes".into());
        options.push("ClearAllForwardings yes".into());
    }
    if cli.no_command {
        options.push("SessionType none".into());
    }
    // -L, -D and -R as configuration lines, so that -G shows them and ClearAllForwardings
    // applies to them, as in OpenSSH.
    options.extend(cli.forward_lines());
    // `-t` and `-T` win over any `RequestTTY`, wherever it is.
    if let Some(request) = cli.request_tty {
        options.insert(0, format!("RequestTTY {request}"));
    }
    let config = match setup::resolve(&local, cli.config_file.as_deref(), &options, &cli.host) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return 255;
        }
    };
    if cli.dump {
        print!("{}", config.dump());
        return 0;
    }
    let level = if cli.quiet {
        LogLevel::Quiet
    } else if cli.verbose > 0 {
        match cli.verbose {
            1 => LogLevel::Debug1,
            2 => LogLevel::Debug2,
            _ => LogLevel::Debug3,
        }
    } else {
        config.log_level
    };
    if let Err(message) = logging::init(logging::filter(level), cli.log_file.as_deref()) {
        eprintln!("{message}");
        return 255;
    }
    for warning in &config.warnings {
        log::debug!("{warning}");
    }
    if config.control_master != 0 || config.control_path.is_some() || cli.control_command.is_some()
    {
        log::debug!("ControlMaster/ControlPath/ControlPersist accepted; connection multiplexing is not supported, connecting directly");
    }
    if let Some(command) = &cli.control_command {
        return match control_path(&config, &local) {
            Some(path) => control::command(&path, command),
            None => {
                eprintln!("No ControlPath specified for \"-O\" command");
                255
            }
        };
    }
    if cli.background && background::is_parent() {
        return background::spawn_and_wait(args);
    }
    let quiet = matches!(level, LogLevel::Quiet | LogLevel::Fatal | LogLevel::Error);
    match Client::new(cli, config, local, quiet).and_then(Client::run) {
        Ok(code) => code,
        Err(message) => {
            if !message.is_empty() {
                log::error!("{message}");
            }
            255
        }
    }
}

/// The expanded `ControlPath`, unless none.
fn control_path(config: &SshConfig, local: &setup::Local) -> Option<String> {
    let path = config.control_path.as_deref().filter(|p| *p != "none")?;
    let env = |name: &str| std::env::var(name).ok();
    config.expand_path(path, &local.home, Some(&env)).ok()
}

/// `-Q`: our algorithm tables.
fn query(topic: &str) -> u8 {
    match twine_conch::crypto::algorithms::query(topic) {
        Some(names) => {
            let mut out = std::io::stdout().lock();
            for name in names {
                let _ = writeln!(out, "{name}");
            }
            0
        }
        None => {
            eprintln!("Unsupported query \"{topic}\"");
            255
        }
    }
}

/// One run of the client.
struct Client {
    cli: Cli,
    config: SshConfig,
    local: setup::Local,
    quiet: bool,
}

/// What the session asks for.
struct Plan {
    command: Option<String>,
    subsystem: bool,
    tty: bool,
}

impl Client {
    fn new(cli: Cli, config: SshConfig, local: setup::Local, quiet: bool) -> Result<Self, String> {
        Ok(Self { cli, config, local, quiet })
    }

    fn plan(&self) -> Plan {
        let mut command = (!self.cli.command.is_empty()).then(|| self.cli.command.join(" "));
        if command.is_none() {
            command = self.config.remote_command.clone().filter(|c| !c.is_empty() && c != "none");
        }
        let request = self.config.request_tty;
        let stdin_tty = terminal::stdin_is_tty();
        let tty = match request {
            RequestTty::No => false,
            RequestTty::Force => true,
            RequestTty::Yes => stdin_tty,
            RequestTty::Auto => command.is_none() && stdin_tty && !self.cli.subsystem,
        };
        if !tty && request == RequestTty::Yes && !self.quiet {
            eprintln!("Pseudo-terminal will not be allocated because stdin is not a terminal.");
        }
        Plan { command, subsystem: self.cli.subsystem, tty }
    }

    /// `LocalCommand`, when `PermitLocalCommand` allows it: run through the shell, with the
    /// `%` tokens expanded, before the session starts.
    fn run_local_command(&self) {
        let dump = self.config.dump();
        let value = |key: &str| dump.lines().find_map(|l| l.strip_prefix(key)).map(str::to_owned);
        if value("permitlocalcommand ").as_deref() != Some("yes") {
            return;
        }
        let Some(command) = value("localcommand ") else { return };
        let env = |name: &str| std::env::var(name).ok();
        let command =
            self.config.expand_path(&command, &self.local.home, Some(&env)).unwrap_or(command);
        log::debug!("Executing command: '{command}'");
        let shell = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".into());
        if let Err(err) = std::process::Command::new(shell).arg("-c").arg(&command).status() {
            log::error!("Couldn't execute {command}: {err}");
        }
    }

    /// The agent socket `ForwardAgent` names (`yes`: `SSH_AUTH_SOCK`), if any.
    fn agent_to_forward(&self) -> Option<String> {
        if let Some(socket) = &self.config.forward_agent_socket {
            // `$NAME` (or `${NAME}`) names an environment variable holding the path.
            if let Some(name) = socket.strip_prefix('$') {
                let name = name.trim_start_matches('{').trim_end_matches('}');
                return std::env::var(name).ok().filter(|s| !s.is_empty());
            }
            return Some(socket.clone());
        }
        if !self.config.forward_agent {
            return None;
        }
        std::env::var("SSH_AUTH_SOCK").ok().filter(|s| !s.is_empty())
    }

    /// `PermitRemoteOpen`, as `-G` prints it.
    fn permit_remote_open(&self) -> forward::Permit {
        let dump = self.config.dump();
        let value = dump.lines().find_map(|l| l.strip_prefix("permitremoteopen ")).unwrap_or("any");
        forward::Permit::parse(value)
    }

    fn session_wanted(&self) -> bool {
        !self.cli.no_command
            && self.cli.stdio_forward.is_none()
            && self.config.dump().lines().all(|l| l != "sessiontype none")
    }

    fn run(self) -> Result<u8, String> {
        let reactor = Reactor::new().map_err(|e| e.to_string())?;
        let client = setup::client_config(&self.config, &self.local, self.quiet)?;
        let mut children = setup::Children::default();
        let connecting = setup::connect(
            &reactor,
            &self.config,
            client,
            &self.local,
            self.cli.config_file.as_deref(),
            &mut children,
        )?;
        let this = Rc::new(self);
        let handle = reactor.clone();
        let task = Rc::clone(&this);
        let outcome = reactor
            .run_until(async move { Ok(task.connected(&handle, connecting).await) })
            .map_err(|e| {
                // Stopped by a signal: its message is out already.
                if e.kind() == twine_core::ErrorKind::ReactorStopped {
                    String::new()
                } else {
                    e.to_string()
                }
            })?;
        drop(children);
        outcome
    }

    /// Everything after the connect: forwards, then the session or `-W` or waiting (`-N`).
    async fn connected(
        self: Rc<Self>,
        reactor: &Reactor,
        connecting: setup::Connecting,
    ) -> Result<u8, String> {
        let connection = connecting.await.map_err(|error| self.describe(&error))?;
        log::debug!(
            "Authenticated to {} ([{}]:{}).",
            self.config.hostname,
            self.config.hostname,
            self.config.port
        );
        let listeners = Rc::new(RefCell::new(forward::Listeners::default()));
        self.start_forwards(reactor, &connection, &listeners).await?;
        let master = match control_path(&self.config, &self.local) {
            Some(path) if self.config.control_master != 0 => {
                match control::Master::listen(reactor, &path, &connection) {
                    Ok(master) => Some(master),
                    Err(message) => {
                        log::debug!("{message}");
                        None
                    }
                }
            }
            _ => None,
        };
        self.run_local_command();
        background::ready();
        if let Some((host, port)) = self.cli.stdio_forward.clone() {
            return self.stdio_forward(reactor, &connection, &host, port).await;
        }
        if !self.session_wanted() {
            let closed = connection.closed().await;
            log::debug!("connection closed: {closed:?}");
            let asked = master.as_ref().is_some_and(|m| m.exit_requested.get());
            return Ok(if asked { 0 } else { 255 });
        }
        let plan = self.plan();
        let status = self.session(reactor, &connection, &plan, &listeners).await;
        drop(master);
        status
    }

    /// OpenSSH's text for a failure to connect or log in.
    fn describe(&self, error: &ClientError) -> String {
        match error {
            ClientError::AuthFailed { .. } => {
                format!("{}@{}: {error}", self.config.user, self.config.hostname)
            }
            ClientError::Connect { host, port, error: cause } => match cause.kind() {
                twine_core::ErrorKind::NameResolution => {
                    let text =
                        cause.context().replace("failed to lookup address information: ", "");
                    if text.starts_with("Could not resolve") {
                        format!("conch: {text}")
                    } else {
                        format!("conch: Could not resolve hostname {host}: {text}")
                    }
                }
                twine_core::ErrorKind::TimedOut if cause.raw_os_error().is_none() => {
                    format!("conch: connect to host {host} port {port}: Connection timed out")
                }
                _ => format!("conch: {error}"),
            },
            ClientError::ConnectionLost(_) => {
                format!("Connection closed by {} port {}", self.config.hostname, self.config.port)
            }
            _ => error.to_string(),
        }
    }

    /// All the forwards asked for, from the command line then the configuration.
    async fn start_forwards(
        &self,
        reactor: &Reactor,
        connection: &Connection,
        listeners: &Rc<RefCell<forward::Listeners>>,
    ) -> Result<(), String> {
        if self.config.clear_all_forwardings {
            return Ok(());
        }
        let strict = self.config.exit_on_forward_failure;
        let locals: Vec<&Forward> = self.config.local_forwards.iter().collect();
        for spec in locals {
            let started = forward::start_local(
                reactor,
                connection,
                spec,
                self.config.gateway_ports,
                &mut listeners.borrow_mut(),
            );
            if let Err(message) = started {
                if strict {
                    return Err(message);
                }
                log::error!("{message}");
            }
        }
        let remotes: Vec<&Forward> = self.config.remote_forwards.iter().collect();
        for spec in remotes {
            let (address, port) = forward::remote_listen(spec);
            let target = forward::remote_target(spec)
                .unwrap_or_else(|| forward::remote_socks(reactor, &self.permit_remote_open()));
            let result = match &spec.listen {
                Endpoint::Unix(path) => {
                    connection.forward_remote_unix(std::path::Path::new(path), target).await
                }
                Endpoint::Tcp { .. } => connection.forward_remote(&address, port, target).await,
            };
            match result {
                Ok(forward) => {
                    if port == 0 && matches!(spec.listen, Endpoint::Tcp { .. }) {
                        let to = match &spec.connect {
                            Some(Endpoint::Tcp { host, port }) => {
                                format!("{}:{port}", host.as_deref().unwrap_or("localhost"))
                            }
                            Some(Endpoint::Unix(path)) => path.clone(),
                            None => String::new(),
                        };
                        eprintln!(
                            "Allocated port {} for remote forward to {to}",
                            forward.bound_port()
                        );
                    }
                    log::debug!(
                        "remote forward success for: listen {address}:{}",
                        forward.bound_port()
                    );
                    std::mem::forget(forward);
                }
                Err(error) => {
                    let message = match &spec.listen {
                        Endpoint::Unix(path) => {
                            format!("Warning: remote port forwarding failed for listen path {path}")
                        }
                        Endpoint::Tcp { .. } => {
                            format!("Warning: remote port forwarding failed for listen port {port}")
                        }
                    };
                    log::debug!("{error}");
                    if strict {
                        return Err(format!(
                            "Error: remote port forwarding failed for listen port {port}"
                        ));
                    }
                    eprintln!("{message}");
                }
            }
        }
        Ok(())
    }

    /// `-W host:port`: standard input and output spliced to a `direct-tcpip` channel.
    async fn stdio_forward(
        &self,
        reactor: &Reactor,
        connection: &Connection,
        host: &str,
        port: u16,
    ) -> Result<u8, String> {
        let splice = twine_conch::client::Splice::new();
        let done: Deferred<()> = reactor.deferred();
        let watcher = EndWatcher { inner: splice.end(0), done: done.clone() };
        let (mut stdio, _transport) = stdio::Stdio::open(reactor, false, watcher)?;
        if let Err(error) = connection.direct_tcpip(host, port, splice.end(1)).await {
            splice.fail();
            let _ = done.clone().await;
            stdio.finish();
            return Err(format!("stdio forwarding failed: {error}"));
        }
        let _ = done.await;
        stdio.finish();
        Ok(0)
    }

    /// The session: exec, shell or subsystem, with its streams joined to ours.
    async fn session(
        &self,
        reactor: &Reactor,
        connection: &Connection,
        plan: &Plan,
        listeners: &Rc<RefCell<forward::Listeners>>,
    ) -> Result<u8, String> {
        let done: Deferred<()> = reactor.deferred();
        let escape = if plan.tty { self.config.escape_char } else { None };
        let link = session::link(escape, done.clone());
        link.borrow_mut().connection = Some(connection.clone());
        link.borrow_mut().command_line =
            Some(command_line(reactor, connection, listeners, self.permit_remote_open()));
        let null_stdin = self.cli.null_stdin || self.cli.background;
        let (mut stdio, _transport) =
            stdio::Stdio::open(reactor, null_stdin, session::StdioSide(Rc::clone(&link)))?;
        let mut builder = connection.session().stderr(|data| {
            let mut stderr = std::io::stderr();
            let _ = stderr.write_all(data);
            let _ = stderr.flush();
        });
        for (name, value) in self.environment() {
            builder = builder.env(&name, value);
        }
        if let Some(socket) = self.agent_to_forward() {
            log::debug!("Requesting authentication agent forwarding.");
            connection.forward_agent(socket);
            builder = builder.agent_forwarding();
        }
        if plan.tty {
            let size = terminal::window_size();
            let term = std::env::var("TERM").unwrap_or_else(|_| "vt100".into());
            let mut pty =
                PtyRequest::new(&term, size.cols, size.rows).with_modes(terminal::modes());
            pty.size = size;
            builder = builder.pty(pty);
        }
        let channel = session::ChannelSide(Rc::clone(&link));
        let started = match (&plan.command, plan.subsystem) {
            (Some(name), true) => builder.subsystem(name, channel),
            (Some(command), false) => builder.exec(command.as_bytes(), channel),
            (None, _) => builder.shell(channel),
        };
        let session = match started.await {
            Ok(session) => session,
            Err(error) => {
                session::channel_failed(&link);
                let _ = done.clone().await;
                stdio.finish();
                return Err(match error {
                    ClientError::RequestRefused { request } if request == "exec" => {
                        "Failed to execute the command: the server refused exec".into()
                    }
                    other => other.to_string(),
                });
            }
        };
        link.borrow_mut().session = Some(session.clone());
        if plan.tty {
            terminal::enter_raw_mode();
            let resized = session.clone();
            let _ = reactor.observe_signal(Signal::WindowChange, move || {
                let _ = resized.window_change(terminal::window_size());
            });
        }
        for signal in [Signal::Hangup, Signal::Terminate, Signal::Interrupt] {
            let handle = reactor.clone();
            let _ = reactor.observe_signal(signal, move || {
                terminal::leave_raw_mode();
                eprintln!("Killed by signal {}.", signal.as_raw());
                handle.stop();
            });
        }
        let status = session.exit_status();
        let _ = done.await;
        stdio.finish();
        let status = status.await;
        terminal::leave_raw_mode();
        let terminated = link.borrow().terminated;
        let status = match status {
            Ok(status) => status,
            Err(error) if !terminated => {
                return Err(match error {
                    ClientError::ServerNotResponding => {
                        format!("Timeout, server {} not responding.", self.config.hostname)
                    }
                    ClientError::ConnectionLost(_) | ClientError::Protocol(_) => {
                        format!("Connection to {} closed by remote host.", self.config.hostname)
                    }
                    other => other.to_string(),
                });
            }
            Err(_) => ExitStatus::Unknown,
        };
        if plan.tty && !self.quiet {
            eprintln!("Connection to {} closed.", self.config.hostname);
        }
        connection.disconnect();
        if terminated {
            return Ok(255);
        }
        if let ExitStatus::Signal { name, .. } = &status {
            log::debug!("remote command killed by signal {name}");
        }
        Ok(status.openssh_exit_code())
    }

    /// `SendEnv` (names matching the patterns, `-` patterns removing) and `SetEnv`.
    fn environment(&self) -> Vec<(String, Vec<u8>)> {
        let mut env = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            let mut wanted = false;
            for pattern in &self.config.send_env {
                match pattern.strip_prefix('-') {
                    Some(removed) if match_pattern(name, removed) => wanted = false,
                    None if match_pattern(name, pattern) => wanted = true,
                    _ => {}
                }
            }
            if wanted {
                env.push((name.to_owned(), value.into_encoded_bytes()));
            }
        }
        for setting in &self.config.set_env {
            if let Some((name, value)) = setting.split_once('=') {
                env.push((name.to_owned(), value.as_bytes().to_vec()));
            }
        }
        env
    }
}

/// The `~C` command line: `-L`, `-D` and `-R` specifications, `-KL`/`-KR` (not kept), `?`.
fn command_line(
    reactor: &Reactor,
    connection: &Connection,
    listeners: &Rc<RefCell<forward::Listeners>>,
    permit: forward::Permit,
) -> Box<dyn Fn(&str) -> String> {
    let reactor = reactor.clone();
    let connection = connection.clone();
    let listeners = Rc::clone(listeners);
    Box::new(move |line: &str| {
        use twine_conch::config::ssh::{parse_forward, ForwardKind};
        let line = line.trim();
        let (flag, spec) = match line.split_once(char::is_whitespace) {
            Some((flag, spec)) => (flag, spec.trim()),
            None => (line, ""),
        };
        let kind = match flag {
            "-L" => ForwardKind::Local,
            "-D" => ForwardKind::Dynamic,
            "-R" => ForwardKind::Remote,
            "" => return String::new(),
            "?" | "-h" => {
                return "Commands:\n      -L[bind_address:]port:host:hostport    Request local forward\n      \
                        -R[bind_address:]port:host:hostport    Request remote forward\n      \
                        -D[bind_address:]port                  Request dynamic forward\n"
                    .into()
            }
            _ => return "Invalid command.\n".into(),
        };
        let Some(forward) = parse_forward(spec, kind) else {
            return "Bad forwarding specification.\n".into();
        };
        match kind {
            ForwardKind::Remote => {
                let (address, port) = forward::remote_listen(&forward);
                let target = forward::remote_target(&forward)
                    .unwrap_or_else(|| forward::remote_socks(&reactor, &permit));
                connection.forward_remote(&address, port, target).on_settled(|result| {
                    if let Err(error) = result {
                        eprint!("Warning: remote port forwarding failed: {error}\r\n");
                    }
                });
                "Forwarding port.\n".into()
            }
            _ => match forward::start_local(
                &reactor,
                &connection,
                &forward,
                false,
                &mut listeners.borrow_mut(),
            ) {
                Ok(()) => "Forwarding port.\n".into(),
                Err(message) => format!("{message}\n"),
            },
        }
    })
}

/// Passes the end of a splice on, and fires `done` when its transport is lost.
struct EndWatcher {
    inner: twine_conch::client::SpliceEnd,
    done: Deferred<()>,
}

impl twine_core::Protocol for EndWatcher {
    fn connection_made(&mut self, transport: Rc<dyn twine_core::Transport>) {
        self.inner.connection_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.inner.data_received(data);
    }

    fn read_connection_lost(&mut self) -> twine_core::protocol::HalfClose {
        self.inner.read_connection_lost()
    }

    fn connection_lost(&mut self, reason: twine_core::Reason) {
        self.inner.connection_lost(reason);
        if !self.done.fired() {
            self.done.callback(());
        }
    }
}
