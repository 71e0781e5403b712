//! One request / reply / serve path for both object worlds.
//!
//! Everything that does not depend on what an object *is* lives here, once:
//! building a request, decoding a reply, validating a message, the box and
//! unbox recursion with rpyc's four labels, serving a request in rpyc's
//! order of side effects, and framing its reply or exception. An object
//! world (the Rust world of [`Object`](super::Object)s, or the Python world
//! in the bindings) supplies only the leaf operations, through [`World`]:
//! dump a plain value, store a local object and name it, recognise a proxy
//! coming home, look up a local object by id pack, make a proxy, turn an
//! exception into vinegar and back, run a handler.
//!
//! Why a trait with associated types rather than, say, a tree of neutral
//! values that each world converts: the Python world must go from bytes to
//! Python objects without an intermediate tree (that is where its speed
//! comes from), so the shared code has to drive the world's own objects
//! directly. The trait is implemented on a per-call view (the Python one
//! holds the GIL token), which is also what lets the shared code release
//! the GIL around the engine's blocking calls ([`World::blocking`]).
//!
//! It hands [`Core`] a [`Peer`] (through [`serve`]) and hands callers
//! world objects or the world's errors.

use std::borrow::Cow;

use crate::brine::{put_int, put_tuple_header, BrineError, DecodeOptions, Decoder, Token};
use crate::stream::Interruption;

use super::boxing::{LABEL_LOCAL_REF, LABEL_REMOTE_REF, LABEL_TUPLE, LABEL_VALUE};
use super::core::{Core, Peer};
use super::message::{Handler, Incoming, MSG_EXCEPTION, MSG_REPLY};
use super::{Error, Result};

/// The leaf operations an object world supplies to the shared path.
pub(crate) trait World {
    /// An object of this world.
    type Obj: Clone;
    /// A failure in this world: a local error, or the peer's exception
    /// re-created.
    type Err;

    /// The connection's engine.
    fn core(&self) -> &Core;
    /// Who serves the requests and orphans that arrive while this world
    /// waits.
    fn peer(&self) -> &dyn Peer;
    /// The decoder limits for messages from the peer.
    fn decode_options(&self) -> DecodeOptions;
    /// Runs a blocking engine call (a send, a wait). The Python world
    /// releases the GIL around it.
    fn blocking<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T;

    // -- boxing ---------------------------------------------------------

