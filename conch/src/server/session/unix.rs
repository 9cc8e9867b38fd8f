//! Unix sessions: the user's shell, commands and subsystems as child processes.

use std::cell::{OnceCell, RefCell};
use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal as NixSignal;
use nix::sys::termios::Termios;
use nix::unistd::{Group, Uid};
use twine_core::error::Reason;
use twine_core::process::{
    Credentials, Groups, Process, ProcessOptions, ProcessProtocol, ProcessStatus, PtyOptions,
    PtyOwner, WindowSize as PtySize,
};
use twine_core::protocol::{HalfClose, Protocol, PushProducer, Transport};
use twine_core::{Error as CoreError, ErrorKind, Reactor};

use super::modes;
use super::{SessionBackend, SessionCommand, SessionControl, SessionInfo, SessionStart};
use crate::connection::msgs::{ChannelRequest, WindowSize};
use crate::server::channel::PauseReading;
use crate::server::{Account, ChannelTransport};

/// sshd's `PATH` for users (Debian's `_PATH_STDPATH` for non-root logins).
const USER_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/games";

/// sshd's `PATH` for root (Debian's `SUPERUSER_PATH`).
const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The signals a client may name in `signal` and `exit-signal` (RFC 4254 §6.10).
const SIGNAL_NAMES: [(&str, NixSignal); 13] = [
    ("ABRT", NixSignal::SIGABRT),
    ("ALRM", NixSignal::SIGALRM),
    ("FPE", NixSignal::SIGFPE),
    ("HUP", NixSignal::SIGHUP),
    ("ILL", NixSignal::SIGILL),
    ("INT", NixSignal::SIGINT),
    ("KILL", NixSignal::SIGKILL),
    ("PIPE", NixSignal::SIGPIPE),
    ("QUIT", NixSignal::SIGQUIT),
    ("SEGV", NixSignal::SIGSEGV),
    ("TERM", NixSignal::SIGTERM),
    ("USR1", NixSignal::SIGUSR1),
    ("USR2", NixSignal::SIGUSR2),
];

/// Everything a session's process needs, decided by the unprivileged side: the privileged
/// [`SessionSpawner`] only switches to the account and starts it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SpawnPlan {
    /// Whose session it is.
    pub account: Account,
    /// The program (the user's shell).
    pub program: PathBuf,
    /// `argv[0]`: `-bash` for a login shell, `bash` for a command.
    pub arg0: OsString,
    /// The arguments after `argv[0]` (`-c command`).
    pub args: Vec<OsString>,
    /// The whole environment.
    pub env: Vec<(OsString, OsString)>,
    /// The working directory.
    pub cwd: PathBuf,
    /// The pty, when the session has one.
    pub pty: Option<PtyOptions>,
    /// Whether the login may run `~/.ssh/rc` (`no-user-rc` and `restrict` clear it), for a
    /// spawner that runs it (sshd's `do_rc_files`).
    pub user_rc: bool,
}

impl SpawnPlan {
    /// A plan to run `program` as `account` with nothing else set: no arguments, an empty
    /// environment, the home directory as working directory, no pty, no rc file. For a
    /// privileged process rebuilding a plan another process sent.
    pub fn new(account: Account, program: impl Into<PathBuf>) -> Self {
        let program = program.into();
        Self {
            arg0: program.clone().into_os_string(),
            cwd: account.home.clone(),
            account,
            program,
            args: Vec::new(),
            env: Vec::new(),
            pty: None,
            user_rc: false,
        }
    }
}

