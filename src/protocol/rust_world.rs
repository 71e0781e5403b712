//! The Rust object world's leaves for the shared path: how an [`Object`] is
//! dumped, stored, named and looked up, how a [`RemoteException`] becomes
//! vinegar and back, and which [`Expose`] method a handler runs.
//!
//! Everything around these leaves (box/unbox recursion, requests, replies,
//! serving in rpyc's order) is `exchange.rs`, shared with the Python world.
//! This module hands [`Core`] the connection's [`Peer`].

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::brine::{DecodeOptions, Decoder};
use crate::service::Expose;
use crate::stream::Interruption;

use super::boxing::{put_plain, IdPack, Object};
use super::connection::{Connection, Inner};
use super::core::{Core, Peer};
use super::dispatch::{protocol_exc, run};
use super::exchange::{self, World};
use super::message::{Handler, Incoming};
use super::vinegar::{rust_traceback, RemoteException};
use super::{Error, Result};

impl World for Inner {
    type Obj = Object;
    type Err = Error;

    fn core(&self) -> &Core {
        &self.core
    }

    fn peer(&self) -> &dyn Peer {
        self
    }

    fn decode_options(&self) -> DecodeOptions {
        self.config.decode_options()
    }

    fn blocking<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        f()
    }

    fn is_plain(&self, obj: &Object, _depth: usize) -> Result<bool> {
        Ok(obj.is_plain())
    }

    fn dump(&self, obj: &Object, out: &mut Vec<u8>, _depth: usize) -> Result<()> {
        put_plain(obj, out)
    }

    fn tuple_items<'o>(&self, obj: &'o Object) -> Option<Cow<'o, [Object]>> {
        match obj {
            Object::Tuple(items) => Some(Cow::Borrowed(items)),
            _ => None,
        }
    }

    fn put_home_ref(&self, obj: &Object, out: &mut Vec<u8>) -> Result<bool> {
        match obj {
            Object::Remote(n) if n.belongs_to(self) => n.id_pack().encode_into(out).map(|()| true),
            _ => Ok(false),
        }
    }

    fn put_local_ref(&self, obj: &Object, out: &mut Vec<u8>) -> Result<()> {
        let local: Arc<dyn Expose> = match obj {
            Object::Local(o) => o.clone(),
            // A proxy from another connection: to this peer it is our
            // object, served by forwarding (RPyC over RPyC).
            Object::Remote(n) => Arc::new(n.clone()),
            other => return Err(Error::type_mismatch("an object to send by reference", other.type_name())),
        };
        let id = IdPack::of_local(&local);
        id.encode_into(out)?;
        self.locals.add(id, local);
        Ok(())
    }

    fn load_value(&self, dec: &mut Decoder<'_>) -> Result<Object> {
        Ok(Object::Value(dec.read_value()?))
    }

    fn make_tuple(&self, items: Vec<Object>) -> Result<Object> {
        Ok(Object::tuple(items))
    }

    fn local_object(&self, dec: &mut Decoder<'_>) -> Result<Object> {
        let id = IdPack::decode(dec)?;
        self.locals
            .get(&id)
            .map(Object::Local)
            .ok_or_else(|| Error::protocol(format!("the peer referred to an object we do not hold: {id:?}")))
    }

    fn proxy(&self, dec: &mut Decoder<'_>) -> Result<Object> {
        Ok(Object::Remote(self.proxy(IdPack::decode(dec)?)))
    }

    fn error(&self, e: Error) -> Error {
        e
    }

    fn load_exception(&self, dec: &mut Decoder<'_>) -> Error {
        match RemoteException::decode(dec) {
            Ok(exc) => Error::Remote(exc),
            Err(e) => e,
        }
    }

    fn dump_exception(
        &self,
        err: Error,
        handler: Option<i64>,
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), Interruption> {
        let mut exc = protocol_exc(err);
        if exc.traceback.is_empty() && self.config.include_local_traceback {
            let ctx = match handler.and_then(Handler::from_number) {
                Some(h) => format!("{h:?}"),
                None => "request".to_string(),
            };
            exc.traceback = rust_traceback(&ctx, &exc);
        }
        let mut body = Vec::new();
        if exc.encode_into(&mut body).is_err() {
            body.clear();
            // A message that itself cannot be encoded (say, nested too
            // deeply): the peer still gets an answer.
            let _ = RemoteException::value_error("unencodable exception").encode_into(&mut body);
        }
        out.extend_from_slice(&body);
        Ok(())
    }

    fn handle(&self, handler: i64, args: &Object) -> Result<Object> {
        let h = Handler::from_number(handler)
            .ok_or_else(|| RemoteException::value_error(format!("unknown request handler {handler}")))?;
        let args = args.clone().into_items()?;
        let conn = Connection::from_inner(self.strong());
        // A handler that panics is caught: the peer gets a RuntimeError for
        // that call and the connection keeps serving.
        catch_unwind(AssertUnwindSafe(|| run(&conn, h, args)))
            .unwrap_or_else(|panic| {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "handler panicked".into());
                Err(RemoteException::runtime_error(format!("Rust handler panicked: {msg}")))
            })
            .map_err(Error::Remote)
    }

    fn closed_by_peer(&self) {
        self.shutdown("the peer closed the connection");
    }
}

impl Peer for Inner {
    fn on_request(&self, core: &Core, msg: Incoming) -> std::result::Result<(), Interruption> {
        if let Some(answer) = exchange::serve(self, msg)? {
            answer.send(core);
        }
        Ok(())
    }

    fn on_orphan(&self, msg: Incoming) {
        // Decoding creates (and at once drops) any proxy the late reply
        // carries, which sends the DEL the peer is owed.
        if let Err(e) = exchange::decode_reply(self, &msg) {
            log::debug!("discarded a late reply: {e}");
        }
    }
}
