//! Fuzz target `ssh_config`: see [`twine_fuzz::ssh_config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::ssh_config, data));
