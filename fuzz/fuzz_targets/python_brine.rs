//! libFuzzer target: brine bytes into Python objects and back, in an
//! embedded CPython (see `rpyc_rs::python_fuzzing::brine_round_trip`).
#![no_main]

use std::sync::Once;

static START: Once = Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    START.call_once(pyo3::Python::initialize);
    rpyc_rs::python_fuzzing::brine_round_trip(data);
});
