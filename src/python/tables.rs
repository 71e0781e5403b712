//! The Python world's bookkeeping, native: the table of objects the peer
//! holds (`conn._local_objects`), and `get_id_pack` for the objects that go
//! into it.
//!
//! [`LocalObjects`] is rpyc's `RefCountingColl` (same methods, same
//! refcount rule, the same `_dict` of `key -> [obj, count]`), with every
//! operation done in Rust while holding the GIL, so each is atomic against
//! Python threads without a lock, and the engine reaches it without a
//! Python call. [`id_pack`] answers rpyc 6's `get_id_pack` natively for the
//! objects that make up nearly all traffic (instances whose attribute
//! lookups run no user code, and bound methods), and asks rpyc's own
//! function for everything else.

use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::exceptions::PyKeyError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyModule, PyString, PyTuple, PyType};

use crate::brine::Decoder;
use crate::fasthash::FastMap;

use super::brine::load_from;

use super::lookup::{
    generic_getattr, has_plain_metaclass, is_bound_method_type, is_function_type, is_heap_type, is_subtype,
    lacks_plainly, method_function, type_lookup,
};

/// rpyc's `RefCountingColl`, native. Registered as
/// `rpyc_rs._native.LocalObjects`; `rpyc_rs.Connection` puts one in
/// `_local_objects`.
#[pyclass(module = "rpyc_rs._native", name = "LocalObjects", frozen)]
pub struct LocalObjects {
    /// `key -> [obj, count]`. Changed only through this class (`_dict`
    /// hands it out read-only), so `wire` below can mirror it.
    dict: Py<PyDict>,
    /// Entries by the bytes their key went out as. The peer names an
    /// object it holds by sending its key back, byte for byte as we boxed
    /// it, so the engine finds the entry without building the key or
    /// looking it up in the dict (a tuple hashed and compared each time).
    /// Only keys made of an exact str and two exact ints go in: their bytes
    /// decode to an equal tuple, so a hit finds exactly what decoding and
    /// looking up would. Every entry here is in the dict, with the very
    /// list stored there: an entry goes when its key leaves the dict.
    wire: Mutex<FastMap<Arc<[u8]>, Known>>,
    /// The entry [`get_from`](Self::get_from) last found by its bytes. A
    /// DEL unboxes its object, then rpyc decrefs `get_id_pack(obj)`: when
    /// that equals this key (checked), the entry is used as it is, the
    /// dict matching its key by identity. Any removal from the dict drops
    /// it, so it is never stale.
    last_found: Mutex<Option<Known>>,
}

/// One entry of the table: the dict's own key object, the `[obj, count]`
/// list stored under it, and the bytes the key went out as.
struct Known {
    key: Py<PyTuple>,
    slot: Py<PyList>,
    wire: Arc<[u8]>,
}

impl Known {
    fn clone_ref(&self, py: Python<'_>) -> Known {
        Known { key: self.key.clone_ref(py), slot: self.slot.clone_ref(py), wire: self.wire.clone() }
    }
}

#[pymethods]
impl LocalObjects {
    #[new]
    fn py_new(py: Python<'_>) -> Self {
        LocalObjects {
            dict: PyDict::new(py).unbind(),
            wire: Mutex::new(FastMap::default()),
            last_found: Mutex::new(None),
        }
    }

    /// Records one more reference to `obj` sent under `key`: stored with a
    /// count of 0 the first time, plus one each time after.
    fn add(&self, key: &Bound<'_, PyAny>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        self.insert(key, obj).map(drop)
    }

    /// Forgets everything.
    fn clear(&self, py: Python<'_>) {
        // The mirror is emptied first: clearing the dict may run an
        // object's `__del__`, which may come back here and must not find
        // what the dict no longer has. What the mirror held dies last,
        // after its lock is released (the last reference to an object may
        // be among it).
        let wire = std::mem::take(&mut *self.wire.lock());
        let last = self.last_found.lock().take();
        self.dict.bind(py).clear();
        drop((wire, last));
    }

