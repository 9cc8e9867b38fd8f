//! Forwarding specifications (`LocalForward`, `RemoteForward`, `DynamicForward`, `-L`, `-R`,
//! `-D`): OpenSSH's `parse_forward`, with `[bind:]port`, bracketed IPv6 addresses, backslash
//! escapes and Unix socket paths.

use crate::config::values::parse_port;

/// One end of a forwarding: a TCP address or a Unix socket path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A host (`None`: the default bind address, or no host for a listening end) and port.
    /// Port 0 on a remote listener asks the server to choose.
    Tcp {
        /// The host or address, without brackets.
        host: Option<String>,
        /// The port.
        port: u16,
    },
    /// A Unix socket path.
    Unix(String),
}

/// A parsed forwarding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Forward {
    /// Where to listen.
    pub listen: Endpoint,
    /// Where to connect; `None` for dynamic (SOCKS) forwarding.
    pub connect: Option<Endpoint>,
}

/// The kind of forwarding a specification is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardKind {
    /// `-L` / `LocalForward`.
    Local,
    /// `-R` / `RemoteForward` (a lone `[bind:]port` means dynamic remote forwarding).
    Remote,
    /// `-D` / `DynamicForward`.
    Dynamic,
}

struct Field {
    text: String,
    is_path: bool,
}

/// Splits the next `:`-separated field (OpenSSH's `parse_fwd_field`).
fn next_field(s: &str) -> Option<(Field, Option<&str>)> {
    if s.is_empty() {
        return None;
    }
    if let Some(inner) = s.strip_prefix('[') {
        let end = inner.find(']')?;
        let text = inner.get(..end)?;
        let after = inner.get(end + 1..)?;
        let rest = match after.chars().next() {
            None => None,
            Some(':') => Some(after.get(1..)?),
            Some(_) => return None,
        };
        return Some((Field { text: text.to_owned(), is_path: text.contains('/') }, rest));
    }
    let mut text = String::new();
    let mut is_path = false;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?.1),
            '/' => {
                is_path = true;
                text.push(c);
            }
            ':' => return Some((Field { text, is_path }, Some(s.get(i + 1..)?))),
            _ => text.push(c),
        }
    }
    Some((Field { text, is_path }, None))
}

fn port_of(s: &str) -> Option<u16> {
    parse_port(s)
}

/// Parses a forwarding specification; `None` where OpenSSH says "Bad forwarding
/// specification".
pub fn parse_forward(spec: &str, kind: ForwardKind) -> Option<Forward> {
    let spec = spec.trim_start();
    let mut fields = Vec::new();
    let mut rest = Some(spec);
    while let Some(s) = rest {
        if fields.len() == 4 {
            return None;
        }
        let (field, next) = next_field(s)?;
        fields.push(field);
        rest = next;
    }
    let tcp = |host: Option<&Field>, port: &Field| -> Option<Endpoint> {
        Some(Endpoint::Tcp { host: host.map(|h| h.text.clone()), port: port_of(&port.text)? })
    };
    let unix = |f: &Field| Endpoint::Unix(f.text.clone());
    let (listen, connect) = match fields.as_slice() {
        [a] => {
            let listen = if a.is_path { unix(a) } else { tcp(None, a)? };
            (listen, None)
        }
        [a, b] => {
            if a.is_path && b.is_path {
                (unix(a), Some(unix(b)))
            } else if b.is_path {
                (tcp(None, a)?, Some(unix(b)))
            } else {
                (tcp(Some(a), b)?, None)
            }
        }
        [a, b, c] => {
            if a.is_path {
                (unix(a), Some(tcp(Some(b), c)?))
            } else if c.is_path {
                (tcp(Some(a), b)?, Some(unix(c)))
            } else {
                (tcp(None, a)?, Some(tcp(Some(b), c)?))
            }
        }
        [a, b, c, d] => (tcp(Some(a), b)?, Some(tcp(Some(c), d)?)),
        _ => return None,
    };
    let dynamic = connect.is_none();
    match kind {
        ForwardKind::Dynamic if !dynamic || fields.len() > 2 => return None,
        ForwardKind::Local if dynamic => return None,
        _ => {}
    }
    if let Some(Endpoint::Tcp { port: 0, .. }) = &connect {
        return None;
    }
    if kind != ForwardKind::Remote {
        if let Endpoint::Tcp { port: 0, .. } = listen {
            return None;
        }
    }
    if let Some(Endpoint::Tcp { host: Some(h), .. }) = &connect {
        if h.len() >= 1025 {
            return None;
        }
    }
    Some(Forward { listen, connect })
}

impl Forward {
    /// The `ssh -G` form of one end.
    pub(super) fn format_end(end: &Endpoint) -> String {
        match end {
            Endpoint::Unix(path) => path.clone(),
            Endpoint::Tcp { host: None, port } => port.to_string(),
            Endpoint::Tcp { host: Some(h), port } => format!("[{h}]:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: Option<&str>, port: u16) -> Endpoint {
        Endpoint::Tcp { host: host.map(str::to_owned), port }
    }

    /// Local forwards take `[bind:]port:host:hostport`, brackets and paths.
    #[test]
    fn parses_local_forwards() {
        let l = |s: &str| parse_forward(s, ForwardKind::Local);
        assert_eq!(
            l("8080:localhost:80"),
            Some(Forward { listen: tcp(None, 8080), connect: Some(tcp(Some("localhost"), 80)) })
        );
        assert_eq!(l("127.0.0.1:8080:db:5432").unwrap().listen, tcp(Some("127.0.0.1"), 8080));
        assert_eq!(
            l("[::1]:8080:[2001:db8::1]:22").unwrap().connect,
            Some(tcp(Some("2001:db8::1"), 22))
        );
        assert_eq!(
            l("8080:/run/app.sock").unwrap().connect,
            Some(Endpoint::Unix("/run/app.sock".into()))
        );
        assert_eq!(
            l("/tmp/l.sock:/run/app.sock").unwrap().listen,
            Endpoint::Unix("/tmp/l.sock".into())
        );
        assert_eq!(l("/tmp/l.sock:host:22").unwrap().connect, Some(tcp(Some("host"), 22)));
        assert_eq!(l("a\\:b:1:h:2").unwrap().listen, tcp(Some("a:b"), 1));
        assert_eq!(l("8080"), None);
        assert_eq!(l("0:h:22"), None);
        assert_eq!(l("8080:h:0"), None);
        assert_eq!(l("x:h:22"), None);
        assert_eq!(l("1:2:3:4:5"), None);
        assert_eq!(l("[::1:8080:h:22"), None);
    }

    /// Remote forwards allow port 0 and a lone port (dynamic); dynamic ones take one field
    /// or two.
    #[test]
    fn parses_remote_and_dynamic_forwards() {
        assert_eq!(parse_forward("0:h:22", ForwardKind::Remote).unwrap().listen, tcp(None, 0));
        assert_eq!(parse_forward("9000", ForwardKind::Remote).unwrap().connect, None);
        assert_eq!(
            parse_forward("1080", ForwardKind::Dynamic),
            Some(Forward { listen: tcp(None, 1080), connect: None })
        );
        assert_eq!(
            parse_forward("[::1]:1080", ForwardKind::Dynamic).unwrap().listen,
            tcp(Some("::1"), 1080)
        );
        assert_eq!(parse_forward("1080:h:22", ForwardKind::Dynamic), None);
        assert_eq!(parse_forward("0", ForwardKind::Dynamic), None);
    }
}
