//! Codec tests: every message round-trips, and every truncation of every message fails cleanly.

use super::super::msgs::*;
use super::{direct_tcpip, forwarded_tcpip};
use crate::wire::{InvalidMessage, MessageType, Reader, Writer};

/// One of every typed channel request, with fields that exercise each encoding.
pub(in crate::connection) fn all_channel_requests() -> Vec<ChannelRequest> {
    let modes: TerminalModes = [
        (TerminalMode::VINTR, 3),
        (TerminalMode::VERASE, 0x7f),
        (TerminalMode::ECHO, 1),
        (TerminalMode::ICANON, 1),
        (TerminalMode::IUTF8, 1),
        (TerminalMode::CS8, 1),
        (TerminalMode::TTY_OP_ISPEED, 38_400),
        (TerminalMode::TTY_OP_OSPEED, 38_400),
        (TerminalMode(99), 7),
    ]
    .into_iter()
    .collect();
    let size = WindowSize { cols: 80, rows: 24, width_px: 640, height_px: 480 };
    vec![
        ChannelRequest::PtyReq { term: "xterm-256color".into(), size, modes },
        ChannelRequest::X11Req {
            single_connection: true,
            auth_protocol: "MIT-MAGIC-COOKIE-1".into(),
            auth_cookie: "0123456789abcdef".into(),
            screen: 0,
        },
        ChannelRequest::Env { name: "LANG".into(), value: b"C.UTF-8".to_vec() },
        ChannelRequest::Shell,
        ChannelRequest::Exec { command: b"ls -l \xe9".to_vec() },
        ChannelRequest::Subsystem { name: "sftp".into() },
        ChannelRequest::WindowChange {
            size: WindowSize { cols: 132, rows: 43, width_px: 0, height_px: 0 },
        },
        ChannelRequest::XonXoff { client_can_do: true },
        ChannelRequest::Signal { name: "INT".into() },
        ChannelRequest::ExitStatus { code: 42 },
        ChannelRequest::ExitSignal {
            signal: "KILL".into(),
            core_dumped: true,
            message: "killed".into(),
            language: "en".into(),
        },
        ChannelRequest::Break { length_ms: 500 },
        ChannelRequest::Eow,
        ChannelRequest::AuthAgentReq,
        ChannelRequest::Keepalive,
    ]
}

/// One of every typed global request.
pub(in crate::connection) fn all_global_requests() -> Vec<GlobalRequest> {
    vec![
        GlobalRequest::TcpipForward { address: "localhost".into(), port: 0 },
        GlobalRequest::CancelTcpipForward { address: "localhost".into(), port: 8022 },
        GlobalRequest::StreamlocalForward { socket_path: b"/tmp/s.sock".to_vec() },
        GlobalRequest::CancelStreamlocalForward { socket_path: b"/tmp/s.sock".to_vec() },
        GlobalRequest::NoMoreSessions,
        GlobalRequest::HostKeys { keys: vec![b"key one".to_vec(), b"key two".to_vec()] },
        GlobalRequest::HostKeysProve { keys: vec![b"key one".to_vec()] },
        GlobalRequest::Keepalive,
    ]
}

fn all_channel_kinds() -> Vec<ChannelKind> {
    vec![
        ChannelKind::Session,
        direct_tcpip(),
        forwarded_tcpip(),
        ChannelKind::DirectStreamlocal { socket_path: b"/run/app.sock".to_vec() },
        ChannelKind::ForwardedStreamlocal { socket_path: b"/run/fwd.sock".to_vec() },
        ChannelKind::AuthAgent,
        ChannelKind::X11 { originator_address: "127.0.0.1".into(), originator_port: 6010 },
    ]
}

fn encode(f: impl FnOnce(&mut Writer<'_>)) -> Vec<u8> {
    let mut buf = Vec::new();
    f(&mut Writer::new(&mut buf));
    buf
}

/// How a sample payload's end can be recognised.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Every field is fixed or length-prefixed: every cut is detectable.
    Fixed,
    /// Ends in a list of strings running to the end: a cut between two strings is a shorter,
    /// valid list.
    ListToEnd,
    /// Ends in raw bytes: a cut inside them is a shorter, valid message.
    RawToEnd,
}

