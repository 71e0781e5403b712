//! rpyc's attribute handlers served natively on Python objects: GETATTR,
//! SETATTR, DELATTR, CALLATTR, DEL, and the attribute lookups inside CMP and
//! CTXEXIT.
//!
//! They follow rpyc 6.0.2's `_access_attr` and `_check_attr` step for step:
//! the same type checks of the name, the same `getattr(type(obj),
//! "_rpyc_getattr", None)` override lookup, the shared attribute policy
//! ([`crate::protocol::policy`]) reading the connection's *live* config
//! (`conn._config`, looked up per request, so a change after connecting
//! takes effect; `live_config.rs` reads its switches again whenever the
//! dict has changed), probing with Python's `hasattr` and rpyc's
//! `hasattr_static`, and the same exceptions with the same messages. A
//! user's properties and `__getattr__` run as often and in the same order
//! as under rpyc.
//!
//! What makes it fast is not skipping steps but running them without
//! Python frames, and answering `hasattr_static` (rpyc's
//! `inspect.getattr_static`, slow and hit on every `__next__` of an
//! iteration) natively whenever the object's classes are plain enough for
//! the answer to be certain; otherwise rpyc's own function answers.
//!
//! The serving path calls [`serve_natively`] only for handlers that are
//! still rpyc's own, on a connection class that overrides none of
//! `_access_attr`, `_check_attr`, `_handle_getattr` and `_handle_call`; a
//! subclass's override always runs as written.

use pyo3::exceptions::{PyAttributeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple, PyType};

use crate::protocol::message::Handler;
use crate::protocol::policy::{check_attr, Access, AttrProbe, PolicyError};

use super::live_config::LiveConfig;
use super::lookup::{class_attr_opt, is_function_type, type_lookup};
use super::tables::{id_pack_parts, LocalObjects};
use super::world::PySide;

/// The handlers this module serves.
pub(crate) const NATIVE_HANDLERS: [Handler; 7] = [
    Handler::GetAttr,
    Handler::SetAttr,
    Handler::DelAttr,
    Handler::CallAttr,
    Handler::Del,
    Handler::Cmp,
    Handler::CtxExit,
];

/// An object's attributes as Python sees them.
struct PyAttrs<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    /// rpyc's `hasattr_static`, for what cannot be answered natively.
    fallback: &'a Bound<'py, PyAny>,
    /// The last name `has_attr` made a Python str of: the policy probes the
    /// exposed name, then (usually) resolves to it.
    last: Option<Bound<'py, PyString>>,
}

impl<'py> PyAttrs<'_, 'py> {
    /// `name` as a Python str, the one made last time when it is the same.
    fn py_name(&mut self, name: &str) -> Bound<'py, PyString> {
        match &self.last {
            Some(s) if s.to_str().is_ok_and(|t| t == name) => s.clone(),
            _ => {
                let s = names::get(self.obj.py(), name);
                self.last = Some(s.clone());
                s
            }
        }
    }
}

impl AttrProbe<PyErr> for PyAttrs<'_, '_> {
    fn has_attr(&mut self, name: &str) -> PyResult<bool> {
        let name = self.py_name(name);
        if plainly_a_method(self.obj, &name) {
            return Ok(true);
        }
        if plainly_absent(self.obj, &name) {
            return Ok(false);
        }
        self.obj.hasattr(name)
    }
    fn has_attr_static(&mut self, name: &str) -> PyResult<bool> {
        let name = names::get(self.obj.py(), name);
        match static_lookup(self.obj, &name)? {
            Some(found) => Ok(found),
            None => self.fallback.call1((self.obj, name))?.is_truthy(),
        }
    }
}

