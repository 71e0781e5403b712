//! Python bindings for brine: `brine_dump`, `brine_load`, `brine_dumpable`
//! and the `BrineError` exception, re-exported by `python/rpyc_rs/brine.py`
//! as `dump`, `load`, `dumpable` and `BrineError`.
//!
//! Conversion goes straight between Python objects and brine bytes through
//! the primitive level of [`crate::brine`] (`put_*` and the pull
//! [`Decoder`]); no [`crate::brine::Value`] tree is built in between, because
//! that would double the allocations of the hot path.
//!
//! Dumping dispatches on the *exact* type, as rpyc does (`type(obj) in
//! ...`): a subclass of `int`, `str` or `tuple` (an `IntEnum` member, a
//! namedtuple) is not brine-able, so the output is byte-identical to
//! `rpyc.core.brine.dump` and `dumpable` agrees with rpyc's.
//!
//! Errors:
//! * `dump` of an object that is not brine-able raises `TypeError("cannot
//!   dump {obj}")`, rpyc's own message;
//! * malformed input to `load` raises `BrineError`, a `ValueError` subclass
//!   carrying the codec's [`crate::brine::BrineError`] text (rpyc raises an
//!   assortment of `TypeError`, `struct.error`, `UnicodeDecodeError`... there);
//! * nesting deeper than [`DEFAULT_MAX_DEPTH`] raises `BrineError` on both
//!   sides, so anything `dump` produces can be read back by `load`.
//!
//! [`dump_into`], [`is_dumpable`] and [`load_from`] are the reusable entry
//! points for the rest of the bindings (the protocol engine's Python object
//! world), which write into a larger message buffer and read from a decoder
//! positioned inside one.
//!
//! The extension is built against the full (non-abi3) C API, and the hot
//! paths use it: tuple items are read and written in place, an ASCII str's
//! bytes are borrowed, loaded strs are filled in place, slice fields are read
//! directly.

use std::cell::Cell;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyComplex, PyEllipsis, PyFloat, PyFrozenSet, PyInt, PyMemoryView, PyNone,
    PyNotImplemented, PySlice, PyString, PyTuple,
};
use pyo3::{intern, Borrowed, PyTypeInfo};

use crate::brine::{
    self as codec, put_bool, put_bytes, put_complex, put_float, put_frozenset_header, put_int, put_int_text,
    put_none, put_slice_header, put_str, put_tuple_header, DecodeOptions, Decoder, DEFAULT_MAX_DEPTH,
};

#[path = "brine_load.rs"]
mod load;

pub(crate) use load::load_from;

pyo3::create_exception!(
    rpyc_rs._native,
    BrineError,
    PyValueError,
    "Malformed brine data given to `load`, or a value nested too deeply to dump."
);

/// The deepest nesting of tuples, frozensets and slices that [`dump_into`]
/// accepts. It equals the decoder's default bound, so whatever we dump we can
/// also load; rpyc itself hits Python's recursion limit near 500 levels.
pub(crate) const MAX_DUMP_DEPTH: usize = DEFAULT_MAX_DEPTH;

/// The decoder bounds for this interpreter: the int-digit bound follows
/// `sys.get_int_max_str_digits()` (4300 by default; 0 means no bound), so
/// one setting governs both Python's own `int()` and what we accept off
/// the wire. The lookup is cached; the call costs a few tens of ns.
pub(crate) fn decode_options(py: Python<'_>) -> DecodeOptions {
    static GETTER: pyo3::sync::PyOnceLock<Py<PyAny>> = pyo3::sync::PyOnceLock::new();
    let limit = GETTER
        .get_or_try_init(py, || py.import("sys")?.getattr("get_int_max_str_digits").map(Bound::unbind))
        .and_then(|f| f.call0(py))
        .and_then(|n| n.extract::<usize>(py));
    match limit {
        Ok(0) => DecodeOptions::default().with_max_int_digits(usize::MAX),
        Ok(n) => DecodeOptions::default().with_max_int_digits(n),
        // Before 3.11 there is no such setting: keep the default bound.
        Err(_) => DecodeOptions::default(),
    }
}

/// Turns a codec error into the Python `BrineError` (a `ValueError`).
pub(crate) fn to_py_err(e: codec::BrineError) -> PyErr {
    BrineError::new_err(e.to_string())
}

