//! Talking to classic peers: servers running rpyc's `SlaveService`, which is
//! what the `rpyc_classic` command serves.
//!
//! A classic server lets its client do anything a Python program could: import
//! modules, evaluate expressions, run statements, open files. rpyc packages
//! that as `rpyc.classic` (`conn.modules.os`, `conn.builtin`, `conn.eval`,
//! `conn.execute`, `conn.namespace`, `rpyc.classic.upload`/`download`), and
//! [`Classic`] is the same toolbox over a Rust [`Connection`]:
//!
//! ```no_run
//! use rpyc_rs::classic::{Classic, DEFAULT_PORT};
//! use rpyc_rs::FromObject;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let c = Classic::connect("127.0.0.1", DEFAULT_PORT)?;
//! let pid = i64::from_object(c.modules("os")?.call_method("getpid", ())?)?;
//! let answer: i64 = c.eval_as("6 * 7")?;
//! c.execute("import platform; node = platform.node()")?;
//! let node = c.namespace()?.getitem("node")?;
//! c.upload_bytes(b"hello", "/tmp/hello.txt")?;
//! assert_eq!(c.download_bytes("/tmp/hello.txt")?, b"hello");
//! # let _ = (pid, answer, node);
//! # Ok(())
//! # }
//! ```
//!
//! Everything goes through the server's ordinary handlers (a classic server
//! allows every attribute), so nothing here needs anything the protocol layer
//! does not already offer. As with rpyc, each connection gets its own
//! namespace on the server: what one connection `execute`s, another does not
//! see.
//!
//! The one difference from `rpyc.classic.connect`: rpyc's client exposes a
//! `SlaveService` of its own, so the server may drive the client back. A Rust
//! program has no Python to offer, so [`Classic`] exposes nothing
//! ([`VoidService`]) unless given a root with [`Classic::connect_with`].

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::brine::Value;
use crate::protocol::{Config, Connection, Error, FromObject, NetRef, Object, RemoteException, Result};
use crate::service::{Expose, VoidService};

/// The TCP port `rpyc_classic` listens on by default (rpyc's
/// `DEFAULT_SERVER_PORT`).
pub const DEFAULT_PORT: u16 = 18812;

/// The port of `rpyc_classic`'s TLS variant (rpyc's `DEFAULT_SERVER_SSL_PORT`).
pub const DEFAULT_SSL_PORT: u16 = 18821;

/// How many bytes one file read or write moves (rpyc's `STREAM_CHUNK`). rpyc
/// keeps it near 64 KB so one transfer does not hold up the server's other
/// clients for long; larger chunks save round trips on a fast link.
pub const DEFAULT_CHUNK_SIZE: usize = 64_000;

/// A connection to a classic (`SlaveService`) server, with rpyc's classic
/// helpers. Cloning is cheap and shares the connection.
///
/// Use it against `rpyc_classic` servers, to run code there and move files; for
/// any other service, [`Connection`] is the client.
#[derive(Clone, Debug)]
pub struct Classic {
    conn: Connection,
    root: NetRef,
    chunk_size: usize,
}

impl Classic {
    /// Connects over TCP to a classic server (rpyc's `classic.connect`;
    /// pass [`DEFAULT_PORT`] for rpyc's default).
    pub fn connect(host: &str, port: u16) -> Result<Classic> {
        Self::connect_with(host, port, Arc::new(VoidService), Config::default())
    }

    /// Connects over TCP with a root of our own and a config.
    pub fn connect_with(host: &str, port: u16, root: Arc<dyn Expose>, config: Config) -> Result<Classic> {
        Self::from_connection(Connection::connect_with(host, port, root, config)?)
    }

    /// Connects to a classic server on a Unix domain socket (rpyc's
    /// `classic.unix_connect`).
    pub fn unix_connect(path: impl AsRef<Path>) -> Result<Classic> {
        Self::unix_connect_with(path, Arc::new(VoidService), Config::default())
    }

    /// Connects to a Unix domain socket with a root of our own and a config.
    pub fn unix_connect_with(
        path: impl AsRef<Path>,
        root: Arc<dyn Expose>,
        config: Config,
    ) -> Result<Classic> {
        Self::from_connection(Connection::unix_connect_with(path, root, config)?)
    }

