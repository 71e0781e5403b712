//! Making proxies (netrefs) for the peer's objects without Python frames:
//! rpyc's `_unbox` of a `REMOTE_REF` and `_netref_factory`, for a connection
//! that uses rpyc-rs's own factory and rpyc's own proxy cache.
//!
//! Every step is rpyc's and keeps rpyc's objects: the live proxy in
//! `conn._proxy_cache` (a `WeakValueDict`, whose `_dict` holds
//! `key -> weakref` with a callback that pops the key) gets one more
//! reference counted; otherwise the proxy class comes from
//! `conn._netref_classes_cache` (classes), `netref.builtin_classes_cache`
//! (builtin types) or the per-class cache of instances (see
//! `_connection.py`), and the instance is made as `BaseNetref.__init__`
//! makes it. Whatever needs the peer (an INSPECT for a class not seen yet)
//! goes through `conn._netref_factory` in Python as before.
//!
//! Also here: [`syncreq`] and [`asyncreq`], rpyc's two netref helpers
//! without their Python frames; `install()` puts them in
//! `rpyc.core.netref`, where every netref method looks them up.

use pyo3::exceptions::PyKeyError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyTuple, PyType, PyWeakrefReference};

use super::engine::{bound_engine, EngineMethod};
use super::lookup::class_attr_is;
use super::netref::trampoline;
use super::netref_slots::{self as slots, Slot};
use crate::protocol::message::Handler;

/// The objects the fast path reads, looked up once per connection.
pub(crate) struct FastProxies {
    /// `conn._proxy_cache._dict`
    cache: Py<PyDict>,
    /// `conn._netref_classes_cache`
    classes: Py<PyDict>,
    /// `conn._instance_netref_classes`
    instance_classes: Py<PyDict>,
    /// `rpyc.core.netref.builtin_classes_cache`
    builtin_classes: Py<PyDict>,
    /// `BaseNetref.__init__`, which the fast path does itself.
    base_init: Py<PyAny>,
    /// `object.__new__`
    object_new: Py<PyAny>,
}

impl FastProxies {
    /// The fast path for `conn`, when it has rpyc-rs's `_netref_factory`
    /// and rpyc's own `WeakValueDict` as its proxy cache; `None` leaves
    /// proxy making to Python (a subclass's factory runs as written).
    pub(crate) fn new(conn: &Bound<'_, PyAny>) -> PyResult<Option<FastProxies>> {
        let py = conn.py();
        let ours = py.import("rpyc_rs._connection")?.getattr("Connection")?.getattr("_netref_factory")?;
        if !conn.get_type().getattr("_netref_factory")?.is(&ours) {
            return Ok(None);
        }
        let cache = conn.getattr("_proxy_cache")?;
        let weak_value_dict = py.import("rpyc.lib.colls")?.getattr("WeakValueDict")?;
        if !cache.get_type().is(&weak_value_dict) {
            return Ok(None);
        }
        let netref = py.import("rpyc.core.netref")?;
        Ok(Some(FastProxies {
            cache: cache.getattr("_dict")?.cast_into::<PyDict>()?.unbind(),
            classes: conn.getattr("_netref_classes_cache")?.cast_into::<PyDict>()?.unbind(),
            instance_classes: conn.getattr("_instance_netref_classes")?.cast_into::<PyDict>()?.unbind(),
            builtin_classes: netref.getattr("builtin_classes_cache")?.cast_into::<PyDict>()?.unbind(),
            base_init: netref.getattr("BaseNetref")?.getattr("__init__")?.unbind(),
            object_new: py.get_type::<PyAny>().getattr("__new__")?.unbind(),
        }))
    }

