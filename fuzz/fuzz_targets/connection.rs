//! Fuzz target `connection`: see [`twine_fuzz::connection`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::connection, data));
