use super::*;
use crate::config::MemoryFilesystem;

const USER_CONFIG: &str = "/home/me/.ssh/config";
const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";

fn resolve_with(
    fs: &MemoryFilesystem,
    options: &[&str],
    host: &str,
) -> Result<SshConfig, ConfigError> {
    let ctx = ClientContext::new(fs, "me", 1000, "/home/me", "laptop.example.org");
    let mut loader = SshLoader::new(ctx);
    for o in options {
        loader = loader.option(*o);
    }
    loader.resolve(host)
}

fn user_config(text: &str, host: &str) -> Result<SshConfig, ConfigError> {
    let mut fs = MemoryFilesystem::new();
    fs.insert(USER_CONFIG, text);
    resolve_with(&fs, &[], host)
}

fn dumped(config: &SshConfig, keyword: &str) -> String {
    let prefix = format!("{keyword} ");
    config
        .dump()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {keyword} line"))
}

/// Each keyword's valid values print as `ssh -G` prints them.
#[test]
fn every_keyword_accepts_its_values_and_prints_them_as_openssh() {
    let cases: &[(&str, &str, &str)] = &[
        ("HostName %h.example.com", "hostname", "web.example.com"),
        ("HostName WEB.Example.COM", "hostname", "web.example.com"),
        ("User deploy", "user", "deploy"),
        ("Port 2222", "port", "2222"),
        ("IdentitiesOnly yes", "identitiesonly", "yes"),
        ("IdentityFile ~/.ssh/id_%h", "identityfile", "~/.ssh/id_%h"),
        ("CertificateFile ~/.ssh/c.pub", "certificatefile", "~/.ssh/c.pub"),
        ("IdentityAgent ~/agent.%r", "identityagent", "/home/me/agent.me"),
        ("IdentityAgent SSH_AUTH_SOCK", "identityagent", "SSH_AUTH_SOCK"),
        ("ProxyCommand nc %h %p", "proxycommand", "nc %h %p"),
        ("ProxyJump alice@jump:2200", "proxyjump", "alice@jump:2200"),
        ("ProxyJump a,b@10.0.0.1", "proxyjump", "a,b@[10.0.0.1]"),
        ("LocalForward 8080 localhost:80", "localforward", "8080 [localhost]:80"),
        ("LocalForward [::1]:8080 /run/app.sock", "localforward", "[::1]:8080 /run/app.sock"),
        ("RemoteForward 9000 localhost:22", "remoteforward", "9000 [localhost]:22"),
        ("RemoteForward 9000", "remoteforward", "9000 [socks]:0"),
        ("DynamicForward 127.0.0.1:1080", "dynamicforward", "[127.0.0.1]:1080"),
        ("StrictHostKeyChecking yes", "stricthostkeychecking", "true"),
        ("StrictHostKeyChecking accept-new", "stricthostkeychecking", "accept-new"),
        ("StrictHostKeyChecking off", "stricthostkeychecking", "false"),
        ("UserKnownHostsFile ~/.ssh/kh_%h /x/%u", "userknownhostsfile", "/home/me/.ssh/kh_web /x/me"),
        ("GlobalKnownHostsFile /etc/kh", "globalknownhostsfile", "/etc/kh"),
        ("HashKnownHosts yes", "hashknownhosts", "yes"),
        ("HostKeyAlias Alias", "hostkeyalias", "alias"),
        ("BatchMode yes", "batchmode", "yes"),
        ("ConnectTimeout 10s", "connecttimeout", "10"),
        ("ConnectionAttempts 3", "connectionattempts", "3"),
        ("ServerAliveInterval 1m", "serveraliveinterval", "60"),
        ("ServerAliveCountMax 5", "serveralivecountmax", "5"),
        ("SendEnv LANG LC_*", "sendenv", "LANG"),
        ("SetEnv A=1 A=2", "setenv", "A=1"),
        ("RequestTTY force", "requesttty", "force"),
        ("RequestTTY yes", "requesttty", "true"),
        ("RemoteCommand echo %r@%h", "remotecommand", "echo me@web"),
        ("LogLevel debug2", "loglevel", "DEBUG2"),
        ("Ciphers aes256-ctr", "ciphers", "aes256-ctr"),
        ("MACs hmac-sha2-512", "macs", "hmac-sha2-512"),
        ("KexAlgorithms -*nistp*,diffie*", "kexalgorithms", "mlkem768x25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org"),
        ("HostKeyAlgorithms ssh-ed25519", "hostkeyalgorithms", "ssh-ed25519"),
        ("PubkeyAcceptedAlgorithms +ssh-rsa", "pubkeyacceptedalgorithms", "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa"),
        ("PubkeyAcceptedAlgorithms ssh-ed25519*", "pubkeyacceptedalgorithms", "ssh-ed25519-cert-v01@openssh.com,ssh-ed25519"),
        ("RekeyLimit 1G 1h", "rekeylimit", "1073741824 3600"),
        ("Compression yes", "compression", "yes"),
        ("PasswordAuthentication no", "passwordauthentication", "no"),
        ("PubkeyAuthentication host-bound", "pubkeyauthentication", "host-bound"),
        ("KbdInteractiveAuthentication no", "kbdinteractiveauthentication", "no"),
        ("ChallengeResponseAuthentication no", "kbdinteractiveauthentication", "no"),
        ("PreferredAuthentications publickey,password", "preferredauthentications", "publickey,password"),
        ("NumberOfPasswordPrompts 1", "numberofpasswordprompts", "1"),
        ("ExitOnForwardFailure yes", "exitonforwardfailure", "yes"),
        ("ForwardAgent yes", "forwardagent", "yes"),
        ("ForwardAgent ~/agent.sock", "forwardagent", "/home/me/agent.sock"),
        ("EscapeChar ^A", "escapechar", "\\^A"),
        ("EscapeChar none", "escapechar", "none"),
        ("EscapeChar %", "escapechar", "%"),
        ("ControlMaster auto", "controlmaster", "auto"),
        ("ControlPath ~/.ssh/cm-%r@%h:%p", "controlpath", "/home/me/.ssh/cm-me@web:22"),
        ("ControlPersist 10m", "controlpersist", "600"),
        ("ControlPersist yes", "controlpersist", "yes"),
        ("AddressFamily inet6", "addressfamily", "inet6"),
        ("BindAddress 127.0.0.2", "bindaddress", "127.0.0.2"),
        ("AddKeysToAgent confirm 5m", "addkeystoagent", "confirm 300"),
        ("IPQoS lowdelay", "ipqos", "lowdelay lowdelay"),
        ("TunnelDevice 1:any", "tunneldevice", "1:any"),
        ("CanonicalizePermittedCNAMEs *.a.example:*.b.example", "canonicalizePermittedcnames", "*.a.example:*.b.example"),
        ("UpdateHostKeys ask", "updatehostkeys", "ask"),
        ("StreamLocalBindMask 0077", "streamlocalbindmask", "077"),
        ("SyslogFacility local1", "syslogfacility", "LOCAL1"),
    ];
    for (line, keyword, want) in cases {
        let config = user_config(&format!("Host web\n  {line}\n"), "web")
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(dumped(&config, keyword), *want, "{line}");
    }
}

