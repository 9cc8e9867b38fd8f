//! Futures spawned on the reactor thread.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use super::{Shared, ThreadHandle};

struct Task {
    future: Option<Pin<Box<dyn Future<Output = ()>>>>,
    queued: bool,
}

/// The spawned futures and the queue of those to poll.
#[derive(Default)]
pub(super) struct Tasks {
    tasks: slab::Slab<Task>,
    ready: Vec<usize>,
}

impl Tasks {
    pub(super) fn insert(&mut self, future: Pin<Box<dyn Future<Output = ()>>>) -> usize {
        self.tasks.insert(Task { future: Some(future), queued: false })
    }

    pub(super) fn wake(&mut self, key: usize) {
        if let Some(task) = self.tasks.get_mut(key) {
            if !task.queued {
                task.queued = true;
                self.ready.push(key);
            }
        }
    }

    pub(super) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub(super) fn take_ready(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.ready)
    }

    pub(super) fn clear(&mut self) {
        // Dropping a future may drop Deferreds and transports; take them out first so their
        // destructors run without the table borrowed.
        let tasks = std::mem::take(&mut self.tasks);
        self.ready.clear();
        drop(tasks);
    }
}

struct TaskWaker {
    key: usize,
    handle: ThreadHandle,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.handle.wake_task(self.key);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.handle.wake_task(self.key);
    }
}

/// Polls the task `key` once, with the table not borrowed while the future runs.
pub(super) fn poll_task(tasks: &RefCell<Tasks>, key: usize, shared: &Arc<Shared>) {
    let future = {
        let mut tasks = tasks.borrow_mut();
        let Some(task) = tasks.tasks.get_mut(key) else { return };
        task.queued = false;
        task.future.take()
    };
    let Some(mut future) = future else { return };
    let waker = Waker::from(Arc::new(TaskWaker {
        key,
        handle: ThreadHandle { shared: Arc::clone(shared) },
    }));
    let mut context = Context::from_waker(&waker);
    let finished = future.as_mut().poll(&mut context).is_ready();
    let mut tasks = tasks.borrow_mut();
    if finished {
        tasks.tasks.try_remove(key);
    } else if let Some(task) = tasks.tasks.get_mut(key) {
        task.future = Some(future);
    }
}
