//! Talking to the user: passphrases (terminal, `SSH_ASKPASS`, or standard input as OpenSSH's
//! `read_passphrase` with `RP_ALLOW_STDIN` does), yes/no and line answers from standard input,
//! and the `user@host` default comment.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::os::unix::fs::MetadataExt as _;

use twine_conch::client::askpass::{askpass_program, run_askpass};
use zeroize::Zeroizing;

/// Reads a passphrase after `prompt`. `None` if none could be read (no terminal, no askpass,
/// standard input closed).
pub(crate) fn read_passphrase(prompt: &str) -> Option<Zeroizing<String>> {
    let stdin_is_tty = std::io::stdin().is_terminal();
    if let Some(program) = askpass_program(!stdin_is_tty) {
        return run_askpass(&program, prompt);
    }
    if stdin_is_tty {
        return rpassword::prompt_password(prompt).ok().map(Zeroizing::new);
    }
    // Not a terminal: read one line from standard input, like RP_ALLOW_STDIN.
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let line = read_line()?;
    eprintln!();
    Some(line)
}

/// One line from standard input without its line ending; `None` at end of input.
pub(crate) fn read_line() -> Option<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())),
    }
}

/// Prints `prompt` to standard output and reads an answer line from standard input.
pub(crate) fn ask(prompt: &str) -> Option<String> {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    read_line().map(|l| l.to_string())
}

/// `user@host` for the default key comment.
pub(crate) fn default_comment() -> String {
    format!("{}@{}", user_name(), host_name())
}

/// The effective user id of this process (the owner of `/proc/self`).
pub(crate) fn current_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// The login name of the current user, from the password file, then `$USER`.
pub(crate) fn user_name() -> String {
    let from_passwd = current_uid().and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid_field = fields.nth(1)?;
            (uid_field.parse::<u32>().ok()? == uid).then(|| name.to_owned())
        })
    });
    from_passwd
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The current user's home directory (`$HOME`, else the password file).
pub(crate) fn home_dir() -> String {
    if let Ok(home) = std::env::var("HOME") {
        if !home.is_empty() {
            return home;
        }
    }
    let uid = current_uid();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                let uid_field = fields.get(2)?.parse::<u32>().ok()?;
                (Some(uid_field) == uid).then(|| fields.get(5).map(|h| (*h).to_owned()))?
            })
        })
        .unwrap_or_else(|| "/".to_owned())
}

/// The machine's host name.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
