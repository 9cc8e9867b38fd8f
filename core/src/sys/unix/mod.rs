//! The Unix backend (Linux, the BSDs, macOS).

pub(crate) mod fd;
pub(crate) mod process;
pub(crate) mod pty;
#[cfg(all(
    target_os = "linux",
    any(target_env = "gnu", target_env = "musl"),
    any(
        target_arch = "x86_64",
        target_arch = "x86",
        target_arch = "aarch64",
        target_arch = "arm",
        target_arch = "riscv64"
    )
))]
mod vfork;
