//! Standard input and output as one twine transport, whatever they are (a terminal, a pipe,
//! a regular file, `/dev/null`): a thread copies standard input into a pipe the reactor reads,
//! another copies a pipe the reactor writes to standard output. Nothing is set non-blocking on
//! descriptors shared with other processes, and flow control is the pipes' own.

use std::fs::File;
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::{AsFd as _, OwnedFd};
use std::thread::JoinHandle;

use twine_core::{Protocol, Reactor, Transport};

/// The copying threads' handles.
#[derive(Debug)]
pub(crate) struct Stdio {
    /// Finishes once everything written to the transport reached standard output.
    writer: Option<JoinHandle<()>>,
}

impl Stdio {
    /// Adopts standard input (unless `null_input`: then it reads as empty) and standard output
    /// as one transport running `protocol`.
    pub(crate) fn open(
        reactor: &Reactor,
        null_input: bool,
        protocol: impl Protocol + 'static,
    ) -> Result<(Self, std::rc::Rc<dyn Transport>), String> {
        let (in_read, in_write) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        let (out_read, out_write) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        if !null_input {
            let stdin = std::io::stdin().as_fd().try_clone_to_owned().map_err(|e| e.to_string())?;
            spawn_copy_in(File::from(stdin), in_write);
        } else {
            drop(in_write);
        }
        let stdout = std::io::stdout().as_fd().try_clone_to_owned().map_err(|e| e.to_string())?;
        let writer = spawn_copy_out(out_read, File::from(stdout));
        let transport = reactor
            .adopt_fd_pair(OwnedFd::from(in_read), OwnedFd::from(out_write), protocol)
            .map_err(|e| e.to_string())?;
        Ok((Self { writer: Some(writer) }, transport))
    }

    /// Waits until standard output has everything (the transport must be closed first).
    pub(crate) fn finish(&mut self) {
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn spawn_copy_in(from: File, to: PipeWriter) {
    let _ = std::thread::Builder::new().name("stdin".into()).spawn(move || copy(from, to));
}

fn spawn_copy_out(from: PipeReader, to: File) -> JoinHandle<()> {
    std::thread::spawn(move || copy(from, to))
}

/// Copies with plain reads and writes. `std::io::copy` would splice between a pipe and a file
/// at offsets of its own, overwriting what other processes append to a shared output file.
fn copy(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if to.write_all(buf.get(..n).unwrap_or_default()).is_err() {
            return;
        }
    }
}