    /// The proxy for `id_pack` (already normalised as rpyc's `_unbox` does).
    pub(crate) fn proxy<'py>(
        &self,
        conn: &Bound<'py, PyAny>,
        id_pack: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = conn.py();
        let cache = self.cache.bind(py);
        // `_proxy_cache.get(id_pack)`: a live proxy counts one more reference.
        if let Some(wr) = cache.get_item(id_pack)? {
            let live = wr.call0()?;
            if !live.is_none() {
                let n = slots::get(&live, Slot::Refcount)?.add(1)?;
                slots::set(&live, Slot::Refcount, &n)?;
                return Ok(live);
            }
        }
        let proxy = match self.class_for(id_pack)? {
            Some(cls) => self.instantiate(conn, &cls, id_pack)?,
            // A class not seen yet: rpyc-rs's factory asks the peer.
            None => conn.call_method1(pyo3::intern!(py, "_netref_factory"), (id_pack,))?,
        };
        // `_proxy_cache[id_pack] = proxy`, as rpyc's WeakValueDict stores it.
        let wr = PyWeakrefReference::new_with(&proxy, cache_remover(cache, id_pack.as_any())?)?;
        cache.set_item(id_pack, wr)?;
        Ok(proxy)
    }

    /// The proxy class `_netref_factory` would pick without asking the peer.
    fn class_for<'py>(&self, id_pack: &Bound<'py, PyTuple>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = id_pack.py();
        let name = id_pack.get_item(0)?;
        let instance = id_pack.get_item(2)?;
        // `instance == 0`; an exact int (what any peer sends) is read
        // rather than compared through the rich comparison.
        let is_class = match instance.cast_exact::<PyInt>() {
            Ok(i) => i.extract::<i64>().is_ok_and(|v| v == 0),
            Err(_) => instance.eq(0)?,
        };
        if is_class {
            if let Some(cls) = self.classes.bind(py).get_item(id_pack)? {
                return Ok(Some(cls));
            }
        }
        if let Some(cls) = self.builtin_classes.bind(py).get_item(&name)? {
            return Ok(Some(cls));
        }
        if !is_class {
            let key = PyTuple::new(py, [name, id_pack.get_item(1)?])?;
            return self.instance_classes.bind(py).get_item(key);
        }
        Ok(None)
    }

    /// `cls(conn, id_pack)`: `BaseNetref.__init__` done here when the class
    /// has it unchanged.
    fn instantiate<'py>(
        &self,
        conn: &Bound<'py, PyAny>,
        cls: &Bound<'py, PyAny>,
        id_pack: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = conn.py();
        let plain = match cls.cast::<PyType>() {
            Ok(tp) => {
                class_attr_is(tp, pyo3::intern!(py, "__init__"), self.base_init.bind(py))?
                    && class_attr_is(tp, pyo3::intern!(py, "__new__"), self.object_new.bind(py))?
            }
            Err(_) => false,
        };
        let cls = match cls.cast::<PyType>() {
            Ok(cls) if plain => cls,
            _ => return cls.call1((conn, id_pack)),
        };
        let obj = self.object_new(cls)?;
        slots::set(&obj, Slot::Conn, conn)?;
        slots::set(&obj, Slot::IdPack, id_pack)?;
        slots::set(&obj, Slot::Refcount, &1i64.into_pyobject(py)?.into_any())?;
        Ok(obj)
    }
}

impl FastProxies {
    /// `object.__new__(cls)`, for a class whose `__new__` is `object`'s:
    /// what that does (allocate with the class's `tp_alloc`) without the
    /// call. An abstract class gets the call, and its TypeError.
    fn object_new<'py>(&self, cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyAny>> {
        let py = cls.py();
        let tp = cls.as_type_ptr();
        // SAFETY: `tp` is a live type object (`cls` holds a reference);
        // `tp_alloc(tp, 0)` returns a new reference or NULL with an
        // exception set.
        unsafe {
            if (*tp).tp_flags & ffi::Py_TPFLAGS_IS_ABSTRACT != 0 {
                return self.object_new.bind(py).call1((cls,));
            }
            let alloc = (*tp).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
            Bound::from_owned_ptr_or_err(py, alloc(tp, 0))
        }
    }
}

/// A C function's definition; CPython keeps a pointer to it for the life
/// of every function made from it, so these are static.
struct FunctionDef(ffi::PyMethodDef);

// SAFETY: never written after being built here; their raw pointers are to
// static strings and functions.
unsafe impl Sync for FunctionDef {}

static REMOVER: FunctionDef = FunctionDef(ffi::PyMethodDef {
    ml_name: c"_proxy_cache_remover".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer { PyCFunction: remove_cached },
    ml_flags: ffi::METH_O,
    ml_doc: c"rpyc's WeakValueDict remover (rpyc-rs): _dict.pop(key, None).".as_ptr(),
});

/// rpyc's `WeakValueDict` remover for `key` in `dict`, the callback of the
/// weakref the cache holds: when the proxy dies, its key goes. A C function
/// bound to `(dict, key)` rather than an object with a `__call__`: one runs
/// for every proxy that dies, and a C function is called without a frame
/// or an argument parser.
fn cache_remover<'py>(dict: &Bound<'py, PyDict>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = dict.py();
    let bound = PyTuple::new(py, [dict.as_any(), key])?;
    // SAFETY: the definition is static and only read by CPython; `bound`
    // is a live object the function keeps a reference to. The result is a
    // new reference or NULL with an exception set.
    unsafe {
        let def = std::ptr::addr_of!(REMOVER.0).cast_mut();
        Bound::from_owned_ptr_or_err(py, ffi::PyCFunction_NewEx(def, bound.as_ptr(), std::ptr::null_mut()))
    }
}

/// The remover's body: `_dict.pop(key, None)` with `(dict, key)` as `bound`.
unsafe extern "C" fn remove_cached(bound: *mut ffi::PyObject, _wr: *mut ffi::PyObject) -> *mut ffi::PyObject {
    trampoline(|py| {
        // SAFETY: `bound` is the `(dict, key)` tuple `cache_remover` made,
        // alive while the function is.
        let bound = unsafe { Bound::from_borrowed_ptr(py, bound) };
        let bound = bound.cast::<PyTuple>()?;
        let (dict, key) = (bound.get_item(0)?, bound.get_item(1)?);
        match dict.cast::<PyDict>()?.del_item(key) {
            Err(e) if !e.is_instance_of::<PyKeyError>(py) => Err(e),
            _ => Ok(py.None().into_bound(py)),
        }
    })
}