    /// Starts `python` as a classic server talking over its stdin and
    /// stdout, as rpyc's `classic.connect_subproc` does (without needing
    /// `rpyc_classic.py` on the `PATH`: the server is a few lines passed
    /// with `-c`). The child is killed when the connection closes.
    pub fn spawn_python(python: impl AsRef<std::ffi::OsStr>, config: Config) -> Result<Classic> {
        // Remote code that prints would write into the protocol stream, so
        // the child's sys.stdout goes to its stderr and the real stdout is
        // kept for RPyC alone (what `rpyc_classic.py -m stdio` does with
        // /dev/null). The service is the plain SlaveService, as the TCP
        // `rpyc_classic` serves: rpyc.classic.connect_pipes would offer
        // ClassicService, which drives our side back on connect and fails
        // against a root that exposes nothing.
        const SERVER: &str = "import os, sys, rpyc\n\
            i, o = sys.stdin, sys.stdout\n\
            sys.stdin = open(os.devnull)\n\
            sys.stdout = sys.stderr\n\
            conn = rpyc.utils.factory.connect_pipes(i, o, service=rpyc.SlaveService)\n\
            try:\n    conn.serve_all()\nexcept (KeyboardInterrupt, EOFError):\n    pass\n";
        let mut cmd = std::process::Command::new(python);
        cmd.args(["-u", "-c", SERVER]);
        Self::from_connection(Connection::connect_subprocess(&mut cmd, Arc::new(VoidService), config)?)
    }

    /// Wraps a connection to a classic server (fetching its root once).
    pub fn from_connection(conn: Connection) -> Result<Classic> {
        let root = conn.root()?;
        Ok(Classic { conn, root, chunk_size: DEFAULT_CHUNK_SIZE })
    }

    /// Sets the chunk size file transfers use (at least 1 byte).
    pub fn with_chunk_size(mut self, bytes: usize) -> Classic {
        self.chunk_size = bytes.max(1);
        self
    }

    /// The chunk size file transfers use.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The server's root object (its `SlaveService` instance).
    pub fn root(&self) -> &NetRef {
        &self.root
    }

    /// Imports a module on the server and returns it (`conn.modules[name]`;
    /// dotted names such as `"os.path"` work).
    pub fn modules(&self, name: &str) -> Result<NetRef> {
        NetRef::from_object(self.root.call_method("getmodule", (name,))?)
    }

    /// The server's `builtins` module (`conn.builtin`): `open`, `len`,
    /// `tuple`, ...
    pub fn builtins(&self) -> Result<NetRef> {
        self.modules("builtins")
    }

    /// Evaluates a Python expression in this connection's namespace on the
    /// server (`conn.eval`). Plain results (ints, strs, tuples of them...)
    /// come back as values, everything else as netrefs.
    pub fn eval(&self, expr: &str) -> Result<Object> {
        self.root.call_method("eval", (expr,))
    }

    /// [`Classic::eval`] converted to `T`.
    pub fn eval_as<T: FromObject>(&self, expr: &str) -> Result<T> {
        T::from_object(self.eval(expr)?)
    }

    /// Runs Python statements in this connection's namespace on the server
    /// (`conn.execute`).
    pub fn execute(&self, code: &str) -> Result<()> {
        self.root.call_method("execute", (code,)).map(drop)
    }

    /// The dict [`Classic::eval`] and [`Classic::execute`] run in
    /// (`conn.namespace`).
    pub fn namespace(&self) -> Result<NetRef> {
        self.root.get("namespace")
    }

    /// Checks the server answers within `timeout` (a PING round trip).
    pub fn ping(&self, timeout: std::time::Duration) -> Result<()> {
        self.conn.ping(b"rpyc-rs classic ping", timeout)
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.conn.close();
    }

    // ---- files ---------------------------------------------------------

    /// Writes `data` to the file `remote_path` on the server, replacing it.
    pub fn upload_bytes(&self, data: &[u8], remote_path: &str) -> Result<()> {
        self.upload_reader(data, remote_path).map(drop).map_err(TransferError::into_rpc_error)
    }

