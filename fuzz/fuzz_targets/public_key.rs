//! Fuzz target `public_key`: see [`twine_fuzz::public_key`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::public_key, data));
