//! A command REPL for terminal applications (Twisted's `manhole`, without Python): the
//! application registers named commands with help text and handlers; the user gets a prompt,
//! history, Tab completion of command names (and of arguments, through a hook), `help`, and
//! `exit` or Ctrl-D to leave.
//!
//! Handlers take the application's per-session context `C` and the argument text, and return a
//! [`Reply`]. Output that arrives from elsewhere while the user types (a chat message) goes
//! through [`Repl::print`], which writes it above the prompt and redraws the line below it.

use std::fmt;

use super::input::Event;
use super::line::{LineConfig, LineEditor, LineEvent};
use super::output::{Color, Style};
use super::width::{str_width, wrap};
use super::Terminal;

/// The built-in command that lists the commands.
pub const HELP_COMMAND: &str = "help";
/// The built-in command that leaves.
pub const EXIT_COMMAND: &str = "exit";

/// What a command handler answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// Nothing to show.
    Nothing,
    /// Text to show the user.
    Output(String),
    /// An error to show the user (in red where the terminal has colour).
    Error(String),
    /// End the session (after showing nothing more).
    Exit,
}

impl From<String> for Reply {
    fn from(text: String) -> Self {
        Self::Output(text)
    }
}

impl From<&str> for Reply {
    fn from(text: &str) -> Self {
        Self::Output(text.to_owned())
    }
}

/// What the REPL tells the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplEvent {
    /// The user left (`exit`, Ctrl-D, or a handler's [`Reply::Exit`]): close the channel.
    Exit,
}

/// A command handler: the context and the text after the command name (trimmed).
type Handler<C> = Box<dyn FnMut(&mut C, &str) -> Reply>;
/// An argument completer: the context and the argument text before the cursor; returns
/// candidates for the last word.
type Completer<C> = Box<dyn FnMut(&C, &str) -> Vec<String>>;

struct Command<C> {
    name: String,
    help: String,
    handler: Handler<C>,
    completer: Option<Completer<C>>,
}

/// A REPL over a [`LineEditor`], for a context type `C` (the application's per-session state).
pub struct Repl<C> {
    editor: LineEditor,
    commands: Vec<Command<C>>,
    /// Lines must start with this to be commands ("/" for a chat); empty: every line is one.
    prefix: String,
    /// Where lines that are not commands go.
    fallback: Option<Handler<C>>,
}

impl<C> Repl<C> {
    /// A REPL with the prompt `prompt` and the default line settings.
    pub fn new(prompt: &str) -> Self {
        Self::with_config(prompt, LineConfig::default())
    }

    /// A REPL with the prompt `prompt` and `config` for its line editor.
    pub fn with_config(prompt: &str, config: LineConfig) -> Self {
        Self {
            editor: LineEditor::new(prompt, config),
            commands: Vec::new(),
            prefix: String::new(),
            fallback: None,
        }
    }

    /// Registers the command `name` with one line of help text and its handler. A second
    /// registration of a name replaces the first.
    pub fn command(
        &mut self,
        name: &str,
        help: &str,
        handler: impl FnMut(&mut C, &str) -> Reply + 'static,
    ) -> &mut Self {
        let command = Command {
            name: name.to_owned(),
            help: help.to_owned(),
            handler: Box::new(handler),
            completer: None,
        };
        match self.commands.iter_mut().find(|c| c.name == name) {
            Some(slot) => *slot = command,
            None => self.commands.push(command),
        }
        self
    }

    /// Sets the argument completer of the command `name` (registered before): it gets the
    /// argument text before the cursor and returns candidates for the word being typed.
    pub fn completer(
        &mut self,
        name: &str,
        completer: impl FnMut(&C, &str) -> Vec<String> + 'static,
    ) -> &mut Self {
        if let Some(command) = self.commands.iter_mut().find(|c| c.name == name) {
            command.completer = Some(Box::new(completer));
        }
        self
    }

    /// Makes commands start with `prefix` (`/nick` with prefix `/`); other lines go to the
    /// fallback handler.
    pub fn set_prefix(&mut self, prefix: &str) -> &mut Self {
        self.prefix = prefix.to_owned();
        self
    }

    /// Sets the handler of lines that are not commands (a chat message, say); it gets the whole
    /// line. Without one, such lines are an error.
    pub fn fallback(&mut self, handler: impl FnMut(&mut C, &str) -> Reply + 'static) -> &mut Self {
        self.fallback = Some(Box::new(handler));
        self
    }

    /// The line editor, to change the prompt or password mode.
    pub fn editor_mut(&mut self) -> &mut LineEditor {
        &mut self.editor
    }

    /// Shows the prompt.
    pub fn start(&mut self, term: &Terminal, out: &mut Vec<u8>) {
        self.editor.start(term, out);
    }

    /// Shows `text` above the prompt (output that did not come from a command).
    pub fn print(&mut self, term: &Terminal, text: &str, out: &mut Vec<u8>) {
        self.editor.write_above(term, text, Style::DEFAULT, out);
    }

    /// Handles one event from the terminal; returns [`ReplEvent::Exit`] when the user leaves.
    pub fn handle_event(
        &mut self,
        ctx: &mut C,
        term: &Terminal,
        event: &Event,
        out: &mut Vec<u8>,
    ) -> Option<ReplEvent> {
        match self.editor.handle_event(term, event, out)? {
            LineEvent::Line(line) => self.run(ctx, term, &line, out),
            LineEvent::Eof => {
                self.editor.finish(term, out);
                Some(ReplEvent::Exit)
            }
            LineEvent::Interrupt => {
                self.editor.start(term, out);
                None
            }
            LineEvent::Complete => {
                self.complete(ctx, term, out);
                None
            }
            _ => None,
        }
    }

