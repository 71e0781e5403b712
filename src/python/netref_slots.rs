//! A netref's own slots (`____conn__`, `____id_pack__`, `____refcount__`),
//! read and written where `BaseNetref` keeps them, without a call through
//! `object.__getattribute__` and the slot's descriptor.
//!
//! rpyc's `BaseNetref` declares them in `__slots__`, so each is a member
//! descriptor holding an offset into the instance. When the attribute that
//! the object's type resolves a name to is that very descriptor (exactly
//! what `object.__getattribute__` would find and call: a data descriptor on
//! the type wins over anything else), the slot is read or written at its
//! offset. An empty slot, or any other resolution (a subclass that
//! redefines the name, an object that is no netref), takes the generic path,
//! which gives the same value or the same error as before. Every proxy
//! made, boxed, called or released reads these, so this is on every
//! request's path in a client. Hands [`get`] and [`set`] to `proxies.rs`,
//! `world.rs` and `netref.rs`.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyType};

use super::lookup::type_lookup;
use super::world::{generic_getattr, generic_setattr};

/// The three slots of a netref.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    /// `____conn__`: the connection the proxy belongs to.
    Conn,
    /// `____id_pack__`: the peer's name for the object.
    IdPack,
    /// `____refcount__`: how many references the peer counts for it.
    Refcount,
}

impl Slot {
    fn name(self, py: Python<'_>) -> &Bound<'_, PyString> {
        match self {
            Slot::Conn => pyo3::intern!(py, "____conn__"),
            Slot::IdPack => pyo3::intern!(py, "____id_pack__"),
            Slot::Refcount => pyo3::intern!(py, "____refcount__"),
        }
    }
}

/// `BaseNetref`'s member descriptor for one slot, and where it points.
struct Member {
    descr: Py<PyAny>,
    offset: isize,
}

/// CPython's `PyMemberDescrObject`, as `descrobject.h` lays it out (pyo3's
/// declaration types `d_member` as a getset definition).
#[repr(C)]
struct MemberDescr {
    common: ffi::PyDescrObject,
    member: *const ffi::PyMemberDef,
}

/// `BaseNetref` and its three members, in [`Slot`] order; `None` when
/// `BaseNetref` does not keep them as plain writable object slots (then
/// everything is generic).
static MEMBERS: PyOnceLock<Option<(Py<PyType>, [Member; 3])>> = PyOnceLock::new();

fn members(py: Python<'_>) -> Option<&(Py<PyType>, [Member; 3])> {
    MEMBERS
        .get_or_init(py, || {
            let base =
                py.import("rpyc.core.netref").ok()?.getattr("BaseNetref").ok()?.cast_into::<PyType>().ok()?;
            let member = |slot: Slot| -> Option<Member> {
                let descr = type_lookup(&base, slot.name(py))?;
                // SAFETY: the type check comes first; a member descriptor is
                // a `PyMemberDescrObject`, whose `d_member` points to its
                // type's static (or heap type's lasting) member definition.
                unsafe {
                    let p = descr.as_ptr();
                    if ffi::Py_TYPE(p) != std::ptr::addr_of_mut!(ffi::PyMemberDescr_Type) {
                        return None;
                    }
                    let def = &*(*p.cast::<MemberDescr>()).member;
                    let plain = def.type_code == ffi::Py_T_OBJECT_EX && def.flags & ffi::Py_READONLY == 0;
                    (plain && def.offset > 0).then(|| Member { descr: descr.unbind(), offset: def.offset })
                }
            };
            let all = [member(Slot::Conn)?, member(Slot::IdPack)?, member(Slot::Refcount)?];
            Some((base.clone().unbind(), all))
        })
        .as_ref()
}

/// The address of `slot` in `obj` when `obj` is a `BaseNetref` (so it has
/// `BaseNetref`'s layout) and its type resolves the slot's name to
/// `BaseNetref`'s own descriptor (so the generic path would use that slot).
fn slot_ptr(obj: &Bound<'_, PyAny>, slot: Slot) -> Option<*mut *mut ffi::PyObject> {
    let py = obj.py();
    let (base, all) = members(py)?;
    let m = &all[slot as usize];
    let tp = obj.get_type();
    // SAFETY: both are live type objects.
    if unsafe { ffi::PyType_IsSubtype(tp.as_ptr().cast(), base.as_ptr().cast()) } == 0 {
        return None;
    }
    let found = type_lookup(&tp, slot.name(py))?;
    if !found.is(m.descr.bind(py)) {
        return None;
    }
    // SAFETY: `obj` is an instance of `BaseNetref` (checked above), whose
    // instances keep this slot at this offset.
    Some(unsafe { obj.as_ptr().cast::<u8>().offset(m.offset).cast::<*mut ffi::PyObject>() })
}

/// `object.__getattribute__(obj, <slot>)`.
pub(crate) fn get<'py>(obj: &Bound<'py, PyAny>, slot: Slot) -> PyResult<Bound<'py, PyAny>> {
    if let Some(p) = slot_ptr(obj, slot) {
        // SAFETY: `p` is the slot's address in a live object (see
        // `slot_ptr`); the GIL is held, and a non-null value is a live
        // object the slot owns a reference to, which we take another of.
        if let Some(v) = unsafe { Bound::from_borrowed_ptr_or_opt(obj.py(), *p) } {
            return Ok(v);
        }
    }
    // An empty slot (the AttributeError is the generic path's to make), or
    // not a plain netref slot at all.
    generic_getattr(obj, slot.name(obj.py()))
}

/// `object.__setattr__(obj, <slot>, value)`.
pub(crate) fn set(obj: &Bound<'_, PyAny>, slot: Slot, value: &Bound<'_, PyAny>) -> PyResult<()> {
    if let Some(p) = slot_ptr(obj, slot) {
        // SAFETY: as in `get`; the slot takes a new reference to `value` and
        // the one it held goes, after the store (as CPython's member setter
        // does it, so a destructor that runs sees the new value).
        unsafe {
            let old = *p;
            *p = value.clone().into_ptr();
            if !old.is_null() {
                ffi::Py_DECREF(old);
            }
        }
        return Ok(());
    }
    generic_setattr(obj, slot.name(obj.py()), value)
}
