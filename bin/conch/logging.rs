//! `-v`, `-q`, `-E` and `LogLevel`: the library's log records printed as OpenSSH prints its
//! own (`debug1: ...`), to standard error or the `-E` file.

use std::fs::File;
use std::io::Write as _;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use twine_conch::config::values::LogLevel;

/// Where records go.
struct Logger {
    file: Option<Mutex<File>>,
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let prefix = match record.level() {
            Level::Error => "",
            Level::Warn | Level::Info => "",
            Level::Debug => "debug1: ",
            Level::Trace => "debug3: ",
        };
        let line = format!("{prefix}{}\r\n", record.args());
        let line = if crate::terminal::raw_active() { line } else { line.replace('\r', "") };
        match &self.file {
            Some(file) => {
                if let Ok(mut file) = file.lock() {
                    let _ = file.write_all(line.as_bytes());
                }
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// The level a configured `LogLevel` maps to: `INFO` shows errors and warnings only (the
/// library's info records are not OpenSSH's), `VERBOSE` adds info, `DEBUG*` debug and trace.
pub(crate) fn filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Quiet => LevelFilter::Off,
        LogLevel::Fatal | LogLevel::Error => LevelFilter::Error,
        LogLevel::Info => LevelFilter::Warn,
        LogLevel::Verbose => LevelFilter::Info,
        LogLevel::Debug1 | LogLevel::Debug2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Installs the logger; `file` is `-E`'s path (appended to).
pub(crate) fn init(level: LevelFilter, file: Option<&str>) -> Result<(), String> {
    let file = match file {
        Some(path) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|err| format!("Couldn't open logfile {path}: {err}"))?,
        )),
        None => None,
    };
    log::set_max_level(level);
    let _ = log::set_logger(Box::leak(Box::new(Logger { file, level })));
    Ok(())
}
