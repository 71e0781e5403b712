//! The attribute policy's settings, read from a connection's live config
//! dict (`conn._config`): what `attrs.rs` hands the shared policy as its
//! [`PolicySource`].
//!
//! rpyc reads `conn._config[...]` afresh on every attribute request (eight
//! dict lookups), and a user may change the dict, or rebind `_config`, at
//! any time. CPython 3.8 to 3.13 stamp every dict with a version tag
//! (`ma_version_tag`) that takes a new, globally unique value on each
//! mutation, so the switches read under one tag hold until the tag moves:
//! [`ConfigMemo`] keeps them per connection and reads the dict again only
//! when it changed. Only what cannot change behind the dict's back is kept:
//! switches that are exactly `True` or `False` and an `exposed_prefix` that
//! is exactly a str. Anything else (a missing key, another kind of value,
//! `safe_attrs`, a set that changes in place) is read live, as before, and
//! so is everything where the tag is not kept (3.14, or wherever a
//! self-test finds it does not move).

use std::borrow::Cow;
use std::sync::OnceLock;

use parking_lot::Mutex;
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyString};

use crate::protocol::policy::{PolicyFlag, PolicySource};

/// Every switch the policy reads, in the order of [`flag_index`].
const FLAGS: [PolicyFlag; 7] = [
    PolicyFlag::AllowGetattr,
    PolicyFlag::AllowSetattr,
    PolicyFlag::AllowDelattr,
    PolicyFlag::AllowAllAttrs,
    PolicyFlag::AllowExposedAttrs,
    PolicyFlag::AllowSafeAttrs,
    PolicyFlag::AllowPublicAttrs,
];

/// A switch's place in [`FLAGS`] and [`Settings::flags`].
fn flag_index(flag: PolicyFlag) -> usize {
    match flag {
        PolicyFlag::AllowGetattr => 0,
        PolicyFlag::AllowSetattr => 1,
        PolicyFlag::AllowDelattr => 2,
        PolicyFlag::AllowAllAttrs => 3,
        PolicyFlag::AllowExposedAttrs => 4,
        PolicyFlag::AllowSafeAttrs => 5,
        PolicyFlag::AllowPublicAttrs => 6,
    }
}