struct Sample {
    name: String,
    payload: Vec<u8>,
    format: ReplyFormat,
    shape: Shape,
}

fn samples() -> Vec<Sample> {
    let fixed = |name: &str, payload| Sample {
        name: name.to_owned(),
        payload,
        format: ReplyFormat::Plain,
        shape: Shape::Fixed,
    };
    let mut all = Vec::new();
    for kind in all_channel_kinds() {
        let open =
            ChannelOpen { sender: 7, window: 1 << 21, max_packet: 1 << 15, kind: Some(kind) };
        all.push(fixed("open", encode(|w| open.encode(w))));
    }
    let confirmation =
        ChannelOpenConfirmation { recipient: 1, sender: 2, window: 3, max_packet: 4 };
    all.push(fixed("confirmation", encode(|w| confirmation.encode(w))));
    let failure = ChannelOpenFailure {
        recipient: 9,
        reason: OpenFailureReason::CONNECT_FAILED,
        description: "connection refused".into(),
    };
    all.push(fixed("open failure", encode(|w| failure.encode(w))));
    let adjust = ChannelWindowAdjust { recipient: 3, bytes_to_add: 65_536 };
    all.push(fixed("window adjust", encode(|w| adjust.encode(w))));
    let data = ChannelData { recipient: 3, data: b"hello" };
    all.push(fixed("data", encode(|w| data.encode(w))));
    let ext = ChannelExtendedData { recipient: 3, code: EXTENDED_DATA_STDERR, data: b"oops" };
    all.push(fixed("extended data", encode(|w| ext.encode(w))));
    all.push(fixed("eof", encode(|w| ChannelEof { recipient: 5 }.encode(w))));
    all.push(fixed("close", encode(|w| ChannelClose { recipient: 5 }.encode(w))));
    all.push(fixed("success", encode(|w| ChannelSuccess { recipient: 5 }.encode(w))));
    all.push(fixed("failure", encode(|w| ChannelFailure { recipient: 5 }.encode(w))));
    for request in all_channel_requests() {
        let payload = encode(|w| ChannelRequestHeader::encode(w, 4, &request, true));
        all.push(fixed(request.name(), payload));
    }
    for request in all_global_requests() {
        let payload = encode(|w| GlobalRequestHeader::encode(w, &request, true));
        let shape = match request {
            GlobalRequest::HostKeys { .. } | GlobalRequest::HostKeysProve { .. } => {
                Shape::ListToEnd
            }
            _ => Shape::Fixed,
        };
        all.push(Sample { shape, ..fixed(request.name(), payload) });
    }
    let unknown = ChannelRequest::Unknown { name: "x@example.org".into(), data: vec![1, 2, 3] };
    all.push(Sample {
        shape: Shape::RawToEnd,
        ..fixed("unknown request", encode(|w| ChannelRequestHeader::encode(w, 4, &unknown, true)))
    });
    let replies = [
        (GlobalReply::Success, ReplyFormat::Plain, Shape::Fixed),
        (GlobalReply::BoundPort(40_123), ReplyFormat::BoundPort, Shape::Fixed),
        (
            GlobalReply::HostKeyProofs(vec![b"sig one".to_vec(), b"sig two".to_vec()]),
            ReplyFormat::HostKeyProofs,
            Shape::ListToEnd,
        ),
        (GlobalReply::SuccessWith(vec![1, 2]), ReplyFormat::Raw, Shape::RawToEnd),
        (GlobalReply::Failure, ReplyFormat::Plain, Shape::Fixed),
    ];
    for (reply, format, shape) in replies {
        all.push(Sample {
            name: format!("{reply:?}"),
            payload: encode(|w| reply.encode(w)),
            format,
            shape,
        });
    }
    all
}

