//! The command line, as OpenSSH's `ssh` reads it: getopt-style flags before the destination
//! and, once, between the destination and the command; `-o` and most flags become
//! configuration lines that win over the files (the first value obtained wins).

use twine_conch::config::ssh::{parse_forward, Endpoint, Forward, ForwardKind};

use crate::getopt::{getopt, GetoptError};

/// The flags `ssh` takes (ours: those listed in the issue, and the rest of OpenSSH's accepted
/// so that scripts written for `ssh` parse).
const SPEC: &str = "1246ab:c:e:fgi:kl:m:no:p:qstvxAB:CD:E:F:GI:J:KL:MNO:P:Q:R:S:TVw:W:XYy";

/// What the command line asks for.
#[derive(Debug, Default)]
pub(crate) struct Cli {
    /// Configuration lines, in the order given (first value wins).
    pub(crate) options: Vec<String>,
    /// `-F`.
    pub(crate) config_file: Option<String>,
    /// `-E`.
    pub(crate) log_file: Option<String>,
    /// `-v` count.
    pub(crate) verbose: u8,
    /// `-q`.
    pub(crate) quiet: bool,
    /// `-G`.
    pub(crate) dump: bool,
    /// `-Q topic`.
    pub(crate) query: Option<String>,
    /// `-n`.
    pub(crate) null_stdin: bool,
    /// `-f`.
    pub(crate) background: bool,
    /// `-N`.
    pub(crate) no_command: bool,
    /// `-t` (`yes`, `force` when given twice) or `-T` (`no`), the last one winning.
    pub(crate) request_tty: Option<&'static str>,
    /// `-s`: the command is a subsystem.
    pub(crate) subsystem: bool,
    /// `-L`, `-D`, `-R` from the command line.
    pub(crate) local: Vec<Forward>,
    pub(crate) dynamic: Vec<Forward>,
    pub(crate) remote: Vec<Forward>,
    /// `-W host:port`.
    pub(crate) stdio_forward: Option<(String, u16)>,
    /// `-W` also means `ExitOnForwardFailure yes` and `ClearAllForwardings yes`, unless the
    /// command line says otherwise (added after every other option).
    pub(crate) stdio_forward_flags: bool,
    /// `-O ctl_cmd`.
    pub(crate) control_command: Option<String>,
    /// The destination's host, and the user and port it named.
    pub(crate) host: String,
    pub(crate) user: Option<String>,
    pub(crate) port: Option<u16>,
    /// How many configuration lines came before the destination: its user goes after them
    /// (the first value wins, so `-l` before `user@host` beats it, and after it loses).
    pub(crate) destination_position: usize,
    /// The command words.
    pub(crate) command: Vec<String>,
    /// `-V`.
    pub(crate) version: bool,
}

/// Why the command line was refused: the text to print (`None`: the usage), exit 255.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) Option<String>);

/// OpenSSH's usage text.
pub(crate) const USAGE: &str = "\
usage: conch [-46AaCfGgKkMNnqsTtVvXxYy] [-B bind_interface] [-b bind_address]
           [-c cipher_spec] [-D [bind_address:]port] [-E log_file]
           [-e escape_char] [-F configfile] [-I pkcs11] [-i identity_file]
           [-J destination] [-L address] [-l login_name] [-m mac_spec]
           [-O ctl_cmd] [-o option] [-P tag] [-p port] [-R address]
           [-S ctl_path] [-W host:port] [-w local_tun[:remote_tun]]
           destination [command [argument ...]]
       conch [-Q query_option]";

impl Cli {
    /// Parses the arguments after the program name.
    pub(crate) fn parse(args: &[String]) -> Result<Self, Refused> {
        let mut cli = Self::default();
        let (opts, rest) = getopt(args, SPEC).map_err(getopt_error)?;
        cli.apply(opts)?;
        let mut rest = rest;
        if cli.query.is_some() || (cli.version && rest.is_empty()) {
            return Ok(cli);
        }
        let Some(destination) = rest.first().cloned() else {
            return Err(Refused(None));
        };
        cli.destination(&destination)?;
        cli.destination_position = cli.options.len();
        rest.remove(0);
        // `--` before the destination ends the options for good.
        let before = args.len().saturating_sub(rest.len() + 1);
        let terminated = args.get(..before).is_some_and(|b| b.iter().any(|a| a == "--"));
        if !terminated && rest.first().is_some_and(|a| a.starts_with('-')) {
            let (opts, after) = getopt(&rest, SPEC).map_err(getopt_error)?;
            cli.apply(opts)?;
            rest = after;
        }
        cli.command = rest;
        Ok(cli)
    }

