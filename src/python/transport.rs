//! Frames through a Python `rpyc` channel, for streams the engine cannot
//! own (SSL sockets, pipes, tunnels): the engine's [`FrameSource`] and
//! [`FrameSink`] implemented by calling the channel's `poll`, `recv` and
//! `send`, with the GIL taken only for those calls.

use std::time::Duration;

use pyo3::exceptions::{PyEOFError, PyOSError};
use pyo3::prelude::*;

use crate::channel::{ChannelError, FrameSink, FrameSource};

use super::exiting::attach;
use super::world::interruption;

/// Reads and writes frames through a Python `rpyc` channel, for streams
/// whose bytes we cannot own (SSL sockets, pipes, tunnels).
pub(crate) struct PyChannelFrames {
    pub(crate) channel: Py<PyAny>,
}

impl PyChannelFrames {
    /// EOFError ends the connection, as in rpyc, and so does an OSError
    /// (the stream is broken). Anything else comes from Python code that
    /// ran during the wait (a signal handler's KeyboardInterrupt): it
    /// interrupts the wait and goes to the Python call waiting on this
    /// thread, and the connection lives.
    fn error(&self, py: Python<'_>, e: PyErr) -> ChannelError {
        if e.is_instance_of::<PyEOFError>(py) {
            return ended(py, &e);
        }
        if e.is_instance_of::<PyOSError>(py) {
            return ChannelError::Io(std::io::Error::other(e.to_string()));
        }
        ChannelError::Interrupted(interruption(e))
    }
}

/// The stream's `EOFError` as a channel error, keeping its message (rpyc
/// raises it as it is: an SSL alert, "connection closed by peer"...).
fn ended(py: Python<'_>, e: &PyErr) -> ChannelError {
    let why = e.value(py).to_string();
    if why.is_empty() {
        ChannelError::Closed
    } else {
        ChannelError::Ended(why)
    }
}

impl FrameSource for PyChannelFrames {
    fn recv(&mut self, timeout: Option<Duration>) -> Result<Vec<u8>, ChannelError> {
        attach(|py| {
            let ch = self.channel.bind(py);
            let t = timeout.map(|d| d.as_secs_f64());
            let ready = ch.call_method1(pyo3::intern!(py, "poll"), (t,)).and_then(|r| r.is_truthy());
            match ready {
                Ok(false) => return Err(ChannelError::Timeout),
                Ok(true) => {}
                Err(e) => return Err(self.error(py, e)),
            }
            match ch.call_method0(pyo3::intern!(py, "recv")) {
                Ok(data) => data
                    .extract::<Vec<u8>>()
                    .map_err(|e| ChannelError::Io(std::io::Error::other(e.to_string()))),
                Err(e) => Err(self.error(py, e)),
            }
        })
    }
    fn has_buffered(&self) -> bool {
        false
    }
}

impl FrameSink for PyChannelFrames {
    fn send_prepared(&mut self, buf: &mut Vec<u8>) -> Result<(), ChannelError> {
        let payload = &buf[crate::channel::HEADER_LEN..];
        attach(|py| {
            let data = pyo3::types::PyBytes::new(py, payload);
            self.channel.bind(py).call_method1(pyo3::intern!(py, "send"), (data,)).map(drop).map_err(|e| {
                if e.is_instance_of::<PyEOFError>(py) {
                    ended(py, &e)
                } else {
                    ChannelError::Io(std::io::Error::other(e.to_string()))
                }
            })
        })
    }
}