    /// Reads the whole file `remote_path` from the server.
    pub fn download_bytes(&self, remote_path: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.download_writer(remote_path, &mut out).map_err(TransferError::into_rpc_error)?;
        Ok(out)
    }

    /// Copies everything `reader` yields into the file `remote_path` on the
    /// server (`builtins.open(remote_path, "wb")`, written chunk by chunk).
    pub fn upload_reader(&self, mut reader: impl Read, remote_path: &str) -> Result<u64, TransferError> {
        let file = NetRef::from_object(self.builtins()?.call_method("open", (remote_path, "wb"))?)?;
        let copied = write_chunks(&file, &mut reader, self.chunk_size);
        close_remote(&file, copied)
    }

    /// Copies the file `remote_path` on the server into `writer`
    /// (`builtins.open(remote_path, "rb")`, read chunk by chunk).
    pub fn download_writer(&self, remote_path: &str, mut writer: impl Write) -> Result<u64, TransferError> {
        let file = NetRef::from_object(self.builtins()?.call_method("open", (remote_path, "rb"))?)?;
        let copied = read_chunks(&file, &mut writer, self.chunk_size);
        close_remote(&file, copied)
    }

    /// Uploads a local file or, recursively, a directory to `remote_path`
    /// (rpyc's `classic.upload`). Returns the number of bytes sent.
    pub fn upload(&self, local_path: impl AsRef<Path>, remote_path: &str) -> Result<u64, TransferError> {
        let local = local_path.as_ref();
        if local.is_dir() {
            self.upload_dir_filtered(local, remote_path, |_| true)
        } else {
            // Not a directory: a file, or an error that names the path.
            self.upload_file(local, remote_path)
        }
    }

    /// Uploads one local file to `remote_path` (rpyc's `upload_file`).
    pub fn upload_file(&self, local_path: impl AsRef<Path>, remote_path: &str) -> Result<u64, TransferError> {
        let local = local_path.as_ref();
        let f = File::open(local).map_err(|source| TransferError::local(local, source))?;
        self.upload_reader(f, remote_path).map_err(|e| e.with_local_path(local))
    }

    /// Uploads a local directory tree to `remote_path`, creating remote
    /// directories as needed (rpyc's `upload_dir`).
    pub fn upload_dir(&self, local_path: impl AsRef<Path>, remote_path: &str) -> Result<u64, TransferError> {
        self.upload_dir_filtered(local_path, remote_path, |_| true)
    }

    /// [`Classic::upload_dir`] for the entries whose file name `filter`
    /// accepts (applied at every level, as rpyc's `filter`).
    pub fn upload_dir_filtered(
        &self,
        local_path: impl AsRef<Path>,
        remote_path: &str,
        filter: impl Fn(&str) -> bool,
    ) -> Result<u64, TransferError> {
        let fs = RemoteFs::new(self)?;
        self.upload_tree(&fs, local_path.as_ref(), remote_path, &filter)
    }

    fn upload_tree(
        &self,
        fs: &RemoteFs,
        local: &Path,
        remote: &str,
        filter: &dyn Fn(&str) -> bool,
    ) -> Result<u64, TransferError> {
        if !fs.isdir(remote)? {
            fs.os.call_method("makedirs", (remote,))?;
        }
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(local).map_err(|e| TransferError::local(local, e))? {
            let entry = entry.map_err(|e| TransferError::local(local, e))?;
            entries.push(entry.path());
        }
        // A stable order makes transfers and their errors reproducible.
        entries.sort();
        let mut total = 0;
        for path in entries {
            let name = file_name_str(&path)?;
            if !filter(name) {
                continue;
            }
            let remote_child = fs.join(remote, name)?;
            // rpyc skips what is neither a file nor a directory (sockets,
            // dangling links) inside a tree rather than failing on it.
            if path.is_dir() {
                total += self.upload_tree(fs, &path, &remote_child, filter)?;
            } else if path.is_file() {
                total += self.upload_file(&path, &remote_child)?;
            }
        }
        Ok(total)
    }

