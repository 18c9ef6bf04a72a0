#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| pin_recovery::__internal::fuzz::envelope_text(data));