/// The privileged step of a Unix session: start a [`SpawnPlan`] as its account (setgid,
/// initgroups, setuid, the pty given to the user before the child starts, `SSH_TTY`).
///
/// [`LocalSpawner`] does it in this process. A privilege-separated server implements it over
/// its monitor's request protocol, so that the network-facing process needs no root.
///
/// It is also the hook for what sshd does around a session's process and this crate leaves
/// to the server binary: a spawner that wraps [`LocalSpawner`] can write the login records
/// (`utmp`, `wtmp`; [`Process::tty_path`] names the terminal, and the process's end is
/// reported through the protocol it wraps), show the message of the day before a login shell,
/// or run `~/.ssh/rc` first when [`SpawnPlan::user_rc`] allows it.
pub trait SessionSpawner {
    /// Starts `plan` as `plan.account`, with `protocol` hearing the process.
    ///
    /// # Errors
    ///
    /// The program could not be started, or this spawner may not act for the account.
    fn spawn(
        &self,
        plan: SpawnPlan,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Process, CoreError>;
}

/// Spawns sessions from this process: as root it switches to the user (groups, gid, uid) and
/// gives the pty to the user; as anyone else it serves only its own account. The user's
/// supplementary groups are read from the group database once for the sessions one spawner
/// starts within a second ([`GROUPS_KEPT`]): keep the spawner, not one per session.
#[derive(Clone, Debug)]
pub struct LocalSpawner {
    reactor: Reactor,
    /// The `tty` group's id, looked up once.
    tty_group: OnceCell<Option<u32>>,
    /// The supplementary groups read last, for sessions started right after.
    groups: RefCell<KeptGroups<Vec<u32>>>,
}

impl LocalSpawner {
    /// Spawns with `reactor`.
    pub fn new(reactor: &Reactor) -> Self {
        Self {
            reactor: reactor.clone(),
            tty_group: OnceCell::new(),
            groups: RefCell::new(KeptGroups::default()),
        }
    }
}

/// How long a spawner reuses the supplementary groups it read for a user: sessions started in
/// a burst (several channels of one client, a wave of logins) read the group database once,
/// where each read may cost NSS dozens of system calls. A change to a user's groups reaches
/// the sessions started at most this long after it.
pub const GROUPS_KEPT: Duration = Duration::from_secs(1);

/// A user's groups as last read (ids for a spawner, names for a policy's `AllowGroups`): for
/// which user and primary group, when, and what. Reused for [`GROUPS_KEPT`], so a burst of
/// logins and sessions reads the group database once.
#[derive(Clone, Debug)]
pub struct KeptGroups<T> {
    last: Option<(String, u32, Instant, T)>,
}

impl<T> Default for KeptGroups<T> {
    fn default() -> Self {
        Self { last: None }
    }
}

impl<T: Clone> KeptGroups<T> {
    /// `user`'s groups (primary group `gid`) at `now`: as read less than [`GROUPS_KEPT`]
    /// before for the same user and primary group, else from `read`, kept then (a failed read
    /// is not kept).
    ///
    /// # Errors
    ///
    /// `read`'s, when it runs and fails.
    pub fn get<E>(
        &mut self,
        user: &str,
        gid: u32,
        now: Instant,
        read: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some((name, primary, at, groups)) = &self.last {
            if name == user && *primary == gid && now.saturating_duration_since(*at) < GROUPS_KEPT {
                return Ok(groups.clone());
            }
        }
        let groups = read()?;
        self.last = Some((user.to_owned(), gid, now, groups.clone()));
        Ok(groups)
    }
}

impl SessionSpawner for LocalSpawner {
    fn spawn(
        &self,
        plan: SpawnPlan,
        protocol: Box<dyn ProcessProtocol>,
    ) -> Result<Process, CoreError> {
        let euid = Uid::effective();
        let account = plan.account;
        let mut options = ProcessOptions::new(&plan.program)
            .arg0(&plan.arg0)
            .args(&plan.args)
            .env_clear()
            .cwd(plan.cwd)
            .new_session(true);
        for (key, value) in &plan.env {
            options = options.env(key, value);
        }
        if euid.is_root() {
            let groups =
                self.groups.borrow_mut().get(&account.name, account.gid, Instant::now(), || {
                    Groups::OfUser(account.name.clone()).resolve(account.gid)
                })?;
            options = options.credentials(Credentials {
                uid: account.uid,
                gid: account.gid,
                groups: Groups::Only(groups),
            });
        } else if account.uid != euid.as_raw() {
            return Err(CoreError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "a server running as uid {euid} cannot start a session for {}",
                    account.name
                ),
            ));
        }
        if let Some(pty) = plan.pty {
            options = options.pty(pty).tty_env("SSH_TTY");
            if euid.is_root() {
                options = options.pty_owner(self.pty_owner(&account));
            }
        }
        self.reactor.spawn_process(options, Boxed(protocol))
    }
}

