//! The `crypto` module against real OpenSSH: for each key exchange, cipher and MAC that the
//! installed `sshd` offers, a minimal client built only from `twine_conch::crypto` runs a key
//! exchange with `sshd -i` over pipes (no sockets), checks the host key signature over our
//! exchange hash, switches keys, and trades an encrypted SERVICE_REQUEST / SERVICE_ACCEPT.
//! That exercises, against an independent implementation, the public-value encodings, `K`,
//! the exchange hash inputs, key derivation, and both directions of every cipher and MAC.
//!
//! Needs `sshd` and `ssh-keygen` (Debian's `openssh-server`, installed by `.ci/run`). Each
//! `sshd` gets `LoginGraceTime` so that it exits on its own if a step stalls.
// The helpers below are test code too: a failed step should panic with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use twine_conch::crypto::{
    cipher_by_name, derive_key, kex_by_name, mac_by_name, new_opener, new_sealer, OsRandom,
    PacketOpener, PacketSealer, SecureRandom,
};
use twine_conch::keys::{PublicKey, SignatureAlgorithm};
use twine_conch::wire::{Reader, Writer};

const V_C: &[u8] = b"SSH-2.0-twine_crypto_test";

struct HostKey {
    dir: PathBuf,
}

impl HostKey {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("twine-crypto-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(dir.join("host"))
            .status()
            .expect("ssh-keygen must be installed (openssh-client)");
        assert!(status.success());
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.join("host")
    }
}

impl Drop for HostKey {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sshd_path() -> &'static Path {
    // sshd refuses to start without its privilege separation directory, which only the
    // service's start-up creates; make it as Debian's init script would (harmless if present).
    let privsep = Path::new("/run/sshd");
    if !privsep.exists() {
        let _ = std::fs::create_dir_all(privsep);
    }
    Path::new("/usr/sbin/sshd")
}

/// What the installed sshd supports for `query` (`ssh -Q`).
fn openssh_supports(query: &str, name: &str) -> bool {
    let out = Command::new("ssh").args(["-Q", query]).output().expect("ssh must be installed");
    String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == name)
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    log: PathBuf,
}

