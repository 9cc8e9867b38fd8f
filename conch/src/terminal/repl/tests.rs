use std::time::Instant;

use super::*;
use crate::terminal::tests::Emulator;
use crate::terminal::Size;

/// The application state the test commands work on.
#[derive(Debug, Default)]
struct App {
    counter: u32,
    nick: String,
    said: Vec<String>,
}

/// A REPL session on an 60x12 terminal with an emulator showing it.
struct Session {
    term: Terminal,
    repl: Repl<App>,
    app: App,
    emulator: Emulator,
    exits: usize,
}

impl Session {
    fn new(repl: Repl<App>) -> Self {
        let size = Size::new(60, 12);
        let mut session = Self {
            term: Terminal::new("xterm", size),
            repl,
            app: App::default(),
            emulator: Emulator::new(size),
            exits: 0,
        };
        let mut out = Vec::new();
        session.repl.start(&session.term, &mut out);
        session.emulator.feed(&out);
        session
    }

    /// Types `keys` one byte at a time.
    fn type_keys(&mut self, keys: &str) {
        for byte in keys.as_bytes() {
            self.term.handle_input(Instant::now(), std::slice::from_ref(byte));
            while let Some(event) = self.term.poll_event() {
                let mut out = Vec::new();
                if self.repl.handle_event(&mut self.app, &self.term, &event, &mut out)
                    == Some(ReplEvent::Exit)
                {
                    self.exits += 1;
                }
                self.emulator.feed(&out);
            }
        }
    }

    fn rows(&self) -> Vec<String> {
        self.emulator.text_rows()
    }
}

fn counter_repl() -> Repl<App> {
    let mut repl = Repl::new("> ");
    repl.command("add", "add N to the counter", |app: &mut App, args| match args.parse::<u32>() {
        Ok(n) => {
            app.counter += n;
            Reply::Output(format!("counter is {}", app.counter))
        }
        Err(_) => Reply::Error("add wants a number".into()),
    });
    repl.command("about", "what this is", |_, _| "a test".into());
    repl.command("quit", "leave too", |_, _| Reply::Exit);
    repl.command("join", "join a room", |_, args| Reply::Output(format!("joined {args}")));
    repl.completer("join", |_, _| ["lobby", "lounge", "games"].map(String::from).to_vec());
    repl
}

/// A command runs its handler with the arguments, and its output appears before a new prompt.
#[test]
fn runs_commands_and_shows_their_output() {
    let mut session = Session::new(counter_repl());
    session.type_keys("add 2\radd  40 \r");
    assert_eq!(session.app.counter, 42);
    assert_eq!(session.rows(), ["> add 2", "counter is 2", "> add  40", "counter is 42", ">"]);
}

/// Errors and unknown commands are reported, and the REPL carries on.
#[test]
fn reports_errors_and_unknown_commands() {
    let mut session = Session::new(counter_repl());
    session.type_keys("add x\rfrobnicate\r\r");
    assert_eq!(
        session.rows(),
        [
            "> add x",
            "add wants a number",
            "> frobnicate",
            "unknown command: frobnicate; try help",
            ">",
            ">"
        ]
    );
    assert!(session
        .emulator
        .screen()
        .cell(1, 0)
        .is_some_and(|c| c.fgcolor() == vt100::Color::Idx(1)));
}

/// `help` lists every command with its help text; `help NAME` explains one.
#[test]
fn help_lists_the_commands() {
    let mut session = Session::new(counter_repl());
    session.type_keys("help\rhelp add\r");
    assert_eq!(
        session.rows(),
        [
            "> help",
            "Commands:",
            "  add    add N to the counter",
            "  about  what this is",
            "  quit   leave too",
            "  join   join a room",
            "  help   list the commands, or explain one",
            "  exit   leave",
            "> help add",
            "add: add N to the counter",
            ">",
        ]
    );
}

