//! The protocol engine for Python: the crate's [`Core`] driven by the Python
//! object world, exposed as `rpyc_rs._native.Engine`.
//!
//! `rpyc_rs.Connection` (a subclass of rpyc's own `Connection`, in
//! `python/rpyc_rs/_connection.py`) creates one engine and routes the hot
//! path to it: `sync_request`, `async_request` and `serve`. Framing,
//! compression, brine, boxing, the seq table and the read loop run here, with
//! the GIL released around socket I/O; Python code runs only where user
//! objects are touched, through rpyc's own request handlers, netref classes,
//! refcount table and vinegar, so behaviour stays rpyc's.
//!
//! The engine holds the Python connection only weakly (a weakref), so a
//! connection nobody references is still collected and closed by rpyc's
//! `__del__`, as with stock rpyc.

use std::cell::RefCell;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::ThreadId;
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::{PyEOFError, PyOSError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType, PyWeakrefReference};

use crate::brine::DecodeOptions;
use crate::channel::{ChannelConfig, FrameReader, FrameWriter};
use crate::protocol::core::{Core, Peer};
use crate::protocol::message::{parse_header, Handler, MSG_EXCEPTION, MSG_REPLY};
use crate::protocol::Error;
use crate::stream::{InterruptHook, Stream};

use super::brine::load_from;
use super::exiting::{attach, detach, InEngine};
use super::transport::PyChannelFrames;

/// The Python world's state: weak handle to the Python connection, and the
/// rpyc objects the hot path touches, looked up once.
pub(crate) struct PyWorld {
    pub(crate) core: Core,
    conn: Py<PyWeakrefReference>,
    pub(crate) local_objects: Py<PyAny>,
    pub(crate) proxy_cache: Py<PyAny>,
    pub(crate) handlers: Py<PyDict>,
    pub(crate) config: Py<PyDict>,
    /// rpyc's own `Connection._handle_call`, which `serving.rs` runs natively.
    pub(crate) stock_call: Py<PyAny>,
    pub(crate) base_netref: Py<PyType>,
    pub(crate) get_id_pack: Py<PyAny>,
    pub(crate) opts: DecodeOptions,
    /// Exceptions raised while serving (a handler's SystemExit, an error
    /// in an async callback), each to re-raise in the Python call that was
    /// serving on that thread, as rpyc's `serve` would.
    deferred: Mutex<Vec<(ThreadId, PyErr)>>,
    /// Whether `deferred` holds anything: the hot path checks only this.
    any_deferred: AtomicBool,
}

thread_local! {
    /// The requests this thread waits for, innermost last, tagged with
    /// their world (a callback may wait on another connection): an error
    /// deferred while serving must end the innermost wait at once, not
    /// after the reply that may never come.
    static WAITING: RefCell<Vec<(usize, i64)>> = const { RefCell::new(Vec::new()) };
}

fn rpyc_attr(py: Python<'_>, module: &str, name: &str) -> PyResult<Py<PyAny>> {
    Ok(py.import(module)?.getattr(name)?.unbind())
}

/// `rpyc.core.async_.AsyncResultTimeout` is the builtin `TimeoutError`.
fn timeout_error() -> PyErr {
    PyTimeoutError::new_err("result expired")
}

