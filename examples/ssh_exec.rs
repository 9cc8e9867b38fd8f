//! Runs a command on an SSH server and exits with its status:
//! `ssh_exec [-i KEY] [-k KNOWN_HOSTS] user@host[:port] command...`
//! (defaults: `~/.ssh/id_ed25519`, `~/.ssh/known_hosts`, checked strictly).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use twine::conch::client::{self, ClientConfig, ClientError, StrictHostKeyChecking, Target};
use twine::internet::Reactor;

fn main() -> ExitCode {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let (mut key, mut known_hosts) = (home.join(".ssh/id_ed25519"), home.join(".ssh/known_hosts"));
    let mut args = std::env::args().skip(1).peekable();
    while let Some(flag) = args.next_if(|arg| arg == "-i" || arg == "-k") {
        let value = PathBuf::from(args.next().unwrap_or_default());
        *(if flag == "-i" { &mut key } else { &mut known_hosts }) = value;
    }
    let destination = args.next().unwrap_or_default();
    let command = args.collect::<Vec<_>>().join(" ");
    let (user, host) = destination.split_once('@').unwrap_or(("root", &destination));
    let config = ClientConfig::new(user)
        .identity_file(&key)
        .known_hosts(&known_hosts, StrictHostKeyChecking::Yes);
    let target = host.parse::<Target>();
    let result = Reactor::new().map_err(ClientError::Local).and_then(|reactor| {
        let handle = reactor.clone();
        let output = async move {
            let connection = client::connect(&handle, target?, config).await?;
            connection.run(command, 1 << 30).await
        };
        reactor.run_until(async { Ok(output.await) }).map_err(ClientError::Local)?
    });
    match result {
        Ok(output) => {
            let _ = std::io::stdout().write_all(&output.stdout);
            let _ = std::io::stderr().write_all(&output.stderr);
            ExitCode::from(output.status.openssh_exit_code())
        }
        Err(error) => {
            eprintln!("ssh_exec: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
