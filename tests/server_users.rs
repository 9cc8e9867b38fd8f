//! End to end, as root: a twine server logs in another system user by their own
//! `~/.ssh/authorized_keys` and runs their sessions as them (groups, ids, home, pty owner).
//! Skipped when not root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use server_support::{keygen, pub_path, stderr, stdout, Options, Server, Sessions, TempDir};

/// A system user made for one test (`useradd`), removed on drop.
struct TestUser {
    name: String,
    home: PathBuf,
}

impl TestUser {
    /// A user whose home is `home`, with `key` authorized in `~/.ssh/authorized_keys`, all
    /// owned by the user with sshd's strict modes satisfied.
    fn create(home: PathBuf, key: &Path) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("tws{}x{}", std::process::id(), COUNT.fetch_add(1, Ordering::SeqCst));
        // A stale account of this name (a killed run with the same pid) would fail useradd.
        let _ = Command::new("userdel").arg(&name).output();
        let added = (0..50).any(|_| {
            let status = Command::new("useradd")
                .args(["-M", "-s", "/bin/sh", "-d"])
                .arg(&home)
                .arg(&name)
                .status();
            let ok = status.is_ok_and(|s| s.success());
            if !ok {
                // Another process may hold /etc/passwd's lock for a moment.
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            ok
        });
        assert!(added, "useradd {name}");
        let user = Self { name, home };
        let ssh_dir = user.home.join(".ssh");
        std::fs::create_dir_all(&ssh_dir).unwrap();
        std::fs::copy(pub_path(key), ssh_dir.join("authorized_keys")).unwrap();
        let owner = format!("{}:", user.name);
        let status = Command::new("chown").args(["-R", &owner]).arg(&user.home).status().unwrap();
        assert!(status.success());
        let status = Command::new("chmod").args(["-R", "go-w"]).arg(&user.home).status().unwrap();
        assert!(status.success());
        user
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg("-f").arg(&self.name).output();
    }
}

/// A server for the system's users and a new user with a key, or `None` (skipped) when not
/// root.
fn start() -> Option<(Server, TestUser, TempDir, PathBuf)> {
    let root = twine_conch::server::Account::current().is_ok_and(|account| account.uid == 0);
    if !root {
        eprintln!("skipped: serving another user needs root");
        return None;
    }
    let dir = TempDir::new("users");
    let key = keygen(&dir, "ed25519");
    let user = TestUser::create(dir.path("home"), &key);
    let mut options = Options::new(Sessions::Unix);
    options.system_users = true;
    Some((Server::start(options), user, dir, key))
}

/// Commands run with the user's ids, home and working directory; a pty belongs to them and
/// the `tty` group, mode 0620, from the first look.
#[test]
fn a_root_server_runs_sessions_as_the_logged_in_user() {
    let Some((server, user, _dir, key)) = start() else { return };
    let account = twine_conch::server::Account::lookup(&user.name).unwrap().unwrap();

    let output =
        server.ssh_as(&user.name).key(&key).run(&["id -u; id -g; id -un; echo $HOME; pwd"], b"");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let home = user.home.display().to_string();
    let expected = format!("{}\n{}\n{}\n{home}\n{home}\n", account.uid, account.gid, user.name);
    assert_eq!(stdout(&output), expected);

    let script = "stat -c '%U %G %a' \"$(tty)\"";
    let output = server.ssh_as(&user.name).key(&key).args(&["-tt"]).run(&[script], b"");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("{} tty 620\r\n", user.name));
}

/// The user's key opens only the user's account: as root it is refused.
#[test]
fn the_users_key_does_not_open_another_account() {
    let Some((server, _user, _dir, key)) = start() else { return };
    let output = server.ssh_as("root").key(&key).run(&["id -u"], b"");
    assert_eq!(output.status.code(), Some(255));
    assert!(stderr(&output).contains("Permission denied"), "{}", stderr(&output));
}