/// Decodes a whole payload the way the connection does, down to the typed contents.
fn decode(payload: &[u8], format: ReplyFormat) -> Result<(), InvalidMessage> {
    let mut r = Reader::new(payload);
    let r = &mut r;
    match r.read_message_type()? {
        MessageType::CHANNEL_OPEN => ChannelOpen::decode(r).map(drop),
        MessageType::CHANNEL_OPEN_CONFIRMATION => ChannelOpenConfirmation::decode(r).map(drop),
        MessageType::CHANNEL_OPEN_FAILURE => ChannelOpenFailure::decode(r).map(drop),
        MessageType::CHANNEL_WINDOW_ADJUST => ChannelWindowAdjust::decode(r).map(drop),
        MessageType::CHANNEL_DATA => ChannelData::decode(r).map(drop),
        MessageType::CHANNEL_EXTENDED_DATA => ChannelExtendedData::decode(r).map(drop),
        MessageType::CHANNEL_EOF => ChannelEof::decode(r).map(drop),
        MessageType::CHANNEL_CLOSE => ChannelClose::decode(r).map(drop),
        MessageType::CHANNEL_SUCCESS => ChannelSuccess::decode(r).map(drop),
        MessageType::CHANNEL_FAILURE => ChannelFailure::decode(r).map(drop),
        MessageType::CHANNEL_REQUEST => {
            let header = ChannelRequestHeader::decode(r)?;
            ChannelRequest::decode(header.name, header.data).map(drop)
        }
        MessageType::GLOBAL_REQUEST => {
            let header = GlobalRequestHeader::decode(r)?;
            GlobalRequest::decode(header.name, header.data).map(drop)
        }
        MessageType::REQUEST_SUCCESS => GlobalReply::decode_success(format, r).map(drop),
        MessageType::REQUEST_FAILURE => r.finish(),
        other => panic!("no decoder for {other}"),
    }
}

/// Every sample decodes whole.
#[test]
fn every_sample_decodes() {
    for sample in samples() {
        decode(&sample.payload, sample.format).unwrap_or_else(|e| panic!("{}: {e}", sample.name));
    }
}

/// Every prefix of every fixed-layout message is an error, never a panic or a shorter message.
#[test]
fn rejects_every_truncation_of_every_message() {
    let mut checked = 0;
    for sample in samples().into_iter().filter(|s| s.shape == Shape::Fixed) {
        for cut in 0..sample.payload.len() {
            let result = decode(&sample.payload[..cut], sample.format);
            assert!(result.is_err(), "{} cut at {cut} decoded", sample.name);
            checked += 1;
        }
    }
    assert!(checked > 500, "only {checked} truncations checked");
}

/// Messages ending in a list or in raw bytes decode every prefix to an error or to a shorter,
/// valid message; a list cut inside a string is an error.
#[test]
fn open_ended_messages_survive_every_truncation() {
    for sample in samples().into_iter().filter(|s| s.shape != Shape::Fixed) {
        let mut errors = 0;
        for cut in 0..sample.payload.len() {
            if decode(&sample.payload[..cut], sample.format).is_err() {
                errors += 1;
            }
        }
        if sample.shape == Shape::ListToEnd {
            assert!(errors > sample.payload.len() / 2, "{}: {errors} errors", sample.name);
        }
    }
}

/// A byte after the last field of any fixed-layout message is an error.
#[test]
fn rejects_trailing_data_after_every_message() {
    for sample in samples().into_iter().filter(|s| s.shape == Shape::Fixed) {
        let mut payload = sample.payload.clone();
        payload.push(0);
        let t = MessageType(payload[0]);
        let result = decode(&payload, sample.format);
        // A keepalive's data, and a plain success reply's data, are ignored by design.
        let ignored = sample.name == "keepalive@openssh.com"
            || (t == MessageType::REQUEST_SUCCESS && sample.format == ReplyFormat::Plain);
        if ignored {
            assert!(result.is_ok(), "{}", sample.name);
        } else {
            assert_eq!(result, Err(InvalidMessage::TrailingData), "{}", sample.name);
        }
    }
}

/// Every channel kind survives encoding and decoding unchanged.
#[test]
fn round_trips_every_channel_kind() {
    for kind in all_channel_kinds() {
        let open =
            ChannelOpen { sender: 11, window: 100, max_packet: 10, kind: Some(kind.clone()) };
        let payload = encode(|w| open.encode(w));
        let mut r = Reader::new(&payload[1..]);
        assert_eq!(ChannelOpen::decode(&mut r).unwrap(), open, "{kind:?}");
    }
}

