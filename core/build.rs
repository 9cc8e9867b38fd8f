//! Sets `cfg(twine_vfork)` where children start with the vfork-style clone of
//! `src/sys/unix/vfork.rs`: Linux with glibc or musl, on the architectures it is written for.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(twine_vfork)");
    let target = |name: &str| std::env::var(name).unwrap_or_default();
    let linux = target("CARGO_CFG_TARGET_OS") == "linux";
    let libc = matches!(target("CARGO_CFG_TARGET_ENV").as_str(), "gnu" | "musl");
    let arch = matches!(
        target("CARGO_CFG_TARGET_ARCH").as_str(),
        "x86_64" | "x86" | "aarch64" | "arm" | "riscv64"
    );
    if linux && libc && arch {
        println!("cargo::rustc-cfg=twine_vfork");
    }
}
