//! `-f`: go to the background once authenticated (and the forwards are up). Without `fork` in
//! a safe program, the first process starts a copy of itself with standard input from
//! `/dev/null`, waits for it to say it is ready over a Unix socket, and exits 0; if the copy
//! fails first, its exit status is the first process's.

use std::io::{Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::Duration;

const READY_SOCKET: &str = "CONCH_BACKGROUND_READY";

/// Whether this is the process the user started (not the background copy).
pub(crate) fn is_parent() -> bool {
    std::env::var_os(READY_SOCKET).is_none()
}

/// Starts the background copy and waits until it is ready or gone.
pub(crate) fn spawn_and_wait(args: &[String]) -> u8 {
    let dir = std::env::temp_dir().join(format!("conch-bg-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("ready");
    let _ = std::fs::remove_file(&path);
    let result = (|| -> Result<u8, String> {
        let listener = UnixListener::bind(&path).map_err(|e| format!("background: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let program = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(program)
            .args(args)
            .env(READY_SOCKET, &path)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("background: {e}"))?;
        loop {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let mut byte = [0u8; 1];
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.read(&mut byte);
                    return Ok(0);
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(format!("background: {err}")),
            }
            match child.try_wait() {
                Ok(Some(status)) => {
                    return Ok(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(255));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(err) => return Err(err.to_string()),
            }
        }
    })();
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir(&dir);
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            255
        }
    }
}

/// In the background copy: tells the first process it may exit.
pub(crate) fn ready() {
    if let Some(path) = std::env::var_os(READY_SOCKET) {
        if let Ok(mut stream) = UnixStream::connect(&path) {
            let _ = stream.write_all(b"1");
        }
        // The copy keeps running; the processes it starts must not see the variable.
        std::env::remove_var(READY_SOCKET);
    }
}