    /// Drops `count` references: the entry goes when its count is below
    /// `count`, else `count` is subtracted (rpyc's rule, for any number).
    #[pyo3(signature = (key, count = None))]
    pub(crate) fn decref(&self, key: &Bound<'_, PyAny>, count: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let py = key.py();
        let dict = self.dict.bind(py);
        // The entry the DEL's object was just found under, when `key` is its
        // key object; else the dict's.
        let taken = self.last_found.lock().take();
        let found = taken.filter(|k| k.key.bind(py).is(key));
        let slot = match &found {
            Some(k) => k.slot.bind(py).clone(),
            None => {
                let slot = dict.get_item(key)?.ok_or_else(|| PyKeyError::new_err((key.clone().unbind(),)))?;
                slot.cast_into::<PyList>()?
            }
        };
        let one = 1i64.into_pyobject(py)?.into_any();
        let count = count.unwrap_or(&one);
        let held = slot.get_item(1)?;
        if held.lt(count)? {
            dict.del_item(key)?;
            match found {
                // The entry's own bytes: nothing to work out.
                Some(k) => {
                    let removed = self.wire.lock().remove(&k.wire);
                    drop(removed);
                }
                None => self.forget(key),
            }
            Ok(())
        } else {
            slot.set_item(1, held.sub(count)?)
        }
    }

    fn __getitem__<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        self.get(key)
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.dict.bind(key.py()).contains(key)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.dict.bind(py).len()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.dict.bind(py).repr()?.to_string())
    }

    /// The table itself, `key -> [obj, count]`, as rpyc's `_dict`, read-only
    /// (a `types.MappingProxyType`): it changes through the methods alone.
    #[getter(_dict)]
    fn dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: `dict` is a live dict; the result is a new reference or
        // NULL with an exception set.
        unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyDictProxy_New(self.dict.as_ptr())) }
    }
}

impl LocalObjects {
    /// `add`, returning the new entry's list when `key` is new to the table
    /// (the caller may then [`remember_wire`](Self::remember_wire) it).
    pub(crate) fn insert<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        obj: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let py = key.py();
        let dict = self.dict.bind(py);
        match dict.get_item(key)? {
            Some(slot) => {
                let slot = slot.cast_into::<PyList>()?;
                let n = slot.get_item(1)?.add(1)?;
                slot.set_item(1, n).map(|()| None)
            }
            None => {
                let slot = PyList::new(py, [obj.clone(), 0i64.into_pyobject(py)?.into_any()])?;
                dict.set_item(key, &slot)?;
                Ok(Some(slot))
            }
        }
    }

    /// Notes that `key`, just stored with the list `slot`, went out as the
    /// bytes `wire`, so [`get_from`](Self::get_from) knows it when the
    /// peer sends it back.
    pub(crate) fn remember_wire(&self, wire: &[u8], key: &Bound<'_, PyAny>, slot: &Bound<'_, PyList>) {
        let Some(key) = plain_key(key) else { return };
        let wire: Arc<[u8]> = wire.into();
        let known = Known { key: key.clone().unbind(), slot: slot.clone().unbind(), wire: wire.clone() };
        let replaced = self.wire.lock().insert(wire, known);
        drop(replaced);
    }

    /// Drops what mirrors `key`, which has just left the dict. Nothing
    /// runs under the mirror's locks: what it held (perhaps an object's
    /// last reference) dies after they are released, and the dict is probed
    /// outside them.
    fn forget(&self, key: &Bound<'_, PyAny>) {
        let py = key.py();
        let last = self.last_found.lock().take();
        drop(last);
        // A plain key's bytes are the ones it was remembered under (an equal
        // plain key encodes the same). Any other key may still equal a
        // remembered one (True == 1): the entries whose key left the dict
        // go, found by probing the dict with each.
        let mut bytes = Vec::with_capacity(48);
        let removed: Vec<Known> =
            match plain_key(key).map(|k| super::brine::dump_into(k.as_any(), &mut bytes, 0)) {
                Some(Ok(())) => {
                    let removed = self.wire.lock().remove(bytes.as_slice());
                    removed.into_iter().collect()
                }
                _ => {
                    let entries: Vec<(Arc<[u8]>, Py<PyTuple>)> =
                        self.wire.lock().iter().map(|(w, k)| (w.clone(), k.key.clone_ref(py))).collect();
                    let dict = self.dict.bind(py);
                    let gone: Vec<Arc<[u8]>> = entries
                        .into_iter()
                        .filter(|(_, k)| !dict.contains(k.bind(py)).unwrap_or(false))
                        .map(|(w, _)| w)
                        .collect();
                    // Removing more than needed (an entry made again meanwhile)
                    // only costs that entry its shortcut.
                    let mut wire = self.wire.lock();
                    gone.iter().filter_map(|w| wire.remove(w)).collect()
                }
            };
        drop(removed);
    }

    /// The object stored under the key `dec` is at, reading past the key:
    /// [`get`](Self::get) of the loaded key, where a key we sent is
    /// recognised by its bytes and neither built nor looked up.
    pub(crate) fn get_from<'py>(
        &self,
        py: Python<'py>,
        dec: &mut Decoder<'_>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut probe = dec.clone();
        // An id pack's bytes, measured by their lengths alone: a match with
        // bytes we sent is well-formed, anything else is decoded (and
        // checked) from the start below.
        let wire = probe.flat_tuple_bytes().ok_or(()).or_else(|()| probe.value_bytes().map_err(drop));
        if let Ok(wire) = wire {
            let known = self.wire.lock().get(wire).map(|k| k.clone_ref(py));
            if let Some(known) = known {
                *dec = probe;
                let found = known.slot.bind(py).get_item(0);
                let replaced = self.last_found.lock().replace(known);
                drop(replaced);
                return found;
            }
        }
        let key = load_from(py, dec)?;
        self.get(&key)
    }

    /// The key rpyc's `_handle_del` releases `obj` under, `get_id_pack(obj)`
    /// (`parts`): the table's own tuple when it is the key `obj` was just
    /// found under (see `last_found`), else a new tuple.
    pub(crate) fn del_key<'py>(&self, parts: IdPackParts<'py>) -> PyResult<Bound<'py, PyAny>> {
        let py = parts.name_pack.py();
        if let Some(known) = self.last_found.lock().as_ref() {
            let key = known.key.bind(py);
            if parts.match_key(key) {
                return Ok(key.clone().into_any());
            }
        }
        Ok(parts.into_tuple()?.into_any())
    }

    /// The object stored under `key` (a KeyError when there is none).
    pub(crate) fn get<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let slot = self
            .dict
            .bind(key.py())
            .get_item(key)?
            .ok_or_else(|| PyKeyError::new_err((key.clone().unbind(),)))?;
        slot.get_item(0)
    }
}

