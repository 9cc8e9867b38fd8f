//! `conchd`: an SSH server that stands in for OpenSSH's `sshd` — its flags, `sshd_config`,
//! log lines and daemon behaviour — on twine's server adapter.
//!
//! Run by an ordinary user with no arguments, it is an embedded server: 127.0.0.1:2222 in the
//! foreground, host keys made on first start under `$XDG_STATE_HOME/conchd` (or
//! `~/.local/state/conchd`), only that user, from `~/.ssh/authorized_keys`, logging to
//! standard error. With any argument, or as root, it is `sshd`.

mod around;
mod cli;
#[path = "../ckeygen/getopt.rs"]
mod getopt;
mod hostkeys;
#[cfg(feature = "pam")]
mod keeper;
mod lastlog;
mod logging;
mod penalties;
mod policy;
mod privsep;
mod server;
mod startups;
mod utmp;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use nix::unistd::Uid;
use twine::conch::config::sshd::{ConnectionInfo, SshdConfig, SshdConfigFile, SshdLoader};
use twine::conch::config::values::LogLevel;
use twine::conch::config::OsFilesystem;
use twine::conch::server::Account;
use twine::internet::reactor::Signal;
use twine::internet::Reactor;

use cli::Options;
use logging::Sink;

/// Set in the environment of the background process a daemon start spawns.
const DAEMON_CHILD: &str = "CONCHD_DAEMON_CHILD";

/// The working directory at start, where a restart runs (relative `-f` and `-E` paths).
static START_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// A failure: the message, and the exit status.
struct Fatal(String, u8);

fn main() -> ExitCode {
    #[cfg(feature = "pam")]
    if let Some(never) = keeper::run_keeper() {
        match never {}
    }
    if let Some(err) = around::run_helper() {
        eprintln!("conchd: cannot run the shell: {err}");
        return ExitCode::from(1);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match cli::parse(&args) {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("{message}");
            eprintln!("{}", cli::USAGE);
            return ExitCode::from(1);
        }
    };
    if opts.version {
        eprintln!("{}, twine-conch", twine::conch::config::sshd::RELEASE);
        return ExitCode::SUCCESS;
    }
    let embedded = args.is_empty() && !Uid::effective().is_root();
    match run(&args, &opts, embedded) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal(message, code)) => {
            if !message.is_empty() {
                logging::fatal(&message);
            }
            ExitCode::from(code)
        }
    }
}

/// The embedded default's settings, as `-o` options over no file. `$HOME` (else the account's
/// home) holds `.ssh/authorized_keys`; `CONCHD_PORT` replaces 2222.
fn embedded_options(me: &Account) -> Result<Vec<String>, Fatal> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
        .unwrap_or_else(|| me.home.clone());
    let state = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("conchd"),
        None => home.join(".local/state/conchd"),
    };
    let keys = hostkeys::ensure(&state).map_err(|e| Fatal(format!("host keys: {e}"), 1))?;
    let port =
        std::env::var("CONCHD_PORT").ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(2222);
    let keys_file = home.join(".ssh/authorized_keys").display().to_string().replace('%', "%%");
    let mut options = vec![
        format!("Port {port}"),
        "ListenAddress 127.0.0.1".to_owned(),
        format!("AllowUsers {}", me.name),
        format!("AuthorizedKeysFile {keys_file}"),
        // Keys only: an ordinary user cannot read /etc/shadow.
        "PasswordAuthentication no".to_owned(),
        "PidFile none".to_owned(),
        "Subsystem sftp /usr/lib/openssh/sftp-server".to_owned(),
    ];
    if home != me.home {
        // The permission walk stops at the account's home; a stand-in home is checked by the
        // owner's own choice of directory instead.
        options.push("StrictModes no".to_owned());
    }
    options.extend(keys.into_iter().map(|k| format!("HostKey {k}")));
    Ok(options)
}

fn level(opts: &Options, config_level: LogLevel) -> log::LevelFilter {
    if opts.quiet {
        return log::LevelFilter::Off;
    }
    match opts.debug {
        0 => logging::filter(config_level),
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    }
}

fn load(opts: &Options, extra: &[String], path: Option<&str>) -> Result<SshdConfigFile, Fatal> {
    let fs = OsFilesystem;
    let home_lookup =
        |user: &str| Account::lookup(user).ok().flatten().map(|a| a.home.display().to_string());
    let mut loader = SshdLoader::new(&fs).user_home(&home_lookup);
    if let Ok(cwd) = std::env::current_dir() {
        loader = loader.cwd(cwd.display().to_string());
    }
    if let Some(home) = std::env::var_os("HOME") {
        loader = loader.home(home.to_string_lossy().into_owned());
    }
    for option in extra.iter().chain(&opts.options) {
        loader = loader.option(option.clone());
    }
    if let Some(family) = opts.family {
        loader = loader.option(format!("AddressFamily {family}"));
    }
    for key in &opts.host_keys {
        loader = loader.option(format!("HostKey {key}"));
    }
    for port in &opts.ports {
        loader = loader.port(*port);
    }
    let file = loader.load(path).map_err(|e| Fatal(e.to_string(), 255))?;
    for warning in file.warnings() {
        log::info!("{warning}");
    }
    Ok(file)
}

