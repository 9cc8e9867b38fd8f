//! sshd's `AuthorizedPrincipalsCommand` and `AuthorizedKeysCommand`: programs, run as their
//! `...CommandUser`, whose output lists the principals a certificate may carry to log in (as an
//! `AuthorizedPrincipalsFile` does), or `authorized_keys` lines for the key offered (read
//! before the `AuthorizedKeysFile` files, as sshd does).
//!
//! The command line is split into words as sshd splits it (blanks, `"..."` and `'...'`
//! quoting, `\` escapes), then each word's tokens are expanded. For both: `%%`, `%u` (user),
//! `%h` (home), `%U` (uid). For principals: `%t` (certificate type), `%T` (CA key type), `%i`
//! (key id), `%s` (serial), `%f` / `%F` (SHA-256 fingerprints of the certified and CA keys),
//! `%k` / `%K` (base64 of the certificate and of the CA key). For keys: `%C` (the connection:
//! client address and port, server address and port), `%D` (routing domain: none here),
//! `%f` (the key's fingerprint, a certificate's certified key's), `%k` (base64 of the key or
//! certificate), `%t` (its type); a keys command given no arguments gets the user name, as in
//! sshd. The program must be an absolute path to a file owned by root (or us) that neither it
//! nor a directory above it lets group or others write, as sshd checks. A command that exits
//! with a failure status gives nothing.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::keys::{Certificate, FingerprintHash, PublicKey};
use crate::server::Account;

/// The most output read from a command, in bytes.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// Runs `command` for `account`'s certificate `cert` as `run_as`, returning its output.
pub(crate) fn run_principals(
    command: &str,
    run_as: &Account,
    account: &Account,
    cert: &Certificate,
) -> Result<String, String> {
    const KEYWORD: &str = "AuthorizedPrincipalsCommand";
    let words = split(command).ok_or_else(|| format!("unbalanced quotes in {KEYWORD}"))?;
    let words = words.iter().map(|w| expand(w, &|token| principals_token(token, account, cert)));
    run(KEYWORD, words.collect(), run_as)
}

/// What a keys command is asked about: the key or certificate offered, and the connection.
pub(crate) struct KeyOffered<'a> {
    pub(crate) key: &'a PublicKey,
    pub(crate) certificate: Option<&'a Certificate>,
    /// `%C`: "client-address client-port server-address server-port".
    pub(crate) connection: Option<&'a str>,
}

/// Runs `command` for `account` and the key `offered` as `run_as`, returning its output
/// (`authorized_keys` lines).
pub(crate) fn run_keys(
    command: &str,
    run_as: &Account,
    account: &Account,
    offered: &KeyOffered<'_>,
) -> Result<String, String> {
    const KEYWORD: &str = "AuthorizedKeysCommand";
    let words = split(command).ok_or_else(|| format!("unbalanced quotes in {KEYWORD}"))?;
    let mut words: Vec<String> =
        words.iter().map(|w| expand(w, &|token| keys_token(token, account, offered))).collect();
    if words.len() == 1 {
        // sshd: "If no arguments are specified then the username of the target user is used."
        words.push(account.name.clone());
    }
    run(KEYWORD, words, run_as)
}

