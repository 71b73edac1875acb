//! `agoractl`: parse the command line, run the command, exit with the code
//! that says how it went (0 ok, 1 refused by the broker, 2 usage, 3 cannot
//! connect).

use std::process::ExitCode;

use agoractl::{cli::Cli, commands};
use clap::Parser;

fn main() -> ExitCode {
    // clap exits with 2 on a usage error, and 0 for --help and --version.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}