impl LocalSpawner {
    /// sshd's `pty_setowner`: the terminal belongs to the user and the `tty` group, mode 0620
    /// (without a `tty` group: the user's group, mode 0622). Given before the child starts.
    fn pty_owner(&self, account: &Account) -> PtyOwner {
        let tty_group = *self
            .tty_group
            .get_or_init(|| Group::from_name("tty").ok().flatten().map(|group| group.gid.as_raw()));
        match tty_group {
            Some(gid) => PtyOwner { uid: account.uid, gid, mode: 0o620 },
            None => PtyOwner { uid: account.uid, gid: account.gid, mode: 0o622 },
        }
    }
}

struct Boxed(Box<dyn ProcessProtocol>);

impl ProcessProtocol for Boxed {
    fn connection_made(&mut self, process: Process) {
        self.0.connection_made(process);
    }

    fn out_received(&mut self, data: &[u8]) {
        self.0.out_received(data);
    }

    fn err_received(&mut self, data: &[u8]) {
        self.0.err_received(data);
    }

    fn in_connection_lost(&mut self) {
        self.0.in_connection_lost();
    }

    fn out_connection_lost(&mut self) {
        self.0.out_connection_lost();
    }

    fn err_connection_lost(&mut self) {
        self.0.err_connection_lost();
    }

    fn process_exited(&mut self, status: ProcessStatus) {
        self.0.process_exited(status);
    }

    fn process_ended(&mut self, status: ProcessStatus) {
        self.0.process_ended(status);
    }
}

/// Runs sessions as Unix processes of the logged-in user (sshd's `do_exec_pty` and
/// `do_exec_no_pty`).
///
/// - `shell`: the account's shell as a login shell (`argv[0]` `-bash`).
/// - `exec`: `shell -c command`, over pipes (standard error as extended data 1) or on the pty
///   if one was asked for.
/// - `subsystem`: the configured command (`sftp` → `/usr/lib/openssh/sftp-server`), run as
///   `shell -c command`; an unknown subsystem fails.
/// - A forced command replaces all three, with `SSH_ORIGINAL_COMMAND` set.
/// - The environment is sshd's: the accepted `env` requests, then `USER`, `LOGNAME`, `HOME`,
///   `PATH`, `MAIL`, `SHELL`, `TZ`, `TERM`, the login's `environment=` options (only with
///   [`with_user_environment`](Self::with_user_environment), sshd's `PermitUserEnvironment`),
///   the auth backend's session variables (PAM), `SSH_CLIENT`, `SSH_CONNECTION`,
///   `SSH_ORIGINAL_COMMAND`.
/// - The pty gets the client's size and terminal modes; `window-change` resizes it, `signal`
///   signals the session's process group (not for forced commands or subsystems, as sshd),
///   `break` is acknowledged on a pty (Linux ptys have no line to send it on) and refused
///   without one.
/// - The exit status, or the signal that ended the process, is sent after the output and EOF
///   and before CLOSE; the channel closes once the process has ended and its output drained.
pub struct UnixSessions {
    spawner: Rc<dyn SessionSpawner>,
    subsystems: Vec<(String, String)>,
    user_environment: bool,
    base_termios: RefCell<Option<Termios>>,
}

impl UnixSessions {
    /// Sessions spawned by this process on `reactor` ([`LocalSpawner`]).
    pub fn new(reactor: &Reactor) -> Self {
        Self::with_spawner(LocalSpawner::new(reactor))
    }

