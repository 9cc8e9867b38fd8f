use super::*;
use crate::config::values::LogLevel;
use crate::config::MemoryFilesystem;

const PATH: &str = "/etc/ssh/sshd_config";

fn fs_with(text: &str) -> MemoryFilesystem {
    let mut fs = MemoryFilesystem::new();
    fs.insert(PATH, text);
    fs
}

fn load(text: &str) -> Result<SshdConfigFile, ConfigError> {
    let fs = fs_with(text);
    SshdLoader::new(&fs).cwd("/work").home("/root").load(Some(PATH))
}

fn startup(text: &str) -> SshdConfig {
    load(text).unwrap().effective(None).unwrap()
}

fn error(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

/// The `-T` line for `keyword` (the first one).
fn dumped(config: &SshdConfig, keyword: &str) -> String {
    let prefix = format!("{keyword} ");
    config
        .dump()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {keyword} line"))
}

/// Each valid value of each keyword prints as OpenSSH prints it.
#[test]
fn every_keyword_accepts_its_values_and_prints_them_as_openssh() {
    let cases: &[(&str, &str, &str)] = &[
        ("Port 2222", "port", "2222"),
        ("AddressFamily inet", "addressfamily", "inet"),
        ("AddressFamily INET6", "addressfamily", "inet6"),
        ("UsePAM yes", "usepam", "yes"),
        ("LoginGraceTime 1h30m", "logingracetime", "5400"),
        ("LoginGraceTime 0", "logingracetime", "0"),
        ("X11DisplayOffset 12", "x11displayoffset", "12"),
        ("MaxAuthTries 3", "maxauthtries", "3"),
        ("MaxSessions 0", "maxsessions", "0"),
        ("ClientAliveInterval 1m", "clientaliveinterval", "60"),
        ("ClientAliveCountMax 5", "clientalivecountmax", "5"),
        ("RequiredRSASize 2048", "requiredrsasize", "2048"),
        ("StreamLocalBindMask 0077", "streamlocalbindmask", "077"),
        ("UnusedConnectionTimeout 5m", "unusedconnectiontimeout", "300"),
        ("UnusedConnectionTimeout none", "unusedconnectiontimeout", "none"),
        ("PermitRootLogin yes", "permitrootlogin", "yes"),
        ("PermitRootLogin prohibit-password", "permitrootlogin", "without-password"),
        ("PermitRootLogin forced-commands-only", "permitrootlogin", "forced-commands-only"),
        ("PermitRootLogin no", "permitrootlogin", "no"),
        ("IgnoreRhosts shosts-only", "ignorerhosts", "shosts-only"),
        ("PubkeyAuthentication no", "pubkeyauthentication", "no"),
        ("PasswordAuthentication no", "passwordauthentication", "no"),
        ("KbdInteractiveAuthentication no", "kbdinteractiveauthentication", "no"),
        ("ChallengeResponseAuthentication no", "kbdinteractiveauthentication", "no"),
        ("PrintMotd no", "printmotd", "no"),
        ("X11Forwarding yes", "x11forwarding", "yes"),
        ("PermitTTY no", "permittty", "no"),
        ("StrictModes no", "strictmodes", "no"),
        ("TCPKeepAlive no", "tcpkeepalive", "no"),
        ("Compression no", "compression", "no"),
        ("Compression delayed", "compression", "yes"),
        ("GatewayPorts clientspecified", "gatewayports", "clientspecified"),
        ("AllowTcpForwarding local", "allowtcpforwarding", "local"),
        ("AllowTcpForwarding all", "allowtcpforwarding", "yes"),
        ("AllowStreamLocalForwarding remote", "allowstreamlocalforwarding", "remote"),
        ("DisableForwarding yes", "disableforwarding", "yes"),
        ("ExposeAuthInfo yes", "exposeauthinfo", "yes"),
        ("FingerprintHash md5", "fingerprinthash", "MD5"),
        ("PidFile /tmp/x.pid", "pidfile", "/tmp/x.pid"),
        ("PidFile run/x.pid", "pidfile", "/work/run/x.pid"),
        ("PidFile none", "pidfile", "none"),
        ("Banner ~/banner", "banner", "/root/banner"),
        ("ForceCommand internal-sftp -d /", "forcecommand", "internal-sftp -d /"),
        ("ChrootDirectory /srv/%u", "chrootdirectory", "/srv/%u"),
        ("VersionAddendum hello world # note", "versionaddendum", "hello world"),
        ("AuthorizedKeysCommand /bin/keys %u", "authorizedkeyscommand", "/bin/keys %u"),
        ("Ciphers aes128-ctr", "ciphers", "aes128-ctr"),
        ("Ciphers -aes*", "ciphers", "chacha20-poly1305@openssh.com"),
        ("MACs hmac-sha2-256-etm@openssh.com", "macs", "hmac-sha2-256-etm@openssh.com"),
        ("KexAlgorithms curve25519-sha256", "kexalgorithms", "curve25519-sha256"),
        ("HostKeyAlgorithms ^ssh-rsa", "hostkeyalgorithms", "ssh-rsa,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256"),
        ("PubkeyAcceptedAlgorithms +ssh-rsa", "pubkeyacceptedalgorithms", "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256,ssh-rsa"),
        ("PubkeyAcceptedAlgorithms ssh-ed25519*", "pubkeyacceptedalgorithms", "ssh-ed25519-cert-v01@openssh.com,ssh-ed25519"),
        ("LogLevel debug3", "loglevel", "DEBUG3"),
        ("SyslogFacility local5", "syslogfacility", "LOCAL5"),
        ("AuthorizedKeysFile /etc/keys/%u .ssh/k", "authorizedkeysfile", "/etc/keys/%u .ssh/k"),
        ("AuthorizedKeysFile ~/k", "authorizedkeysfile", "/root/k"),
        ("HostKey /etc/k1", "hostkey", "/etc/k1"),
        ("HostKey k1", "hostkey", "/work/k1"),
        ("AllowUsers alice bob@10.0.0.0/8", "allowusers", "alice"),
        ("AcceptEnv LANG LC_*", "acceptenv", "LANG"),
        ("SetEnv A=1 B=\"two words\"", "setenv", "A=1"),
        ("AuthenticationMethods publickey,password publickey", "authenticationmethods", "publickey,password publickey"),
        ("AuthenticationMethods any", "authenticationmethods", "any"),
        ("Subsystem sftp /usr/lib/openssh/sftp-server -l INFO", "subsystem", "sftp /usr/lib/openssh/sftp-server -l INFO"),
        ("MaxStartups 10:30:60", "maxstartups", "10:30:60"),
        ("MaxStartups 5", "maxstartups", "5:30:5"),
        ("PerSourceMaxStartups 3", "persourcemaxstartups", "3"),
        ("PerSourceNetBlockSize 24:56", "persourcenetblocksize", "24:56"),
        ("PermitTunnel point-to-point", "permittunnel", "point-to-point"),
        ("IPQoS lowdelay throughput", "ipqos", "lowdelay throughput"),
        ("IPQoS af11", "ipqos", "af11 af11"),
        ("RekeyLimit 1G 1h", "rekeylimit", "1073741824 3600"),
        ("RekeyLimit default none", "rekeylimit", "0 0"),
        ("RekeyLimit 512K", "rekeylimit", "524288 0"),
        ("PermitOpen host:22 [::1]:80 *:*", "permitopen", "host:22 [::1]:80 *:*"),
        ("PermitOpen none", "permitopen", "none"),
        ("PermitListen 8080 localhost:*", "permitlisten", "*:8080 localhost:*"),
        ("PermitUserEnvironment yes", "permituserenvironment", "yes"),
        ("PermitUserEnvironment LANG,LC_*", "permituserenvironment", "LANG,LC_*"),
        ("PubkeyAuthOptions verify-required", "pubkeyauthoptions", "verify-required"),
        ("RevokedKeys /etc/ssh/krl", "revokedkeys", "/etc/ssh/krl"),
        ("TrustedUserCAKeys /etc/ssh/ca.pub", "trustedusercakeys", "/etc/ssh/ca.pub"),
        ("ChannelTimeout session=5m", "channeltimeout", "session=5m"),
        ("LogVerbose kex.c:*", "logverbose", "kex.c:*"),
        ("ListenAddress 127.0.0.1", "listenaddress", "127.0.0.1:22"),
        ("ListenAddress [::1]:2200", "listenaddress", "[::1]:2200"),
        ("ListenAddress ::1", "listenaddress", "[::1]:22"),
        ("Port=2022", "port", "2022"),
        ("port = 2023", "port", "2023"),
    ];
    for (line, keyword, want) in cases {
        let config = load(line).unwrap_or_else(|e| panic!("{line}: {e}")).effective(None).unwrap();
        assert_eq!(dumped(&config, keyword), *want, "{line}");
    }
}

/// Bad values fail with OpenSSH's message, naming file, line and keyword.
#[test]
fn bad_values_fail_with_openssh_messages() {
    let p = PATH;
    let cases: &[(&str, String)] = &[
        ("Foo bar", format!("{p}: line 1: Bad configuration option: Foo\n{p}: terminating, 1 bad configuration options")),
        ("Port abc", format!("{p} line 1: Badly formatted port number.")),
        ("Port 0", format!("{p} line 1: Badly formatted port number.")),
        ("Port", format!("{p} line 1: no argument after keyword \"Port\"\n{p}: terminating, 1 bad configuration options")),
        ("Port 22 23", format!("{p} line 1: keyword Port extra arguments at end of line\n{p}: terminating, 1 bad configuration options")),
        ("LoginGraceTime 1x", format!("{p} line 1: invalid time value.")),
        ("MaxAuthTries many", format!("{p} line 1: MaxAuthTries integer value invalid.")),
        ("MaxAuthTries -1", format!("{p} line 1: MaxAuthTries integer value too small.")),
        ("PermitRootLogin maybe", format!("{p} line 1: unsupported option \"maybe\".")),
        ("PasswordAuthentication true", format!("{p} line 1: unsupported option \"true\".")),
        ("AddressFamily ipx", format!("{p} line 1: unsupported option \"ipx\".")),
        ("LogLevel LOUD", format!("{p} line 1: unsupported log level 'LOUD'")),
        ("SyslogFacility KERN", format!("{p} line 1: unsupported log facility 'KERN'")),
        ("Ciphers rot13", format!("{p} line 1: Bad SSH2 cipher spec 'rot13'.")),
        ("MACs hmac-md4", format!("{p} line 1: Bad SSH2 mac spec 'hmac-md4'.")),
        ("KexAlgorithms +dh-none", format!("{p} line 1: Bad SSH2 KexAlgorithms '+dh-none'.")),
        ("HostKeyAlgorithms ssh-foo", format!("{p} line 1: Bad key types 'ssh-foo'.")),
        ("HostKeyAlgorithms ssh-dss", format!("{p} line 1: HostKeyAlgorithms: no supported algorithm left in 'ssh-dss'.")),
        ("RekeyLimit 1Q", format!("{p} line 1: Bad RekeyLimit number '1Q': Invalid argument")),
        ("RekeyLimit 8", format!("{p} line 1: RekeyLimit too small")),
        ("MaxStartups 10:0:100", format!("{p} line 1: Invalid MaxStartups spec.")),
        ("MaxStartups 20:30:10", format!("{p} line 1: Invalid MaxStartups spec.")),
        ("MaxStartups x", format!("{p} line 1: Invalid MaxStartups spec.")),
        ("AllowUsers alice@10.0.0.1/8", format!("{p} line 1: invalid AllowUsers pattern: \"alice@10.0.0.1/8\"")),
        ("AcceptEnv A=B", format!("{p} line 1: Invalid environment name.")),
        ("SetEnv NOVALUE", format!("{p} line 1: Invalid environment.")),
        ("Subsystem sftp", format!("{p} line 1: Subsystem missing argument.")),
        ("AuthorizedKeysCommand keys.sh", format!("{p} line 1: AuthorizedKeysCommand must be an absolute path")),
        ("AuthenticationMethods publickey,magic", format!("{p} line 1: invalid AuthenticationMethods method list.")),
        ("AuthenticationMethods any publickey", format!("{p} line 1: \"any\" must appear alone in AuthenticationMethods")),
        ("PermitOpen host", format!("{p} line 1: PermitOpen bad port number")),
        ("PermitOpen host:0", format!("{p} line 1: PermitOpen bad port number")),
        ("PermitTunnel maybe", format!("{p} line 1: bad PermitTunnel argument maybe")),
        ("IPQoS fast", format!("{p} line 1: Bad IPQoS value: fast")),
        ("StreamLocalBindMask 999", format!("{p} line 1: Invalid StreamLocalBindMask.")),
        ("ListenAddress 1.2.3.4:x", format!("{p} line 1: bad port number")),
        ("ListenAddress 1.2.3.4 vrf", format!("{p} line 1: bad ListenAddress syntax")),
        ("FingerprintHash sha1", format!("{p} line 1: Invalid FingerprintHash algorithm \"sha1\".")),
        ("RDomain %D", format!("{p} line 1: setting RDomain not supported on this platform.")),
        ("ForceCommand \"unclosed", format!("{p} line 1: invalid quotes\n{p}: terminating, 1 bad configuration options")),
        ("ChannelTimeout session", format!("{p} line 1: invalid channel timeout session")),
        ("PerSourcePenalties crash:x", format!("{p} line 1: invalid PerSourcePenalties time value.")),
        ("PerSourcePenalties no crash:1", format!("{p} line 1: keyword PerSourcePenalties \"no\" argument must appear alone.")),
        ("Match Color red\n", format!("Unsupported Match attribute Color\n{p} line 1: Bad Match condition")),
        ("Match User", format!("Missing Match criteria for User\n{p} line 1: Bad Match condition")),
        ("Match all User x", format!("'all' cannot be combined with other Match attributes\n{p} line 1: Bad Match condition")),
        ("Match Address 10.0.0.1/8", format!("Invalid Match address argument '10.0.0.1/8'\n{p} line 1: Bad Match condition")),
        ("Match LocalPort x", format!("Invalid LocalPort 'x' on Match line\n{p} line 1: Bad Match condition")),
        ("Match User a\nPort 22", format!("{p} line 2: Directive 'Port' is not allowed within a Match block")),
        ("Include", format!("{p} line 1: no argument after keyword \"Include\"\n{p}: terminating, 1 bad configuration options")),
    ];
    for (text, want) in cases {
        assert_eq!(&error(text), want, "{text}");
    }
}

/// Several bad lines are all reported before the summary, as OpenSSH does.
#[test]
fn several_bad_lines_are_counted() {
    let err = error("Foo 1\nPort 22\nBar 2\n");
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        [
            format!("{PATH}: line 1: Bad configuration option: Foo"),
            format!("{PATH}: line 3: Bad configuration option: Bar"),
            format!("{PATH}: terminating, 2 bad configuration options"),
        ]
    );
}

