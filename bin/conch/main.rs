//! `conch`: not yet implemented; see the project's open issues.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("conch: not yet implemented");
    ExitCode::from(255)
}