    /// Downloads a remote file or, recursively, a directory to `local_path`
    /// (rpyc's `classic.download`). Returns the number of bytes received.
    ///
    /// rpyc raises a local `ValueError` for a remote path that is neither a
    /// file nor a directory; here anything that is not a directory is opened
    /// as a file, so a missing path fails with the server's own
    /// `FileNotFoundError` (and a local file is not created).
    pub fn download(&self, remote_path: &str, local_path: impl AsRef<Path>) -> Result<u64, TransferError> {
        let fs = RemoteFs::new(self)?;
        if fs.isdir(remote_path)? {
            self.download_tree(&fs, remote_path, local_path.as_ref(), &|_| true)
        } else {
            self.download_file(remote_path, local_path)
        }
    }

    /// Downloads one remote file to `local_path` (rpyc's `download_file`).
    /// The remote file is opened first, so a missing one leaves no local
    /// file behind; a transfer that fails midway removes its partial file.
    pub fn download_file(
        &self,
        remote_path: &str,
        local_path: impl AsRef<Path>,
    ) -> Result<u64, TransferError> {
        let local = local_path.as_ref();
        let file = NetRef::from_object(self.builtins()?.call_method("open", (remote_path, "rb"))?)?;
        let out = match File::create(local) {
            Ok(f) => f,
            Err(source) => return close_remote(&file, Err(TransferError::local(local, source))),
        };
        let mut out = io::BufWriter::new(out);
        let copied = read_chunks(&file, &mut out, self.chunk_size).map_err(|e| e.with_local_path(local));
        let result = close_remote(&file, copied);
        if result.is_err() {
            drop(out);
            let _ = std::fs::remove_file(local);
        }
        result
    }

    /// Downloads a remote directory tree to `local_path`, creating local
    /// directories as needed (rpyc's `download_dir`).
    pub fn download_dir(
        &self,
        remote_path: &str,
        local_path: impl AsRef<Path>,
    ) -> Result<u64, TransferError> {
        self.download_dir_filtered(remote_path, local_path, |_| true)
    }

    /// [`Classic::download_dir`] for the entries whose file name `filter`
    /// accepts.
    pub fn download_dir_filtered(
        &self,
        remote_path: &str,
        local_path: impl AsRef<Path>,
        filter: impl Fn(&str) -> bool,
    ) -> Result<u64, TransferError> {
        let fs = RemoteFs::new(self)?;
        self.download_tree(&fs, remote_path, local_path.as_ref(), &filter)
    }

    fn download_tree(
        &self,
        fs: &RemoteFs,
        remote: &str,
        local: &Path,
        filter: &dyn Fn(&str) -> bool,
    ) -> Result<u64, TransferError> {
        std::fs::create_dir_all(local).map_err(|e| TransferError::local(local, e))?;
        let listing = fs.os.call_method("listdir", (remote,))?;
        // `tuple(list)` on the server brings the names back by value in one
        // round trip, instead of one per item through the list's netref.
        let mut names = Vec::<String>::from_object(fs.builtins.call_method("tuple", (listing,))?)?;
        names.sort();
        let mut total = 0;
        for name in names {
            if !filter(&name) {
                continue;
            }
            if name.contains(['/', '\\']) || name == ".." || name == "." {
                // A server cannot send such a name honestly; refuse to let it
                // write outside `local`.
                return Err(TransferError::Rpc(Error::Protocol(format!(
                    "the server listed a file name that is not a plain name: {name:?}"
                ))));
            }
            let remote_child = fs.join(remote, &name)?;
            let local_child = local.join(&name);
            if fs.isdir(&remote_child)? {
                total += self.download_tree(fs, &remote_child, &local_child, filter)?;
            } else if fs.isfile(&remote_child)? {
                total += self.download_file(&remote_child, &local_child)?;
            }
        }
        Ok(total)
    }
}

/// The server's `os`, `os.path` and `builtins` modules, fetched once per
/// tree transfer. Remote paths are joined on the server, so a Windows
/// server gets its own separators.
struct RemoteFs {
    os: NetRef,
    path: NetRef,
    builtins: NetRef,
}

impl RemoteFs {
    fn new(c: &Classic) -> Result<RemoteFs> {
        Ok(RemoteFs { os: c.modules("os")?, path: c.modules("os.path")?, builtins: c.builtins()? })
    }

    fn isdir(&self, p: &str) -> Result<bool> {
        bool::from_object(self.path.call_method("isdir", (p,))?)
    }

