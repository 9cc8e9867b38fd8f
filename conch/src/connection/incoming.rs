//! Handling the peer's messages: decoding, checking them against the channel's state, and
//! turning them into events and automatic replies, as OpenSSH's `channels.c`, `serverloop.c`
//! and `clientloop.c` do.

use super::channel::{Delivery, Half, ReceiveError, State};
use super::msgs::{
    ChannelClose, ChannelData, ChannelEof, ChannelExtendedData, ChannelFailure, ChannelKind,
    ChannelOpen, ChannelOpenConfirmation, ChannelOpenFailure, ChannelRequest, ChannelRequestHeader,
    ChannelSuccess, ChannelWindowAdjust, GlobalReply, GlobalRequest, GlobalRequestHeader,
    OpenFailureReason, EXTENDED_DATA_STDERR,
};
use super::{Channel, ChannelId, Connection, Event, Stream, OUTPUT_HEADROOM};
use crate::error::{Error, PeerMisbehaved};
use crate::wire::{MessageType, Reader};

impl Connection {
    pub(super) fn dispatch(&mut self, payload: &[u8]) -> Result<(), Error> {
        if self.out.len() > self.config.max_queued_output + OUTPUT_HEADROOM {
            // The peer keeps asking for answers and nobody drains them.
            return Err(PeerMisbehaved::BufferLimitExceeded.into());
        }
        let mut r = Reader::new(payload);
        let t = r.read_message_type()?;
        match t {
            MessageType::CHANNEL_DATA => self.on_data(ChannelData::decode(&mut r)?),
            MessageType::CHANNEL_EXTENDED_DATA => {
                self.on_extended_data(ChannelExtendedData::decode(&mut r)?)
            }
            MessageType::CHANNEL_WINDOW_ADJUST => {
                self.on_window_adjust(ChannelWindowAdjust::decode(&mut r)?)
            }
            MessageType::CHANNEL_OPEN => self.on_open(ChannelOpen::decode(&mut r)?),
            MessageType::CHANNEL_OPEN_CONFIRMATION => {
                self.on_open_confirmation(ChannelOpenConfirmation::decode(&mut r)?)
            }
            MessageType::CHANNEL_OPEN_FAILURE => {
                self.on_open_failure(ChannelOpenFailure::decode(&mut r)?)
            }
            MessageType::CHANNEL_EOF => self.on_eof(ChannelEof::decode(&mut r)?),
            MessageType::CHANNEL_CLOSE => self.on_close(ChannelClose::decode(&mut r)?),
            MessageType::CHANNEL_REQUEST => {
                self.on_channel_request(ChannelRequestHeader::decode(&mut r)?)
            }
            MessageType::CHANNEL_SUCCESS => {
                self.on_channel_reply(ChannelSuccess::decode(&mut r)?.recipient, true);
                Ok(())
            }
            MessageType::CHANNEL_FAILURE => {
                self.on_channel_reply(ChannelFailure::decode(&mut r)?.recipient, false);
                Ok(())
            }
            MessageType::GLOBAL_REQUEST => {
                self.on_global_request(GlobalRequestHeader::decode(&mut r)?)
            }
            MessageType::REQUEST_SUCCESS => self.on_global_reply(&mut r, true),
            MessageType::REQUEST_FAILURE => self.on_global_reply(&mut r, false),
            _ => Err(PeerMisbehaved::UnexpectedMessage(t).into()),
        }
    }

    /// The channel a message from the peer names, which must exist (OpenSSH disconnects on
    /// data, EOF, CLOSE, requests and open answers for channels it does not have).
    fn peer_channel(&mut self, t: MessageType, recipient: u32) -> Result<&mut Channel, Error> {
        self.channel_mut(ChannelId(recipient))
            .ok_or_else(|| PeerMisbehaved::UnknownChannel(t).into())
    }

    fn on_data(&mut self, msg: ChannelData<'_>) -> Result<(), Error> {
        self.on_stream_data(MessageType::CHANNEL_DATA, msg.recipient, Some(Stream::Data), msg.data)
    }