/// An algorithm OpenSSH has and twine does not is left out of the list with a warning naming
/// file and line, and the rest of the list is used.
#[test]
fn an_openssh_algorithm_we_lack_is_skipped_with_a_warning_naming_the_line() {
    let text =
        "Port 22\nCiphers aes128-cbc,aes256-ctr,3des-cbc\nMACs +umac-64@openssh.com,hmac-md5\n\
                KexAlgorithms diffie-hellman-group-exchange-sha256,curve25519-sha256\n\
                HostKeyAlgorithms ssh-ed25519,ssh-dss,ssh-ed25519-cert-v01@openssh.com\n\
                PubkeyAcceptedAlgorithms ^sk-ssh-ed25519@openssh.com,rsa-sha2-512\n\
                CASignatureAlgorithms ssh-ed25519,sk-ecdsa-sha2-nistp256@openssh.com\n";
    let file = load(text).unwrap();
    let warnings = file.warnings();
    for (line, name) in [
        (2, "aes128-cbc"),
        (2, "3des-cbc"),
        (3, "umac-64@openssh.com"),
        (3, "hmac-md5"),
        (4, "diffie-hellman-group-exchange-sha256"),
        (5, "ssh-dss"),
        (5, "ssh-ed25519-cert-v01@openssh.com"),
        (6, "sk-ssh-ed25519@openssh.com"),
        (7, "sk-ecdsa-sha2-nistp256@openssh.com"),
    ] {
        let prefix = format!("{PATH} line {line}: ");
        assert!(
            warnings.iter().any(|w| w.starts_with(&prefix) && w.contains(name)),
            "no warning for {name} on line {line}: {warnings:?}"
        );
    }
    let config = file.effective(None).unwrap();
    assert_eq!(config.ciphers, ["aes256-ctr"]);
    assert_eq!(config.kex_algorithms, ["curve25519-sha256"]);
    assert_eq!(config.host_key_algorithms, ["ssh-ed25519"]);
    assert_eq!(
        config.macs,
        crate::crypto::algorithms::Category::Mac.defaults(crate::crypto::algorithms::Side::Server)
    );
    assert_eq!(config.pubkey_accepted_algorithms.first().copied(), Some("rsa-sha2-512"));
}

