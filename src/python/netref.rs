//! rpyc's netref methods without Python frames: `BaseNetref.__getattribute__`
//! and `BaseNetref.__del__`, and the methods `netref._make_method` makes for
//! a proxied class (`__call__`, and the CALLATTR ones behind `len()`,
//! iteration, `[]` and the other operators).
//!
//! Every proxy operation of an rpyc program goes through these. As rpyc's
//! Python functions each was a frame between the user's expression and the
//! engine, and `__del__` two (its `self.____refcount__` runs
//! `__getattribute__` again); with the caches cold from the context switch
//! every request makes, those frames were about a tenth of a `root.echo(1)`.
//! `install()` puts these in `rpyc.core.netref` and `uninstall()` puts
//! rpyc's back (`python/rpyc_rs/__init__.py`). They take rpyc's steps in
//! rpyc's order and hand each request to the proxy's own connection through
//! [`request_on`], so they serve any connection, rpyc's own included.
//!
//! `__getattribute__` and `__del__` are method descriptors of `BaseNetref`,
//! as a class written in C has (called without binding a method object);
//! `_make_method`'s methods carry their name and docstring, so they are
//! objects of [`NetrefMethod`], which binds as a function does.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyAttributeError, PyRuntimeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFrozenSet, PyString, PyTuple, PyType};

use super::lookup::type_lookup;
use super::netref_slots::{self as slots, Slot};
use super::proxies::{request_on, Request};
use super::world::generic_getattr;
use crate::protocol::message::Handler;

extern "C" {
    // `types.MethodType(func, obj)`, exported by every CPython.
    fn PyMethod_New(func: *mut ffi::PyObject, obj: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// rpyc's `netref.LOCAL_ATTRS` and `DELETED_ATTRS`, as `install()` found
/// them (the same sets in rpyc 5 and 6).
struct Names {
    local: Py<PyFrozenSet>,
    deleted: Py<PyFrozenSet>,
}

static NAMES: PyOnceLock<Names> = PyOnceLock::new();

/// The descriptors [`netref_descriptors`] made (once per process: a second
/// `install()` puts the same objects back), and the class they are for.
struct Descriptors {
    base: Py<PyType>,
    getattribute: Py<PyAny>,
    del: Py<PyAny>,
}

static DESCRIPTORS: PyOnceLock<Descriptors> = PyOnceLock::new();

/// The two method definitions; CPython keeps a pointer to them for the
/// life of the descriptors, so they are static.
struct Defs([ffi::PyMethodDef; 2]);

// SAFETY: the definitions are never written after being built here; the
// raw pointers in them are to static strings and functions.
unsafe impl Sync for Defs {}

static DEFS: Defs = Defs([
    ffi::PyMethodDef {
        ml_name: c"__getattribute__".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunction: getattribute },
        ml_flags: ffi::METH_O,
        ml_doc: c"rpyc's BaseNetref.__getattribute__, natively (rpyc-rs).".as_ptr(),
    },
    ffi::PyMethodDef {
        ml_name: c"__del__".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer { PyCFunction: del },
        ml_flags: ffi::METH_NOARGS,
        ml_doc: c"rpyc's BaseNetref.__del__, natively (rpyc-rs): sends the DEL.".as_ptr(),
    },
]);

/// Runs `f` as the body of a method CPython calls: the GIL is held, an
/// error is set as the current exception, and a panic becomes one rather
/// than unwinding into C.
pub(crate) fn trampoline(
    f: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>>,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls method functions with the GIL held.
    let py = unsafe { Python::assume_attached() };
    match catch_unwind(AssertUnwindSafe(|| f(py))) {
        Ok(Ok(v)) => v.into_ptr(),
        Ok(Err(e)) => {
            e.restore(py);
            std::ptr::null_mut()
        }
        Err(_) => {
            PyRuntimeError::new_err("rpyc-rs: a netref method panicked").restore(py);
            std::ptr::null_mut()
        }
    }
}

/// `BaseNetref.__getattribute__(self, name)`, rpyc's branches in rpyc's
/// order: the netref's own names locally, the rest from the peer (GETATTR).
unsafe extern "C" fn getattribute(slf: *mut ffi::PyObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject {
    trampoline(|py| {
        // SAFETY: CPython passes live borrowed references to `self` and
        // the argument for the duration of the call.
        let (slf, name) = unsafe { (Bound::from_borrowed_ptr(py, slf), Bound::from_borrowed_ptr(py, name)) };
        netref_getattribute(&slf, &name)
    })
}

fn netref_getattribute<'py>(
    slf: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = slf.py();
    let names = NAMES.get(py).ok_or_else(|| PyRuntimeError::new_err("rpyc-rs netref methods not set up"))?;
    if names.local.bind(py).contains(name)? {
        if name.eq(pyo3::intern!(py, "__class__"))? {
            let cls = object_getattribute(slf, name)?;
            if cls.is_none() {
                return slf
                    .getattr(pyo3::intern!(py, "__getattr__"))?
                    .call1((pyo3::intern!(py, "__class__"),));
            }
            return Ok(cls);
        }
        if name.eq(pyo3::intern!(py, "__doc__"))? {
            return slf.getattr(pyo3::intern!(py, "__getattr__"))?.call1((pyo3::intern!(py, "__doc__"),));
        }
        if names.deleted.bind(py).contains(name)? {
            return Err(PyAttributeError::new_err(()));
        }
        return object_getattribute(slf, name);
    }
    if name.eq(pyo3::intern!(py, "__call__"))? || name.eq(pyo3::intern!(py, "__array__"))? {
        return object_getattribute(slf, name);
    }
    let handler = (Handler::GetAttr as i64).into_pyobject(py)?;
    request_on(slf, Request::Sync, handler.as_any(), std::slice::from_ref(name))
}

/// `object.__getattribute__(slf, name)` for a name of any type (a `str`
/// subclass included, as `object.__getattribute__` takes).
fn object_getattribute<'py>(
    slf: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    match name.cast::<PyString>() {
        Ok(s) => generic_getattr(slf, s),
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "attribute name must be string, not '{}'",
            name.get_type().name()?
        ))),
    }
}

