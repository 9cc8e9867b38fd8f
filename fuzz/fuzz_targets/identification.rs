//! Fuzz target `identification`: see [`twine_fuzz::identification`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::identification, data));
