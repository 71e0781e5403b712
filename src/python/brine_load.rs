//! Loading: brine bytes straight into Python objects, from a pull
//! [`Decoder`] positioned at a value, for `brine_load` and for the
//! protocol engine's Python object world (which reads from inside a
//! message). Strs are built in place; ints outside `i64` go through
//! `i128` when they fit and Python's own parser (under its digit limit)
//! when not; nesting is bounded by the decoder.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyComplex, PyEllipsis, PyFloat, PyNone, PyNotImplemented, PyTuple};

use crate::brine::{self as codec, Decoder, Token};

use super::{refused, to_py_err};

/// Reads one whole value from `dec` (a token and, for compounds, everything
/// inside) and builds the Python object.
///
/// Nesting is bounded by the decoder's `max_depth`. On error the decoder is
/// left mid-value (its depth count included) and should be dropped.
pub(crate) fn load_from<'py>(py: Python<'py>, dec: &mut Decoder<'_>) -> PyResult<Bound<'py, PyAny>> {
    let tok = dec.next_token().map_err(to_py_err)?;
    Ok(match tok {
        Token::Int(n) => n.into_pyobject(py)?.into_any(),
        Token::Str(s) => new_str(py, s)?,
        Token::Tuple(n) => load_tuple(py, dec, n)?.into_any(),
        Token::Float(x) => PyFloat::new(py, x).into_any(),
        Token::None => PyNone::get(py).to_owned().into_any(),
        Token::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Token::Bytes(b) => PyBytes::new(py, b).into_any(),
        Token::BigInt(text) => big_int(py, text, dec.offset())?,
        Token::Complex(re, im) => PyComplex::from_doubles(py, re, im).into_any(),
        Token::FrozenSet(n) => load_frozenset(py, dec, n)?,
        Token::Slice => load_slice(py, dec)?,
        Token::Ellipsis => PyEllipsis::get(py).to_owned().into_any(),
        Token::NotImplemented => PyNotImplemented::get(py).to_owned().into_any(),
    })
}

/// A Python str from text the decoder already checked to be UTF-8.
///
/// `PyString::new` would decode the UTF-8 all over again, and for non-ASCII
/// text CPython's decoder guesses the width, then widens and resizes: for
/// the short strings RPyC sends that costs several times what building the
/// str directly does. We already know the text is valid, so we count its
/// characters and find the widest, let CPython allocate a compact str of
/// exactly that size and kind, and fill it in place.
#[inline]
fn new_str<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, PyAny>> {
    let (count, max) = if s.is_ascii() {
        (s.len(), 0x7f)
    } else {
        s.chars().fold((0usize, 0u32), |(n, max), c| (n + 1, max.max(c as u32)))
    };
    let size = ffi::Py_ssize_t::try_from(count)
        .map_err(|_| to_py_err(codec::BrineError::TooLarge { len: count }))?;
    // SAFETY: PyUnicode_New returns a new reference or NULL with an
    // exception set. Given the true widest character (a Rust char, so at
    // most U+10FFFF and never a surrogate) it picks the narrowest kind that
    // holds it, which is the canonical form CPython requires, and makes room
    // for `count` characters of that kind. We write exactly `count`
    // characters before anything else can see the str; this is the
    // documented way to build a str in place.
    unsafe {
        let obj = Bound::from_owned_ptr_or_err(py, ffi::PyUnicode_New(size, max))?;
        let data = ffi::PyUnicode_DATA(obj.as_ptr());
        if max < 0x80 {
            std::ptr::copy_nonoverlapping(s.as_ptr(), data.cast::<u8>(), count);
        } else if max < 0x100 {
            let out = std::slice::from_raw_parts_mut(data.cast::<u8>(), count);
            for (slot, c) in out.iter_mut().zip(s.chars()) {
                *slot = c as u8;
            }
        } else if max < 0x1_0000 {
            let out = std::slice::from_raw_parts_mut(data.cast::<u16>(), count);
            for (slot, c) in out.iter_mut().zip(s.chars()) {
                *slot = c as u16;
            }
        } else {
            let out = std::slice::from_raw_parts_mut(data.cast::<u32>(), count);
            for (slot, c) in out.iter_mut().zip(s.chars()) {
                *slot = c as u32;
            }
        }
        Ok(obj)
    }
}