/// Tab completes a unique command name, extends a common prefix, and lists the choices when
/// there is nothing more in common.
#[test]
fn tab_completes_command_names() {
    let mut session = Session::new(counter_repl());
    session.type_keys("ad\t");
    assert_eq!(session.repl.editor().line(), "add ");
    let mut session = Session::new(counter_repl());
    session.type_keys("a\t");
    assert_eq!(session.repl.editor().line(), "a");
    assert_eq!(session.rows(), ["about  add", "> a"]);
    session.type_keys("b\t2\r");
    assert_eq!(session.rows(), ["about  add", "> about 2", "a test", ">"]);
    let mut session = Session::new(counter_repl());
    session.type_keys("zz\t");
    assert_eq!(session.repl.editor().line(), "zz");
}

/// Arguments are completed through the command's completer.
#[test]
fn tab_completes_arguments_through_the_hook() {
    let mut session = Session::new(counter_repl());
    session.type_keys("join l\t");
    assert_eq!(session.repl.editor().line(), "join lo");
    session.type_keys("u\t");
    assert_eq!(session.repl.editor().line(), "join lounge ");
    session.type_keys("\r");
    assert_eq!(session.rows().get(1).map(String::as_str), Some("joined lounge"));
    let mut session = Session::new(counter_repl());
    session.type_keys("add 1\t");
    assert_eq!(session.repl.editor().line(), "add 1", "no completer, no change");
}

/// Commands go into the history and come back with Up.
#[test]
fn history_recalls_commands() {
    let mut session = Session::new(counter_repl());
    session.type_keys("add 1\r\x1b[A\r\x1b[A\x1b[A\r");
    assert_eq!(session.app.counter, 3);
    assert_eq!(session.repl.editor().history().collect::<Vec<_>>(), ["add 1"]);
}

/// `exit`, Ctrl-D on an empty line and a handler's `Reply::Exit` all end the session.
#[test]
fn exit_ctrl_d_and_handlers_end_the_session() {
    for keys in ["exit\r", "\x04", "quit\r"] {
        let mut session = Session::new(counter_repl());
        session.type_keys(keys);
        assert_eq!(session.exits, 1, "keys {keys:?}");
    }
    let mut session = Session::new(counter_repl());
    session.type_keys("x\x04");
    assert_eq!(session.exits, 0, "Ctrl-D on a non-empty line deletes");
}

/// With a command prefix, other lines go to the fallback handler (a chat's messages).
#[test]
fn prefix_routes_other_lines_to_the_fallback() {
    let mut repl = Repl::new("> ");
    repl.set_prefix("/")
        .command("nick", "set your name", |app: &mut App, args| {
            app.nick = args.to_owned();
            Reply::Nothing
        })
        .fallback(|app: &mut App, line| {
            app.said.push(line.to_owned());
            Reply::Nothing
        });
    let mut session = Session::new(repl);
    session.type_keys("/nick bob\rhello all\r/ni\t\x15/help nick\r");
    assert_eq!(session.app.nick, "bob");
    assert_eq!(session.app.said, ["hello all"]);
    assert_eq!(session.rows().last().map(String::as_str), Some(">"));
    assert!(session.rows().contains(&"/nick: set your name".to_owned()));
}

/// Output from elsewhere appears above the prompt without disturbing the line being typed.
#[test]
fn print_shows_output_above_the_prompt() {
    let mut session = Session::new(counter_repl());
    session.type_keys("add 5");
    let mut out = Vec::new();
    session.repl.print(&session.term, "bob: hi", &mut out);
    session.emulator.feed(&out);
    assert_eq!(session.rows(), ["bob: hi", "> add 5"]);
    session.type_keys("\r");
    assert_eq!(session.app.counter, 5);
}

/// The longest common prefix respects character boundaries.
#[test]
fn common_prefix_is_char_aligned() {
    assert_eq!(common_prefix("lobby", "lounge"), "lo");
    assert_eq!(common_prefix("été", "étage"), "ét");
    assert_eq!(common_prefix("ab", "abc"), "ab");
    assert_eq!(common_prefix("", "abc"), "");
}