/// A `BrineError` for input that decoded but that Python refused to turn
/// into an object, with Python's own error kept as `__cause__`.
fn refused(py: Python<'_>, what: String, cause: PyErr) -> PyErr {
    let err = BrineError::new_err(format!("{what}: {cause}"));
    err.set_cause(py, Some(cause));
    err
}

// ---------------------------------------------------------------------------
// Type dispatch
// ---------------------------------------------------------------------------

/// The brine-able kinds of Python object, found by exact type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    None,
    NotImplemented,
    Ellipsis,
    Bool,
    Int,
    Float,
    Complex,
    Bytes,
    Str,
    Tuple,
    FrozenSet,
    Slice,
}

/// The kind of `obj` by exact type, or `None` if it is not brine-able.
///
/// Pointer comparisons only: the type objects of builtins are static, and the
/// three singletons are compared by identity (their types cannot make new
/// instances). Ordered by how common each kind is in RPyC traffic.
#[inline]
fn kind_of(obj: &Bound<'_, PyAny>) -> Option<Kind> {
    let py = obj.py();
    let ty = obj.get_type_ptr();
    let ptr = obj.as_ptr();
    if ty == PyInt::type_object_raw(py) {
        Some(Kind::Int)
    } else if ty == PyString::type_object_raw(py) {
        Some(Kind::Str)
    } else if ty == PyTuple::type_object_raw(py) {
        Some(Kind::Tuple)
    } else if ptr == PyNone::get(py).as_ptr() {
        Some(Kind::None)
    } else if ty == PyBool::type_object_raw(py) {
        Some(Kind::Bool)
    } else if ty == PyFloat::type_object_raw(py) {
        Some(Kind::Float)
    } else if ty == PyBytes::type_object_raw(py) {
        Some(Kind::Bytes)
    } else if ty == PyFrozenSet::type_object_raw(py) {
        Some(Kind::FrozenSet)
    } else if ty == PySlice::type_object_raw(py) {
        Some(Kind::Slice)
    } else if ty == PyComplex::type_object_raw(py) {
        Some(Kind::Complex)
    } else if ptr == PyEllipsis::get(py).as_ptr() {
        Some(Kind::Ellipsis)
    } else if ptr == PyNotImplemented::get(py).as_ptr() {
        Some(Kind::NotImplemented)
    } else {
        None
    }
}

/// `obj` viewed as the pyo3 type `T` without pyo3's own type check, which
/// [`kind_of`] has already done more strictly.
///
/// # Safety
///
/// `kind_of(obj)` must have returned the [`Kind`] of exactly `T`.
#[inline]
unsafe fn exact<'a, 'py, T>(obj: &'a Bound<'py, PyAny>) -> &'a Bound<'py, T> {
    // SAFETY: guaranteed by the caller.
    unsafe { obj.cast_unchecked::<T>() }
}

/// The (start, stop, step) of an exact slice, read from the object itself
/// (no attribute lookups).
#[inline]
fn slice_parts<'a, 'py>(obj: &'a Bound<'py, PyAny>) -> PyResult<[Borrowed<'a, 'py, PyAny>; 3]> {
    let py = obj.py();
    let s = obj.as_ptr().cast::<ffi::PySliceObject>();
    // SAFETY: the caller checked that `obj` is an exact slice, so it has
    // this layout; a slice is immutable and holds its three parts alive for
    // as long as `obj` lives.
    let raw = unsafe { [(*s).start, (*s).stop, (*s).step] };
    let part = |p: *mut ffi::PyObject| {
        // SAFETY: see above; CPython stores None, never NULL, for a missing
        // part, but a NULL is reported rather than trusted.
        unsafe { Borrowed::from_ptr_or_opt(py, p) }
            .ok_or_else(|| PyValueError::new_err("slice object with a missing field"))
    };
    Ok([part(raw[0])?, part(raw[1])?, part(raw[2])?])
}

/// rpyc's error for an object it cannot dump: `TypeError(f"cannot dump {obj}")`.
fn undumpable(obj: &Bound<'_, PyAny>) -> PyErr {
    // An f-string calls `format(obj, "")`, not `str(obj)`: they differ for
    // an `IntEnum` before Python 3.11 ("1" against "Color.RED"). Either runs
    // the object's own code, which may fail; the error about the dump
    // matters more than that one.
    let formatted =
        obj.py().import("builtins").and_then(|b| b.getattr("format")).and_then(|f| f.call1((obj, "")));
    let text = match formatted.and_then(|s| s.str()) {
        Ok(s) => s.to_string_lossy().into_owned(),
        Err(_) => {
            let name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".to_owned());
            format!("<unprintable {name} object>")
        }
    };
    PyTypeError::new_err(format!("cannot dump {text}"))
}