/// True when `hasattr(obj, name)` is certainly true without running
/// anything: `obj`'s type looks attributes up as `object` does (no
/// `__getattribute__` or `__getattr__` of its own) and has a plain function
/// under `name` on its MRO. The instance's own value, if any, or the bound
/// method is then what `getattr` returns; only making it is skipped (rpyc
/// asks `hasattr(service, "exposed_echo")` before every `getattr` of it).
/// False means "ask Python".
fn plainly_a_method(obj: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> bool {
    let tp = obj.get_type();
    generic_lookup(&tp) && type_lookup(&tp, name).is_some_and(|d| is_function_type(&d.get_type()))
}

/// True when `hasattr(obj, name)` is certainly false without running
/// anything: `obj`'s type looks attributes up as `object` does, nothing on
/// its MRO has `name`, and its instances have no `__dict__`
/// (`tp_dictoffset` is 0; a managed dict has it non-zero). `object`'s
/// lookup then has nowhere else to look and raises AttributeError, which
/// is all `hasattr` would learn, at the cost of making the error. rpyc
/// probes `exposed___next__` on an iterator before every item.
fn plainly_absent(obj: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> bool {
    let tp = obj.get_type();
    generic_lookup(&tp) && no_instance_dict(&tp) && type_lookup(&tp, name).is_none()
}

/// `tp` looks attributes up as `object` does: no `__getattribute__` or
/// `__getattr__` of its own anywhere.
fn generic_lookup(tp: &Bound<'_, PyType>) -> bool {
    // SAFETY: reading a slot of a live type object. The function is
    // CPython's, in another shared object: its address here (through the
    // GOT) is the one CPython stores in the slot of every class that
    // inherits `object`'s lookup, so comparing addresses is meaningful.
    let getattro = unsafe { (*tp.as_type_ptr()).tp_getattro };
    getattro.map(|f| f as usize) == Some(ffi::PyObject_GenericGetAttr as *const () as usize)
}

/// `tp`'s instances have no `__dict__`: no dict offset, and no managed
/// dict (whose offset CPython also sets non-zero).
fn no_instance_dict(tp: &Bound<'_, PyType>) -> bool {
    // `Py_TPFLAGS_MANAGED_DICT`, which pyo3 defines from CPython 3.11 on;
    // no earlier CPython uses the bit, so it is tested on every version.
    const MANAGED_DICT: std::os::raw::c_ulong = 1 << 4;
    // SAFETY: reading plain fields of a live type object.
    unsafe {
        let t = tp.as_type_ptr();
        (*t).tp_dictoffset == 0 && ((*t).tp_flags & MANAGED_DICT) == 0
    }
}

/// `inspect.getattr_static(obj, name)` succeeds, answered without Python
/// code when the answer is certain: `obj` is an instance (not a class) whose
/// classes all have the plain `type` as metaclass and none of which shadows
/// `__dict__`. Then getattr_static looks in the instance dict and in the
/// class dicts along the MRO, and so does this. `None` in every other case.
fn static_lookup(obj: &Bound<'_, PyAny>, name: &Bound<'_, PyString>) -> PyResult<Option<bool>> {
    let py = obj.py();
    let tp = obj.get_type();
    let plain_type = py.get_type::<PyType>();
    if tp.is_subclass(&plain_type)? {
        return Ok(None);
    }
    let mro = tp.mro();
    let dict_key = pyo3::intern!(py, "__dict__");
    let mut class_dicts = Vec::with_capacity(mro.len());
    for entry in mro.iter() {
        if !entry.get_type().is(&plain_type) {
            return Ok(None);
        }
        let entry = entry.cast_into::<PyType>()?;
        // With `type` as metaclass, `entry.__dict__` is the class's own
        // namespace (type's data descriptor wins over anything in it).
        let ns = entry.getattr(dict_key)?;
        // Asked first, so a class without the entry (most of them) costs
        // no KeyError.
        if ns.contains(dict_key)? && !is_plain_dict_descriptor(&ns.get_item(dict_key)?, &entry)? {
            return Ok(None);
        }
        class_dicts.push(ns);
    }
    // The instance dict, as `object.__getattribute__(obj, "__dict__")`:
    // certainly none (that lookup's AttributeError) when the type makes
    // none and, as checked above, no class puts a `__dict__` of its own in
    // the way.
    let inst = if no_instance_dict(&tp) {
        None
    } else {
        // SAFETY: valid pointers; a new reference or NULL with an
        // exception set.
        Some(unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyObject_GenericGetAttr(obj.as_ptr(), dict_key.as_ptr()))
        })
    };
    match inst {
        Some(Ok(d)) => match d.cast::<PyDict>() {
            Ok(d) if d.is_exact_instance_of::<PyDict>() => {
                if d.contains(name)? {
                    return Ok(Some(true));
                }
            }
            _ => return Ok(None),
        },
        None => {}
        Some(Err(e)) if e.is_instance_of::<PyAttributeError>(py) => {}
        Some(Err(_)) => return Ok(None),
    }
    for ns in class_dicts {
        if ns.contains(name)? {
            return Ok(Some(true));
        }
    }
    Ok(Some(false))
}

