//! The echo server: `cargo run --example echo_server [port]` (127.0.0.1:8000 by default).
use std::rc::Rc;
use twine::internet::{protocol::ProtocolFactory, Error, Protocol, Reactor, Transport};

#[derive(Default)]
struct Echo(Option<Rc<dyn Transport>>);

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.0 = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.0.iter().for_each(|transport| transport.write(data));
    }
}

fn main() -> Result<(), Error> {
    let port = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(8000);
    let reactor = Reactor::new()?;
    reactor.install_signal_handlers()?;
    reactor.listen_tcp(([127, 0, 0, 1], port).into(), ProtocolFactory::new(Echo::default))?;
    reactor.run()
}
