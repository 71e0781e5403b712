//! The tool's own log output: the crate's `log` records (connections
//! accepted and ended, why a connection closed, accept errors) on stderr.
//!
//! `-v`/`-q` pick the level; without them `RUST_LOG` does (`debug`,
//! `rpyc_rs::server=debug`, ...); by default warnings and errors show. Records
//! below the level cost one atomic load at the call site (`log`'s max level).

use log::LevelFilter;

/// Installs the stderr logger for this run. Run inside a Python program that
/// already routes the crate's records to Python's `logging`, that bridge
/// stays in place and this does nothing.
pub(super) fn init(verbose: u8, quiet: u8) {
    let mut builder = env_logger::Builder::new();
    if verbose == 0 && quiet == 0 {
        match std::env::var("RUST_LOG") {
            Ok(spec) if !spec.trim().is_empty() => builder.parse_filters(&spec),
            _ => builder.filter_level(LevelFilter::Warn),
        };
    } else {
        builder.filter_level(level(verbose, quiet));
    }
    builder.target(env_logger::Target::Stderr);
    // Fails only when a logger is already installed (see above).
    let _ = builder.try_init();
}

/// `-v`/`-q` counts to a level: warnings by default, each `-v` one step
/// more verbose, each `-q` one step quieter.
fn level(verbose: u8, quiet: u8) -> LevelFilter {
    const STEPS: [LevelFilter; 6] = [
        LevelFilter::Off,
        LevelFilter::Error,
        LevelFilter::Warn,
        LevelFilter::Info,
        LevelFilter::Debug,
        LevelFilter::Trace,
    ];
    let step = (2 + i32::from(verbose) - i32::from(quiet)).clamp(0, 5);
    STEPS[step as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level(0, 0), LevelFilter::Warn);
        assert_eq!(level(1, 0), LevelFilter::Info);
        assert_eq!(level(2, 0), LevelFilter::Debug);
        assert_eq!(level(9, 0), LevelFilter::Trace);
        assert_eq!(level(0, 1), LevelFilter::Error);
        assert_eq!(level(0, 2), LevelFilter::Off);
        assert_eq!(level(0, 200), LevelFilter::Off);
    }
}