/// An open of a type we do not know decodes with no kind, so it can be refused.
#[test]
fn decodes_an_unknown_channel_type_without_its_data() {
    let payload = encode(|w| {
        w.write_u8(90).write_string(b"tun@openssh.com").write_u32(3).write_u32(4).write_u32(5);
        w.write_u32(1).write_u32(0x7fff_ffff);
    });
    let open = ChannelOpen::decode(&mut Reader::new(&payload[1..])).unwrap();
    assert_eq!(open, ChannelOpen { sender: 3, window: 4, max_packet: 5, kind: None });
}

/// Every typed channel request survives encoding and decoding unchanged.
#[test]
fn round_trips_every_channel_request() {
    for request in all_channel_requests() {
        let payload = encode(|w| ChannelRequestHeader::encode(w, 4, &request, false));
        let mut r = Reader::new(&payload[1..]);
        let header = ChannelRequestHeader::decode(&mut r).unwrap();
        assert_eq!((header.recipient, header.want_reply), (4, false));
        assert_eq!(ChannelRequest::decode(header.name, header.data).unwrap(), request);
    }
}

/// Every typed global request survives encoding and decoding unchanged.
#[test]
fn round_trips_every_global_request() {
    for request in all_global_requests() {
        let payload = encode(|w| GlobalRequestHeader::encode(w, &request, true));
        let header = GlobalRequestHeader::decode(&mut Reader::new(&payload[1..])).unwrap();
        assert!(header.want_reply);
        assert_eq!(GlobalRequest::decode(header.name, header.data).unwrap(), request);
    }
}

/// Success replies decode according to the request they answer.
#[test]
fn decodes_success_replies_by_the_request_they_answer() {
    let port = encode(|w| GlobalReply::BoundPort(2222).encode(w));
    let decode = |format, payload: &[u8]| {
        GlobalReply::decode_success(format, &mut Reader::new(&payload[1..]))
    };
    assert_eq!(decode(ReplyFormat::BoundPort, &port), Ok(GlobalReply::BoundPort(2222)));
    assert_eq!(decode(ReplyFormat::Plain, &port), Ok(GlobalReply::Success));
    assert_eq!(decode(ReplyFormat::Raw, &port), Ok(GlobalReply::SuccessWith(vec![0, 0, 8, 0xae])));
    assert_eq!(decode(ReplyFormat::BoundPort, &[81]), Err(InvalidMessage::Truncated));
    assert_eq!(decode(ReplyFormat::Raw, &[81]), Ok(GlobalReply::Success));
    let reply = |request: GlobalRequest| request.reply_format();
    assert_eq!(
        reply(GlobalRequest::TcpipForward { address: String::new(), port: 0 }),
        ReplyFormat::BoundPort
    );
    assert_eq!(
        reply(GlobalRequest::TcpipForward { address: String::new(), port: 22 }),
        ReplyFormat::Plain
    );
}

/// Terminal modes decode per RFC 4254 §8: pairs until `TTY_OP_END`; a later value of the same
/// opcode wins; decoding stops at an undefined opcode (160 and up), as in OpenSSH.
#[test]
fn decodes_terminal_modes_as_openssh_does() {
    let encoded = [
        53, 0, 0, 0, 1, // ECHO 1
        3, 0, 0, 0, 0x7f, // VERASE 127
        53, 0, 0, 0, 0, // ECHO 0: last wins
        128, 0, 0, 0x96, 0, // ISPEED 38400
        0, // TTY_OP_END
        1, 0, 0, 0, 9, // after the end: ignored
    ];
    let modes = TerminalModes::decode(&encoded).unwrap();
    assert_eq!(modes.get(TerminalMode::ECHO), Some(0));
    assert_eq!(modes.get(TerminalMode::VERASE), Some(0x7f));
    assert_eq!(modes.get(TerminalMode::TTY_OP_ISPEED), Some(38_400));
    assert_eq!(modes.get(TerminalMode::VINTR), None);
    assert_eq!(modes.len(), 3);

    let stops = [51, 0, 0, 0, 1, 160, 1, 2, 3];
    let modes = TerminalModes::decode(&stops).unwrap();
    assert_eq!(modes.iter().collect::<Vec<_>>(), [(TerminalMode::ICANON, 1)]);

    assert_eq!(TerminalModes::decode(&[]).unwrap(), TerminalModes::new());
    for cut in 1..5 {
        assert_eq!(
            TerminalModes::decode(&[53, 0, 0, 0, 1][..cut]),
            Err(InvalidMessage::Truncated),
            "cut at {cut}"
        );
    }
}