/// The `__dict__` entry a class gets from `type`: a getset descriptor named
/// `__dict__` whose owner is that class. Anything else shadows `__dict__`,
/// and getattr_static then skips the instance dict.
fn is_plain_dict_descriptor(d: &Bound<'_, PyAny>, owner: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = d.py();
    // Only the address of CPython's static getset-descriptor type object is
    // taken; nothing is read or written through it.
    let getset = std::ptr::addr_of_mut!(ffi::PyGetSetDescr_Type);
    if d.get_type().as_ptr() != getset.cast::<ffi::PyObject>() {
        return Ok(false);
    }
    Ok(d.getattr(pyo3::intern!(py, "__name__"))?.eq("__dict__")?
        && d.getattr(pyo3::intern!(py, "__objclass__"))?.is(owner))
}

/// rpyc's `_access_attr(obj, name, args, overrider, param, default)`.
fn access_attr<'py>(
    side: &PySide<'_, 'py>,
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
    access: Access,
    value: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let name = if name.is_exact_instance_of::<PyBytes>() {
        // `str(name, "utf8")`
        let b = name.cast::<PyBytes>()?;
        PyString::from_encoded_object(b.as_any(), Some(c"utf8"), None)?
    } else if name.is_exact_instance_of::<PyString>() {
        name.cast::<PyString>()?.clone()
    } else {
        return Err(PyTypeError::new_err("name must be a string"));
    };
    let overrider = match access {
        Access::Get => pyo3::intern!(py, "_rpyc_getattr"),
        Access::Set => pyo3::intern!(py, "_rpyc_setattr"),
        Access::Del => pyo3::intern!(py, "_rpyc_delattr"),
    };
    let mut args: Vec<Bound<'py, PyAny>> = vec![obj.clone()];
    let tp = obj.get_type();
    let found = match class_attr_opt(&tp, overrider)? {
        Some(found) => found,
        None => tp.getattr_opt(overrider)?,
    };
    match found {
        Some(accessor) if !accessor.is_none() => {
            args.push(name.into_any());
            args.extend(value.cloned());
            accessor.call1(PyTuple::new(py, args)?)
        }
        _ => {
            let resolved = check(side, obj, &name, access)?;
            match access {
                Access::Get => obj.getattr(resolved),
                Access::Set => {
                    let v = value.cloned().unwrap_or_else(|| py.None().into_bound(py));
                    obj.setattr(resolved, v).map(|()| py.None().into_bound(py))
                }
                Access::Del => obj.delattr(resolved).map(|()| py.None().into_bound(py)),
            }
        }
    }
}

/// rpyc's `_check_attr(obj, name, perm)` over the live config.
fn check<'py>(
    side: &PySide<'_, 'py>,
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
    access: Access,
) -> PyResult<Bound<'py, PyString>> {
    let py = obj.py();
    let config = side.conn.getattr(pyo3::intern!(py, "_config"))?;
    let config = LiveConfig::new(
        config.cast_into::<PyDict>().map_err(|e| PyTypeError::new_err(e.to_string()))?,
        name.clone(),
        &side.w.config_memo,
    );
    let fallback = side.w.hasattr_static.bind(py);
    let mut probe = PyAttrs { obj, fallback, last: None };
    let text = name.to_str()?;
    match check_attr(&config, &mut probe, text, access) {
        Ok(resolved) if resolved == text => Ok(name.clone()),
        Ok(resolved) => Ok(probe.py_name(&resolved)),
        Err(PolicyError::Denied { .. }) => {
            Err(PyAttributeError::new_err(format!("cannot access {}", name.repr()?)))
        }
        Err(PolicyError::Failed(e)) => Err(e),
    }
}

/// The strs of the names the policy makes (`exposed_` plus the name), kept
/// from one request to the next. The same str object each time keeps its
/// hash, and CPython's attribute cache, which matches names by address,
/// then answers the class lookups of `hasattr` and `getattr` at once.
mod names {
    use std::collections::HashMap;

    use parking_lot::Mutex;
    use pyo3::prelude::*;
    use pyo3::types::PyString;

    /// The names come from peers: a peer that sends names without end gets
    /// the map emptied now and then rather than grown.
    const MAX: usize = 1024;