    /// Runs a finished line.
    fn run(
        &mut self,
        ctx: &mut C,
        term: &Terminal,
        line: &str,
        out: &mut Vec<u8>,
    ) -> Option<ReplEvent> {
        let line = line.trim();
        let reply = match line.strip_prefix(self.prefix.as_str()) {
            _ if line.is_empty() => Reply::Nothing,
            Some(command) if !command.is_empty() => self.dispatch(ctx, command),
            _ => match &mut self.fallback {
                Some(handler) => handler(ctx, line),
                None => Reply::Error(format!("unknown command; try {}{HELP_COMMAND}", self.prefix)),
            },
        };
        match reply {
            Reply::Exit => return Some(ReplEvent::Exit),
            Reply::Output(text) if !text.is_empty() => {
                self.editor.write_above(term, &text, Style::DEFAULT, out)
            }
            Reply::Error(text) => {
                self.editor.write_above(term, &text, Style::new().fg(Color::RED), out)
            }
            _ => self.editor.start(term, out),
        }
        None
    }

    /// The reply to the command line `command` (without the prefix).
    fn dispatch(&mut self, ctx: &mut C, command: &str) -> Reply {
        let (name, args) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
        let args = args.trim();
        if name == HELP_COMMAND {
            return self.help(args);
        }
        if name == EXIT_COMMAND {
            return Reply::Exit;
        }
        match self.commands.iter_mut().find(|c| c.name == name) {
            Some(command) => (command.handler)(ctx, args),
            None => {
                Reply::Error(format!("unknown command: {name}; try {}{HELP_COMMAND}", self.prefix))
            }
        }
    }

    /// The help text: all commands, or the one named in `args`.
    fn help(&self, args: &str) -> Reply {
        let builtins =
            [(HELP_COMMAND, "list the commands, or explain one"), (EXIT_COMMAND, "leave")];
        let all = self.commands.iter().map(|c| (c.name.as_str(), c.help.as_str())).chain(builtins);
        if !args.is_empty() {
            let name = args.strip_prefix(self.prefix.as_str()).unwrap_or(args);
            return match all.clone().find(|&(n, _)| n == name) {
                Some((n, help)) => Reply::Output(format!("{}{n}: {help}", self.prefix)),
                None => Reply::Error(format!("no command {name}")),
            };
        }
        let width = all.clone().map(|(n, _)| str_width(n)).max().unwrap_or(0) + self.prefix.len();
        let mut text = String::from("Commands:");
        for (name, help) in all {
            let name = format!("{}{name}", self.prefix);
            text.push_str(&format!("\n  {name:<width$}  {help}"));
        }
        Reply::Output(text)
    }

    /// Tab: completes the command name or argument at the cursor, or lists the candidates.
    fn complete(&mut self, ctx: &C, term: &Terminal, out: &mut Vec<u8>) {
        let head = self.editor.line().get(..self.editor.cursor()).unwrap_or_default().to_owned();
        let Some(command) = head.strip_prefix(self.prefix.as_str()) else {
            term.emitter(out).bell();
            return;
        };
        let (word, candidates) = match command.split_once(char::is_whitespace) {
            None => {
                let names = self
                    .commands
                    .iter()
                    .map(|c| c.name.as_str())
                    .chain([HELP_COMMAND, EXIT_COMMAND]);
                (command, names.map(str::to_owned).collect::<Vec<_>>())
            }
            Some((name, args)) => {
                let word = args.rsplit(char::is_whitespace).next().unwrap_or_default();
                let completer = self
                    .commands
                    .iter_mut()
                    .find(|c| c.name == name)
                    .and_then(|c| c.completer.as_mut());
                let candidates = completer.map(|complete| complete(ctx, args)).unwrap_or_default();
                (word, candidates)
            }
        };
        let mut matches: Vec<String> =
            candidates.into_iter().filter(|c| c.starts_with(word)).collect();
        matches.sort();
        matches.dedup();
        let Some(first) = matches.first() else {
            term.emitter(out).bell();
            return;
        };
        let common = matches.iter().fold(first.as_str(), |common, m| common_prefix(common, m));
        let insert = if matches.len() == 1 {
            format!("{} ", first.get(word.len()..).unwrap_or_default())
        } else {
            common.get(word.len()..).unwrap_or_default().to_owned()
        };
        if !insert.is_empty() {
            self.editor.insert_str(term, &insert, out);
            return;
        }
        // Several candidates and nothing more in common: show them.
        let list = matches.join("  ");
        let lines = wrap(&list, usize::from(term.size().cols)).join("\n");
        self.editor.write_above(term, &lines, Style::DEFAULT, out);
    }

    /// The editor the REPL types into.
    pub fn editor(&self) -> &LineEditor {
        &self.editor
    }
}

impl<C> fmt::Debug for Repl<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repl")
            .field("editor", &self.editor)
            .field("commands", &self.commands.iter().map(|c| &c.name).collect::<Vec<_>>())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The longest common prefix of `a` and `b`, on a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let len = a
        .char_indices()
        .zip(b.chars())
        .find(|&((_, x), y)| x != y)
        .map_or_else(|| a.len().min(b.len()), |((i, _), _)| i);
    a.get(..len).unwrap_or_default()
}

#[cfg(test)]
mod tests;