/// Bad values fail with OpenSSH's messages; keywords are reported in lower case.
#[test]
fn bad_values_fail_with_openssh_messages() {
    let p = USER_CONFIG;
    let t = format!("{p}: terminating, 1 bad configuration options");
    let cases: &[(&str, String)] = &[
        ("Bogus 1", format!("{p}: line 1: Bad configuration option: bogus\n{t}")),
        ("Port 0", format!("{p} line 1: Bad port '0'.\n{t}")),
        ("Port", format!("{p} line 1: no argument after keyword \"port\"\n{t}")),
        ("ConnectTimeout soon", format!("{p} line 1: invalid time value.\n{t}")),
        ("ConnectionAttempts x", format!("{p} line 1: integer value invalid.\n{t}")),
        ("StrictHostKeyChecking maybe", format!("{p} line 1: unsupported option \"maybe\".\n{t}")),
        ("Ciphers rot13", format!("{p} line 1: Bad SSH2 cipher spec 'rot13'.\n{t}")),
        (
            "MACs umac-64@openssh.com",
            format!("{p} line 1: Bad SSH2 MAC spec 'umac-64@openssh.com'.\n{t}"),
        ),
        ("HostKeyAlgorithms ssh-dss", format!("{p} line 1: Bad key types 'ssh-dss'.\n{t}")),
        ("LocalForward 8080", format!("{p} line 1: Missing target argument.\n{t}")),
        ("LocalForward x localhost:80", format!("{p} line 1: Bad forwarding specification.\n{t}")),
        ("DynamicForward a:b:c", format!("{p} line 1: Bad forwarding specification.\n{t}")),
        ("EscapeChar ab", format!("{p} line 1: Bad escape character.\n{t}")),
        ("SendEnv A=B", format!("{p} line 1: Invalid environment name.\n{t}")),
        ("SetEnv A", format!("{p} line 1: Invalid SetEnv.\n{t}")),
        ("RekeyLimit 1X", format!("{p} line 1: Bad number '1X': Invalid argument\n{t}")),
        ("ProxyJump @host", format!("{p} line 1: Invalid ProxyJump \"@host\"\n{t}")),
        (
            "IdentityAgent ${HOME",
            format!("{p} line 1: Invalid environment expansion ${{HOME.\n{t}"),
        ),
        ("LogLevel LOUD", format!("{p} line 1: unsupported log level 'LOUD'\n{t}")),
        (
            "UserKnownHostsFile none /x",
            format!(
                "{p} line 1: keyword userknownhostsfile \"none\" argument must appear alone.\n{t}"
            ),
        ),
        ("Port 22 23", format!("{p} line 1: keyword port extra arguments at end of line\n{t}")),
        (
            "Match Color red",
            format!("Unsupported Match attribute Color\n{p} line 1: Bad Match condition\n{t}"),
        ),
        (
            "Match host",
            format!("Missing Match criteria for host\n{p} line 1: Bad Match condition\n{t}"),
        ),
        ("PermitRemoteOpen host", format!("{p} line 1: bad port number in permitremoteopen")),
        ("Include ~/other", String::new()),
    ];
    for (text, want) in cases {
        let got = user_config(text, "web");
        if want.is_empty() {
            assert!(got.is_ok(), "{text}: {got:?}");
            continue;
        }
        assert_eq!(&got.unwrap_err().to_string(), want, "{text}");
    }
}

