//! Answers from a PAM thread back to the loop that asked.
//!
//! A [`Deferred`] lives on its loop's thread and cannot travel; the PAM thread gets a [`Reply`]
//! instead: a key into a table of waiting Deferreds kept on the loop's thread, and the loop's
//! [`ThreadHandle`](twine_core::reactor::ThreadHandle) to post the answer through. Without a
//! reactor ([`Offload::inline`]), the asking thread waits for the answer on a channel.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use twine_core::reactor::ThreadHandle;
use twine_core::{Deferred, Error, ErrorKind};

use crate::server::Offload;

/// Fires one waiting Deferred with an answer, or fails it with `None`.
type Fire = Box<dyn FnOnce(Option<Box<dyn Any + Send>>)>;

thread_local! {
    /// The Deferreds of this loop's thread waiting for a PAM thread, by key.
    static WAITING: RefCell<HashMap<u64, Fire>> = RefCell::new(HashMap::new());
}

/// Keys are unique across loops, so a misrouted answer can never fire the wrong Deferred.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The sending end of one answer. Sent once from a PAM thread; dropped unsent (the thread
/// ended, or never got the command), the waiting Deferred fails instead.
pub(super) struct Reply<T: Send + 'static> {
    way: Option<Way<T>>,
}

enum Way<T> {
    /// Posted to the loop, which fires the Deferred registered under `key`.
    Loop { handle: ThreadHandle, key: u64 },
    /// Handed to a caller waiting on the other end.
    Inline(mpsc::SyncSender<T>),
}

impl<T: Send + 'static> Reply<T> {
    /// Delivers `value` to the Deferred waiting for it.
    pub(super) fn send(mut self, value: T) {
        match self.way.take() {
            Some(Way::Loop { handle, key }) => {
                let value: Box<dyn Any + Send> = Box::new(value);
                if handle.call_from_thread(move |_| deliver(key, Some(value))).is_err() {
                    log::debug!("a PAM answer was dropped: the reactor has stopped");
                }
            }
            Some(Way::Inline(sender)) => {
                // The asker waits on the other end for as long as this Reply lives.
                let _ = sender.send(value);
            }
            None => {}
        }
    }
}

impl<T: Send + 'static> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(Way::Loop { handle, key }) = self.way.take() {
            // Failing to post means the loop is gone, and its Deferreds with it.
            let _ = handle.call_from_thread(move |_| deliver(key, None));
        }
    }
}

/// On the loop's thread: fires (or fails) the Deferred waiting under `key`.
fn deliver(key: u64, value: Option<Box<dyn Any + Send>>) {
    let fire = WAITING.with(|waiting| waiting.borrow_mut().remove(&key));
    if let Some(fire) = fire {
        fire(value);
    }
}

/// Asks a PAM thread something: `send` hands the question, with its [`Reply`], to the thread.
/// The answer comes back as a Deferred on `offload`'s loop; it fails if the thread drops the
/// Reply unanswered (or never receives it).
///
/// With an inline `offload`, this waits for the answer on the calling thread.
pub(super) fn ask<T: Send + 'static>(
    offload: &Offload,
    send: impl FnOnce(Reply<T>),
) -> Deferred<T> {
    let deferred = offload.deferred();
    let Some(handle) = offload.thread_handle() else {
        let (sender, receiver) = mpsc::sync_channel(1);
        send(Reply { way: Some(Way::Inline(sender)) });
        match receiver.recv() {
            Ok(value) => deferred.callback(value),
            Err(_) => deferred.errback(unanswered()),
        }
        return deferred;
    };
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    let fire = deferred.clone();
    let fire: Fire =
        Box::new(move |value| match value.and_then(|value| value.downcast::<T>().ok()) {
            Some(value) => fire.callback(*value),
            None => fire.errback(unanswered()),
        });
    WAITING.with(|waiting| waiting.borrow_mut().insert(key, fire));
    send(Reply { way: Some(Way::Loop { handle, key }) });
    deferred
}

fn unanswered() -> Error {
    Error::new(ErrorKind::Other, "the PAM thread ended without an answer")
}

/// Asks a PAM thread something without waiting (a privilege-separated monitor, which has no
/// reactor and serves other requests meanwhile): the answer comes on the receiver; it
/// disconnects unanswered if the thread dropped the Reply.
pub(super) fn later<T: Send + 'static>(send: impl FnOnce(Reply<T>)) -> mpsc::Receiver<T> {
    let (sender, receiver) = mpsc::sync_channel(1);
    send(Reply { way: Some(Way::Inline(sender)) });
    receiver
}