/// `int(text)` for ints outside `i64` (the decoder checked the text is an
/// optional sign and digits). Python limits the digits it converts
/// (`sys.set_int_max_str_digits`, 4300 by default), as it does for rpyc's
/// own `int(...)`; that refusal is reported as malformed input.
fn big_int<'py>(py: Python<'py>, text: &str, offset: usize) -> PyResult<Bound<'py, PyAny>> {
    // Up to 38 digits fit an i128, which pyo3 converts from its bytes; that
    // is several times cheaper than CPython's decimal parser.
    if let Ok(n) = text.trim_matches(|c: char| c.is_ascii_whitespace()).parse::<i128>() {
        return Ok(n.into_pyobject(py)?.into_any());
    }
    // PyLong_FromString wants a NUL-terminated string; most big ints are
    // short enough for a stack buffer.
    let mut stack = [0u8; 64];
    let heap: Vec<u8>;
    let cstr: &[u8] = if text.len() < stack.len() {
        stack[..text.len()].copy_from_slice(text.as_bytes());
        &stack[..=text.len()]
    } else {
        heap = text.bytes().chain(std::iter::once(0)).collect();
        &heap
    };
    // SAFETY: `cstr` is NUL-terminated ASCII without interior NULs (the
    // decoder validated the digits); the call returns a new reference or
    // NULL with an exception set.
    let res = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyLong_FromString(cstr.as_ptr().cast(), std::ptr::null_mut(), 10),
        )
    };
    res.map_err(|e| refused(py, format!("brine int ending at offset {offset} cannot be converted"), e))
}

/// Reads `n` items into a new tuple.
fn load_tuple<'py>(py: Python<'py>, dec: &mut Decoder<'_>, n: usize) -> PyResult<Bound<'py, PyTuple>> {
    dec.enter().map_err(to_py_err)?;
    // The decoder checked `n` against the bytes present (every item takes at
    // least one), so it fits `Py_ssize_t` and the allocation is bounded by
    // the input's size.
    let len = ffi::Py_ssize_t::try_from(n).map_err(|_| to_py_err(codec::BrineError::TooLarge { len: n }))?;
    // SAFETY: PyTuple_New returns a new reference or NULL with an exception
    // set, which `from_owned_ptr_or_err` turns into Err. Filling the fresh
    // tuple in place is how CPython builds tuples itself; it saves
    // collecting the items first. A tuple dropped half filled (on error) is
    // fine: its empty slots are NULL, which deallocation and GC traversal
    // skip.
    let tuple =
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(len))?.cast_into_unchecked::<PyTuple>() };
    for i in 0..len {
        let item = load_from(py, dec)?;
        // SAFETY: `tuple` is a fresh tuple nobody else has seen, `i < len`,
        // its slot `i` is still NULL, and PyTuple_SET_ITEM steals the
        // reference `into_ptr` hands over.
        unsafe { ffi::PyTuple_SET_ITEM(tuple.as_ptr(), i, item.into_ptr()) };
    }
    dec.leave();
    Ok(tuple)
}

/// Reads `n` members into a new frozenset.
fn load_frozenset<'py>(py: Python<'py>, dec: &mut Decoder<'_>, n: usize) -> PyResult<Bound<'py, PyAny>> {
    let offset = dec.offset();
    dec.enter().map_err(to_py_err)?;
    // SAFETY: PyFrozenSet_New(NULL) returns a new, empty frozenset (a fresh
    // object, not a shared one) or NULL with an exception set.
    let set = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyFrozenSet_New(std::ptr::null_mut()))? };
    for _ in 0..n {
        let item = load_from(py, dec)?;
        // SAFETY: PySet_Add may fill a brand-new frozenset before it is
        // shared (CPython documents this use); it borrows `item` and returns
        // -1 with an exception set on failure.
        if unsafe { ffi::PySet_Add(set.as_ptr(), item.as_ptr()) } < 0 {
            // A hostile peer can put an unhashable member (a slice, before
            // Python 3.12) in a frozenset; that is malformed input, not a
            // bug of ours.
            let cause = PyErr::fetch(py);
            return Err(refused(
                py,
                format!("brine frozenset at offset {offset} has a member that cannot be hashed"),
                cause,
            ));
        }
    }
    dec.leave();
    Ok(set)
}

/// Reads the (start, stop, step) of a slice.
fn load_slice<'py>(py: Python<'py>, dec: &mut Decoder<'_>) -> PyResult<Bound<'py, PyAny>> {
    dec.enter().map_err(to_py_err)?;
    let start = load_from(py, dec)?;
    let stop = load_from(py, dec)?;
    let step = load_from(py, dec)?;
    dec.leave();
    // SAFETY: PySlice_New borrows its three arguments (alive in the bindings
    // above) and returns a new reference or NULL with an exception set.
    // pyo3's `PySlice::new` only takes integers.
    unsafe {
        Bound::from_owned_ptr_or_err(py, ffi::PySlice_New(start.as_ptr(), stop.as_ptr(), step.as_ptr()))
    }
}
