//! `SSH_ASKPASS`: asking for a secret through a helper program instead of the terminal, with
//! OpenSSH's rules for when to use it (`SSH_ASKPASS_REQUIRE` of `never`, `prefer` or `force`;
//! otherwise only without a terminal and with a `DISPLAY`).

use std::process::{Command, Stdio};

use zeroize::Zeroizing;

/// The askpass program to run, from the environment (`SSH_ASKPASS`, `SSH_ASKPASS_REQUIRE`,
/// `DISPLAY`), or `None` to ask on the terminal. `without_terminal` says the caller has no
/// terminal to ask on.
pub fn askpass_program(without_terminal: bool) -> Option<String> {
    let program = std::env::var("SSH_ASKPASS").ok();
    let require = std::env::var("SSH_ASKPASS_REQUIRE").unwrap_or_default();
    let display = std::env::var_os("DISPLAY").is_some();
    choose(program.as_deref(), &require, without_terminal, display).map(str::to_owned)
}

/// OpenSSH's decision, from the settings alone.
fn choose<'a>(
    program: Option<&'a str>,
    require: &str,
    without_terminal: bool,
    display: bool,
) -> Option<&'a str> {
    let program = program.filter(|p| !p.is_empty())?;
    match require {
        "never" => None,
        "force" | "prefer" => Some(program),
        _ if without_terminal && display => Some(program),
        _ => None,
    }
}

/// Runs `program` with `prompt` as its argument and returns the first line it prints;
/// `None` if it cannot run or exits with a failure (the user cancelled).
pub fn run_askpass(program: &str, prompt: &str) -> Option<Zeroizing<String>> {
    let out = Command::new(program)
        .arg(prompt)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        return None;
    }
    let text = Zeroizing::new(String::from_utf8_lossy(&stdout).into_owned());
    Some(Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn askpass_is_used_only_without_a_terminal_and_with_a_display_unless_required() {
        assert_eq!(choose(Some("/bin/ap"), "", true, true), Some("/bin/ap"));
        assert_eq!(choose(Some("/bin/ap"), "", false, true), None);
        assert_eq!(choose(Some("/bin/ap"), "", true, false), None);
        assert_eq!(choose(Some("/bin/ap"), "prefer", false, false), Some("/bin/ap"));
        assert_eq!(choose(Some("/bin/ap"), "force", false, false), Some("/bin/ap"));
        assert_eq!(choose(Some("/bin/ap"), "never", true, true), None);
        assert_eq!(choose(Some(""), "force", true, true), None);
        assert_eq!(choose(None, "force", true, true), None);
    }

    #[test]
    fn the_askpass_program_gets_the_prompt_and_its_line_is_the_answer() {
        let answer = run_askpass("echo", "secret words").expect("echo runs");
        assert_eq!(answer.as_str(), "secret words");
    }

    #[test]
    fn an_askpass_program_that_fails_gives_no_answer() {
        assert!(run_askpass("false", "prompt").is_none());
        assert!(run_askpass("/nonexistent/askpass", "prompt").is_none());
    }
}
