//! sshd's log output: `debug1: ...` lines on standard error or appended to the `-E` file.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use twine::conch::config::values::{Facility, LogLevel};

/// Where log lines go.
pub(crate) enum Sink {
    /// Standard error.
    Stderr,
    /// Appended to a file (`-E`).
    File(std::fs::File),
    /// Nowhere (`-q`).
    Null,
    /// The system log (`/dev/log`), with this facility code: a daemon or inetd child without
    /// `-E` or `-e`, as sshd.
    Syslog(std::os::unix::net::UnixDatagram, u8),
}

/// Connects to the system log; logging goes nowhere if there is none.
pub(crate) fn syslog() -> Sink {
    let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else { return Sink::Null };
    match socket.connect("/dev/log") {
        Ok(()) => Sink::Syslog(socket, 4),
        Err(_) => Sink::Null,
    }
}

/// Sets the syslog facility (`SyslogFacility`) once the configuration is known.
pub(crate) fn set_facility(facility: Facility) {
    let code = match facility {
        Facility::Daemon => 3,
        Facility::User => 1,
        Facility::Auth => 4,
        Facility::AuthPriv => 10,
        Facility::Local(n) => 16 + n,
        _ => 4,
    };
    if let Some(logger) = LOGGER.get() {
        if let Ok(mut sink) = logger.sink.lock() {
            if let Sink::Syslog(_, current) = &mut *sink {
                *current = code;
            }
        }
    }
}

struct Logger {
    sink: Mutex<Sink>,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let prefix = match record.level() {
            Level::Error => "error: ",
            Level::Warn | Level::Info => "",
            Level::Debug => "debug1: ",
            Level::Trace => "debug3: ",
        };
        let line = format!("{prefix}{}\n", record.args());
        let Ok(mut sink) = self.sink.lock() else { return };
        let _ = match &mut *sink {
            Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
            Sink::File(file) => file.write_all(line.as_bytes()),
            Sink::Null => Ok(()),
            Sink::Syslog(socket, facility) => {
                let severity = match record.level() {
                    Level::Error => 3,
                    Level::Warn => 4,
                    Level::Info => 6,
                    Level::Debug | Level::Trace => 7,
                };
                let message = format!(
                    "<{}>conchd[{}]: {}",
                    u16::from(*facility) * 8 + severity,
                    std::process::id(),
                    line.trim_end()
                );
                socket.send(message.as_bytes()).map(drop)
            }
        };
    }

    fn flush(&self) {}
}

static LOGGER: std::sync::OnceLock<Logger> = std::sync::OnceLock::new();

/// The `log` filter for an sshd `LogLevel`.
pub(crate) fn filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Quiet => LevelFilter::Off,
        LogLevel::Fatal | LogLevel::Error => LevelFilter::Error,
        LogLevel::Info | LogLevel::Verbose => LevelFilter::Info,
        LogLevel::Debug1 | LogLevel::Debug2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Opens the `-E` file for appending.
pub(crate) fn open_file(path: &str) -> Result<Sink, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(Sink::File)
        .map_err(|e| format!("Couldn't open logfile {path}: {e}"))
}

/// Installs the logger (once) or replaces its sink and level.
pub(crate) fn install(sink: Sink, level: LevelFilter) {
    let logger = LOGGER.get_or_init(|| Logger { sink: Mutex::new(Sink::Null) });
    if let Ok(mut current) = logger.sink.lock() {
        *current = sink;
    }
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}

/// A line that must be seen even when logging is off or goes to a file: OpenSSH's `fatal`.
pub(crate) fn fatal(message: &str) {
    log::error!("{message}");
    let to_stderr = LOGGER
        .get()
        .and_then(|l| l.sink.lock().ok().map(|s| !matches!(*s, Sink::Stderr)))
        .unwrap_or(true);
    if to_stderr || log::max_level() < LevelFilter::Error {
        eprintln!("{message}");
    }
}
