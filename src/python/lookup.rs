//! Attribute lookups that run no user code and raise nothing, for the
//! native handlers (`attrs.rs`) and `get_id_pack` (`tables.rs`).
//!
//! rpyc asks questions such as `getattr(type(obj), "_rpyc_getattr", None)`
//! on every request, and the answer is nearly always "no". Asked through
//! `getattr`, each "no" costs an `AttributeError`: a formatted message, an
//! exception object, its `name`/`obj` context, then clearing it. That was
//! a large share of a native GETATTR. The functions here give the same
//! answers from CPython's own lookup primitives, without an exception,
//! wherever the answer is certain; they say so (`None`) when it is not, and
//! the caller then asks Python the ordinary way.

use std::os::raw::c_int;
use std::sync::OnceLock;

use pyo3::exceptions::PyAttributeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

extern "C" {
    // Exported by CPython 3.8 to 3.13 (`cpython/object.h`): the attribute
    // lookup along a type's MRO that `getattr` itself starts with. It runs
    // no Python code and sets no exception; the result is borrowed.
    fn _PyType_Lookup(tp: *mut ffi::PyTypeObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;
    // `types.MethodType`, exported by every CPython (`PyAPI_DATA`).
    static mut PyMethod_Type: ffi::PyTypeObject;
    // A bound method's `__func__` (borrowed), in every CPython's C API.
    fn PyMethod_Function(meth: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// A bound method's `__func__`, read from the method itself (what the
/// `__func__` member returns). `meth`'s type must be exactly
/// `types.MethodType` ([`is_bound_method_type`]).
pub(crate) fn method_function<'py>(meth: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    if !is_bound_method_type(&meth.get_type()) {
        return None;
    }
    // SAFETY: `meth` is a live bound method (checked above); the result is
    // a borrowed reference it holds, owned at once while the GIL is held.
    unsafe { Bound::from_borrowed_ptr_or_opt(meth.py(), PyMethod_Function(meth.as_ptr())) }
}

/// `getattr(cls, name) is expected`, for an `expected` that a lookup on a
/// class hands back as itself (a function, which binds to itself without
/// an instance, or an object with no `__get__`): answered from the class's
/// MRO without binding anything, when the metaclass looks attributes up as
/// `type` does and has no data descriptor of that name (which would win
/// over the class's own). Otherwise through `getattr`.
pub(crate) fn class_attr_is(
    cls: &Bound<'_, PyType>,
    name: &Bound<'_, PyString>,
    expected: &Bound<'_, PyAny>,
) -> PyResult<bool> {
    let meta = cls.get_type();
    // SAFETY: reading slots of live type objects (`meta`, `type`, and the
    // type of what the metaclass has under `name`).
    let plain_meta = unsafe {
        let type_getattro = (*std::ptr::addr_of!(ffi::PyType_Type)).tp_getattro;
        (*meta.as_type_ptr()).tp_getattro.map(|f| f as usize) == type_getattro.map(|f| f as usize)
            && type_lookup(&meta, name).is_none_or(|m| (*ffi::Py_TYPE(m.as_ptr())).tp_descr_set.is_none())
    };
    if !plain_meta {
        return Ok(cls.getattr(name)?.is(expected));
    }
    Ok(type_lookup(cls, name).is_some_and(|found| found.is(expected)))
}

/// What `tp` has under `name` along its MRO, without running anything.
pub(crate) fn type_lookup<'py>(
    tp: &Bound<'py, PyType>,
    name: &Bound<'py, PyString>,
) -> Option<Bound<'py, PyAny>> {
    // SAFETY: both pointers are valid for the call; the result is a
    // borrowed reference (or NULL, with no exception set), turned into an
    // owned one at once while the GIL is held.
    unsafe {
        let r = _PyType_Lookup(tp.as_ptr().cast(), name.as_ptr());
        Bound::from_borrowed_ptr_or_opt(tp.py(), r)
    }
}

/// True when `tp` is `types.MethodType` (a bound method's type).
pub(crate) fn is_bound_method_type(tp: &Bound<'_, PyType>) -> bool {
    // Only the address of CPython's static type object is taken.
    std::ptr::eq(tp.as_ptr().cast::<ffi::PyTypeObject>(), std::ptr::addr_of_mut!(PyMethod_Type))
}