    /// Sessions spawned by `spawner` (a privileged monitor's).
    pub fn with_spawner(spawner: impl SessionSpawner + 'static) -> Self {
        Self {
            spawner: Rc::new(spawner),
            subsystems: Vec::new(),
            user_environment: false,
            base_termios: RefCell::new(None),
        }
    }

    /// Runs `command` for the subsystem `name` (sshd's `Subsystem`).
    #[must_use]
    pub fn with_subsystem(mut self, name: impl Into<String>, command: impl Into<String>) -> Self {
        self.subsystems.push((name.into(), command.into()));
        self
    }

    /// Applies the login's `environment=` options to sessions (sshd's
    /// `PermitUserEnvironment`, off by default: a user who may edit `authorized_keys` could
    /// otherwise set `LD_PRELOAD` for a forced command).
    #[must_use]
    pub fn with_user_environment(mut self, on: bool) -> Self {
        self.user_environment = on;
        self
    }

    /// The process to start for `info` as `account`.
    ///
    /// # Errors
    ///
    /// An unknown subsystem ([`ErrorKind::NotFound`]).
    pub fn plan(&self, info: &SessionInfo, account: &Account) -> Result<SpawnPlan, CoreError> {
        let shell = account.shell.clone();
        let shell_name = shell.file_name().map_or_else(|| OsString::from("sh"), ToOwned::to_owned);
        let (arg0, args) = match &info.command {
            SessionCommand::Shell => {
                let mut login = OsString::from("-");
                login.push(&shell_name);
                (login, Vec::new())
            }
            SessionCommand::Exec(command) => {
                (shell_name, vec![OsString::from("-c"), OsString::from_vec(command.clone())])
            }
            SessionCommand::Subsystem(name) => {
                let command = self
                    .subsystems
                    .iter()
                    .find(|(known, _)| known == name)
                    .map(|(_, command)| command.clone())
                    .ok_or_else(|| {
                        CoreError::new(ErrorKind::NotFound, format!("subsystem {name:?}"))
                    })?;
                (shell_name, vec![OsString::from("-c"), OsString::from(command)])
            }
        };
        let cwd = if account.home.is_dir() { account.home.clone() } else { PathBuf::from("/") };
        let pty = info.pty.as_ref().map(|request| PtyOptions {
            size: pty_size(request.size),
            modes: self.termios_for(&request.modes),
        });
        let env = session_environment(info, account, self.user_environment)
            .into_iter()
            .map(|(key, value)| (OsString::from(key), OsString::from_vec(value)))
            .collect();
        let user_rc = info.login.restrictions.user_rc;
        let account = account.clone();
        Ok(SpawnPlan { account, program: shell, arg0, args, env, cwd, pty, user_rc })
    }

    fn termios_for(&self, modes: &crate::connection::msgs::TerminalModes) -> Option<Termios> {
        let mut base = self.base_termios.borrow_mut();
        if base.is_none() {
            *base = nix::pty::openpty(None, None)
                .and_then(|pty| nix::sys::termios::tcgetattr(&pty.slave))
                .map_err(|err| log::warn!("no default terminal modes: {err}"))
                .ok();
        }
        let mut termios = base.clone()?;
        modes::apply(modes, &mut termios);
        Some(termios)
    }
}

impl fmt::Debug for UnixSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixSessions")
            .field("subsystems", &self.subsystems)
            .field("user_environment", &self.user_environment)
            .finish_non_exhaustive()
    }
}

impl SessionBackend for UnixSessions {
    fn start(&self, start: SessionStart) -> Result<Box<dyn SessionControl>, CoreError> {
        let info = start.info;
        let account = info.login.account.clone().ok_or_else(|| {
            CoreError::new(
                ErrorKind::NotFound,
                format!("{} has no system account", info.login.user),
            )
        })?;
        let plan = self.plan(&info, &account)?;
        let pty = plan.pty.is_some();
        let slot: Rc<RefCell<Option<Rc<ChannelTransport>>>> = Rc::default();
        let output = SessionOutput { channel: Rc::clone(&slot), early: Vec::new() };
        let process = self.spawner.spawn(plan, Box::new(output))?;
        log::info!(
            "session for {} started: pid {}, {}{}",
            info.login.user,
            process.pid(),
            describe(&info.command),
            if pty { " on a pty" } else { "" }
        );
        let channel = start.channel.attach(SessionInput { process: process.clone() });
        let as_producer: Rc<dyn Transport> = Rc::new(process.clone());
        channel.register_producer(Rc::new(as_producer) as Rc<dyn PushProducer>);
        process.register_producer(Rc::new(PauseReading(Rc::clone(&channel))));
        *slot.borrow_mut() = Some(channel);
        let signals = !info.forced && !matches!(info.command, SessionCommand::Subsystem(_));
        Ok(Box::new(UnixControl { process, pty, signals }))
    }
}

