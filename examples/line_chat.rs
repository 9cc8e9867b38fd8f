//! A multi-user chat over TCP on `LineReceiver`: `cargo run --example line_chat [port]`
//! (127.0.0.1:8001 by default), then connect with `nc 127.0.0.1 8001` from a few terminals.
//!
//! Each connection picks a name with its first line; every later line goes to everyone else.
//! The room holds the other users' transports: a protocol writes to *other* connections from
//! its own `line_received`, which is the handle model at work.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use twine::internet::basic::{LineProtocol, LineReceiver, Lines};
use twine::internet::protocol::ProtocolFactory;
use twine::internet::{Error, Reactor, Reason, Transport};

/// Everyone connected, by name.
#[derive(Default)]
struct Room {
    members: BTreeMap<String, Rc<dyn Transport>>,
}

impl Room {
    fn broadcast(&self, from: &str, line: &[u8]) {
        for (name, transport) in &self.members {
            if name != from {
                transport.write_sequence(&[from.as_bytes(), b": ", line, b"\r\n"]);
            }
        }
    }
}

/// One user's connection: first line is the name, then chat lines.
struct Chatter {
    room: Rc<RefCell<Room>>,
    name: Option<String>,
}

impl LineProtocol for Chatter {
    fn connection_made(&mut self, lines: &mut Lines) {
        lines.send_line(b"Welcome! What is your name?");
    }

    fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
        let Some(name) = &self.name else {
            let wanted = String::from_utf8_lossy(line).trim().to_owned();
            let mut room = self.room.borrow_mut();
            if wanted.is_empty() || room.members.contains_key(&wanted) {
                lines.send_line(b"That name is taken or empty; try another.");
                return;
            }
            let Some(transport) = lines.transport().cloned() else { return };
            let others: Vec<String> = room.members.keys().cloned().collect();
            lines.send_line(format!("Hello {wanted}. Here: {}", others.join(", ")).as_bytes());
            room.broadcast(&wanted, b"(joined)");
            room.members.insert(wanted.clone(), transport);
            self.name = Some(wanted);
            return;
        };
        if line == b"/quit" {
            lines.lose_connection();
            return;
        }
        self.room.borrow().broadcast(name, line);
    }

    fn connection_lost(&mut self, _reason: Reason) {
        if let Some(name) = self.name.take() {
            let mut room = self.room.borrow_mut();
            room.members.remove(&name);
            room.broadcast(&name, b"(left)");
        }
    }
}

fn main() -> Result<(), Error> {
    let port = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(8001);
    let reactor = Reactor::new()?;
    reactor.install_signal_handlers()?;
    let room = Rc::new(RefCell::new(Room::default()));
    let factory = ProtocolFactory::new(move || {
        LineReceiver::new(Chatter { room: Rc::clone(&room), name: None }).with_max_length(1024)
    });
    let port = reactor.listen_tcp(([127, 0, 0, 1], port).into(), factory)?;
    println!("chat on {}", port.address());
    reactor.run()
}
