//! Fuzz target `private_key`: see [`twine_fuzz::private_key`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::private_key, data));
