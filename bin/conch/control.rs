//! `ControlMaster` / `ControlPath` / `-O`: sessions are not multiplexed, but a master listens
//! on its control socket so that `conch -O check` and `conch -O exit` (and `stop`) work
//! between conch processes, as scripts written for `ssh` use them. The socket speaks a
//! one-line protocol of our own, not OpenSSH's multiplexing protocol.

use std::cell::Cell;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use twine_conch::client::Connection;
use twine_core::protocol::{Address, Factory};
use twine_core::reactor::ListeningPort;
use twine_core::{Protocol, Reactor, Transport};

/// `-O command` against the master at `path`; the exit status.
pub(crate) fn command(path: &str, command: &str) -> u8 {
    let known = matches!(command, "check" | "exit" | "stop");
    if !known {
        eprintln!("Unsupported control command \"{command}\" (multiplexing is not supported)");
        return 255;
    }
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!("Control socket connect({path}): {err}");
            return 255;
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream.write_all(format!("{command}\n").as_bytes()).is_err() {
        eprintln!("Control socket {path}: write failed");
        return 255;
    }
    let mut answer = String::new();
    let _ = BufReader::new(stream).read_line(&mut answer);
    let answer = answer.trim();
    match command {
        "check" if !answer.is_empty() => {
            eprintln!("Master running (pid={answer})");
            0
        }
        "exit" | "stop" if answer == "ok" => {
            eprintln!(
                "{}",
                if command == "exit" {
                    "Exit request sent."
                } else {
                    "Stop listening request sent."
                }
            );
            0
        }
        _ => {
            eprintln!("Control socket {path}: no answer");
            255
        }
    }
}

/// The master's end: listens on `path` until dropped (the socket file is removed then).
pub(crate) struct Master {
    port: ListeningPort,
    path: String,
    /// Set when `-O exit` asked the master to end.
    pub(crate) exit_requested: Rc<Cell<bool>>,
}

impl Master {
    /// Listens on `path` for control commands about `connection`.
    pub(crate) fn listen(
        reactor: &Reactor,
        path: &str,
        connection: &Connection,
    ) -> Result<Self, String> {
        if std::path::Path::new(path).exists() && UnixStream::connect(path).is_ok() {
            return Err(format!("ControlSocket {path} already exists, disabling multiplexing"));
        }
        let _ = std::fs::remove_file(path);
        let exit_requested = Rc::new(Cell::new(false));
        let factory = ControlFactory {
            connection: connection.clone(),
            exit_requested: Rc::clone(&exit_requested),
        };
        let port = reactor
            .listen_unix(path, factory)
            .map_err(|err| format!("ControlSocket {path}: {err}"))?;
        log::debug!("setting up multiplex master socket (control commands only; no multiplexing)");
        Ok(Self { port, path: path.to_owned(), exit_requested })
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.port.stop_listening();
        let _ = std::fs::remove_file(&self.path);
    }
}

struct ControlFactory {
    connection: Connection,
    exit_requested: Rc<Cell<bool>>,
}

impl Factory for ControlFactory {
    fn build_protocol(&mut self, _addr: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(Control {
            connection: self.connection.clone(),
            exit_requested: Rc::clone(&self.exit_requested),
            transport: None,
            line: Vec::new(),
        }))
    }
}

struct Control {
    connection: Connection,
    exit_requested: Rc<Cell<bool>>,
    transport: Option<Rc<dyn Transport>>,
    line: Vec<u8>,
}

impl Protocol for Control {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.line.extend_from_slice(data);
        let Some(end) = self.line.iter().position(|&b| b == b'\n') else {
            if self.line.len() > 256 {
                if let Some(transport) = &self.transport {
                    transport.lose_connection();
                }
            }
            return;
        };
        let command =
            String::from_utf8_lossy(self.line.get(..end).unwrap_or_default()).into_owned();
        let Some(transport) = self.transport.clone() else { return };
        match command.as_str() {
            "check" => transport.write(format!("{}\n", std::process::id()).as_bytes()),
            "exit" => {
                transport.write(b"ok\n");
                log::debug!("control: exit requested");
                self.exit_requested.set(true);
                self.connection.disconnect();
            }
            // Nothing is multiplexed, so there is nothing to stop accepting.
            "stop" => transport.write(b"ok\n"),
            _ => transport.write(b"unsupported\n"),
        }
        transport.lose_connection();
    }
}
