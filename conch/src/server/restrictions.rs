//! [`Restrictions`]: what an accepted login may do, as the deciding backend left it.

use crate::keys::authorized_keys::PermittedHostPort;
use crate::keys::KeyOptions;

/// What a session may do: the options of the `authorized_keys` line that let the user in, a
/// PAM account's limits, or an application's policy. Attached to
/// [`Decision::Accept`](crate::userauth::Decision::Accept) by an
/// [`AuthBackend`](super::AuthBackend) and enforced by the session and forwarding code.
///
/// The default allows everything (a login with no options). When several methods succeed one
/// after another (`AuthenticationMethods`), their restrictions are combined with
/// [`Restrictions::intersect`]: the session gets only what every step allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Restrictions {
    /// `command="..."`: run this instead of whatever the client asks (shell, command or
    /// subsystem); the client's command goes in `SSH_ORIGINAL_COMMAND`.
    pub forced_command: Option<String>,
    /// `environment="NAME=value"`, applied to sessions when the session backend permits user
    /// environments (OpenSSH's `PermitUserEnvironment`).
    pub environment: Vec<(String, String)>,
    /// Whether a pty may be allocated (`no-pty` clears it).
    pub pty: bool,
    /// Whether ports may be forwarded either way (`no-port-forwarding` clears it).
    pub port_forwarding: bool,
    /// Whether the agent may be forwarded (`no-agent-forwarding` clears it).
    pub agent_forwarding: bool,
    /// Whether X11 may be forwarded (`no-X11-forwarding` clears it).
    pub x11_forwarding: bool,
    /// Whether `~/.ssh/rc` may run (`no-user-rc` clears it).
    pub user_rc: bool,
    /// `permitopen="host:port"`: the only destinations of `direct-tcpip`; `None` allows any.
    pub permit_open: Option<Vec<PermittedHostPort>>,
    /// `permitlisten="[host:]port"`: the only `tcpip-forward` listeners; `None` allows any.
    pub permit_listen: Option<Vec<PermittedHostPort>>,
}

impl Default for Restrictions {
    fn default() -> Self {
        Self::none()
    }
}

impl Restrictions {
    /// No restriction at all.
    pub fn none() -> Self {
        Self {
            forced_command: None,
            environment: Vec::new(),
            pty: true,
            port_forwarding: true,
            agent_forwarding: true,
            x11_forwarding: true,
            user_rc: true,
            permit_open: None,
            permit_listen: None,
        }
    }

    /// Everything denied that can be (OpenSSH's `restrict`): no pty, no forwarding of any
    /// kind, no `~/.ssh/rc`.
    pub fn restricted() -> Self {
        Self {
            pty: false,
            port_forwarding: false,
            agent_forwarding: false,
            x11_forwarding: false,
            user_rc: false,
            ..Self::none()
        }
    }

    /// The restrictions an `authorized_keys` line's options impose (`from=` and
    /// `expiry-time=` are checked by the backend before it accepts, not carried here).
    pub fn from_key_options(options: &KeyOptions) -> Self {
        let list =
            |entries: &Vec<PermittedHostPort>| (!entries.is_empty()).then(|| entries.clone());
        Self {
            forced_command: options.command.clone(),
            environment: options.environment.clone(),
            pty: options.pty,
            port_forwarding: options.port_forwarding,
            agent_forwarding: options.agent_forwarding,
            x11_forwarding: options.x11_forwarding,
            user_rc: options.user_rc,
            permit_open: list(&options.permit_open),
            permit_listen: list(&options.permit_listen),
        }
    }

    /// Forces `command`.
    #[must_use]
    pub fn with_forced_command(mut self, command: impl Into<String>) -> Self {
        self.forced_command = Some(command.into());
        self
    }

    /// Combines the restrictions of two successful steps: a flag stays allowed only if both
    /// allow it, permission lists are intersected, environments are concatenated (the first
    /// value of a name wins, as in `authorized_keys`), and the first forced command wins.
    #[must_use]
    pub fn intersect(mut self, other: &Self) -> Self {
        if self.forced_command.is_none() {
            self.forced_command.clone_from(&other.forced_command);
        } else if other.forced_command.is_some() && other.forced_command != self.forced_command {
            log::warn!("two authentication steps force different commands; the first one runs");
        }
        for (name, value) in &other.environment {
            if !self.environment.iter().any(|(known, _)| known == name) {
                self.environment.push((name.clone(), value.clone()));
            }
        }
        self.pty &= other.pty;
        self.port_forwarding &= other.port_forwarding;
        self.agent_forwarding &= other.agent_forwarding;
        self.x11_forwarding &= other.x11_forwarding;
        self.user_rc &= other.user_rc;
        self.permit_open = intersect_lists(self.permit_open.take(), &other.permit_open, false);
        self.permit_listen = intersect_lists(self.permit_listen.take(), &other.permit_listen, true);
        self
    }