/// Deprecated and unsupported keywords load with OpenSSH's messages as warnings.
#[test]
fn deprecated_and_unsupported_keywords_load_with_warnings() {
    let c = user_config(
        "Protocol 2\nUseRoaming no\nGSSAPIAuthentication yes\nCompressionLevel 6\n",
        "web",
    )
    .unwrap();
    assert_eq!(
        c.warnings,
        [
            format!("{USER_CONFIG} line 2: Deprecated option \"useroaming\""),
            format!("{USER_CONFIG} line 3: Unsupported option \"gssapiauthentication\""),
            format!("{USER_CONFIG} line 4: Unsupported option \"compressionlevel\""),
        ]
    );
    assert_eq!(keyword_support("ControlMaster"), Some(Support::NotImplemented));
    assert_eq!(keyword_support("IdentityFile"), Some(Support::Implemented));
    assert_eq!(keyword_support("nope"), None);
}

/// `IgnoreUnknown` lets later unknown keywords pass.
#[test]
fn ignore_unknown_silences_later_unknown_keywords() {
    let c = user_config("IgnoreUnknown UseKeychain,AddKeys*\nUseKeychain yes\n", "web");
    assert!(c.is_ok());
    assert!(user_config("UseKeychain yes\nIgnoreUnknown UseKeychain\n", "web").is_err());
}

/// `Host` patterns honour wildcards and negation; the first value wins across blocks, and
/// the user's file comes before the system's.
#[test]
fn host_blocks_and_first_value_wins() {
    let mut fs = MemoryFilesystem::new();
    fs.insert(
        USER_CONFIG,
        "Host *.example.com !bad.example.com\n  User alice\nHost *\n  User fallback\n  Port 2200\n",
    )
    .insert(SYSTEM_CONFIG, "Host *\n  Port 22\n  Compression yes\n");
    let c = resolve_with(&fs, &[], "web.example.com").unwrap();
    assert_eq!((c.user.as_str(), c.port, c.compression), ("alice", 2200, true));
    let c = resolve_with(&fs, &[], "bad.example.com").unwrap();
    assert_eq!(c.user, "fallback");
    let c = resolve_with(&fs, &[], "WEB.EXAMPLE.COM").unwrap();
    assert_eq!(c.user, "fallback", "Host patterns are case-sensitive, as in OpenSSH");
}