impl PyWorld {
    pub(crate) fn conn<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.conn.bind(py).upgrade()
    }

    fn id(&self) -> usize {
        self as *const PyWorld as usize
    }

    /// Keeps `e` for the Python call serving on this thread, and stops its
    /// innermost wait (the reply, if it comes, is dropped as an orphan).
    pub(crate) fn defer(&self, e: PyErr) {
        let me = std::thread::current().id();
        {
            let mut list = self.deferred.lock();
            // The first error on a thread wins, as the first raise would.
            if !list.iter().any(|(t, _)| *t == me) {
                list.push((me, e));
            }
            self.any_deferred.store(true, Ordering::Release);
        }
        let id = self.id();
        let seq =
            WAITING.with(|w| w.borrow().iter().rev().find(|(world, _)| *world == id).map(|(_, seq)| *seq));
        if let Some(seq) = seq {
            self.core.forget(seq);
        }
    }

    /// Raises the error deferred on this thread, if any.
    fn take_deferred(&self) -> PyResult<()> {
        if !self.any_deferred.load(Ordering::Acquire) {
            return Ok(());
        }
        let me = std::thread::current().id();
        let mut list = self.deferred.lock();
        let Some(pos) = list.iter().position(|(t, _)| *t == me) else { return Ok(()) };
        let (_, e) = list.swap_remove(pos);
        self.any_deferred.store(!list.is_empty(), Ordering::Release);
        Err(e)
    }

    /// Turns an engine error into what rpyc raises, closing the Python
    /// connection when the peer is gone (as rpyc's `serve` does).
    fn raise(&self, py: Python<'_>, e: Error) -> PyErr {
        match e {
            Error::Timeout => timeout_error(),
            Error::Closed { reason } => {
                if let Some(conn) = self.conn(py) {
                    // Closed here before (rpyc's `close()` marks the
                    // connection first): say what rpyc's stream says, not
                    // whatever ended the socket then (often the peer's
                    // answer to our CLOSE).
                    let closed_here = conn
                        .getattr(pyo3::intern!(py, "_closed"))
                        .and_then(|v| v.is_truthy())
                        .unwrap_or(false);
                    if closed_here {
                        return PyEOFError::new_err("stream has been closed");
                    }
                    if let Err(err) = conn.call_method0(pyo3::intern!(py, "close")) {
                        log::debug!("closing after EOF failed: {err}");
                    }
                }
                PyEOFError::new_err(reason)
            }
            other => PyValueError::new_err(other.to_string()),
        }
    }

    fn build_request(
        &self,
        conn: &Bound<'_, PyAny>,
        seq: i64,
        handler: i64,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Vec<u8>> {
        let h = Handler::from_number(handler)
            .ok_or_else(|| PyValueError::new_err(format!("unknown request handler {handler}")))?;
        let mut frame = Vec::with_capacity(128);
        self.core.begin_request(&mut frame, seq, h);
        self.box_into(conn, args.as_any(), &mut frame, 0)?;
        Ok(frame)
    }

    /// Refuses a message that is not one whole, well-formed brine value,
    /// before any of it becomes a Python object, and ends the connection:
    /// after garbage nothing more from that peer can be trusted. (rpyc
    /// likewise loads the whole message first; a failure there ends its
    /// `serve_all` too.) A message that is valid brine but means nothing,
    /// such as an unknown handler or label, is not refused here: rpyc
    /// answers those with an exception, and so do we.
    pub(crate) fn check_message(&self, payload: &[u8]) -> PyResult<()> {
        match check_well_formed(payload, self.opts) {
            Ok(()) => Ok(()),
            Err(e) => {
                // EOFError, as for every other way the connection ends
                // (a bad frame, a bad header): the message says why.
                let reason = format!("{} sent an invalid message: {e}", self.core.peer_name());
                self.core.shutdown(&reason);
                Err(PyEOFError::new_err(reason))
            }
        }
    }

    /// Decodes a REPLY or EXCEPTION payload: `Ok(Ok(obj))` for a result,
    /// `Ok(Err(exc))` for the peer's exception.
    fn decode_reply<'py>(
        &self,
        conn: &Bound<'py, PyAny>,
        payload: &[u8],
    ) -> PyResult<Result<Bound<'py, PyAny>, Bound<'py, PyAny>>> {
        let py = conn.py();
        self.check_message(payload)?;
        let h = parse_header(payload, self.opts).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut body = h.body;
        match h.msg {
            MSG_REPLY => Ok(Ok(self.unbox(conn, &mut body)?)),
            MSG_EXCEPTION => {
                let raw = load_from(py, &mut body)?;
                let exc = conn.call_method1(pyo3::intern!(py, "_unbox_exc"), (raw,))?;
                Ok(Err(exc))
            }
            other => Err(PyValueError::new_err(format!("expected a reply, got message type {other}"))),
        }
    }
}

impl Peer for PyWorld {
    fn on_request(&self, _core: &Core, seq: i64, payload: Vec<u8>) {
        attach(|py| {
            if let Err(e) = self.serve_request(py, seq, &payload) {
                self.defer(e);
            }
        });
    }

    fn on_orphan(&self, payload: Vec<u8>) {
        attach(|py| {
            if let Some(conn) = self.conn(py) {
                // Unboxing creates and drops any proxy it carries, which
                // sends the DEL the peer is owed.
                if let Err(e) = self.decode_reply(&conn, &payload) {
                    log::debug!("discarded a late reply: {e}");
                }
            }
        });
    }
}