/// Runs `words` (the program first) as `run_as`, with sshd's checks of the program.
fn run(keyword: &str, words: Vec<String>, run_as: &Account) -> Result<String, String> {
    let mut words = words.into_iter();
    let program = words.next().ok_or_else(|| format!("empty {keyword}"))?;
    check_program(keyword, Path::new(&program))?;
    let mut child = Command::new(&program);
    child.args(words).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    child.env_clear().env("PATH", "/usr/bin:/bin").env("USER", &run_as.name);
    child.current_dir("/");
    if nix::unistd::Uid::effective().is_root() {
        // std drops the supplementary groups when it changes the uid as root.
        child.uid(run_as.uid).gid(run_as.gid);
    } else if nix::unistd::Uid::effective().as_raw() != run_as.uid {
        return Err(format!("cannot run {keyword} as {}", run_as.name));
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
fn check_program(keyword: &str, path: &Path) -> Result<(), String> {
    if !path.is_absolute() {
        return Err(format!("{keyword} {} is not an absolute path", path.display()));
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

/// Expands the tokens of one word with `value` (`None`: an unknown token, kept as it is).
pub(crate) fn expand(word: &str, value: &dyn Fn(char) -> Option<String>) -> String {
    let mut out = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some(token) => match value(token) {
                Some(text) => out.push_str(&text),
                None => {
                    out.push('%');
                    out.push(token);
                }
            },
            None => out.push('%'),
        }
    }
    out
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The account's own tokens (`%u`, `%h`, `%U`), for both commands and `AuthorizedKeysFile`.
pub(crate) fn account_token(token: char, account: &Account) -> Option<String> {
    match token {
        'u' => Some(account.name.clone()),
        'h' => Some(account.home.to_string_lossy().into_owned()),
        'U' => Some(account.uid.to_string()),
        _ => None,
    }
}

fn principals_token(token: char, account: &Account, cert: &Certificate) -> Option<String> {
    let value = match token {
        't' => cert.type_name().to_owned(),
        'T' => cert.signature_key.key_type().name().to_owned(),
        'i' => cert.key_id.clone(),
        's' => cert.serial.to_string(),
        'f' => cert.key.fingerprint(FingerprintHash::Sha256).to_string(),
        'F' => cert.signature_key.fingerprint(FingerprintHash::Sha256).to_string(),
        'k' => base64(cert.to_blob()),
        'K' => base64(&cert.signature_key.to_blob()),
        other => return account_token(other, account),
    };
    Some(value)
}

fn keys_token(token: char, account: &Account, offered: &KeyOffered<'_>) -> Option<String> {
    let value = match token {
        'C' => offered.connection.unwrap_or("UNKNOWN 65535 UNKNOWN 65535").to_owned(),
        'D' => String::new(),
        'f' => offered.key.fingerprint(FingerprintHash::Sha256).to_string(),
        'k' => match offered.certificate {
            Some(cert) => base64(cert.to_blob()),
            None => base64(&offered.key.to_blob()),
        },
        't' => match offered.certificate {
            Some(cert) => cert.type_name().to_owned(),
            None => offered.key.key_type().name().to_owned(),
        },
        other => return account_token(other, account),
    };
    Some(value)
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

    fn alice() -> Account {
        Account {
            name: "alice".into(),
            uid: 1001,
            gid: 1001,
            home: "/home/alice".into(),
            shell: "/bin/sh".into(),
        }
    }

    fn key() -> PublicKey {
        crate::keys::PrivateKey::ed25519_from_seed(&[7; 32]).unwrap().public_key().clone()
    }

    /// Every token of `AuthorizedKeysCommand`, as sshd expands them: the connection's ends,
    /// no routing domain, the key's fingerprint, blob and type, the account; `%%` is a `%`
    /// and an unknown token stays as it is.
    #[test]
    fn keys_command_tokens_expand_as_sshds() {
        let key = key();
        let offered = KeyOffered {
            key: &key,
            certificate: None,
            connection: Some("192.0.2.1 50022 192.0.2.2 22"),
        };
        let account = alice();
        let word = |w: &str| expand(w, &|t| keys_token(t, &account, &offered));
        assert_eq!(word("%u:%U:%h"), "alice:1001:/home/alice");
        assert_eq!(word("%C"), "192.0.2.1 50022 192.0.2.2 22");
        assert_eq!(word("[%D]"), "[]");
        assert_eq!(word("%t"), "ssh-ed25519");
        assert_eq!(word("%f"), key.fingerprint(FingerprintHash::Sha256).to_string());
        assert_eq!(word("%k"), base64(&key.to_blob()));
        assert_eq!(word("100%% %x%"), "100% %x%");
        let unknown = KeyOffered { connection: None, ..offered };
        let word = |w: &str| expand(w, &|t| keys_token(t, &account, &unknown));
        assert_eq!(word("%C"), "UNKNOWN 65535 UNKNOWN 65535");
    }

    /// The command runs (as the account running the tests) and its output comes back; given
    /// no arguments it gets the user name; a failure status gives an error, not the output.
    #[test]
    fn a_keys_command_runs_with_the_user_name_by_default_and_fails_on_a_bad_status() {
        let me = Account::current().unwrap();
        let key = key();
        let offered = KeyOffered { key: &key, certificate: None, connection: None };
        let printed = run_keys("/bin/echo", &me, &alice(), &offered).unwrap();
        assert_eq!(printed, "alice\n");
        let printed = run_keys("/bin/echo key for %u: %t", &me, &alice(), &offered).unwrap();
        assert_eq!(printed, "key for alice: ssh-ed25519\n");
        let failed =
            run_keys("/bin/sh -c 'echo ssh-ed25519 AAAA; exit 3'", &me, &alice(), &offered);
        assert!(failed.unwrap_err().contains("exited with"));
        let relative = run_keys("bin/echo", &me, &alice(), &offered).unwrap_err();
        assert!(relative.contains("AuthorizedKeysCommand bin/echo is not an absolute path"));
    }

    /// A relative program, and one in a directory others may write, are refused.
    #[test]
    fn unsafe_programs_are_refused() {
        assert!(check_program("X", Path::new("bin/sh")).is_err());
        let dir = std::env::temp_dir().join(format!("conch-apc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("p");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        // The temporary directory is writable by others.
        assert!(check_program("X", &program).is_err());
        let _ = std::fs::remove_dir_all(dir);
        check_program("X", Path::new("/bin/sh")).unwrap();
    }
}