/// Encoded modes end with `TTY_OP_END`, and opcodes that take no argument cannot be set.
#[test]
fn encodes_terminal_modes_with_an_end_marker() {
    let mut modes = TerminalModes::new();
    assert!(modes.insert(TerminalMode::ECHO, 1));
    assert!(!modes.insert(TerminalMode::TTY_OP_END, 1));
    assert!(!modes.insert(TerminalMode(200), 1));
    assert_eq!(encode(|w| modes.encode(w)), [53, 0, 0, 0, 1, 0]);
    assert_eq!(encode(|w| TerminalModes::new().encode(w)), [0]);
}

/// Names, paths and commands may not hold NUL (OpenSSH's C strings); names must be UTF-8;
/// display text is decoded lossily.
#[test]
fn checks_text_fields() {
    let request = |name: &str, data: &[u8]| ChannelRequest::decode(name, data);
    let string = |bytes: &[u8]| {
        encode(|w| {
            w.write_string(bytes);
        })
    };
    assert_eq!(request("exec", &string(b"ls\0rm")), Err(InvalidMessage::InvalidValue));
    assert_eq!(request("subsystem", &string(b"sf\xfftp")), Err(InvalidMessage::InvalidUtf8));
    assert_eq!(
        request("exec", &string(b"\xff")).unwrap(),
        ChannelRequest::Exec { command: vec![0xff] }
    );
    let mut exit_signal = string(b"TERM");
    exit_signal.push(0);
    exit_signal.extend(string(b"bad \xff"));
    exit_signal.extend(string(b""));
    let ChannelRequest::ExitSignal { message, .. } = request("exit-signal", &exit_signal).unwrap()
    else {
        panic!("not an exit-signal")
    };
    assert_eq!(message, "bad \u{fffd}");
}

/// A host key list longer than the limit is refused before it is collected.
#[test]
fn rejects_too_many_host_keys() {
    let keys = vec![b"k".to_vec(); MAX_HOST_KEYS + 1];
    let data = encode(|w| GlobalRequest::HostKeys { keys: keys.clone() }.encode_data(w));
    assert_eq!(
        GlobalRequest::decode("hostkeys-00@openssh.com", &data),
        Err(InvalidMessage::LengthOverLimit)
    );
    let fewer = encode(|w| GlobalRequest::HostKeys { keys: keys[1..].to_vec() }.encode_data(w));
    assert!(GlobalRequest::decode("hostkeys-00@openssh.com", &fewer).is_ok());
}

/// Open newtypes print their names for known values and the number otherwise.
#[test]
fn debug_prints_names_of_codes() {
    assert_eq!(format!("{:?}", OpenFailureReason::RESOURCE_SHORTAGE), "RESOURCE_SHORTAGE");
    assert_eq!(format!("{:?}", OpenFailureReason(77)), "OpenFailureReason(77)");
    assert_eq!(format!("{:?}", TerminalMode::IUTF8), "IUTF8");
    assert_eq!(format!("{:?}", TerminalMode(150)), "TerminalMode(150)");
}

/// Each channel kind and request knows which side sends it.
#[test]
fn knows_which_side_sends_what() {
    use super::super::Side;
    assert_eq!(ChannelKind::Session.opener(), Side::Client);
    assert_eq!(forwarded_tcpip().opener(), Side::Server);
    assert_eq!(ChannelRequest::Shell.sender(), Some(Side::Client));
    assert_eq!(ChannelRequest::ExitStatus { code: 0 }.sender(), Some(Side::Server));
    assert_eq!(ChannelRequest::Eow.sender(), None);
    assert_eq!(GlobalRequest::NoMoreSessions.sender(), Some(Side::Client));
    assert_eq!(GlobalRequest::HostKeys { keys: vec![] }.sender(), Some(Side::Server));
    assert_eq!(GlobalRequest::Keepalive.sender(), None);
    assert!(ChannelRequest::is_session_name("pty-req"));
    assert!(!ChannelRequest::is_session_name("eow@openssh.com"));
}
