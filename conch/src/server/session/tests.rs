//! Session plans and environments, and real processes over a channel between two connection
//! layers.

use std::cell::RefCell;
use std::rc::Rc;

use twine_core::basic::{LineProtocol, LineReceiver, Lines};
use twine_core::process::ProcessStatus;
use twine_core::Reactor;

use super::unix::{exit_requests, session_environment};
use super::*;
use crate::connection::msgs::ChannelRequest;
use crate::connection::Config;
use crate::server::channel::tests::{Rig, Turns};
use crate::server::{ConnectionFacts, ConnectionId};

fn account() -> Account {
    Account {
        name: "alice".into(),
        uid: 1000,
        gid: 1000,
        home: "/home/alice".into(),
        shell: "/bin/bash".into(),
    }
}

fn login(restrictions: Restrictions) -> Login {
    let facts = ConnectionFacts::new(
        ConnectionId(3),
        "192.0.2.1:40000".parse().ok(),
        "198.51.100.2:22".parse().ok(),
    );
    Login::new("alice", restrictions, Rc::new(facts)).with_account(Some(account()))
}

fn value<'a>(env: &'a [(String, Vec<u8>)], key: &str) -> Option<&'a [u8]> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
}

/// A shell is the account's shell as a login shell; a command runs under `shell -c`; a
/// subsystem runs its configured command; an unknown subsystem is refused.
#[test]
fn plans_shells_commands_and_subsystems() {
    let reactor = Reactor::new().unwrap();
    let sessions =
        UnixSessions::new(&reactor).with_subsystem("sftp", "/usr/lib/openssh/sftp-server");
    let plan = sessions
        .plan(&SessionInfo::new(login(Restrictions::none()), SessionCommand::Shell), &account())
        .unwrap();
    assert_eq!(plan.program, std::path::Path::new("/bin/bash"));
    assert_eq!(plan.arg0, "-bash");
    assert!(plan.args.is_empty());
    let exec =
        SessionInfo::new(login(Restrictions::none()), SessionCommand::Exec(b"ls -l".to_vec()));
    let plan = sessions.plan(&exec, &account()).unwrap();
    assert_eq!(
        (plan.arg0.as_os_str(), plan.args.as_slice()),
        ("bash".as_ref(), &["-c".into(), "ls -l".into()][..])
    );
    let sftp =
        SessionInfo::new(login(Restrictions::none()), SessionCommand::Subsystem("sftp".into()));
    let plan = sessions.plan(&sftp, &account()).unwrap();
    assert_eq!(plan.args, ["-c", "/usr/lib/openssh/sftp-server"]);
    let unknown =
        SessionInfo::new(login(Restrictions::none()), SessionCommand::Subsystem("x".into()));
    assert_eq!(
        sessions.plan(&unknown, &account()).unwrap_err().kind(),
        twine_core::ErrorKind::NotFound
    );
}

/// A forced command replaces what the client asked, which becomes `SSH_ORIGINAL_COMMAND`.
#[test]
fn a_forced_command_replaces_the_request() {
    let restrictions = Restrictions::none().with_forced_command("/usr/bin/backup");
    for (asked, original) in [
        (SessionCommand::Exec(b"rm -rf /".to_vec()), Some(b"rm -rf /".to_vec())),
        (SessionCommand::Subsystem("sftp".into()), Some(b"sftp".to_vec())),
        (SessionCommand::Shell, None),
    ] {
        let info = SessionInfo::new(login(restrictions.clone()), asked).with_forced_command();
        assert_eq!(info.command, SessionCommand::Exec(b"/usr/bin/backup".to_vec()));
        assert!(info.forced);
        assert_eq!(info.original_command, original);
        let env = session_environment(&info, &account(), false);
        assert_eq!(value(&env, "SSH_ORIGINAL_COMMAND"), original.as_deref());
    }
    let free =
        SessionInfo::new(login(Restrictions::none()), SessionCommand::Shell).with_forced_command();
    assert!(!free.forced && free.command == SessionCommand::Shell);
}

