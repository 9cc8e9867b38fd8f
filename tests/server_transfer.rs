//! End to end: 64 MiB each way between OpenSSH's `ssh` and a twine server, checked by SHA-256.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod server_support;

use server_support::{stderr, stdout, with_key, Options, Server, Sessions};

/// The size of each transfer.
const SIZE: usize = 64 << 20;

/// `SIZE` bytes that differ from block to block (a counter in a hash chain), so that a lost,
/// repeated or reordered block changes the checksum.
fn data() -> Vec<u8> {
    let mut out = Vec::with_capacity(SIZE);
    let mut block = ring::digest::digest(&ring::digest::SHA256, b"twine").as_ref().to_vec();
    while out.len() < SIZE {
        out.extend_from_slice(&block);
        block = ring::digest::digest(&ring::digest::SHA256, &block).as_ref().to_vec();
    }
    out.truncate(SIZE);
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 64 MiB sent to `sha256sum` on the server arrive whole, and 64 MiB `cat` sends back from a
/// file arrive whole.
#[test]
fn sixty_four_mebibytes_each_way_keep_their_checksum() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let data = data();
    let expected = sha256_hex(&data);

    let upload = server.ssh().key(&key).run(&["sha256sum"], &data);
    assert_eq!(upload.status.code(), Some(0), "{}", stderr(&upload));
    assert_eq!(stdout(&upload), format!("{expected}  -\n"));

    let file = server.dir.path("payload");
    std::fs::write(&file, &data).unwrap();
    let command = format!("cat {}", file.display());
    let download = server.ssh().key(&key).run(&[&command], b"");
    assert_eq!(download.status.code(), Some(0), "{}", stderr(&download));
    assert_eq!(download.stdout.len(), SIZE);
    assert_eq!(sha256_hex(&download.stdout), expected);
}

/// The client rekeys every 4 MiB (`RekeyLimit`) while 64 MiB go up: every exchange in the
/// middle of the data completes, and nothing is lost.
#[test]
fn client_rekeys_during_a_transfer_lose_nothing() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let data = data();
    let upload =
        server.ssh().key(&key).args(&["-v", "-o", "RekeyLimit=4M"]).run(&["sha256sum"], &data);
    assert_eq!(upload.status.code(), Some(0), "{}", stderr(&upload));
    assert_eq!(stdout(&upload), format!("{}  -\n", sha256_hex(&data)));
    let rekeys = stderr(&upload).matches("SSH2_MSG_KEXINIT sent").count();
    assert!(rekeys >= 10, "{rekeys} key exchanges");
}

/// With compression (`ssh -C`: `zlib@openssh.com`, started after authentication), data goes
/// both ways unchanged.
#[test]
fn compressed_transfers_keep_their_checksum() {
    let (server, _keys, key) = with_key(Server::start(Options::new(Sessions::Unix)));
    let mut data = data();
    data.truncate(8 << 20);
    data.extend(std::iter::repeat_n(b'z', 8 << 20));
    let expected = sha256_hex(&data);
    let ssh = server.ssh().key(&key).args(&["-C", "-v"]);
    let output = ssh.run(&["sha256sum; head -c 8388608 /dev/zero | sha256sum"], &data);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let zeros = sha256_hex(&vec![0; 8 << 20]);
    assert_eq!(stdout(&output), format!("{expected}  -\n{zeros}  -\n"));
    assert!(stderr(&output).contains("compression: zlib@openssh.com"), "{}", stderr(&output));
}
