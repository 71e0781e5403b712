//! Channel interop: our `Channel` against rpyc's own
//! `rpyc.core.channel.Channel(rpyc.core.stream.SocketStream(sock))`, over a
//! real TCP connection on 127.0.0.1 and over a Unix socket, with either side
//! listening.
//!
//! The Python peer (`examples/py/channel_peer.py`) echoes every frame we send
//! and reports on stdout what rpyc read (size, CRC-32, and the compression
//! flag and length from the frame header); on command it also sends frames of
//! its own that we can regenerate here. Each exchange covers the empty
//! payload, a small one, the 3000/3001-byte compression threshold, rpyc's
//! 64000-byte write chunk, and 1 MiB compressible and incompressible
//! payloads, in both directions. We check:
//!
//! * payloads arrive byte-equal both ways;
//! * our compressed frames are accepted by rpyc (flag 1 in the header rpyc
//!   read) and rpyc's compressed frames by us (flag 1 in what we read), and
//!   frames are compressed exactly when the payload exceeds 3000 bytes and
//!   the sender compresses;
//! * rpyc splits its large frames over several writes and we reassemble them;
//! * when we close, rpyc sees a clean end of stream (`EOFError` between
//!   frames) and the peer exits 0.

mod common;

use std::net::TcpListener;
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{accept_tcp, accept_unix, gen_payload, PyProcess, TempDir, XorShift64, IO_TIMEOUT};
use rpyc_rs::channel::{Channel, ChannelConfig, COMPRESSION_THRESHOLD, HEADER_LEN};
use rpyc_rs::stream::{ReadHalf, Stream};

/// rpyc's `SocketStream.MAX_IO_CHUNK`: frames larger than this (header and
/// `\n` included) are written in three writes.
const RPYC_IO_CHUNK: usize = 64000;

/// The prefix `channel_peer.py` treats as a command rather than a payload.
const CMD_PREFIX: &[u8] = b"\xffrpyc-rs-cmd ";

/// The size of `data` compressed as our channel compresses it (level 1).
fn zlib_len(data: &[u8]) -> usize {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(1));
    z.write_all(data).unwrap();
    z.finish().unwrap().len()
}

/// A read half that keeps a copy of every byte read, so the test can look
/// at the frame headers rpyc sent (the channel hides them).
struct Spy {
    inner: Box<dyn ReadHalf>,
    log: Arc<Mutex<Vec<u8>>>,
}