/// `key` as a tuple when it is an exact `(str, int, int)`: the id packs
/// that round-trip through brine to an equal tuple.
fn plain_key<'a, 'py>(key: &'a Bound<'py, PyAny>) -> Option<&'a Bound<'py, PyTuple>> {
    let t = key.cast_exact::<PyTuple>().ok()?;
    let plain = t.len() == 3
        && t.get_borrowed_item(0).is_ok_and(|n| n.is_exact_instance_of::<PyString>())
        && t.get_borrowed_item(1).is_ok_and(|n| n.is_exact_instance_of::<PyInt>())
        && t.get_borrowed_item(2).is_ok_and(|n| n.is_exact_instance_of::<PyInt>());
    plain.then_some(t)
}

/// rpyc 6's `get_id_pack(obj)`, natively when the answer is certain without
/// running user code, `None` otherwise (the caller then asks rpyc).
///
/// rpyc evaluates `getattr(obj, "____id_pack__", undef)` and
/// `getattr(obj, "__name__", None)`, then takes the instance branch:
/// `(f"{cls.__module__}.{cls.__name__}", id(type(obj)), id(obj))` with
/// `cls = obj.__class__`. That is certain here when: `obj` is not a module
/// or a class; its type and that type's metaclass are plain (`object`'s
/// attribute lookup, `type` as metaclass, the standard `__class__`); neither
/// lookup finds anything, or finds nothing that would run code; and the
/// class's `__module__` and `__name__` are strings. A bound method of a
/// plain function is the other common case (what `root.echo` returns).
pub(crate) fn id_pack<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyTuple>>> {
    id_pack_parts(obj)?.map(IdPackParts::into_tuple).transpose()
}

/// What [`id_pack`] puts in its tuple.
pub(crate) struct IdPackParts<'py> {
    /// `f"{cls.__module__}.{cls.__name__}"`
    pub(crate) name_pack: Bound<'py, PyString>,
    /// `id(type(obj))`
    pub(crate) type_id: usize,
    /// `id(obj)`
    pub(crate) obj_id: usize,
}