    fn on_extended_data(&mut self, msg: ChannelExtendedData<'_>) -> Result<(), Error> {
        let t = MessageType::CHANNEL_EXTENDED_DATA;
        let channel = self.peer_channel(t, msg.recipient)?;
        if matches!(channel.state, State::Open { remote: Half::Eof, .. }) {
            return Err(PeerMisbehaved::ChannelDataAfterEof.into());
        }
        // Codes other than standard error are charged to the window and dropped.
        let stream = (msg.code == EXTENDED_DATA_STDERR).then_some(Stream::Stderr);
        self.on_stream_data(t, msg.recipient, stream, msg.data)
    }

    fn on_stream_data(
        &mut self,
        t: MessageType,
        recipient: u32,
        stream: Option<Stream>,
        data: &[u8],
    ) -> Result<(), Error> {
        let id = ChannelId(recipient);
        let channel = self.peer_channel(t, recipient)?;
        if !matches!(channel.state, State::Open { .. }) {
            return Err(PeerMisbehaved::UnexpectedMessage(t).into());
        }
        channel.activity = channel.activity.wrapping_add(data.len() as u64).wrapping_add(1);
        let delivery = channel.receive(stream, data).map_err(|e| match e {
            ReceiveError::PacketTooLarge => PeerMisbehaved::ChannelPacketTooLarge,
            ReceiveError::WindowExceeded => PeerMisbehaved::ChannelWindowExceeded,
        })?;
        match (delivery, stream) {
            (Delivery::Buffered { notify: true }, Some(stream)) => {
                self.events.push_back(Event::DataReceived { id, stream });
            }
            (Delivery::Buffered { .. }, _) => {}
            (Delivery::Discarded, _) => self.note_consumed(id),
        }
        Ok(())
    }

    fn on_window_adjust(&mut self, msg: ChannelWindowAdjust) -> Result<(), Error> {
        let t = MessageType::CHANNEL_WINDOW_ADJUST;
        let id = ChannelId(msg.recipient);
        // OpenSSH ignores adjusts for channels it does not have (they race with CLOSE).
        let Some(channel) = self.channel_mut(id) else { return Ok(()) };
        if !matches!(channel.state, State::Open { .. }) {
            return Err(PeerMisbehaved::UnexpectedMessage(t).into());
        }
        channel.send.window = channel
            .send
            .window
            .checked_add(msg.bytes_to_add)
            .ok_or(PeerMisbehaved::ChannelWindowOverflow)?;
        self.wake_writer(id);
        Ok(())
    }

    fn on_open(&mut self, msg: ChannelOpen) -> Result<(), Error> {
        let peer = self.side.peer();
        let refusal = match &msg.kind {
            None => Some((OpenFailureReason::UNKNOWN_CHANNEL_TYPE, "unknown channel type")),
            Some(kind) if kind.opener() != peer => {
                Some((OpenFailureReason::ADMINISTRATIVELY_PROHIBITED, "open failed"))
            }
            Some(ChannelKind::Session) if self.no_more_sessions => {
                // OpenSSH: "Possible attack: attempt to open a session after additional
                // sessions disabled" -- the connection ends.
                return Err(PeerMisbehaved::SessionAfterNoMoreSessions.into());
            }
            Some(_) if self.channel_count >= self.config.max_channels => {
                Some((OpenFailureReason::RESOURCE_SHORTAGE, "too many channels"))
            }
            Some(_) => None,
        };
        if let Some((reason, description)) = refusal {
            let failure = ChannelOpenFailure {
                recipient: msg.sender,
                reason,
                description: description.to_owned(),
            };
            self.out.push(|w| failure.encode(w));
            return Ok(());
        }
        let Some(kind) = msg.kind else { return Ok(()) };
        let channel = Channel::awaiting_accept(
            matches!(kind, ChannelKind::Session),
            msg.sender,
            msg.window,
            msg.max_packet,
            self.config.window_size,
            self.config.max_packet_size,
        );
        let Some(id) = self.allocate(channel) else { return Ok(()) };
        self.events.push_back(Event::ChannelOpenRequested { id, kind });
        Ok(())
    }

