//! Privilege separation for conchd (`-o UsePrivilegeSeparation=sandbox`, as root).
//!
//! ```text
//!  conchd (root): the monitor ── host keys, listeners, accounts, authorized_keys, /etc/shadow,
//!     │                          PAM, sessions' processes (forked as the user, pty, utmp)
//!     ├── thread per worker: twine::conch::server::privsep::Monitor over its socketpair
//!     ├── main reactor: spawns and restarts workers, starts sessions, relays their exits
//!     │
//!  conchd (worker, one per core, re-executed with CONCHD_PRIVSEP_WORKER set)
//!     fd 3: socketpair to the monitor; fd 4…: the listeners
//!     builds its reactor, warms its thread pool, then: empty chroot (/run/sshd), uid `sshd`
//!     (else `nobody`), no_new_privs, seccomp (install_worker_seccomp); then accepts and runs
//!     key exchange, userauth, channels and forwardings, never holding a private key.
//! ```
//!
//! - Host keys: the worker has only the public halves (passed in its environment) and signs
//!   exchange hashes through `MonitorSigner`; the monitor signs only exchange hashes, at most
//!   once per connection before authentication, and after it `hostkeys-prove-00@openssh.com`
//!   proofs whose data it builds itself (`ProveHostKey`), for the keys it holds.
//! - Authentication: the worker's policy runs as without privilege separation, but account
//!   look-ups, `authorized_keys` contents and password checks come from the monitor
//!   ([`worker`]'s `PrivsepAuth`); a plain public key login's signature is verified by the
//!   monitor alone, from the exchange hash it signed (the worker's userauth leaves it
//!   unchecked: `backend_verifies_plain_key_signatures`; a certificate's is verified by both),
//!   a password by the monitor itself, before it accepts
//!   `ConnectionAuthenticated` — and only then starts sessions for that connection.
//!   Certificates are checked by the monitor with the policy's own backend
//!   (`policy::authorized_keys`: `TrustedUserCAKeys`, principals file, principals command run
//!   by the monitor as `AuthorizedPrincipalsCommandUser`, `RevokedKeys`, `cert-authority`
//!   lines) and their signature verified there; the worker's policy takes the monitor's
//!   answer and restrictions (`force-command`, `source-address`, no extension) through
//!   `set_certificate_override`. The monitor reads `authorized_keys` with the `Match` blocks
//!   that apply to the user and the connection (`policy::config_for`), and runs
//!   `AuthorizedKeysCommand` as `AuthorizedKeysCommandUser` for the key the worker names in
//!   `ReadAuthorizedKeys` (and again for the key it verifies), with both ends of the
//!   connection for `%C`.
//! - Sessions: the worker plans them (environment, command, pty); the monitor starts the plan
//!   as the verified user with conchd's own spawner (credentials, pty owner, utmp, motd, rc)
//!   and passes the pty controller or the pipes back with `SCM_RIGHTS`, plus a control socket
//!   ([`control`]) that carries signals to the process and its exit status back.
//! - Forwarding: the worker's seccomp filter allows `socket` (IPv4, IPv6, Unix), `connect`,
//!   `bind` and `listen`, so TCP forwardings run in the worker; host names are resolved by
//!   the monitor (`ResolveHost`). What the worker cannot do in its empty root, the monitor
//!   does and passes the socket back with `SCM_RIGHTS`: the forwarded agent's socket
//!   (`ListenAgent`: the user's `/tmp/ssh-*/agent.<pid>`, removed when the connection
//!   closes), a root login's `-R` on a port below 1024 (`ListenPrivileged`; other users are
//!   refused, as sshd does), and Unix-socket forwarding (`ListenStreamlocal`,
//!   `ConnectStreamlocal`, with the user's filesystem identity, as sshd's unprivileged child).
//!   The monitor checks the server-wide `AllowAgentForwarding`, `AllowTcpForwarding` and
//!   `AllowStreamLocalForwarding`; the worker applies the per-`Match` and per-key rules first.
//! - A worker that dies or breaks the protocol is killed and restarted after a back-off (one
//!   second, doubling while workers keep dying early, at most a minute: `restart_delay`); its
//!   connections are lost, other workers' are not. Its open connections' sources get
//!   `PerSourcePenalties`' crash penalty, which the monitor applies when a worker reports a new
//!   connection (the worker drops a penalized source).
//!
//! - PAM (`UsePAM yes`, feature `pam`): the monitor runs it (`PamDriver`, the transactions of
//!   conch's PAM backend, each on a thread of its own). A keyboard-interactive conversation is
//!   relayed round by round (the worker's `PamRelay` stands for PAM in its auth chain);
//!   passwords are checked through PAM, and key logins get PAM's account check; each session's
//!   PAM session is opened and closed by the session keeper the monitor starts, as root, as
//!   conchd does without privilege separation.
//!
//! Group names (`AllowGroups`, `Match Group`) and host names for `direct-tcpip` come from the
//! monitor too.

