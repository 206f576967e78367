//! Builds the guest workspace (`plugins/`: the SDK, the built-in plugins and
//! the test plugins) for `wasm32-wasip2` with a nested cargo, then generates
//! `builtins.rs`, which embeds every built-in plugin in the `wscan` binary.
//!
//! Pitfalls this avoids: the nested cargo
//! gets its own target directory (sharing the outer one deadlocks on the
//! artifact lock), and none of the outer build's flags or wrappers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const GUEST_TARGET: &str = "wasm32-wasip2";

fn main() {
    let host_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = host_dir
        .parent()
        .expect("host/ sits in the repository root")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    for path in [
        "wit",
        "plugin-sdk",
        "plugins/Cargo.toml",
        "plugins/Cargo.lock",
        "tests/plugins",
    ] {
        println!("cargo::rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo::rerun-if-env-changed=CI");
    let builtins = builtin_plugins(&root.join("plugins"));
    for name in &builtins {
        println!(
            "cargo::rerun-if-changed={}",
            root.join("plugins").join(name).display()
        );
    }

    check_guest_target();

    // OUT_DIR is <target>/<profile>/build/wscan-<hash>/out: keep the guest
    // build beside the profiles, shared by debug and release host builds.
    let guest_target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|target| target.join("wasm-guests"))
        .unwrap_or_else(|| out_dir.join("wasm-guests"));

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .args(["--target", GUEST_TARGET])
        .arg("--manifest-path")
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&guest_target_dir)
        .arg("--workspace");
    // Build scripts cannot see `--locked`. In CI (CI set) hold the nested
    // build to the committed guest lock file; elsewhere let it update the
    // lock, as the outer cargo does, so adding a plugin crate just works.
    if env::var_os("CI").is_some() {
        cmd.arg("--locked");
    }
    if env::var("CARGO_NET_OFFLINE").is_ok_and(|v| v == "true") {
        cmd.arg("--offline");
    }
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("failed to run the nested cargo for the plugins");
    if !status.success() {
        panic!("building the wasm plugins in plugins/ failed (see the cargo output above)");
    }

    let artifacts = guest_target_dir.join(GUEST_TARGET).join("release");
    let mut generated = String::from(
        "/// Built-in plugins, embedded at build time: (name, component bytes).\n\
         pub static BUILTINS: &[(&str, &[u8])] = &[\n",
    );
    for name in &builtins {
        let wasm = artifacts.join(format!("wscan_plugin_{}.wasm", name.replace('-', "_")));
        assert!(
            wasm.exists(),
            "built-in plugin {name} was not built: {} is missing",
            wasm.display()
        );
        generated.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            wasm.display().to_string()
        ));
    }
    generated.push_str("];\n");
    fs::write(out_dir.join("builtins.rs"), generated).expect("write builtins.rs");
    // The end-to-end tests load the test plugins from here with --plugin.
    println!(
        "cargo::rustc-env=WSCAN_GUEST_ARTIFACTS={}",
        artifacts.display()
    );
}

/// Every folder under `plugins/` with a Cargo.toml is a built-in plugin.
fn builtin_plugins(plugins: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(plugins)
        .expect("read plugins/")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Fail early, with the fix, when the toolchain lacks the wasm target.
fn check_guest_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| PathBuf::from(s.trim()));
    if let Some(sysroot) = sysroot
        && !sysroot.join("lib/rustlib").join(GUEST_TARGET).exists()
    {
        panic!(
            "the {GUEST_TARGET} target is not installed for this toolchain ({}).\n\
             Install it with `rustup target add {GUEST_TARGET}` (or run `rustup toolchain install` \
             in the repository, which reads rust-toolchain.toml).",
            sysroot.display()
        );
    }
}