fn run(args: &[String], opts: &Options, embedded: bool) -> Result<(), Fatal> {
    let daemon_child = std::env::var_os(DAEMON_CHILD).is_some();
    let sink = if opts.quiet {
        Sink::Null
    } else if let Some(file) = &opts.log_file {
        logging::open_file(file).map_err(|e| Fatal(e, 255))?
    } else if (opts.inetd && opts.debug == 0 || daemon_child) && !opts.log_stderr {
        logging::syslog()
    } else {
        Sink::Stderr
    };
    logging::install(sink, level(opts, LogLevel::Info));
    let (extra, path) = if embedded {
        let me = Account::current().map_err(|e| Fatal(e.to_string(), 1))?;
        (embedded_options(&me)?, None)
    } else {
        let path = opts.config_file.clone().unwrap_or_else(|| "/etc/ssh/sshd_config".into());
        (Vec::new(), (!path.eq_ignore_ascii_case("none")).then_some(path))
    };
    let file = Arc::new(load(opts, &extra, path.as_deref())?);
    if opts.test == 2 || opts.print_only {
        let ci = match &opts.test_spec {
            Some(spec) => ConnectionInfo::parse_test_spec(spec).map_err(|e| Fatal(e, 1))?,
            None => ConnectionInfo::test(),
        };
        let config = file.effective(Some(&ci)).map_err(|e| Fatal(e.to_string(), 255))?;
        print!("{}", config.dump());
        return Ok(());
    }
    let startup = file.effective(None).map_err(|e| Fatal(e.to_string(), 255))?;
    let unenforced = policy::unenforced(&startup);
    if !unenforced.is_empty() {
        return Err(Fatal(format!("unsupported settings: {}", unenforced.join(", ")), 255));
    }
    if startup.use_pam && !cfg!(feature = "pam") {
        log::debug!("UsePAM yes, but conchd was built without PAM (feature pam): passwords are checked against /etc/shadow, keyboard-interactive is off");
    }
    raise_open_files_limit();
    if privsep::is_worker() {
        // A privilege-separated worker: no private key is ever loaded here.
        log::set_max_level(level(opts, startup.log_level));
        logging::set_facility(startup.syslog_facility);
        return privsep::worker::run(opts, &file, &startup);
    }
    policy::check_authentication_methods(&startup).map_err(|e| Fatal(e, 255))?;
    server::identification(&startup).map_err(|e| Fatal(e, 255))?;
    let host_keys = hostkeys::load(&startup.host_keys);
    if host_keys.is_empty() {
        return Err(Fatal("conchd: no hostkeys available -- exiting.".into(), 1));
    }
    if opts.test == 1 {
        return Ok(());
    }
    let background = !(embedded || opts.foreground || opts.debug > 0 || opts.inetd);
    if background && !daemon_child {
        return spawn_background(args);
    }
    if daemon_child {
        let _ = nix::unistd::setsid();
        std::env::remove_var(DAEMON_CHILD);
    }
    log::set_max_level(level(opts, startup.log_level));
    logging::set_facility(startup.syslog_facility);
    if let Ok(dir) = std::env::current_dir() {
        let _ = START_DIR.set(dir);
    }
    if daemon_child {
        let _ = std::env::set_current_dir("/");
    }
    serve(args, opts, &file, &startup, host_keys)
}

/// One reactor holds every connection, each with a socket (and a session's pty or pipes):
/// the soft limit on open files (often 1,024) is raised to the hard limit, as a server that
/// holds thousands of connections must. A failure leaves the limit as it was.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => log::debug!("open files limit raised from {soft} to {hard}"),
            Err(e) => log::debug!("open files limit stays {soft}: {e}"),
        }
    }
}

/// Starts the daemon as a background process in its own session, and returns.
fn spawn_background(args: &[String]) -> Result<(), Fatal> {
    let exe = std::env::current_exe().map_err(|e| Fatal(e.to_string(), 255))?;
    std::process::Command::new(exe)
        .args(args)
        .env(DAEMON_CHILD, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| Fatal(format!("daemon() failed: {e}"), 255))
}

