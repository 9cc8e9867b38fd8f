//! Fuzz target `userauth`: see [`twine_fuzz::userauth`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::userauth, data));
