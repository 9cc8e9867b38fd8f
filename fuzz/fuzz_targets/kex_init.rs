//! Fuzz target `kex_init`: see [`twine_fuzz::kex_init`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::kex_init, data));
