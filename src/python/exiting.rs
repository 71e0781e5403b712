//! Threads blocked in the engine when the interpreter exits.
//!
//! While Python finalizes, a daemon thread that takes the GIL again is
//! ended with `pthread_exit`, a forced unwind; passing through Rust frames
//! (pyo3's trampolines catch unwinds) it aborts the whole process. A daemon
//! thread blocked in the engine (a `BgServingThread`, a `serve_all` thread)
//! comes back exactly then, because finalization closes its socket. So once
//! Python has begun to exit (its `atexit` hooks run before finalization
//! proper, after non-daemon threads have been joined), every other thread
//! parks for good instead of re-entering Python, and the process ends around
//! it, as it ends around a thread still blocked in a read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::thread::ThreadId;

use pyo3::prelude::*;

static EXITING: AtomicBool = AtomicBool::new(false);
static EXIT_THREAD: OnceLock<ThreadId> = OnceLock::new();

/// The `atexit` hook: notes that Python is exiting, and on which thread.
#[pyfunction]
fn _at_exit() {
    let _ = EXIT_THREAD.set(std::thread::current().id());
    EXITING.store(true, Ordering::Release);
}

/// Never returns on a thread other than the exiting one once Python exits.
fn park_if_exiting() {
    if !EXITING.load(Ordering::Acquire) || EXIT_THREAD.get() == Some(&std::thread::current().id()) {
        return;
    }
    loop {
        std::thread::park();
    }
}

/// `Python::attach`, except on a thread that must not re-enter a
/// finalizing interpreter (see the module docs).
pub(crate) fn attach<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
    park_if_exiting();
    Python::attach(f)
}

/// `py.detach(f)`, parking instead of taking the GIL back when the
/// interpreter began to exit meanwhile (see the module docs).
pub(crate) fn detach<T: Send, F: Send + FnOnce() -> T>(py: Python<'_>, f: F) -> T {
    py.detach(|| {
        let r = f();
        park_if_exiting();
        r
    })
}

/// Registers the `atexit` hook (once, at import).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_at_exit, m)?)?;
    m.py().import("atexit")?.call_method1("register", (m.getattr("_at_exit")?,))?;
    Ok(())
}
