//! Driving a classic RPyC server from Rust: import modules, evaluate and
//! execute code, and move files, as `rpyc.classic` does in Python.
//!
//! Start a classic server (it runs anything a client sends: keep it on
//! 127.0.0.1) and point the example at it:
//!
//! ```text
//! .venv/bin/rpyc_classic --host 127.0.0.1 --port 18812
//! cargo run --example classic -- 127.0.0.1:18812
//! ```
//!
//! The argument may also be a Unix socket path (a server started with
//! `rpyc.utils.server.ThreadedServer(rpyc.SlaveService, socket_path=...)`).

use std::error::Error;

use rpyc_rs::classic::{Classic, DEFAULT_PORT};
use rpyc_rs::NetRef;

fn main() -> Result<(), Box<dyn Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| format!("127.0.0.1:{DEFAULT_PORT}"));
    let c = if addr.contains('/') {
        Classic::unix_connect(&addr)?
    } else {
        let (host, port) = addr.rsplit_once(':').ok_or("expected HOST:PORT or a socket path")?;
        Classic::connect(host, port.parse()?)?
    };

    // conn.modules.os.getpid(), conn.modules.sys.version
    let os = c.modules("os")?;
    let pid = os.call_method("getpid", ())?.extract::<i64>()?;
    let version = c.modules("sys")?.get::<String>("version")?;
    println!("server pid {pid}, Python {}", version.split_whitespace().next().unwrap_or("?"));

    // conn.eval / conn.execute share one namespace per connection.
    c.execute("import math\nsquares = [i * i for i in range(10)]")?;
    let total: i64 = c.eval_as("sum(squares)")?;
    println!("sum of squares: {total}");
    let pi: f64 = c.eval_as("math.pi")?;
    println!("math.pi on the server: {pi}");

    // Objects that are not plain values come back as netrefs.
    let squares = c.namespace()?.getitem("squares")?.extract::<NetRef>()?;
    println!("squares has {} items; repr: {}", squares.len()?, squares.repr()?);

    // Remote exceptions arrive with their class and traceback.
    if let Err(e) = c.eval("1 / 0") {
        let exc = e.remote().ok_or("expected a remote exception")?;
        println!("the server raised {}: {}", exc.name, exc.message());
    }

    // Files: upload, then download, in 64 KB chunks.
    let tmp = c.modules("tempfile")?.call_method("mkdtemp", ())?.extract::<String>()?;
    let remote = format!("{tmp}/hello.txt");
    c.upload_bytes(b"hello from Rust\n", &remote)?;
    let back = c.download_bytes(&remote)?;
    println!("round trip through {remote}: {:?}", String::from_utf8_lossy(&back));
    c.modules("shutil")?.call_method("rmtree", (tmp.as_str(),))?;

    c.close();
    Ok(())
}