    /// Combines the restrictions of every step of a login (see [`intersect`](Self::intersect));
    /// none at all allows everything.
    pub fn combine<'a>(steps: impl IntoIterator<Item = &'a Self>) -> Self {
        steps.into_iter().fold(Self::none(), |acc, step| acc.intersect(step))
    }

    /// Whether `direct-tcpip` may connect to `host:port` (`permitopen=`: host compared
    /// exactly, case-insensitively, `*` for any host or port, as OpenSSH's `permitopen`).
    pub fn may_open(&self, host: &str, port: u32) -> bool {
        if !self.port_forwarding {
            return false;
        }
        let Some(list) = &self.permit_open else { return true };
        list.iter().any(|entry| host_port_matches(entry, host, port))
    }

    /// Whether `tcpip-forward` may listen on `host:port` (`permitlisten=`; an entry with only
    /// a port matches the loopback addresses and the empty host, as OpenSSH's default
    /// `localhost` listen address).
    pub fn may_listen(&self, host: &str, port: u32) -> bool {
        if !self.port_forwarding {
            return false;
        }
        let Some(list) = &self.permit_listen else { return true };
        list.iter().any(|entry| match &entry.host {
            Some(_) => host_port_matches(entry, host, port),
            None => is_default_listen_host(host) && entry.port.is_none_or(|p| u32::from(p) == port),
        })
    }
}

/// The hosts a `permitlisten` entry with only a port admits.
fn is_default_listen_host(host: &str) -> bool {
    host.is_empty()
        || ["localhost", "127.0.0.1", "::1"].iter().any(|h| h.eq_ignore_ascii_case(host))
}

fn host_port_matches(entry: &PermittedHostPort, host: &str, port: u32) -> bool {
    let host_ok = match &entry.host {
        Some(allowed) => allowed == "*" || allowed.eq_ignore_ascii_case(host),
        None => false,
    };
    host_ok && entry.port.is_none_or(|p| u32::from(p) == port)
}

/// What two permission lists both allow: each entry of one met with each entry of the other
/// (an entry admits a set of destinations; a list, the union of its entries' sets).
fn intersect_lists(
    mine: Option<Vec<PermittedHostPort>>,
    theirs: &Option<Vec<PermittedHostPort>>,
    listen: bool,
) -> Option<Vec<PermittedHostPort>> {
    match (mine, theirs) {
        (None, None) => None,
        (Some(list), None) => Some(list),
        (None, Some(list)) => Some(list.clone()),
        (Some(list), Some(other)) => {
            let mut both: Vec<PermittedHostPort> = Vec::new();
            for a in &list {
                for b in other {
                    if let Some(entry) = intersect_entries(a, b, listen) {
                        if !both.contains(&entry) {
                            both.push(entry);
                        }
                    }
                }
            }
            Some(both)
        }
    }
}

