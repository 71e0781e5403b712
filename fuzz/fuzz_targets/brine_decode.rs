//! libFuzzer target: see `rpyc_rs::fuzzing::brine_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rpyc_rs::fuzzing::brine_decode(data));
