//! sshd's command line: `getopt(3)` flags, in OpenSSH's spelling.

use crate::getopt::{getopt, GetoptError};

/// The flags sshd takes (`-4 -6 -c -g -k -r -V` are accepted as OpenSSH does).
const SPEC: &str = "46C:DE:G:Vb:c:deE:f:g:h:ik:o:p:qrtT";

/// A parsed command line.
#[derive(Debug, Default, Clone)]
pub(crate) struct Options {
    /// `-f`: the configuration file.
    pub(crate) config_file: Option<String>,
    /// `-t` (1) or `-T` (2).
    pub(crate) test: u8,
    /// `-C`: the connection specification for `-T`.
    pub(crate) test_spec: Option<String>,
    /// `-D`: stay in the foreground.
    pub(crate) foreground: bool,
    /// `-d` count: debug mode.
    pub(crate) debug: u8,
    /// `-e`: log to standard error.
    pub(crate) log_stderr: bool,
    /// `-E`: log to this file.
    pub(crate) log_file: Option<String>,
    /// `-i`: inetd mode.
    pub(crate) inetd: bool,
    /// `-q`: no logging.
    pub(crate) quiet: bool,
    /// `-o` options, in order.
    pub(crate) options: Vec<String>,
    /// `-p` ports.
    pub(crate) ports: Vec<u16>,
    /// `-h` host key files.
    pub(crate) host_keys: Vec<String>,
    /// `-4` / `-6`.
    pub(crate) family: Option<&'static str>,
    /// `-V`.
    pub(crate) version: bool,
    /// `-G`: print the configuration without checking host keys (sshd's `-G`).
    pub(crate) print_only: bool,
}

/// The usage text (OpenSSH's, with our name).
pub(crate) const USAGE: &str =
    "usage: conchd [-46DdeGiqTtV] [-C connection_spec] [-c host_cert_file]\n\
            [-E log_file] [-f config_file] [-g login_grace_time]\n\
            [-h host_key_file] [-o option] [-p port] [-u len]";

/// Parses the arguments after the program name. The error is the text to print before the
/// usage (exit 1, as sshd).
pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
    let (opts, rest) = getopt(args, SPEC).map_err(|e| match e {
        GetoptError::Unknown(c) => format!("conchd: illegal option -- {c}"),
        GetoptError::MissingArgument(c) => format!("conchd: option requires an argument -- {c}"),
    })?;
    if let Some(extra) = rest.first() {
        return Err(format!("Extra argument {extra}."));
    }
    let mut o = Options::default();
    for opt in opts {
        let arg = opt.arg.unwrap_or_default();
        match opt.letter {
            '4' => o.family = Some("inet"),
            '6' => o.family = Some("inet6"),
            'f' => o.config_file = Some(arg),
            'd' => o.debug = o.debug.saturating_add(1),
            'D' => o.foreground = true,
            'e' => o.log_stderr = true,
            'E' => o.log_file = Some(arg),
            'i' => o.inetd = true,
            'q' => o.quiet = true,
            't' => o.test = o.test.max(1),
            'T' => o.test = 2,
            'G' => o.print_only = true,
            'V' => o.version = true,
            'C' => o.test_spec = Some(arg),
            'o' => o.options.push(arg),
            'h' => o.host_keys.push(arg),
            'p' => match arg.parse::<u16>() {
                Ok(port) if port > 0 => o.ports.push(port),
                _ => return Err(format!("Bad port number {arg}.")),
            },
            'g' => o.options.push(format!("LoginGraceTime {arg}")),
            'k' | 'b' | 'c' | 'r' => {}
            _ => {}
        }
    }
    if o.test == 1 && o.test_spec.is_some() {
        o.test = 2;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    /// Attached and separate arguments both parse, and `-o` keeps its order.
    #[test]
    fn attached_and_separate_arguments_parse_alike() {
        let o =
            parse(&args("-D -E/tmp/log -f /etc/x -oPort=22 -o LogLevel=DEBUG3 -p 2200")).unwrap();
        assert!(o.foreground);
        assert_eq!(o.log_file.as_deref(), Some("/tmp/log"));
        assert_eq!(o.config_file.as_deref(), Some("/etc/x"));
        assert_eq!(o.options, ["Port=22", "LogLevel=DEBUG3"]);
        assert_eq!(o.ports, [2200]);
    }

    /// An unknown flag, a bad port and an operand are errors, as sshd reports them.
    #[test]
    fn bad_flags_ports_and_operands_are_errors() {
        assert_eq!(parse(&args("-Z")).unwrap_err(), "conchd: illegal option -- Z");
        assert_eq!(parse(&args("-p x")).unwrap_err(), "Bad port number x.");
        assert_eq!(parse(&args("-D extra")).unwrap_err(), "Extra argument extra.");
    }
}
