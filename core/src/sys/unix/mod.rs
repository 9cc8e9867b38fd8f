//! The Unix backend (Linux, the BSDs, macOS).

pub(crate) mod fd;
pub(crate) mod process;
pub(crate) mod pty;
#[cfg(twine_vfork)]
mod vfork;
