//! sshd's `AuthorizedPrincipalsCommand`: a program, run as `AuthorizedPrincipalsCommandUser`,
//! whose output lists the principals (as an `AuthorizedPrincipalsFile` does) a certificate may
//! carry to log in.
//!
//! The command line is split into words as sshd splits it (blanks, `"..."` and `'...'`
//! quoting, `\` escapes), then each word's tokens are expanded: `%%`, `%u` (user), `%h`
//! (home), `%U` (uid), `%t` (certificate type), `%T` (CA key type), `%i` (key id), `%s`
//! (serial), `%f` / `%F` (SHA-256 fingerprints of the certified and CA keys), `%k` / `%K`
//! (base64 of the certificate and of the CA key). The program must be an absolute path to a
//! file owned by root (or us) that neither it nor a directory above it lets group or others
//! write, as sshd checks.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::keys::{Certificate, FingerprintHash};
use crate::server::Account;

/// The most output read from the command, in bytes.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// Runs `command` for `account`'s certificate `cert` as `run_as`, returning its output.
pub(crate) fn run(
    command: &str,
    run_as: &Account,
    account: &Account,
    cert: &Certificate,
) -> Result<String, String> {
    let words = split(command).ok_or("unbalanced quotes in AuthorizedPrincipalsCommand")?;
    let mut words = words.iter().map(|w| expand(w, account, cert));
    let program = words.next().ok_or("empty AuthorizedPrincipalsCommand")?;
    check_program(Path::new(&program))?;
    let mut child = Command::new(&program);
    child.args(words).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    child.env_clear().env("PATH", "/usr/bin:/bin").env("USER", &run_as.name);
    child.current_dir("/");
    if nix::unistd::Uid::effective().is_root() {
        // std drops the supplementary groups when it changes the uid as root.
        child.uid(run_as.uid).gid(run_as.gid);
    } else if nix::unistd::Uid::effective().as_raw() != run_as.uid {
        return Err(format!("cannot run AuthorizedPrincipalsCommand as {}", run_as.name));
    }
    let mut child = child.spawn().map_err(|e| format!("{program}: {e}"))?;
    let mut output = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout.take(MAX_OUTPUT).read_to_end(&mut output).map_err(|e| e.to_string())?;
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("{program} exited with {status}"));
    }
    Ok(String::from_utf8_lossy(&output).into_owned())
}

/// sshd's checks of the program: absolute, a regular file, and it and every directory above
/// it owned by root (or us) and not writable by group or others.
fn check_program(path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!(
            "AuthorizedPrincipalsCommand {} is not an absolute path",
            path.display()
        ));
    }
    let me = nix::unistd::Uid::effective().as_raw();
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mut current = Some(path);
    while let Some(p) = current {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if (meta.uid() != 0 && meta.uid() != me) || meta.mode() & 0o022 != 0 {
            return Err(format!("bad ownership or modes for {}", p.display()));
        }
        current = p.parent();
    }
    Ok(())
}

/// Expands the tokens of one word.
fn expand(word: &str, account: &Account, cert: &Certificate) -> String {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('u') => out.push_str(&account.name),
            Some('h') => out.push_str(&account.home.to_string_lossy()),
            Some('U') => out.push_str(&account.uid.to_string()),
            Some('t') => out.push_str(cert.type_name()),
            Some('T') => out.push_str(cert.signature_key.key_type().name()),
            Some('i') => out.push_str(&cert.key_id),
            Some('s') => out.push_str(&cert.serial.to_string()),
            Some('f') => out.push_str(&cert.key.fingerprint(FingerprintHash::Sha256).to_string()),
            Some('F') => {
                out.push_str(&cert.signature_key.fingerprint(FingerprintHash::Sha256).to_string());
            }
            Some('k') => out.push_str(&b64(cert.to_blob())),
            Some('K') => out.push_str(&b64(&cert.signature_key.to_blob())),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// Splits a command line into words (sshd's `argv_split`): blanks separate, `"..."` and
/// `'...'` quote, `\` escapes the next character. `None` for an unterminated quote.
fn split(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => word.get_or_insert_with(String::new).push(chars.next()?),
            (q @ ('"' | '\''), None) => {
                quote = Some(q);
                word.get_or_insert_with(String::new);
            }
            (q, Some(open)) if q == open => quote = None,
            (' ' | '\t', None) => words.extend(word.take()),
            (c, _) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        return None;
    }
    words.extend(word);
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words split at blanks, with quotes and escapes; an open quote is an error.
    #[test]
    fn command_lines_split_like_sshd() {
        assert_eq!(
            split(r#"/bin/cmd %u "two words" 'x y'\ z a\"b"#).unwrap(),
            ["/bin/cmd", "%u", "two words", "x y z", "a\"b"]
        );
        assert_eq!(split("  a  b ").unwrap(), ["a", "b"]);
        assert!(split("a \"b").is_none());
    }

    /// A relative program, and one in a directory others may write, are refused.
    #[test]
    fn unsafe_programs_are_refused() {
        assert!(check_program(Path::new("bin/sh")).is_err());
        let dir = std::env::temp_dir().join(format!("conch-apc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("p");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        // The temporary directory is writable by others.
        assert!(check_program(&program).is_err());
        let _ = std::fs::remove_dir_all(dir);
        check_program(Path::new("/bin/sh")).unwrap();
    }
}
