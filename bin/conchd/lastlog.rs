//! The lastlog record sshd writes for a login on a pty (`/var/log/lastlog`, which `lastlog(8)`
//! reads): glibc's `struct lastlog` (a 32-bit time, the terminal line, the host; 292 bytes)
//! at the offset `uid * 292`. Written only when the file exists, as sshd does.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
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

    #[test]
    fn without_the_file_nothing_is_written() {
        let path = std::env::temp_dir().join(format!("conchd-no-lastlog-{}", std::process::id()));
        record_in(&path, 1, "pts/1", None, SystemTime::now()).unwrap();
        assert!(!path.exists());
    }
}