fn describe(command: &SessionCommand) -> String {
    match command {
        SessionCommand::Shell => "shell".into(),
        SessionCommand::Exec(command) => format!("command {:?}", String::from_utf8_lossy(command)),
        SessionCommand::Subsystem(name) => format!("subsystem {name}"),
    }
}

fn pty_size(size: WindowSize) -> PtySize {
    let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    PtySize::new(clamp(size.rows), clamp(size.cols))
        .with_pixels(clamp(size.width_px), clamp(size.height_px))
}

/// sshd's `do_setup_env`: later settings of a name replace earlier ones.
pub(crate) fn session_environment(
    info: &SessionInfo,
    account: &Account,
    user_env: bool,
) -> Vec<(String, Vec<u8>)> {
    let mut env: Vec<(String, Vec<u8>)> = Vec::new();
    let mut set = |key: &str, value: Vec<u8>| match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key.to_owned(), value)),
    };
    for (key, value) in &info.env {
        set(key, value.clone());
    }
    let name = account.name.as_bytes().to_vec();
    set("USER", name.clone());
    set("LOGNAME", name);
    set("HOME", account.home.as_os_str().to_owned().into_vec());
    let path = if account.uid == 0 { ROOT_PATH } else { USER_PATH };
    set("PATH", path.as_bytes().to_vec());
    set("MAIL", format!("/var/mail/{}", account.name).into_bytes());
    set("SHELL", account.shell.as_os_str().to_owned().into_vec());
    if let Some(tz) = std::env::var_os("TZ") {
        set("TZ", tz.into_vec());
    }
    if let Some(term) = info.term() {
        set("TERM", term.as_bytes().to_vec());
    }
    if user_env {
        for (key, value) in &info.login.restrictions.environment {
            set(key, value.as_bytes().to_vec());
        }
    }
    for (key, value) in &info.login.environment {
        set(key, value.as_bytes().to_vec());
    }
    // An end that is not a socket (inetd mode on pipes) is `UNKNOWN` port 65535, as sshd says.
    let facts = &info.login.connection;
    let ip = |addr: Option<std::net::SocketAddr>| {
        addr.map_or_else(|| "UNKNOWN".to_owned(), |addr| addr.ip().to_string())
    };
    let port = |addr: Option<std::net::SocketAddr>| addr.map_or(65535, |addr| addr.port());
    let (peer, local) = (facts.peer, facts.local);
    set("SSH_CLIENT", format!("{} {} {}", ip(peer), port(peer), port(local)).into_bytes());
    let connection = format!("{} {} {} {}", ip(peer), port(peer), ip(local), port(local));
    set("SSH_CONNECTION", connection.into_bytes());
    if let Some(original) = &info.original_command {
        set("SSH_ORIGINAL_COMMAND", original.clone());
    }
    env
}

/// The requests that report how a process ended (RFC 4254 §6.10).
pub(crate) fn exit_requests(status: ProcessStatus) -> Vec<ChannelRequest> {
    match status {
        ProcessStatus::Exited(code) => {
            vec![ChannelRequest::ExitStatus { code: u32::from_ne_bytes(code.to_ne_bytes()) }]
        }
        ProcessStatus::Signaled { signal, core_dumped } => {
            let name = SIGNAL_NAMES
                .iter()
                .find(|(_, s)| *s as i32 == signal)
                .map_or("SIG@openssh.com", |(name, _)| name);
            vec![ChannelRequest::ExitSignal {
                signal: name.to_owned(),
                core_dumped,
                message: String::new(),
                language: String::new(),
            }]
        }
        _ => Vec::new(),
    }
}

