//! Signals as loop events (signal-hook: the handler only writes to a pipe).

use std::collections::HashMap;
use std::rc::Rc;

use signal_hook_mio::v1_0::Signals;

use super::{Reactor, SIGNAL_TOKEN};
use crate::error::{Error, ErrorKind};

/// The signals a program can observe or send, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGHUP`: the terminal hung up; daemons reload their configuration.
    Hangup,
    /// `SIGINT`: interrupt from the keyboard (Ctrl-C).
    Interrupt,
    /// `SIGQUIT`: quit from the keyboard.
    Quit,
    /// `SIGTERM`: polite request to terminate.
    Terminate,
    /// `SIGKILL`: cannot be caught; only sent.
    Kill,
    /// `SIGCHLD`: a child stopped or exited.
    Child,
    /// `SIGUSR1`.
    User1,
    /// `SIGUSR2`.
    User2,
    /// `SIGWINCH`: the terminal's window size changed.
    WindowChange,
    /// `SIGPIPE`: write to a pipe without reader.
    Pipe,
    /// `SIGALRM`.
    Alarm,
    /// `SIGCONT`: continue if stopped.
    Continue,
    /// `SIGSTOP`: cannot be caught; only sent.
    Stop,
    /// `SIGTSTP`: stop from the keyboard (Ctrl-Z).
    TerminalStop,
}

impl Signal {
    /// The platform's signal number.
    pub fn as_raw(self) -> i32 {
        match self {
            Self::Hangup => libc::SIGHUP,
            Self::Interrupt => libc::SIGINT,
            Self::Quit => libc::SIGQUIT,
            Self::Terminate => libc::SIGTERM,
            Self::Kill => libc::SIGKILL,
            Self::Child => libc::SIGCHLD,
            Self::User1 => libc::SIGUSR1,
            Self::User2 => libc::SIGUSR2,
            Self::WindowChange => libc::SIGWINCH,
            Self::Pipe => libc::SIGPIPE,
            Self::Alarm => libc::SIGALRM,
            Self::Continue => libc::SIGCONT,
            Self::Stop => libc::SIGSTOP,
            Self::TerminalStop => libc::SIGTSTP,
        }
    }

    /// The named signal with the platform number `raw`, if it has a name here.
    pub fn from_raw(raw: i32) -> Option<Self> {
        [
            Self::Hangup,
            Self::Interrupt,
            Self::Quit,
            Self::Terminate,
            Self::Kill,
            Self::Child,
            Self::User1,
            Self::User2,
            Self::WindowChange,
            Self::Pipe,
            Self::Alarm,
            Self::Continue,
            Self::Stop,
            Self::TerminalStop,
        ]
        .into_iter()
        .find(|signal| signal.as_raw() == raw)
    }
}

/// The reactor's signal delivery: one signal-hook pipe, observers per signal.
#[derive(Default)]
pub(crate) struct SignalState {
    signals: Option<Signals>,
    observers: HashMap<i32, Vec<Box<dyn FnMut()>>>,
    stop_on: Vec<i32>,
    children: bool,
}

impl Reactor {
    /// Makes SIGINT and SIGTERM stop the reactor gracefully: [`run`](Self::run) returns after
    /// the shutdown triggers ran and the connections were lost. Nothing but a wake-up happens
    /// in the signal handler itself.
    ///
    /// # Errors
    ///
    /// The handlers could not be installed.
    pub fn install_signal_handlers(&self) -> Result<(), Error> {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            self.add_signal(signal)?;
            self.inner.signals.borrow_mut().stop_on.push(signal);
        }
        Ok(())
    }

    /// Calls `observer` from the loop each time `signal` arrives (several arrivals between two
    /// turns may be reported once). SIGHUP for a configuration reload, SIGCHLD, SIGWINCH.
    ///
    /// # Errors
    ///
    /// The signal cannot be caught ([`ErrorKind::InvalidInput`] for SIGKILL and SIGSTOP), or
    /// the handler could not be installed.
    pub fn observe_signal(
        &self,
        signal: Signal,
        observer: impl FnMut() + 'static,
    ) -> Result<(), Error> {
        let raw = signal.as_raw();
        self.add_signal(raw)?;
        self.inner.signals.borrow_mut().observers.entry(raw).or_default().push(Box::new(observer));
        Ok(())
    }

    /// Starts reaping children on SIGCHLD (before the first spawn).
    pub(crate) fn watch_children(&self) -> Result<(), Error> {
        if self.inner.signals.borrow().children {
            return Ok(());
        }
        self.add_signal(libc::SIGCHLD)?;
        self.inner.signals.borrow_mut().children = true;
        Ok(())
    }

    fn add_signal(&self, raw: i32) -> Result<(), Error> {
        if signal_hook::consts::FORBIDDEN.contains(&raw) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("signal {raw} cannot be caught"),
            ));
        }
        let mut state = self.inner.signals.borrow_mut();
        if state.signals.is_none() {
            let mut signals = Signals::new(std::iter::empty::<i32>())
                .map_err(|err| Error::from_io(&err, "create the signal pipe"))?;
            self.inner
                .registry()
                .register(&mut signals, SIGNAL_TOKEN, mio::Interest::READABLE)
                .map_err(|err| Error::from_io(&err, "register the signal pipe"))?;
            state.signals = Some(signals);
        }
        let Some(signals) = state.signals.as_ref() else {
            return Err(Error::new(ErrorKind::Other, "signal pipe missing"));
        };
        signals.add_signal(raw).map_err(|err| Error::from_io(&err, format!("catch signal {raw}")))
    }

    /// The signal pipe is readable: dispatch what arrived.
    pub(super) fn signals_ready(&self) {
        let arrived: Vec<i32> = {
            let mut state = self.inner.signals.borrow_mut();
            match state.signals.as_mut() {
                Some(signals) => signals.pending().collect(),
                None => return,
            }
        };
        for raw in arrived {
            if raw == libc::SIGCHLD {
                self.reap_children();
            }
            if self.inner.signals.borrow().stop_on.contains(&raw) {
                log::info!("signal {raw}: stopping the reactor");
                self.stop();
            }
            let observers = self.inner.signals.borrow_mut().observers.remove(&raw);
            let Some(mut observers) = observers else { continue };
            for observer in &mut observers {
                observer();
            }
            let mut state = self.inner.signals.borrow_mut();
            let added = state.observers.insert(raw, observers);
            if let Some(added) = added {
                state.observers.entry(raw).or_default().extend(added);
            }
        }
    }

    /// Checks each of this reactor's children (never `waitpid(-1)`: other reactors and
    /// `std::process` own theirs).
    pub(crate) fn reap_children(&self) {
        let children: Vec<(u32, Rc<dyn crate::process::Reap>)> = self
            .inner
            .children
            .borrow()
            .iter()
            .map(|(pid, child)| (*pid, Rc::clone(child)))
            .collect();
        for (pid, child) in children {
            let done = child.reap();
            if done {
                self.inner.children.borrow_mut().remove(&pid);
            }
        }
    }
}
