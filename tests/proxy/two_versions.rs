//! A stock rpyc 5.x client reaching a stock 6.x server through the proxy
//! (tracing) and the reverse (recording, over a Unix socket, the capture
//! then read back by `decode`): the scenarios of
//! `tests/scripts/proxy_scenarios.py` (calls, netrefs, iteration,
//! callbacks, exceptions, payloads of several MB). Finds an interpreter
//! for each rpyc version; without them these tests say so and pass,
//! unless `RPYC_RS_REQUIRE_BOTH_RPYC=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::common::{self, ServerOptions, TempDir};
use super::{run, ProxyProc};

const SCENARIO_SERVICE: &str = r#"
    import builtins, hashlib

    class Counter:
        def __init__(self):
            self.value = 0
        def increment(self, by=1):
            self.value += by
            return self.value

    class CustomError(Exception):
        pass

    class ScenarioService(rpyc.Service):
        def exposed_add(self, a, b=0):
            return a + b
        def exposed_echo(self, x):
            return x
        def exposed_numbers(self, n):
            return list(range(n))
        def exposed_make_counter(self):
            return Counter()
        def exposed_call_back(self, fn, *args):
            return fn(*args)
        def exposed_total(self, items):
            return sum(x for x in items)
        def exposed_fail(self, kind, message):
            raise getattr(builtins, kind)(message)
        def exposed_custom_fail(self):
            raise CustomError("custom trouble")
        def exposed_digest(self, data):
            return hashlib.sha256(data).hexdigest(), len(data)
        def exposed_blob(self, n):
            return bytes(range(256)) * (n // 256)
"#;

/// The rpyc version an interpreter has, if it runs and has one.
fn rpyc_version(py: &Path) -> Option<String> {
    let out = Command::new(py)
        .args(["-c", "import rpyc; print(rpyc.__version__)"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Interpreters with rpyc 5.x and with rpyc 6.x, or `None` (after saying
/// why) when this machine lacks one and nobody required both.
fn rpyc5_and_rpyc6() -> Option<(PathBuf, PathBuf)> {
    let dir = common::manifest_dir();
    let mut candidates =
        vec![common::python(), dir.join(".venv/bin/python"), dir.join(".venv-rpyc-old/bin/python")];
    if let Some(p) = std::env::var_os("RPYC_RS_OLD_PYTHON") {
        candidates.insert(0, PathBuf::from(p));
    }
    let (mut v5, mut v6) = (None, None);
    for py in candidates {
        match rpyc_version(&py) {
            Some(v) if v.starts_with("5.") && v5.is_none() => v5 = Some(py),
            Some(v) if v.starts_with("6.") && v6.is_none() => v6 = Some(py),
            _ => {}
        }
    }
    match (v5, v6) {
        (Some(a), Some(b)) => Some((a, b)),
        _ if std::env::var_os("RPYC_RS_REQUIRE_BOTH_RPYC").is_some_and(|v| v == "1") => {
            panic!("need interpreters with rpyc 5.x and 6.x: .venv (ci/setup) and .venv-rpyc-old (ci/test)")
        }
        _ => {
            eprintln!(
                "SKIPPED: this test needs rpyc 5.x and 6.x interpreters (.venv from ci/setup and \
                 .venv-rpyc-old from ci/test, or RPYC_RS_OLD_PYTHON)"
            );
            None
        }
    }
}

fn run_scenarios(python: &Path, addr: &str) {
    let script = common::manifest_dir().join("tests/scripts/proxy_scenarios.py");
    let (ok, out, err) = run(Command::new(python).arg(&script).arg(addr));
    assert!(ok && out.lines().last() == Some("done"), "scenarios failed\n--- stdout\n{out}--- stderr\n{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("ok ")).count(), 18, "{out}");
}

fn scenario_server(python: &Path) -> common::PyProcess {
    let opts = ServerOptions {
        protocol_config: Some(r#"{"allow_public_attrs": true}"#.into()),
        ..Default::default()
    };
    common::spawn_rpyc_server_using(python, SCENARIO_SERVICE, &opts)
}

#[test]
fn rpyc5_client_reaches_rpyc6_server_through_a_tracing_proxy() {
    let Some((py5, py6)) = rpyc5_and_rpyc6() else { return };
    let server = scenario_server(&py6);
    // Both dialects auto: the client's from its first message, the
    // server's probed.
    let proxy = ProxyProc::start(&format!("127.0.0.1:{}", server.port()), &["--trace"]);
    run_scenarios(&py5, &proxy.addr);
    let (lines, _) = proxy.stop();
    let text = lines.join("\n");
    assert!(text.contains("dialects: client 5, server 6"), "{text}");
    assert!(text.contains("exception CALL -> KeyError: no such key"), "{text}");
    assert!(text.contains("(zlib "), "compressed frames are traced: {text}");
    let netrefs = lines.iter().find(|l| l.contains("  netrefs: ")).expect("a netrefs summary line");
    assert!(!netrefs.contains(" 0 created"), "{netrefs}");
}

#[test]
fn rpyc6_client_reaches_rpyc5_server_through_a_recording_proxy() {
    let Some((py5, py6)) = rpyc5_and_rpyc6() else { return };
    let server = scenario_server(&py5);
    let dir = TempDir::new();
    let rec = dir.path().display().to_string();
    // Clients reach this one over a Unix socket.
    let sock = dir.path().join("proxy.sock").display().to_string();
    let proxy = ProxyProc::start_on(
        &sock,
        &format!("127.0.0.1:{}", server.port()),
        &["--client-dialect", "6", "--server-dialect", "5", "--record", &rec],
    );
    assert_eq!(proxy.addr, sock);
    run_scenarios(&py6, &proxy.addr);
    proxy.stop();
    // What was recorded reads back as the conversation, each side in its
    // own dialect.
    let client = dir.path().join("c1.client.raw");
    let server_raw = dir.path().join("c1.server.raw");
    let (ok, out, err) =
        run(Command::new(env!("CARGO_BIN_EXE_rpyc-rs")).arg("decode").arg(&client).arg(&server_raw));
    assert!(ok, "{err}");
    assert!(out.contains("dialects: client 6, server 5"), "{out}");
    assert!(out.contains("exception CALL -> ValueError: bad value"), "{out}");
    assert!(!out.contains("GARBAGE"), "{out}");
}
