//! The memory budget: a bound on what peers, all together, can make the
//! frame readers hold.
//!
//! Each connection's reader already refuses frames past
//! [`ChannelConfig::max_frame_size`](super::ChannelConfig::max_frame_size),
//! but a few connections each sending a frame just under that bound (or a
//! zlib bomb inflating to just under it) would still multiply it. So past a
//! small free allowance per connection, receive buffers and inflate output
//! are leased from one process-wide [`MemoryBudget`] (the server sets its
//! size; the Python backend shares the same one). A lease grows only as
//! bytes actually arrive or inflate, and never past its share: the budget
//! divided by the connections holding a lease at that moment. The reader
//! whose growth would pass its share, or the budget, gets
//! [`ChannelError::MemoryBudget`](super::ChannelError::MemoryBudget) and its
//! connection ends; the others keep going.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes each reader may hold without a lease: enough for every ordinary
/// message, so the budget costs nothing on the common path.
pub const FREE_ALLOWANCE: usize = 256 * 1024;

/// The budget's default size: one frame of the default maximum size.
pub const DEFAULT_BUDGET: usize = super::DEFAULT_MAX_FRAME_SIZE;

static GLOBAL: MemoryBudget = MemoryBudget::new(DEFAULT_BUDGET);

/// The budget shared by every reader in this process.
pub fn global() -> &'static MemoryBudget {
    &GLOBAL
}

/// A pool of bytes readers lease from (see the module docs).
#[derive(Debug)]
pub struct MemoryBudget {
    limit: AtomicUsize,
    used: AtomicUsize,
    holders: AtomicUsize,
}

/// A lease that could not grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// The bytes the lease asked to hold.
    pub wanted: usize,
    /// What it may hold at most right now.
    pub allowed: usize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub const fn new(limit: usize) -> Self {
        MemoryBudget {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
            holders: AtomicUsize::new(0),
        }
    }

    /// Resizes the budget (leases already held are kept).
    pub fn set_limit(&self, bytes: usize) {
        self.limit.store(bytes, Ordering::Relaxed);
    }

    /// The budget's size.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Bytes leased right now.
    pub fn in_use(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// One reader's share of a budget; released on drop.
#[derive(Debug)]
pub(crate) struct Lease {
    budget: &'static MemoryBudget,
    held: usize,
}

impl Lease {
    pub(crate) fn new(budget: &'static MemoryBudget) -> Lease {
        Lease { budget, held: 0 }
    }

    /// Makes this lease hold `amount` bytes (those past
    /// [`FREE_ALLOWANCE`] of what the caller is about to own). Shrinking
    /// always works; growing fails past this lease's share or the budget.
    pub(crate) fn hold(&mut self, total: usize) -> Result<(), Exceeded> {
        let amount = total.saturating_sub(FREE_ALLOWANCE);
        if amount == self.held {
            // The common case, small frames: no shared counter touched.
            return Ok(());
        }
        let b = self.budget;
        if amount < self.held {
            b.used.fetch_sub(self.held - amount, Ordering::AcqRel);
            if amount == 0 && self.held > 0 {
                b.holders.fetch_sub(1, Ordering::AcqRel);
            }
            self.held = amount;
            return Ok(());
        }
        let new_holder = self.held == 0;
        let holders = if new_holder {
            b.holders.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            b.holders.load(Ordering::Acquire)
        };
        let limit = b.limit();
        let share = limit / holders.max(1);
        let undo = |b: &MemoryBudget| {
            if new_holder {
                b.holders.fetch_sub(1, Ordering::AcqRel);
            }
        };
        if amount > share {
            undo(b);
            return Err(Exceeded { wanted: total, allowed: share.saturating_add(FREE_ALLOWANCE) });
        }
        let extra = amount - self.held;
        let mut used = b.used.load(Ordering::Acquire);
        loop {
            if used.saturating_add(extra) > limit {
                undo(b);
                let left = limit.saturating_sub(used) + self.held;
                return Err(Exceeded { wanted: total, allowed: left.saturating_add(FREE_ALLOWANCE) });
            }
            match b.used.compare_exchange_weak(used, used + extra, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => used = now,
            }
        }
        self.held = amount;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.hold(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn small_readers_lease_nothing() {
        let b: &'static MemoryBudget = Box::leak(Box::new(MemoryBudget::new(MIB)));
        let mut l = Lease::new(b);
        l.hold(FREE_ALLOWANCE).unwrap();
        assert_eq!((b.in_use(), b.holders.load(Ordering::Relaxed)), (0, 0));
    }

    #[test]
    fn each_holder_gets_its_share_and_release_returns_it() {
        let b: &'static MemoryBudget = Box::leak(Box::new(MemoryBudget::new(8 * MIB)));
        let mut a = Lease::new(b);
        a.hold(FREE_ALLOWANCE + 6 * MIB).unwrap();
        // A second holder's share is half the budget, and only 2 MiB are left.
        let mut c = Lease::new(b);
        let e = c.hold(FREE_ALLOWANCE + 3 * MIB).unwrap_err();
        assert_eq!(e.allowed, FREE_ALLOWANCE + 2 * MIB);
        c.hold(FREE_ALLOWANCE + MIB).unwrap();
        // With two holders, the first may not grow past 4 MiB any more.
        assert!(a.hold(FREE_ALLOWANCE + 7 * MIB).is_err());
        a.hold(FREE_ALLOWANCE + 2 * MIB).unwrap();
        assert_eq!(b.in_use(), 3 * MIB);
        drop(a);
        drop(c);
        assert_eq!((b.in_use(), b.holders.load(Ordering::Relaxed)), (0, 0));
    }
}
