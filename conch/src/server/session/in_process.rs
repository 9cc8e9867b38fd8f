//! In-process sessions: the application's own protocol on the channel.

use std::fmt;
use std::rc::Rc;

use twine_core::{Error as CoreError, ErrorKind, Protocol};

use super::{SessionBackend, SessionControl, SessionInfo, SessionStart};
use crate::connection::msgs::WindowSize;

type Build = dyn Fn(&Rc<SessionInfo>) -> Option<Box<dyn Protocol>>;

/// Sessions served by the application itself: for each session, `build` sees the
/// [`SessionInfo`] (user, command, `TERM`, pty size, accepted environment) and returns the
/// [`Protocol`] to run over the channel, or `None` to refuse the request. The protocol gets
/// the channel as its transport in `connection_made`; a
/// [`ChannelTransport`](crate::server::ChannelTransport) underneath, so anything written for
/// TCP runs unchanged. Terminal resizes reach
/// [`SessionInfo::on_window_change`]'s callback. When the protocol ends the channel
/// (`lose_connection`), the session reports exit status 0, or what
/// [`SessionInfo::set_exit_status`] set.
///
/// ```
/// use twine_conch::server::session::InProcessSessions;
/// use twine_core::basic::{LineProtocol, LineReceiver, Lines};
///
/// struct Echo;
/// impl LineProtocol for Echo {
///     fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
///         lines.send_line(line);
///     }
/// }
/// let sessions = InProcessSessions::new(|_info| Some(Box::new(LineReceiver::new(Echo))));
/// # let _ = sessions;
/// ```
pub struct InProcessSessions {
    build: Box<Build>,
}

impl InProcessSessions {
    /// Sessions whose protocols `build` makes.
    pub fn new(build: impl Fn(&Rc<SessionInfo>) -> Option<Box<dyn Protocol>> + 'static) -> Self {
        Self { build: Box::new(build) }
    }
}

impl fmt::Debug for InProcessSessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InProcessSessions")
    }
}

impl SessionBackend for InProcessSessions {
    fn start(&self, start: SessionStart) -> Result<Box<dyn SessionControl>, CoreError> {
        let protocol = (self.build)(&start.info).ok_or_else(|| {
            CoreError::new(ErrorKind::PermissionDenied, "the application refused the session")
        })?;
        let channel = start.channel.attach(protocol);
        channel.set_exit_status(start.info.exit_status());
        Ok(Box::new(InProcessControl { info: start.info }))
    }
}

/// Passes window changes to the application's callback.
struct InProcessControl {
    info: Rc<SessionInfo>,
}

impl SessionControl for InProcessControl {
    fn window_changed(&mut self, size: WindowSize) {
        self.info.window_changed(size);
    }
}