    fn apply(&mut self, opts: Vec<crate::getopt::Opt>) -> Result<(), Refused> {
        for opt in opts {
            let arg = opt.arg.unwrap_or_default();
            let push = |cli: &mut Self, line: String| cli.options.push(line);
            match opt.letter {
                '4' => push(self, "AddressFamily inet".into()),
                '6' => push(self, "AddressFamily inet6".into()),
                'A' => push(self, "ForwardAgent yes".into()),
                'a' => push(self, "ForwardAgent no".into()),
                'C' => push(self, "Compression yes".into()),
                'X' | 'Y' => push(self, "ForwardX11 yes".into()),
                'x' => push(self, "ForwardX11 no".into()),
                'g' => push(self, "GatewayPorts yes".into()),
                'M' => push(self, "ControlMaster yes".into()),
                'K' | 'k' | 'y' | '1' | '2' => {}
                'f' => self.background = true,
                'G' => self.dump = true,
                'N' => self.no_command = true,
                'n' => self.null_stdin = true,
                'q' => self.quiet = true,
                's' => self.subsystem = true,
                'T' => self.request_tty = Some("no"),
                't' => {
                    let forced =
                        self.request_tty == Some("yes") || self.request_tty == Some("force");
                    self.request_tty = Some(if forced { "force" } else { "yes" });
                }
                'V' => self.version = true,
                'v' => self.verbose = self.verbose.saturating_add(1),
                'b' => push(self, format!("BindAddress {arg}")),
                'B' => push(self, format!("BindInterface {arg}")),
                'c' => push(self, format!("Ciphers {arg}")),
                'm' => push(self, format!("MACs {arg}")),
                'e' => push(self, format!("EscapeChar {arg}")),
                'E' => self.log_file = Some(arg),
                'F' => self.config_file = Some(arg),
                'I' => push(self, format!("PKCS11Provider {arg}")),
                'i' => push(self, format!("IdentityFile {arg}")),
                'J' => push(self, format!("ProxyJump {arg}")),
                'l' => push(self, format!("User {arg}")),
                'o' => push(self, arg),
                'p' => {
                    let port = twine_conch::config::values::parse_port(&arg)
                        .filter(|p| *p != 0)
                        .ok_or_else(|| Refused(Some(format!("Bad port '{arg}'"))))?;
                    push(self, format!("Port {port}"));
                }
                'P' => push(self, format!("Tag {arg}")),
                'S' => push(self, format!("ControlPath {arg}")),
                'O' => self.control_command = Some(arg),
                'w' => push(self, format!("TunnelDevice {arg}")),
                'Q' => self.query = Some(arg),
                'L' => self.local.push(forward(&arg, ForwardKind::Local, "local")?),
                'D' => self.dynamic.push(forward(&arg, ForwardKind::Dynamic, "dynamic")?),
                'R' => self.remote.push(forward(&arg, ForwardKind::Remote, "remote")?),
                'W' => {
                    let parsed = parse_host_port(&arg).ok_or_else(|| {
                        Refused(Some(format!("Bad stdio forwarding specification '{arg}'")))
                    })?;
                    self.stdio_forward = Some(parsed);
                    self.stdio_forward_flags = true;
                }
                other => return Err(getopt_error(GetoptError::Unknown(other))),
            }
        }
        Ok(())
    }

    /// `[user@]host[:port]` is not OpenSSH's: it takes `[user@]host` and `ssh://user@host:port`.
    fn destination(&mut self, text: &str) -> Result<(), Refused> {
        if let Some(uri) = text.strip_prefix("ssh://") {
            let uri = uri.strip_suffix('/').unwrap_or(uri);
            let (user, hostport) = match uri.rsplit_once('@') {
                Some((user, rest)) => (Some(user.to_owned()), rest),
                None => (None, uri),
            };
            let (host, port) = split_host_port(hostport)
                .ok_or_else(|| Refused(Some(format!("Invalid destination '{text}'"))))?;
            self.user = user.filter(|u| !u.is_empty());
            self.host = host;
            self.port = port;
        } else {
            let (user, host) = match text.rsplit_once('@') {
                Some((user, host)) => (Some(user.to_owned()), host),
                None => (None, text),
            };
            self.user = user.filter(|u| !u.is_empty());
            // A `host:port` written the way scp users write it is taken too (not IPv6).
            match split_host_port(host) {
                Some((host, port)) if host.parse::<std::net::Ipv6Addr>().is_err() => {
                    self.host = host;
                    self.port = port;
                }
                _ => self.host = host.to_owned(),
            }
        }
        if self.host.is_empty() {
            return Err(Refused(None));
        }
        Ok(())
    }
}

