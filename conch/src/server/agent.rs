//! Agent forwarding's socket directory: sshd's `auth_input_request_forwarding` makes a private
//! directory `/tmp/ssh-XXXXXXXXXX` (mode 0700, owned by the user) with the socket
//! `agent.<pid>` in it; `SSH_AUTH_SOCK` names the socket. The listening and the
//! `auth-agent@openssh.com` channels are the forwarding code's.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::crypto::{OsRandom, SecureRandom};
use crate::server::Account;

/// How many random names are tried before giving up.
const ATTEMPTS: usize = 8;

/// The characters of the random part (as `mkdtemp`'s).
const NAME_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Makes a fresh private directory under `base` for `account`'s agent socket and returns the
/// socket's path in it. The directory is mode 0700 and, when we run as root, owned by the
/// account.
pub(crate) fn socket_path(base: &Path, account: Option<&Account>) -> Result<PathBuf, String> {
    let mut rng = OsRandom::new();
    for _ in 0..ATTEMPTS {
        let mut bytes = [0u8; 10];
        rng.fill(&mut bytes).map_err(|e| format!("random: {e}"))?;
        let name: String = bytes
            .iter()
            .map(|b| {
                let at = usize::from(*b) % NAME_CHARS.len();
                char::from(NAME_CHARS.get(at).copied().unwrap_or(b'x'))
            })
            .collect();
        let dir = base.join(format!("ssh-{name}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(format!("mkdir {}: {err}", dir.display())),
        }
        // The umask may have taken bits away; make sure of 0700.
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        if let Some(account) = account {
            if nix::unistd::Uid::effective().is_root() {
                if let Err(err) =
                    std::os::unix::fs::chown(&dir, Some(account.uid), Some(account.gid))
                {
                    let _ = std::fs::remove_dir(&dir);
                    return Err(format!("chown {}: {err}", dir.display()));
                }
            }
        }
        return Ok(dir.join(format!("agent.{}", std::process::id())));
    }
    Err(format!("no free directory name under {}", base.display()))
}

/// Makes `account`'s forwarded-agent socket under `base` as sshd does, for a privileged
/// process that hands it to another: a fresh private directory and a socket in it, both owned
/// by the account (when we run as root), the socket mode 0600. Returns its path and the
/// listening socket; [`remove`] takes both away.
pub fn listen_for(
    base: &Path,
    account: &Account,
) -> Result<(PathBuf, std::os::unix::net::UnixListener), String> {
    let path = socket_path(base, Some(account))?;
    let listener = match std::os::unix::net::UnixListener::bind(&path) {
        Ok(listener) => listener,
        Err(err) => {
            remove(&path);
            return Err(format!("listen on {}: {err}", path.display()));
        }
    };
    let owned = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
        .and_then(|()| {
            if nix::unistd::Uid::effective().is_root() {
                std::os::unix::fs::chown(&path, Some(account.uid), Some(account.gid))
                    .map_err(|e| format!("chown {}: {e}", path.display()))
            } else {
                Ok(())
            }
        });
    if let Err(err) = owned {
        remove(&path);
        return Err(err);
    }
    Ok((path, listener))
}

/// Removes the socket and its directory.
pub fn remove(socket: &Path) {
    let _ = std::fs::remove_file(socket);
    if let Some(dir) = socket.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A socket made for another process is listening, private, and gone with `remove`.
    #[test]
    fn an_agent_socket_made_for_a_user_listens_in_its_private_directory() {
        let account = Account {
            name: "someone".into(),
            uid: nix::unistd::Uid::effective().as_raw(),
            gid: nix::unistd::Gid::effective().as_raw(),
            home: "/".into(),
            shell: "/bin/sh".into(),
        };
        let (path, listener) = listen_for(&std::env::temp_dir(), &account).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(&path).unwrap().uid(), account.uid);
        let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        assert!(listener.accept().is_ok());
        remove(&path);
        assert!(!path.parent().unwrap().exists());
    }

    /// The directory is new, private, and the socket path is inside it; removing takes both.
    #[test]
    fn the_agent_socket_gets_a_fresh_private_directory() {
        let base = std::env::temp_dir();
        let a = socket_path(&base, None).unwrap();
        let b = socket_path(&base, None).unwrap();
        assert_ne!(a.parent(), b.parent());
        let dir = a.parent().unwrap();
        assert!(dir.file_name().unwrap().to_string_lossy().starts_with("ssh-"));
        assert_eq!(std::fs::metadata(dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            a.file_name().unwrap().to_string_lossy(),
            format!("agent.{}", std::process::id())
        );
        remove(&a);
        remove(&b);
        assert!(!dir.exists());
    }
}
