//! The classic helpers (`rpyc_rs::classic`) against real classic servers:
//! `rpyc.SlaveService` on a `ThreadedServer` over TCP and a Unix socket, and
//! a classic server over a child's stdin/stdout. Every test starts its own
//! server process.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rpyc_rs::classic::{Classic, TransferError};
use rpyc_rs::protocol::Error;
use rpyc_rs::service::VoidService;
use rpyc_rs::{Config, FromObject, NetRef, Object};

fn config() -> Config {
    Config::default()
        .with_timeout(Some(Duration::from_secs(20)))
        .with_connect_timeout(Some(Duration::from_secs(10)))
        .with_legacy_framing(common::rpyc5())
}

fn connect(server: &common::PyProcess) -> Classic {
    Classic::connect_with("127.0.0.1", server.port(), Arc::new(VoidService), config())
        .expect("connect to the classic server")
}

#[test]
fn modules_reach_the_server_process() {
    let server = common::spawn_classic_server();
    let c = connect(&server);
    let os = c.modules("os").unwrap();
    let pid = i64::from_object(os.call_method("getpid", ()).unwrap()).unwrap();
    assert_eq!(pid, server.pid() as i64);
    // Dotted names import submodules, as conn.modules["os.path"] does.
    let path = c.modules("os.path").unwrap();
    assert_eq!(String::from_object(path.call_method("join", ("a", "b")).unwrap()).unwrap(), "a/b");
    let err = c.modules("no_such_module_rpyc_rs").unwrap_err();
    assert_eq!(err.remote().map(|e| e.name.as_str()), Some("ModuleNotFoundError"));
}

#[test]
fn eval_execute_and_namespace() {
    let server = common::spawn_classic_server();
    let c = connect(&server);
    assert_eq!(c.eval_as::<i64>("6*7").unwrap(), 42);
    assert_eq!(c.eval_as::<String>("'ab' * 2").unwrap(), "abab");
    c.execute("x = [1, 2, 3]\ny = sum(x)").unwrap();
    let ns = c.namespace().unwrap();
    assert_eq!(i64::from_object(ns.getitem("y").unwrap()).unwrap(), 6);
    assert!(ns.contains("x").unwrap());
    // A list is not brine-able: it comes back by reference.
    let x = NetRef::from_object(c.eval("x").unwrap()).unwrap();
    assert_eq!(x.len().unwrap(), 3);
    x.call_method("append", (4,)).unwrap();
    assert_eq!(c.eval_as::<i64>("len(x)").unwrap(), 4);
    // What we put in the namespace is visible to eval.
    ns.setitem("z", 5).unwrap();
    assert_eq!(c.eval_as::<i64>("z + y").unwrap(), 11);

    let err = c.eval("1/0").unwrap_err();
    let exc = err.remote().expect("a remote exception");
    assert_eq!(exc.name, "ZeroDivisionError");
    assert!(exc.traceback.contains("Traceback"), "{}", exc.traceback);
    let err = c.execute("def broken(:").unwrap_err();
    assert_eq!(err.remote().map(|e| e.name.as_str()), Some("SyntaxError"));
    // The connection is fine after remote errors.
    assert_eq!(c.eval_as::<i64>("y").unwrap(), 6);
    c.ping(Duration::from_secs(5)).unwrap();
}

#[test]
fn each_connection_has_its_own_namespace() {
    let server = common::spawn_classic_server();
    let a = connect(&server);
    let b = connect(&server);
    a.execute("only_in_a = 1").unwrap();
    assert!(a.eval_as::<bool>("'only_in_a' in globals()").unwrap());
    assert!(!b.eval_as::<bool>("'only_in_a' in globals()").unwrap());
}

