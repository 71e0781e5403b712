//! libFuzzer target: see `rpyc_rs::fuzzing::dispatch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rpyc_rs::fuzzing::dispatch(data));
