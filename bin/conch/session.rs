//! The session: standard input to the remote command through the escape-character filter,
//! its standard output back, its standard error to ours; with flow control both ways, and
//! the end of the session noticed once both sides are closed.

use std::cell::RefCell;
use std::io::Write as _;
use std::rc::Rc;

use twine_conch::client::{Connection, Session};
use twine_core::protocol::{HalfClose, PushProducer};
use twine_core::{Deferred, Protocol, Reason, Transport};

use crate::escape::{Action, Escape};

/// What both sides share.
pub(crate) struct Link {
    stdio: Option<Rc<dyn Transport>>,
    channel: Option<Rc<dyn Transport>>,
    escape: Option<Escape>,
    /// Fires once both the channel and standard input/output are closed.
    done: Deferred<()>,
    stdio_closed: bool,
    channel_closed: bool,
    /// `~.` was typed.
    pub(crate) terminated: bool,
    /// For `~#`, `~C` and `~.`.
    pub(crate) connection: Option<Connection>,
    pub(crate) session: Option<Session>,
    /// Runs a `~C` command line (`-L`, `-R`, `-D`, `-KR`).
    pub(crate) command_line: Option<CommandLine>,
}

/// Runs a `~C` line and says what happened.
pub(crate) type CommandLine = Box<dyn Fn(&str) -> String>;

/// A shared [`Link`].
pub(crate) type Shared = Rc<RefCell<Link>>;

/// A new link; `escape` is the escape character (none without a pty).
pub(crate) fn link(escape: Option<u8>, done: Deferred<()>) -> Shared {
    Rc::new(RefCell::new(Link {
        stdio: None,
        channel: None,
        escape: escape.map(Escape::new),
        done,
        stdio_closed: false,
        channel_closed: false,
        terminated: false,
        connection: None,
        session: None,
        command_line: None,
    }))
}

fn maybe_done(link: &Shared) {
    let done = {
        let link = link.borrow();
        (link.stdio_closed && link.channel_closed).then(|| link.done.clone())
    };
    if let Some(done) = done {
        if !done.fired() {
            done.callback(());
        }
    }
}

/// Joins the two transports' flow control once both are up.
fn join(link: &Shared) {
    let (stdio, channel) = {
        let link = link.borrow();
        (link.stdio.clone(), link.channel.clone())
    };
    if let (Some(stdio), Some(channel)) = (stdio, channel) {
        let stdio_producer: Rc<dyn PushProducer> = Rc::new(Rc::clone(&stdio));
        let channel_producer: Rc<dyn PushProducer> = Rc::new(Rc::clone(&channel));
        channel.register_producer(stdio_producer);
        stdio.register_producer(channel_producer);
        stdio.resume_producing();
    }
}

/// The protocol over standard input and output.
pub(crate) struct StdioSide(pub(crate) Shared);

impl Protocol for StdioSide {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        transport.pause_producing();
        self.0.borrow_mut().stdio = Some(transport);
        join(&self.0);
    }

    fn data_received(&mut self, data: &[u8]) {
        let filtered = {
            let mut link = self.0.borrow_mut();
            match link.escape.as_mut() {
                Some(escape) => escape.filter(data),
                None => {
                    // No escape character (no pty, or `-e none`): straight to the channel,
                    // without copying or allocating.
                    let channel = link.channel.clone();
                    drop(link);
                    if let Some(channel) = channel {
                        channel.write(data);
                    }
                    return;
                }
            }
        };
        for action in filtered {
            self.act(action);
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        let channel = self.0.borrow().channel.clone();
        if let Some(channel) = channel {
            channel.write_eof();
        }
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, reason: Reason) {
        log::debug!("standard input/output closed: {reason}");
        let channel = {
            let mut link = self.0.borrow_mut();
            link.stdio_closed = true;
            link.stdio = None;
            link.channel.clone()
        };
        if let Some(channel) = channel {
            channel.unregister_producer();
            channel.lose_connection();
        }
        maybe_done(&self.0);
    }
}

impl StdioSide {
    fn act(&self, action: Action) {
        let (channel, stdio) = {
            let link = self.0.borrow();
            (link.channel.clone(), link.stdio.clone())
        };
        let say = |text: &str| {
            let mut stderr = std::io::stderr();
            let _ = stderr.write_all(text.replace('\n', "\r\n").as_bytes());
            let _ = stderr.flush();
        };
        match action {
            Action::Send(bytes) => {
                if let Some(channel) = channel {
                    channel.write(&bytes);
                }
            }
            Action::Echo(bytes) => {
                let _ = std::io::stderr().write_all(&bytes);
                let _ = std::io::stderr().flush();
            }
            Action::Terminate => {
                let connection = {
                    let mut link = self.0.borrow_mut();
                    link.terminated = true;
                    link.connection.clone()
                };
                match connection {
                    Some(connection) => connection.disconnect(),
                    None => {
                        if let Some(channel) = channel {
                            channel.abort_connection();
                        }
                    }
                }
                if let Some(stdio) = stdio {
                    stdio.lose_connection();
                }
            }
            Action::Suspend => crate::terminal::suspend(),
            Action::Help(char) => say(&crate::escape::help(char)),
            Action::List => {
                let link = self.0.borrow();
                let mut text = String::from("\nThe following connections are open:\n");
                if let Some(session) = &link.session {
                    text.push_str(&format!(
                        "  #{} client-session (t4 [session] r0 i0/0 o0/0 e[write]/4 fd 4/5/6)\n",
                        session.id().as_u32()
                    ));
                }
                say(&text);
            }
            Action::Break => {
                if let Some(session) = &self.0.borrow().session {
                    let _ = session.send_break(1000);
                }
            }
            Action::Command(line) => {
                let result = {
                    let link = self.0.borrow();
                    link.command_line.as_ref().map(|run| run(&line))
                };
                if let Some(result) = result {
                    say(&format!("\n{result}"));
                }
            }
        }
    }
}

/// The protocol over the session's channel.
pub(crate) struct ChannelSide(pub(crate) Shared);

impl Protocol for ChannelSide {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.0.borrow_mut().channel = Some(transport);
        join(&self.0);
    }

    fn data_received(&mut self, data: &[u8]) {
        let stdio = self.0.borrow().stdio.clone();
        if let Some(stdio) = stdio {
            stdio.write(data);
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, reason: Reason) {
        log::debug!("session channel closed: {reason}");
        let stdio = {
            let mut link = self.0.borrow_mut();
            link.channel_closed = true;
            link.channel = None;
            link.stdio.clone()
        };
        match stdio {
            Some(stdio) => {
                stdio.unregister_producer();
                stdio.lose_connection();
            }
            None => self.0.borrow_mut().stdio_closed = true,
        }
        maybe_done(&self.0);
    }
}

/// Marks the channel side closed when the session could not start.
pub(crate) fn channel_failed(link: &Shared) {
    let stdio = {
        let mut link = link.borrow_mut();
        link.channel_closed = true;
        link.stdio.clone()
    };
    match stdio {
        Some(stdio) => stdio.lose_connection(),
        None => link.borrow_mut().stdio_closed = true,
    }
    maybe_done(link);
}
