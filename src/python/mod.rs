//! Python bindings: the native module `rpyc_rs._native`, built by maturin
//! with the `python` feature.
//!
//! Only glue lives here: converting between Python objects and the crate's
//! types, and the Python-facing classes and functions. The wire protocol
//! itself (brine, frames, the protocol engine) is in the rest of the crate,
//! so that the Rust API and the Python extension share one implementation.
//! The pure-Python side of the package (`python/rpyc_rs/`) re-exports what is
//! registered here; `python/rpyc_rs/_native.pyi` describes it for type
//! checkers and must be kept in step with it.

use pyo3::prelude::*;

mod attrs;
mod brine;
#[cfg(feature = "cli")]
mod cli;
mod engine;
mod exiting;
mod logging;
mod proxies;
mod tables;
mod transport;
mod world;

/// The module initialiser Python calls on `import rpyc_rs._native`.
///
/// Each submodule of this directory registers its own functions and classes,
/// so adding a binding touches only the file it belongs to.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    brine::register(m)?;
    engine::register(m)?;
    exiting::register(m)?;
    tables::register(m)?;
    logging::register(m)?;
    #[cfg(feature = "cli")]
    cli::register(m)?;
    Ok(())
}