    /// True when `obj` is brine-able as a whole (`VALUE`).
    fn is_plain(&self, obj: &Self::Obj, depth: usize) -> Result<bool, Self::Err>;
    /// Appends a plain object as brine.
    fn dump(&self, obj: &Self::Obj, out: &mut Vec<u8>, depth: usize) -> Result<(), Self::Err>;
    /// The items of `obj` when it is a plain tuple holding a reference
    /// (`TUPLE`).
    fn tuple_items<'o>(&self, obj: &'o Self::Obj) -> Option<Cow<'o, [Self::Obj]>>;
    /// Appends the id pack of `obj` and returns true when it is a proxy of
    /// this connection going home (`LOCAL_REF`).
    fn put_home_ref(&self, obj: &Self::Obj, out: &mut Vec<u8>) -> Result<bool, Self::Err>;
    /// Stores `obj` in the table of objects the peer holds (counting the
    /// reference) and appends its id pack (`REMOTE_REF`).
    fn put_local_ref(&self, obj: &Self::Obj, out: &mut Vec<u8>) -> Result<(), Self::Err>;

    // -- unboxing -------------------------------------------------------

    /// Reads a brine value as an object.
    fn load_value(&self, dec: &mut Decoder<'_>) -> Result<Self::Obj, Self::Err>;
    /// A tuple of unboxed items.
    fn make_tuple(&self, items: Vec<Self::Obj>) -> Result<Self::Obj, Self::Err>;
    /// Reads an id pack and returns our object it names (`LOCAL_REF`).
    fn local_object(&self, dec: &mut Decoder<'_>) -> Result<Self::Obj, Self::Err>;
    /// Reads an id pack and returns the proxy for it, reusing a live one
    /// and counting the reference (`REMOTE_REF`).
    fn proxy(&self, dec: &mut Decoder<'_>) -> Result<Self::Obj, Self::Err>;

    // -- errors and exceptions -------------------------------------------

    /// An engine or protocol error as this world's error.
    fn error(&self, e: Error) -> Self::Err;
    /// Re-creates the peer's exception from its vinegar (`MSG_EXCEPTION`).
    fn load_exception(&self, dec: &mut Decoder<'_>) -> Self::Err;
    /// Appends the vinegar for a request that failed. `Err` keeps the
    /// exception here instead (rpyc's `propagate_SystemExit_locally`): it
    /// ends the wait this thread serves in.
    fn dump_exception(
        &self,
        err: Self::Err,
        handler: Option<i64>,
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), Interruption>;

    // -- serving ----------------------------------------------------------

    /// Runs request handler number `handler` with its unboxed argument
    /// tuple.
    fn handle(&self, handler: i64, args: &Self::Obj) -> Result<Self::Obj, Self::Err>;
    /// The peer sent CLOSE and has its reply: end the connection.
    fn closed_by_peer(&self) {
        self.core().shutdown("the peer closed the connection");
    }
}

fn brine_err<W: World>(w: &W, e: BrineError) -> W::Err {
    w.error(Error::Brine(e))
}

/// Appends `obj` boxed (rpyc's `_box`).
pub(crate) fn put_boxed<W: World>(
    w: &W,
    obj: &W::Obj,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), W::Err> {
    put_tuple_header(out, 2).map_err(|e| brine_err(w, e))?;
    if w.is_plain(obj, depth)? {
        put_int(out, LABEL_VALUE);
        return w.dump(obj, out, depth);
    }
    if let Some(items) = w.tuple_items(obj) {
        put_int(out, LABEL_TUPLE);
        put_tuple_header(out, items.len()).map_err(|e| brine_err(w, e))?;
        return items.iter().try_for_each(|item| put_boxed(w, item, out, depth + 1));
    }
    // The label goes first; the world appends the id pack after it.
    let label_at = out.len();
    put_int(out, LABEL_LOCAL_REF);
    if w.put_home_ref(obj, out)? {
        return Ok(());
    }
    out.truncate(label_at);
    put_int(out, LABEL_REMOTE_REF);
    w.put_local_ref(obj, out)
}

/// Reads one boxed object (rpyc's `_unbox`).
pub(crate) fn read_boxed<W: World>(w: &W, dec: &mut Decoder<'_>) -> Result<W::Obj, W::Err> {
    let bad = |what: &str| w.error(Error::protocol(format!("invalid boxed value from peer: {what}")));
    if dec.next_token().map_err(|e| brine_err(w, e))? != Token::Tuple(2) {
        return Err(bad("not a (label, value) pair"));
    }
    let label = match dec.next_token().map_err(|e| brine_err(w, e))? {
        Token::Int(n) => n,
        _ => return Err(bad("label is not an int")),
    };
    match label {
        LABEL_VALUE => w.load_value(dec),
        LABEL_TUPLE => {
            let n = match dec.next_token().map_err(|e| brine_err(w, e))? {
                Token::Tuple(n) => n,
                _ => return Err(bad("TUPLE label without a tuple")),
            };
            dec.enter().map_err(|e| brine_err(w, e))?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_boxed(w, dec)?);
            }
            dec.leave();
            w.make_tuple(items)
        }
        LABEL_LOCAL_REF => w.local_object(dec),
        LABEL_REMOTE_REF => w.proxy(dec),
        // rpyc's own wording, which the peer sees in the exception.
        other => Err(w.error(Error::protocol(format!("invalid label {other}")))),
    }
}

/// Builds a request frame: the header, then the argument tuple boxed as a
/// whole, exactly as rpyc's `_box(args)` (one `VALUE` when every argument
/// is plain).
pub(crate) fn build_request<W: World>(
    w: &W,
    seq: i64,
    handler: Handler,
    args: &W::Obj,
) -> Result<Vec<u8>, W::Err> {
    let mut frame = Vec::with_capacity(128);
    w.core().begin_request(&mut frame, seq, handler);
    put_boxed(w, args, &mut frame, 0)?;
    Ok(frame)
}

/// Sends a request and waits up to `timeout` for its outcome, serving the
/// peer's requests meanwhile (rpyc's `sync_request`).
pub(crate) fn request<W: World>(
    w: &W,
    handler: Handler,
    args: W::Obj,
    timeout: Option<std::time::Duration>,
) -> Result<W::Obj, W::Err> {
    let core = w.core();
    let seq = core.next_seq();
    let mut frame = build_request(w, seq, handler, &args)?;
    let peer = w.peer();
    // Sending and waiting in one stretch (for the Python world, one release
    // of the GIL). The arguments live until the reply is in, as in rpyc
    // (whose `sync_request` holds them while it waits): a proxy among them
    // dies, and its DEL goes out, only after the request naming it.
    let reply = w.blocking(|| {
        core.send_request(seq, &mut frame)?;
        core.wait(peer, seq, timeout)
    });
    drop(args);
    drop(frame);
    let reply = reply.map_err(|e| w.error(e))?;
    let outcome = decode_reply(w, &reply);
    // Only now, with the reply's objects ours, the DELs the peer sent
    // right behind it (see `Core::answer_buffered_dels`). Not a blocking
    // call: it only serves DELs already read (their answers are queued, not
    // written), so the Python world keeps the GIL for it.
    core.answer_buffered_dels(peer).map_err(|e| w.error(e))?;
    outcome
}

/// Ends the connection over a message that is not well-formed: after
/// garbage nothing more from that peer can be trusted. Returns the reason.
fn refuse(core: &Core, e: &Error) -> String {
    let reason = format!("{} sent an invalid message: {e}", core.peer_name());
    core.shutdown(&reason);
    reason
}

/// Turns a REPLY into an object, or an EXCEPTION into the world's error.
/// A message that is not well-formed brine ends the connection first, before
/// any of it becomes an object.
pub(crate) fn decode_reply<W: World>(w: &W, msg: &Incoming) -> Result<W::Obj, W::Err> {
    let opts = w.decode_options();
    if let Err(e) = msg.validate(opts) {
        let reason = refuse(w.core(), &e);
        return Err(w.error(Error::Closed { reason }));
    }
    let mut body = msg.body(opts);
    match msg.msg() {
        MSG_REPLY => read_boxed(w, &mut body),
        MSG_EXCEPTION => Err(w.load_exception(&mut body)),
        other => Err(w.error(Error::protocol(format!("expected a reply, got message type {other}")))),
    }
}

/// Decodes a request's `(handler, boxed_args)`.
fn decode_request<W: World>(w: &W, msg: &Incoming, handler: &mut Option<i64>) -> Result<W::Obj, W::Err> {
    let mut body = msg.body(w.decode_options());
    let malformed = || w.error(Error::protocol("malformed request"));
    if body.next_token().map_err(|e| brine_err(w, e))? != Token::Tuple(2) {
        return Err(malformed());
    }
    match body.next_token().map_err(|e| brine_err(w, e))? {
        Token::Int(n) => *handler = Some(n),
        _ => return Err(malformed()),
    }
    read_boxed(w, &mut body)
}

/// A successful request's answer, framed, with the DELs queued before it
/// (`ahead`) and those of the proxies that died with the request
/// (`behind`): everything the world had to do is done, and what is left is
/// one write. [`serve`] hands it to its caller, which sends it once it no
/// longer holds the world (the Python world has released the GIL by then,
/// so the write costs no release and retake of its own).
#[must_use = "an answer must be sent"]
pub(crate) struct Answer {
    ahead: Vec<Vec<u8>>,
    frame: Vec<u8>,
    behind: Vec<Vec<u8>>,
}

impl Answer {
    /// Sends it, in one write. A failure means the connection is gone; the
    /// read loop reports that to whoever is serving.
    pub(crate) fn send(mut self, core: &Core) {
        let _ = core.send_between(self.ahead, &mut self.frame, self.behind);
    }
}

/// Serves one request, in rpyc's order of side effects
/// (`_dispatch_request`): decode, run the handler, box the result (a failure
/// to box is answered like a failed handler), frame the REPLY or the
/// EXCEPTION, send. The DEL of a proxy among the arguments or the result
/// reaches the peer after our answer, never before it (rpyc drops them
/// after its send); the answer to a DEL waits for our next frame.
///
/// A successful answer comes back as an [`Answer`] for the caller to send;
/// a failed request's is sent here, before its leftovers die (as in rpyc),
/// and so is the answer to a CLOSE, before the connection ends.
///
/// A message that is not well-formed brine ends the connection without an
/// answer; a well-formed request that means nothing (an unknown handler or
/// label) is answered with an exception, as rpyc does.
pub(crate) fn serve<W: World>(w: &W, msg: Incoming) -> std::result::Result<Option<Answer>, Interruption> {
    let core = w.core();
    if let Err(e) = msg.validate(w.decode_options()) {
        refuse(core, &e);
        return Ok(None);
    }
    let mut handler = None;
    let mut frame = Vec::with_capacity(128);
    // The arguments and the result, kept alive until the answer is sent.
    // (An array, not a Vec: no allocation per request.)
    let mut keep: [Option<W::Obj>; 2] = [None, None];
    let failed = match decode_request(w, &msg, &mut handler) {
        Ok(args) => {
            let outcome = match handler {
                Some(h) => w.handle(h, &args),
                None => Err(w.error(Error::protocol("malformed request"))),
            };
            keep[0] = Some(args);
            match outcome {
                Ok(result) => {
                    core.begin_answer(&mut frame, MSG_REPLY, &msg);
                    let boxed = put_boxed(w, &result, &mut frame, 0);
                    keep[1] = Some(result);
                    boxed.err()
                }
                Err(e) => Some(e),
            }
        }
        Err(e) => Some(e),
    };
    let answered = failed.is_none();
    if let Some(err) = failed {
        core.begin_answer(&mut frame, MSG_EXCEPTION, &msg);
        w.dump_exception(err, handler, &mut frame)?;
    }
    if answered && handler == Some(Handler::Del as i64) {
        // Nobody waits for a DEL's answer: it rides with our next frame.
        core.send_quiet(frame);
        drop(keep);
    } else if answered {
        // The arguments and the result die now, but the DELs of the
        // proxies among them go out *behind* the answer, in the same
        // write: the answer may name those very objects, so the peer must
        // not free them first (rpyc drops them after its send). Dropping
        // them runs no user code: after a successful answer they are brine
        // values (builtin types only), proxies (whose `__del__` only queues
        // a DEL) and objects the table of local objects keeps alive.
        let ahead = core.take_queued();
        drop(keep);
        let behind = core.take_queued();
        let answer = Answer { ahead, frame, behind };
        if handler != Some(Handler::Close as i64) {
            return Ok(Some(answer));
        }
        w.blocking(|| answer.send(core));
    } else {
        // A failed request's leftovers may be anything (a result that could
        // not be boxed): they die after the answer is sent, as in rpyc.
        let _ = w.blocking(|| core.send(&mut frame));
        drop(keep);
    }
    if handler == Some(Handler::Close as i64) {
        w.closed_by_peer();
    }
    Ok(None)
}
