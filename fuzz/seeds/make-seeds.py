#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

The transport seeds are recorded from real OpenSSH: the first flight (identification line and
KEXINIT) of `ssh` against a listener on 127.0.0.1 (port 0), and of `sshd -i` (inetd mode, a
throw-away host key and config, never the system's daemon). Key files come from `ssh-keygen`.
The rest are small hand-made messages in the formats that fuzz/src/lib.rs documents.
Every process started here is waited for or stopped by its PID, and every wait is bounded.
"""
import os, socket, struct, subprocess, sys, tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack(">I", len(b)) + b


def u32(n):
    return struct.pack(">I", n)


def packets(flight):
    """The identification line and the plaintext packet payloads of a first flight."""
    lf = flight.index(b"\n") + 1
    line, rest, out = flight[:lf], flight[lf:], []
    while len(rest) >= 5:
        n = struct.unpack(">I", rest[:4])[0]
        if n > len(rest) - 4:
            break
        pad = rest[4]
        out.append(rest[5:4 + n - pad])
        rest = rest[4 + n:]
    return line, out


def client_flight():
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    lst.settimeout(10)
    port = lst.getsockname()[1]
    p = subprocess.Popen(
        ["ssh", "-p", str(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-F", "/dev/null", "fuzz@127.0.0.1", "true"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn, _ = lst.accept()
        conn.settimeout(3)
        conn.sendall(b"SSH-2.0-OpenSSH_9.2p1\r\n")
        data = b""
        try:
            while len(data) < 8192:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
                if data.count(b"\n") and len(packets(data)[1]) >= 1:
                    break
        except socket.timeout:
            pass
        conn.close()
    finally:
        p.kill()
        p.wait(timeout=10)
        lst.close()
    return data


def server_flight(tmp):
    key = os.path.join(tmp, "host")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    cfg = os.path.join(tmp, "sshd_config")
    with open(cfg, "w") as f:
        f.write(f"HostKey {key}\nUsePAM no\nPidFile none\n")
    p = subprocess.Popen(["/usr/sbin/sshd", "-i", "-f", cfg, "-o", "LogLevel=QUIET"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        p.stdin.write(b"SSH-2.0-OpenSSH_9.2p1\r\n")
        p.stdin.flush()
        data = b""
        os.set_blocking(p.stdout.fileno(), True)
        while len(packets(data)[1] if b"\n" in data else []) < 1 and len(data) < 8192:
            chunk = p.stdout.read1(4096)
            if not chunk:
                break
            data += chunk
    finally:
        p.kill()
        p.wait(timeout=10)
    return data, key


def main():
    tmp = tempfile.mkdtemp(prefix="twine-seeds-")
    cflight = client_flight()
    sflight, hostkey = server_flight(tmp)
    cline, cpk = packets(cflight)
    sline, spk = packets(sflight)
    assert cpk and cpk[0][0] == 20, "the client's KEXINIT"
    assert spk and spk[0][0] == 20, "the server's KEXINIT"
    put("identification", "openssh-client", b"\0\0" + cflight)
    put("identification", "openssh-client-bytewise", b"\1\0" + cflight)
    put("identification", "openssh-server", b"\0\1" + sflight)
    put("packet_decode", "openssh-client-kexinit", b"\0" + cflight[len(cline):])
    put("kexinit", "openssh-client", cpk[0][1:])
    put("kexinit", "openssh-server", spk[0][1:])

    blob = subprocess.run(["ssh-keygen", "-y", "-f", hostkey], capture_output=True,
                          check=True).stdout.split()[1]
    import base64
    blob = base64.b64decode(blob)
    sig = s("ssh-ed25519") + s(bytes(64))
    for i, n in enumerate([32, 32, 32, 32, 32, 65, 97, 133, 1024, 1024, 512, 256]):
        put("kex_init", f"method-{i}", bytes([i]) + s(bytes([9]) * n))
        put("kex_reply", f"method-{i}", bytes([i]) + s(blob) + s(bytes([9]) * n) + s(sig))

    sep = b"\xff\xfe"
    ua = lambda m, rest=b"": s("alice") + s("ssh-connection") + s(m) + rest
    put("userauth", "none-password-publickey", sep.join([
        ua("none"), ua("password", b"\0" + s("secret")),
        ua("publickey", b"\0" + s("ssh-ed25519") + s(blob)),
        ua("keyboard-interactive", s("") + s("")), u32(1) + s("answer")]))
    put("userauth", "password-change", ua("password", b"\1" + s("old") + s("new")))
    ch = lambda n, rest: bytes([n]) + u32(0) + rest
    put("connection", "pty-shell-data", sep.join([
        ch(98, s("pty-req") + b"\1" + s("xterm") + u32(80) + u32(24) + u32(0) + u32(0) + s(b"\0")),
        ch(98, s("env") + b"\0" + s("LANG") + s("C")),
        ch(98, s("exec") + b"\1" + s("id")),
        ch(94, s("hello")), ch(95, u32(1) + s("err")), ch(93, u32(1000)),
        ch(96, b""), ch(97, b"")]))
    put("connection", "global-and-forward", sep.join([
        bytes([80]) + s("tcpip-forward") + b"\1" + s("127.0.0.1") + u32(0),
        bytes([80]) + s("keepalive@openssh.com") + b"\1",
        bytes([90]) + s("direct-tcpip") + u32(5) + u32(1 << 20) + u32(32768)
        + s("127.0.0.1") + u32(22) + s("127.0.0.1") + u32(40000)]))

    rec = lambda ctl, body: bytes([ctl, len(body)]) + body
    sr = bytes([5]) + s("ssh-userauth")
    login = bytes([50]) + ua("password", b"\0" + s("secret"))[0:] 
    login = bytes([50]) + s("alice") + s("ssh-connection") + s("password") + b"\0" + s("secret")
    op = bytes([90]) + s("session") + u32(0) + u32(1 << 20) + u32(32768)
    put("server_session", "login-open-exec", b"".join([
        rec(0, sr), rec(0, login), rec(0, op), rec(8, ch(98, s("exec") + b"\1" + s("id"))),
        rec(0, ch(94, s("data"))), rec(0x54, b""), rec(0xf5, b""), rec(0, ch(97, b""))]))
    put("server_session", "rejected-login", b"".join([rec(0, sr), rec(0x10, login), rec(0x47, b"")]))
    put("client_session", "accept-success-open", b"".join([
        rec(0, bytes([6]) + s("ssh-userauth")), rec(0, bytes([52])), rec(0x05, b""),
        rec(0, bytes([91]) + u32(0) + u32(0) + u32(1 << 20) + u32(32768)),
        rec(0, ch(94, s("out"))), rec(0, ch(98, s("exit-status") + b"\0" + u32(0))),
        rec(0, ch(97, b""))]))
    put("client_session", "banner-failure", b"".join([
        rec(0, bytes([6]) + s("ssh-userauth")), rec(8, bytes([53]) + s("hello") + s("")),
        rec(0, bytes([51]) + s("publickey,password") + b"\0")]))

    for kind, extra in [("ed25519", []), ("ecdsa", ["-b", "256"]), ("rsa", ["-b", "1024"])]:
        path = os.path.join(tmp, kind)
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-f", path, "-C", "seed"],
                       check=True)
        put("private_key", kind, open(path, "rb").read())
        put("public_key", kind + ".pub", open(path + ".pub", "rb").read())
        put("public_key", kind + ".blob",
            base64.b64decode(open(path + ".pub", "rb").read().split()[1]))
    enc = os.path.join(tmp, "enc")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "passphrase", "-f", enc,
                    "-a", "1"], check=True)
    put("private_key", "ed25519-encrypted", open(enc, "rb").read())
    pem = os.path.join(tmp, "pem")
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-m", "PEM", "-N", "",
                    "-f", pem], check=True)
    put("private_key", "ecdsa-pem", open(pem, "rb").read())

    pub = open(os.path.join(tmp, "ed25519.pub")).read().strip()
    put("authorized_keys", "options", (
        f"{pub}\n"
        f'restrict,pty,command="echo hi",from="10.0.0.0/8,!10.1.*",expiry-time="20991231" {pub}\n'
        f'no-port-forwarding,permitopen="127.0.0.1:80",environment="A=b" {pub}\n'
        f"# comment\n\ncert-authority,principals=\"alice\" {pub}\n").encode())
    kh = os.path.join(tmp, "known_hosts")
    with open(kh, "w") as f:
        f.write(f"host.example,192.0.2.1 {pub}\n[host.example]:2222 {pub}\n"
                f"@cert-authority *.example {pub}\n@revoked * {pub}\n!bad*,*.example {pub}\n")
    put("known_hosts", "plain", open(kh, "rb").read())
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", kh], check=True, capture_output=True)
    put("known_hosts", "hashed", open(kh, "rb").read())
    put("sshd_config", "basic", b"Port 2222\nListenAddress 127.0.0.1\nPermitRootLogin no\n"
        b"PasswordAuthentication yes\nAuthorizedKeysFile .ssh/authorized_keys %h/.ssh/k2\n"
        b"Ciphers +aes128-cbc\nKexAlgorithms -diffie-hellman*\nMaxStartups 10:30:100\n"
        b"Match User alice Address 10.0.0.0/8\n  X11Forwarding no\n  PermitOpen any\n")
    put("ssh_config", "basic", b"Host *.example !bad.example\n  User bob\n  Port 2222\n"
        b"  IdentityFile ~/.ssh/id_%r@%h\n  LocalForward 8080 localhost:80\n"
        b"Match host host.example exec \"true\"\n  ProxyJump jump\nHost *\n  ServerAliveInterval 5\n")
    print("seeds written to", os.path.normpath(ROOT))


if __name__ == "__main__":
    sys.exit(main())
