//! Login records as sshd writes them for sessions on a pty: a `USER_PROCESS` entry in
//! `/var/run/utmp` (when that file exists) and `/var/log/wtmp` at the start, a
//! `DEAD_PROCESS` entry in both at the end. Records are glibc's 384-byte `struct utmp`
//! (x86-64 and aarch64 layout), written with plain file I/O.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

const UTMP: &str = "/var/run/utmp";
const WTMP: &str = "/var/log/wtmp";
const RECORD: usize = 384;
const USER_PROCESS: u16 = 7;
const DEAD_PROCESS: u16 = 8;

/// One writer at a time in this process (sessions start on several reactors).
static LOCK: Mutex<()> = Mutex::new(());

/// A session's login record.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) pid: u32,
    /// The terminal without `/dev/` (`pts/3`).
    pub(crate) line: String,
    pub(crate) user: String,
    pub(crate) host: Option<IpAddr>,
}

impl Entry {
    /// The entry for a session's terminal, if it has one under `/dev/`.
    pub(crate) fn new(pid: u32, tty: &Path, user: &str, host: Option<IpAddr>) -> Option<Self> {
        let line = tty.strip_prefix("/dev").ok()?.to_str()?.to_owned();
        Some(Self { pid, line, user: user.to_owned(), host })
    }

    fn id(&self) -> &[u8] {
        let bytes = self.line.as_bytes();
        bytes.get(bytes.len().saturating_sub(4)..).unwrap_or(bytes)
    }

    fn record(&self, kind: u16) -> [u8; RECORD] {
        let mut r = [0u8; RECORD];
        let put = |r: &mut [u8; RECORD], at: usize, len: usize, bytes: &[u8]| {
            let n = bytes.len().min(len);
            if let (Some(dst), Some(src)) = (r.get_mut(at..at + n), bytes.get(..n)) {
                dst.copy_from_slice(src);
            }
        };
        put(&mut r, 0, 2, &kind.to_ne_bytes());
        put(&mut r, 4, 4, &self.pid.to_ne_bytes());
        put(&mut r, 8, 32, self.line.as_bytes());
        put(&mut r, 40, 4, self.id());
        if kind == USER_PROCESS {
            put(&mut r, 44, 32, self.user.as_bytes());
            if let Some(host) = self.host {
                put(&mut r, 76, 256, host.to_string().as_bytes());
                let addr: Vec<u8> = match host {
                    IpAddr::V4(v4) => v4.octets().to_vec(),
                    IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                put(&mut r, 348, 16, &addr);
            }
        }
        put(&mut r, 336, 4, &self.pid.to_ne_bytes());
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = u32::try_from(now.as_secs()).unwrap_or(u32::MAX);
        put(&mut r, 340, 4, &secs.to_ne_bytes());
        put(&mut r, 344, 4, &now.subsec_micros().to_ne_bytes());
        r
    }

    /// The session started.
    pub(crate) fn login(&self) {
        self.write(USER_PROCESS);
    }

    /// The session ended.
    pub(crate) fn logout(&self) {
        self.write(DEAD_PROCESS);
    }

    fn write(&self, kind: u16) {
        let record = self.record(kind);
        let Ok(_guard) = LOCK.lock() else { return };
        if Path::new(UTMP).exists() {
            if let Err(err) = self.update_utmp(&record) {
                log::debug!("{UTMP}: {err}");
            }
        }
        let appended =
            OpenOptions::new().append(true).open(WTMP).and_then(|mut f| f.write_all(&record));
        if let Err(err) = appended {
            log::debug!("{WTMP}: {err}");
        }
    }

    /// Replaces the entry with the same `ut_id` (or appends one).
    fn update_utmp(&self, record: &[u8; RECORD]) -> std::io::Result<()> {
        let mut file = OpenOptions::new().read(true).write(true).open(UTMP)?;
        let mut all = Vec::new();
        file.read_to_end(&mut all)?;
        let mut at = all.len() - all.len() % RECORD;
        for (index, existing) in all.chunks_exact(RECORD).enumerate() {
            if existing.get(40..44) == record.get(40..44) {
                at = index * RECORD;
                break;
            }
        }
        file.seek(SeekFrom::Start(u64::try_from(at).unwrap_or(u64::MAX)))?;
        file.write_all(record)
    }
}
