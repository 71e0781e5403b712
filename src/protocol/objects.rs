//! The table of local objects the peer holds references to, with rpyc's
//! exact refcount rule (`RefCountingColl` in `rpyc/lib/colls.py`).
//!
//! Every object we send by reference is stored here under its id pack. The
//! first send stores a count of 0 and each later send adds 1; the peer's
//! `DEL(obj, n)` removes the entry when the stored count is below `n` and
//! otherwise subtracts `n`. The peer's proxy counts its received references
//! the same way (starting at 1), so the two stay in step however sends and
//! DELs interleave. The Rust object world keeps its objects here; the
//! Python world uses rpyc's own `RefCountingColl` (`conn._local_objects`),
//! which follows the same rule.

use std::collections::HashMap;

use parking_lot::Mutex;

use super::boxing::IdPack;

/// A refcounted table of objects keyed by id pack.
///
/// Each Rust connection keeps one for the objects it sent by reference; a
/// Rust user reaches it only through [`Connection`](crate::Connection).
pub(crate) struct LocalObjects<T> {
    map: Mutex<HashMap<IdPack, (T, u64)>>,
}

impl<T> Default for LocalObjects<T> {
    fn default() -> Self {
        LocalObjects { map: Mutex::new(HashMap::new()) }
    }
}

impl<T: Clone> LocalObjects<T> {
    /// Records one more reference sent to the peer.
    pub fn add(&self, id: IdPack, obj: T) {
        let mut map = self.map.lock();
        match map.get_mut(&id) {
            Some(slot) => slot.1 += 1,
            None => {
                map.insert(id, (obj, 0));
            }
        }
    }

    /// The object stored under `id`.
    pub fn get(&self, id: &IdPack) -> Option<T> {
        self.map.lock().get(id).map(|(o, _)| o.clone())
    }

    /// Drops `count` references, rpyc's way for any int: the entry goes
    /// when the stored count is below `count`, else `count` is subtracted
    /// (a negative count adds, saturating). Returns the object if this
    /// removed it (so the caller can drop it outside the lock), or `Err(())`
    /// when `id` is not in the table.
    #[allow(clippy::result_unit_err)]
    pub fn decref(&self, id: &IdPack, count: i128) -> Result<Option<T>, ()> {
        let mut map = self.map.lock();
        let slot = map.get_mut(id).ok_or(())?;
        if (slot.1 as i128) < count {
            Ok(map.remove(id).map(|(o, _)| o))
        } else {
            let left = (slot.1 as i128).saturating_sub(count);
            slot.1 = u64::try_from(left).unwrap_or(u64::MAX);
            Ok(None)
        }
    }

    /// How many objects the peer holds.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// True when the peer holds nothing of ours.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every object (the connection ended). Returns them so they are
    /// dropped outside the lock.
    pub fn clear(&self) -> Vec<T> {
        self.map.lock().drain().map(|(_, (o, _))| o).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn id(n: i64) -> IdPack {
        IdPack { name: Arc::from("m.C"), class_id: 1, instance_id: n }
    }

    #[test]
    fn rpyc_refcount_rule() {
        let t = LocalObjects::default();
        t.add(id(1), "a");
        t.add(id(1), "a");
        t.add(id(1), "a");
        // stored count is 2 after three sends; DEL(2) leaves it at 0, DEL(1) removes.
        assert_eq!(t.decref(&id(1), 2), Ok(None));
        // A negative count adds, as in rpyc; then DEL(2) leaves it at 0 again.
        assert_eq!(t.decref(&id(1), -2), Ok(None));
        assert_eq!(t.decref(&id(1), 2), Ok(None));
        assert_eq!(t.len(), 1);
        assert_eq!(t.decref(&id(1), 1), Ok(Some("a")));
        assert!(t.is_empty());
        assert_eq!(t.decref(&id(1), 1), Err(()));
    }
}
