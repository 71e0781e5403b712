//! An idle connection's thread gives its deep stack pages back.
//!
//! Under rpyc's `ThreadedServer` every connection has a thread, and an idle
//! connection costs what that thread's stack has touched. Setting a
//! connection up (pyo3's constructor around the engine's) and serving a
//! request go a page deeper than stock rpyc's pure-Python path, and a page
//! once touched stays resident for the thread's life: 4 KiB per idle
//! connection more than stock (issue 14). So `serve_all`, after
//! [`IDLE_AFTER`] without a frame, waits for the next one here, in a
//! shallow frame, having told the kernel to drop the stack pages below it;
//! the next request faults the few it needs back in.

use std::os::fd::RawFd;
use std::time::Duration;

use crate::stream::{wait_readable, InterruptHook, Interruption};

/// How long `serve_all` waits in the engine before it counts the
/// connection as idle (rpyc's own `serve` polls at the same period).
pub(crate) const IDLE_AFTER: Duration = Duration::from_secs(1);

/// Waits, with this thread's deep stack pages given back, until `fd` has
/// data or has ended; `on_interrupt` runs when a signal interrupts the
/// wait, and an interruption it returns ends it.
#[inline(never)]
pub(crate) fn wait_for_data(fd: RawFd, mut on_interrupt: InterruptHook) -> Result<(), Interruption> {
    release_stack_below();
    match wait_readable(fd, None, Some(&mut on_interrupt)) {
        Ok(_) => Ok(()),
        Err(e) => match Interruption::from_io_error(&e) {
            Some(why) => Err(why),
            // A failed poll (the descriptor closed under us): the next read
            // reports what happened.
            None => Ok(()),
        },
    }
}

/// Tells the kernel that this thread's stack below the caller's frames
/// holds nothing (true of any stack below its pointer), so the pages there
/// are freed now and come back zeroed when touched. Not done on the main
/// thread, whose stack the kernel grows on its own.
#[inline(never)]
fn release_stack_below() {
    // SAFETY: plain syscalls without memory arguments.
    let main = unsafe { libc::syscall(libc::SYS_gettid) == libc::getpid() as libc::c_long };
    if main {
        return;
    }
    let Some(low) = stack_low() else { return };
    let here = 0u8;
    let sp = std::ptr::addr_of!(here) as usize;
    // Some margin under this frame for the madvise call's own (a return
    // address: the kernel runs on its own stack), then whole pages.
    let page = page_size();
    let end = (sp - MARGIN) & !(page - 1);
    if end <= low {
        return;
    }
    // SAFETY: [low, end) is this thread's own stack (from its pthread
    // attributes), entirely below the frames live now: nothing refers to
    // it, and MADV_DONTNEED only makes its pages read back as zeros.
    unsafe {
        libc::madvise(low as *mut libc::c_void, end - low, libc::MADV_DONTNEED);
    }
}

const MARGIN: usize = 512;

/// The system's page size: `madvise` rounds a length up to whole pages, so
/// rounding `end` down to anything smaller (4 KiB on a 64 KiB-page system)
/// would reach into the live frames.
fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf reads a system constant.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(n).ok().filter(|n| n.is_power_of_two()).unwrap_or(4096)
    })
}

/// The lowest address of this thread's stack (above its guard page).
fn stack_low() -> Option<usize> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut addr: *mut libc::c_void = std::ptr::null_mut();
    let mut size = 0usize;
    // SAFETY: `attr` is initialized by pthread_getattr_np before it is
    // read, and destroyed once; `addr` and `size` are plain out-parameters.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let rc = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if rc != 0 || addr.is_null() {
            return None;
        }
    }
    Some(addr as usize)
}