/// The process's side: its output goes to the channel, its end ends the channel.
struct SessionOutput {
    channel: Rc<RefCell<Option<Rc<ChannelTransport>>>>,
    /// Output from before the channel was attached (never in practice: both start from the
    /// loop, the channel first).
    early: Vec<(bool, Vec<u8>)>,
}

impl SessionOutput {
    fn send(&mut self, stderr: bool, data: &[u8]) {
        let channel = self.channel.borrow().clone();
        let Some(channel) = channel else {
            self.early.push((stderr, data.to_vec()));
            return;
        };
        for (early_stderr, early) in self.early.drain(..) {
            write_to(&channel, early_stderr, &early);
        }
        write_to(&channel, stderr, data);
    }
}

fn write_to(channel: &ChannelTransport, stderr: bool, data: &[u8]) {
    if stderr {
        channel.write_stderr(data);
    } else {
        channel.write(data);
    }
}

impl ProcessProtocol for SessionOutput {
    fn out_received(&mut self, data: &[u8]) {
        self.send(false, data);
    }

    fn err_received(&mut self, data: &[u8]) {
        self.send(true, data);
    }

    fn process_ended(&mut self, status: ProcessStatus) {
        log::info!("session process ended: {status}");
        self.send(false, b"");
        let channel = self.channel.borrow_mut().take();
        if let Some(channel) = channel {
            channel.unregister_producer();
            channel.finish(exit_requests(status));
        }
    }
}

/// The channel's side: the client's data goes to the process.
struct SessionInput {
    process: Process,
}

impl Protocol for SessionInput {
    fn data_received(&mut self, data: &[u8]) {
        self.process.write(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.process.write_eof();
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, reason: Reason) {
        log::debug!("session channel of pid {} lost: {reason}", self.process.pid());
        if self.process.status().is_none() {
            // Closing a pty hangs the session up (SIGHUP); pipes just close, as in sshd.
            self.process.lose_connection();
        }
    }
}

/// A running Unix session's controls.
struct UnixControl {
    process: Process,
    pty: bool,
    /// Whether `signal` requests are honoured (not for forced commands and subsystems).
    signals: bool,
}

impl SessionControl for UnixControl {
    fn window_changed(&mut self, size: WindowSize) {
        if let Err(err) = self.process.resize(pty_size(size)) {
            log::debug!("window-change: {err}");
        }
    }

    fn signal(&mut self, name: &str) -> bool {
        let Some((_, signal)) = SIGNAL_NAMES.iter().find(|(known, _)| *known == name) else {
            log::info!("signal request: unsupported signal {name:?}");
            return false;
        };
        if !self.signals {
            log::info!("signal request refused for a forced command or subsystem");
            return false;
        }
        if self.process.status().is_some() {
            return false;
        }
        // Through the process handle: a process another one forked (privilege separation)
        // is signalled by its parent.
        match self.process.signal_group_number(*signal as i32) {
            Ok(()) => true,
            Err(err) => {
                log::info!("signal {name} to process group {}: {err}", self.process.pid());
                false
            }
        }
    }

    fn break_requested(&mut self, length_ms: u32) -> bool {
        // sshd's `session_break_req`: `tcsendbreak` on the pty; the length is not used.
        if !self.pty {
            return false;
        }
        match self.process.send_break() {
            Ok(()) => true,
            Err(err) => {
                log::debug!("break of {length_ms} ms: {err}");
                false
            }
        }
    }

    fn connection_ended(&mut self) {
        if self.process.status().is_some() {
            return;
        }
        if let Err(err) = self.process.signal_group(twine_core::reactor::Signal::Hangup) {
            log::debug!("hanging up process group {}: {err}", self.process.pid());
        }
    }
}
