//! Threads in the engine when the interpreter exits.
//!
//! While Python finalizes, a daemon thread that takes the GIL again is
//! ended with `pthread_exit`, a forced unwind; passing through Rust frames
//! (pyo3's trampolines catch unwinds) it aborts the whole process. Two kinds
//! of daemon thread (a `BgServingThread`, a `serve_all` thread) can be caught
//! so: one blocked in the engine, which comes back when finalization closes
//! its socket, and one running Python code from engine frames (a request
//! handler waiting on a lock or doing I/O).
//!
//! So the module registers an `atexit` hook; `atexit` hooks run after
//! non-daemon threads are joined and before finalization proper. From then
//! on every thread but the exiting one parks for good instead of entering
//! Python from the engine, and the hook first waits (briefly, bounded) for
//! threads already running Python code under engine frames to leave them.
//! The process then ends around the parked threads, as it ends around a
//! thread still blocked in a read.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::OnceLock;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::prelude::*;

static EXITING: AtomicBool = AtomicBool::new(false);
static EXIT_THREAD: OnceLock<ThreadId> = OnceLock::new();
/// Threads inside engine code that may run Python code (holding the GIL,
/// or having released it inside Python code the engine called).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// How long the hook waits for them at most: a handler that does not
/// return is left to the old fate rather than hang the exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);

thread_local! {
    /// This thread's nesting of [`InEngine`] sections (counted once in ACTIVE).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// The `atexit` hook: notes that Python is exiting, and on which thread,
/// then lets threads running Python code under engine frames finish it.
#[pyfunction]
fn _at_exit(py: Python<'_>) {
    let _ = EXIT_THREAD.set(std::thread::current().id());
    EXITING.store(true, SeqCst);
    let deadline = Instant::now() + EXIT_GRACE;
    py.detach(|| {
        while ACTIVE.load(SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

fn must_park() -> bool {
    EXITING.load(SeqCst) && EXIT_THREAD.get() != Some(&std::thread::current().id())
}

fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// Marks this thread as inside engine code that may run Python code, for
/// as long as the value lives. Every `#[pymethods]` entry that calls
/// Python takes one.
pub(crate) struct InEngine(());

impl InEngine {
    pub(crate) fn enter() -> InEngine {
        DEPTH.with(|d| {
            if d.get() == 0 {
                ACTIVE.fetch_add(1, SeqCst);
            }
            d.set(d.get() + 1);
        });
        InEngine(())
    }
}

impl Drop for InEngine {
    fn drop(&mut self) {
        DEPTH.with(|d| {
            let n = d.get().saturating_sub(1);
            d.set(n);
            if n == 0 {
                ACTIVE.fetch_sub(1, SeqCst);
            }
        });
    }
}

/// `Python::attach`, except on a thread that must not enter a finalizing
/// interpreter (see the module docs).
pub(crate) fn attach<R>(f: impl FnOnce(Python<'_>) -> R) -> R {
    // Counted before the check, so the hook either sees this thread or
    // this thread sees the hook's flag.
    let inside = InEngine::enter();
    if must_park() {
        drop(inside);
        park_forever();
    }
    Python::attach(f)
}

/// `py.detach(f)`: not counted as running Python while `f` runs, and
/// parking instead of taking the GIL back when the interpreter began to
/// exit meanwhile (see the module docs).
pub(crate) fn detach<T: Send, F: Send + FnOnce() -> T>(py: Python<'_>, f: F) -> T {
    let depth = DEPTH.with(|d| d.replace(0));
    if depth > 0 {
        ACTIVE.fetch_sub(1, SeqCst);
    }
    let r = py.detach(|| {
        let r = f();
        if depth > 0 {
            ACTIVE.fetch_add(1, SeqCst);
        }
        if must_park() {
            if depth > 0 {
                ACTIVE.fetch_sub(1, SeqCst);
            }
            park_forever();
        }
        r
    });
    DEPTH.with(|d| d.set(depth));
    r
}

/// Registers the `atexit` hook (once, at import).
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_at_exit, m)?)?;
    m.py().import("atexit")?.call_method1("register", (m.getattr("_at_exit")?,))?;
    Ok(())
}
