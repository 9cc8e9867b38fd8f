//! Fuzz target `sshd_config`: see [`twine_fuzz::sshd_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::sshd_config, data));
