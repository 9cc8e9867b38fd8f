//! The identification line exchange, as each side of a real transport sees it.

use super::util::{feed_all_ways, plain_output, Scripted, SERVER_LINE};
use crate::error::{PeerIncompatible, PeerMisbehaved};
use crate::transport::version::MAX_PRE_BANNER_LINES;
use crate::wire::MessageType;

/// The server sends its identification line and KEXINIT before reading anything, as
/// OpenSSH's proto-version test expects.
#[test]
fn the_server_speaks_first_without_waiting_for_input() {
    let mut s = Scripted::server();
    let (line, payloads) = plain_output(&s.output());
    assert_eq!(line, format!("SSH-2.0-twine_{}", env!("CARGO_PKG_VERSION")).into_bytes());
    assert_eq!(payloads.len(), 1);
    assert_eq!(payloads[0][0], MessageType::KEXINIT.0);
}

/// An SSH-1.5 client gets OpenSSH's "Protocol major versions differ." line and a
/// protocol-version error, whatever the chunking.
#[test]
fn an_ssh_1_5_client_gets_protocol_major_versions_differ() {
    let (error, output) = feed_all_ways(Scripted::server, b"SSH-1.5-HALLO\n");
    assert_eq!(error, Some(PeerIncompatible::ProtocolVersion.into()));
    assert!(output.ends_with(b"Protocol major versions differ.\r\n"));
}

/// A server does not skip lines before the client's version.
#[test]
fn the_server_refuses_lines_before_the_version() {
    let (error, output) = feed_all_ways(Scripted::server, b"GET / HTTP/1.0\r\nSSH-2.0-x\r\n");
    assert_eq!(error, Some(PeerMisbehaved::InvalidIdentification.into()));
    assert!(output.ends_with(b"Invalid SSH identification string.\r\n"));
}

/// A client skips up to 1024 lines before the server's version, and no more.
#[test]
fn the_client_skips_at_most_1024_pre_banner_lines() {
    let lines = |n| [b"banner\r\n".repeat(n), SERVER_LINE.to_vec()].concat();
    let (error, _) = feed_all_ways(Scripted::client, &lines(MAX_PRE_BANNER_LINES));
    assert_eq!(error, None);
    let (error, _) = feed_all_ways(Scripted::client, &lines(MAX_PRE_BANNER_LINES + 1));
    assert_eq!(error, Some(PeerMisbehaved::TooMuchBeforeVersion.into()));
}

/// A version line over 255 bytes is refused.
#[test]
fn a_version_line_over_255_bytes_is_refused() {
    let line = [b"SSH-2.0-".as_slice(), &[b'x'; 250], b"\r\n"].concat();
    let (error, _) = feed_all_ways(Scripted::client, &line);
    assert_eq!(error, Some(PeerMisbehaved::InvalidIdentification.into()));
}

/// The peer's line is kept without its CR LF, and a bare LF ends it too.
#[test]
fn the_peer_line_is_kept_without_its_line_end() {
    for input in [&b"SSH-2.0-peer_1.0 hi\r\n"[..], b"SSH-2.0-peer_1.0 hi\n"] {
        let mut s = Scripted::client();
        assert_eq!(s.feed(input, Some(1)), None);
        assert_eq!(s.transport.peer_identification(), Some(&b"SSH-2.0-peer_1.0 hi"[..]));
    }
}