/// A list with nothing we implement is an error, and a name OpenSSH does not know either is
/// OpenSSH's "Bad SSH2 cipher spec".
#[test]
fn an_algorithm_list_left_empty_or_with_an_unknown_name_is_an_error() {
    assert_eq!(
        error("Ciphers 3des-cbc,aes128-cbc"),
        format!("{PATH} line 1: Ciphers: no supported algorithm left in '3des-cbc,aes128-cbc'.")
    );
    assert_eq!(
        error("Ciphers aes128-cbc,blowfish-cbc"),
        format!("{PATH} line 1: Bad SSH2 cipher spec 'aes128-cbc,blowfish-cbc'.")
    );
    assert_eq!(
        error("HostKeyAlgorithms ssh-foo-cert-v01@openssh.com"),
        format!("{PATH} line 1: Bad key types 'ssh-foo-cert-v01@openssh.com'.")
    );
}

/// Deprecated and unsupported keywords load, each with OpenSSH's log line as a warning.
#[test]
fn deprecated_keywords_load_with_warnings() {
    let text = "UsePrivilegeSeparation sandbox\nProtocol 2\nRSAAuthentication yes\nUseLogin no\n\
                KeyRegenerationInterval 3600\nServerKeyBits 1024\nRhostsRSAAuthentication no\n\
                GSSAPIAuthentication yes\nKerberosAuthentication no\n";
    let file = load(text).unwrap();
    assert_eq!(
        file.warnings(),
        [
            format!("{PATH} line 1: Deprecated option UsePrivilegeSeparation"),
            format!("{PATH} line 3: Deprecated option RSAAuthentication"),
            format!("{PATH} line 4: Deprecated option UseLogin"),
            format!("{PATH} line 5: Deprecated option KeyRegenerationInterval"),
            format!("{PATH} line 6: Deprecated option ServerKeyBits"),
            format!("{PATH} line 7: Deprecated option RhostsRSAAuthentication"),
            format!("{PATH} line 8: Unsupported option GSSAPIAuthentication"),
            format!("{PATH} line 9: Unsupported option KerberosAuthentication"),
        ]
    );
    assert_eq!(keyword_support("useprivilegeseparation"), Some(Support::Deprecated));
    assert_eq!(keyword_support("Protocol"), Some(Support::Ignored));
    assert_eq!(keyword_support("TCPKeepAlive"), Some(Support::NotImplemented));
    assert_eq!(keyword_support("ChrootDirectory"), Some(Support::Unenforced));
    assert_eq!(keyword_support("PermitRootLogin"), Some(Support::Implemented));
    assert_eq!(keyword_support("Bogus"), None);
}

