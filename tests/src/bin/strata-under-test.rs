//! The `strata` command line, built with this package so tests that must run it as a separate
//! process (killing it midway, choosing its thread count) can find it via `CARGO_BIN_EXE_*`
//! without invoking cargo themselves.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = strata::cli::main_with(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    ExitCode::from(code)
}
