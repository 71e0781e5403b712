//! The CLI's TLS and registry commands, and README's examples of them run
//! exactly as written: every ```sh block in README.md preceded by the
//! line `<!-- cli example -->` is run line by line in a directory holding
//! certificates made for the run (`ca.pem`, `server.pem`/`.key`,
//! `client.pem`/`.key`). Lines ending in `&` start in the background (they
//! must come up: a first line on stdout, or their port accepting); every
//! other line's stdout must equal its trailing `# comment`. README's ports
//! (18811, 18821, 18861, 18862) are replaced by free ones on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::pki::Pki;

const README_PORTS: [&str; 4] = ["18811", "18821", "18861", "18862"];

fn free_port() -> u16 {
    // Free for TCP and UDP both: a registry line may use either.
    loop {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Splits a shell line into words (single and double quotes, no escapes:
/// all README needs).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// The README blocks to run: their lines, in order.
fn readme_blocks() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(common::manifest_dir().join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "<!-- cli example -->" {
            continue;
        }
        let fence = lines.next().unwrap_or_default();
        assert_eq!(fence.trim(), "```sh", "a cli example must be a ```sh block");
        let block: Vec<String> =
            lines.by_ref().take_while(|l| !l.starts_with("```")).map(str::to_owned).collect();
        blocks.push(block);
    }
    blocks
}

/// Background processes, killed at the end.
struct Background(Vec<Child>);

impl Drop for Background {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn program(name: &str) -> PathBuf {
    match name {
        "rpyc-rs" => PathBuf::from(env!("CARGO_BIN_EXE_rpyc-rs")),
        // The rpyc scripts beside the interpreter the tests use.
        other => common::python().parent().map(|d| d.join(other)).unwrap_or_else(|| PathBuf::from(other)),
    }
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + common::START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_block(block: &[String], dir: &Path) {
    let ports: HashMap<&str, String> = README_PORTS.iter().map(|p| (*p, free_port().to_string())).collect();
    let mut bg = Background(Vec::new());
    for raw in block {
        let (cmd, comment) = match raw.split_once("  #") {
            Some((c, k)) => (c.trim(), k.trim().trim_start_matches('#').trim()),
            None => (raw.trim(), ""),
        };
        if cmd.is_empty() {
            continue;
        }
        let mut line = cmd.to_owned();
        for (readme, free) in &ports {
            line = line.replace(readme, free);
        }
        let background = line.ends_with('&');
        let argv = words(line.trim_end_matches('&'));
        let mut c = Command::new(program(&argv[0]));
        c.args(&argv[1..]).current_dir(dir).stdin(Stdio::null()).stderr(Stdio::piped());
        if background {
            let mut child = c.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{raw}: {e}"));
            if argv[0] == "rpyc-rs" {
                let out = child.stdout.take().expect("piped stdout");
                let first = common::within(common::START_TIMEOUT, raw, move || {
                    let mut line = String::new();
                    let _ = BufReader::new(out).read_line(&mut line);
                    line
                });
                assert!(first.contains("listening"), "{raw}: printed {first:?}");
            } else {
                let port = README_PORTS
                    .iter()
                    .find(|p| cmd.contains(**p))
                    .map(|p| ports[p].parse::<u16>().unwrap())
                    .unwrap_or_else(|| panic!("{raw}: no port to wait for"));
                wait_for_port(port, raw);
            }
            bg.0.push(child);
        } else {
            let out = c.arg("--timeout").arg("20").output().unwrap_or_else(|e| panic!("{raw}: {e}"));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{raw}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
            assert_eq!(stdout.trim_end(), comment, "{raw}");
        }
    }
}

#[test]
fn readme_cli_examples_run_as_shown() {
    common::require_rpyc();
    let blocks = readme_blocks();
    assert!(blocks.len() >= 2, "README has its TLS and registry CLI examples");
    let pki = Pki::new();
    // README names the files Pki writes.
    for (made, named) in [
        (&pki.ca, "ca.pem"),
        (&pki.server.cert, "server.pem"),
        (&pki.server.key, "server.key"),
        (&pki.client.cert, "client.pem"),
        (&pki.client.key, "client.key"),
    ] {
        assert_eq!(made, &pki.dir.join(named));
    }
    for block in blocks {
        run_block(&block, pki.dir.path());
    }
}

fn rpyc_rs(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rpyc-rs"))
        .args(args)
        .args(["--timeout", "10"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn start(dir: &Path, args: &[&str]) -> Background {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rpyc-rs"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().expect("piped stdout");
    let bg = Background(vec![child]);
    let first = common::within(common::START_TIMEOUT, "server start", move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        line
    });
    assert!(first.contains("listening"), "{first}");
    bg
}

#[test]
fn tls_refusals_and_switches_on_the_command_line() {
    let pki = Pki::new();
    let dir = pki.dir.path();
    let port = free_port().to_string();
    let _server =
        start(dir, &["serve", "--port", &port, "--tls", "--cert", "server.pem", "--key", "server.key"]);
    let at = format!("127.0.0.1:{port}");

    let (code, out, _) = rpyc_rs(dir, &["call", &at, "add", "1", "2", "--tls", "--ca", "ca.pem"]);
    assert_eq!((code, out.trim()), (0, "3"));
    // Without --ca the system's roots are used, which do not know our CA.
    let (code, _, err) = rpyc_rs(dir, &["call", &at, "add", "1", "2", "--tls"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not signed by a trusted CA") || err.contains("no system CA"), "{err}");
    let (code, out, err) = rpyc_rs(dir, &["call", &at, "add", "1", "2", "--tls", "--insecure"]);
    assert_eq!((code, out.trim()), (0, "3"), "{err}");
    // Usage errors.
    let (code, _, err) = rpyc_rs(dir, &["call", &at, "add", "1", "2", "--ca", "ca.pem"]);
    assert_eq!(code, 2);
    assert!(err.contains("need --tls"), "{err}");
    let (code, _, err) = rpyc_rs(dir, &["ping", &at]);
    assert_eq!(code, 2, "plain RPyC to a TLS server fails: {err}");

    // A server that requires client certificates.
    let mport = free_port().to_string();
    let _mtls = start(
        dir,
        &[
            "serve",
            "--port",
            &mport,
            "--tls",
            "--cert",
            "server.pem",
            "--key",
            "server.key",
            "--ca",
            "ca.pem",
        ],
    );
    let at = format!("localhost:{mport}");
    let (code, _, err) = rpyc_rs(dir, &["ping", &at, "--count", "3", "--tls", "--ca", "ca.pem"]);
    assert_eq!(code, 2);
    assert!(err.contains("client certificate"), "{err}");
    let (code, out, err) = rpyc_rs(
        dir,
        &[
            "ping",
            &at,
            "--count",
            "3",
            "--tls",
            "--ca",
            "ca.pem",
            "--cert",
            "client.pem",
            "--key",
            "client.key",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("3 round trips"), "{out}");
}

#[test]
fn registry_commands_report_listing_off_and_silence() {
    let dir = common::TempDir::new();
    let port = free_port().to_string();
    let _reg = start(dir.path(), &["registry", "--port", &port, "--mode", "tcp"]);
    let (code, _, err) = rpyc_rs(dir.path(), &["list", "--registry", &format!("tcp:127.0.0.1:{port}")]);
    assert_eq!(code, 2);
    assert!(err.contains("does not allow listing"), "{err}");

    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sport = silent.local_addr().unwrap().port();
    let (code, _, err) = rpyc_rs(
        dir.path(),
        &["call", "service:NOPE", "echo", "1", "--registry", &format!("127.0.0.1:{sport}")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no answer from the registry"), "{err}");
}
