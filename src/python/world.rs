//! The Python object world's leaves for the shared path
//! (`crate::protocol::exchange`): Python objects straight to boxed brine
//! bytes and back with rpyc's own tables (`_local_objects`, `_proxy_cache`)
//! and netref classes, rpyc's vinegar both ways, and rpyc's request
//! handlers, so every rpyc behaviour that hangs off them (refcounts,
//! `isinstance`, the netref class cache, a subclass's handler) is unchanged.
//!
//! A [`PySide`] is the per-call view the shared code works on: the engine's
//! [`PyWorld`], the Python connection, and (through them) the GIL token.

use std::borrow::Cow;

use pyo3::exceptions::{
    PyEOFError, PyKeyError, PyKeyboardInterrupt, PyStopIteration, PySystemExit, PyTimeoutError, PyValueError,
};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::brine::{DecodeOptions, Decoder};
use crate::protocol::core::{Core, Peer};
use crate::protocol::exchange::World;
use crate::protocol::message::Handler;
use crate::protocol::Error;
use crate::stream::Interruption;

use super::attrs::serve_natively;
use super::brine::{dump_into, is_dumpable, load_from};
use super::engine::PyWorld;
use super::exiting::detach;
use super::lookup::is_instance_of;
use super::netref_slots::{self as slots, Slot};
use super::tables::LocalObjects;

/// `object.__getattribute__(obj, name)`: reads a netref's own slots without
/// going through its `__getattribute__` (which would ask the peer).
pub(crate) fn generic_getattr<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: both pointers are valid for the call; the result is a new
    // reference or NULL with an exception set.
    unsafe {
        let r = ffi::PyObject_GenericGetAttr(obj.as_ptr(), name.as_ptr());
        Bound::from_owned_ptr_or_err(obj.py(), r)
    }
}

/// `object.__setattr__(obj, name, value)`.
pub(crate) fn generic_setattr(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, PyString>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    // SAFETY: valid pointers; returns -1 with an exception set on failure.
    let rc = unsafe { ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) };
    if rc < 0 {
        Err(PyErr::fetch(obj.py()))
    } else {
        Ok(())
    }
}

/// The Python world as the shared path sees it during one call.
pub(crate) struct PySide<'a, 'py> {
    pub(crate) w: &'a PyWorld,
    pub(crate) conn: Bound<'py, PyAny>,
}

impl<'py> PySide<'_, 'py> {
    fn py(&self) -> Python<'py> {
        self.conn.py()
    }
}

/// Wraps a Python exception to travel up through the engine to the call
/// that was waiting on this thread.
pub(crate) fn interruption(e: PyErr) -> Interruption {
    Interruption::new("a Python exception was raised while waiting", e)
}

/// The Python exception an interruption carries.
pub(crate) fn interruption_cause(py: Python<'_>, why: &Interruption) -> PyErr {
    match why.cause::<PyErr>() {
        Some(e) => e.clone_ref(py),
        None => PyValueError::new_err(why.to_string()),
    }
}

impl<'a, 'py> World for PySide<'a, 'py> {
    type Obj = Bound<'py, PyAny>;
    type Err = PyErr;

    fn core(&self) -> &Core {
        &self.w.core
    }

    fn peer(&self) -> &dyn Peer {
        self.w
    }

    fn decode_options(&self) -> DecodeOptions {
        self.w.opts
    }