/// The destinations both `a` and `b` admit, if any. A port of `None` is any port; a host of
/// `*` any host; a host of `None` (only in `permitlisten`) the default listen hosts.
fn intersect_entries(
    a: &PermittedHostPort,
    b: &PermittedHostPort,
    listen: bool,
) -> Option<PermittedHostPort> {
    let port = match (a.port, b.port) {
        (None, port) | (port, None) => port,
        (Some(x), Some(y)) if x == y => Some(x),
        _ => return None,
    };
    let host = match (a.host.as_deref(), b.host.as_deref()) {
        (None, None) => None,
        (None, Some(h)) | (Some(h), None) => {
            if h == "*" {
                None
            } else if listen && is_default_listen_host(h) {
                Some(h.to_owned())
            } else {
                return None;
            }
        }
        (Some("*"), Some(h)) | (Some(h), Some("*")) => Some(h.to_owned()),
        (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => Some(x.to_owned()),
        _ => return None,
    };
    Some(PermittedHostPort { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: Option<&str>, port: Option<u16>) -> PermittedHostPort {
        PermittedHostPort { host: host.map(str::to_owned), port }
    }

    /// Every `authorized_keys` flag and list lands in the matching restriction.
    #[test]
    fn maps_every_key_option_to_a_restriction() {
        let options = KeyOptions::parse(
            "command=\"echo hi\",environment=\"A=b\",no-pty,no-port-forwarding,\
             no-agent-forwarding,no-X11-forwarding,no-user-rc,permitopen=\"db:5432\",\
             permitlisten=\"8080\"",
        )
        .unwrap();
        let r = Restrictions::from_key_options(&options);
        assert_eq!(r.forced_command.as_deref(), Some("echo hi"));
        assert_eq!(r.environment, vec![("A".to_owned(), "b".to_owned())]);
        assert!(!r.pty && !r.port_forwarding && !r.agent_forwarding);
        assert!(!r.x11_forwarding && !r.user_rc);
        assert_eq!(r.permit_open, Some(vec![entry(Some("db"), Some(5432))]));
        assert_eq!(r.permit_listen, Some(vec![entry(None, Some(8080))]));
    }

    /// `restrict` then `pty` leaves only the pty allowed, as OpenSSH reads it.
    #[test]
    fn restrict_then_pty_allows_only_the_pty() {
        let r = Restrictions::from_key_options(&KeyOptions::parse("restrict,pty").unwrap());
        assert!(r.pty);
        assert!(!r.port_forwarding && !r.agent_forwarding && !r.x11_forwarding && !r.user_rc);
        assert_eq!(r, Restrictions { pty: true, ..Restrictions::restricted() });
    }

    /// `permitopen` admits exactly the listed destinations, with `*` wildcards.
    #[test]
    fn permitopen_admits_only_listed_destinations() {
        let mut r = Restrictions::none();
        assert!(r.may_open("anywhere", 1));
        r.permit_open = Some(vec![entry(Some("db"), Some(5432)), entry(Some("*"), Some(80))]);
        assert!(r.may_open("db", 5432) && r.may_open("DB", 5432));
        assert!(r.may_open("example.org", 80));
        assert!(!r.may_open("db", 5433) && !r.may_open("other", 5432));
        r.port_forwarding = false;
        assert!(!r.may_open("db", 5432));
    }

    /// `permitlisten` with only a port admits loopback listeners on that port only.
    #[test]
    fn permitlisten_port_only_means_loopback() {
        let mut r = Restrictions::none();
        r.permit_listen = Some(vec![entry(None, Some(8080))]);
        assert!(r.may_listen("localhost", 8080) && r.may_listen("", 8080));
        assert!(!r.may_listen("0.0.0.0", 8080) && !r.may_listen("localhost", 8081));
    }

    /// A key's `permitlisten` with only a port and the server's `PermitListen` naming that
    /// port on 127.0.0.1 together admit that listener, and nothing the server does not name.
    #[test]
    fn a_bare_listen_port_and_a_host_port_for_it_admit_that_listener() {
        let mut key = Restrictions::none();
        key.permit_listen = Some(vec![entry(None, Some(6082))]);
        let mut server = Restrictions::none();
        server.permit_listen = Some(vec![
            entry(Some("127.0.0.1"), Some(1)),
            entry(Some("127.0.0.1"), Some(6082)),
            entry(Some("127.0.0.2"), Some(2)),
        ]);
        let both = key.intersect(&server);
        assert!(both.may_listen("127.0.0.1", 6082));
        assert!(!both.may_listen("localhost", 6082), "the server names only 127.0.0.1");
        assert!(!both.may_listen("127.0.0.1", 1) && !both.may_listen("127.0.0.2", 2));
    }

    /// Wildcards meet specific entries in what both admit: `*:80` and `db:*` leave `db:80`.
    #[test]
    fn wildcard_permissions_meet_in_what_both_admit() {
        let mut a = Restrictions::none();
        a.permit_open = Some(vec![entry(Some("*"), Some(80)), entry(Some("web"), Some(443))]);
        let mut b = Restrictions::none();
        b.permit_open = Some(vec![entry(Some("DB"), None)]);
        let both = a.intersect(&b);
        assert_eq!(both.permit_open, Some(vec![entry(Some("DB"), Some(80))]));
        assert!(both.may_open("db", 80));
        assert!(!both.may_open("db", 81) && !both.may_open("web", 443));
    }

    /// Two steps combine to what both allow.
    #[test]
    fn intersecting_keeps_only_what_both_allow() {
        let mut a = Restrictions::none().with_forced_command("first");
        a.permit_open = Some(vec![entry(Some("a"), Some(1)), entry(Some("b"), Some(2))]);
        a.environment = vec![("X".into(), "1".into())];
        let mut b = Restrictions { pty: false, ..Restrictions::none() };
        b.permit_open = Some(vec![entry(Some("b"), Some(2))]);
        b.environment = vec![("X".into(), "2".into()), ("Y".into(), "3".into())];
        b.forced_command = Some("second".into());
        let both = Restrictions::combine([&a, &b]);
        assert!(!both.pty && both.port_forwarding);
        assert_eq!(both.forced_command.as_deref(), Some("first"));
        assert_eq!(both.permit_open, Some(vec![entry(Some("b"), Some(2))]));
        assert_eq!(both.environment, vec![("X".into(), "1".into()), ("Y".into(), "3".into())]);
        assert_eq!(Restrictions::combine([]), Restrictions::none());
    }
}