impl<'py> IdPackParts<'py> {
    /// The id pack itself, `(name_pack, type_id, obj_id)`.
    pub(crate) fn into_tuple(self) -> PyResult<Bound<'py, PyTuple>> {
        let py = self.name_pack.py();
        let (type_id, obj_id) = (self.type_id.into_pyobject(py)?, self.obj_id.into_pyobject(py)?);
        PyTuple::new(py, [self.name_pack.into_any(), type_id.into_any(), obj_id.into_any()])
    }

    /// True when `key` is a tuple equal to the id pack these parts make
    /// (compared without running any user code: a str and two ints).
    pub(crate) fn match_key(&self, key: &Bound<'_, PyTuple>) -> bool {
        let (Ok(name), Ok(t), Ok(o)) =
            (key.get_borrowed_item(0), key.get_borrowed_item(1), key.get_borrowed_item(2))
        else {
            return false;
        };
        key.len() == 3
            && (name.is(&self.name_pack)
                || name.is_exact_instance_of::<PyString>() && name.eq(&self.name_pack).unwrap_or(false))
            && t.is_exact_instance_of::<PyInt>()
            && o.is_exact_instance_of::<PyInt>()
            && t.extract::<usize>().is_ok_and(|t| t == self.type_id)
            && o.extract::<usize>().is_ok_and(|o| o == self.obj_id)
    }
}

/// [`id_pack`]'s answer in parts, before it is made a tuple.
pub(crate) fn id_pack_parts<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<IdPackParts<'py>>> {
    let tp = obj.get_type();
    // Checked every time: assigning a class's `__class__` need not
    // invalidate its version tag.
    if !has_plain_metaclass(&tp) {
        return Ok(None);
    }
    let name_pack = match version_tag(&tp).and_then(|tag| class_facts::get(&tp, tag)) {
        Some(name_pack) => name_pack,
        None => {
            let Some(name_pack) = class_name_pack(&tp)? else {
                return Ok(None);
            };
            // The tag read after the lookups, which assign one if needed.
            if let Some(tag) = version_tag(&tp) {
                class_facts::put(&tp, tag, &name_pack);
            }
            name_pack
        }
    };
    if !instance_is_plain(obj, &tp)? {
        return Ok(None);
    }
    Ok(Some(IdPackParts { name_pack, type_id: tp.as_ptr() as usize, obj_id: obj.as_ptr() as usize }))
}

/// The class-level half of [`id_pack`]'s certainty (everything that only a
/// change to a class on the MRO can change, which invalidates its version
/// tag), and rpyc's `f"{cls.__module__}.{cls.__name__}"`; `None` when the
/// answer would not be certain.
fn class_name_pack<'py>(tp: &Bound<'py, PyType>) -> PyResult<Option<Bound<'py, PyString>>> {
    let py = tp.py();
    // With `type` as metaclass, `issubclass` is the plain MRO walk.
    if is_subtype(tp, &py.get_type::<PyType>()) || is_subtype(tp, &py.get_type::<PyModule>()) {
        return Ok(None);
    }
    let id_key = pyo3::intern!(py, "____id_pack__");
    let name_key = pyo3::intern!(py, "__name__");
    let class_key = pyo3::intern!(py, "__class__");
    // The standard `__class__` (object's), so `obj.__class__` is `type(obj)`.
    let standard_class = type_lookup(&py.get_type::<pyo3::types::PyAny>(), class_key);
    match (type_lookup(tp, class_key), standard_class) {
        (Some(a), Some(b)) if a.is(&b) => {}
        _ => return Ok(None),
    }
    if !is_bound_method_type(tp) {
        if !generic_getattr(tp) || type_lookup(tp, id_key).is_some() {
            return Ok(None);
        }
        // `__name__` may be found (rpyc ignores its value on this branch),
        // but not through a descriptor that would run code: a class
        // written in Python could have one; a type written in C (a
        // function's, a builtin's) has only C getters.
        if let Some(found) = type_lookup(tp, name_key) {
            if is_heap_type(tp) && found.get_type().hasattr(pyo3::intern!(py, "__get__"))? {
                return Ok(None);
            }
        }
    }
    let module = tp.getattr(pyo3::intern!(py, "__module__"))?;
    let name = tp.getattr(name_key)?;
    let (Ok(module), Ok(name)) = (module.cast::<PyString>(), name.cast::<PyString>()) else {
        return Ok(None);
    };
    Ok(Some(PyString::new(py, &format!("{}.{}", module.to_str()?, name.to_str()?))))
}