    fn blocking<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        detach(self.py(), f)
    }

    fn is_plain(&self, obj: &Self::Obj, depth: usize) -> PyResult<bool> {
        is_dumpable(obj, depth)
    }

    fn dump(&self, obj: &Self::Obj, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
        dump_into(obj, out, depth)
    }

    fn tuple_items<'o>(&self, obj: &'o Self::Obj) -> Option<Cow<'o, [Self::Obj]>> {
        // The tuple's own item array: nothing copied, nothing allocated.
        let t = obj.cast_exact::<PyTuple>().ok()?;
        Some(Cow::Borrowed(t.as_slice()))
    }

    fn put_home_ref(&self, obj: &Self::Obj, out: &mut Vec<u8>) -> PyResult<bool> {
        let py = self.py();
        if !is_instance_of(obj, self.w.base_netref.bind(py))? {
            return Ok(false);
        }
        let owner = slots::get(obj, Slot::Conn)?;
        if !owner.is(&self.conn) {
            return Ok(false);
        }
        let id_pack = slots::get(obj, Slot::IdPack)?;
        dump_into(&id_pack, out, 0).map(|()| true)
    }

    fn put_local_ref(&self, obj: &Self::Obj, out: &mut Vec<u8>) -> PyResult<()> {
        let py = self.py();
        let id_pack = self.w.id_pack(obj)?;
        let table = self.w.local_objects.bind(py);
        match table.cast::<LocalObjects>() {
            Ok(native) => {
                let native = native.get();
                let new = native.insert(&id_pack, obj)?;
                let start = out.len();
                dump_into(&id_pack, out, 0)?;
                if let Some(slot) = new {
                    native.remember_wire(&out[start..], &id_pack, &slot);
                }
                Ok(())
            }
            Err(_) => {
                table.call_method1(pyo3::intern!(py, "add"), (&id_pack, obj))?;
                dump_into(&id_pack, out, 0)
            }
        }
    }

    fn load_value(&self, dec: &mut Decoder<'_>) -> PyResult<Self::Obj> {
        load_from(self.py(), dec)
    }

    fn make_tuple(&self, items: Vec<Self::Obj>) -> PyResult<Self::Obj> {
        Ok(PyTuple::new(self.py(), items)?.into_any())
    }

    fn local_object(&self, dec: &mut Decoder<'_>) -> PyResult<Self::Obj> {
        let py = self.py();
        let table = self.w.local_objects.bind(py);
        match table.cast::<LocalObjects>() {
            Ok(native) => native.get().get_from(py, dec),
            Err(_) => table.get_item(load_from(py, dec)?),
        }
    }

    fn proxy(&self, dec: &mut Decoder<'_>) -> PyResult<Self::Obj> {
        let py = self.py();
        let bad = |what: &str| PyValueError::new_err(format!("invalid boxed value from peer: {what}"));
        let raw = load_from(py, dec)?;
        let raw = raw.cast_into::<PyTuple>().map_err(|_| bad("id pack is not a tuple"))?;
        if raw.len() != 3 {
            return Err(bad("id pack is not a 3-tuple"));
        }
        // rpyc normalises the name with str(): a bytes name from an old
        // peer becomes its repr, as there. A str stays itself, and the
        // tuple just decoded (ours alone) is then that new tuple already.
        let id_pack = if raw.get_borrowed_item(0)?.is_exact_instance_of::<PyString>() {
            raw
        } else {
            let name = raw.get_item(0)?.str()?;
            PyTuple::new(py, [name.into_any(), raw.get_item(1)?, raw.get_item(2)?])?
        };
        match &self.w.fast_proxies {
            Some(fast) => fast.proxy(&self.conn, &id_pack),
            None => {
                let cache = self.w.proxy_cache.bind(py);
                let cached = cache.call_method1(pyo3::intern!(py, "get"), (&id_pack,))?;
                if !cached.is_none() {
                    let n = slots::get(&cached, Slot::Refcount)?.add(1)?;
                    slots::set(&cached, Slot::Refcount, &n)?;
                    return Ok(cached);
                }
                let proxy = self.conn.call_method1(pyo3::intern!(py, "_netref_factory"), (&id_pack,))?;
                cache.set_item(&id_pack, &proxy)?;
                Ok(proxy)
            }
        }
    }

    /// What rpyc raises for each way a call can end without a reply.
    fn error(&self, e: Error) -> PyErr {
        let py = self.py();
        match e {
            Error::Timeout => PyTimeoutError::new_err("result expired"),
            Error::Interrupted(why) => interruption_cause(py, &why),
            Error::Closed { reason } => {
                // Closed here before (rpyc's `close()` marks the connection
                // first): say what rpyc's stream says, not whatever ended
                // the socket then (often the peer's answer to our CLOSE).
                let closed_here = self
                    .conn
                    .getattr(pyo3::intern!(py, "_closed"))
                    .and_then(|v| v.is_truthy())
                    .unwrap_or(false);
                if closed_here {
                    return PyEOFError::new_err("stream has been closed");
                }
                // The peer is gone: rpyc's `serve` closes the connection.
                if let Err(err) = self.conn.call_method0(pyo3::intern!(py, "close")) {
                    log::debug!("closing after EOF failed: {err}");
                }
                PyEOFError::new_err(reason)
            }
            other => PyValueError::new_err(other.to_string()),
        }
    }

    fn load_exception(&self, dec: &mut Decoder<'_>) -> PyErr {
        let py = self.py();
        let exc = load_from(py, dec)
            .and_then(|raw| self.conn.call_method1(pyo3::intern!(py, "_unbox_exc"), (raw,)));
        match exc {
            // An instance, or the `StopIteration` class rpyc uses as a
            // shortcut: either is raisable.
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        }
    }

    /// What rpyc's `_dispatch_request` does with a failed request, in its
    /// order: keep the traceback (`rpyc.classic.pm` reads it), log, maybe
    /// re-raise locally, else answer with it.
    fn dump_exception(
        &self,
        err: PyErr,
        _handler: Option<i64>,
        out: &mut Vec<u8>,
    ) -> Result<(), Interruption> {
        let py = self.py();
        let r = (|| -> PyResult<Option<PyErr>> {
            let t = err.get_type(py);
            let value = err.value(py);
            let tb = err.traceback(py).map(|t| t.into_any()).unwrap_or_else(|| py.None().into_bound(py));
            self.conn.setattr(pyo3::intern!(py, "_last_traceback"), &tb)?;
            let config = self.w.config.bind(py);
            if let Some(logger) = config.get_item("logger")? {
                if logger.is_truthy()? && !t.is(py.get_type::<PyStopIteration>()) {
                    let kwargs = PyDict::new(py);
                    kwargs.set_item("exc_info", (&t, value, &tb))?;
                    logger.call_method("debug", ("Exception caught",), Some(&kwargs))?;
                }
            }
            let propagate = |key: &str| -> PyResult<bool> {
                match config.get_item(key)? {
                    Some(v) => v.is_truthy(),
                    None => Ok(false),
                }
            };
            if (t.is(py.get_type::<PySystemExit>()) && propagate("propagate_SystemExit_locally")?)
                || (t.is(py.get_type::<PyKeyboardInterrupt>())
                    && propagate("propagate_KeyboardInterrupt_locally")?)
            {
                return Ok(Some(err.clone_ref(py)));
            }
            let raw = self.conn.call_method1(pyo3::intern!(py, "_box_exc"), (t, value, tb))?;
            dump_into(&raw, out, 0)?;
            Ok(None)
        })();
        match r {
            Ok(None) => Ok(()),
            Ok(Some(local)) => Err(interruption(local)),
            Err(e) => Err(interruption(e)),
        }
    }

    fn handle(&self, handler: i64, args: &Self::Obj) -> PyResult<Self::Obj> {
        let py = self.py();
        let args =
            args.cast::<PyTuple>().map_err(|_| PyValueError::new_err("request arguments are not a tuple"))?;
        // rpyc looks the handler up with `self._HANDLERS[handler]`: an
        // unknown one is a KeyError, answered to the peer.
        let func = self.w.handlers.bind(py).get_item(handler)?.ok_or_else(|| PyKeyError::new_err(handler))?;
        // rpyc's own `_handle_call` is `obj(*args, **dict(kwargs))`, the
        // handler behind every remote call: done here, without its Python
        // frame. A subclass's handler, or a request of another shape, runs
        // through Python as usual.
        if func.is(self.w.stock_call.bind(py)) {
            if let Some(res) = call_natively(args)? {
                return Ok(res);
            }
        } else if let Some((h, _)) =
            self.w.native_handlers.iter().find(|(h, f)| *h == handler && func.is(f.bind(py)))
        {
            // rpyc's own attribute handler, on a class that overrides
            // nothing it calls: served natively, with its semantics.
            if let Some(h) = Handler::from_number(*h) {
                if let Some(res) = serve_natively(self, h, args)? {
                    return Ok(res);
                }
            }
        }
        let mut call_args = Vec::with_capacity(args.len() + 1);
        call_args.push(self.conn.clone());
        call_args.extend(args.iter());
        func.call1(PyTuple::new(py, call_args)?)
    }

    fn closed_by_peer(&self) {
        // rpyc's own CLOSE handler has already cleaned the connection up.
        self.w.core.shutdown("the peer closed the connection");
    }
}

/// `obj(*args, **dict(kwargs))` for the request `(obj, args[, kwargs])`, as
/// rpyc's `_handle_call`; `None` when the request is not of the shape the
/// native path covers (the Python handler then runs, and fails as rpyc's
/// would).
fn call_natively<'py>(request: &Bound<'py, PyTuple>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let n = request.len();
    if !(2..=3).contains(&n) {
        return Ok(None);
    }
    let Ok(args) = request.get_item(1)?.cast_into::<PyTuple>() else { return Ok(None) };
    let kwargs = if n == 3 {
        let kw = request.get_item(2)?;
        if let Ok(d) = kw.cast::<PyDict>() {
            Some(d.copy()?)
        } else if let Ok(pairs) = kw.cast::<PyTuple>() {
            if pairs.is_empty() {
                None
            } else {
                Some(PyDict::from_sequence(pairs.as_any())?)
            }
        } else {
            return Ok(None);
        }
    } else {
        None
    };
    let obj = request.get_item(0)?;
    Ok(Some(obj.call(args, kwargs.as_ref())?))
}