impl ReadHalf for Spy {
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Option<Duration>) -> std::io::Result<usize> {
        let n = self.inner.read_timeout(buf, timeout)?;
        self.log.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// Our side of the conversation with one Python peer.
struct Peer {
    py: PyProcess,
    ch: Channel,
    wire: Arc<Mutex<Vec<u8>>>,
    /// How far into `wire` the frames were already accounted for.
    parsed: usize,
    /// Whether the peer compresses (`--no-compress` turns it off).
    peer_compresses: bool,
    /// Whether we compress.
    we_compress: bool,
    frames_sent: usize,
}

impl Peer {
    fn new(py: PyProcess, mut stream: Stream, we_compress: bool, peer_compresses: bool) -> Peer {
        let wire = Arc::new(Mutex::new(Vec::new()));
        let inner = stream.reader;
        stream.reader = Box::new(Spy { inner, log: wire.clone() });
        let config = ChannelConfig { compress: we_compress, ..ChannelConfig::default() };
        Peer {
            py,
            ch: Channel::new(stream, &config),
            wire,
            parsed: 0,
            peer_compresses,
            we_compress,
            frames_sent: 0,
        }
    }

    /// The header (length, flag) of the next frame we received, from the
    /// spy's copy of the wire.
    fn next_header(&mut self) -> (usize, u8) {
        let wire = self.wire.lock().unwrap();
        let h = &wire[self.parsed..self.parsed + 5];
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let flag = h[4];
        assert_eq!(wire[self.parsed + 5 + len], b'\n', "frame terminator");
        self.parsed += 5 + len + 1;
        (len, flag)
    }

    fn send(&mut self, payload: &[u8]) {
        self.ch.send(payload).unwrap_or_else(|e| panic!("sending {} bytes: {e}", payload.len()));
        self.frames_sent += 1;
    }

    fn recv(&mut self) -> Vec<u8> {
        match self.ch.recv(Some(IO_TIMEOUT)) {
            Ok(p) => p,
            Err(e) => self.py.fail(&format!("-- our recv failed: {e}")),
        }
    }

    /// Reads the peer's report line `WORD n1 n2 ...` and returns the numbers.
    fn report(&mut self, word: &str) -> Vec<u64> {
        let line = self.py.read_line(IO_TIMEOUT);
        let mut parts = line.split(' ');
        assert_eq!(parts.next(), Some(word), "peer said {line:?}");
        parts.map(|n| n.parse().unwrap_or_else(|_| panic!("bad number in {line:?}"))).collect()
    }

    /// Sends `payload`, checks what rpyc read, and checks the echo.
    fn echo(&mut self, payload: &[u8]) {
        self.send(payload);
        let r = self.report("RECV");
        let (size, flag, wire_len, crc) = (r[0] as usize, r[1], r[2] as usize, r[3] as u32);
        assert_eq!(size, payload.len(), "rpyc received a payload of another size");
        assert_eq!(crc, crc32(payload), "rpyc received other bytes ({} bytes)", payload.len());
        // Above the threshold we compress, unless zlib would not shrink the
        // payload (random bytes): then the raw frame is smaller and rpyc
        // accepts either.
        let may_compress = self.we_compress && payload.len() > COMPRESSION_THRESHOLD;
        let shrinks = may_compress && zlib_len(payload) < payload.len();
        assert_eq!(flag, shrinks as u64, "our frame's compression flag, payload of {}", payload.len());
        if shrinks {
            assert!(wire_len < payload.len());
        } else {
            assert_eq!(wire_len, payload.len());
        }

        let back = self.recv();
        assert!(
            back == payload,
            "echo of {} bytes came back as {} different bytes",
            payload.len(),
            back.len()
        );
        let (len, flag) = self.next_header();
        let compressed = self.peer_compresses && payload.len() > COMPRESSION_THRESHOLD;
        assert_eq!(flag, compressed as u8, "rpyc's echo frame flag, payload of {}", payload.len());
        if !compressed {
            assert_eq!(len, payload.len());
        }
    }

    /// Asks the peer for a frame of its own and checks it against ours.
    fn generated(&mut self, kind: &str, size: usize, seed: u64) {
        let mut cmd = CMD_PREFIX.to_vec();
        cmd.extend_from_slice(format!("GEN {kind} {size} {seed}").as_bytes());
        self.send(&cmd);
        let r = self.report("RECV");
        assert_eq!(r[0] as usize, cmd.len());

        let got = self.recv();
        let want = gen_payload(kind, size, seed);
        assert!(got == want, "rpyc's {kind} payload of {size} bytes: got {} bytes that differ", got.len());
        let (len, flag) = self.next_header();
        let s = self.report("SENT");
        assert_eq!(
            (s[0] as usize, s[1] as u8, s[2] as usize),
            (size, flag, len),
            "SENT report vs the header we read"
        );
        let compressed = self.peer_compresses && size > COMPRESSION_THRESHOLD;
        assert_eq!(flag, compressed as u8, "rpyc's own frame flag, {kind} payload of {size}");
        let writes = s[3];
        // header + payload + `\n`, as rpyc's Channel.send counts it.
        let frame_len = HEADER_LEN + len + 1;
        let expected_writes = if frame_len <= RPYC_IO_CHUNK { 1 } else { 3 };
        assert_eq!(writes, expected_writes, "rpyc's writes for a {len}-byte frame");
    }

    /// The whole exchange, then a clean close.
    fn run(mut self) {
        let mut rng = XorShift64::new(77);
        let text = |n| gen_payload("text", n, 9);
        let payloads: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"hello rpyc".to_vec(),
            vec![b'a'; COMPRESSION_THRESHOLD],
            vec![b'a'; COMPRESSION_THRESHOLD + 1],
            rng.bytes(COMPRESSION_THRESHOLD + 1),
            // rpyc's single-write limit: 5 + 63994 + 1 = 64000 bytes.
            rng.bytes(RPYC_IO_CHUNK - 6),
            rng.bytes(RPYC_IO_CHUNK - 5),
            text(200_000),
            text(1 << 20),
            rng.bytes(1 << 20),
        ];
        for p in &payloads {
            self.echo(p);
        }
        self.generated("text", 100, 1);
        self.generated("random", COMPRESSION_THRESHOLD + 1, 2);
        self.generated("random", RPYC_IO_CHUNK - 6, 3);
        self.generated("random", RPYC_IO_CHUNK, 4);
        self.generated("text", 1 << 20, 5);
        self.generated("random", 1 << 20, 6);

        // Our close is a clean EOF for rpyc: it reports every frame and exits 0.
        self.ch.writer.shutdown().unwrap();
        let bye = self.report("BYE");
        assert_eq!(bye, vec![self.frames_sent as u64]);
        let status = self.py.wait_exit(IO_TIMEOUT);
        assert!(status.success(), "channel_peer.py exited with {status}");
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

fn peer_args<'a>(role: &[&'a str], peer_compresses: bool) -> Vec<&'a str> {
    let mut args = role.to_vec();
    if !peer_compresses {
        args.push("--no-compress");
    }
    args
}

#[test]
fn tcp_rpyc_listens_both_compress() {
    let py = PyProcess::spawn_script("channel_peer.py", &["--listen-tcp"]);
    let stream = py.connect_tcp();
    Peer::new(py, stream, true, true).run();
}

#[test]
fn tcp_rpyc_connects_we_do_not_compress() {
    // Large uncompressed frames from us must be fine for rpyc too.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let py = PyProcess::spawn_script("channel_peer.py", &["--connect-tcp", &port]);
    let stream = Stream::from_tcp(accept_tcp(&listener, IO_TIMEOUT)).unwrap();
    Peer::new(py, stream, false, true).run();
}

#[test]
fn unix_rpyc_listens_rpyc_does_not_compress() {
    let dir = TempDir::new();
    let path = dir.join("peer.sock");
    let path_s = path.to_str().unwrap();
    let py = PyProcess::spawn_script("channel_peer.py", &peer_args(&["--listen-unix", path_s], false));
    assert_eq!(py.ready_arg(), path_s);
    let stream = Stream::unix_connect(&path).unwrap();
    Peer::new(py, stream, true, false).run();
}

#[test]
fn unix_rpyc_connects_both_compress() {
    let dir = TempDir::new();
    let path = dir.join("ours.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let py = PyProcess::spawn_script("channel_peer.py", &["--connect-unix", path.to_str().unwrap()]);
    let stream = Stream::from_unix(accept_unix(&listener, IO_TIMEOUT)).unwrap();
    Peer::new(py, stream, true, true).run();
}