// ---------------------------------------------------------------------------
// Dumping
// ---------------------------------------------------------------------------

/// Appends the brine encoding of `obj` to `out`.
///
/// `depth` is the number of compounds (tuple, frozenset, slice) `obj` sits
/// in; pass 0 for a top-level value. On error `out` holds a partial encoding
/// and must be discarded (or truncated back by the caller).
pub(crate) fn dump_into(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) -> PyResult<()> {
    // SAFETY (each `exact` below): `kind_of` matched that exact type.
    match kind_of(obj) {
        Some(Kind::Int) => dump_int(obj, out),
        Some(Kind::Str) => dump_str(unsafe { exact::<PyString>(obj) }, out),
        Some(Kind::Tuple) => {
            check_depth(depth)?;
            let items = unsafe { exact::<PyTuple>(obj) }.as_slice();
            put_tuple_header(out, items.len()).map_err(to_py_err)?;
            for item in items {
                dump_into(item, out, depth + 1)?;
            }
            Ok(())
        }
        Some(Kind::None) => {
            put_none(out);
            Ok(())
        }
        Some(Kind::Bool) => {
            put_bool(out, obj.is(PyBool::new(obj.py(), true)));
            Ok(())
        }
        Some(Kind::Float) => {
            put_float(out, unsafe { exact::<PyFloat>(obj) }.value());
            Ok(())
        }
        Some(Kind::Bytes) => put_bytes(out, unsafe { exact::<PyBytes>(obj) }.as_bytes()).map_err(to_py_err),
        Some(Kind::FrozenSet) => {
            check_depth(depth)?;
            let set = unsafe { exact::<PyFrozenSet>(obj) };
            // rpyc dumps `tuple(obj)`: the members in the set's own iteration
            // order, which is the order this iterator walks the hash table
            // in too. An exact frozenset cannot change while we walk it.
            put_frozenset_header(out, set.len()).map_err(to_py_err)?;
            for item in set.iter() {
                dump_into(&item, out, depth + 1)?;
            }
            Ok(())
        }
        Some(Kind::Slice) => {
            check_depth(depth)?;
            put_slice_header(out);
            for part in slice_parts(obj)? {
                dump_into(&part, out, depth + 1)?;
            }
            Ok(())
        }
        Some(Kind::Complex) => {
            let c = unsafe { exact::<PyComplex>(obj) };
            put_complex(out, c.real(), c.imag());
            Ok(())
        }
        Some(Kind::Ellipsis) => {
            out.push(codec::tag::ELLIPSIS);
            Ok(())
        }
        Some(Kind::NotImplemented) => {
            out.push(codec::tag::NOT_IMPLEMENTED);
            Ok(())
        }
        None => Err(undumpable(obj)),
    }
}

#[inline]
fn check_depth(depth: usize) -> PyResult<()> {
    if depth >= MAX_DUMP_DEPTH {
        Err(to_py_err(codec::BrineError::TooDeep { limit: MAX_DUMP_DEPTH }))
    } else {
        Ok(())
    }
}

/// Appends an exact `int`: straight from a C `long long` when it fits, else
/// as `str(n)`, which is what rpyc writes (and which raises Python's own
/// `ValueError` past `sys.get_int_max_str_digits()`, as rpyc's dump does).
#[inline]
fn dump_int(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    let mut overflow: std::os::raw::c_int = 0;
    // SAFETY: `obj` is a live exact int; the call only reads it. The
    // `AndOverflow` variant reports overflow through the flag instead of
    // raising, so a big int costs no exception object.
    let n = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj.as_ptr(), &mut overflow) };
    if overflow == 0 {
        if n == -1 {
            if let Some(err) = PyErr::take(obj.py()) {
                return Err(err);
            }
        }
        put_int(out, n);
        return Ok(());
    }
    let text = obj.str()?;
    put_int_text(out, text.to_str()?).map_err(to_py_err)
}

