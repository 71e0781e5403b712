//! The `rpyc-rs` command-line tool; all of it is [`rpyc_rs::cli`].
fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(rpyc_rs::cli::main(std::env::args_os()))
}
