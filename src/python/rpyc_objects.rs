//! The rpyc objects every engine needs (`BaseNetref`, `get_id_pack`, rpyc's
//! own `Connection` and its handler functions...), looked up in the
//! installed rpyc once per process, and which of rpyc's handlers a
//! connection's class lets the engine serve natively. Hands `engine.rs`
//! what it puts in each connection's `PyWorld`.

use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyType;

fn rpyc_attr(py: Python<'_>, module: &str, name: &str) -> PyResult<Py<PyAny>> {
    Ok(py.import(module)?.getattr(name)?.unbind())
}

/// The rpyc objects every engine uses, looked up once per process.
pub(super) struct RpycObjects {
    pub(super) base_netref: Py<PyType>,
    pub(super) get_id_pack: Py<PyAny>,
    pub(super) stock_call: Py<PyAny>,
    pub(super) hasattr_static: Py<PyAny>,
    /// rpyc's `Connection`, whose methods an override is compared with.
    pub(super) stock_conn: Py<PyAny>,
    /// The installed rpyc is 6.x.
    pub(super) rpyc6: bool,
    /// rpyc's own functions for the handlers `attrs.rs` serves natively:
    /// the same for every connection, so kept once (not in each engine).
    pub(super) stock_handlers: Vec<(i64, Py<PyAny>)>,
}

pub(super) fn rpyc_objects(py: Python<'_>) -> PyResult<&'static RpycObjects> {
    static OBJECTS: OnceLock<RpycObjects> = OnceLock::new();
    if let Some(o) = OBJECTS.get() {
        return Ok(o);
    }
    let base_netref = py.import("rpyc.core.netref")?.getattr("BaseNetref")?.cast_into::<PyType>()?.unbind();
    let get_id_pack = rpyc_attr(py, "rpyc.lib", "get_id_pack")?;
    let protocol = py.import("rpyc.core.protocol")?;
    let stock_conn = protocol.getattr("Connection")?;
    let stock_call = stock_conn.getattr("_handle_call")?.unbind();
    let hasattr_static = protocol.getattr("hasattr_static")?.unbind();
    let stock_conn = stock_conn.unbind();
    let major = py.import("rpyc.version")?.getattr("version")?.get_item(0)?.str()?.to_str()?.parse::<i64>();
    let rpyc6 = major.is_ok_and(|m| m >= 6);
    let handlers = stock_conn.call_method0(py, "_request_handlers")?;
    let mut stock_handlers = Vec::new();
    for h in super::attrs::NATIVE_HANDLERS {
        if let Ok(f) = handlers.bind(py).get_item(h as i64) {
            stock_handlers.push((h as i64, f.unbind()));
        }
    }
    Ok(OBJECTS.get_or_init(|| RpycObjects {
        base_netref,
        get_id_pack,
        stock_call,
        hasattr_static,
        stock_conn,
        rpyc6,
        stock_handlers,
    }))
}

/// rpyc's own functions for the handlers `attrs.rs` serves natively, when
/// `conn`'s class keeps every method they call; otherwise none.
pub(super) fn native_handlers(
    py: Python<'_>,
    conn: &Bound<'_, PyAny>,
    rpyc: &'static RpycObjects,
) -> PyResult<&'static [(i64, Py<PyAny>)]> {
    let stock = rpyc.stock_conn.bind(py);
    let cls = conn.get_type();
    for method in ["_access_attr", "_check_attr", "_handle_getattr", "_handle_call"] {
        if !cls.getattr(method)?.is(&stock.getattr(method)?) {
            return Ok(&[]);
        }
    }
    Ok(&rpyc.stock_handlers)
}