fn serve(
    args: &[String],
    opts: &Options,
    file: &Arc<SshdConfigFile>,
    startup: &SshdConfig,
    host_keys: Vec<Arc<dyn twine::conch::keys::HostKeySigner>>,
) -> Result<(), Fatal> {
    if privsep::requested(&opts.options) && Uid::effective().is_root() {
        return privsep::monitor::run(args, opts, file, startup, host_keys);
    }
    let stack = Arc::new(server::stack_config(startup, host_keys).map_err(|e| Fatal(e, 255))?);
    let reactor = Reactor::new().map_err(|e| Fatal(e.to_string(), 255))?;
    let open_logins = Arc::new(AtomicUsize::new(0));
    let shared = server::Shared::new(&reactor);
    let build = {
        let (file, startup, stack, open_logins) =
            (Arc::clone(file), startup.clone(), Arc::clone(&stack), Arc::clone(&open_logins));
        move |reactor: &Reactor| {
            server::server_config(
                reactor,
                &file,
                &startup,
                Arc::clone(&stack),
                Arc::clone(&open_logins),
            )
        }
    };
    let (config, logins) = build(&reactor);
    let hub = server::Hub::new(&reactor, config, logins, Arc::clone(&shared));
    if opts.inetd {
        let stdin: OwnedFd = std::io::stdin().as_fd_owned().map_err(|e| Fatal(e, 255))?;
        let stdout: OwnedFd = std::io::stdout().as_fd_owned().map_err(|e| Fatal(e, 255))?;
        server::keep_alive_inetd(&stdin, startup.tcp_keep_alive);
        hub.count_one();
        shared.set_draining();
        reactor
            .adopt_fd_pair(stdin, stdout, hub.protocol())
            .map_err(|e| Fatal(e.to_string(), 255))?;
        reactor.run().map_err(|e| Fatal(e.to_string(), 255))?;
        // sshd ends with 255 when the connection failed before a login.
        return if hub.logins.total.get() == 0 { Err(Fatal(String::new(), 255)) } else { Ok(()) };
    }
    let single = opts.debug > 0;
    let workers = if single {
        0
    } else {
        std::thread::available_parallelism().map_or(1, usize::from).clamp(1, 64) - 1
    };
    let acceptor =
        server::Acceptor::new(&reactor, hub, workers, build, startup, single, open_logins);
    server::listen(&acceptor, &reactor, startup).map_err(|e| Fatal(e, 255))?;
    log::debug!("serving on {} reactors", acceptor.reactors());
    let pid_file = if opts.debug > 0 { None } else { startup.pid_file.clone() };
    if let Some(path) = &pid_file {
        if let Err(err) = std::fs::write(path, format!("{}\n", std::process::id())) {
            log::error!("Couldn't create pid file \"{path}\": {err}");
        }
    }
    let remove_pid = {
        let pid_file = pid_file.clone();
        move || {
            if let Some(path) = &pid_file {
                let ours = std::fs::read_to_string(path)
                    .is_ok_and(|text| text.trim() == std::process::id().to_string());
                if ours {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    };
    for signal in [Signal::Terminate, Signal::Interrupt] {
        let remove_pid = remove_pid.clone();
        reactor
            .observe_signal(signal, move || {
                log::info!("Received signal {}; terminating.", signal.as_raw());
                remove_pid();
                std::process::exit(255);
            })
            .map_err(|e| Fatal(e.to_string(), 255))?;
    }
    let hup = Rc::clone(&acceptor);
    let args = args.to_vec();
    let cwd = START_DIR.get().cloned();
    let foreground = opts.foreground || opts.debug > 0;
    reactor
        .observe_signal(Signal::Hangup, move || {
            if hup.is_draining() {
                return;
            }
            log::info!("Received SIGHUP; restarting.");
            remove_pid();
            hup.drain();
            if let Err(err) = restart(&args, cwd.as_deref(), foreground) {
                log::error!("restart failed: {err}");
            }
        })
        .map_err(|e| Fatal(e.to_string(), 255))?;
    let result = reactor.run().map_err(|e| Fatal(e.to_string(), 255));
    if !acceptor.is_draining() {
        if let Some(path) = &pid_file {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

/// `SIGHUP`: a new server with the same arguments (so the configuration is read again); this
/// one has stopped listening and ends with its last connection.
fn restart(args: &[String], cwd: Option<&Path>, foreground: bool) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command.args(args);
    if let Some(dir) = cwd {
        command.current_dir(dir);
    }
    if !foreground {
        command
            .env(DAEMON_CHILD, "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
    }
    command.spawn().map(drop)
}

/// Standard input and output as owned descriptors (duplicated), for inetd mode.
trait AsFdOwned {
    fn as_fd_owned(&self) -> Result<OwnedFd, String>;
}

impl<T: std::os::fd::AsFd> AsFdOwned for T {
    fn as_fd_owned(&self) -> Result<OwnedFd, String> {
        self.as_fd().try_clone_to_owned().map_err(|e| e.to_string())
    }
}
