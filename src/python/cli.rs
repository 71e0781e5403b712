//! `rpyc_rs._native.cli_main`: the `rpyc-rs` tool inside the extension, so
//! that `pip install` can put the same command on PATH as `cargo install`
//! (a console script, `python/rpyc_rs/_cli.py`, calls it).

use std::ffi::OsString;

use pyo3::prelude::*;

/// Runs the tool on `argv` (the program name first) and returns its exit
/// status. The GIL is released for the whole run: the tool is Rust only.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| crate::cli::main(argv))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(cli_main, m)?)
}
