//! The `wscan` binary: parse the command line, run it, map the outcome to a
//! documented exit code (see `cli::Exit`). All work lives in the library.

use std::process::ExitCode;
use wscan::cli::{self, Exit, UsageError};

/// mimalloc, not glibc's allocator: a scan allocates and frees small
/// objects on several threads at once (events, records, DNS messages),
/// where glibc's arenas cost about a sixth of the CPU of a scan of names
/// and fragment (measured in bench/: a scan of 100,000 names 15% faster,
/// at the same peak memory). Its arenas are committed on demand: see
/// `.cargo/config.toml`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wscan: error: cannot start the async runtime: {e}");
            return ExitCode::from(Exit::Failure as u8);
        }
    };
    let exit = match runtime.block_on(cli::run(cli)) {
        Ok(exit) => exit,
        Err(e) if e.downcast_ref::<UsageError>().is_some() => {
            eprintln!("wscan: error: {e}");
            Exit::Usage
        }
        Err(e) => {
            eprintln!("wscan: error: {e:#}");
            Exit::Failure
        }
    };
    ExitCode::from(exit as u8)
}

fn init_tracing(verbose: u8) {
    // -v raises wscan's own and the plugins' messages, not the chatter of
    // dependencies such as cranelift; WSCAN_LOG overrides everything.
    let default = match verbose {
        0 => "warn,wscan::engine::watch=info",
        1 => "warn,wscan=info,plugin=info",
        2 => "warn,wscan=debug,plugin=debug",
        _ => "info,wscan=trace,plugin=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WSCAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
