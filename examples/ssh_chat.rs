//! A chat server over SSH: `cargo run --example ssh_chat [port]` (2222 by default), then
//! `ssh -p 2222 localhost` from as many terminals as you like. Your login name is your
//! nickname; your key claims it on first use. See the README.
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::error::Error;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use twine::conch::crypto::{OsRandom, SecureRandom};
use twine::conch::keys::PrivateKey;
use twine::conch::server::{ServerFactory, TrustOnFirstUse};
use twine::conch::stack::ServerStackConfig;
use twine::conch::terminal::width::wrap;
use twine::conch::terminal::{terminal_sessions, AppContext, Canvas, Color, Event, LineConfig};
use twine::conch::terminal::{LineEditor, LineEvent, SessionHandle, Style, TerminalApp};
use twine::conch::ServerConfig;
use twine::internet::{protocol::Address, Reactor};

/// How many messages a room keeps, and shows to whoever joins.
const HISTORY: usize = 100;
const LOBBY: &str = "lobby";
const HELP: &str = "/join ROOM: go to (or open) a room · /rooms: who is where · /quit: leave";

/// One line of a room: who said it (`None` for the room's own notices), and what.
#[derive(Clone)]
struct Message {
    seq: u64,
    from: Option<String>,
    text: String,
}

/// Someone in a room, with the handle that wakes their session.
struct Member {
    nick: String,
    room: String,
    handle: SessionHandle,
}

/// Everyone's shared state: the rooms with their history, and who is in which.
#[derive(Default)]
pub(crate) struct Chat {
    rooms: BTreeMap<String, VecDeque<Message>>,
    members: Vec<Member>,
    seq: u64,
}

impl Chat {
    /// Adds a message to `room` and wakes everyone in it.
    fn post(&mut self, room: &str, from: Option<&str>, text: &str) {
        self.seq += 1;
        let history = self.rooms.entry(room.to_owned()).or_default();
        if history.len() == HISTORY {
            history.pop_front();
        }
        let (from, text) = (from.map(str::to_owned), text.to_owned());
        history.push_back(Message { seq: self.seq, from, text });
        for member in self.members.iter().filter(|m| m.room == room) {
            member.handle.redraw();
        }
    }

    /// Moves `nick`'s session to `room`, telling both rooms.
    fn join(&mut self, nick: &str, room: &str, handle: &SessionHandle) {
        self.leave(handle, &format!("{nick} went to #{room}"));
        let member =
            Member { nick: nick.to_owned(), room: room.to_owned(), handle: handle.clone() };
        self.members.push(member);
        self.post(room, None, &format!("{nick} joined #{room}"));
    }

    /// Takes the session out of its room, if it is in one, telling the room `why`.
    fn leave(&mut self, handle: &SessionHandle, why: &str) {
        let Some(at) = self.members.iter().position(|m| m.handle.same_session(handle)) else {
            return;
        };
        let member = self.members.remove(at);
        self.post(&member.room, None, why);
    }
}

/// One user's session: their nickname, room, input line and private notices.
pub(crate) struct User {
    chat: Rc<RefCell<Chat>>,
    nick: String,
    room: String,
    editor: LineEditor,
    notices: Vec<Message>,
    handle: Option<SessionHandle>,
}

impl User {
    pub(crate) fn new(chat: &Rc<RefCell<Chat>>, nick: &str) -> Self {
        let mut editor = LineEditor::new("", LineConfig::default());
        let prompt = Style { fg: colour(nick), reverse: true, ..Style::DEFAULT };
        editor.set_prompt(&format!("{nick}> "), prompt);
        let (chat, nick, room) = (Rc::clone(chat), nick.to_owned(), LOBBY.to_owned());
        Self { chat, nick, room, editor, notices: Vec::new(), handle: None }
    }

    /// A line only this user sees, after what the room has said so far.
    fn notice(&mut self, text: &str) {
        let seq = self.chat.borrow().seq;
        self.notices.push(Message { seq, from: None, text: text.to_owned() });
        if self.notices.len() > HISTORY {
            self.notices.remove(0);
        }
    }

    fn command(&mut self, ctx: &mut AppContext<'_>, line: &str) {
        let (command, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim().trim_start_matches('#');
        match command {
            "" => {}
            "/help" => self.notice(HELP),
            "/quit" => ctx.quit(0),
            "/rooms" => {
                let chat = self.chat.borrow();
                let mut rooms: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for member in &chat.members {
                    rooms.entry(&member.room).or_default().push(&member.nick);
                }
                let list = rooms.iter().map(|(r, nicks)| format!("#{r}: {}", nicks.join(" ")));
                let list = list.collect::<Vec<_>>().join(" · ");
                drop(chat);
                self.notice(&list);
            }
            "/join" if !arg.is_empty() && arg.chars().all(|c| c.is_alphanumeric() || c == '-') => {
                self.room = arg.to_owned();
                if let Some(handle) = &self.handle {
                    self.chat.borrow_mut().join(&self.nick, arg, handle);
                }
            }
            "/join" => self.notice("/join wants a room name: letters, digits and -"),
            _ if command.starts_with('/') => self.notice(&format!("no command {command}; /help")),
            _ => self.chat.borrow_mut().post(&self.room, Some(&self.nick), line),
        }
    }
}

/// A nickname's colour: the same for everyone, different for most pairs of names.
fn colour(nick: &str) -> Color {
    let hash = nick.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    Color::Ansi(9 + u8::try_from(hash % 6).unwrap_or(0)) // bright red to bright cyan
}

impl TerminalApp for User {
    fn start(&mut self, ctx: &mut AppContext<'_>) {
        let handle = ctx.handle();
        self.chat.borrow_mut().join(&self.nick, LOBBY, &handle);
        self.handle = Some(handle);
        self.notice(&format!("Welcome, {}! Type to talk. {HELP}", self.nick));
    }

