//! An SSH server with an in-process session: `cargo run --example ssh_server [port]` (2222 by
//! default), then `ssh -T -p 2222 127.0.0.1`. You log in with a key from `~/.ssh/authorized_keys`
//! or, if `SSH_SERVER_PASSWORD` is set, that password; the session greets you and echoes lines.
use std::sync::Arc;
use twine::conch::crypto::OsRandom;
use twine::conch::keys::{KeySpec, PrivateKey};
use twine::conch::server::{Account, AuthorizedKeys, Chain, InProcessSessions, ServerFactory};
use twine::conch::{server::StaticUsers, stack::ServerStackConfig, ServerConfig};
use twine::internet::basic::{LineProtocol, LineReceiver, Lines};

struct Echo(String);

impl LineProtocol for Echo {
    fn connection_made(&mut self, lines: &mut Lines) {
        lines.send_line(format!("Hello, {}! Lines come back; ^D ends.", self.0).as_bytes());
    }
    fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
        lines.send_line(line);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(2222);
    let (mut rng, me) = (OsRandom::new(), Account::current()?);
    let host_key = Arc::new(PrivateKey::generate(KeySpec::Ed25519, &mut rng)?);
    let stack = ServerStackConfig::with_host_keys(vec![host_key], &mut rng)?;
    let keys = AuthorizedKeys::for_current_user(me.home.join(".ssh/authorized_keys"))?;
    let mut users = StaticUsers::new();
    if let Ok(password) = std::env::var("SSH_SERVER_PASSWORD") {
        users = users.with_password(&me.name, password);
    }
    let auth = Chain::new().with(keys).with(users);
    let sessions = InProcessSessions::new(|info| {
        Some(Box::new(LineReceiver::new(Echo(info.login.user.clone())).with_delimiter(b"\n")))
    });
    let reactor = twine::internet::Reactor::new()?;
    let factory = ServerFactory::new(&reactor, ServerConfig::new(stack, auth, sessions));
    let port = reactor.listen_tcp(([127, 0, 0, 1], port).into(), factory)?;
    println!("listening on {}", port.address());
    Ok(reactor.run()?)
}