    fn on_open_confirmation(&mut self, msg: ChannelOpenConfirmation) -> Result<(), Error> {
        let t = MessageType::CHANNEL_OPEN_CONFIRMATION;
        let id = ChannelId(msg.recipient);
        let channel = self.peer_channel(t, msg.recipient)?;
        let State::Opening { close_requested } = channel.state else {
            return Err(PeerMisbehaved::UnexpectedMessage(t).into());
        };
        channel.remote_id = msg.sender;
        channel.send.window = msg.window;
        channel.send.max_packet = msg.max_packet;
        if close_requested {
            channel.state = State::Open { local: Half::Closed, remote: Half::Open };
            self.out.push(|w| ChannelClose { recipient: msg.sender }.encode(w));
        } else {
            channel.state = State::Open { local: Half::Open, remote: Half::Open };
            self.events.push_back(Event::ChannelOpened { id });
        }
        Ok(())
    }

    fn on_open_failure(&mut self, msg: ChannelOpenFailure) -> Result<(), Error> {
        let t = MessageType::CHANNEL_OPEN_FAILURE;
        let id = ChannelId(msg.recipient);
        let channel = self.peer_channel(t, msg.recipient)?;
        let State::Opening { close_requested } = channel.state else {
            return Err(PeerMisbehaved::UnexpectedMessage(t).into());
        };
        self.free(id);
        self.events.push_back(if close_requested {
            Event::ChannelClosed { id }
        } else {
            Event::ChannelOpenFailed { id, reason: msg.reason, description: msg.description }
        });
        Ok(())
    }

    fn on_eof(&mut self, msg: ChannelEof) -> Result<(), Error> {
        let t = MessageType::CHANNEL_EOF;
        let id = ChannelId(msg.recipient);
        let channel = self.peer_channel(t, msg.recipient)?;
        let State::Open { local, remote } = &mut channel.state else {
            return Err(PeerMisbehaved::UnexpectedMessage(t).into());
        };
        // A second EOF, or EOF after CLOSE, changes nothing (OpenSSH's `chan_rcvd_ieof`).
        if *remote != Half::Open {
            return Ok(());
        }
        *remote = Half::Eof;
        if *local != Half::Closed {
            self.events.push_back(Event::EofReceived { id });
        }
        Ok(())
    }

    fn on_close(&mut self, msg: ChannelClose) -> Result<(), Error> {
        let t = MessageType::CHANNEL_CLOSE;
        let id = ChannelId(msg.recipient);
        let channel = self.peer_channel(t, msg.recipient)?;
        let State::Open { local, remote } = &mut channel.state else {
            return Err(PeerMisbehaved::UnexpectedMessage(t).into());
        };
        // OpenSSH logs a second CLOSE as a protocol error and carries on.
        if *remote == Half::Closed {
            return Ok(());
        }
        *remote = Half::Closed;
        if *local == Half::Closed {
            self.free(id);
            self.events.push_back(Event::ChannelClosed { id });
        } else {
            self.events.push_back(Event::CloseReceived { id });
        }
        Ok(())
    }

