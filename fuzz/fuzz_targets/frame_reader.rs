//! libFuzzer target: see `rpyc_rs::fuzzing::frame_reader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rpyc_rs::fuzzing::frame_reader(data));