/// The configuration OpenSSH's regress harness writes (Debian and HEAD variants) loads.
#[test]
fn regress_harness_configuration_loads() {
    let text = "StrictModes\tno\nPort\t4242\nAddressFamily\tinet\nListenAddress\t127.0.0.1\n\
        PidFile\t/tmp/regress/pidfile\nAuthorizedKeysFile\t/tmp/regress/authorized_keys_%u\n\
        LogLevel\tDEBUG3\nAcceptEnv\t_XXX_TEST_*\nAcceptEnv\t_XXX_TEST\n\
        Subsystem\tsftp\t/usr/lib/openssh/sftp-server\nUsePAM yes\n\
        SecurityKeyProvider /usr/lib/openssh/regress/misc/sk-dummy/sk-dummy.so\n\
        SshdSessionPath /usr/lib/openssh/sshd-session\nSshdAuthPath /usr/lib/openssh/sshd-auth\n\
        PerSourcePenalties no\nHostKey /tmp/regress/host.ssh-ed25519\n\
        HostKey /tmp/regress/host.rsa\n";
    let c = startup(text);
    assert_eq!(c.ports, [4242]);
    assert_eq!(c.address_family, AddressFamily::Inet);
    assert_eq!(c.listen_addresses, [ListenAddress { host: "127.0.0.1".into(), port: 4242 }]);
    assert_eq!(c.accept_env, ["_XXX_TEST_*", "_XXX_TEST"]);
    assert!(c.accepts_env("_XXX_TEST_A") && !c.accepts_env("OTHER"));
    assert_eq!(c.host_keys, ["/tmp/regress/host.ssh-ed25519", "/tmp/regress/host.rsa"]);
    assert_eq!(c.subsystems[0].command, "/usr/lib/openssh/sftp-server");
    assert!(c.use_pam && !c.strict_modes);
    assert_eq!(c.log_level, LogLevel::Debug3);
    assert!(c.unenforced().is_empty());
}

/// The first value obtained wins; list keywords accumulate or keep their first line.
#[test]
fn first_value_wins_and_lists_follow_openssh() {
    let c = startup(
        "PermitRootLogin no\nPermitRootLogin yes\nPort 1\nPort 2\nAllowUsers a\nAllowUsers b\n\
         AuthorizedKeysFile x\nAuthorizedKeysFile y\nSetEnv A=1 A=2\nSetEnv B=1\n\
         Subsystem s /bin/one\nSubsystem s /bin/two\nRekeyLimit 1G\nRekeyLimit 2G 1h\n",
    );
    assert_eq!(c.permit_root_login, PermitRootLogin::No);
    assert_eq!(c.ports, [1, 2]);
    assert_eq!(c.allow_users, ["a", "b"]);
    assert_eq!(c.authorized_keys_files, ["x"]);
    assert_eq!(c.set_env, ["A=1"]);
    assert_eq!(c.subsystems.len(), 1);
    assert_eq!(c.subsystems[0].command, "/bin/one");
    assert_eq!(c.rekey_limit, (1 << 30, 3600));
}

/// `-o` options come before the file, so they win; bad ones fail with `command-line`.
#[test]
fn command_line_options_win_over_the_file() {
    let fs = fs_with("PasswordAuthentication yes\nLogLevel INFO\nPort 22\n");
    let file = SshdLoader::new(&fs)
        .option("PasswordAuthentication no")
        .option("loglevel=DEBUG2")
        .option("Port=2200")
        .load(Some(PATH))
        .unwrap();
    let c = file.effective(None).unwrap();
    assert!(!c.password_authentication);
    assert_eq!(c.log_level, LogLevel::Debug2);
    assert_eq!(c.ports, [2200, 22]);
    let err = SshdLoader::new(&fs).option("Nonsense 1").load(Some(PATH)).unwrap_err();
    assert_eq!(err.to_string(), "command-line: line 0: Bad configuration option: Nonsense");
    let err = SshdLoader::new(&fs).option("Match all").load(Some(PATH)).unwrap_err();
    assert_eq!(err.to_string(), "Match directive not supported as a command-line option");
    let err = SshdLoader::new(&fs).option("Port 0").load(Some(PATH)).unwrap_err();
    assert_eq!(err.to_string(), "command-line line 0: Badly formatted port number.");
}

/// `-p` ports replace every `Port` line.
#[test]
fn command_line_ports_replace_port_lines() {
    let fs = fs_with("Port 22\nPort 23\n");
    let c = SshdLoader::new(&fs).port(2222).load(Some(PATH)).unwrap().effective(None).unwrap();
    assert_eq!(c.ports, [2222]);
}

/// A missing file is an error naming it; `-f none` gives the defaults.
#[test]
fn missing_file_is_an_error_and_none_gives_defaults() {
    let fs = MemoryFilesystem::new();
    let err = SshdLoader::new(&fs).load(Some("/nope")).unwrap_err();
    assert_eq!(err.to_string(), "/nope: No such file or directory");
    let c = SshdLoader::new(&fs).load(None).unwrap().effective(None).unwrap();
    assert_eq!(c.ports, [22]);
    assert_eq!(
        c.host_keys,
        [
            "/etc/ssh/ssh_host_rsa_key",
            "/etc/ssh/ssh_host_ecdsa_key",
            "/etc/ssh/ssh_host_ed25519_key"
        ]
    );
}

const MATCHY: &str = "PasswordAuthentication yes\nX11Forwarding no\n\
    Match User alice,!bob\n  PasswordAuthentication no\n  AllowUsers alice\n\
    Match Group admins\n  X11Forwarding yes\n  PasswordAuthentication yes\n\
    Match Address 10.0.0.0/8,!10.9.9.9\n  MaxAuthTries 2\n\
    Match Host *.example.com LocalPort 2222\n  Banner /etc/banner\n\
    Match LocalAddress 192.168.1.1\n  PermitTTY no\n";

