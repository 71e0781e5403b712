//! The Python target embeds CPython, but the main crate's pyo3 is built as
//! an extension module (which does not link libpython): link it here, from
//! the interpreter named by PYO3_PYTHON (ci/fuzz sets it to .venv's).
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    if std::env::var_os("CARGO_FEATURE_PYTHON").is_none() {
        return;
    }
    let python = std::env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    let code = "import sysconfig as s; print(s.get_config_var('LIBDIR')); print(s.get_config_var('LDVERSION'))";
    let out = Command::new(&python).args(["-c", code]).output().expect("run PYO3_PYTHON");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let (libdir, ver) = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
    println!("cargo:rustc-link-search=native={libdir}");
    println!("cargo:rustc-link-lib=dylib=python{ver}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{libdir}");
}