pub(crate) mod affinity;
pub(crate) mod control;
pub(crate) mod monitor;
pub(crate) mod worker;

/// Set in a worker's environment: its index.
pub(crate) const WORKER_VAR: &str = "CONCHD_PRIVSEP_WORKER";
/// Set in a worker's environment: how many listeners follow the monitor's socket.
pub(crate) const LISTENERS_VAR: &str = "CONCHD_PRIVSEP_LISTENERS";
/// Set in a worker's environment: the host public keys, hex blobs separated by commas.
pub(crate) const HOST_KEYS_VAR: &str = "CONCHD_PRIVSEP_HOSTKEYS";
/// Set in an inetd-mode worker's environment (`-i`): the two descriptors after the
/// monitor's are the connection's input and output, not listeners.
pub(crate) const INETD_VAR: &str = "CONCHD_PRIVSEP_INETD";
/// In a session plan's environment from a worker: the `ExposeAuthInfo` lines, which the
/// monitor writes to the user's file (and replaces by `SSH_USER_AUTH`) as it starts the session.
pub(crate) const AUTH_INFO_VAR: &str = "CONCHD_PRIVSEP_AUTH_INFO";
/// Set in a worker's environment: the monitor's process id (a worker whose parent is no longer
/// that process ends).
pub(crate) const MONITOR_PID_VAR: &str = "CONCHD_PRIVSEP_MONITOR";
/// Set in a worker's environment when it is to run on one CPU only: that CPU's number.
pub(crate) const CPU_VAR: &str = "CONCHD_PRIVSEP_CPU";
/// How many workers to start instead of one per core.
pub(crate) const WORKERS_VAR: &str = "CONCHD_PRIVSEP_WORKERS";
/// The descriptor of a worker's socketpair end; the listeners follow.
pub(crate) const MONITOR_FD: i32 = 3;
/// The empty directory workers are confined to (OpenSSH's `/run/sshd`).
pub(crate) const CHROOT_DIR: &str = "/run/sshd";

/// The environment switch, for running a whole test suite with or without privilege
/// separation (`CONCHD_PRIVSEP=sandbox` or `no`).
pub(crate) const SWITCH_VAR: &str = "CONCHD_PRIVSEP";

/// Whether a root conchd separates privileges when nothing says: see [`requested`]. On, as
/// sshd always does: everything a login needs (PAM, certificates, agent forwarding,
/// `hostkeys-prove`, privileged and Unix-socket forwards) goes through the monitor.
pub(crate) const DEFAULT: bool = true;

/// Whether privilege separation is asked for: `CONCHD_PRIVSEP` (`sandbox`/`yes` or `no`),
/// else `-o UsePrivilegeSeparation=` (`sandbox`/`yes` or `no`; the last one counts), else
/// [`DEFAULT`]. (In `sshd_config` the keyword is deprecated and its value is not kept.)
pub(crate) fn requested(options: &[String]) -> bool {
    let on = |value: &str| match value.trim().to_ascii_lowercase().as_str() {
        "sandbox" | "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    if let Some(choice) = std::env::var(SWITCH_VAR).ok().as_deref().and_then(on) {
        return choice;
    }
    options
        .iter()
        .rev()
        .find_map(|option| {
            let mut words = option.splitn(2, ['=', ' ', '\t']);
            let key = words.next().unwrap_or_default();
            let value = words.next().unwrap_or_default();
            key.eq_ignore_ascii_case("UsePrivilegeSeparation").then(|| on(value)).flatten()
        })
        .unwrap_or(DEFAULT)
}

/// Whether this process is a privilege-separated worker.
pub(crate) fn is_worker() -> bool {
    std::env::var_os(WORKER_VAR).is_some()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_takes_sshd_s_keyword_the_last_value_counting() {
        if std::env::var_os(SWITCH_VAR).is_some() {
            return;
        }
        assert!(requested(&["UsePrivilegeSeparation=sandbox".into()]));
        assert!(requested(&["useprivilegeseparation yes".into()]));
        assert!(!requested(&["UsePrivilegeSeparation=no".into()]));
        assert!(!requested(&[
            "UsePrivilegeSeparation=yes".into(),
            "UsePrivilegeSeparation no".into()
        ]));
        assert_eq!(requested(&["UsePAM=yes".into()]), DEFAULT);
    }

    #[test]
    fn hex_round_trips_and_rejects_odd_or_non_hex_text() {
        assert_eq!(unhex(&hex(&[0, 1, 0xab, 0xff])), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }
}