/// The instance-level half of [`id_pack`]'s certainty: nothing named
/// `____id_pack__` in the instance's own dict (for a bound method, in its
/// function's, and the function a plain one).
fn instance_is_plain(obj: &Bound<'_, PyAny>, tp: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = obj.py();
    let id_key = pyo3::intern!(py, "____id_pack__");
    if is_bound_method_type(tp) {
        // `method.__getattribute__` asks the function for what the method
        // type lacks: the function must be a plain one lacking both names.
        let func = match method_function(obj) {
            Some(func) => func,
            None => obj.getattr(pyo3::intern!(py, "__func__"))?,
        };
        return Ok(is_function_type(&func.get_type()) && lacks_plainly(&func, id_key));
    }
    Ok(lacks_plainly(obj, id_key))
}

/// `tp`'s version tag when it is current: CPython gives a class a new tag
/// whenever it or a class on its MRO changes (`PyType_Modified`), and never
/// reuses one, so a tag names one state of one class.
///
/// Trusted on CPython 3.8 to 3.12, where a tag is current exactly while
/// `Py_TPFLAGS_VALID_VERSION_TAG` is set. From 3.13 on that flag is unused
/// and a renamed class was seen keeping its tag (tested), so there no tag
/// is trusted and every answer is worked out afresh.
fn version_tag(tp: &Bound<'_, PyType>) -> Option<u32> {
    const VALID_VERSION_TAG: std::os::raw::c_ulong = 1 << 19;
    static TRUSTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*TRUSTED.get_or_init(|| tp.py().version_info() < (3, 13)) {
        return None;
    }
    // SAFETY: reading two fields of a live type object.
    let (tag, flags) = unsafe {
        let t = &*tp.as_ptr().cast::<ffi::PyTypeObject>();
        (t.tp_version_tag, t.tp_flags)
    };
    let current = tag != 0 && (flags as std::os::raw::c_ulong) & VALID_VERSION_TAG != 0;
    current.then_some(tag)
}

/// What [`class_name_pack`] found certain, per class and version tag, so a
/// class's checks and its name pack are made once, not per object.
mod class_facts {
    use parking_lot::Mutex;
    use pyo3::prelude::*;
    use pyo3::types::{PyString, PyType};

    use crate::fasthash::FastMap;

    /// Classes are few; a program that makes them without end gets the
    /// table emptied now and then rather than growing it.
    const MAX: usize = 4096;

    /// Class address -> (version tag, name pack). An address reused by a
    /// new class comes with a new tag, so a stale entry never matches.
    static FACTS: Mutex<Option<Facts>> = Mutex::new(None);

    /// Keyed by class addresses, which a peer cannot choose.
    type Facts = FastMap<usize, (u32, Py<PyString>)>;

    pub(super) fn get<'py>(tp: &Bound<'py, PyType>, tag: u32) -> Option<Bound<'py, PyString>> {
        let facts = FACTS.lock();
        let (t, name_pack) = facts.as_ref()?.get(&(tp.as_ptr() as usize))?;
        (*t == tag).then(|| name_pack.bind(tp.py()).clone())
    }

    pub(super) fn put(tp: &Bound<'_, PyType>, tag: u32, name_pack: &Bound<'_, PyString>) {
        let mut facts = FACTS.lock();
        let map = facts.get_or_insert_with(FastMap::default);
        if map.len() >= MAX {
            map.clear();
        }
        map.insert(tp.as_ptr() as usize, (tag, name_pack.clone().unbind()));
    }
}

/// `get_id_pack(obj)` as the engine computes it: rpyc 6's answer, natively
/// where that is certain, else from `rpyc.lib.get_id_pack` (always, under
/// rpyc 5). For tests and tools; the engine calls [`id_pack`] directly.
#[pyfunction]
fn get_id_pack<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let major = py.import("rpyc.version")?.getattr("version")?.get_item(0)?.str()?.to_str()?.parse::<i64>();
    if major.is_ok_and(|m| m >= 6) {
        if let Some(t) = id_pack(obj)? {
            return Ok(t.into_any());
        }
    }
    py.import("rpyc.lib")?.getattr("get_id_pack")?.call1((obj,))
}

/// Registers the table class and `get_id_pack`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LocalObjects>()?;
    m.add_function(wrap_pyfunction!(get_id_pack, m)?)
}