    fn isfile(&self, p: &str) -> Result<bool> {
        bool::from_object(self.path.call_method("isfile", (p,))?)
    }

    fn join(&self, a: &str, b: &str) -> Result<String> {
        String::from_object(self.path.call_method("join", (a, b))?)
    }
}

/// Writes everything `reader` yields to the remote file, one WRITE per
/// chunk.
fn write_chunks(file: &NetRef, reader: &mut dyn Read, chunk: usize) -> Result<u64, TransferError> {
    let mut buf = vec![0u8; chunk];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(TransferError::Local { path: PathBuf::new(), source }),
        };
        file.call_method("write", (Value::Bytes(buf[..n].to_vec()),))?;
        total += n as u64;
    }
}

/// Reads the remote file to its end into `writer`, one READ per chunk.
fn read_chunks(file: &NetRef, writer: &mut dyn Write, chunk: usize) -> Result<u64, TransferError> {
    let local_err = |source| TransferError::Local { path: PathBuf::new(), source };
    let mut total = 0u64;
    loop {
        let data = Vec::<u8>::from_object(file.call_method("read", (chunk,))?)?;
        if data.is_empty() {
            writer.flush().map_err(local_err)?;
            return Ok(total);
        }
        writer.write_all(&data).map_err(local_err)?;
        total += data.len() as u64;
    }
}

/// Closes a remote file after a transfer, whatever its outcome: the first
/// error wins, and a failed close fails an otherwise good transfer (for a
/// written file, close is when buffered data reaches the disk).
fn close_remote(file: &NetRef, outcome: Result<u64, TransferError>) -> Result<u64, TransferError> {
    let closed = file.call_method("close", ());
    let total = outcome?;
    closed?;
    Ok(total)
}

fn file_name_str(path: &Path) -> Result<&str, TransferError> {
    path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        TransferError::local(path, io::Error::new(io::ErrorKind::InvalidData, "file name is not valid UTF-8"))
    })
}

/// Why a file transfer failed: on this side (a local file), or on the
/// connection (a remote exception such as `FileNotFoundError`, or a
/// connection error).
#[derive(Debug)]
#[non_exhaustive]
pub enum TransferError {
    /// Reading or writing a local file or directory failed.
    Local {
        /// The local path (empty for [`Classic::upload_reader`] and
        /// [`Classic::download_writer`], which have none).
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The server raised, or the connection failed.
    Rpc(Error),
}

impl TransferError {
    fn local(path: &Path, source: io::Error) -> TransferError {
        TransferError::Local { path: path.to_path_buf(), source }
    }

    /// Names the local path in an error that had none.
    fn with_local_path(self, p: &Path) -> TransferError {
        match self {
            TransferError::Local { path, source } if path.as_os_str().is_empty() => {
                TransferError::Local { path: p.to_path_buf(), source }
            }
            other => other,
        }
    }

    /// The remote exception, if the server raised one.
    pub fn remote(&self) -> Option<&RemoteException> {
        match self {
            TransferError::Rpc(e) => e.remote(),
            TransferError::Local { .. } => None,
        }
    }

    /// The local I/O error, if a local file failed.
    pub fn io(&self) -> Option<&io::Error> {
        match self {
            TransferError::Local { source, .. } => Some(source),
            TransferError::Rpc(_) => None,
        }
    }

    /// For the in-memory transfers, which touch no local file.
    fn into_rpc_error(self) -> Error {
        match self {
            TransferError::Rpc(e) => e,
            // Reading a slice or writing a Vec cannot fail; keep the text
            // anyway rather than panic.
            TransferError::Local { source, .. } => Error::Protocol(format!("local I/O failed: {source}")),
        }
    }
}

impl From<Error> for TransferError {
    fn from(e: Error) -> Self {
        TransferError::Rpc(e)
    }
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::Local { path, source } if path.as_os_str().is_empty() => {
                write!(f, "local I/O failed: {source}")
            }
            TransferError::Local { path, source } => write!(f, "{}: {source}", path.display()),
            TransferError::Rpc(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TransferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TransferError::Local { source, .. } => Some(source),
            TransferError::Rpc(e) => Some(e),
        }
    }
}