/// Which of the connection's two request methods a netref helper calls.
#[derive(Clone, Copy)]
pub(crate) enum Request {
    /// `conn.sync_request`: waits for the reply and returns it.
    Sync,
    /// `conn.async_request`: what a netref's `__del__` sends its DEL with.
    Async,
}

/// `conn.<method>(handler, proxy, *args)` with `conn` read as
/// `object.__getattribute__(proxy, "____conn__")`: the body of rpyc's
/// `syncreq` and `asyncreq`, and so of every netref method. When the
/// connection's method is its engine's own (an `rpyc_rs.Connection` that
/// does not override it), the engine is called directly, without a Python
/// call or an argument tuple in between; any other connection (rpyc's own,
/// or a subclass with its own method) gets the Python call.
pub(crate) fn request_on<'py>(
    proxy: &Bound<'py, PyAny>,
    kind: Request,
    handler: &Bound<'py, PyAny>,
    args: &[Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    let py = proxy.py();
    let conn = slots::get(proxy, Slot::Conn)?;
    let (method, engine_method) = match kind {
        Request::Sync => (pyo3::intern!(py, "sync_request"), EngineMethod::SyncRequest),
        Request::Async => (pyo3::intern!(py, "async_request"), EngineMethod::AsyncRequestRpyc),
    };
    let meth = conn.getattr(method)?;
    if let Some(engine) = bound_engine(&meth, engine_method) {
        // A handler that is not an int fails in the engine's own argument
        // parsing, as below.
        if let Ok(h) = handler.extract::<i64>() {
            let payload = tuple_of(py, &[proxy], args)?;
            return match kind {
                Request::Sync => engine.get().request(py, h, &payload),
                Request::Async => Ok(engine.get().request_async(py, h, &payload)?.into_bound(py)),
            };
        }
    }
    meth.call1(tuple_of(py, &[handler, proxy], args)?)
}

/// `(*head, *rest)` as a tuple.
fn tuple_of<'py>(
    py: Python<'py>,
    head: &[&Bound<'py, PyAny>],
    rest: &[Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyTuple>> {
    let mut all = Vec::with_capacity(head.len() + rest.len());
    all.extend(head.iter().copied());
    all.extend(rest);
    PyTuple::new(py, all)
}

/// rpyc's `netref.syncreq(proxy, handler, *args)`, the same steps without a
/// Python frame: `conn.sync_request(handler, proxy, *args)`.
#[pyfunction]
#[pyo3(signature = (proxy, handler, *args))]
pub fn syncreq<'py>(
    proxy: &Bound<'py, PyAny>,
    handler: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    request_on(proxy, Request::Sync, handler, args.as_slice())
}

/// rpyc's `netref.asyncreq(proxy, handler, *args)`, the same steps without
/// a Python frame: `conn.async_request(handler, proxy, *args)`.
#[pyfunction]
#[pyo3(signature = (proxy, handler, *args))]
pub fn asyncreq<'py>(
    proxy: &Bound<'py, PyAny>,
    handler: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    request_on(proxy, Request::Async, handler, args.as_slice())
}

static ROOT: FunctionDef = FunctionDef(ffi::PyMethodDef {
    ml_name: c"connection_root".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer { PyCFunction: connection_root },
    ml_flags: ffi::METH_O,
    ml_doc: c"rpyc's Connection.root getter (rpyc-rs): the peer's root object, fetched once.".as_ptr(),
});

/// rpyc's `Connection.root` getter, the getter of `rpyc_rs.Connection.root`:
/// `if conn._remote_root is None: conn._remote_root =
/// conn.sync_request(HANDLE_GETROOT)`, then `conn._remote_root`. A C
/// function, since `conn.root.method(...)` is how most rpyc programs start
/// a call, and a Python getter's frame costs as much as the rest of the
/// lookup.
unsafe extern "C" fn connection_root(
    _module: *mut ffi::PyObject,
    conn: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    trampoline(|py| {
        // SAFETY: CPython passes the one argument as a live borrowed
        // reference.
        let conn = unsafe { Bound::from_borrowed_ptr(py, conn) };
        let key = pyo3::intern!(py, "_remote_root");
        let root = conn.getattr(key)?;
        if !root.is_none() {
            return Ok(root);
        }
        let fetched = conn.call_method1(pyo3::intern!(py, "sync_request"), (Handler::GetRoot as i64,))?;
        conn.setattr(key, fetched)?;
        conn.getattr(key)
    })
}

/// Registers `syncreq`, `asyncreq` and `connection_root`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(syncreq, m)?)?;
    m.add_function(wrap_pyfunction!(asyncreq, m)?)?;
    let py = m.py();
    // SAFETY: the definition is static and only read by CPython; a module
    // function has no bound object. The result is a new reference or NULL
    // with an exception set.
    let root = unsafe {
        let def = std::ptr::addr_of!(ROOT.0).cast_mut();
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyCFunction_NewEx(def, std::ptr::null_mut(), std::ptr::null_mut()),
        )?
    };
    m.add("connection_root", root)
}