/// True when `tp` is `types.FunctionType` (a function written in Python).
pub(crate) fn is_function_type(tp: &Bound<'_, PyType>) -> bool {
    // Only the address of CPython's static type object is taken.
    std::ptr::eq(tp.as_ptr().cast::<ffi::PyTypeObject>(), std::ptr::addr_of_mut!(ffi::PyFunction_Type))
}

/// True when `tp`'s own type is exactly `type` (no metaclass).
pub(crate) fn has_plain_metaclass(tp: &Bound<'_, PyType>) -> bool {
    // SAFETY: reading the type pointer of a live object; only the address
    // of CPython's static `type` object is taken.
    unsafe { std::ptr::eq(ffi::Py_TYPE(tp.as_ptr()), std::ptr::addr_of_mut!(ffi::PyType_Type)) }
}

/// `PyType_IsSubtype`: `b` is on `a`'s MRO. What `issubclass(a, b)` answers
/// when `b`'s metaclass is `type`.
pub(crate) fn is_subtype(a: &Bound<'_, PyType>, b: &Bound<'_, PyType>) -> bool {
    // SAFETY: two live type objects; the call reads their MROs only.
    unsafe { ffi::PyType_IsSubtype(a.as_ptr().cast(), b.as_ptr().cast()) != 0 }
}

/// `isinstance(obj, cls)`, for any `obj` and class `cls`.
///
/// For a class whose metaclass is not exactly `type` (rpyc's `BaseNetref`
/// has `NetrefMetaclass`), CPython's `isinstance` looks up the metaclass's
/// `__instancecheck__`, binds it as a method and calls it: about half a
/// microsecond, paid for every object rpyc boxes. When that method is
/// `type`'s own, this does what it does (CPython's `object_isinstance`)
/// directly: `type(obj)` is a subclass, or else `obj.__class__` is a
/// different class that is. Any other `__instancecheck__` is called as
/// `isinstance` calls it.
pub(crate) fn is_instance_of(obj: &Bound<'_, PyAny>, cls: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = obj.py();
    let check = pyo3::intern!(py, "__instancecheck__");
    let standard = type_lookup(&py.get_type::<PyType>(), check);
    match (type_lookup(&cls.get_type(), check), standard) {
        (Some(found), Some(standard)) if found.is(&standard) => {}
        _ => return obj.is_instance(cls),
    }
    let tp = obj.get_type();
    if is_subtype(&tp, cls) {
        return Ok(true);
    }
    // `__class__` may say otherwise (a proxy's, a mock's); read as
    // `object_isinstance` reads it, a missing one meaning "no".
    Ok(match getattr_opt(obj, pyo3::intern!(py, "__class__"))? {
        Some(claimed) if !claimed.is(&tp) => claimed.cast::<PyType>().is_ok_and(|c| is_subtype(c, cls)),
        _ => false,
    })
}

/// `getattr(tp, name, None)` for a class whose metaclass is exactly `type`,
/// without an exception for a miss: what `type.__getattribute__` does in
/// that case. `type` itself has no attribute by such a name (its namespace
/// is fixed, and the names asked here are rpyc's `_rpyc_*`), so the answer
/// is the class's own MRO entry, bound through its `__get__` when it has
/// one, as `type.__getattribute__` binds it (`__get__(None, tp)`).
///
/// `None` (the outer option) when the metaclass is not plain or the name is
/// one `type` itself has: the caller then asks `getattr`.
pub(crate) fn class_attr_opt<'py>(
    tp: &Bound<'py, PyType>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Option<Bound<'py, PyAny>>>> {
    let py = tp.py();
    if !has_plain_metaclass(tp) || type_lookup(&py.get_type::<PyType>(), name).is_some() {
        return Ok(None);
    }
    let Some(found) = type_lookup(tp, name) else {
        return Ok(Some(None));
    };
    // SAFETY: reading the `tp_descr_get` slot of a live type object.
    let get = unsafe { (*ffi::Py_TYPE(found.as_ptr())).tp_descr_get };
    match get {
        None => Ok(Some(Some(found))),
        Some(get) => {
            // SAFETY: CPython's calling convention for `tp_descr_get`, as
            // `type.__getattribute__` calls it (NULL instance, the class as
            // owner); a new reference, or NULL with an exception set.
            let bound = unsafe {
                Bound::from_owned_ptr_or_err(py, get(found.as_ptr(), std::ptr::null_mut(), tp.as_ptr()))
            };
            bound.map(|b| Some(Some(b)))
        }
    }
}

