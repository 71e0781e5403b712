//! The crate's `log` records in Python's `logging`, under the `rpyc_rs`
//! logger hierarchy: a record from `rpyc_rs::protocol::core` goes to the
//! Python logger `rpyc_rs.protocol.core`, at the matching level (`TRACE` as
//! 5, below `DEBUG`), with the Rust file and line as its location.
//!
//! Two choices keep it cheap and safe:
//!
//! - `log::max_level` mirrors the most verbose level any `rpyc_rs` Python
//!   logger lets through. The Python package computes it and hands it over
//!   (`_set_log_level`) when it loads the backend and whenever a connection
//!   opens, so with logging off a record below the level costs one atomic
//!   load at the call site: no formatting, no GIL.
//! - Records that pass are queued (bounded) for a thread of their own,
//!   which takes the GIL to hand them to `logging`. The code that logs may
//!   hold the engine's locks; waiting there for the GIL could deadlock
//!   against a thread that holds the GIL and waits for those locks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use log::{Level, LevelFilter, Log, Metadata, Record};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::exiting;

/// Records waiting for the logging thread; past this many, new ones are
/// counted and dropped rather than held without bound.
const QUEUE_LIMIT: usize = 4096;

/// One record, owned, on its way to Python.
struct Entry {
    logger: String,
    level: u8,
    message: String,
    file: Option<String>,
    line: u32,
}

/// The `log` logger this module installs (once) for the process.
struct Bridge {
    queue: OnceLock<(Sender<Entry>, Receiver<Entry>)>,
    dropped: AtomicU64,
}

static BRIDGE: Bridge = Bridge { queue: OnceLock::new(), dropped: AtomicU64::new(0) };
/// Whether the bridge is the process's logger: false when another one (the
/// CLI's stderr logger) was installed first.
static INSTALLED: OnceLock<bool> = OnceLock::new();

impl Log for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let entry = Entry {
            logger: python_logger_name(record.target()),
            level: python_level(record.level()),
            message: record.args().to_string(),
            file: record.file().map(str::to_owned),
            line: record.line().unwrap_or(0),
        };
        let (queue, _) = self.queue.get_or_init(start_thread);
        match queue.try_send(entry) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn flush(&self) {}
}

/// `rpyc_rs::protocol::core` -> `rpyc_rs.protocol.core`; a target outside
/// the crate is put under `rpyc_rs` too, so one logger governs them all.
fn python_logger_name(target: &str) -> String {
    let dotted = target.replace("::", ".");
    if dotted == "rpyc_rs" || dotted.starts_with("rpyc_rs.") {
        dotted
    } else {
        format!("rpyc_rs.{dotted}")
    }
}

/// Python's numeric level for a `log` level.
fn python_level(level: Level) -> u8 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug => 10,
        Level::Trace => 5,
    }
}

/// The `log` filter that lets through what a Python level does.
fn level_filter(python_level: i64) -> LevelFilter {
    match python_level {
        ..=5 => LevelFilter::Trace,
        6..=10 => LevelFilter::Debug,
        11..=20 => LevelFilter::Info,
        21..=30 => LevelFilter::Warn,
        31..=40 => LevelFilter::Error,
        _ => LevelFilter::Off,
    }
}

/// The queue and the thread that empties it, made on the first record.
fn start_thread() -> (Sender<Entry>, Receiver<Entry>) {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE_LIMIT);
    let thread_rx = rx.clone();
    // Should the thread not start, records pile up to QUEUE_LIMIT and are
    // then counted as dropped (and flushed at exit): logging must never
    // take the program down.
    let _ = std::thread::Builder::new().name("rpyc_rs-log".into()).spawn(move || forward(&thread_rx));
    (tx, rx)
}

/// The logging thread: waits for a record, then hands it and whatever else
/// is queued to Python in one GIL hold.
fn forward(rx: &Receiver<Entry>) {
    while let Ok(first) = rx.recv() {
        exiting::attach(|py| {
            if let Ok(logging) = py.import("logging") {
                emit(&logging, first);
                drain(&logging, rx);
            }
        });
    }
}

/// Emits every record queued now, after a note of any that were dropped.
fn drain(logging: &Bound<'_, PyModule>, rx: &Receiver<Entry>) {
    let dropped = BRIDGE.dropped.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let note = Entry {
            logger: "rpyc_rs".into(),
            level: 30,
            message: format!("{dropped} log records were dropped (logging could not keep up)"),
            file: None,
            line: 0,
        };
        emit(logging, note);
    }
    while let Ok(next) = rx.try_recv() {
        emit(logging, next);
    }
}

/// Hands the queued records to `logging` on this thread, now: registered
/// with `atexit` by `rpyc_rs._logging`, so a record logged just before the
/// program ends (why its last connection closed) is not lost with the
/// logging thread.
#[pyfunction]
fn _flush_log(py: Python<'_>) -> PyResult<()> {
    if let Some((_, rx)) = BRIDGE.queue.get() {
        drain(&py.import("logging")?, rx);
    }
    Ok(())
}

/// Hands one record to `logging.getLogger(name)`, as `Logger.log` would
/// but with the Rust source location.
fn emit(logging: &Bound<'_, PyModule>, e: Entry) {
    let result: PyResult<()> = (|| {
        let logger = logging.call_method1("getLogger", (e.logger.as_str(),))?;
        if !logger.call_method1("isEnabledFor", (e.level,))?.is_truthy()? {
            return Ok(());
        }
        let py = logging.py();
        let file = e.file.as_deref().unwrap_or("(unknown file)");
        // No args: the message is already formatted, and a '%' in it must
        // stay as it is.
        let record = logger.call_method1(
            "makeRecord",
            (e.logger.as_str(), e.level, file, e.line, e.message, PyTuple::empty(py), py.None()),
        )?;
        logger.call_method1("handle", (record,))?;
        Ok(())
    })();
    // A failing handler is logging's own business (it reports through
    // Handler.handleError); anything else is not worth an exception here.
    drop(result);
}

/// Installs the bridge (on the first call) and sets the most verbose level
/// any `rpyc_rs` Python logger lets through (a Python numeric level; above
/// `CRITICAL` turns logging off). Called by `rpyc_rs._logging`.
#[pyfunction]
fn _set_log_level(level: i64) {
    let installed = *INSTALLED.get_or_init(|| log::set_logger(&BRIDGE).is_ok());
    if installed {
        log::set_max_level(level_filter(level));
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_set_log_level, m)?)?;
    m.add_function(wrap_pyfunction!(_flush_log, m)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_levels() {
        assert_eq!(python_logger_name("rpyc_rs::protocol::core"), "rpyc_rs.protocol.core");
        assert_eq!(python_logger_name("rpyc_rs"), "rpyc_rs");
        assert_eq!(python_logger_name("rpyc_rsx"), "rpyc_rs.rpyc_rsx");
        assert_eq!(python_logger_name("other::m"), "rpyc_rs.other.m");
        assert_eq!(level_filter(10), LevelFilter::Debug);
        assert_eq!(level_filter(30), LevelFilter::Warn);
        assert_eq!(level_filter(50), LevelFilter::Off);
        assert_eq!(level_filter(1), LevelFilter::Trace);
        for level in [Level::Error, Level::Warn, Level::Info, Level::Debug, Level::Trace] {
            assert_eq!(level_filter(i64::from(python_level(level))), level.to_level_filter());
        }
    }
}
