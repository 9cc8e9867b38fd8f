//! Port forwarding through a private OpenSSH `sshd`: local (`-L`) and remote (`-R`, port 0)
//! forwards and a `direct-tcpip` channel used as a transport, each moving data both ways to an
//! echo server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod client_support;

use std::net::SocketAddr;
use std::time::Duration;

use client_support::{pattern, Echo, Exchange, Fixture};
use twine_conch::client::{self, ForwardTarget};
use twine_core::protocol::{ClientFactory, Factory, ProtocolFactory};
use twine_core::{Deferred, Protocol, Reactor};

const PAYLOAD: usize = 3 * 1024 * 1024 + 17;

/// Starts an echo server on the reactor; its address.
fn echo_server(reactor: &Reactor) -> SocketAddr {
    let port = reactor
        .listen_tcp("127.0.0.1:0".parse().unwrap(), ProtocolFactory::new(Echo::default))
        .unwrap();
    port.tcp_address().unwrap()
}

/// Connects to `address`, sends `payload`, and returns what comes back.
fn exchange(reactor: &Reactor, address: SocketAddr, payload: Vec<u8>) -> Deferred<Vec<u8>> {
    let done = reactor.deferred::<Vec<u8>>();
    let factory = OneShot(Some(Box::new(Exchange::new(payload, done.clone()))), done.clone());
    reactor.connect_tcp(address, Duration::from_secs(10), factory);
    done
}

struct OneShot(Option<Box<dyn Protocol>>, Deferred<Vec<u8>>);

impl Factory for OneShot {
    fn build_protocol(
        &mut self,
        _addr: &twine_core::protocol::Address,
    ) -> Option<Box<dyn Protocol>> {
        self.0.take()
    }
}

impl ClientFactory for OneShot {
    fn client_connection_failed(&mut self, reason: twine_core::Error) {
        self.1.errback(reason);
    }
}

/// A local forward carries a few MiB to the echo server and back, intact, through sshd.
#[test]
fn local_forward_moves_data_both_ways() {
    let Some(fixture) = Fixture::start() else { return };
    let echo = echo_server(&fixture.reactor);
    let payload = pattern(PAYLOAD);
    let sent = payload.clone();
    let received = fixture.with_connection(move |handle, connection| async move {
        let forward = connection.forward_local(
            "127.0.0.1:0".parse().unwrap(),
            ForwardTarget::tcp("127.0.0.1", echo.port()),
        )?;
        let local = forward.tcp_address().unwrap();
        let first = exchange(&handle, local, sent.clone());
        let second = exchange(&handle, local, b"second connection".to_vec());
        let received = (first.await, second.await);
        forward.stop();
        Ok(received)
    });
    assert!(received.0.as_ref().unwrap() == &payload, "the big exchange came back intact");
    assert_eq!(received.1.unwrap(), b"second connection");
}

/// A remote forward on port 0 reports the port sshd bound; connections to it reach the echo
/// server through the client, both ways.
#[test]
fn remote_forward_moves_data_both_ways() {
    let Some(fixture) = Fixture::start() else { return };
    let echo = echo_server(&fixture.reactor);
    let payload = pattern(PAYLOAD);
    let sent = payload.clone();
    let (port, received) = fixture.with_connection(move |handle, connection| async move {
        let forward = connection
            .forward_remote("127.0.0.1", 0, ForwardTarget::tcp("127.0.0.1", echo.port()))
            .await?;
        let port = forward.bound_port();
        let remote: SocketAddr = ([127, 0, 0, 1], port).into();
        let received = exchange(&handle, remote, sent).await;
        forward.cancel().await?;
        Ok((port, received))
    });
    assert_ne!(port, 0, "the bound port is reported");
    assert!(received.unwrap() == payload, "the exchange came back intact");
}

/// A `direct-tcpip` channel is a transport: the same exchange protocol runs over it as over
/// TCP.
#[test]
fn direct_tcpip_channel_is_a_transport() {
    let Some(fixture) = Fixture::start() else { return };
    let echo = echo_server(&fixture.reactor);
    let received = fixture.with_connection(move |handle, connection| async move {
        let done = handle.deferred::<Vec<u8>>();
        let protocol = Exchange::new(b"through a channel".to_vec(), done.clone());
        connection.direct_tcpip("127.0.0.1", echo.port(), protocol).await?;
        Ok(done.await)
    });
    assert_eq!(received.unwrap(), b"through a channel");
}

/// A jump host (`ssh -J`): a second SSH connection runs over a `direct-tcpip` channel of the
/// first, through the same sshd, and runs a command.
#[test]
fn jump_host_connection_over_a_channel() {
    let Some(fixture) = Fixture::start() else { return };
    let inner_config = fixture.config();
    let port = fixture.sshd.port;
    let output = fixture.with_connection(move |handle, jump| async move {
        let (protocol, inner) =
            client::ClientProtocol::new(&handle, "127.0.0.1", port, inner_config)?;
        jump.direct_tcpip("127.0.0.1", port, protocol).await?;
        let inner = inner.await?;
        let output = inner.run("echo jumped", 1024).await?;
        inner.disconnect();
        jump.disconnect();
        Ok(output)
    });
    assert_eq!(output.stdout, b"jumped\n");
}

/// Unix sockets both ways: a `direct-streamlocal` channel reaches a Unix echo server from the
/// server side, and a remote Unix-socket forward brings sshd's socket's connections back to it.
#[test]
fn unix_socket_forwards_move_data() {
    let Some(fixture) = Fixture::start() else { return };
    let echo_path = fixture.sshd.dir.path("echo.sock");
    fixture.reactor.listen_unix(&echo_path, ProtocolFactory::new(Echo::default)).unwrap();
    client_support::run(std::process::Command::new("chmod").args(["0777"]).arg(&echo_path));
    let remote_path = fixture.sshd.home_file("remote.sock");
    let (direct, forwarded) = fixture.with_connection(move |handle, connection| async move {
        let done = handle.deferred::<Vec<u8>>();
        let protocol = Exchange::new(b"over a unix socket".to_vec(), done.clone());
        connection.direct_streamlocal(&echo_path, protocol).await?;
        let direct = done.await;
        let forward =
            connection.forward_remote_unix(&remote_path, ForwardTarget::Unix(echo_path)).await?;
        let done = handle.deferred::<Vec<u8>>();
        let factory = OneShot(
            Some(Box::new(Exchange::new(b"and back".to_vec(), done.clone()))),
            done.clone(),
        );
        handle.connect_unix(&remote_path, Duration::from_secs(10), factory);
        let forwarded = done.await;
        forward.cancel().await?;
        Ok((direct, forwarded))
    });
    assert_eq!(direct.unwrap(), b"over a unix socket");
    assert_eq!(forwarded.unwrap(), b"and back");
}
