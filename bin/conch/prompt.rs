//! The terminal prompter: passwords, keyboard-interactive answers, key passphrases and the
//! first-contact host key question, asked on `/dev/tty` (or through `SSH_ASKPASS`) as OpenSSH
//! asks them; `BatchMode` never asks.

use std::fs::OpenOptions;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::rc::Rc;

use twine_conch::client::askpass::{askpass_program, run_askpass};
use twine_conch::client::{
    InfoRequest, Password, PasswordAnswer, PasswordPrompt, Prompter, UnknownHostKey,
};
use twine_core::time::Scheduler;
use twine_core::Deferred;
use zeroize::Zeroizing;

/// Asks on the terminal; the answers are read synchronously (OpenSSH blocks on them too).
#[derive(Debug)]
pub(crate) struct TtyPrompter {
    /// `BatchMode`: refuse every prompt.
    pub(crate) batch: bool,
    /// `LogLevel` below `INFO`: no banner, no notices but the loud ones.
    pub(crate) quiet: bool,
}

impl TtyPrompter {
    fn secret(&self, prompt: &str) -> Option<Zeroizing<String>> {
        if self.batch {
            return None;
        }
        let no_tty = OpenOptions::new().read(true).write(true).open("/dev/tty").is_err();
        if let Some(program) = askpass_program(no_tty) {
            return run_askpass(&program, prompt);
        }
        rpassword::prompt_password(prompt).ok().map(Zeroizing::new)
    }
}

/// Asks `question` on `/dev/tty` and reads a line; `None` without a terminal.
fn ask_line(question: &str) -> Option<String> {
    let tty = OpenOptions::new().read(true).write(true).open("/dev/tty").ok()?;
    let mut writer = tty.try_clone().ok()?;
    writer.write_all(question.as_bytes()).ok()?;
    writer.flush().ok()?;
    let mut line = String::new();
    match BufReader::new(tty).read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
    }
}

impl Prompter for TtyPrompter {
    fn password(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        prompt: &PasswordPrompt,
    ) -> Deferred<Option<PasswordAnswer>> {
        if prompt.attempt > 1 && !self.batch {
            eprintln!("Permission denied, please try again.");
        }
        if let Some(reason) = &prompt.change_prompt {
            eprintln!("{reason}");
        }
        let answer = self
            .secret(&prompt.text())
            .map(|secret| PasswordAnswer::Password(Password::from(secret.as_str())));
        Deferred::succeed(Rc::clone(scheduler), answer)
    }

    fn keyboard_interactive(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        request: &InfoRequest,
    ) -> Deferred<Option<Vec<Password>>> {
        if self.batch {
            return Deferred::succeed(Rc::clone(scheduler), None);
        }
        if !request.name.is_empty() {
            eprintln!("{}", request.name);
        }
        if !request.instruction.is_empty() {
            eprintln!("{}", request.instruction);
        }
        let mut answers = Vec::new();
        for prompt in &request.prompts {
            let answer = if prompt.echo {
                ask_line(&prompt.text).map(Zeroizing::new)
            } else {
                self.secret(&prompt.text)
            };
            match answer {
                Some(answer) => answers.push(Password::from(answer.as_str())),
                None => return Deferred::succeed(Rc::clone(scheduler), None),
            }
        }
        Deferred::succeed(Rc::clone(scheduler), Some(answers))
    }

    fn passphrase(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        path: &Path,
        _attempt: u32,
    ) -> Deferred<Option<Zeroizing<Vec<u8>>>> {
        let prompt = format!("Enter passphrase for key '{}': ", path.display());
        let answer = self
            .secret(&prompt)
            .filter(|p| !p.is_empty())
            .map(|p| Zeroizing::new(p.as_bytes().to_vec()));
        Deferred::succeed(Rc::clone(scheduler), answer)
    }

    fn confirm_host_key(
        &self,
        scheduler: &Rc<dyn Scheduler>,
        question: &UnknownHostKey,
    ) -> Deferred<bool> {
        if self.batch {
            return Deferred::succeed(Rc::clone(scheduler), false);
        }
        let mut text = format!("{} (yes/no/[fingerprint])? ", question.text());
        let accepted = loop {
            let Some(answer) = ask_line(&text) else { break false };
            let answer = answer.trim();
            if answer.eq_ignore_ascii_case("no") {
                break false;
            }
            if question.accepts(answer) {
                break true;
            }
            text = "Please type 'yes', 'no' or the fingerprint: ".to_owned();
        };
        Deferred::succeed(Rc::clone(scheduler), accepted)
    }

    fn banner(&self, message: &str) {
        if !self.quiet {
            let mut stderr = std::io::stderr();
            let _ = stderr.write_all(message.as_bytes());
            if !message.ends_with('\n') {
                let _ = stderr.write_all(b"\n");
            }
        }
    }

    fn notice(&self, message: &str) {
        if !self.quiet || message.starts_with('@') {
            eprintln!("{message}");
        }
    }
}
