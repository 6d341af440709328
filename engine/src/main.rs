//! The `strata` binary: the command line lives in `strata::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = strata::cli::main_with(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    ExitCode::from(code)
}