impl Peer {
    fn start(key: &HostKey, kex: &str, cipher: &str, mac: &str) -> Self {
        let log = key.dir.join(format!("sshd-{kex}-{cipher}-{mac}.log"));
        let mut child = Command::new(sshd_path())
            .arg("-i")
            .args(["-f", "/dev/null", "-h"])
            .arg(key.path())
            .arg("-E")
            .arg(&log)
            .args(["-o", "LogLevel=DEBUG3", "-o", "LoginGraceTime=10", "-o", "UsePAM=no"])
            .args(["-o", &format!("KexAlgorithms={kex}")])
            .args(["-o", &format!("Ciphers={cipher}")])
            .args(["-o", &format!("MACs={mac}")])
            .args(["-o", "HostKeyAlgorithms=ssh-ed25519"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd must be installed (openssh-server)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self { child, stdin, stdout, log }
    }

    /// Stops sshd (so its log is complete) and describes the failure with the log's tail.
    fn fail(&mut self, what: &str) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(25).collect();
        format!("{what}\n--- sshd log (last lines, newest first) ---\n{}", tail.join("\n"))
    }

    fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; n];
        match self.stdout.read_exact(&mut buf) {
            Ok(()) => Ok(buf),
            Err(e) => Err(self.fail(&format!("read: {e}"))),
        }
    }

    /// Sends an unencrypted packet.
    fn send_plain(&mut self, payload: &[u8]) {
        let mut padding = 8 - (5 + payload.len()) % 8;
        if padding < 4 {
            padding += 8;
        }
        let mut packet = Vec::new();
        Writer::new(&mut packet).write_u32(u32::try_from(1 + payload.len() + padding).unwrap());
        packet.push(u8::try_from(padding).unwrap());
        packet.extend_from_slice(payload);
        packet.extend(vec![0u8; padding]);
        self.stdin.write_all(&packet).unwrap();
    }

    fn read_plain(&mut self) -> Result<Vec<u8>, String> {
        let head = self.read_exact(5)?;
        let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        assert!(len < 65_536, "unencrypted packet too long: {len}");
        let rest = self.read_exact(len - 1)?;
        let padding = head[4] as usize;
        Ok(rest[..rest.len() - padding].to_vec())
    }

    fn send_sealed(&mut self, sealer: &mut dyn PacketSealer, seq: u32, payload: &[u8]) {
        let block = sealer.block_size();
        let aligned = if sealer.length_excluded_from_padding() { 1 } else { 5 } + payload.len();
        let mut padding = block - aligned % block;
        if padding < 4 {
            padding += block;
        }
        let mut packet = Vec::new();
        Writer::new(&mut packet).write_u32(u32::try_from(1 + payload.len() + padding).unwrap());
        packet.push(u8::try_from(padding).unwrap());
        packet.extend_from_slice(payload);
        let mut pad = vec![0u8; padding];
        OsRandom::new().fill(&mut pad).unwrap();
        packet.extend_from_slice(&pad);
        let mut tag = vec![0u8; sealer.tag_len()];
        sealer.seal(seq, &mut packet, &mut tag);
        packet.extend_from_slice(&tag);
        self.stdin.write_all(&packet).unwrap();
    }

    fn read_sealed(&mut self, opener: &mut dyn PacketOpener, seq: u32) -> Result<Vec<u8>, String> {
        let mut packet = self.read_exact(opener.length_prefix_len())?;
        let len = match opener.decrypt_length(seq, &mut packet) {
            Ok(len) => len as usize,
            Err(e) => return Err(self.fail(&format!("decrypt_length: {e}"))),
        };
        if len > 65_536 {
            return Err(self.fail(&format!("decrypted length {len}: keys or cipher disagree")));
        }
        let have = packet.len();
        packet.extend(self.read_exact(4 + len - have)?);
        let tag = self.read_exact(opener.tag_len())?;
        if let Err(e) = opener.open(seq, &mut packet, &tag) {
            return Err(self.fail(&format!("open: {e}")));
        }
        let padding = packet[4] as usize;
        Ok(packet[5..packet.len() - padding].to_vec())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kexinit(kex: &str, cipher: &str, mac: &str) -> Vec<u8> {
    let mut payload = vec![20u8];
    let mut cookie = [0u8; 16];
    OsRandom::new().fill(&mut cookie).unwrap();
    payload.extend_from_slice(&cookie);
    let mut w = Writer::new(&mut payload);
    for list in [kex, "ssh-ed25519", cipher, cipher, mac, mac, "none", "none", "", ""] {
        w.write_name_list(list.split(',').filter(|s| !s.is_empty()));
    }
    w.write_bool(false).write_u32(0);
    payload
}

/// One full handshake and an encrypted service request; `Err` explains what went wrong.
fn handshake(key: &HostKey, kex_name: &str, cipher: &str, mac: &str) -> Result<(), String> {
    let mut peer = Peer::start(key, kex_name, cipher, mac);
    peer.stdin.write_all(V_C).unwrap();
    peer.stdin.write_all(b"\r\n").unwrap();
    let mut v_s = String::new();
    while !v_s.starts_with("SSH-") {
        v_s.clear();
        if let Err(e) = peer.stdout.read_line(&mut v_s) {
            return Err(peer.fail(&e.to_string()));
        }
        if v_s.is_empty() {
            return Err(peer.fail("sshd closed before its version line"));
        }
    }
    let v_s = v_s.trim_end().as_bytes().to_vec();

    let i_c = kexinit(kex_name, cipher, mac);
    peer.send_plain(&i_c);
    let i_s = peer.read_plain()?;
    assert_eq!(i_s[0], 20, "expected KEXINIT");

    let kex = kex_by_name(kex_name).unwrap();
    let mut rng = OsRandom::new();
    let client = kex.start_client(&mut rng).unwrap();
    let q_c = client.public().to_vec();
    let mut init = vec![30u8];
    Writer::new(&mut init).write_string(&q_c);
    peer.send_plain(&init);

    let reply = peer.read_plain()?;
    if reply[0] != 31 {
        return Err(peer.fail(&format!("expected message 31, got {}", reply[0])));
    }
    let mut r = Reader::new(&reply[1..]);
    let k_s = r.read_string().unwrap().to_vec();
    let q_s = r.read_string().unwrap().to_vec();
    let signature = r.read_string().unwrap().to_vec();
    let k = match client.finish(&q_s) {
        Ok(k) => k,
        Err(e) => return Err(peer.fail(&format!("finish: {e}"))),
    };

    let mut exchange = Vec::new();
    let mut w = Writer::new(&mut exchange);
    w.write_string(V_C).write_string(&v_s).write_string(&i_c).write_string(&i_s);
    w.write_string(&k_s).write_string(&q_c).write_string(&q_s).write_raw(k.encoded());
    let h = kex.hash().digest(&[&exchange]);
    let h = h.as_ref();
    let host_key = PublicKey::from_blob(&k_s).unwrap();
    if let Err(e) = host_key.verify(SignatureAlgorithm::Ed25519, h, &signature) {
        return Err(peer.fail(&format!("host key signature over our exchange hash: {e}")));
    }

    peer.send_plain(&[21]);
    let newkeys = peer.read_plain()?;
    assert_eq!(newkeys, [21]);

    let spec = cipher_by_name(cipher).unwrap();
    let mac_len = if spec.is_aead() { 0 } else { mac_by_name(mac).unwrap().key_len() };
    let mac_opt = (!spec.is_aead()).then_some(mac);
    let d = |letter, len| derive_key(kex.hash(), &k, h, letter, h, len);
    let mut sealer = new_sealer(
        cipher,
        mac_opt,
        &d(b'C', spec.key_len()),
        &d(b'A', spec.iv_len()),
        &d(b'E', mac_len),
    )
    .unwrap();
    let mut opener = new_opener(
        cipher,
        mac_opt,
        &d(b'D', spec.key_len()),
        &d(b'B', spec.iv_len()),
        &d(b'F', mac_len),
    )
    .unwrap();

    let mut request = vec![5u8];
    Writer::new(&mut request).write_string(b"ssh-userauth");
    peer.send_sealed(sealer.as_mut(), 3, &request);
    let accept = peer.read_sealed(opener.as_mut(), 3)?;
    let mut want = vec![6u8];
    Writer::new(&mut want).write_string(b"ssh-userauth");
    if accept != want {
        return Err(peer.fail(&format!("expected SERVICE_ACCEPT, got {accept:?}")));
    }
    Ok(())
}

/// Every key exchange we share with the installed OpenSSH completes, with a valid host key
/// signature over our exchange hash and working keys in both directions.
#[test]
fn every_shared_key_exchange_interoperates_with_openssh() {
    let key = HostKey::new("kex");
    let mut tried = Vec::new();
    for name in twine_conch::crypto::kex::KEX_NAMES {
        if !openssh_supports("kex", name) {
            continue;
        }
        if let Err(e) = handshake(&key, name, "chacha20-poly1305@openssh.com", "hmac-sha2-256") {
            panic!("{name}: {e}");
        }
        tried.push(*name);
    }
    eprintln!("shared with OpenSSH: {tried:?}");
    assert!(tried.contains(&"curve25519-sha256"), "{tried:?}");
    assert!(tried.len() >= 8, "too few shared key exchanges: {tried:?}");
}

/// Every cipher, and every MAC with each CTR cipher, carries packets both ways with OpenSSH.
#[test]
fn every_cipher_and_mac_interoperates_with_openssh() {
    let key = HostKey::new("cipher");
    for cipher in twine_conch::crypto::cipher::CIPHER_NAMES {
        if cipher_by_name(cipher).unwrap().is_aead() {
            handshake(&key, "curve25519-sha256", cipher, "hmac-sha2-256")
                .unwrap_or_else(|e| panic!("{cipher}: {e}"));
            continue;
        }
        for mac in twine_conch::crypto::mac::MAC_NAMES {
            handshake(&key, "curve25519-sha256", cipher, mac)
                .unwrap_or_else(|e| panic!("{cipher} {mac}: {e}"));
        }
    }
}
