//! Fuzz target `server_session`: see [`twine_fuzz::server_session`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::server_session, data));