/// The environment is sshd's: the client's accepted variables cannot override the login
/// variables; `environment=` applies only when permitted; connection variables are set.
#[test]
fn builds_sshds_environment() {
    let mut restrictions = Restrictions::none();
    restrictions.environment = vec![("FROM_KEY".into(), "yes".into())];
    let mut login = login(restrictions);
    login.environment = vec![("FROM_PAM".into(), "1".into())];
    let mut info = SessionInfo::new(login, SessionCommand::Shell);
    info.env = vec![("LANG".into(), b"C.UTF-8".to_vec()), ("USER".into(), b"root".to_vec())];
    info.pty = Some(PtyRequest {
        term: "xterm".into(),
        size: Default::default(),
        modes: Default::default(),
    });
    let env = session_environment(&info, &account(), false);
    assert_eq!(value(&env, "LANG"), Some(&b"C.UTF-8"[..]));
    assert_eq!(value(&env, "USER"), Some(&b"alice"[..]));
    assert_eq!(value(&env, "LOGNAME"), Some(&b"alice"[..]));
    assert_eq!(value(&env, "HOME"), Some(&b"/home/alice"[..]));
    assert_eq!(value(&env, "SHELL"), Some(&b"/bin/bash"[..]));
    assert_eq!(value(&env, "MAIL"), Some(&b"/var/mail/alice"[..]));
    assert_eq!(value(&env, "TERM"), Some(&b"xterm"[..]));
    assert_eq!(value(&env, "FROM_PAM"), Some(&b"1"[..]));
    assert_eq!(value(&env, "FROM_KEY"), None);
    assert_eq!(value(&env, "SSH_CLIENT"), Some(&b"192.0.2.1 40000 22"[..]));
    assert_eq!(value(&env, "SSH_CONNECTION"), Some(&b"192.0.2.1 40000 198.51.100.2 22"[..]));
    assert!(value(&env, "PATH").is_some());
    let env = session_environment(&info, &account(), true);
    assert_eq!(value(&env, "FROM_KEY"), Some(&b"yes"[..]));
    assert!(env_accepted("LC_ALL", &["LANG".into(), "LC_*".into()]));
    assert!(!env_accepted("LD_PRELOAD", &["LANG".into(), "LC_*".into()]));
    assert!(!env_accepted("LANG", &[]));
}

/// Over pipes (inetd mode) neither end has an address: the connection variables still name
/// them, as `UNKNOWN` port 65535, as sshd does.
#[test]
fn connection_variables_say_unknown_when_the_ends_have_no_address() {
    let facts = ConnectionFacts::new(ConnectionId(4), None, None);
    let login =
        Login::new("alice", Restrictions::none(), Rc::new(facts)).with_account(Some(account()));
    let info = SessionInfo::new(login, SessionCommand::Shell);
    let env = session_environment(&info, &account(), false);
    assert_eq!(value(&env, "SSH_CLIENT"), Some(&b"UNKNOWN 65535 65535"[..]));
    assert_eq!(value(&env, "SSH_CONNECTION"), Some(&b"UNKNOWN 65535 UNKNOWN 65535"[..]));
}

/// Exit codes become `exit-status`, signals `exit-signal` with the RFC's names.
#[test]
fn reports_exit_codes_and_signals() {
    assert_eq!(exit_requests(ProcessStatus::Exited(44)), [ChannelRequest::ExitStatus { code: 44 }]);
    let killed =
        exit_requests(ProcessStatus::Signaled { signal: libc::SIGKILL, core_dumped: false });
    assert!(
        matches!(&killed[..], [ChannelRequest::ExitSignal { signal, core_dumped: false, .. }] if signal == "KILL")
    );
    let odd = exit_requests(ProcessStatus::Signaled { signal: libc::SIGWINCH, core_dumped: true });
    assert!(
        matches!(&odd[..], [ChannelRequest::ExitSignal { signal, core_dumped: true, .. }] if signal == "SIG@openssh.com")
    );
    assert!(exit_requests(ProcessStatus::Unknown).is_empty());
}