/// `-o` options win over every file; `Host` and `Match` are refused on the command line.
#[test]
fn command_line_options_come_first() {
    let mut fs = MemoryFilesystem::new();
    fs.insert(USER_CONFIG, "User alice\nPort 2200\n");
    let c = resolve_with(&fs, &["User=bob", "port 2022"], "web").unwrap();
    assert_eq!((c.user.as_str(), c.port), ("bob", 2022));
    let err = resolve_with(&fs, &["Foo=bar"], "web").unwrap_err();
    assert_eq!(err.to_string(), "command-line: line 0: Bad configuration option: foo");
    let err = resolve_with(&fs, &["Host x"], "web").unwrap_err();
    assert_eq!(err.to_string(), "Host directive not supported as a command-line option");
}

/// `-F none` reads nothing; `-F path` reads only that file, which must exist.
#[test]
fn config_file_choice_follows_dash_f() {
    let mut fs = MemoryFilesystem::new();
    fs.insert(USER_CONFIG, "User alice\n").insert("/tmp/alt", "User carol\n");
    let ctx = || ClientContext::new(&fs, "me", 1000, "/home/me", "laptop");
    assert_eq!(SshLoader::new(ctx()).file(ConfigFile::None).resolve("h").unwrap().user, "me");
    assert_eq!(
        SshLoader::new(ctx()).file(ConfigFile::Path("/tmp/alt".into())).resolve("h").unwrap().user,
        "carol"
    );
    let err =
        SshLoader::new(ctx()).file(ConfigFile::Path("/tmp/nope".into())).resolve("h").unwrap_err();
    assert_eq!(err.to_string(), "Can't open user config file /tmp/nope: No such file or directory");
}

/// `Match` criteria: host (after HostName), originalhost, user, localuser, negation, all.
#[test]
fn match_criteria_follow_openssh() {
    let text = "Host short\n  HostName long.example.com\n\
                Match host long.example.com originalhost short\n  User matched\n\
                Match !localuser me\n  Port 1\n\
                Match user matched\n  Port 2\n\
                Match all\n  Compression yes\n";
    let c = user_config(text, "short").unwrap();
    assert_eq!(
        (c.user.as_str(), c.port, c.compression, c.hostname.as_str()),
        ("matched", 2, true, "long.example.com")
    );
    let c = user_config(text, "other").unwrap();
    assert_eq!((c.user.as_str(), c.port), ("me", 22));
}

/// `Match exec` runs through the callback with tokens expanded, only when earlier criteria
/// held; without a callback it is an error.
#[test]
fn match_exec_uses_the_callback() {
    let mut fs = MemoryFilesystem::new();
    fs.insert(USER_CONFIG, "Match host web exec \"test %h = %n -a %p = 22 -a %u = me\"\n  User ran\nMatch host nope exec false\n  User never\n");
    let seen = std::cell::RefCell::new(Vec::new());
    let exec = |cmd: &str| {
        seen.borrow_mut().push(cmd.to_owned());
        Ok(true)
    };
    let ctx = ClientContext::new(&fs, "me", 1000, "/home/me", "laptop").exec(&exec);
    let c = SshLoader::new(ctx).resolve("web").unwrap();
    assert_eq!(c.user, "ran");
    assert_eq!(*seen.borrow(), ["test web = web -a 22 = 22 -a me = me"]);
    let ctx = ClientContext::new(&fs, "me", 1000, "/home/me", "laptop");
    let err = SshLoader::new(ctx).resolve("web").unwrap_err();
    assert!(
        err.to_string().contains("match exec 'test web = web -a 22 = 22 -a me = me' error"),
        "{err}"
    );
}

/// `Match final` triggers a second pass in which `host` is the final host name.
#[test]
fn match_final_reparses_with_the_final_host_name() {
    let c = user_config("Host alias\n  HostName real.example.com\nMatch final host real.example.com\n  User finaluser\n", "alias").unwrap();
    assert_eq!(c.user, "finaluser");
    assert_eq!(c.hostname, "real.example.com");
}

/// Includes: relative to ~/.ssh for the user's file, globbed in order, `Host` state restored.
#[test]
fn includes_resolve_relative_to_the_right_directory() {
    let mut fs = MemoryFilesystem::new();
    fs.insert(USER_CONFIG, "Include config.d/*\nHost web\n  User fromweb\n")
        .insert("/home/me/.ssh/config.d/b", "Host web\n  Port 2\n")
        .insert("/home/me/.ssh/config.d/a", "Host web\n  Port 1\n")
        .insert(SYSTEM_CONFIG, "Include sys.d/*.conf\n")
        .insert("/etc/ssh/sys.d/x.conf", "Host web\n  Compression yes\n");
    let c = resolve_with(&fs, &[], "web").unwrap();
    assert_eq!((c.port, c.user.as_str(), c.compression), (1, "fromweb", true));
    let mut fs = MemoryFilesystem::new();
    fs.insert(SYSTEM_CONFIG, "Include ~/x\n");
    let err = resolve_with(&fs, &[], "web").unwrap_err();
    assert_eq!(err.to_string(), "/etc/ssh/ssh_config line 1: bad include path ~/x.\n/etc/ssh/ssh_config: terminating, 1 bad configuration options");
}

