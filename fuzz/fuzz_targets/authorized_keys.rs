//! Fuzz target `authorized_keys`: see [`twine_fuzz::authorized_keys`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::authorized_keys, data));