/// The lookup that `getattr(obj, name, default)` does when `obj`'s type
/// uses `object`'s own attribute lookup, answering a miss with `Ok(None)`
/// rather than an exception: CPython's `PyObject_GetOptionalAttr` (3.13+)
/// or `_PyObject_LookupAttr` (3.8 to 3.12), found at run time since the
/// name depends on the version the module is loaded into.
type LookupAttr =
    unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject, *mut *mut ffi::PyObject) -> c_int;

fn optional_getattr() -> Option<LookupAttr> {
    static FOUND: OnceLock<Option<LookupAttr>> = OnceLock::new();
    *FOUND.get_or_init(|| {
        for name in [c"PyObject_GetOptionalAttr", c"_PyObject_LookupAttr"] {
            // SAFETY: dlsym with a NUL-terminated name over the symbols
            // already loaded in this process (the interpreter's).
            let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
            if !sym.is_null() {
                // SAFETY: both functions have exactly this signature
                // (`int f(PyObject *, PyObject *, PyObject **)`).
                return Some(unsafe { std::mem::transmute::<*mut libc::c_void, LookupAttr>(sym) });
            }
        }
        None
    })
}

/// `getattr(obj, name)` with a miss as `Ok(None)`. Without an exception
/// object when CPython offers the optional lookup; through the
/// AttributeError otherwise.
pub(crate) fn getattr_opt<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    if let Some(lookup) = optional_getattr() {
        let mut out: *mut ffi::PyObject = std::ptr::null_mut();
        // SAFETY: valid object and name; `out` receives a new reference
        // (1), nothing (0), or NULL with an exception set (-1).
        let rc = unsafe { lookup(obj.as_ptr(), name.as_ptr(), &mut out) };
        return match rc {
            // SAFETY: a new reference, owned from here.
            1 => Ok(Some(unsafe { Bound::from_owned_ptr(py, out) })),
            0 => Ok(None),
            _ => Err(PyErr::fetch(py)),
        };
    }
    match obj.getattr(name) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_instance_of::<PyAttributeError>(py) => Ok(None),
        Err(e) => Err(e),
    }
}

/// True when `obj` has no attribute `name` by a lookup that runs no user
/// code: none on its type's MRO, and none in its instance dict. Only for
/// objects whose type uses `object`'s own attribute lookup (see
/// [`generic_getattr`]); an error counts as "not certain", i.e. false.
pub(crate) fn lacks_plainly(obj: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> bool {
    if type_lookup(&obj.get_type(), name).is_some() {
        return false;
    }
    // With nothing on the MRO, the generic lookup only reads the instance
    // dict, which runs no code.
    matches!(getattr_opt(obj, name), Ok(None))
}

/// True for a class made at run time (by a `class` statement or `type()`),
/// false for a type written in C.
pub(crate) fn is_heap_type(tp: &Bound<'_, PyType>) -> bool {
    // SAFETY: reading the flags of a live type object.
    let flags = unsafe { (*tp.as_ptr().cast::<ffi::PyTypeObject>()).tp_flags };
    flags & ffi::Py_TPFLAGS_HEAPTYPE != 0
}

/// True when `tp`'s attribute lookup is `object`'s own (no
/// `__getattribute__` or `__getattr__` of a class's).
pub(crate) fn generic_getattr(tp: &Bound<'_, PyType>) -> bool {
    // SAFETY: reading a slot of a live type object.
    let getattro = unsafe { (*tp.as_ptr().cast::<ffi::PyTypeObject>()).tp_getattro };
    // Compared as addresses: ELF gives a function one canonical address in
    // a process, so the slot holds CPython's own function iff this is it.
    getattro.map(|f| f as *const () as usize) == Some(ffi::PyObject_GenericGetAttr as *const () as usize)
}
