//! `conchd`: not yet implemented; see the project's open issues.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("conchd: not yet implemented");
    ExitCode::from(255)
}