#[test]
fn builtins_are_the_servers() {
    let server = common::spawn_classic_server();
    let c = connect(&server);
    let b = c.builtins().unwrap();
    assert_eq!(usize::from_object(b.call_method("len", ("hello",)).unwrap()).unwrap(), 5);
    let list = b.call_method("list", (rpyc_rs::Value::Tuple(vec![1.into(), 2.into(), 3.into()]),)).unwrap();
    assert!(matches!(list, Object::Remote(_)));
    // `list` is moved into the call: the request naming the list must reach
    // the server before the DEL its dropped proxy sends.
    assert_eq!(usize::from_object(b.call_method("len", (list,)).unwrap()).unwrap(), 3);
    assert_eq!(b.get::<String>("__name__").unwrap(), "builtins");
}

#[test]
fn upload_then_download_200kb_of_random_bytes() {
    let server = common::spawn_classic_server();
    let c = connect(&server);
    let dir = common::TempDir::new();
    let data = common::XorShift64::new(0x5eed).bytes(200 * 1024);
    let local = dir.join("original.bin");
    std::fs::write(&local, &data).unwrap();
    let remote = dir.join("remote.bin").display().to_string();

    let sent = c.upload(&local, &remote).unwrap();
    assert_eq!(sent, data.len() as u64);
    // The server wrote exactly these bytes (checked there, not through us).
    let size = c.modules("os.path").unwrap().call_method("getsize", (remote.as_str(),)).unwrap();
    assert_eq!(u64::from_object(size).unwrap(), data.len() as u64);
    let expr = format!("__import__('hashlib').sha256(open({remote:?}, 'rb').read()).hexdigest()");
    let remote_hash = c.eval_as::<String>(&expr).unwrap();
    let local_hash = python_sha256(&local);
    assert_eq!(remote_hash, local_hash);

    let back = dir.join("back.bin");
    let got = c.download(&remote, &back).unwrap();
    assert_eq!(got, data.len() as u64);
    assert!(std::fs::read(&back).unwrap() == data, "downloaded bytes differ");

    // Small chunks: many round trips, same bytes.
    let small = c.clone().with_chunk_size(4096);
    assert_eq!(small.download_bytes(&remote).unwrap(), data);
}