/// The rpyc objects every engine uses, looked up once per process.
struct RpycObjects {
    base_netref: Py<PyType>,
    get_id_pack: Py<PyAny>,
    stock_call: Py<PyAny>,
}

fn rpyc_objects(py: Python<'_>) -> PyResult<&'static RpycObjects> {
    static OBJECTS: OnceLock<RpycObjects> = OnceLock::new();
    if let Some(o) = OBJECTS.get() {
        return Ok(o);
    }
    let base_netref = py.import("rpyc.core.netref")?.getattr("BaseNetref")?.cast_into::<PyType>()?.unbind();
    let get_id_pack = rpyc_attr(py, "rpyc.lib", "get_id_pack")?;
    let stock_call =
        py.import("rpyc.core.protocol")?.getattr("Connection")?.getattr("_handle_call")?.unbind();
    Ok(OBJECTS.get_or_init(|| RpycObjects { base_netref, get_id_pack, stock_call }))
}

/// The native half of an `rpyc_rs.Connection`.
#[pyclass(module = "rpyc_rs._native", name = "Engine", frozen)]
pub struct Engine {
    world: Arc<PyWorld>,
}

#[pymethods]
impl Engine {
    /// Creates the engine for `conn` (an `rpyc_rs.Connection` whose rpyc
    /// tables are already set up). With `fd`, the engine owns a duplicate of
    /// that socket and does its I/O natively; without, it goes through the
    /// Python `channel`.
    /// `tcp` says the descriptor is a TCP socket (quick ACKs and no Nagle: see `stream.rs`).
    #[new]
    /// `legacy_framing` starts out in rpyc 5.x's message framing (for when
    /// the installed rpyc is 5.x); the core then follows the peer's.
    #[pyo3(signature = (conn, channel, fd=None, peer=String::new(), compress=true, max_frame_size=None, tcp=false, legacy_framing=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        conn: &Bound<'_, PyAny>,
        channel: &Bound<'_, PyAny>,
        fd: Option<i32>,
        peer: String,
        compress: bool,
        max_frame_size: Option<usize>,
        tcp: bool,
        legacy_framing: bool,
    ) -> PyResult<Engine> {
        let mut cfg = ChannelConfig { compress, ..ChannelConfig::default() };
        if let Some(m) = max_frame_size {
            cfg.max_frame_size = m;
        }
        // The stream, made before the world (these steps can fail); the
        // core around it is made inside `new_cyclic`, because its readers
        // hold the world weakly (to hand it a signal handler's exception).
        let world_slot: Arc<OnceLock<Weak<PyWorld>>> = Arc::new(OnceLock::new());
        let socket = match fd {
            Some(fd) => {
                // SAFETY: dup of a descriptor the caller keeps open for the
                // duration of this call; we own the duplicate.
                let dup = unsafe { libc::dup(fd) };
                if dup < 0 {
                    return Err(PyOSError::new_err(std::io::Error::last_os_error().to_string()));
                }
                // SAFETY: `dup` is a fresh descriptor nobody else owns.
                let owned = unsafe { OwnedFd::from_raw_fd(dup) };
                // While a call waits here the GIL is released, so Python
                // cannot run signal handlers; stock rpyc waits in select(),
                // which Python interrupts to run them, so Ctrl-C ends a long
                // call at once. Our poll() runs them when interrupted, and
                // an exception one raises goes to the waiting Python call.
                let slot = world_slot.clone();
                let on_signal: InterruptHook = Box::new(move || {
                    let Some(world) = slot.get().and_then(Weak::upgrade) else { return false };
                    match attach(|py| py.check_signals()) {
                        Ok(()) => false,
                        Err(e) => {
                            world.defer(e);
                            true
                        }
                    }
                });
                let stream = Stream::from_socket_fd(owned, peer.clone(), tcp, Some(on_signal))
                    .map_err(|e| PyOSError::new_err(e.to_string()))?;
                let raw =
                    stream.fd.ok_or_else(|| PyOSError::new_err("socket stream without a descriptor"))?;
                Some((stream, raw))
            }
            None => None,
        };
        let rpyc = rpyc_objects(py)?;
        let conn_ref = PyWeakrefReference::new(conn)?.unbind();
        let local_objects = conn.getattr("_local_objects")?.unbind();
        let proxy_cache = conn.getattr("_proxy_cache")?.unbind();
        let handlers = conn.getattr("_HANDLERS")?.cast_into::<PyDict>()?.unbind();
        let config = conn.getattr("_config")?.cast_into::<PyDict>()?.unbind();
        let channel = channel.clone().unbind();
        let world = Arc::new_cyclic(|weak: &Weak<PyWorld>| {
            let core = match socket {
                Some((stream, raw)) => {
                    let _ = world_slot.set(weak.clone());
                    Core::from_parts(
                        Box::new(FrameReader::new(stream.reader, &cfg)),
                        Box::new(FrameWriter::new(stream.writer, &cfg)),
                        stream.closer,
                        stream.peer,
                        Some(raw),
                    )
                }
                None => {
                    let closer_ch = channel.clone_ref(py);
                    Core::from_parts(
                        Box::new(PyChannelFrames { channel: channel.clone_ref(py), world: weak.clone() }),
                        Box::new(PyChannelFrames { channel, world: weak.clone() }),
                        Box::new(move || {
                            attach(|py| {
                                let _ = closer_ch.bind(py).call_method0("close");
                            })
                        }),
                        peer,
                        None,
                    )
                }
            };
            PyWorld {
                core,
                conn: conn_ref,
                local_objects,
                proxy_cache,
                handlers,
                config,
                base_netref: rpyc.base_netref.clone_ref(py),
                get_id_pack: rpyc.get_id_pack.clone_ref(py),
                stock_call: rpyc.stock_call.clone_ref(py),
                opts: crate::python::brine::decode_options(py),
                deferred: Mutex::new(Vec::new()),
                any_deferred: AtomicBool::new(false),
            }
        });
        world.core.set_legacy_framing(legacy_framing);
        Ok(Engine { world })
    }

    /// Sends a request and waits for its reply within the connection's
    /// `sync_request_timeout`, serving the peer's requests meanwhile.
    #[pyo3(signature = (handler, *args))]
    fn sync_request<'py>(
        &self,
        py: Python<'py>,
        handler: i64,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _inside = InEngine::enter();
        let w = &*self.world;
        let conn = w.conn(py).ok_or_else(|| PyEOFError::new_err("connection was garbage-collected"))?;
        let timeout = match w.config.bind(py).get_item(pyo3::intern!(py, "sync_request_timeout"))? {
            Some(t) if !t.is_none() => seconds(t.extract()?),
            _ => None,
        };
        let seq = w.core.next_seq();
        let mut frame = w.build_request(&conn, seq, handler, args)?;
        let got = detach(py, || {
            w.core.send_request(seq, &mut frame)?;
            drop(frame);
            WAITING.with(|s| s.borrow_mut().push((w.id(), seq)));
            let got = w.core.wait(w, seq, timeout);
            WAITING.with(|s| s.borrow_mut().pop());
            got
        });
        w.take_deferred()?;
        let payload = got.map_err(|e| w.raise(py, e))?;
        match w.decode_reply(&conn, &payload)? {
            Ok(obj) => Ok(obj),
            Err(exc) => Err(exception_from(exc)),
        }
    }

    /// Sends a request; `callback(is_exc, obj)` runs when the reply arrives
    /// (on whichever thread reads it). Without a callback the reply is
    /// decoded and dropped (DEL uses this).
    #[pyo3(signature = (handler, args, callback=None))]
    fn async_request(
        &self,
        py: Python<'_>,
        handler: i64,
        args: &Bound<'_, PyTuple>,
        callback: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let _inside = InEngine::enter();
        let w = &*self.world;
        let conn = w.conn(py).ok_or_else(|| PyEOFError::new_err("connection was garbage-collected"))?;
        let seq = w.core.next_seq();
        let mut frame = w.build_request(&conn, seq, handler, args)?;
        let sent = match callback {
            // A DEL from a netref's `__del__`, which the garbage collector
            // may run on a thread that holds the writer (mid-send through a
            // Python channel): queue it rather than wait for ourselves. It
            // goes out now unless another thread is sending (which then
            // sends it), as rpyc sends it: the peer frees the object at once,
            // not at our next request. (The delayed-ACK stall this used to
            // cost against stock servers is handled by quick ACKs in `stream.rs`.)
            None => {
                detach(py, || {
                    w.core.send_deferred(frame);
                    w.core.flush();
                });
                Ok(())
            }
            Some(cb) => {
                let world: Weak<PyWorld> = Arc::downgrade(&self.world);
                let on_reply = Box::new(move |r: Result<Vec<u8>, Error>| {
                    attach(|py| deliver(py, &world, &cb, r));
                });
                detach(py, || w.core.send_request_with_callback(seq, &mut frame, on_reply))
            }
        };
        sent.map_err(|e| w.raise(py, e))
    }

    /// Serves one incoming message if one arrives within `timeout` seconds
    /// (`None`: wait as long as it takes). True if one was served.
    #[pyo3(signature = (timeout=None))]
    fn serve(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let _inside = InEngine::enter();
        let w = &*self.world;
        let t = timeout.and_then(seconds);
        let r = detach(py, || w.core.serve(w, t));
        w.take_deferred()?;
        r.map_err(|e| w.raise(py, e))
    }

    /// Serves requests and replies until the connection ends (rpyc's
    /// `serve_all` loop, without a Python call per message). Returns when
    /// the connection is closed, by either side; raises what a handler
    /// deferred (say `SystemExit`) or a signal handler raised.
    fn serve_all(&self, py: Python<'_>) -> PyResult<()> {
        let _inside = InEngine::enter();
        let w = &*self.world;
        loop {
            let r = detach(py, || w.core.serve(w, None));
            w.take_deferred()?;
            match r {
                // A wait abandoned for a signal whose handler raised nothing.
                Ok(_) | Err(Error::Timeout) => {}
                Err(Error::Closed { .. }) => {
                    // The peer is gone: rpyc's serve_all closes and returns.
                    if let Some(conn) = w.conn(py) {
                        conn.call_method0(pyo3::intern!(py, "close"))?;
                    }
                    return Ok(());
                }
                Err(e) => return Err(w.raise(py, e)),
            }
        }
    }

    /// Ends the connection at once: pending calls fail, the socket is shut.
    #[pyo3(signature = (reason="connection closed"))]
    fn shutdown(&self, py: Python<'_>, reason: &str) {
        let core = &self.world.core;
        detach(py, || core.shutdown(reason));
    }

    /// True once the connection has ended.
    #[getter]
    fn closed(&self) -> bool {
        self.world.core.is_closed()
    }

    /// The descriptor the engine reads, if it owns one.
    fn fileno(&self) -> Option<i32> {
        self.world.core.fileno()
    }
}

