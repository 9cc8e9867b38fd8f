//! The escape character (`~` by default): recognised only right after a newline (or at the
//! start), followed by `.` (terminate), `^Z` (suspend), `#` (list connections), `?` (help),
//! `B` (break), `C` (a command line for forwardings), or itself (send it once).

/// What to do with a piece of input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Send these bytes to the remote side.
    Send(Vec<u8>),
    /// Show these bytes locally (the `~C` command line being typed).
    Echo(Vec<u8>),
    /// `~.`
    Terminate,
    /// `~^Z`
    Suspend,
    /// `~?`, with the escape character.
    Help(u8),
    /// `~#`
    List,
    /// `~B`
    Break,
    /// `~C`, the line typed.
    Command(String),
}

/// The filter's state.
#[derive(Debug)]
pub(crate) struct Escape {
    char: u8,
    at_line_start: bool,
    pending: bool,
    command: Option<Vec<u8>>,
}

impl Escape {
    /// A filter for escape character `char`.
    pub(crate) fn new(char: u8) -> Self {
        Self { char, at_line_start: true, pending: false, command: None }
    }

    /// Splits `data` into what to send and what to do, in order.
    pub(crate) fn filter(&mut self, data: &[u8]) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut out = Vec::new();
        let flush = |out: &mut Vec<u8>, actions: &mut Vec<Action>| {
            if !out.is_empty() {
                actions.push(Action::Send(std::mem::take(out)));
            }
        };
        for &byte in data {
            if let Some(line) = self.command.as_mut() {
                match byte {
                    b'\r' | b'\n' => {
                        let text = String::from_utf8_lossy(line).into_owned();
                        self.command = None;
                        self.at_line_start = true;
                        flush(&mut out, &mut actions);
                        actions.push(Action::Command(text));
                    }
                    0x7f | 0x08 => {
                        if line.pop().is_some() {
                            actions.push(Action::Echo(b"\x08 \x08".to_vec()));
                        }
                    }
                    0x03 | 0x15 => {
                        self.command = None;
                        self.at_line_start = true;
                        actions.push(Action::Echo(b"\r\n".to_vec()));
                    }
                    _ => {
                        line.push(byte);
                        actions.push(Action::Echo(vec![byte]));
                    }
                }
                continue;
            }
            if self.pending {
                self.pending = false;
                match byte {
                    b'.' => {
                        flush(&mut out, &mut actions);
                        actions.push(Action::Terminate);
                        continue;
                    }
                    0x1a => {
                        flush(&mut out, &mut actions);
                        actions.push(Action::Suspend);
                        continue;
                    }
                    b'?' => {
                        flush(&mut out, &mut actions);
                        actions.push(Action::Help(self.char));
                        continue;
                    }
                    b'#' => {
                        flush(&mut out, &mut actions);
                        actions.push(Action::List);
                        continue;
                    }
                    b'B' => {
                        flush(&mut out, &mut actions);
                        actions.push(Action::Break);
                        continue;
                    }
                    b'C' => {
                        flush(&mut out, &mut actions);
                        actions.push(Action::Echo(b"\r\nssh> ".to_vec()));
                        self.command = Some(Vec::new());
                        continue;
                    }
                    other if other == self.char => {
                        out.push(other);
                        self.at_line_start = false;
                        continue;
                    }
                    other => {
                        // Not an escape: both characters go through.
                        out.push(self.char);
                        out.push(other);
                        self.at_line_start = other == b'\r' || other == b'\n';
                        continue;
                    }
                }
            }
            if self.at_line_start && byte == self.char {
                self.pending = true;
                continue;
            }
            out.push(byte);
            self.at_line_start = byte == b'\r' || byte == b'\n';
        }
        flush(&mut out, &mut actions);
        actions
    }
}

/// The `~?` text.
pub(crate) fn help(char: u8) -> String {
    let c = char::from(char);
    format!(
        "\nSupported escape sequences:\n \
         {c}.   - terminate connection\n \
         {c}B   - send a BREAK to the remote system\n \
         {c}C   - open a command line (-L, -R, -D)\n \
         {c}^Z  - suspend conch\n \
         {c}#   - list forwarded connections\n \
         {c}?   - this message\n \
         {c}{c}   - send the escape character by typing it twice\n\
         (Note that escapes are only recognized immediately after newline.)\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `~.` after a newline terminates; elsewhere a tilde is just a tilde.
    #[test]
    fn a_tilde_dot_after_a_newline_terminates_and_elsewhere_passes_through() {
        let mut escape = Escape::new(b'~');
        assert_eq!(
            escape.filter(b"a~.b\r~."),
            vec![Action::Send(b"a~.b\r".to_vec()), Action::Terminate]
        );
    }

    /// A doubled escape sends one, and escapes split across reads still work.
    #[test]
    fn a_doubled_escape_sends_one_even_across_reads() {
        let mut escape = Escape::new(b'~');
        assert_eq!(escape.filter(b"~"), vec![]);
        assert_eq!(escape.filter(b"~x"), vec![Action::Send(b"~x".to_vec())]);
    }

    /// `~C` collects a line, echoing it, and hands it over at the carriage return.
    #[test]
    fn tilde_c_collects_a_command_line() {
        let mut escape = Escape::new(b'~');
        let actions = escape.filter(b"~C-L 1:h:2\r");
        assert_eq!(actions.last(), Some(&Action::Command("-L 1:h:2".into())));
    }
}
