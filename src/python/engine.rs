//! The protocol engine for Python: the crate's [`Core`] driven by the Python
//! object world, exposed as `rpyc_rs._native.Engine`.
//!
//! `rpyc_rs.Connection` (a subclass of rpyc's own `Connection`, in
//! `python/rpyc_rs/_connection.py`) creates one engine and routes the hot
//! path to it: `sync_request`, `async_request` and `serve`. Framing,
//! compression, brine, boxing, the seq table and the read loop run here, with
//! the GIL released around socket I/O; requests go through the shared
//! request/reply/serve path (`crate::protocol::exchange`) with the Python
//! world's leaves (`world.rs`). rpyc's own handlers run where `attrs.rs` and
//! the native CALL do not take over, and its netref classes and vinegar stay
//! in charge, so behaviour stays rpyc's.
//!
//! The engine holds the Python connection only weakly (a weakref), so a
//! connection nobody references is still collected and closed by rpyc's
//! `__del__`, as with stock rpyc.

use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use pyo3::exceptions::{PyEOFError, PyOSError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType, PyWeakrefReference};

use crate::brine::DecodeOptions;
use crate::channel::{ChannelConfig, FrameReader, FrameWriter};
use crate::protocol::core::{Core, Peer};
use crate::protocol::exchange::{self, build_request, decode_reply, World};
use crate::protocol::message::{Handler, Incoming};
use crate::protocol::Error;
use crate::stream::{InterruptHook, Interruption, Stream};

use super::exiting::{attach, detach, InEngine};
use super::rpyc_objects::{native_handlers, rpyc_objects};
use super::transport::PyChannelFrames;
use super::world::{interruption, interruption_cause, PySide};

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
    /// Whether `get_id_pack` may be answered natively (rpyc 6's rule; under
    /// rpyc 5 rpyc's own function always answers).
    pub(crate) native_id_pack: bool,
    /// rpyc's `hasattr_static` (as `rpyc.core.protocol` imports it).
    pub(crate) hasattr_static: Py<PyAny>,
    /// rpyc's own handler functions that `attrs.rs` serves natively, by
    /// handler number; empty when the connection's class overrides one of
    /// the methods those handlers call (`_access_attr`, `_check_attr`,
    /// `_handle_getattr`, `_handle_call`), so the override runs.
    pub(crate) native_handlers: &'static [(i64, Py<PyAny>)],
    /// Proxies made without Python frames, when the connection keeps
    /// rpyc-rs's proxy factory and rpyc's proxy cache.
    pub(crate) fast_proxies: Option<super::proxies::FastProxies>,
    /// The attribute policy's settings as last read from `conn._config`.
    pub(crate) config_memo: super::live_config::ConfigMemo,
    pub(crate) opts: DecodeOptions,
}

impl PyWorld {
    pub(crate) fn conn<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyAny>> {
        self.conn.bind(py).upgrade()
    }

    /// The per-call view the shared path works on; `None` once the Python
    /// connection has been collected.
    fn side<'a, 'py>(&'a self, py: Python<'py>) -> Option<PySide<'a, 'py>> {
        Some(PySide { w: self, conn: self.conn(py)? })
    }

    /// rpyc's `get_id_pack(obj)`: natively where that is certain to give
    /// rpyc's answer (see `tables::id_pack`), else rpyc's function.
    pub(crate) fn id_pack<'py>(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if self.native_id_pack {
            if let Some(t) = super::tables::id_pack(obj)? {
                return Ok(t.into_any());
            }
        }
        self.get_id_pack.bind(obj.py()).call1((obj,))
    }

    fn side_or_eof<'a, 'py>(&'a self, py: Python<'py>) -> PyResult<PySide<'a, 'py>> {
        self.side(py).ok_or_else(|| PyEOFError::new_err("connection was garbage-collected"))
    }
}

impl Peer for PyWorld {
    fn on_request(&self, core: &Core, msg: Incoming) -> Result<(), Interruption> {
        let answer = attach(|py| {
            let Some(side) = self.side(py) else { return Ok(None) };
            let mut msg = msg;
            loop {
                let del = msg.is_del();
                let answer = exchange::serve(&side, msg)?;
                if answer.is_some() || !del {
                    return Ok(answer);
                }
                // A DEL's answer waits for our next frame, and the request
                // its client sent with it is usually buffered already:
                // served now, in the same hold of the GIL.
                match core.next_buffered_request() {
                    Some(next) => msg = next,
                    None => return Ok(None),
                }
            }
        })?;
        // Sent without the GIL, which `attach` has just given back: no
        // release and retake around the write.
        if let Some(answer) = answer {
            answer.send(core);
        }
        Ok(())
    }