/// ProxyJump and ProxyCommand: whichever comes first wins; `none` clears.
#[test]
fn proxy_jump_and_command_exclude_each_other() {
    let c = user_config("ProxyJump j\nProxyCommand nc %h %p\n", "h").unwrap();
    assert_eq!(c.proxy_jump.as_ref().map(|j| j.host.as_str()), Some("j"));
    assert_eq!(c.proxy_command, None);
    let c = user_config("ProxyCommand nc %h %p\nProxyJump j\n", "h").unwrap();
    assert!(c.proxy_jump.is_none());
    assert_eq!(c.expanded_proxy_command().unwrap().unwrap(), "nc h 22");
    let c = user_config("ProxyJump none\nProxyJump j\n", "h").unwrap();
    assert!(c.proxy_jump.is_none());
}

/// Identity files accumulate without duplicates and default to OpenSSH's list; SendEnv
/// removes with `-`.
#[test]
fn lists_accumulate_like_openssh() {
    let c = user_config(
        "IdentityFile a\nIdentityFile b\nIdentityFile a\nSendEnv A B C\nSendEnv -B\n",
        "h",
    )
    .unwrap();
    assert_eq!(c.identity_files, ["a", "b"]);
    assert_eq!(c.send_env, ["A", "C"]);
    let c = user_config("", "h").unwrap();
    assert_eq!(c.identity_files[0], "~/.ssh/id_rsa");
    assert_eq!(c.identity_files.len(), 7);
    assert_eq!(
        c.expand_path("~/.ssh/id_%h_%r", "/home/me", None).unwrap(),
        "/home/me/.ssh/id_h_me"
    );
}

/// `%C` is OpenSSH's connection hash, and every documented token expands.
#[test]
fn tokens_expand_as_openssh() {
    let c = user_config("User bob\nPort 2200\n", "Host.Example").unwrap();
    let t = &c.tokens;
    assert_eq!(t.host, "host.example");
    assert_eq!(t.host_arg, "Host.Example");
    assert_eq!(t.short_host, "laptop");
    let want: String = {
        let d = ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            b"laptop.example.orghost.example2200bob",
        );
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    };
    assert_eq!(t.conn_hash, want);
    assert_eq!(
        c.expand_path("%%-%C-%L-%i-%k-%l-%n-%p-%d-%h-%r-%u", "/home/me", None).unwrap(),
        format!("%-{want}-laptop-1000-Host.Example-laptop.example.org-Host.Example-2200-/home/me-host.example-bob-me")
    );
    assert!(c.expand_path("%z", "/home/me", None).is_err());
}

