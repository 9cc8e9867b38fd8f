//! Fuzz target `packet_decode`: see [`twine_fuzz::packet_decode`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::packet_decode, data));
