//! Serving the peer's requests on Python objects: decoding a request,
//! running rpyc's handler for it (or its native equivalent), and answering
//! with the result or the exception, in rpyc's order of side effects.

use pyo3::exceptions::{PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::brine::Token;
use crate::protocol::message::{parse_header, MSG_EXCEPTION, MSG_REPLY};

use super::brine::{dump_into, to_py_err};
use super::engine::PyWorld;
use super::exiting::detach;

impl PyWorld {
    pub(crate) fn serve_request(&self, py: Python<'_>, seq: i64, payload: &[u8]) -> PyResult<()> {
        let Some(conn) = self.conn(py) else { return Ok(()) };
        self.check_message(payload)?;
        let outcome = self.run_handler(py, &conn, payload);
        let mut frame = Vec::with_capacity(128);
        let boxed = match &outcome {
            Ok((res, _args)) => {
                self.core.begin_message(&mut frame, MSG_REPLY, seq);
                self.box_into(&conn, res, &mut frame, 0)
            }
            Err(e) => Err(e.clone_ref(py)),
        };
        if let Err(err) = boxed {
            // What rpyc's `_dispatch_request` does with a failed request,
            // in its order: keep the traceback (`rpyc.classic.pm` reads
            // it), log, maybe re-raise locally, else answer with it.
            let t = err.get_type(py);
            let value = err.value(py);
            let tb = err.traceback(py).map(|t| t.into_any()).unwrap_or_else(|| py.None().into_bound(py));
            conn.setattr(pyo3::intern!(py, "_last_traceback"), &tb)?;
            let config = self.config.bind(py);
            if let Some(logger) = config.get_item("logger")? {
                if logger.is_truthy()? && !t.is(py.get_type::<pyo3::exceptions::PyStopIteration>()) {
                    let kwargs = PyDict::new(py);
                    kwargs.set_item("exc_info", (&t, value, &tb))?;
                    logger.call_method("debug", ("Exception caught",), Some(&kwargs))?;
                }
            }
            let propagate = |key: &str| -> PyResult<bool> {
                match config.get_item(key)? {
                    Some(v) => v.is_truthy(),
                    None => Ok(false),
                }
            };
            if (t.is(py.get_type::<pyo3::exceptions::PySystemExit>())
                && propagate("propagate_SystemExit_locally")?)
                || (t.is(py.get_type::<pyo3::exceptions::PyKeyboardInterrupt>())
                    && propagate("propagate_KeyboardInterrupt_locally")?)
            {
                return Err(err);
            }
            let raw = conn.call_method1(pyo3::intern!(py, "_box_exc"), (t, value, tb))?;
            self.core.begin_message(&mut frame, MSG_EXCEPTION, seq);
            dump_into(&raw, &mut frame, 0)?;
        }
        let core = &self.core;
        // A send failure means the connection is gone; the read loop
        // reports that to whoever is serving.
        let _ = detach(py, || core.send(&mut frame));
        // The result and arguments die only now: a proxy among them sends
        // its DEL after our reply, as in rpyc, so the peer never sees an
        // object released before the reply that refers to it.
        drop(outcome);
        Ok(())
    }

    /// Runs the request's handler; returns its result with the arguments,
    /// which must outlive the reply (see `serve_request`).
    fn run_handler<'py>(
        &self,
        py: Python<'py>,
        conn: &Bound<'py, PyAny>,
        payload: &[u8],
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let h = parse_header(payload, self.opts).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let mut body = h.body;
        if body.next_token().map_err(to_py_err)? != Token::Tuple(2) {
            return Err(PyValueError::new_err("malformed request"));
        }
        let handler = match body.next_token().map_err(to_py_err)? {
            Token::Int(n) => n,
            _ => return Err(PyValueError::new_err("malformed request: handler is not an int")),
        };
        let args = self.unbox(conn, &mut body)?;
        let args = args
            .cast_into::<PyTuple>()
            .map_err(|_| PyValueError::new_err("request arguments are not a tuple"))?;
        // rpyc looks the handler up with `self._HANDLERS[handler]`: an
        // unknown one is a KeyError, answered to the peer.
        let func = self.handlers.bind(py).get_item(handler)?.ok_or_else(|| PyKeyError::new_err(handler))?;
        // rpyc's own `_handle_call` is `obj(*args, **dict(kwargs))`, the
        // handler behind every remote call: done here, without its Python
        // frame. A subclass's handler, or a request of another shape, runs
        // through Python as usual.
        if func.is(self.stock_call.bind(py)) {
            if let Some(res) = call_natively(&args)? {
                return Ok((res, args));
            }
        }
        let mut call_args = Vec::with_capacity(args.len() + 1);
        call_args.push(conn.clone());
        call_args.extend(args.iter());
        let res = func.call1(PyTuple::new(py, call_args)?)?;
        Ok((res, args))
    }
}

/// `obj(*args, **dict(kwargs))` for the request `(obj, args[, kwargs])`, as
/// rpyc's `_handle_call`; `None` when the request is not of the shape the
/// native path covers (the Python handler then runs, and fails as rpyc's
/// would).
fn call_natively<'py>(request: &Bound<'py, PyTuple>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let n = request.len();
    if !(2..=3).contains(&n) {
        return Ok(None);
    }
    let Ok(args) = request.get_item(1)?.cast_into::<PyTuple>() else { return Ok(None) };
    let kwargs = if n == 3 {
        let kw = request.get_item(2)?;
        if let Ok(d) = kw.cast::<PyDict>() {
            Some(d.copy()?)
        } else if let Ok(pairs) = kw.cast::<PyTuple>() {
            if pairs.is_empty() {
                None
            } else {
                Some(PyDict::from_sequence(pairs.as_any())?)
            }
        } else {
            return Ok(None);
        }
    } else {
        None
    };
    let obj = request.get_item(0)?;
    Ok(Some(obj.call(args, kwargs.as_ref())?))
}