    fn on_channel_request(&mut self, msg: ChannelRequestHeader<'_>) -> Result<(), Error> {
        let t = MessageType::CHANNEL_REQUEST;
        let id = ChannelId(msg.recipient);
        let channel = self.peer_channel(t, msg.recipient)?;
        let State::Open { local, remote } = channel.state else {
            return Err(PeerMisbehaved::UnexpectedMessage(t).into());
        };
        if local == Half::Closed {
            // No reply after our CLOSE (OpenSSH checks CHAN_CLOSE_SENT), and nobody to tell.
            return Ok(());
        }
        let is_session = channel.is_session;
        let typed = ChannelRequest::sender_of(msg.name).is_none_or(|side| side == self.side.peer())
            && (is_session || !ChannelRequest::is_session_name(msg.name));
        let request = if typed {
            ChannelRequest::decode(msg.name, msg.data)?
        } else {
            ChannelRequest::Unknown { name: msg.name.to_owned(), data: msg.data.to_vec() }
        };
        // After the peer's CLOSE nobody acts on requests: refuse them, as an unknown one.
        let answered_by_app = remote != Half::Closed
            && match &request {
                ChannelRequest::Keepalive => false,
                ChannelRequest::Unknown { name, .. } => {
                    self.config.app_channel_requests.iter().any(|n| n == name)
                }
                _ => true,
            };
        let raises_event = remote != Half::Closed && request != ChannelRequest::Keepalive;
        // A reply owed is counted until sent; an event that owes none, until polled.
        let event_without_reply = raises_event && !(msg.want_reply && answered_by_app);
        let cost = usize::from(msg.want_reply) + usize::from(event_without_reply);
        if cost > 0 && self.pending_requests + cost > self.config.max_pending_requests {
            return Err(PeerMisbehaved::TooManyPendingRequests.into());
        }
        let mut reply = None;
        if msg.want_reply {
            let request_id = self.new_request_id();
            let answer = (!answered_by_app).then_some(false);
            if let Some(channel) = self.channel_mut(id) {
                channel.incoming.push_back((request_id, answer));
            }
            if answered_by_app {
                reply = Some(request_id);
            }
        }
        self.pending_requests += cost;
        if raises_event {
            self.events.push_back(Event::RequestReceived { id, request, reply });
        }
        self.flush_channel_replies(id);
        Ok(())
    }

    fn on_channel_reply(&mut self, recipient: u32, success: bool) {
        let id = ChannelId(recipient);
        // OpenSSH ignores answers for unknown channels and answers nobody is waiting for.
        let Some(channel) = self.channel_mut(id) else { return };
        let Some(request) = channel.outgoing.pop_front() else { return };
        self.events.push_back(Event::RequestAnswered { id, request, success });
    }

    fn on_global_request(&mut self, msg: GlobalRequestHeader<'_>) -> Result<(), Error> {
        let peer = self.side.peer();
        let typed = GlobalRequest::sender_of(msg.name).is_none_or(|side| side == peer);
        let request = if typed {
            GlobalRequest::decode(msg.name, msg.data)?
        } else {
            GlobalRequest::Unknown { name: msg.name.to_owned(), data: msg.data.to_vec() }
        };
        // What we answer by ourselves, as OpenSSH does; `None` leaves it to the application.
        let automatic = match &request {
            GlobalRequest::NoMoreSessions => {
                self.no_more_sessions = true;
                Some(GlobalReply::Success)
            }
            GlobalRequest::HostKeys { .. } => Some(GlobalReply::Success),
            GlobalRequest::Keepalive => Some(GlobalReply::Failure),
            GlobalRequest::Unknown { name, .. }
                if !self.config.app_global_requests.iter().any(|n| n == name) =>
            {
                Some(GlobalReply::Failure)
            }
            _ => None,
        };
        let raises_event = request != GlobalRequest::Keepalive;
        let event_without_reply = raises_event && !(msg.want_reply && automatic.is_none());
        let cost = usize::from(msg.want_reply) + usize::from(event_without_reply);
        if self.pending_requests + cost > self.config.max_pending_requests && cost > 0 {
            return Err(PeerMisbehaved::TooManyPendingRequests.into());
        }
        let mut reply = None;
        if msg.want_reply {
            let request_id = self.new_request_id();
            if automatic.is_none() {
                reply = Some(request_id);
            }
            self.incoming_global.push_back((request_id, automatic));
        }
        self.pending_requests += cost;
        if raises_event {
            self.events.push_back(Event::GlobalRequestReceived { request, reply });
        }
        self.flush_global_replies();
        Ok(())
    }

    fn on_global_reply(&mut self, r: &mut Reader<'_>, success: bool) -> Result<(), Error> {
        // OpenSSH ignores answers nobody is waiting for.
        let Some((request, format)) = self.outgoing_global.pop_front() else { return Ok(()) };
        let reply = if success {
            GlobalReply::decode_success(format, r)?
        } else {
            r.finish()?;
            GlobalReply::Failure
        };
        self.events.push_back(Event::GlobalRequestAnswered { request, reply });
        Ok(())
    }
}