/// Random keyword soup never panics.
#[test]
fn random_input_never_panics() {
    let words = [
        "Host",
        "Match",
        "exec",
        "all",
        "final",
        "!",
        "Include",
        "=",
        "\"",
        "'",
        "#",
        "\\",
        "22",
        "*",
        "none",
        "1h",
        "LocalForward",
        "[::1]:",
        ":",
        "/",
        "RemoteForward",
        "DynamicForward",
        "ProxyJump",
        "@",
        ",",
        "ssh://",
        "EscapeChar",
        "^",
        "HostName",
        "%h",
        "%",
        "${X}",
        "\n",
        " ",
        "\t",
        "SendEnv",
        "-",
        "SetEnv",
        "IgnoreUnknown",
        "AddKeysToAgent",
        "confirm",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2_000 {
        let len = usize::try_from(next() % 40).unwrap();
        let mut text = String::new();
        for _ in 0..len {
            text.push_str(words[usize::try_from(next() % words.len() as u64).unwrap()]);
            if next() % 3 == 0 {
                text.push(' ');
            }
        }
        if let Ok(c) = SshLoader::parse_bytes(text.as_bytes(), "host") {
            let _ = c.dump();
        }
        let bytes: Vec<u8> = (0..len * 3).map(|_| (next() & 0xff) as u8).collect();
        let _ = SshLoader::parse_bytes(&bytes, "host");
    }
}

/// Golden comparison with the real `ssh -G`: the lines for every keyword agree apart from
/// the documented differences.
#[test]
fn dump_agrees_with_openssh_ssh_g() {
    let ssh = "/usr/bin/ssh";
    if !std::path::Path::new(ssh).exists() {
        eprintln!("skipping: {ssh} is not installed");
        return;
    }
    let out = std::process::Command::new("hostname").output().unwrap();
    let this_host = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let uid: u32 =
        String::from_utf8(std::process::Command::new("id").arg("-u").output().unwrap().stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    let dir = std::env::temp_dir().join(format!("conch-ssh-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let configs = [
        "",
        "Host web*\n  HostName %h.example.com\n  User bob\n  Port 2222\n  IdentityFile ~/.ssh/k_%h\n\
         IdentityFile /etc/k2\n  LocalForward 8080 localhost:80\n  LocalForward [::1]:81 /tmp/s\n\
         DynamicForward 1080\n  RemoteForward 9000 [::1]:22\n  RemoteForward 9001\n\
         UserKnownHostsFile ~/.ssh/kh_%h %d/kh2\n  ProxyJump jump@j:2200\n\
         ControlPath ~/.ssh/cm-%r@%h:%p\n  ControlMaster auto\n  ControlPersist 10m\n\
         SendEnv LANG LC_*\n  SetEnv A=1 B=2\n  StrictHostKeyChecking accept-new\n\
         ServerAliveInterval 30\n  ServerAliveCountMax 4\n  ConnectTimeout 7\n\
         ConnectionAttempts 2\n  BatchMode yes\n  Compression yes\n  EscapeChar ^A\n\
         RequestTTY force\n  RemoteCommand echo %r@%h:%p\n  LogLevel DEBUG1\n  RekeyLimit 512M 30m\n\
         PasswordAuthentication no\n  KbdInteractiveAuthentication no\n\
         PreferredAuthentications publickey\n  NumberOfPasswordPrompts 1\n  ExitOnForwardFailure yes\n\
         ForwardAgent yes\n  IdentitiesOnly yes\n  HashKnownHosts yes\n  HostKeyAlias WebAlias\n\
         AddressFamily inet\n  BindAddress 127.0.0.1\n  IdentityAgent ~/agent.%r\n\
         CertificateFile ~/.ssh/c.pub\n  AddKeysToAgent confirm 1h\n  UpdateHostKeys ask\n\
         Match originalhost web1 user bob\n  Port 2223\n",
        "Host *\n  ProxyCommand nc %h %p\n  GlobalKnownHostsFile /etc/kh\n  TunnelDevice 3:any\n\
         PubkeyAuthentication unbound\n  ForwardAgent /tmp/agent\n  CanonicalizeMaxDots 2\n",
    ];
    let differ = [
        "ciphers",
        "macs",
        "kexalgorithms",
        "casignaturealgorithms",
        "hostbasedacceptedalgorithms",
        "hostkeyalgorithms",
        "pubkeyacceptedalgorithms",
        "ipqos",
        "forwardx11trusted",
        "gssapiauthentication",
        "gssapikeyexchange",
        "gssapidelegatecredentials",
        "gssapitrustdns",
        "gssapirenewalforcesrekey",
        "gssapikexalgorithms",
    ];
    for (i, config) in configs.iter().enumerate() {
        let path = dir.join(format!("config{i}"));
        std::fs::write(&path, config).unwrap();
        for host in ["web1", "other.host"] {
            let out = std::process::Command::new(ssh)
                .arg("-G")
                .arg("-F")
                .arg(&path)
                .arg(host)
                .output()
                .unwrap();
            assert!(out.status.success(), "ssh -G: {}", String::from_utf8_lossy(&out.stderr));
            let theirs = String::from_utf8(out.stdout).unwrap();
            let fs = crate::config::OsFilesystem;
            let ctx = ClientContext::new(&fs, user.clone(), uid, home.clone(), this_host.clone());
            let ours = SshLoader::new(ctx)
                .file(ConfigFile::Path(path.display().to_string()))
                .resolve(host)
                .unwrap()
                .dump();
            let keep = |text: &str| -> Vec<String> {
                text.lines()
                    .filter(|l| !differ.contains(&l.split(' ').next().unwrap_or("")))
                    .map(str::to_owned)
                    .collect()
            };
            assert_eq!(keep(&ours), keep(&theirs), "config:\n{config}\nhost: {host}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