    static NAMES: Mutex<Option<HashMap<String, Py<PyString>>>> = Mutex::new(None);

    /// `name` as a Python str, the kept one when there is one.
    pub(super) fn get<'py>(py: Python<'py>, name: &str) -> Bound<'py, PyString> {
        let mut names = NAMES.lock();
        let map = names.get_or_insert_with(HashMap::new);
        if let Some(s) = map.get(name) {
            return s.bind(py).clone();
        }
        if map.len() >= MAX {
            map.clear();
        }
        let s = PyString::new(py, name);
        map.insert(name.to_owned(), s.clone().unbind());
        s
    }
}

/// `obj(*args, **dict(kwargs))`, rpyc's `_handle_call`.
pub(crate) fn call<'py>(
    obj: &Bound<'py, PyAny>,
    args: &Bound<'py, PyAny>,
    kwargs: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let args = match args.cast::<PyTuple>() {
        Ok(t) => t.clone(),
        Err(_) => PyTuple::new(py, args.try_iter()?.collect::<PyResult<Vec<_>>>()?)?,
    };
    let kwargs = match kwargs {
        None => None,
        Some(kw) => match kw.cast::<PyTuple>() {
            Ok(pairs) if pairs.is_empty() => None,
            _ => Some(py.get_type::<PyDict>().call1((kw,))?.cast_into::<PyDict>()?),
        },
    };
    obj.call(args, kwargs.as_ref())
}

/// Serves `handler` natively when the request has the shape rpyc's handler
/// takes; `None` to let rpyc's Python handler run (and fail as it would).
pub(crate) fn serve_natively<'py>(
    side: &PySide<'_, 'py>,
    handler: Handler,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = args.py();
    let n = args.len();
    let arg = |i: usize| args.get_item(i);
    Ok(Some(match (handler, n) {
        (Handler::GetAttr, 2) => access_attr(side, &arg(0)?, &arg(1)?, Access::Get, None)?,
        (Handler::SetAttr, 3) => access_attr(side, &arg(0)?, &arg(1)?, Access::Set, Some(&arg(2)?))?,
        (Handler::DelAttr, 2) => access_attr(side, &arg(0)?, &arg(1)?, Access::Del, None)?,
        (Handler::CallAttr, 3 | 4) => {
            let f = access_attr(side, &arg(0)?, &arg(1)?, Access::Get, None)?;
            let kwargs = if n == 4 { Some(arg(3)?) } else { None };
            call(&f, &arg(2)?, kwargs.as_ref())?
        }
        (Handler::Cmp, 2 | 3) => {
            let obj = arg(0)?;
            let op = if n == 3 { arg(2)? } else { PyString::new(py, "__cmp__").into_any() };
            let tp = obj.get_type().into_any();
            let f = access_attr(side, &tp, &op, Access::Get, None)?;
            f.call1((obj, arg(1)?))?
        }
        (Handler::Del, 1 | 2) => {
            let obj = arg(0)?;
            let table = side.w.local_objects.bind(py);
            let id_pack = match (table.cast::<LocalObjects>(), side.w.native_id_pack) {
                (Ok(native), true) => match id_pack_parts(&obj)? {
                    Some(parts) => native.get().del_key(parts)?,
                    None => side.w.id_pack(&obj)?,
                },
                _ => side.w.id_pack(&obj)?,
            };
            let count = if n == 2 { Some(arg(1)?) } else { None };
            match (table.cast::<LocalObjects>(), count) {
                (Ok(native), count) => native.get().decref(&id_pack, count.as_ref())?,
                (Err(_), Some(count)) => {
                    drop(table.call_method1(pyo3::intern!(py, "decref"), (id_pack, count))?)
                }
                (Err(_), None) => drop(table.call_method1(pyo3::intern!(py, "decref"), (id_pack,))?),
            }
            py.None().into_bound(py)
        }
        // With an exception to pass on, rpyc re-raises it to get
        // `sys.exc_info()`: its own handler does that part.
        (Handler::CtxExit, 2) if arg(1)?.is_none() => {
            let exit =
                access_attr(side, &arg(0)?, &PyString::new(py, "__exit__").into_any(), Access::Get, None)?;
            exit.call1((py.None(), py.None(), py.None()))?
        }
        _ => return Ok(None),
    }))
}
