//! `ckeygen`: an `ssh-keygen`-compatible key tool on twine-conch's `keys` module.
//!
//! It takes `ssh-keygen`'s flags in `ssh-keygen`'s syntax, writes the same files, prints the
//! same text and exits with the same codes (1 for usage errors and "not found", 255 for
//! failures), so that scripts written for `ssh-keygen` work with it. Supported: key generation
//! (`-t -b -f -N -C -a -Z -m -q`), `-y`, `-l [-v] [-E]`, `-B`, `-p`, `-c`, `-e`/`-i` with
//! `-m RFC4716|PKCS8|PEM`, `-F`/`-R`/`-H` on `known_hosts` files, and certificates: `-s`
//! signing (`-I -h -n -V -z -O`) and `-L` listing.

use std::path::Path;
use std::process::ExitCode;

mod certs;
mod commands;
mod getopt;
mod hosts;
mod keyfile;
mod prompt;

/// The options `ssh-keygen` accepts that we implement, in getopt syntax.
const OPTION_SPEC: &str = "BHLcehilpqvyC:E:F:I:N:O:P:R:V:Z:a:b:f:m:n:s:t:z:";

/// A failure to report: the message for standard error and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    code: u8,
}

impl Failure {
    /// A fatal error: exit code 255, as OpenSSH's `fatal()`.
    pub(crate) fn fatal(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 255 }
    }

    /// A plain failure with exit code 1.
    pub(crate) fn exit1(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 1 }
    }
}

/// The output format for `-m`, and the key file format for generation and `-p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvertFormat {
    /// RFC 4716 for `-e`/`-i`; OpenSSH's own format for private keys.
    Rfc4716,
    /// PKCS#8.
    Pkcs8,
    /// PEM: PKCS#1 (RSA) or SEC1 (ECDSA).
    Pem,
}

/// The parsed command line.
#[derive(Debug, Default)]
pub(crate) struct Options {
    pub(crate) quiet: bool,
    pub(crate) verbose: u32,
    pub(crate) key_type: Option<String>,
    pub(crate) bits: Option<usize>,
    pub(crate) file: Option<String>,
    pub(crate) new_passphrase: Option<String>,
    pub(crate) old_passphrase: Option<String>,
    pub(crate) comment: Option<String>,
    pub(crate) rounds: Option<u32>,
    pub(crate) cipher: Option<String>,
    pub(crate) format: Option<ConvertFormat>,
    pub(crate) hash: twine::conch::keys::FingerprintHash,
    pub(crate) find_host: Option<String>,
    pub(crate) remove_host: Option<String>,
    pub(crate) hash_hosts: bool,
    pub(crate) print_public: bool,
    pub(crate) fingerprint: bool,
    pub(crate) bubblebabble: bool,
    pub(crate) change_passphrase: bool,
    pub(crate) change_comment: bool,
    pub(crate) export: bool,
    pub(crate) import: bool,
    /// `-L`.
    pub(crate) show_cert: bool,
    /// `-s`: the CA key.
    pub(crate) ca_key: Option<String>,
    /// `-I`.
    pub(crate) key_id: Option<String>,
    /// `-h`.
    pub(crate) host_cert: bool,
    /// `-n`, as given.
    pub(crate) principals: Option<String>,
    /// `-V`, parsed.
    pub(crate) validity: Option<(u64, u64)>,
    /// `-z`.
    pub(crate) serial: u64,
    /// `-z +n`.
    pub(crate) serial_autoinc: bool,
    /// `-O` (and `-h`, which clears the flags).
    pub(crate) cert_options: certs::CertOptions,
    /// The public keys to certify.
    pub(crate) operands: Vec<String>,
    /// The program name, for messages that start with it.
    pub(crate) program: String,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let program = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ckeygen".to_owned());
    let options = match parse_args(args.get(1..).unwrap_or_default(), &program) {
        Ok(options) => options,
        Err(failure) => return report(failure),
    };
    match run(&options) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => report(failure),
    }
}

fn report(failure: Failure) -> ExitCode {
    if !failure.message.is_empty() {
        eprintln!("{}", failure.message);
    }
    ExitCode::from(failure.code)
}

fn usage(program: &str) -> String {
    let p = program;
    let pad = " ".repeat(p.len());
    format!(
        "usage: {p} [-q] [-a rounds] [-b bits] [-C comment] [-f output_keyfile]\n\
         {pad}        [-m format] [-N new_passphrase] [-t ecdsa | ed25519 | rsa]\n\
         {pad}        [-Z cipher]\n\
         \x20      {p} -p [-a rounds] [-f keyfile] [-m format] [-N new_passphrase]\n\
         {pad}         [-P old_passphrase] [-Z cipher]\n\
         \x20      {p} -i [-f input_keyfile] [-m key_format]\n\
         \x20      {p} -e [-f input_keyfile] [-m key_format]\n\
         \x20      {p} -y [-f input_keyfile]\n\
         \x20      {p} -c [-a rounds] [-C comment] [-f keyfile] [-P passphrase]\n\
         \x20      {p} -l [-v] [-E fingerprint_hash] [-f input_keyfile]\n\
         \x20      {p} -B [-f input_keyfile]\n\
         \x20      {p} -F hostname [-lv] [-f known_hosts_file]\n\
         \x20      {p} -H [-f known_hosts_file]\n\
         \x20      {p} -R hostname [-f known_hosts_file]\n\
         \x20      {p} -s ca_key -I certificate_identity [-h] [-n principals]\n\
         {pad}         [-O option] [-V validity_interval] [-z serial_number] file ...\n\
         \x20      {p} -L [-f input_keyfile]"
    )
}