/// A rig whose scheduled calls run on a real reactor, with the current user logged in.
fn process_rig() -> (Rig, Reactor, Login) {
    let reactor = Reactor::new().unwrap();
    let rig =
        Rig::with_turns(Config::default(), Config::default(), Turns::Reactor(reactor.clone()));
    let me = Account::current().unwrap();
    let facts = Rc::new(ConnectionFacts::new(ConnectionId(1), None, None));
    let me = Account { shell: "/bin/sh".into(), ..me };
    let login = Login::new(me.name.clone(), Restrictions::none(), facts).with_account(Some(me));
    (rig, reactor, login)
}

fn start(
    rig: &mut Rig,
    backend: &dyn SessionBackend,
    info: SessionInfo,
) -> Box<dyn SessionControl> {
    let id = rig.open_session();
    let channel = SessionChannel::new(Rc::clone(&rig.channels), id);
    backend.start(SessionStart::new(Rc::new(info), channel)).unwrap()
}

fn closed(rig: &Rig) -> bool {
    rig.client_events.iter().any(|e| e == "closed")
}

fn without_data(rig: &Rig) -> Vec<String> {
    rig.client_events.iter().filter(|e| *e != "data").cloned().collect()
}

/// A command's output, error output and exit code arrive in order: data, EOF, `exit-status`,
/// CLOSE.
#[test]
fn runs_a_command_over_pipes_with_exit_status() {
    let (mut rig, reactor, login) = process_rig();
    let sessions = UnixSessions::new(&reactor);
    let command = b"printf out; printf err >&2; exit 44".to_vec();
    let _control =
        start(&mut rig, &sessions, SessionInfo::new(login, SessionCommand::Exec(command)));
    rig.pump_until(500, closed);
    assert_eq!(rig.received, b"out");
    let events = without_data(&rig);
    assert!(events.contains(&"stderr \"err\"".to_owned()), "{events:?}");
    let tail: Vec<&str> =
        events.iter().map(String::as_str).filter(|e| !e.starts_with("stderr")).collect();
    assert_eq!(tail, ["eof", "exit-status 44", "close", "closed"]);
}

/// The client's data and EOF reach the command's standard input.
#[test]
fn feeds_the_clients_data_to_standard_input() {
    let (mut rig, reactor, login) = process_rig();
    let sessions = UnixSessions::new(&reactor);
    let _control = start(
        &mut rig,
        &sessions,
        SessionInfo::new(login, SessionCommand::Exec(b"tr a-z A-Z".to_vec())),
    );
    let id = rig.client_channel.unwrap();
    rig.client.send_data(id, b"shout\n").unwrap();
    rig.client.send_eof(id).unwrap();
    rig.pump_until(500, closed);
    assert_eq!(rig.received, b"SHOUT\n");
    assert!(rig.client_events.contains(&"exit-status 0".to_owned()));
}

/// A `signal` request reaches the command's process group, and the signal that ended it is
/// reported as `exit-signal`.
#[test]
fn forwards_signals_and_reports_exit_signal() {
    let (mut rig, reactor, login) = process_rig();
    let sessions = UnixSessions::new(&reactor);
    let info = SessionInfo::new(login, SessionCommand::Exec(b"echo ready; exec sleep 30".to_vec()));
    let mut control = start(&mut rig, &sessions, info);
    rig.pump_until(500, |rig| rig.received == b"ready\n");
    assert!(!control.signal("NOTASIGNAL"));
    assert!(control.signal("TERM"));
    rig.pump_until(500, closed);
    assert!(rig.client_events.contains(&"exit-signal TERM".to_owned()), "{:?}", rig.client_events);
    assert!(!control.signal("TERM"), "the process is gone");
}