/// A timeout in seconds as a `Duration`: negative or NaN is "now", infinite
/// or too large for a `Duration` is "no limit".
fn seconds(s: f64) -> Option<Duration> {
    if s.is_nan() || s <= 0.0 {
        return Some(Duration::ZERO);
    }
    Duration::try_from_secs_f64(s).ok()
}

/// Checks a whole message (type, `(seq, body)`) without building anything:
/// well-formed brine, nesting within the depth limit, no trailing bytes.
fn check_well_formed(payload: &[u8], opts: DecodeOptions) -> Result<(), String> {
    let mut body = parse_header(payload, opts).map_err(|e| e.to_string())?.body;
    body.skip_value().and_then(|()| body.finish()).map_err(|e| e.to_string())
}

/// Hands a reply to an async callback as `callback(is_exc, obj)`.
fn deliver(py: Python<'_>, world: &Weak<PyWorld>, cb: &Py<PyAny>, r: Result<Vec<u8>, Error>) {
    let Some(w) = world.upgrade() else { return };
    let outcome = match r {
        Ok(payload) => match w.conn(py) {
            Some(conn) => match w.decode_reply(&conn, &payload) {
                Ok(Ok(obj)) => (false, obj),
                Ok(Err(exc)) => (true, exc),
                Err(e) => (true, e.value(py).clone().into_any()),
            },
            None => return,
        },
        Err(Error::Closed { reason }) => (true, PyEOFError::new_err(reason).value(py).clone().into_any()),
        Err(e) => (true, PyValueError::new_err(e.to_string()).value(py).clone().into_any()),
    };
    if let Err(e) = cb.bind(py).call1(outcome) {
        w.defer(e);
    }
}

/// The exception object vinegar produced (an instance, or the
/// `StopIteration` class rpyc uses as a shortcut) as a raisable error.
fn exception_from(exc: Bound<'_, PyAny>) -> PyErr {
    PyErr::from_value(exc)
}

/// Registers the engine class.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()
}