/// `BaseNetref.__del__(self)`: `asyncreq(self, HANDLE_DEL,
/// self.____refcount__)`, any `Exception` ignored as rpyc ignores it (the
/// connection may be gone at exit).
unsafe extern "C" fn del(slf: *mut ffi::PyObject, _unused: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls method functions with the GIL held.
    let py = unsafe { Python::assume_attached() };
    let sent = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: CPython passes a live borrowed reference to `self`.
        let slf = unsafe { Bound::from_borrowed_ptr(py, slf) };
        // `self.____refcount__`: through the proxy's `__getattribute__`,
        // which for this name (one of LOCAL_ATTRS) is `object`'s lookup
        // when it is ours; read directly then.
        let key = pyo3::intern!(py, "____refcount__");
        let ours = DESCRIPTORS.get(py).is_some_and(|d| {
            type_lookup(&slf.get_type(), pyo3::intern!(py, "__getattribute__"))
                .is_some_and(|g| g.is(d.getattribute.bind(py)))
        });
        let count = if ours { slots::get(&slf, Slot::Refcount)? } else { slf.getattr(key)? };
        let handler = (Handler::Del as i64).into_pyobject(py)?;
        request_on(&slf, Request::Async, handler.as_any(), &[count]).map(drop)
    }));
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            // `except Exception: pass`, matched by CPython itself: this
            // runs during interpreter shutdown too, when pyo3 may not look
            // into an error (it checks that the interpreter is up).
            e.restore(py);
            // SAFETY: the GIL is held and an exception is set.
            if unsafe { ffi::PyErr_ExceptionMatches(ffi::PyExc_Exception) } == 0 {
                // Anything else (KeyboardInterrupt, SystemExit) is reported
                // by CPython as raised in `__del__`, as rpyc's.
                return std::ptr::null_mut();
            }
            // SAFETY: as above; the exception is dropped, as rpyc's `pass`.
            unsafe { ffi::PyErr_Clear() };
        }
        Err(_) => {
            PyRuntimeError::new_err("rpyc-rs: a netref method panicked").restore(py);
            return std::ptr::null_mut();
        }
    }
    py.None().into_ptr()
}

// A method `netref._make_method(name, doc)` makes: `__call__` (a CALL of
// the proxy) or any other name (a CALLATTR of that name), sent with
// `tuple(kwargs.items())` as rpyc's do. It binds to a proxy as a function
// does, and has the name and docstring rpyc gives its functions.
//
// (Plain comments, not a doc comment: pyo3 would make a doc comment the
// class's `__doc__`, which would hide the `__doc__` getter below, the
// remote method's docstring, as rpyc's functions carry it.)
#[pyclass(module = "rpyc_rs._native", name = "NetrefMethod", frozen)]
pub(crate) struct NetrefMethod {
    /// The CALLATTR name; `None` for `__call__`.
    attr: Option<Py<PyString>>,
    name: Py<PyString>,
    doc: Py<PyAny>,
}

