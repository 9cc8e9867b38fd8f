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

/// Removes the socket and its directory.
pub(crate) fn remove(socket: &Path) {
    let _ = std::fs::remove_file(socket);
    if let Some(dir) = socket.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

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
