//! Fuzz target `kexinit`: see [`twine_fuzz::kexinit`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| twine_fuzz::run(twine_fuzz::kexinit, data));