fn parse_args(args: &[String], program: &str) -> Result<Options, Failure> {
    let (opts, operands) = getopt::getopt(args, OPTION_SPEC).map_err(|e| {
        let first = match e {
            getopt::GetoptError::Unknown(c) => format!("unknown option -- {c}"),
            getopt::GetoptError::MissingArgument(c) => {
                format!("option requires an argument -- {c}")
            }
        };
        Failure::exit1(format!("{first}\n{}", usage(program)))
    })?;
    let mut o = Options { program: program.to_owned(), ..Options::default() };
    for opt in opts {
        let arg = opt.arg.unwrap_or_default();
        match opt.letter {
            'q' => o.quiet = true,
            'v' => o.verbose += 1,
            'y' => o.print_public = true,
            'l' => o.fingerprint = true,
            'B' => o.bubblebabble = true,
            'H' => o.hash_hosts = true,
            'c' => o.change_comment = true,
            'p' => o.change_passphrase = true,
            'e' => o.export = true,
            'i' => o.import = true,
            't' => o.key_type = Some(arg),
            'b' => {
                o.bits = Some(
                    arg.parse::<usize>()
                        .ok()
                        .filter(|b| (1..=u32::MAX as usize).contains(b))
                        .ok_or_else(|| {
                            Failure::fatal(format!("Bits has bad value {arg} (invalid)"))
                        })?,
                )
            }
            'f' => o.file = Some(arg),
            'N' => o.new_passphrase = Some(arg),
            'P' => o.old_passphrase = Some(arg),
            'C' => o.comment = Some(arg),
            'a' => {
                o.rounds = Some(
                    arg.parse::<u32>()
                        .ok()
                        .filter(|r| (1..=twine::conch::keys::openssh::MAX_KDF_ROUNDS).contains(r))
                        .ok_or_else(|| {
                            Failure::fatal(format!("Invalid number: {arg} (invalid)"))
                        })?,
                )
            }
            'Z' => {
                if !twine::conch::keys::openssh::is_supported_cipher(&arg) {
                    return Err(Failure::fatal(format!("Invalid OpenSSH-format cipher '{arg}'")));
                }
                o.cipher = Some(arg);
            }
            'm' => {
                o.format = Some(match arg.to_ascii_uppercase().as_str() {
                    "RFC4716" | "SSH2" => ConvertFormat::Rfc4716,
                    "PKCS8" => ConvertFormat::Pkcs8,
                    "PEM" => ConvertFormat::Pem,
                    _ => {
                        return Err(Failure::fatal(format!(
                            "Unsupported conversion format \"{arg}\""
                        )))
                    }
                })
            }
            'E' => {
                o.hash = twine::conch::keys::FingerprintHash::from_name(&arg)
                    .ok_or_else(|| Failure::fatal(format!("Invalid hash algorithm \"{arg}\"")))?
            }
            'F' => o.find_host = Some(arg),
            'R' => o.remove_host = Some(arg),
            'L' => o.show_cert = true,
            's' => o.ca_key = Some(arg),
            'I' => o.key_id = Some(arg),
            'h' => {
                o.host_cert = true;
                o.cert_options.clear_flags();
            }
            'n' => o.principals = Some(arg),
            'V' => o.validity = Some(certs::parse_validity(&arg, certs::now_unix())?),
            'z' => (o.serial, o.serial_autoinc) = certs::parse_serial(&arg)?,
            'O' => o.cert_options.apply(&arg)?,
            other => {
                return Err(Failure::exit1(format!(
                    "unknown option -- {other}\n{}",
                    usage(program)
                )))
            }
        }
    }
    if o.ca_key.is_some() && operands.is_empty() {
        return Err(Failure::exit1(format!("Too few arguments.\n{}", usage(program))));
    }
    if o.ca_key.is_none() && !operands.is_empty() {
        return Err(Failure::exit1(usage(program)));
    }
    o.operands = operands;
    Ok(o)
}

fn run(o: &Options) -> Result<u8, Failure> {
    if o.show_cert {
        return certs::show(o);
    }
    if let Some(ca) = &o.ca_key {
        return certs::sign(o, ca);
    }
    if o.find_host.is_some() || o.remove_host.is_some() || o.hash_hosts {
        return hosts::known_hosts(o);
    }
    if o.change_passphrase {
        return commands::change_passphrase(o);
    }
    if o.change_comment {
        return commands::change_comment(o);
    }
    if o.fingerprint || o.bubblebabble {
        return commands::fingerprint(o);
    }
    if o.print_public {
        return commands::print_public(o);
    }
    if o.export {
        return commands::export(o);
    }
    if o.import {
        return commands::import(o);
    }
    commands::generate(o)
}