/// The sha256 of a local file, computed by Python so the test needs no
/// hashing crate.
fn python_sha256(path: &Path) -> String {
    let out = std::process::Command::new(common::python())
        .args([
            "-c",
            "import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn bytes_round_trip_including_empty_files() {
    let server = common::spawn_classic_server();
    let c = connect(&server);
    let dir = common::TempDir::new();
    let remote = dir.join("small.bin").display().to_string();
    for data in [Vec::new(), b"x".to_vec(), vec![0u8; 64_000], vec![0xab; 64_001]] {
        c.upload_bytes(&data, &remote).unwrap();
        assert_eq!(c.download_bytes(&remote).unwrap(), data);
    }
}

#[test]
fn directory_trees_upload_and_download_recursively() {
    let server = common::spawn_classic_server();
    let c = connect(&server);
    let dir = common::TempDir::new();
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::fs::write(src.join("a.txt"), b"alpha").unwrap();
    std::fs::write(src.join("sub/b.bin"), common::XorShift64::new(7).bytes(70_000)).unwrap();
    std::fs::write(src.join("sub/deeper/c.txt"), b"gamma").unwrap();
    std::fs::write(src.join("skip.tmp"), b"not me").unwrap();

    let remote = dir.join("remote_tree").display().to_string();
    let sent = c.upload_dir_filtered(&src, &remote, |name| !name.ends_with(".tmp")).unwrap();
    assert_eq!(sent, 5 + 70_000 + 5);
    // The server's own view of the tree it received.
    c.execute("import os").unwrap();
    let listing = c
        .eval_as::<Vec<String>>(&format!(
            "tuple(sorted(os.path.relpath(os.path.join(d, f), {remote:?}) \
             for d, ds, fs in os.walk({remote:?}) for f in fs + ds))"
        ))
        .unwrap();
    assert_eq!(listing, ["a.txt", "empty", "sub", "sub/b.bin", "sub/deeper", "sub/deeper/c.txt"]);

    let back = dir.join("back");
    let got = c.download(&remote, &back).unwrap();
    assert_eq!(got, sent);
    for rel in ["a.txt", "sub/b.bin", "sub/deeper/c.txt"] {
        assert_eq!(std::fs::read(back.join(rel)).unwrap(), std::fs::read(src.join(rel)).unwrap(), "{rel}");
    }
    assert!(back.join("empty").is_dir());
    assert!(!back.join("skip.tmp").exists());

    let only_txt = dir.join("only_txt");
    c.download_dir_filtered(&remote, &only_txt, |n| n == "sub" || n == "deeper" || n.ends_with(".txt"))
        .unwrap();
    assert!(only_txt.join("sub/deeper/c.txt").is_file());
    assert!(!only_txt.join("sub/b.bin").exists());
}

#[test]
fn missing_files_fail_with_the_servers_exception() {
    let server = common::spawn_classic_server();
    let c = connect(&server);
    let dir = common::TempDir::new();
    let missing = dir.join("does/not/exist.bin").display().to_string();

    match c.download_bytes(&missing) {
        Err(Error::Remote(exc)) => {
            assert_eq!((exc.module.as_str(), exc.name.as_str()), ("builtins", "FileNotFoundError"));
            assert!(exc.traceback.contains("FileNotFoundError"), "{}", exc.traceback);
        }
        other => panic!("expected a remote FileNotFoundError, got {other:?}"),
    }
    let local = dir.join("never_created.bin");
    match c.download(&missing, &local) {
        Err(TransferError::Rpc(Error::Remote(exc))) => assert_eq!(exc.name, "FileNotFoundError"),
        other => panic!("expected a remote FileNotFoundError, got {other:?}"),
    }
    assert!(!local.exists(), "a failed download left a local file");

    // Uploading into a directory that does not exist on the server.
    std::fs::write(&local, b"data").unwrap();
    let err = c.upload_file(&local, &missing).unwrap_err();
    assert_eq!(err.remote().map(|e| e.name.as_str()), Some("FileNotFoundError"));

    // A missing local file is a local error naming the path.
    let nowhere = dir.join("no_such_local_file");
    match c.upload(&nowhere, &dir.join("x").display().to_string()) {
        Err(TransferError::Local { path, source }) => {
            assert_eq!(path, nowhere);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a local NotFound, got {other:?}"),
    }
    // The connection survived all of that.
    assert_eq!(c.eval_as::<i64>("1 + 1").unwrap(), 2);
}

#[test]
fn unix_socket_classic_server() {
    let dir = common::TempDir::new();
    let sock = dir.join("classic.sock");
    let opts = common::ServerOptions { unix_socket: Some(sock.clone()), ..Default::default() };
    let server = common::spawn_classic_server_with(&opts);
    let c = Classic::unix_connect_with(&sock, Arc::new(VoidService), config()).unwrap();
    let pid = i64::from_object(c.modules("os").unwrap().call_method("getpid", ()).unwrap()).unwrap();
    assert_eq!(pid, server.pid() as i64);
    c.close();
    assert!(c.connection().closed());
}

#[test]
fn a_python_child_over_stdio() {
    common::require_rpyc();
    let c = common::within(Duration::from_secs(30), "spawn a stdio classic server", || {
        Classic::spawn_python(common::python(), config()).map_err(|e| e.to_string())
    })
    .unwrap();
    let pid = c.eval_as::<i64>("__import__('os').getpid()").unwrap();
    assert_ne!(pid, std::process::id() as i64);
    // Remote prints must not land in the protocol stream.
    c.execute("print('[classic_interop] a remote print, sent to stderr')").unwrap();
    assert_eq!(c.eval_as::<i64>("6*7").unwrap(), 42);
    assert_eq!(c.download_bytes("/dev/null").unwrap(), b"");
    c.close();
}
