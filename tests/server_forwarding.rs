//! End to end: `ssh -L` and `ssh -R` move data both ways through a twine server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use std::io::{BufRead as _, BufReader};
use std::net::{Ipv6Addr, SocketAddr};
use std::process::Child;

use server_support::{
    connect_when_listening, echo_server, free_port, round_trip, stop, with_key, Options, Server,
    Sessions,
};

/// Starts `ssh -N` with one forwarding (`flag` `-L` or `-R`), failing if it cannot be set up.
fn start_forwarding(server: &Server, key: &std::path::Path, flag: &str, spec: &str) -> Child {
    let options = ["-N", "-o", "ExitOnForwardFailure=yes", flag, spec];
    server.ssh().key(key).args(&options).spawn(&[])
}

/// `len` bytes of a pattern that shows reordering and loss.
fn pattern(len: usize) -> Vec<u8> {
    (0..=250_u8).cycle().take(len).collect()
}

/// `ssh -L`: connections to the client's port reach the echo server through ours, several at
/// once, and what they send comes back whole.
#[test]
fn local_forward_moves_data_both_ways() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let echo = echo_server();
    let local = free_port();
    let forward = format!("{local}:127.0.0.1:{echo}");
    let mut ssh = start_forwarding(&server, &key, "-L", &forward);
    let address: SocketAddr = ([127, 0, 0, 1], local).into();
    let first = connect_when_listening(address, 100);
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let stream = if i == 0 {
                first.try_clone().unwrap()
            } else {
                connect_when_listening(address, 10)
            };
            std::thread::spawn(move || round_trip(stream, &pattern(1 << 20)))
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    stop(&mut ssh);
}

/// `ssh -L` to `localhost`: the server tries each of its addresses (`::1` first where the
/// resolver says so) until one connects, as sshd does.
#[test]
fn local_forward_to_localhost_tries_each_address() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let echo = echo_server();
    let local = free_port();
    let forward = format!("{local}:localhost:{echo}");
    let mut ssh = start_forwarding(&server, &key, "-L", &forward);
    let stream = connect_when_listening(([127, 0, 0, 1], local).into(), 100);
    round_trip(stream, &pattern(10_000));
    stop(&mut ssh);
}

/// Reads `ssh`'s standard error until it says which port the server allocated.
fn allocated_port(ssh: &mut Child) -> u16 {
    let stderr = ssh.stderr.take().unwrap();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("Allocated port ") {
            return rest.split(' ').next().unwrap().parse().unwrap();
        }
    }
    panic!("ssh ended without an allocated port");
}

/// `ssh -R 0:...`: the server picks a port and tells the client; connections to it, over IPv4
/// and IPv6 loopback both (sshd's `localhost` listens on every loopback address), reach the
/// echo server on the client's side and back.
#[test]
fn remote_forward_on_an_allocated_port_moves_data_both_ways() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let echo = echo_server();
    let forward = format!("0:127.0.0.1:{echo}");
    let mut ssh = start_forwarding(&server, &key, "-R", &forward);
    let port = allocated_port(&mut ssh);
    let v4 = connect_when_listening(([127, 0, 0, 1], port).into(), 10);
    round_trip(v4, &pattern(1 << 20));
    let v6 = connect_when_listening((Ipv6Addr::LOCALHOST, port).into(), 10);
    round_trip(v6, &pattern(100_000));
    stop(&mut ssh);
}

/// `ssh -R port:...` on a port the client names: the server listens there.
#[test]
fn remote_forward_on_a_named_port_moves_data_both_ways() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let echo = echo_server();
    let port = free_port();
    let forward = format!("127.0.0.1:{port}:127.0.0.1:{echo}");
    let mut ssh = start_forwarding(&server, &key, "-R", &forward);
    let stream = connect_when_listening(([127, 0, 0, 1], port).into(), 100);
    round_trip(stream, &pattern(1 << 20));
    stop(&mut ssh);
}
