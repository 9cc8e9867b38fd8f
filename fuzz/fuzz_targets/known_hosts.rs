//! Fuzz target `known_hosts`: see [`twine_fuzz::known_hosts`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::known_hosts, data));