    fn event(&mut self, ctx: &mut AppContext<'_>, event: &Event) {
        // The editor keeps the line and the history; the canvas shows them, not its echo.
        let mut echo = Vec::new();
        match self.editor.handle_event(ctx.terminal(), event, &mut echo) {
            Some(LineEvent::Line(line)) => self.command(ctx, line.trim()),
            Some(LineEvent::Eof) => ctx.quit(0),
            _ => {}
        }
    }

    fn draw(&mut self, canvas: &mut Canvas) {
        let (cols, rows) = (canvas.size().cols, canvas.size().rows);
        let chat = self.chat.borrow();
        let here = chat.members.iter().filter(|m| m.room == self.room).count();
        let bar = Style { reverse: true, ..Style::DEFAULT };
        canvas.fill_row(0, bar);
        canvas.put_str(0, 1, &format!("#{} · {here} here · /help", self.room), bar);
        // The room's history and this user's notices, newest at the bottom, wrapped.
        let history = chat.rooms.get(&self.room).into_iter().flatten();
        let mut messages: Vec<&Message> = history.chain(&self.notices).collect();
        messages.sort_by_key(|m| m.seq);
        let mut lines = Vec::new();
        for message in messages {
            let text = match &message.from {
                Some(nick) => format!("{nick}: {}", message.text),
                None => format!("* {}", message.text),
            };
            for (n, piece) in wrap(&text, usize::from(cols)).into_iter().enumerate() {
                lines.push((piece.to_owned(), message.from.as_deref().filter(|_| n == 0)));
            }
        }
        let pane = usize::from(rows.saturating_sub(2));
        let skip = lines.len().saturating_sub(pane);
        let dim = Style { dim: true, ..Style::DEFAULT };
        for (row, (text, from)) in (1..).zip(lines.iter().skip(skip)) {
            canvas.put_str(row, 0, text, if from.is_some() { Style::DEFAULT } else { dim });
            if let Some(nick) = from {
                canvas.put_str(
                    row,
                    0,
                    nick,
                    Style { fg: colour(nick), bold: true, ..Style::DEFAULT },
                );
            }
        }
        self.editor.draw_on(canvas, rows.saturating_sub(1));
    }

    fn end(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.chat.borrow_mut().leave(&handle, &format!("{} left", self.nick));
        }
    }
}

/// Serves the chat on `address`, keeping its host key and its users' keys in `dir`; returns
/// the address it listens on. The reactor must then run.
pub(crate) fn serve(
    reactor: &Reactor,
    address: SocketAddr,
    dir: &Path,
) -> Result<SocketAddr, Box<dyn Error>> {
    std::fs::create_dir_all(dir)?;
    let seed_file = dir.join("host_key_seed");
    let seed = std::fs::read(&seed_file).or_else(|_| {
        let mut seed = [0; 32];
        OsRandom::new().fill(&mut seed)?;
        let mut secret = OpenOptions::new();
        secret.write(true).create_new(true).mode(0o600).open(&seed_file)?.write_all(&seed)?;
        Ok::<_, Box<dyn Error>>(seed.to_vec())
    })?;
    let host_key = Arc::new(PrivateKey::ed25519_from_seed(&seed)?);
    let stack = ServerStackConfig::with_host_keys(vec![host_key], &mut OsRandom::new())?;
    let auth = TrustOnFirstUse::open(dir.join("users"))?;
    let chat = Rc::new(RefCell::new(Chat::default()));
    let sessions = terminal_sessions(reactor.scheduler(), move |info| {
        info.pty.as_ref()?; // a full-screen chat needs a terminal
        Some(User::new(&chat, &info.login.user))
    });
    let factory = ServerFactory::new(reactor, ServerConfig::new(stack, auth, sessions));
    match reactor.listen_tcp(address, factory)?.address() {
        Address::Tcp(address) => Ok(address),
        other => Err(format!("listening on {other:?}").into()),
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let port = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(2222);
    let dir = std::env::var_os("SSH_CHAT_DIR")
        .map_or_else(|| std::env::temp_dir().join("ssh_chat"), Into::into);
    let reactor = Reactor::new()?;
    let address = serve(&reactor, ([127, 0, 0, 1], port).into(), &dir)?;
    println!(
        "chat on {address}: ssh -p {} localhost (keys and users in {})",
        address.port(),
        dir.display()
    );
    Ok(reactor.run()?)
}
