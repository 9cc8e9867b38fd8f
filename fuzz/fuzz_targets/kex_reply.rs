//! Fuzz target `kex_reply`: see [`twine_fuzz::kex_reply`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::kex_reply, data));