impl Cli {
    /// The `-L`, `-D` and `-R` forwardings as `LocalForward`, `DynamicForward` and
    /// `RemoteForward` lines.
    pub(crate) fn forward_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for forward in &self.local {
            if let Some(connect) = &forward.connect {
                lines.push(format!(
                    "LocalForward {} {}",
                    endpoint(&forward.listen),
                    endpoint(connect)
                ));
            }
        }
        for forward in &self.dynamic {
            lines.push(format!("DynamicForward {}", endpoint(&forward.listen)));
        }
        for forward in &self.remote {
            match &forward.connect {
                Some(connect) => lines.push(format!(
                    "RemoteForward {} {}",
                    endpoint(&forward.listen),
                    endpoint(connect)
                )),
                None => lines.push(format!("RemoteForward {}", endpoint(&forward.listen))),
            }
        }
        lines
    }
}

/// An endpoint as `ssh_config` writes it: `port`, `host:port`, `[v6]:port` or a path.
fn endpoint(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Tcp { host: None, port } => port.to_string(),
        Endpoint::Tcp { host: Some(host), port } if host.contains(':') => {
            format!("[{host}]:{port}")
        }
        Endpoint::Tcp { host: Some(host), port } => format!("{host}:{port}"),
        Endpoint::Unix(path) => path.clone(),
    }
}

fn getopt_error(error: GetoptError) -> Refused {
    match error {
        GetoptError::Unknown(letter) => {
            eprintln!("conch: illegal option -- {letter}");
            Refused(None)
        }
        GetoptError::MissingArgument(letter) => {
            eprintln!("conch: option requires an argument -- {letter}");
            Refused(None)
        }
    }
}

fn forward(spec: &str, kind: ForwardKind, name: &str) -> Result<Forward, Refused> {
    parse_forward(spec, kind)
        .ok_or_else(|| Refused(Some(format!("Bad {name} forwarding specification '{spec}'"))))
}

/// `host`, `host:port`, `[v6]:port`; the port `None` when not given.
fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port.parse().ok().filter(|p| *p != 0)?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            Some((host.to_owned(), Some(port.parse().ok().filter(|p| *p != 0)?)))
        }
        Some(_) => Some((text.to_owned(), None)),
        None => Some((text.to_owned(), None)),
    }
}

/// `-W host:port` (the port is required).
fn parse_host_port(text: &str) -> Option<(String, u16)> {
    match split_host_port(text)? {
        (host, Some(port)) if !host.is_empty() => Some((host, port)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Cli {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        Cli::parse(&args).unwrap()
    }

    /// Flags become configuration lines in order, and the destination's parts are split.
    #[test]
    fn flags_become_configuration_lines_and_the_destination_is_split() {
        let cli = parse("-p 2222 -l bob -oBatchMode=yes alice@example.org uname -a");
        assert_eq!(cli.options, ["Port 2222", "User bob", "BatchMode=yes"]);
        assert_eq!(cli.user.as_deref(), Some("alice"));
        assert_eq!((cli.user.as_deref(), cli.host.as_str()), (Some("alice"), "example.org"));
        assert_eq!(cli.command, ["uname", "-a"]);
    }

    /// An `ssh://` URI gives user, host and port; options after the destination are read once.
    #[test]
    fn uris_and_options_after_the_destination_are_read() {
        let cli = parse("ssh://carol@[::1]:2200 -v -- true");
        assert_eq!(
            (cli.user.as_deref(), cli.host.as_str(), cli.port),
            (Some("carol"), "::1", Some(2200))
        );
        assert_eq!(cli.verbose, 1);
        assert_eq!(cli.command, ["true"]);
    }

    /// Forwardings become configuration lines that say the same.
    #[test]
    fn forwardings_become_configuration_lines() {
        let cli = parse("-L 8080:db:5432 -L [::1]:1:h:2 -D 1080 -R 9000 -R 0:localhost:22 h");
        assert_eq!(
            cli.forward_lines(),
            [
                "LocalForward 8080 db:5432",
                "LocalForward [::1]:1 h:2",
                "DynamicForward 1080",
                "RemoteForward 9000",
                "RemoteForward 0 localhost:22",
            ]
        );
    }

    /// A missing destination and bad forwardings are refused.
    #[test]
    fn a_missing_destination_and_bad_forwardings_are_refused() {
        assert!(Cli::parse(&[]).is_err());
        let args = ["-L".to_owned(), "nonsense".to_owned(), "h".to_owned()];
        assert!(Cli::parse(&args).is_err());
    }
}