fn conn(user: &str) -> ConnectionInfo {
    ConnectionInfo {
        user: Some(user.into()),
        groups: Some(vec!["users".into()]),
        host: Some("h.example.com".into()),
        address: Some("10.1.2.3".into()),
        local_address: Some("192.168.1.2".into()),
        local_port: Some(22),
        ..ConnectionInfo::default()
    }
}

/// Matching blocks override the global values; within them the first value wins.
#[test]
fn match_blocks_override_global_values_for_matching_connections() {
    let file = load(MATCHY).unwrap();
    let base = file.effective(None).unwrap();
    assert!(base.password_authentication && !base.x11_forwarding && base.allow_users.is_empty());

    let alice = file.effective(Some(&conn("alice"))).unwrap();
    assert!(!alice.password_authentication);
    assert_eq!(alice.allow_users, ["alice"]);
    assert_eq!(alice.max_auth_tries, 2);
    assert_eq!(alice.banner, None);

    let mut admin = conn("carol");
    admin.groups = Some(vec!["users".into(), "admins".into()]);
    admin.address = Some("10.9.9.9".into());
    admin.local_port = Some(2222);
    admin.local_address = Some("192.168.1.1".into());
    let c = file.effective(Some(&admin)).unwrap();
    assert!(c.x11_forwarding && c.password_authentication);
    assert_eq!(c.max_auth_tries, 6);
    assert_eq!(c.banner.as_deref(), Some("/etc/banner"));
    assert!(!c.permit_tty);

    let bob = file.effective(Some(&conn("bob"))).unwrap();
    assert!(bob.password_authentication);
}

/// A whole configuration whose `Match` blocks set the per-connection keywords: the user's
/// block and the address's block each apply to their connections only, and a connection
/// matching both gets both (first value wins).
#[test]
fn per_connection_keywords_apply_only_to_matching_connections() {
    let file = load(
        "MaxAuthTries 6\n\
         ClientAliveInterval 0\n\
         AcceptEnv LANG\n\
         Match User x\n\
         \x20 MaxAuthTries 1\n\
         \x20 AuthenticationMethods publickey,password\n\
         \x20 ClientAliveInterval 30\n\
         \x20 ClientAliveCountMax 2\n\
         \x20 AcceptEnv FOO_*\n\
         \x20 MaxSessions 1\n\
         \x20 GatewayPorts clientspecified\n\
         \x20 AllowStreamLocalForwarding local\n\
         Match Address 127.0.0.2\n\
         \x20 Banner /etc/banner.local\n\
         \x20 MaxAuthTries 3\n\
         \x20 ChannelTimeout session:command=5s *=1m\n\
         \x20 UnusedConnectionTimeout 1m\n\
         \x20 PubkeyAcceptedAlgorithms ssh-ed25519\n",
    )
    .unwrap();
    let at = |user: &str, address: &str| {
        let mut ci = conn(user);
        ci.address = Some(address.into());
        file.effective(Some(&ci)).unwrap()
    };
    let plain = at("y", "127.0.0.1");
    assert_eq!(plain.max_auth_tries, 6);
    assert!(plain.authentication_methods.is_empty());
    assert_eq!((plain.client_alive_interval, plain.max_sessions), (0, 10));
    assert_eq!(plain.accept_env, ["LANG"]);
    assert_eq!((plain.banner.as_deref(), plain.unused_connection_timeout), (None, 0));
    assert!(plain.channel_timeout.is_empty());

    let x = at("x", "127.0.0.1");
    assert_eq!(x.max_auth_tries, 1);
    assert_eq!(x.authentication_methods, ["publickey,password"]);
    assert_eq!((x.client_alive_interval, x.client_alive_count_max), (30, 2));
    assert_eq!(x.accept_env, ["FOO_*"]);
    assert_eq!(x.max_sessions, 1);
    assert_eq!(x.gateway_ports, GatewayPorts::ClientSpecified);
    assert_eq!(x.allow_stream_local_forwarding, Forwarding::Local);
    assert_eq!(x.banner, None);

    let local = at("y", "127.0.0.2");
    assert_eq!(local.banner.as_deref(), Some("/etc/banner.local"));
    assert_eq!(local.max_auth_tries, 3);
    assert_eq!(local.channel_timeout, ["session:command=5s", "*=1m"]);
    assert_eq!(local.unused_connection_timeout, 60);
    assert_eq!(local.pubkey_accepted_algorithms, ["ssh-ed25519"]);

    let both = at("x", "127.0.0.2");
    assert_eq!(both.max_auth_tries, 1);
    assert_eq!(both.banner.as_deref(), Some("/etc/banner.local"));
    assert_eq!(both.accept_env, ["FOO_*"]);
}

/// Keywords sshd takes only outside `Match` are refused inside one, as sshd refuses them:
/// a fatal error naming the file and the line, in the main file and in an included one.
#[test]
fn a_global_only_directive_inside_match_is_an_error_naming_file_and_line() {
    for keyword in [
        "Ciphers aes128-ctr",
        "MACs hmac-sha2-256",
        "KexAlgorithms curve25519-sha256",
        "HostKey /etc/ssh/ssh_host_ed25519_key",
        "HostKeyAlgorithms ssh-ed25519",
        "Port 2222",
        "ListenAddress 127.0.0.1",
        "LoginGraceTime 10",
        "UsePAM yes",
        "MaxStartups 5",
        "PidFile /run/x.pid",
        "StrictModes no",
        "UseDNS yes",
    ] {
        let name = keyword.split(' ').next().unwrap();
        let text = format!("PermitRootLogin no\nMatch Address 127.0.0.2\n  {keyword}\n");
        assert_eq!(
            error(&text),
            format!("{PATH} line 3: Directive '{name}' is not allowed within a Match block"),
            "{keyword}"
        );
    }
    let mut fs = fs_with("Match User x\nInclude /etc/ssh/sshd_config.d/*.conf\n");
    fs.insert("/etc/ssh/sshd_config.d/10-bad.conf", "Banner none\n\nCiphers aes128-ctr\n");
    let err = SshdLoader::new(&fs).load(Some(PATH)).unwrap_err().to_string();
    assert_eq!(
        err,
        "/etc/ssh/sshd_config.d/10-bad.conf line 3: Directive 'Ciphers' is not allowed within a \
         Match block"
    );
}