    fn on_orphan(&self, msg: Incoming) {
        // Most orphans are the answers to our DELs: nothing to release, so
        // no reason to take the GIL.
        if msg.is_reply_of_none() {
            return;
        }
        attach(|py| {
            if let Some(side) = self.side(py) {
                // Unboxing creates and drops any proxy it carries, which
                // sends the DEL the peer is owed.
                if let Err(e) = decode_reply(&side, &msg) {
                    log::debug!("discarded a late reply: {e}");
                }
            }
        });
    }
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
    /// `tcp` says the descriptor is a TCP socket (quick ACKs and no Nagle: see `crate::stream`).
    #[new]
    /// `legacy_framing` starts out in rpyc 5.x's message framing (for when
    /// the installed rpyc is 5.x); the core then follows the peer's.
    #[pyo3(signature = (conn, channel, fd=None, peer=String::new(), compress=true, max_frame_size=None, tcp=false, legacy_framing=false, reply_spin_us=None))]
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
        reply_spin_us: Option<u64>,
    ) -> PyResult<Engine> {
        let mut cfg = ChannelConfig { compress, ..ChannelConfig::default() };
        if let Some(m) = max_frame_size {
            cfg.max_frame_size = m;
        }
        if let Some(us) = reply_spin_us {
            cfg.reply_spin = Duration::from_micros(us);
        }
        // The stream, made before the world (these steps can fail).
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
                // an exception one raises interrupts the wait and reaches
                // the waiting Python call as what it is.
                let on_signal: InterruptHook =
                    Box::new(|| attach(|py| py.check_signals()).err().map(interruption));
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
        let native_handlers = native_handlers(py, conn, rpyc)?;
        let fast_proxies = super::proxies::FastProxies::new(conn)?;
        let channel = channel.clone().unbind();
        let world = Arc::new({
            let core = match socket {
                Some((stream, raw)) => Core::from_parts(
                    Box::new(FrameReader::new(stream.reader, &cfg)),
                    Box::new(FrameWriter::new(stream.writer, &cfg)),
                    stream.closer,
                    stream.peer,
                    Some(raw),
                ),
                None => {
                    let closer_ch = channel.clone_ref(py);
                    Core::from_parts(
                        Box::new(PyChannelFrames { channel: channel.clone_ref(py) }),
                        Box::new(PyChannelFrames { channel }),
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
                hasattr_static: rpyc.hasattr_static.clone_ref(py),
                native_id_pack: rpyc.rpyc6,
                fast_proxies,
                config_memo: super::live_config::ConfigMemo::new(),
                native_handlers,
                opts: crate::python::brine::decode_options(py),
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
        self.request(py, handler, args)
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
        let side = self.world.side_or_eof(py)?;
        let core = &self.world.core;
        let seq = core.next_seq();
        let mut frame = build_request(&side, seq, handler_of(handler)?, args.as_any())?;
        let sent = match callback {
            // A DEL from a netref's `__del__`, which the garbage collector
            // may run on a thread that holds the writer (mid-send through a
            // Python channel): queued, never waited for. It rides in the
            // same write as the next frame we send (or goes out before this
            // connection next blocks reading), as in the Rust world: one
            // syscall and one wake-up of the peer fewer per dropped proxy,
            // and the peer still frees the object before it serves any
            // request of ours that follows.
            None => {
                core.send_deferred(frame);
                Ok(())
            }
            Some(cb) => {
                let world: Weak<PyWorld> = Arc::downgrade(&self.world);
                let on_reply =
                    Box::new(move |r: Result<Incoming, Error>| attach(|py| deliver(py, &world, &cb, r)));
                detach(py, || core.send_request_with_callback(seq, &mut frame, on_reply))
            }
        };
        sent.map_err(|e| side.error(e))
    }

    /// rpyc's `Connection.async_request(handler, *args, timeout=None)`, the
    /// whole method natively (a netref's `__del__` calls it for every
    /// dropped proxy): a DEL is queued and answers `None`; anything else
    /// returns an rpyc `AsyncResult` (looked up in `rpyc.core.protocol` at
    /// each call, as rpyc does).
    #[pyo3(signature = (handler, *args, **kwargs))]
    fn async_request_rpyc(
        &self,
        py: Python<'_>,
        handler: i64,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let mut timeout = None;
        if let Some(kw) = kwargs {
            timeout = kw.get_item("timeout")?;
            if timeout.is_some() {
                kw.del_item("timeout")?;
            }
            if !kw.is_empty() {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "got unexpected keyword argument(s) {}",
                    kw.keys().repr()?
                )));
            }
        }
        if handler == Handler::Del as i64 {
            self.async_request(py, handler, args, None)?;
            return Ok(py.None());
        }
        let side = self.world.side_or_eof(py)?;
        let res = py.import("rpyc.core.protocol")?.getattr("AsyncResult")?.call1((&side.conn,))?;
        self.async_request(py, handler, args, Some(res.clone().unbind()))?;
        if let Some(t) = timeout.filter(|t| !t.is_none()) {
            res.call_method1("set_expiry", (t,))?;
        }
        Ok(res.unbind())
    }

    /// Serves one incoming message if one arrives within `timeout` seconds
    /// (`None`: wait as long as it takes). True if one was served. With
    /// `since` (a [`Engine::generation`] read before the caller checked what
    /// it waits for), returns False at once when anything happened since.
    #[pyo3(signature = (timeout=None, since=None))]
    fn serve(&self, py: Python<'_>, timeout: Option<f64>, since: Option<u64>) -> PyResult<bool> {
        let _inside = InEngine::enter();
        let w = &*self.world;
        let t = timeout.and_then(seconds);
        let r = detach(py, || w.core.serve_since(w, t, since));
        r.map_err(|e| self.error(py, e))
    }

    /// A counter of the events `serve` waits for (replies placed or
    /// delivered, the reader released, the end).
    #[getter]
    fn generation(&self) -> u64 {
        self.world.core.generation()
    }

    /// Serves requests and replies until the connection ends (rpyc's
    /// `serve_all` loop, without a Python call per message). Returns when
    /// the connection is closed, by either side; raises what a handler
    /// propagated locally (say `SystemExit`) or a signal handler raised.
    fn serve_all(&self, py: Python<'_>) -> PyResult<()> {
        let _inside = InEngine::enter();
        let w = &*self.world;
        // With a socket of its own, the engine counts the connection idle
        // after a while without a frame and waits on in a shallow frame
        // (see `idle`); without one, it waits in the channel for good.
        let fd = w.core.fileno();
        let timeout = fd.map(|_| super::idle::IDLE_AFTER);
        // Frame after frame without taking the GIL in between: each
        // request's handler takes it while it runs (`Peer::on_request`), and
        // nothing here needs it until the connection idles or ends.
        let serve_while_busy = || loop {
            match w.core.serve_busy(w, timeout) {
                Ok(true) => {}
                other => return other,
            }
        };
        loop {
            match detach(py, serve_while_busy) {
                Ok(true) => {}
                Ok(false) => {
                    if let Some(fd) = fd {
                        let on_signal: InterruptHook =
                            Box::new(|| attach(|py| py.check_signals()).err().map(interruption));
                        if let Err(why) = detach(py, || super::idle::wait_for_data(fd, on_signal)) {
                            return Err(self.error(py, Error::Interrupted(why)));
                        }
                    }
                }
                Err(Error::Closed { .. }) => {
                    // The peer is gone: rpyc's serve_all closes and returns.
                    if let Some(conn) = w.conn(py) {
                        conn.call_method0(pyo3::intern!(py, "close"))?;
                    }
                    return Ok(());
                }
                Err(e) => return Err(self.error(py, e)),
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

impl Engine {
    /// `sync_request(handler, *args)` with `args` already a tuple: what
    /// the native netref methods call (`netref.rs`, `proxies.rs`), without
    /// a Python call in between.
    pub(crate) fn request<'py>(
        &self,
        py: Python<'py>,
        handler: i64,
        args: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _inside = InEngine::enter();
        let side = self.world.side_or_eof(py)?;
        let timeout = match self.world.config.bind(py).get_item(pyo3::intern!(py, "sync_request_timeout"))? {
            Some(t) if !t.is_none() => seconds(t.extract()?),
            _ => None,
        };
        exchange::request(&side, handler_of(handler)?, args.clone().into_any(), timeout)
    }

    /// `async_request_rpyc(handler, *args)` with `args` already a tuple.
    pub(crate) fn request_async(
        &self,
        py: Python<'_>,
        handler: i64,
        args: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        self.async_request_rpyc(py, handler, args, None)
    }
}

/// The engine that `meth` is bound to, when `meth` is that engine's method
/// named `name`: rpyc-rs's `Connection` puts `engine.sync_request` and
/// `engine.async_request_rpyc` on itself as `sync_request` and
/// `async_request` (unless a subclass defines its own), and a caller that
/// finds one there can go to the engine directly.
pub(crate) fn bound_engine<'py>(meth: &Bound<'py, PyAny>, name: EngineMethod) -> Option<Bound<'py, Engine>> {
    let py = meth.py();
    let p = meth.as_ptr();
    // SAFETY: `p` is a live object; the two getters are only called on a
    // builtin method (checked first), and `PyCFunction_GetSelf` returns a
    // borrowed reference (or NULL), made an owned one at once.
    let (engine, f) = unsafe {
        if ffi::PyCFunction_Check(p) == 0 {
            return None;
        }
        let engine =
            Bound::from_borrowed_ptr_or_opt(py, ffi::PyCFunction_GetSelf(p))?.cast_into::<Engine>().ok()?;
        (engine, ffi::PyCFunction_GetFunction(p)? as usize)
    };
    (f == name.function(&engine)?).then_some(engine)
}

/// The engine methods [`bound_engine`] recognises.
#[derive(Clone, Copy)]
pub(crate) enum EngineMethod {
    SyncRequest,
    AsyncRequestRpyc,
}

impl EngineMethod {
    /// The C function behind this method of every engine (they share their
    /// method definitions), learnt from the first engine asked.
    fn function(self, engine: &Bound<'_, Engine>) -> Option<usize> {
        static FUNCTIONS: [OnceLock<usize>; 2] = [OnceLock::new(), OnceLock::new()];
        let (cell, name) = match self {
            EngineMethod::SyncRequest => (&FUNCTIONS[0], "sync_request"),
            EngineMethod::AsyncRequestRpyc => (&FUNCTIONS[1], "async_request_rpyc"),
        };
        if let Some(f) = cell.get() {
            return Some(*f);
        }
        let bound = engine.getattr(name).ok()?;
        // SAFETY: `bound` is a live builtin method (an engine's).
        let f = unsafe { ffi::PyCFunction_GetFunction(bound.as_ptr())? as usize };
        Some(*cell.get_or_init(|| f))
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

/// The handler with this number, or rpyc's error for a bad one.
fn handler_of(n: i64) -> PyResult<Handler> {
    Handler::from_number(n).ok_or_else(|| PyValueError::new_err(format!("unknown request handler {n}")))
}

impl Engine {
    /// An engine error as what rpyc raises (see the Python world's `error`).
    fn error(&self, py: Python<'_>, e: Error) -> PyErr {
        match self.world.side(py) {
            Some(side) => side.error(e),
            None => match e {
                Error::Interrupted(why) => interruption_cause(py, &why),
                other => PyEOFError::new_err(other.to_string()),
            },
        }
    }
}

/// Hands a reply to an async callback as `callback(is_exc, obj)`. What the
/// callback raises goes to the call that was reading, as rpyc's `serve`
/// raises it.
fn deliver(
    py: Python<'_>,
    world: &Weak<PyWorld>,
    cb: &Py<PyAny>,
    r: Result<Incoming, Error>,
) -> Result<(), Interruption> {
    let Some(w) = world.upgrade() else { return Ok(()) };
    let Some(side) = w.side(py) else { return Ok(()) };
    let outcome = match r.map_err(|e| side.error(e)).and_then(|msg| decode_reply(&side, &msg)) {
        Ok(obj) => (false, obj),
        Err(e) => (true, e.value(py).clone().into_any()),
    };
    cb.bind(py).call1(outcome).map(drop).map_err(interruption)
}

/// Registers the engine class.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()
}
