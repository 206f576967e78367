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

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_e`
/// (libmimalloc-sys names no constant for it; the test below checks it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long, in milliseconds, mimalloc keeps memory freed resident before
/// it gives it back. Its v3 default is 1,000: a scan frees as fast as it
/// allocates, and a second of freed pages stayed resident. At 10 (v2's
/// default) a scan of 100,000 names peaked at 72 MB instead of 78, at the
/// same speed (interleaved runs by hand, 5 each, against bench/'s nsd
/// setup).
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// Set mimalloc's purge delay to [`PURGE_DELAY_MS`], as a default only:
/// `MIMALLOC_PURGE_DELAY` in the environment still wins (mimalloc read it
/// at process start).
#[allow(unsafe_code)] // mimalloc's C API has no safe wrapper for options.
fn set_purge_delay() {
    // SAFETY: sets one of mimalloc's option values, an index it checks.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

fn main() -> ExitCode {
    set_purge_delay();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)] // reads mimalloc's options through its C API
    fn the_purge_delay_option_is_the_one_set() {
        // Set in the environment (or by its old name), the option is not
        // at its default.
        if ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
            .iter()
            .any(|name| std::env::var_os(name).is_some())
        {
            return;
        }
        // 1,000 ms is v3's default for purge_delay, and no other option's:
        // a mimalloc that reordered its options fails here.
        // SAFETY: reads one of mimalloc's option values.
        let get = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(get(), 1000);
        set_purge_delay();
        assert_eq!(get(), PURGE_DELAY_MS);
    }
}