#[pymethods]
impl NetrefMethod {
    // The proxy parameter is named `_self` as in rpyc's functions: a
    // keyword argument of any other name (`proxy=...`, say) goes to the
    // peer, and `_self=...` is refused as there.
    #[allow(clippy::duplicate_underscore_argument)]
    #[pyo3(signature = (_self, *args, **kwargs))]
    fn __call__<'py>(
        &self,
        _self: &Bound<'py, PyAny>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = _self.py();
        let kwargs = match kwargs {
            Some(d) if !d.is_empty() => PyTuple::new(py, d.items())?,
            _ => PyTuple::empty(py),
        };
        match &self.attr {
            None => {
                let handler = (Handler::Call as i64).into_pyobject(py)?;
                request_on(
                    _self,
                    Request::Sync,
                    handler.as_any(),
                    &[args.clone().into_any(), kwargs.into_any()],
                )
            }
            Some(attr) => {
                let handler = (Handler::CallAttr as i64).into_pyobject(py)?;
                let parts = [attr.bind(py).clone().into_any(), args.clone().into_any(), kwargs.into_any()];
                request_on(_self, Request::Sync, handler.as_any(), &parts)
            }
        }
    }

    /// Binds to an instance as a function does (`types.MethodType`); read
    /// from the class it is itself.
    fn __get__<'py>(
        slf: Bound<'py, Self>,
        obj: Option<Bound<'py, PyAny>>,
        _owner: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match obj {
            Some(obj) if !obj.is_none() => {
                // SAFETY: both pointers are live; the result is a new
                // reference or NULL with an exception set.
                unsafe { Bound::from_owned_ptr_or_err(slf.py(), PyMethod_New(slf.as_ptr(), obj.as_ptr())) }
            }
            _ => Ok(slf.into_any()),
        }
    }

    #[getter]
    fn __name__(&self, py: Python<'_>) -> Py<PyString> {
        self.name.clone_ref(py)
    }

    #[getter]
    fn __doc__(&self, py: Python<'_>) -> Py<PyAny> {
        self.doc.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("<netref method {}>", self.name.bind(py))
    }
}

/// What `netref._make_method(name, doc)` returns, natively: a
/// [`NetrefMethod`] for `__call__` and the plain CALLATTR methods, `None`
/// for the few rpyc builds otherwise (the old slicing names and
/// `__array__`, left to rpyc's own function).
#[pyfunction]
fn netref_method(name: &Bound<'_, PyAny>, doc: &Bound<'_, PyAny>) -> PyResult<Option<NetrefMethod>> {
    // rpyc: `name = str(name)`.
    let name = name.str()?;
    let attr = match name.to_str()? {
        "__getslice__" | "__delslice__" | "__setslice__" | "__array__" => return Ok(None),
        "__call__" => None,
        _ => Some(name.clone().unbind()),
    };
    Ok(Some(NetrefMethod { attr, name: name.unbind(), doc: doc.clone().unbind() }))
}

/// `BaseNetref`'s native `__getattribute__` and `__del__`, for `install()`
/// to set on `base` (rpyc's `BaseNetref`), with rpyc's `LOCAL_ATTRS` and
/// `DELETED_ATTRS` as the module has them.
#[pyfunction]
fn netref_descriptors<'py>(
    base: &Bound<'py, PyType>,
    local_attrs: &Bound<'py, PyFrozenSet>,
    deleted_attrs: &Bound<'py, PyFrozenSet>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let py = base.py();
    let names = NAMES.get_or_init(py, || Names {
        local: local_attrs.clone().unbind(),
        deleted: deleted_attrs.clone().unbind(),
    });
    if !names.local.bind(py).eq(local_attrs)? || !names.deleted.bind(py).eq(deleted_attrs)? {
        return Err(PyRuntimeError::new_err("rpyc's netref LOCAL_ATTRS changed since the first install()"));
    }
    let make = |i: usize| {
        // SAFETY: `base` is a live type and the definition is static;
        // CPython reads it only. The result is a new reference or NULL
        // with an exception set.
        unsafe {
            let def = std::ptr::addr_of!(DEFS.0[i]).cast_mut();
            Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewMethod(base.as_ptr().cast(), def))
                .map(Bound::unbind)
        }
    };
    let made = DESCRIPTORS.get_or_try_init(py, || -> PyResult<Descriptors> {
        Ok(Descriptors { base: base.clone().unbind(), getattribute: make(0)?, del: make(1)? })
    })?;
    if !made.base.bind(py).is(base) {
        return Err(PyRuntimeError::new_err("rpyc-rs netref methods were made for another BaseNetref"));
    }
    Ok((made.getattribute.bind(py).clone(), made.del.bind(py).clone()))
}

/// Registers the netref functions and [`NetrefMethod`].
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NetrefMethod>()?;
    m.add_function(wrap_pyfunction!(netref_method, m)?)?;
    m.add_function(wrap_pyfunction!(netref_descriptors, m)?)
}
