//! A bounded pool of worker threads for blocking work.
//!
//! [`Reactor::defer_to_thread`](crate::Reactor::defer_to_thread) is the usual entry point: it
//! runs a closure here and returns its result as a [`Deferred`](crate::Deferred) on the
//! reactor thread.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::error::{Error, ErrorKind};

type Job = Box<dyn FnOnce() + Send>;

/// A pool of at most `max_threads` workers and at most `max_queue` waiting jobs. Workers start
/// on demand and stay until the pool stops.
pub struct ThreadPool {
    shared: Arc<PoolShared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

struct PoolShared {
    queue: Mutex<PoolQueue>,
    available: Condvar,
    max_threads: usize,
    max_queue: usize,
}

struct PoolQueue {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
    stopping: bool,
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, PoolQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ThreadPool {
    /// Workers of the reactor's default pool (Twisted's default).
    pub const DEFAULT_THREADS: usize = 10;
    /// Waiting jobs of the reactor's default pool.
    pub const DEFAULT_QUEUE: usize = 1024;

    /// A pool of at most `max_threads` (at least one) workers and `max_queue` waiting jobs.
    pub fn new(max_threads: usize, max_queue: usize) -> Self {
        Self {
            shared: Arc::new(PoolShared {
                queue: Mutex::new(PoolQueue {
                    jobs: VecDeque::new(),
                    threads: 0,
                    idle: 0,
                    stopping: false,
                }),
                available: Condvar::new(),
                max_threads: max_threads.max(1),
                max_queue,
            }),
            workers: Mutex::new(Vec::new()),
        }
    }

    /// Queues `job` to run on a worker.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LimitReached`] when `max_queue` jobs already wait;
    /// [`ErrorKind::ReactorStopped`] once the pool is stopping; the OS's error if no worker
    /// thread could be started at all.
    pub fn submit(&self, job: Job) -> Result<(), Error> {
        let mut queue = self.shared.lock();
        if queue.stopping {
            return Err(Error::new(ErrorKind::ReactorStopped, "thread pool stopped"));
        }
        if queue.jobs.len() >= self.shared.max_queue {
            return Err(Error::new(ErrorKind::LimitReached, "thread pool queue full"));
        }
        queue.jobs.push_back(job);
        let start_worker = queue.idle == 0 && queue.threads < self.shared.max_threads;
        if start_worker {
            queue.threads += 1;
        }
        drop(queue);
        self.shared.available.notify_one();
        if start_worker {
            self.start_worker()?;
        }
        Ok(())
    }

    fn start_worker(&self) -> Result<(), Error> {
        let shared = Arc::clone(&self.shared);
        let spawned =
            std::thread::Builder::new().name("twine-pool".into()).spawn(move || worker(&shared));
        match spawned {
            Ok(handle) => {
                self.workers.lock().unwrap_or_else(PoisonError::into_inner).push(handle);
                Ok(())
            }
            Err(err) => {
                let mut queue = self.shared.lock();
                queue.threads -= 1;
                if queue.threads == 0 {
                    queue.jobs.pop_back();
                    return Err(Error::from_io(&err, "start a pool thread"));
                }
                Ok(())
            }
        }
    }

    /// Stops the pool: waiting jobs are dropped, running jobs finish, workers are joined (this
    /// blocks until they do). Idempotent; also done on drop.
    pub fn stop(&self) {
        let dropped = {
            let mut queue = self.shared.lock();
            queue.stopping = true;
            std::mem::take(&mut queue.jobs)
        };
        drop(dropped);
        self.shared.available.notify_all();
        let workers =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        for worker in workers {
            if worker.join().is_err() {
                log::warn!("a pool thread panicked");
            }
        }
    }

    /// How many worker threads are running.
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// How many jobs wait for a worker.
    pub fn queued(&self) -> usize {
        self.shared.lock().jobs.len()
    }
}

fn worker(shared: &PoolShared) {
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if queue.stopping {
                    queue.threads -= 1;
                    return;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue.idle += 1;
                queue = shared.available.wait(queue).unwrap_or_else(PoisonError::into_inner);
                queue.idle -= 1;
            }
        };
        job();
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("max_threads", &self.shared.max_threads)
            .field("max_queue", &self.shared.max_queue)
            .field("threads", &self.threads())
            .finish()
    }
}