/// On a pty, the command sees a terminal of the requested size, and its output arrives as
/// data; `break` is acknowledged only with a pty.
#[test]
fn runs_on_a_pty_of_the_requested_size() {
    let (mut rig, reactor, login) = process_rig();
    let sessions = UnixSessions::new(&reactor);
    let mut info = SessionInfo::new(login, SessionCommand::Exec(b"tty; stty size".to_vec()));
    let size = WindowSize { cols: 100, rows: 30, width_px: 0, height_px: 0 };
    info.pty = Some(PtyRequest { term: "vt100".into(), size, modes: Default::default() });
    let mut control = start(&mut rig, &sessions, info);
    assert!(control.break_requested(100));
    control.window_changed(WindowSize { cols: 100, rows: 30, width_px: 0, height_px: 0 });
    rig.pump_until(500, closed);
    let text = String::from_utf8_lossy(&rig.received).into_owned();
    assert!(text.starts_with("/dev/pts/"), "{text:?}");
    assert!(text.contains("30 100"), "{text:?}");
    assert!(rig.client_events.contains(&"exit-status 0".to_owned()));
}

struct Greeter;

impl LineProtocol for Greeter {
    fn line_received(&mut self, lines: &mut Lines, line: &[u8]) {
        lines.send_line(&[b"hi ", line].concat());
        lines.lose_connection();
    }
}

/// An in-process session runs the application's protocol over the channel, sees the
/// session's details, and hears window changes.
#[test]
fn runs_an_in_process_protocol() {
    let mut rig =
        Rig::with_turns(Config::default(), Config::default(), Turns::Clock(Default::default()));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let record = Rc::clone(&seen);
    let sessions = InProcessSessions::new(move |info| {
        let record = Rc::clone(&record);
        record.borrow_mut().push(format!("{} {:?}", info.login.user, info.term()));
        info.on_window_change(move |size| {
            record.borrow_mut().push(format!("{}x{}", size.cols, size.rows))
        });
        Some(Box::new(LineReceiver::new(Greeter).with_delimiter(b"\n")))
    });
    let mut info = SessionInfo::new(login(Restrictions::none()), SessionCommand::Shell);
    info.pty = Some(PtyRequest {
        term: "xterm".into(),
        size: Default::default(),
        modes: Default::default(),
    });
    let mut control = start(&mut rig, &sessions, info);
    control.window_changed(WindowSize { cols: 132, rows: 43, width_px: 0, height_px: 0 });
    let id = rig.client_channel.unwrap();
    rig.client.send_data(id, b"alice\n").unwrap();
    rig.pump();
    assert_eq!(rig.received, b"hi alice\n");
    assert!(closed(&rig));
    assert_eq!(*seen.borrow(), ["alice Some(\"xterm\")", "132x43"]);
}

/// A spawner reads a user's supplementary groups once for the sessions it starts within
/// `GROUPS_KEPT`; a read for another user or primary group, or after that, goes to the
/// database again; a failed read is not kept.
#[test]
fn supplementary_groups_are_read_once_per_user_for_a_burst_of_sessions() {
    use super::{KeptGroups, GROUPS_KEPT};
    use std::time::{Duration, Instant};
    let reads = Cell::new(0);
    let read = |ids: &[u32]| {
        reads.set(reads.get() + 1);
        Ok::<_, twine_core::Error>(ids.to_vec())
    };
    let mut kept = KeptGroups::<Vec<u32>>::default();
    let start = Instant::now();
    assert_eq!(kept.get("alice", 100, start, || read(&[100, 27])).unwrap(), [100, 27]);
    let soon = start + GROUPS_KEPT - Duration::from_millis(1);
    assert_eq!(kept.get("alice", 100, soon, || read(&[100])).unwrap(), [100, 27]);
    assert_eq!(reads.get(), 1, "a second session in the burst read the database");
    assert_eq!(kept.get("bob", 100, soon, || read(&[100, 4])).unwrap(), [100, 4]);
    assert_eq!(kept.get("bob", 200, soon, || read(&[200])).unwrap(), [200]);
    assert_eq!(reads.get(), 3);
    let later = soon + GROUPS_KEPT;
    assert_eq!(kept.get("bob", 200, later, || read(&[200, 5])).unwrap(), [200, 5]);
    assert_eq!(reads.get(), 4, "groups were kept past GROUPS_KEPT");
    let failed = kept.get("carol", 300, later, || {
        Err(twine_core::Error::new(twine_core::ErrorKind::Other, "no database"))
    });
    assert!(failed.is_err());
    assert_eq!(kept.get("bob", 200, later, || read(&[0])).unwrap(), [200, 5]);
}