/// Appends a `str`.
///
/// An ASCII str's own data is its UTF-8, borrowed with no copy. Any other
/// str is encoded into a temporary bytes object, as rpyc does: borrowing its
/// UTF-8 (`to_str`) would make CPython cache a UTF-8 copy inside the str for
/// the rest of its life, silently adding up to 4 bytes per character to
/// every non-ASCII string that was ever sent. Lone surrogates raise
/// `UnicodeEncodeError`, as rpyc's `obj.encode("utf8")` does.
#[inline]
fn dump_str(s: &Bound<'_, PyString>, out: &mut Vec<u8>) -> PyResult<()> {
    // SAFETY: `s` is a live str.
    if unsafe { ffi::PyUnicode_IS_ASCII(s.as_ptr()) } != 0 {
        // For an ASCII str this returns its data, caching nothing.
        put_str(out, s.to_str()?).map_err(to_py_err)
    } else {
        out.push(codec::tag::UNICODE);
        put_bytes(out, s.encode_utf8()?.as_bytes()).map_err(to_py_err)
    }
}

/// Whether [`dump_into`] would accept `obj` at nesting `depth`: by type and
/// depth, like rpyc's `dumpable` (a str with lone surrogates or an int too
/// long for `str()` passes here and fails in the dump, as with rpyc).
pub(crate) fn is_dumpable(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<bool> {
    // SAFETY (each `exact` below): `kind_of` matched that exact type.
    match kind_of(obj) {
        None => Ok(false),
        Some(Kind::Tuple | Kind::FrozenSet | Kind::Slice) if depth >= MAX_DUMP_DEPTH => Ok(false),
        Some(Kind::Tuple) => {
            for item in unsafe { exact::<PyTuple>(obj) }.as_slice() {
                if !is_dumpable(item, depth + 1)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Some(Kind::FrozenSet) => {
            for item in unsafe { exact::<PyFrozenSet>(obj) }.iter() {
                if !is_dumpable(&item, depth + 1)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Some(Kind::Slice) => {
            for part in slice_parts(obj)? {
                if !is_dumpable(&part, depth + 1)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Some(_) => Ok(true),
    }
}

// ---------------------------------------------------------------------------
// The Python-facing functions
// ---------------------------------------------------------------------------

/// Output buffers larger than this are freed after a dump rather than kept
/// for the next one, so one huge value does not pin its memory forever.
const KEEP_BUFFER_BYTES: usize = 1 << 20;

thread_local! {
    /// The output buffer of `brine_dump`, reused across calls: growing a
    /// fresh Vec costs a few reallocations per call, and the bytes are copied
    /// into the result anyway.
    static DUMP_BUFFER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Serialize `obj` to brine bytes, byte-identical to `rpyc.core.brine.dump`.
#[pyfunction]
fn brine_dump<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    // `take` leaves an empty Vec behind, so a nested call (from Python code
    // run by `str(obj)` on the error path) simply gets a buffer of its own.
    let mut out = DUMP_BUFFER.with(Cell::take);
    out.clear();
    let res = dump_into(obj, &mut out, 0).map(|()| PyBytes::new(obj.py(), &out));
    if out.capacity() <= KEEP_BUFFER_BYTES {
        DUMP_BUFFER.with(|b| b.set(out));
    }
    res
}

/// Deserialize one brine value spanning all of `data` (any bytes-like object).
#[pyfunction]
fn brine_load<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    if let Ok(b) = data.cast::<PyBytes>() {
        // Immutable: the slice stays valid while objects are built (which can
        // run the garbage collector, hence arbitrary Python code).
        return load_all(py, b.as_bytes());
    }
    // Mutable or foreign buffers (bytearray, memoryview, array, mmap...) are
    // copied into a bytes object first, for the same reason. Anything without
    // the buffer protocol is a TypeError, as for rpyc's `BytesIO(data)`.
    let view = PyMemoryView::from(data)?;
    let copy = view.call_method0(intern!(py, "tobytes"))?.cast_into::<PyBytes>()?;
    load_all(py, copy.as_bytes())
}

fn load_all<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let mut dec = Decoder::with_options(data, decode_options(py));
    let obj = load_from(py, &mut dec)?;
    dec.finish().map_err(to_py_err)?;
    Ok(obj)
}

/// Whether `obj` can be sent by value (dispatch on the exact type).
#[pyfunction]
fn brine_dumpable(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    is_dumpable(obj, 0)
}

/// Adds this file's functions and the `BrineError` exception to the native
/// module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(brine_dump, m)?)?;
    m.add_function(wrap_pyfunction!(brine_load, m)?)?;
    m.add_function(wrap_pyfunction!(brine_dumpable, m)?)?;
    m.add("BrineError", m.py().get_type::<BrineError>())?;
    Ok(())
}
