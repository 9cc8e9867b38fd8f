//! The lastlog record sshd writes for a login on a pty (`/var/log/lastlog`, which `lastlog(8)`
//! reads): glibc's `struct lastlog` (a 32-bit time, the terminal line, the host; 292 bytes)
//! at the offset `uid * 292`. Written only when the file exists, as sshd does, and read
//! for the "Last login" line before the new login is written over it.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const LASTLOG: &str = "/var/log/lastlog";
const TIME_LEN: usize = 4;
const LINE_LEN: usize = 32;
const HOST_LEN: usize = 256;
const RECORD: usize = TIME_LEN + LINE_LEN + HOST_LEN;

/// Records a login of `uid` on `line` (`pts/3`) from `host` now, in `/var/log/lastlog`.
pub(crate) fn record(uid: u32, line: &str, host: Option<IpAddr>) {
    if let Err(err) = record_in(Path::new(LASTLOG), uid, line, host, SystemTime::now()) {
        log::debug!("lastlog for uid {uid}: {err}");
    }
}

/// The login before this one, as sshd finds it for its "Last login" line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Previous {
    /// The user's lastlog record: its time (Unix seconds) and host.
    Recorded(i64, String),
    /// The user's lastlog record is empty (never logged in, or a new account: `useradd`
    /// clears the record of the uid it hands out).
    Never,
    /// There is no lastlog file: the user's newest wtmp record tells.
    InWtmp(String),
}

impl Previous {
    /// Read before the new login is recorded (once it is, the record is this login's).
    pub(crate) fn of(uid: u32, user: &str) -> Self {
        Self::of_in(Path::new(LASTLOG), uid, user)
    }

    fn of_in(path: &Path, uid: u32, user: &str) -> Self {
        let Ok(mut file) = std::fs::File::open(path) else {
            return Self::InWtmp(user.to_owned());
        };
        let mut record = [0u8; RECORD];
        let offset = u64::from(uid) * RECORD as u64;
        // A file shorter than the record has none for this uid.
        if file.seek(SeekFrom::Start(offset)).is_err() || file.read_exact(&mut record).is_err() {
            return Self::Never;
        }
        let secs = record.first_chunk::<TIME_LEN>().map_or(0, |b| u32::from_ne_bytes(*b));
        if secs == 0 {
            return Self::Never;
        }
        let host = record.get(TIME_LEN + LINE_LEN..).unwrap_or_default();
        let used = host.iter().position(|b| *b == 0).unwrap_or(host.len());
        let host = String::from_utf8_lossy(host.get(..used).unwrap_or_default()).into_owned();
        Self::Recorded(i64::from(secs), host)
    }

    /// The form the session's helper process receives in its environment.
    pub(crate) fn to_env(&self) -> String {
        match self {
            Self::Recorded(secs, host) => format!("lastlog {secs} {host}"),
            Self::Never => "never".into(),
            Self::InWtmp(user) => format!("wtmp {user}"),
        }
    }

    /// The inverse of [`Previous::to_env`]; `None` for anything else.
    pub(crate) fn from_env(text: &str) -> Option<Self> {
        if text == "never" {
            return Some(Self::Never);
        }
        if let Some(user) = text.strip_prefix("wtmp ") {
            return Some(Self::InWtmp(user.to_owned()));
        }
        let rest = text.strip_prefix("lastlog ")?;
        let (secs, host) = rest.split_once(' ')?;
        Some(Self::Recorded(secs.parse().ok()?, host.to_owned()))
    }
}

fn record_in(
    path: &Path,
    uid: u32,
    line: &str,
    host: Option<IpAddr>,
    now: SystemTime,
) -> std::io::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let secs = u32::try_from(secs).unwrap_or(u32::MAX);
    let mut record = [0u8; RECORD];
    let mut put = |at: usize, len: usize, bytes: &[u8]| {
        let n = bytes.len().min(len);
        if let (Some(dst), Some(src)) = (record.get_mut(at..at + n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
    };
    put(0, TIME_LEN, &secs.to_ne_bytes());
    put(TIME_LEN, LINE_LEN, line.as_bytes());
    if let Some(host) = host {
        put(TIME_LEN + LINE_LEN, HOST_LEN, host.to_string().as_bytes());
    }
    let offset = u64::from(uid) * RECORD as u64;
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(&record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_lands_at_the_users_offset_with_time_line_and_host() {
        let dir = std::env::temp_dir().join(format!("conchd-lastlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lastlog");
        std::fs::write(&path, b"").unwrap();
        let when = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        record_in(&path, 3, "pts/7", "192.0.2.1".parse().ok(), when).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4 * RECORD);
        let at = 3 * RECORD;
        assert!(bytes[..at].iter().all(|b| *b == 0));
        assert_eq!(bytes[at..at + 4], 1_700_000_000u32.to_ne_bytes());
        assert_eq!(&bytes[at + 4..at + 9], b"pts/7");
        assert_eq!(&bytes[at + 36..at + 45], b"192.0.2.1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// sshd reads the record by uid: a new account given a deleted one's uid (which `useradd`
    /// clears) or a deleted one's name (which wtmp still holds) has no last login.
    #[test]
    fn the_previous_login_is_the_uids_record_read_before_the_new_one_is_written() {
        let dir = std::env::temp_dir().join(format!("conchd-lastlog-prev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lastlog");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(Previous::of_in(&path, 5, "ann"), Previous::Never);
        let when = UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        record_in(&path, 5, "pts/2", "192.0.2.9".parse().ok(), when).unwrap();
        let previous = Previous::of_in(&path, 5, "ann");
        assert_eq!(previous, Previous::Recorded(1_700_000_000, "192.0.2.9".into()));
        assert_eq!(Previous::of_in(&path, 4, "ann"), Previous::Never);
        assert_eq!(Previous::of_in(&path, 6, "ann"), Previous::Never);
        record_in(&path, 7, "pts/3", None, when).unwrap();
        assert_eq!(Previous::of_in(&path, 7, "bob"), Previous::Recorded(1_700_000_000, "".into()));
        let missing = dir.join("absent");
        assert_eq!(Previous::of_in(&missing, 5, "ann"), Previous::InWtmp("ann".into()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_previous_login_crosses_to_the_helper_and_back_unchanged() {
        for previous in [
            Previous::Recorded(1_700_000_000, "2001:db8::1".into()),
            Previous::Recorded(1, String::new()),
            Previous::Never,
            Previous::InWtmp("ann".into()),
        ] {
            assert_eq!(Previous::from_env(&previous.to_env()), Some(previous));
        }
        for garbage in ["", "lastlog", "lastlog x y", "lastlog 12", "other"] {
            assert_eq!(Previous::from_env(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn without_the_file_nothing_is_written() {
        let path = std::env::temp_dir().join(format!("conchd-no-lastlog-{}", std::process::id()));
        record_in(&path, 1, "pts/1", None, SystemTime::now()).unwrap();
        assert!(!path.exists());
    }
}
