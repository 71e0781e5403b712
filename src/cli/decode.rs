//! `rpyc-rs decode`: captured RPyC bytes read back as a trace, with
//! `rpyc_rs::trace::decode`.
//!
//! Each FILE (`-` is stdin) is one capture: one direction or a whole
//! conversation, as Wireshark's "Follow TCP stream -> raw" saves it, or a
//! `cN.client.raw` / `cN.server.raw` file from `rpyc-rs proxy --record`
//! (whose name says who sent it; given both, they are read as one
//! conversation).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use rpyc_rs::channel::DEFAULT_MAX_FRAME_SIZE;
use rpyc_rs::trace::decode::{decode_pair, decode_stream};
use rpyc_rs::trace::format::Format;
use rpyc_rs::trace::Side;

/// Who sent a one-direction capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FromArg {
    /// The side that connected.
    Client,
    /// The side that was connected to.
    Server,
}

/// What `decode` was asked for.
#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// Captured raw bytes; `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// JSON lines instead of text.
    #[arg(long)]
    json: bool,
    /// Who sent the bytes (one-direction captures); default: from the
    /// file name (`.client.raw`, `.server.raw`), else worked out from the
    /// messages' seq numbers.
    #[arg(long, value_enum)]
    from: Option<FromArg>,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    let mut data = Vec::new();
    let name = path.display().to_string();
    let read = if name == "-" {
        std::io::stdin().read_to_end(&mut data)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut data))
    };
    read.map_err(|e| format!("cannot read {name}: {}", super::io_text(&e)))?;
    Ok(data)
}

/// The `X.server.raw` partner of an `X.client.raw` among `files`.
fn partner(path: &Path, files: &[PathBuf]) -> Option<usize> {
    let name = path.to_str()?.strip_suffix(".client.raw")?;
    let want = format!("{name}.server.raw");
    files.iter().position(|f| f.to_str() == Some(want.as_str()))
}

/// Decodes every file (a `.client.raw` and its `.server.raw` together, as
/// one conversation); errors are messages for the user.
pub fn run(args: DecodeArgs) -> Result<(), String> {
    let format = if args.json { Format::Json } else { Format::Text };
    let mut out = std::io::stdout().lock();
    let mut done = vec![false; args.files.len()];
    let mut conn = 0;
    for (i, path) in args.files.iter().enumerate() {
        if done[i] {
            continue;
        }
        done[i] = true;
        conn += 1;
        let data = read(path)?;
        let name = path.display().to_string();
        let from = match args.from {
            Some(FromArg::Client) => Some(Side::Client),
            Some(FromArg::Server) => Some(Side::Server),
            None if name.ends_with(".client.raw") => Some(Side::Client),
            None if name.ends_with(".server.raw") => Some(Side::Server),
            None => None,
        };
        let pair = if args.from.is_none() { partner(path, &args.files) } else { None };
        let mut failed = None;
        let mut emit = |r: &rpyc_rs::trace::Record| {
            if failed.is_none() {
                failed = writeln!(out, "{}", format.record(r)).err();
            }
        };
        let summary = match pair {
            Some(j) => {
                done[j] = true;
                let server = read(&args.files[j])?;
                decode_pair(&data, &server, conn, DEFAULT_MAX_FRAME_SIZE, &mut emit)
            }
            None => decode_stream(&data, conn, from, DEFAULT_MAX_FRAME_SIZE, &mut emit),
        };
        for line in format.summary(&summary) {
            if failed.is_none() {
                failed = writeln!(out, "{line}").err();
            }
        }
        if failed.is_some() {
            // stdout closed (`| head`): nothing left to say.
            return Ok(());
        }
    }
    let _ = out.flush();
    Ok(())
}