/// A switch's config key, interned.
fn flag_key(py: Python<'_>, flag: PolicyFlag) -> &Bound<'_, PyString> {
    match flag {
        PolicyFlag::AllowGetattr => pyo3::intern!(py, "allow_getattr"),
        PolicyFlag::AllowSetattr => pyo3::intern!(py, "allow_setattr"),
        PolicyFlag::AllowDelattr => pyo3::intern!(py, "allow_delattr"),
        PolicyFlag::AllowAllAttrs => pyo3::intern!(py, "allow_all_attrs"),
        PolicyFlag::AllowExposedAttrs => pyo3::intern!(py, "allow_exposed_attrs"),
        PolicyFlag::AllowSafeAttrs => pyo3::intern!(py, "allow_safe_attrs"),
        PolicyFlag::AllowPublicAttrs => pyo3::intern!(py, "allow_public_attrs"),
    }
}

/// The settings known without looking: `None` is "read it live".
#[derive(Default)]
pub(crate) struct Settings {
    flags: [Option<bool>; 7],
    prefix: Option<Py<PyString>>,
}

impl Settings {
    /// Reads what can be kept from `dict` (a failed lookup just leaves the
    /// setting live). The keys are exact strs; only a key of the user's
    /// whose hash collides with one of them could run code (its `__eq__`).
    fn read(dict: &Bound<'_, PyDict>) -> Settings {
        let py = dict.py();
        let mut s = Settings::default();
        for (slot, flag) in s.flags.iter_mut().zip(FLAGS) {
            *slot = match dict.get_item(flag_key(py, flag)) {
                Ok(Some(v)) if v.is_exact_instance_of::<PyBool>() => v.extract::<bool>().ok(),
                _ => None,
            };
        }
        s.prefix = match dict.get_item(pyo3::intern!(py, "exposed_prefix")) {
            Ok(Some(p)) => p.cast_exact::<PyString>().ok().map(|p| p.clone().unbind()),
            _ => None,
        };
        s
    }

    fn clone_ref(&self, py: Python<'_>) -> Settings {
        Settings { flags: self.flags, prefix: self.prefix.as_ref().map(|p| p.clone_ref(py)) }
    }
}

/// One connection's settings, with the dict and the version they were
/// read under.
pub(crate) struct ConfigMemo(Mutex<Option<Memo>>);

struct Memo {
    /// Held, so that the address compared below stays this dict's.
    dict: Py<PyDict>,
    version: u64,
    settings: Settings,
}

impl ConfigMemo {
    pub(crate) fn new() -> ConfigMemo {
        ConfigMemo(Mutex::new(None))
    }

    /// The settings of `dict` as it is now: those kept when it is the dict
    /// they were read from and has not changed since, else read afresh (and
    /// kept, where versions are kept). The lock is held only to compare and
    /// to store, never while the dict is read or the policy runs, so
    /// nothing that re-enters (a property, or a key's `__eq__`, that makes a
    /// request of its own) can deadlock on it.
    pub(crate) fn settings(&self, dict: &Bound<'_, PyDict>) -> Settings {
        let py = dict.py();
        let Some(version) = dict_version(dict) else {
            return Settings::default();
        };
        if let Some(m) = self.0.lock().as_ref() {
            if m.dict.as_ptr() == dict.as_ptr() && m.version == version {
                return m.settings.clone_ref(py);
            }
        }
        let settings = Settings::read(dict);
        // Kept only if reading changed nothing (user code may have run).
        if dict_version(dict) == Some(version) {
            let kept = Memo { dict: dict.clone().unbind(), version, settings: settings.clone_ref(py) };
            // The memo it replaces dies after the lock is released.
            let replaced = self.0.lock().replace(kept);
            drop(replaced);
        }
        settings
    }
}

/// The byte offset of `ma_version_tag` in a dict: after the object header
/// and `ma_used`, on every CPython from 3.8 to 3.13.
const VERSION_OFFSET: usize = std::mem::size_of::<ffi::PyObject>() + std::mem::size_of::<ffi::Py_ssize_t>();

/// `dict`'s version tag, where this interpreter keeps one that moves on
/// every change.
fn dict_version(dict: &Bound<'_, PyDict>) -> Option<u64> {
    if !versions_kept(dict.py()) {
        return None;
    }
    // SAFETY: `dict` is a live dict (or subclass instance), whose layout
    // starts as `PyDictObject`'s; `versions_kept` has checked this is a
    // CPython that has the tag at this offset and moves it on mutation.
    Some(unsafe { raw_version(dict.as_ptr()) })
}

/// Reads the version tag of the dict at `d`.
///
/// # Safety
/// `d` must point to a live dict on a CPython (3.8 to 3.13) whose
/// `PyDictObject` has `ma_version_tag` at [`VERSION_OFFSET`].
unsafe fn raw_version(d: *mut ffi::PyObject) -> u64 {
    // SAFETY: per this function's contract the field is there, a u64 at an
    // 8-aligned offset of a live object; only the GIL holder writes it.
    unsafe { std::ptr::read(d.cast::<u8>().add(VERSION_OFFSET).cast::<u64>()) }
}

/// Whether dicts carry a version tag that moves on every change: CPython
/// before 3.14, confirmed once by watching a dict of our own change.
fn versions_kept(py: Python<'_>) -> bool {
    static KEPT: OnceLock<bool> = OnceLock::new();
    *KEPT.get_or_init(|| {
        let cpython = py
            .import("sys")
            .and_then(|sys| sys.getattr("implementation")?.getattr("name")?.extract::<String>())
            .is_ok_and(|name| name == "cpython");
        if !cpython || py.version_info() >= (3, 14) {
            return false;
        }
        let d = PyDict::new(py);
        // SAFETY: a CPython before 3.14 (checked above), whose dicts have
        // the tag at `VERSION_OFFSET`; `d` is a live dict.
        let tag = |d: &Bound<'_, PyDict>| unsafe { raw_version(d.as_ptr()) };
        let mut seen = vec![tag(&d)];
        let steps: [&dyn Fn() -> PyResult<()>; 3] =
            [&|| d.set_item("k", 1), &|| d.set_item("k", 2), &|| d.del_item("k")];
        for step in steps {
            if step().is_err() {
                return false;
            }
            seen.push(tag(&d));
        }
        seen.windows(2).all(|w| w[0] != w[1])
    })
}

/// The connection's config dict as the policy's settings, for a check of
/// `name` (the peer's str, which `is_safe` looks up as it is).
pub(crate) struct LiveConfig<'py> {
    dict: Bound<'py, PyDict>,
    name: Bound<'py, PyString>,
    known: Settings,
}

impl<'py> LiveConfig<'py> {
    /// The settings of `dict` for a check of `name`, with what `memo`
    /// already knows of them.
    pub(crate) fn new(dict: Bound<'py, PyDict>, name: Bound<'py, PyString>, memo: &ConfigMemo) -> Self {
        let known = memo.settings(&dict);
        LiveConfig { dict, name, known }
    }

    /// `config[key]`: a missing key is rpyc's KeyError. The keys are
    /// interned strings, so a lookup makes no string and hashes nothing.
    fn item(&self, key: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
        self.dict.get_item(key)?.ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))
    }
}

impl PolicySource<PyErr> for LiveConfig<'_> {
    fn flag(&self, flag: PolicyFlag) -> PyResult<bool> {
        match self.known.flags[flag_index(flag)] {
            Some(b) => Ok(b),
            None => self.item(flag_key(self.dict.py(), flag))?.is_truthy(),
        }
    }
    fn exposed_prefix(&self) -> PyResult<Cow<'_, str>> {
        if let Some(p) = &self.known.prefix {
            return Ok(Cow::Borrowed(p.bind(self.dict.py()).to_str()?));
        }
        let prefix = self.item(pyo3::intern!(self.dict.py(), "exposed_prefix"))?;
        // rpyc's `name.startswith(prefix)` refuses anything but a str.
        let s = prefix.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "startswith first arg must be str or a tuple of str, not {}",
                prefix.get_type().name().map(|n| n.to_string()).unwrap_or_default()
            ))
        })?;
        Ok(Cow::Owned(s.to_str()?.to_string()))
    }
    fn is_safe(&self, name: &str) -> PyResult<bool> {
        let safe = self.item(pyo3::intern!(self.dict.py(), "safe_attrs"))?;
        // The policy asks about the name being checked: its str is at hand
        // (and keeps its hash for the lookup that follows).
        if self.name.to_str().is_ok_and(|t| t == name) {
            safe.contains(&self.name)
        } else {
            safe.contains(name)
        }
    }
}
