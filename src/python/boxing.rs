//! Boxing in the Python object world: Python objects straight to boxed
//! brine bytes and back, with rpyc's own tables (`_local_objects`,
//! `_proxy_cache`) and netref classes, so every rpyc behaviour that hangs off
//! them (refcounts, `isinstance`, the netref class cache) is unchanged.
//!
//! The rules are rpyc's `_box` / `_unbox`: a brine-able object is `VALUE`; a
//! plain tuple holding something that is not is `TUPLE`; a netref of this
//! connection goes home as `LOCAL_REF`; anything else is stored in
//! `_local_objects` and sent as `REMOTE_REF`.

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::brine::{put_int, put_tuple_header, Decoder, Token};
use crate::protocol::boxing::{LABEL_LOCAL_REF, LABEL_REMOTE_REF, LABEL_TUPLE, LABEL_VALUE};

use super::brine::{dump_into, is_dumpable, load_from, to_py_err};
use super::engine::PyWorld;

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
fn generic_setattr(
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

impl PyWorld {
    /// Appends `obj` boxed (rpyc's `_box`).
    pub(crate) fn box_into(
        &self,
        conn: &Bound<'_, PyAny>,
        obj: &Bound<'_, PyAny>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> PyResult<()> {
        let py = obj.py();
        put_tuple_header(out, 2).map_err(to_py_err)?;
        if is_dumpable(obj, depth)? {
            put_int(out, LABEL_VALUE);
            return dump_into(obj, out, depth);
        }
        if let Ok(t) = obj.cast_exact::<PyTuple>() {
            put_int(out, LABEL_TUPLE);
            put_tuple_header(out, t.len()).map_err(to_py_err)?;
            for item in t.iter() {
                self.box_into(conn, &item, out, depth + 1)?;
            }
            return Ok(());
        }
        if obj.is_instance(self.base_netref.bind(py))? {
            let owner = generic_getattr(obj, pyo3::intern!(py, "____conn__"))?;
            if owner.is(conn) {
                put_int(out, LABEL_LOCAL_REF);
                let id_pack = generic_getattr(obj, pyo3::intern!(py, "____id_pack__"))?;
                return dump_into(&id_pack, out, 0);
            }
        }
        let id_pack = self.get_id_pack.bind(py).call1((obj,))?;
        self.local_objects.bind(py).call_method1(pyo3::intern!(py, "add"), (&id_pack, obj))?;
        put_int(out, LABEL_REMOTE_REF);
        dump_into(&id_pack, out, 0)
    }

    /// Reads one boxed object (rpyc's `_unbox`).
    pub(crate) fn unbox<'py>(
        &self,
        conn: &Bound<'py, PyAny>,
        dec: &mut Decoder<'_>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = conn.py();
        let bad = |what: &str| PyValueError::new_err(format!("invalid boxed value from peer: {what}"));
        if dec.next_token().map_err(to_py_err)? != Token::Tuple(2) {
            return Err(bad("not a (label, value) pair"));
        }
        let label = match dec.next_token().map_err(to_py_err)? {
            Token::Int(n) => n,
            _ => return Err(bad("label is not an int")),
        };
        match label {
            LABEL_VALUE => load_from(py, dec),
            LABEL_TUPLE => {
                let n = match dec.next_token().map_err(to_py_err)? {
                    Token::Tuple(n) => n,
                    _ => return Err(bad("TUPLE label without a tuple")),
                };
                dec.enter().map_err(to_py_err)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.unbox(conn, dec)?);
                }
                dec.leave();
                Ok(PyTuple::new(py, items)?.into_any())
            }
            LABEL_LOCAL_REF => {
                let id_pack = load_from(py, dec)?;
                self.local_objects.bind(py).get_item(id_pack)
            }
            LABEL_REMOTE_REF => {
                let raw = load_from(py, dec)?;
                let raw = raw.cast_into::<PyTuple>().map_err(|_| bad("id pack is not a tuple"))?;
                if raw.len() != 3 {
                    return Err(bad("id pack is not a 3-tuple"));
                }
                // rpyc normalises the name with str(): a bytes name from an
                // old peer becomes its repr, as there.
                let name = raw.get_item(0)?.str()?;
                let id_pack = PyTuple::new(py, [name.into_any(), raw.get_item(1)?, raw.get_item(2)?])?;
                let cache = self.proxy_cache.bind(py);
                let cached = cache.call_method1(pyo3::intern!(py, "get"), (&id_pack,))?;
                if !cached.is_none() {
                    let key = pyo3::intern!(py, "____refcount__");
                    let n = generic_getattr(&cached, key)?;
                    let n = n.add(1)?;
                    generic_setattr(&cached, key, &n)?;
                    return Ok(cached);
                }
                let proxy = conn.call_method1(pyo3::intern!(py, "_netref_factory"), (&id_pack,))?;
                cache.set_item(&id_pack, &proxy)?;
                Ok(proxy)
            }
            // rpyc's own wording, which the peer sees in the exception.
            other => Err(PyValueError::new_err(format!("invalid label {other}"))),
        }
    }
}
