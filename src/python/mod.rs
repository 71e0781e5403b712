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
mod idle;
mod live_config;
mod logging;
mod lookup;
mod netref;
mod netref_slots;
mod proxies;
mod rpyc_objects;
mod tables;
mod transport;
mod world;

/// Entry points for the coverage-guided fuzzers in `fuzz/`; not API.
#[doc(hidden)]
pub mod fuzzing {
    use pyo3::prelude::*;

    /// Loads `data` as brine into Python objects (in an interpreter the
    /// caller has started); what loads must dump, and the dump must load
    /// again to the same bytes. Panics on a broken invariant.
    pub fn brine_round_trip(data: &[u8]) {
        Python::attach(|py| {
            let mut dec = crate::brine::Decoder::with_options(data, super::brine::decode_options(py));
            let Ok(obj) = super::brine::load_from(py, &mut dec) else { return };
            let mut once = Vec::new();
            if let Err(e) = super::brine::dump_into(&obj, &mut once, 0) {
                panic!("a loaded value does not dump: {e}");
            }
            let mut dec = crate::brine::Decoder::with_options(&once, super::brine::decode_options(py));
            let again = match super::brine::load_from(py, &mut dec) {
                Ok(o) => o,
                Err(e) => panic!("a dump does not load: {e}"),
            };
            let mut twice = Vec::new();
            if let Err(e) = super::brine::dump_into(&again, &mut twice, 0) {
                panic!("a reloaded value does not dump: {e}");
            }
            // Frozensets may iterate in another order once rebuilt; the
            // size is the invariant that holds for every value.
            assert_eq!(once.len(), twice.len(), "dump(load(dump(x))) changed size");
        })
    }
}

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
    proxies::register(m)?;
    netref::register(m)?;
    logging::register(m)?;
    #[cfg(feature = "cli")]
    cli::register(m)?;
    Ok(())
}

/// The extension's allocator (see Cargo.toml): the engine allocates and
/// frees a dozen small buffers per request, which mimalloc does in about
/// half of glibc's instructions.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
