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

/// The user's previous login in wtmp: the newest `USER_PROCESS` record for `user` not made by
/// process `this_pid` (the session asking), as its time (Unix seconds) and host. Blocking; run
/// in the session's helper process.
pub(crate) fn last_login(user: &str, this_pid: u32) -> Option<(i64, String)> {
    last_login_in(Path::new(WTMP), user, this_pid)
}

fn last_login_in(path: &Path, user: &str, this_pid: u32) -> Option<(i64, String)> {
    const CHUNK: u64 = 256 * RECORD as u64;
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut end = len - len % RECORD as u64;
    let field = |r: &[u8], at: usize, n: usize| -> String {
        let bytes = r.get(at..at + n).unwrap_or_default();
        let used = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(bytes.get(..used).unwrap_or_default()).into_owned()
    };
    let word = |r: &[u8], at: usize| -> [u8; 4] {
        r.get(at..at + 4).and_then(|b| b.try_into().ok()).unwrap_or_default()
    };
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        file.seek(SeekFrom::Start(start)).ok()?;
        let mut chunk = vec![0u8; usize::try_from(end - start).ok()?];
        file.read_exact(&mut chunk).ok()?;
        for record in chunk.chunks_exact(RECORD).rev() {
            let kind = u16::from_ne_bytes([record.first().copied()?, record.get(1).copied()?]);
            if kind != USER_PROCESS || field(record, 44, 32) != user {
                continue;
            }
            if u32::from_ne_bytes(word(record, 4)) == this_pid {
                continue;
            }
            let secs = i64::from(u32::from_ne_bytes(word(record, 340)));
            return Some((secs, field(record, 76, 256)));
        }
        end = start;
    }
    None
}

/// sshd's line: `Last login: Sat Nov 28 05:16:16 2026 from 127.0.0.1` (`ctime` in local time).
pub(crate) fn last_login_message(secs: i64, host: &str) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    // The local civil time, as UTC shifted by the zone's offset then (`TZ` honoured).
    let local = secs.saturating_add(twine::conch::server::auth::local_offset(secs));
    let time = tz::DateTime::from_timespec(local, 0, tz::TimeZoneRef::utc()).ok();
    let when = match time {
        Some(t) => format!(
            "{} {} {:2} {:02}:{:02}:{:02} {}",
            DAYS.get(usize::from(t.week_day())).unwrap_or(&"???"),
            MONTHS.get(usize::from(t.month()).saturating_sub(1)).unwrap_or(&"???"),
            t.month_day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.year()
        ),
        None => secs.to_string(),
    };
    if host.is_empty() {
        format!("Last login: {when}\r\n")
    } else {
        format!("Last login: {when} from {host}\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest record of the user counts, and the asking session's own record does not.
    #[test]
    fn the_last_login_is_the_newest_record_of_the_user_but_not_this_sessions() {
        let path = std::env::temp_dir().join(format!("conchd-wtmp-{}", std::process::id()));
        let host = |h: &str| h.parse().ok();
        let older =
            Entry { pid: 10, line: "pts/1".into(), user: "ann".into(), host: host("10.0.0.1") };
        let newer =
            Entry { pid: 11, line: "pts/2".into(), user: "ann".into(), host: host("10.0.0.2") };
        let other =
            Entry { pid: 12, line: "pts/3".into(), user: "bob".into(), host: host("10.0.0.3") };
        let mine =
            Entry { pid: 13, line: "pts/4".into(), user: "ann".into(), host: host("10.0.0.4") };
        let mut bytes = Vec::new();
        for (entry, kind) in [
            (&older, USER_PROCESS),
            (&newer, USER_PROCESS),
            (&newer, DEAD_PROCESS),
            (&other, USER_PROCESS),
            (&mine, USER_PROCESS),
        ] {
            bytes.extend_from_slice(&entry.record(kind));
        }
        std::fs::write(&path, &bytes).unwrap();
        let found = last_login_in(&path, "ann", 13);
        let none = last_login_in(&path, "carl", 13);
        let _ = std::fs::remove_file(&path);
        assert_eq!(found.map(|(_, h)| h).as_deref(), Some("10.0.0.2"));
        assert_eq!(none, None);
    }

    /// The date reads as `ctime`'s, the host follows "from".
    #[test]
    fn the_last_login_line_reads_as_sshds() {
        let line = last_login_message(0, "192.0.2.7");
        assert!(line.starts_with("Last login: "), "{line}");
        assert!(line.ends_with(" from 192.0.2.7\r\n"), "{line}");
        assert_eq!(
            last_login_message(86_400 * 365, "").len(),
            "Last login: Fri Jan  1 00:00:00 1971\r\n".len()
        );
    }
}