/// Test specifications leave missing attributes unmatched, except the local port, which
/// OpenSSH insists on; real connections must supply what the configuration asks.
#[test]
fn missing_match_attributes_follow_openssh() {
    let file = load("Match User alice\n PermitTTY no\n").unwrap();
    assert!(file.effective(Some(&ConnectionInfo::test())).unwrap().permit_tty);
    let err = file.effective(Some(&ConnectionInfo::default())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'Match User' in configuration but 'user' not in connection test specification."
    );
    let file = load("Match LocalPort 22\n PermitTTY no\n").unwrap();
    let err = file.effective(Some(&ConnectionInfo::test())).unwrap_err();
    assert!(err.to_string().contains("'lport' not in connection test specification"));
}

/// `Match all` applies at startup, and global-only keywords are refused inside other blocks.
#[test]
fn match_all_applies_everywhere() {
    let file =
        load("PasswordAuthentication no\nMatch all\n PasswordAuthentication yes\n Port 99\n")
            .unwrap();
    let base = file.effective(None).unwrap();
    assert!(!base.password_authentication);
    assert_eq!(base.ports, [99]);
    assert!(file.effective(Some(&ConnectionInfo::test())).unwrap().password_authentication);
}

/// Criteria on one line are all required; `Match` arguments may be written `key=value`.
#[test]
fn match_criteria_on_one_line_are_anded() {
    let file = load("Match user=alice Address 10.0.0.0/8\n PermitTTY no\n").unwrap();
    assert!(!file.effective(Some(&conn("alice"))).unwrap().permit_tty);
    let mut far = conn("alice");
    far.address = Some("192.0.2.1".into());
    assert!(file.effective(Some(&far)).unwrap().permit_tty);
    assert!(file.effective(Some(&conn("bob"))).unwrap().permit_tty);
}

/// `ForceCommand none` and `ChrootDirectory none` in a matching block clear global values.
#[test]
fn none_in_match_clears_force_command() {
    let file = load("ForceCommand /bin/false\nMatch User alice\n ForceCommand none\n").unwrap();
    assert_eq!(file.effective(None).unwrap().force_command.as_deref(), Some("/bin/false"));
    assert_eq!(file.effective(Some(&conn("alice"))).unwrap().force_command, None);
}

/// `sshd -C` specifications parse as OpenSSH's, with its errors.
#[test]
fn parses_test_specifications() {
    let ci = ConnectionInfo::parse_test_spec("user=u,host=h,addr=1.2.3.4,laddr=5.6.7.8,lport=22")
        .unwrap();
    assert_eq!(ci.user.as_deref(), Some("u"));
    assert_eq!(ci.local_port, Some(22));
    assert!(ci.test);
    assert_eq!(
        ConnectionInfo::parse_test_spec("lport=x").unwrap_err(),
        "Invalid port 'x' in test mode specification lport=x"
    );
    assert_eq!(
        ConnectionInfo::parse_test_spec("color=red").unwrap_err(),
        "Invalid test mode specification color=red"
    );
}

/// Includes follow globs in sorted order, relative paths live under the system directory,
/// and an included file's `Match` does not leak into the including file.
#[test]
fn includes_expand_globs_in_order_and_keep_match_state() {
    let mut fs = MemoryFilesystem::new();
    fs.insert(PATH, "Include conf.d/*.conf\nPermitTTY no\n")
        .insert("/etc/ssh/conf.d/20-b.conf", "Port 2\nMatch User alice\n X11Forwarding yes\n")
        .insert("/etc/ssh/conf.d/10-a.conf", "Port 1\n")
        .insert("/etc/ssh/conf.d/skip.txt", "Port 3\n");
    let file = SshdLoader::new(&fs).load(Some(PATH)).unwrap();
    let c = file.effective(None).unwrap();
    assert_eq!(c.ports, [1, 2]);
    assert!(!c.permit_tty, "the line after Include is global again");
    assert!(file.effective(Some(&conn("alice"))).unwrap().x11_forwarding);
}

/// An include inside an inactive block cannot activate its own `Match` blocks, and a glob
/// that matches nothing is not an error.
#[test]
fn includes_inside_inactive_blocks_never_match() {
    let mut fs = MemoryFilesystem::new();
    fs.insert(PATH, "Match User nobody\n Include /etc/ssh/inner.conf\nInclude /etc/ssh/none/*\n")
        .insert("/etc/ssh/inner.conf", "Match User alice\n PermitTTY no\n");
    let file = SshdLoader::new(&fs).load(Some(PATH)).unwrap();
    assert!(file.effective(Some(&conn("alice"))).unwrap().permit_tty);
}

/// Recursive includes stop at OpenSSH's depth limit; errors in included files name them.
#[test]
fn recursive_includes_are_bounded_and_errors_name_the_included_file() {
    let mut fs = MemoryFilesystem::new();
    fs.insert(PATH, "Include /etc/ssh/loop.conf\n")
        .insert("/etc/ssh/loop.conf", "Include /etc/ssh/loop.conf\n");
    let err = SshdLoader::new(&fs).load(Some(PATH)).unwrap_err();
    assert_eq!(err.to_string(), "Too many recursive configuration includes");
    let mut fs = MemoryFilesystem::new();
    fs.insert(PATH, "Include /etc/ssh/bad.conf\n").insert("/etc/ssh/bad.conf", "\nPort x\n");
    let err = SshdLoader::new(&fs).load(Some(PATH)).unwrap_err();
    assert_eq!(err.to_string(), "/etc/ssh/bad.conf line 2: Badly formatted port number.");
    let err = SshdLoader::new(&fs).option("Include /x").load(Some(PATH)).unwrap_err();
    assert_eq!(err.to_string(), "Include directive not supported as a command-line option");
}

