//! Fuzz target `client_session`: see [`twine_fuzz::client_session`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::client_session, data));