/// Includes on the real file system, through `OsFilesystem`, with a glob.
#[test]
fn includes_work_on_the_real_file_system() {
    let dir = std::env::temp_dir().join(format!("conch-sshd-include-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("d")).unwrap();
    let main = dir.join("sshd_config");
    std::fs::write(&main, format!("Include {}/d/*.conf\n", dir.display())).unwrap();
    std::fs::write(dir.join("d/b.conf"), "Port 2\n").unwrap();
    std::fs::write(dir.join("d/a.conf"), "Port 1\n").unwrap();
    let fs = crate::config::OsFilesystem;
    let c = SshdLoader::new(&fs).load(main.to_str()).unwrap().effective(None).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(c.ports, [1, 2]);
}

/// Settings conchd cannot enforce are reported unless `none`.
#[test]
fn unenforced_restrictions_are_reported() {
    let c = startup("ChrootDirectory /srv\nRevokedKeys /etc/krl\nTrustedUserCAKeys none\n");
    assert_eq!(c.unenforced(), ["ChrootDirectory /srv", "RevokedKeys /etc/krl"]);
    let c = startup("ChrootDirectory none\nHostCertificate /etc/c\n");
    assert_eq!(c.unenforced(), ["HostCertificate /etc/c"]);
}

/// Authorized keys paths expand `%u %U %h %%` and are relative to the home directory.
#[test]
fn authorized_keys_files_expand_per_user() {
    let c = startup("AuthorizedKeysFile .ssh/authorized_keys /etc/keys/%u.%U %h/100%% none\n");
    assert_eq!(
        c.authorized_keys_files_for("alice", 1000, "/home/alice").unwrap(),
        ["/home/alice/.ssh/authorized_keys", "/etc/keys/alice.1000", "/home/alice/100%"]
    );
}

/// Allow/Deny lists are checked in OpenSSH's order with its reasons.
#[test]
fn user_access_follows_allowed_user() {
    let c =
        startup("AllowUsers alice bob@10.0.0.0/8\nDenyUsers bob@10.0.0.66\nAllowGroups staff\n");
    let staff = ["staff".to_owned()];
    assert_eq!(c.user_access("alice", &staff, "h", "1.2.3.4"), UserAccess::Allowed);
    assert_eq!(c.user_access("bob", &staff, "h", "10.1.1.1"), UserAccess::Allowed);
    assert_eq!(
        c.user_access("bob", &staff, "h", "10.0.0.66"),
        UserAccess::Refused("not allowed because listed in DenyUsers".into())
    );
    assert_eq!(
        c.user_access("bob", &staff, "h", "1.2.3.4"),
        UserAccess::Refused("not allowed because not listed in AllowUsers".into())
    );
    assert!(matches!(c.user_access("alice", &[], "h", "1.2.3.4"), UserAccess::Refused(_)));
}

/// Random bytes and random keyword soup never panic the parser.
#[test]
fn random_input_never_panics() {
    let words = [
        "Port",
        "Match",
        "User",
        "all",
        "Include",
        "=",
        "\"",
        "'",
        "#",
        "\\",
        "22",
        "-",
        "+",
        "^",
        "none",
        "1h",
        "10:30:100",
        "*",
        "!",
        ",",
        "\t",
        " ",
        "\n",
        "ListenAddress",
        "[::1]:",
        "RekeyLimit",
        "PermitOpen",
        "Subsystem",
        "AuthenticationMethods",
        "Ciphers",
        "\u{fffd}",
        "SetEnv",
        "A=",
        "Address",
        "10.0.0.0/8",
        "LocalPort",
        "PerSourcePenalties",
        "crash:",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
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
        if let Ok(file) = SshdConfigFile::parse_bytes(text.as_bytes()) {
            let _ = file.effective(Some(&conn("alice")));
            let _ = file.effective(Some(&ConnectionInfo::test())).map(|c| c.dump());
        }
        let bytes: Vec<u8> = (0..len * 3).map(|_| (next() & 0xff) as u8).collect();
        let _ = SshdConfigFile::parse_bytes(&bytes);
    }
}

/// Golden comparison with the real `sshd -T` (when OpenSSH's server is installed): for every
/// keyword we print, the lines agree, apart from the documented differences.
#[test]
fn dump_agrees_with_openssh_sshd_t() {
    let sshd = "/usr/sbin/sshd";
    if !std::path::Path::new(sshd).exists() {
        eprintln!("skipping: {sshd} is not installed (apt-get install openssh-server)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("conch-sshd-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("host_ed25519");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let key = key.display().to_string();
    let configs = [
        String::new(),
        "Port 2222\nPort 2223\nAddressFamily inet\nPermitRootLogin no\nUsePAM yes\n\
         LoginGraceTime 1m30s\nMaxStartups 10:30:60\nRekeyLimit 1G 1h\nLogLevel DEBUG3\n\
         AcceptEnv LANG LC_*\nSetEnv A=1 B=2\nSubsystem sftp /usr/lib/openssh/sftp-server -l INFO\n\
         AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/keys/%u\nAllowUsers alice bob@10.0.0.0/8\n\
         DenyGroups wheel\nPermitOpen localhost:22 [::1]:80\nPermitListen 8080\n\
         AuthenticationMethods publickey,password publickey\nClientAliveInterval 15\n\
         StreamLocalBindMask 0077\nX11Forwarding yes\nGatewayPorts clientspecified\n\
         AllowTcpForwarding local\nPermitUserEnvironment LANG\nUseDNS no\nCompression no\n\
         PrintMotd no\nBanner /etc/issue.net\nForceCommand /bin/true x\nTCPKeepAlive no\n\
         ListenAddress 127.0.0.1:2200\nListenAddress 127.0.0.2\nMaxAuthTries 3\nMaxSessions 4\n\
         PidFile /tmp/conch-test.pid\nVersionAddendum hello\nChannelTimeout session=5m\n\
         UnusedConnectionTimeout 1h\nPerSourceMaxStartups 5\nPerSourceNetBlockSize 24:48\n\
         IPQoS af21 cs1\nFingerprintHash md5\nPubkeyAuthOptions verify-required\n\
         UsePrivilegeSeparation sandbox\nMatch User alice\n  PasswordAuthentication no\n\
         Match Address 10.0.0.0/8\n  MaxAuthTries 2\n"
            .to_owned(),
    ];
    let specs = [None, Some("user=alice,addr=10.1.1.1,host=h,laddr=127.0.0.1,lport=22")];
    // Keywords whose lines legitimately differ: algorithm lists (we implement fewer
    // algorithms, see crypto::algorithms), Debian's own keywords and defaults, and lines an
    // OpenSSH built without Kerberos/GSSAPI would not print.
    let differ = [
        "ciphers",
        "macs",
        "kexalgorithms",
        "casignaturealgorithms",
        "hostbasedacceptedalgorithms",
        "hostkeyalgorithms",
        "pubkeyacceptedalgorithms",
        "ipqos",
        "kerberosauthentication",
        "kerberosorlocalpasswd",
        "kerberosticketcleanup",
        "gssapiauthentication",
        "gssapicleanupcredentials",
        "gssapikeyexchange",
        "gssapistrictacceptorcheck",
        "gssapistorecredentialsonrekey",
        "gssapikexalgorithms",
        "debianbanner",
        "revokedkeys",
    ];
    for config in &configs {
        let cfg = dir.join("sshd_config");
        std::fs::write(&cfg, format!("HostKey {key}\n{config}")).unwrap();
        for spec in specs {
            let mut cmd = std::process::Command::new(sshd);
            cmd.arg("-T").arg("-f").arg(&cfg);
            if let Some(spec) = spec {
                cmd.arg("-C").arg(spec);
            }
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "sshd -T: {}", String::from_utf8_lossy(&out.stderr));
            let theirs = String::from_utf8(out.stdout).unwrap();
            let fs = crate::config::OsFilesystem;
            let file = SshdLoader::new(&fs).load(cfg.to_str()).unwrap();
            let ci = match spec {
                Some(s) => ConnectionInfo::parse_test_spec(s).unwrap(),
                None => ConnectionInfo::test(),
            };
            let ours = file.effective(Some(&ci)).unwrap().dump();
            let keep = |text: &str| -> Vec<String> {
                text.lines()
                    .filter(|l| !differ.contains(&l.split(' ').next().unwrap_or("")))
                    .map(str::to_owned)
                    .collect()
            };
            assert_eq!(keep(&ours), keep(&theirs), "config:\n{config}\nspec: {spec:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Banner files are listed from the global setting and every `Match` block, once each, and
/// `none` is not a file.
#[test]
fn banner_files_come_from_every_match_block_once() {
    let file = load(
        "Banner /etc/issue.net\nMatch User alice\n  Banner /etc/alice\nMatch User bob\n  \
         Banner none\nMatch User carol\n  Banner /etc/issue.net\n",
    )
    .unwrap();
    assert_eq!(file.banner_files(), ["/etc/issue.net", "/etc/alice"]);
    assert!(load("Banner none\n").unwrap().banner_files().is_empty());
}

/// A key or principals command counts wherever it is set, `Match` blocks included, and `none`
/// runs nothing.
#[test]
fn key_commands_are_seen_in_match_blocks_too() {
    assert!(!load("Port 22\n").unwrap().runs_key_commands());
    assert!(!load("AuthorizedKeysCommand none\n").unwrap().runs_key_commands());
    assert!(load("AuthorizedKeysCommand /usr/bin/keys %u\n").unwrap().runs_key_commands());
    let in_match = "Match User alice\n  AuthorizedPrincipalsCommand /usr/bin/principals %u\n";
    assert!(load(in_match).unwrap().runs_key_commands());
    let off_in_match = "Match User alice\n  AuthorizedKeysCommand none\n";
    assert!(!load(off_in_match).unwrap().runs_key_commands());
    assert!(!load(in_match).unwrap().runs_authorized_keys_command());
    let keys_in_match = "Match User alice\n  AuthorizedKeysCommand /usr/bin/keys %u\n";
    assert!(load(keys_in_match).unwrap().runs_authorized_keys_command());
    assert!(!load(off_in_match).unwrap().runs_authorized_keys_command());
}

/// `RefuseConnection yes` counts wherever it is set; `no` refuses nothing.
#[test]
fn refuse_connection_is_seen_globally_and_in_match_blocks() {
    assert!(!load("Port 22\n").unwrap().refuses_connections());
    assert!(!load("RefuseConnection no\n").unwrap().refuses_connections());
    assert!(load("RefuseConnection yes\n").unwrap().refuses_connections());
    let in_match = "Match Address 192.0.2.0/24\n  RefuseConnection yes\n";
    assert!(load(in_match).unwrap().refuses_connections());
    assert!(!load("Match User alice\n  RefuseConnection no\n").unwrap().refuses_connections());
}

/// Only `Group` and `Invalid-User` criteria make a block's settings depend on the account.
#[test]
fn match_blocks_on_group_or_invalid_user_depend_on_the_account() {
    assert!(!load("Port 22\n").unwrap().matches_on_account());
    let by_name = "Match User alice Address 10.0.0.0/8 LocalPort 22\n  Banner none\n";
    assert!(!load(by_name).unwrap().matches_on_account());
    assert!(load("Match Group wheel\n  Banner none\n").unwrap().matches_on_account());
    assert!(load("Match Invalid-User\n  RefuseConnection yes\n").unwrap().matches_on_account());
}

/// Groups matter to a login only where `AllowGroups`, `DenyGroups` or `Match Group` appear:
/// globally, in a `Match` block, or in an included file.
#[test]
fn groups_are_used_only_where_allow_groups_deny_groups_or_match_group_appear() {
    let by_name = "Port 22\nAllowUsers alice bob\nMatch User alice\n  DenyUsers carol\n";
    assert!(!load(by_name).unwrap().uses_groups());
    assert!(load("AllowGroups staff\n").unwrap().uses_groups());
    assert!(load("DenyGroups games\n").unwrap().uses_groups());
    assert!(load("Match Address 192.0.2.0/24\n  AllowGroups staff\n").unwrap().uses_groups());
    assert!(load("Match Group wheel\n  Banner none\n").unwrap().uses_groups());
    assert!(!load("Match Invalid-User\n  RefuseConnection yes\n").unwrap().uses_groups());
    let mut fs = fs_with("Include /etc/ssh/inner.conf\n");
    fs.insert("/etc/ssh/inner.conf", "Match User alice\n DenyGroups games\n");
    assert!(SshdLoader::new(&fs).load(Some(PATH)).unwrap().uses_groups());
}

/// An `AuthenticationMethods` list naming a method OpenSSH does not know is an error when the
/// file is read, naming the file and line, wherever it is (a `Match` block that applies to no
/// one included), as sshd's `auth2_methods_valid` at parse time; a known method is not, even
/// one a server may lack (checked per login).
#[test]
fn an_unknown_authentication_method_is_an_error_naming_the_file_and_line_wherever_it_is() {
    let p = PATH;
    for (text, line) in [
        ("Port 22\nAuthenticationMethods hostbased,publickey publickey,kerberos\n", 2),
        ("Match User nobody-here\n  AuthenticationMethods kerberos\n", 2),
        ("AuthenticationMethods publickey,,password\n", 1),
        ("AuthenticationMethods PublicKey\n", 1),
        ("AuthenticationMethods publickey,\n", 1),
    ] {
        assert_eq!(
            error(text),
            format!("{p} line {line}: invalid AuthenticationMethods method list."),
            "{text:?}"
        );
    }
    let c = startup(
        "AuthenticationMethods hostbased,publickey gssapi-with-mic keyboard-interactive:pam\n",
    );
    assert_eq!(
        c.authentication_methods,
        ["hostbased,publickey", "gssapi-with-mic", "keyboard-interactive:pam"]
    );
}
