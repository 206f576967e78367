//! `wscan plugin ...`: list, info, check and new.

use super::args::{
    Lang, ListFormat, PluginArg, PluginCheckArgs, PluginDevArgs, PluginInfoArgs, PluginListArgs,
    PluginNewArgs, PluginRunArgs, PluginSources, Template,
};
use super::{Exit, Globals, UsageError, load_plugins};
use crate::engine::PluginSource;
use crate::engine::registry::Active;
use crate::engine::tape::{self, Header, Tape};
use crate::model::range_text;
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `wscan plugin list`
pub(super) async fn list(globals: &Globals, args: PluginListArgs) -> anyhow::Result<Exit> {
    let engine = globals.engine()?;
    let registry = load_plugins(&engine, &args.sources).await?;
    print(&registry.active(), args.format)?;
    Ok(Exit::Success)
}

/// `wscan plugin info NAME`
pub(super) async fn info(globals: &Globals, args: PluginInfoArgs) -> anyhow::Result<Exit> {
    let engine = globals.engine()?;
    let active = load_plugins(&engine, &args.sources).await?.active();
    let Some(plugin) = active.iter().find(|a| a.plugin.info.name == args.name) else {
        let names: Vec<&str> = active.iter().map(|a| a.plugin.info.name.as_str()).collect();
        bail!(UsageError(format!(
            "no plugin is named {:?}; loaded: {}",
            args.name,
            names.join(", ")
        )));
    };
    print(std::slice::from_ref(plugin), args.format)?;
    Ok(Exit::Success)
}

/// `wscan plugin check FILE`: load it as a scan would, and show it.
pub(super) async fn check(globals: &Globals, args: PluginCheckArgs) -> anyhow::Result<Exit> {
    let engine = globals.engine()?;
    let plugin = Arc::new(engine.load_file(&args.file).await?);
    print(
        &[Active {
            plugin,
            replaces: None,
        }],
        args.format,
    )?;
    Ok(Exit::Success)
}

fn print(plugins: &[Active], format: Option<ListFormat>) -> anyhow::Result<()> {
    let format = ListFormat::for_stdout(format);
    let mut out = std::io::stdout().lock();
    for active in plugins {
        let p = &active.plugin;
        match format {
            ListFormat::Jsonl => {
                let mut value = serde_json::to_value(&p.info)?;
                value["source"] = p.source.to_string().into();
                if let Some(replaced) = &active.replaces {
                    value["replaces"] = replaced.to_string().into();
                }
                writeln!(out, "{value}")?;
            }
            ListFormat::Table => write_table(&mut out, active)?,
        }
    }
    Ok(())
}

fn write_table(out: &mut impl Write, active: &Active) -> std::io::Result<()> {
    let p = &active.plugin;
    let info = &p.info;
    let origin = match &p.source {
        PluginSource::Builtin => "built-in".to_string(),
        PluginSource::Dir(path) => format!("plugin folder: {}", path.display()),
        PluginSource::File(path) => format!("file: {}", path.display()),
    };
    writeln!(out, "{} {} ({origin})", info.name, info.version)?;
    if let Some(replaced) = &active.replaces {
        writeln!(out, "  in place of: {replaced}")?;
    }
    writeln!(out, "  {}", info.description)?;
    let kinds: Vec<String> = info
        .consumes
        .kinds
        .iter()
        .map(|k| format!("{k:?}").to_lowercase())
        .collect();
    let mut consumes = kinds.join(", ");
    if !info.consumes.ports.is_empty() {
        let ports: Vec<String> = info.consumes.ports.iter().map(range_text).collect();
        consumes.push_str(&format!("; ports {}", ports.join(",")));
    }
    if !info.consumes.services.is_empty() {
        consumes.push_str(&format!("; services {}", info.consumes.services.join(",")));
    }
    writeln!(out, "  consumes: {consumes}")?;
    let caps: Vec<String> = info
        .capabilities
        .iter()
        .map(|c| format!("{c:?}").to_lowercase())
        .collect();
    writeln!(
        out,
        "  capabilities: {}",
        if caps.is_empty() {
            "none".into()
        } else {
            caps.join(", ")
        }
    )?;
    if !info.args.is_empty() {
        writeln!(out, "  arguments (--plugin-arg {}.KEY=VALUE):", info.name)?;
        let rows: Vec<[String; 4]> = info
            .args
            .iter()
            .map(|a| {
                [
                    a.name.clone(),
                    a.kind.label(),
                    a.default.clone().unwrap_or_else(|| "-".into()),
                    a.description.clone(),
                ]
            })
            .collect();
        let header = ["KEY", "TYPE", "DEFAULT", "DESCRIPTION"].map(String::from);
        let width = |i: usize| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths = [width(0), width(1), width(2)];
        for row in [&header].into_iter().chain(&rows) {
            writeln!(
                out,
                "    {:w0$}  {:w1$}  {:w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )?;
        }
    }
    writeln!(out)
}

/// The SDK of the checkout this binary was built from, if it is still there.
fn sdk_path() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-sdk");
    path.join("Cargo.toml")
        .is_file()
        .then(|| path.canonicalize().unwrap_or(path))
}

/// `wscan plugin new NAME [--template T]`: a crate that builds out of tree.
pub(super) fn new(args: PluginNewArgs) -> anyhow::Result<Exit> {
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(UsageError(format!(
            "{} already exists and is not empty; pick another --path",
            dir.display()
        )));
    }
    if args.lang == Lang::Python {
        return new_python(&args, &dir);
    }
    let sdk = match sdk_path() {
        Some(path) => path.display().to_string(),
        None => {
            tracing::warn!(
                "the wscan checkout this binary was built from is gone; edit the wscan-sdk path in Cargo.toml"
            );
            "../wscan/plugin-sdk".to_string()
        }
    };
    // One target folder for every plugin this user makes: the SDK is
    // compiled once, not once per crate.
    let target_dir = super::project_dirs()
        .map(|dirs| dirs.cache_dir().join("plugin-target"))
        .unwrap_or_else(|| std::env::temp_dir().join("wscan-plugin-target"));
    let crate_name = args.name.replace('-', "_");
    let wasm = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{crate_name}.wasm"));
    let template = scaffold(args.template);
    let fill = |text: &str| {
        text.replace("{{name}}", &args.name)
            .replace("{{crate}}", &crate_name)
            .replace("{{struct}}", &type_name(&args.name))
            .replace("{{sdk_path}}", &sdk)
            .replace("{{target_dir}}", &target_dir.display().to_string())
            .replace("{{wasm}}", &wasm.display().to_string())
            .replace("{{template}}", template.name)
            .replace("{{subject}}", template.subject)
            .replace("{{scan_target}}", template.scan_target)
    };
    let files = [
        (
            "Cargo.toml",
            include_str!("../../templates/plugin/Cargo.toml.tmpl"),
        ),
        (
            ".cargo/config.toml",
            include_str!("../../templates/plugin/cargo-config.toml.tmpl"),
        ),
        (
            "rustfmt.toml",
            include_str!("../../templates/plugin/rustfmt.toml.tmpl"),
        ),
        ("src/lib.rs", template.code),
        (
            "README.md",
            include_str!("../../templates/plugin/README.md.tmpl"),
        ),
        (
            ".gitignore",
            include_str!("../../templates/plugin/gitignore.tmpl"),
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, fill(text))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "created plugin {} ({}) in {}",
        args.name,
        template.name,
        dir.display()
    );
    println!(
        "build it:  cd {} && cargo build --release --target wasm32-wasip2",
        dir.display()
    );
    println!(
        "try it:    wscan plugin run {} --subject {}",
        wasm.display(),
        template.subject
    );
    Ok(Exit::Success)
}

/// The Python SDK and the WIT contract, as this binary speaks them: a
/// Python plugin folder carries its own copy, so it builds anywhere
/// componentize-py runs, against exactly the contract of the host that
/// made it.
const PYTHON_FILES: [(&str, &str); 17] = [
    (
        "wscan_sdk/__init__.py",
        include_str!("../../../plugin-sdk/python/wscan_sdk/__init__.py"),
    ),
    (
        "wscan_sdk/_host.py",
        include_str!("../../../plugin-sdk/python/wscan_sdk/_host.py"),
    ),
    (
        "wscan_sdk/args.py",
        include_str!("../../../plugin-sdk/python/wscan_sdk/args.py"),
    ),
    (
        "wscan_sdk/dns.py",
        include_str!("../../../plugin-sdk/python/wscan_sdk/dns.py"),
    ),
    (
        "wscan_sdk/errors.py",
        include_str!("../../../plugin-sdk/python/wscan_sdk/errors.py"),
    ),
    (
        "wscan_sdk/http.py",
        include_str!("../../../plugin-sdk/python/wscan_sdk/http.py"),
    ),
    (
        "wscan_sdk/loop.py",
        include_str!("../../../plugin-sdk/python/wscan_sdk/loop.py"),
    ),
    (
        "wscan_sdk/tls.py",
        include_str!("../../../plugin-sdk/python/wscan_sdk/tls.py"),
    ),
    ("wit/world.wit", include_str!("../../../wit/world.wit")),
    ("wit/types.wit", include_str!("../../../wit/types.wit")),
    ("wit/tcp.wit", include_str!("../../../wit/tcp.wit")),
    ("wit/dns.wit", include_str!("../../../wit/dns.wit")),
    ("wit/tls.wit", include_str!("../../../wit/tls.wit")),
    ("wit/http.wit", include_str!("../../../wit/http.wit")),
    ("wit/log.wit", include_str!("../../../wit/log.wit")),
    ("wit/report.wit", include_str!("../../../wit/report.wit")),
    (
        "wit/deps/io/io.wit",
        include_str!("../../../wit/deps/io/io.wit"),
    ),
];

/// The componentize-py release Python plugins are built and tested with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// `wscan plugin new NAME --lang python`: `app.py` from the template, the
/// SDK and the WIT beside it, and a README with the one build command.
fn new_python(args: &PluginNewArgs, dir: &Path) -> anyhow::Result<Exit> {
    let template = scaffold(args.template);
    let fill = |text: &str| {
        text.replace("{{name}}", &args.name)
            .replace("{{class}}", &camel(&args.name))
            .replace("{{template}}", template.name)
            .replace("{{subject}}", template.subject)
            .replace("{{scan_target}}", template.scan_target)
            .replace("{{componentize_py}}", COMPONENTIZE_PY)
    };
    let files = [
        ("app.py", fill(template.python)),
        (
            "README.md",
            fill(include_str!("../../templates/plugin-python/README.md.tmpl")),
        ),
        (
            ".gitignore",
            fill(include_str!("../../templates/plugin-python/gitignore.tmpl")),
        ),
    ];
    let sdk = PYTHON_FILES
        .iter()
        .map(|(name, text)| (*name, text.to_string()));
    for (name, text) in files.into_iter().chain(sdk) {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "created Python plugin {} ({}) in {}",
        args.name,
        template.name,
        dir.display()
    );
    println!("build it:  pip install {COMPONENTIZE_PY}   (once)");
    println!(
        "           cd {} && {}",
        dir.display(),
        python_build_command(&format!("{}.wasm", args.name))
    );
    println!(
        "try it:    wscan plugin run {}/{}.wasm --subject {}",
        dir.display(),
        args.name,
        template.subject
    );
    Ok(Exit::Success)
}

/// The command that builds a Python plugin folder's `app.py` into `out`.
fn python_build_command(out: &str) -> String {
    format!("componentize-py -d wit -w wscan:plugin/plugin componentize -p . app -o {out}")
}

/// One `--template`: its code and what to try it on.
struct Scaffold {
    name: &'static str,
    code: &'static str,
    /// The same plugin in Python (`app.py`).
    python: &'static str,
    /// A `plugin run --subject` of the kind it consumes.
    subject: &'static str,
    /// A `wscan scan` target that reaches such subjects.
    scan_target: &'static str,
}

fn scaffold(template: Template) -> Scaffold {
    let (name, code, python, subject, scan_target) = match template {
        Template::TcpBanner => (
            "tcp-banner",
            include_str!("../../templates/plugin/lib/tcp-banner.rs.tmpl"),
            include_str!("../../templates/plugin-python/app/tcp-banner.py.tmpl"),
            "127.0.0.1:22",
            "127.0.0.1 -p 22,25,110",
        ),
        Template::TcpExchange => (
            "tcp-exchange",
            include_str!("../../templates/plugin/lib/tcp-exchange.rs.tmpl"),
            include_str!("../../templates/plugin-python/app/tcp-exchange.py.tmpl"),
            "127.0.0.1:6379",
            "127.0.0.1 -p 6379",
        ),
        Template::HttpPaths => (
            "http-paths",
            include_str!("../../templates/plugin/lib/http-paths.rs.tmpl"),
            include_str!("../../templates/plugin-python/app/http-paths.py.tmpl"),
            "127.0.0.1:8080",
            "127.0.0.1 -p 80,8080",
        ),
        Template::TlsCheck => (
            "tls-check",
            include_str!("../../templates/plugin/lib/tls-check.rs.tmpl"),
            include_str!("../../templates/plugin-python/app/tls-check.py.tmpl"),
            "127.0.0.1:443",
            "127.0.0.1 -p 443,8443",
        ),
        Template::DnsRecords => (
            "dns-records",
            include_str!("../../templates/plugin/lib/dns-records.rs.tmpl"),
            include_str!("../../templates/plugin-python/app/dns-records.py.tmpl"),
            "example.com",
            "example.com",
        ),
    };
    Scaffold {
        name,
        code,
        python,
        subject,
        scan_target,
    }
}

/// The plugin's type name: `redis-info` is `RedisInfo`; a name the SDK's
/// prelude already has (`error` would shadow `Error`) gets `Check` added.
fn type_name(plugin: &str) -> String {
    const PRELUDE: [&str; 17] = [
        "AddressSubject",
        "ArgInfo",
        "ArgValue",
        "Capability",
        "Context",
        "Error",
        "ErrorCode",
        "Finding",
        "Plugin",
        "PluginInfo",
        "PortRange",
        "ScanOptions",
        "Service",
        "Severity",
        "Subject",
        "SubjectFilter",
        "Task",
    ];
    let name = camel(plugin);
    if PRELUDE.contains(&name.as_str()) || name == "SubjectKind" {
        format!("{name}Check")
    } else {
        name
    }
}

fn camel(plugin: &str) -> String {
    plugin
        .split('-')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `wscan plugin run FILE|NAME --subject S`: one call, everything it reports.
pub(super) async fn run(globals: &Globals, args: PluginRunArgs) -> anyhow::Result<Exit> {
    let replay = match &args.replay {
        Some(path) => Some(Arc::new(
            Tape::load(path).map_err(|e| UsageError(e.to_string()))?,
        )),
        None => None,
    };
    let subject_text = match (&args.subject, &replay) {
        (Some(subject), _) => subject.clone(),
        (None, Some(tape)) => tape.header().subject.clone(),
        (None, None) => bail!(UsageError("--subject is required".into())),
    };
    let subject = crate::targets::parse_subject(&subject_text).map_err(UsageError)?;
    let engine = Arc::new(globals.engine()?);
    let path = Path::new(&args.plugin_ref);
    let plugin = if path.is_file() {
        Arc::new(engine.load_file(path).await?)
    } else {
        let registry = load_plugins(&engine, &args.sources).await?;
        match registry.get(&args.plugin_ref) {
            Some(plugin) => plugin,
            None => bail!(UsageError(format!(
                "{:?} is neither a file nor the name of a loaded plugin",
                args.plugin_ref
            ))),
        }
    };
    // A scan would not give this subject to the plugin; an author may
    // still want to see what it does, so it runs, and the reason is said
    // (again at the end when it reported nothing).
    let mismatch = plugin.info.consumes.mismatch(&subject);
    if let Some(why) = &mismatch {
        tracing::warn!(
            "a scan would not give {subject} to plugin {}: {why}; running it anyway",
            plugin.info.name
        );
    }
    let name = plugin.info.name.clone();
    let mut call = args.call.request();
    // A replay is called as the recording was, unless told otherwise.
    if let Some(tape) = &replay
        && call.plugin_args.is_empty()
    {
        for text in &tape.header().args {
            let arg: PluginArg = text.parse().map_err(UsageError)?;
            call.plugin_args.push((arg.plugin, arg.key, arg.value));
        }
    }
    let tls = crate::scheduler::spec::tls_core(&call).map_err(super::usage)?;
    let spec = crate::scheduler::ScanSpec::for_subject(&subject, &call, &plugin.info, tls)
        .map_err(super::usage)?;
    let mut sink = args
        .output_format
        .stdout_sink(&crate::output::RunInfo::now(&globals.argv))?;
    let tape = match (&replay, &args.record) {
        (Some(tape), _) => {
            if tape.header().plugin != name {
                tracing::warn!(
                    "the recording is of plugin {} {}, and this is plugin {name}",
                    tape.header().plugin,
                    tape.header().version
                );
            }
            Some(tape.clone())
        }
        (None, Some(_)) => Some(Arc::new(Tape::recording(Header {
            wscan_recording: tape::FORMAT,
            plugin: name.clone(),
            version: plugin.info.version.clone(),
            subject: subject_text.clone(),
            args: call
                .plugin_args
                .iter()
                .map(|(plugin, key, value)| format!("{plugin}.{key}={value}"))
                .collect(),
        }))),
        (None, None) => None,
    };
    let summary =
        crate::scheduler::run_one(&spec, engine, plugin, subject, tape.clone(), sink.as_mut())
            .await?;
    // What it did on the network, as a scan's summary says it.
    for line in summary.lines() {
        eprintln!("{line}");
    }
    if let (Some(tape), Some(path)) = (&tape, &args.record) {
        tape.save(path)?;
        eprintln!(
            "wscan: recorded {} network call(s) to {} (replay: wscan plugin run {} --replay {})",
            tape.len(),
            path.display(),
            args.plugin_ref,
            path.display()
        );
    }
    if let Some(why) = tape.as_ref().and_then(|t| t.divergence()) {
        eprintln!("wscan: the replay diverged from the recording: {why}");
        return Ok(Exit::Failure);
    }
    if let Some(why) = mismatch
        && summary.findings == 0
        && summary.errors == 0
    {
        eprintln!("wscan: plugin {name} reported nothing; {why}");
    }
    Ok(if summary.errors > 0 {
        Exit::Partial
    } else {
        Exit::Success
    })
}

/// `wscan plugin dev [DIR] --subject S`: build the crate, run the component
/// on the subject (or a recording), and again each time a source file, the
/// manifest or the recording changes, until Ctrl-C.
pub(super) async fn dev(globals: &Globals, args: PluginDevArgs) -> anyhow::Result<Exit> {
    use notify::{RecursiveMode, Watcher};

    let manifest = args.dir.join("Cargo.toml");
    let python = !manifest.is_file() && args.dir.join("app.py").is_file();
    if !manifest.is_file() && !python {
        bail!(UsageError(format!(
            "{} has neither a Cargo.toml nor an app.py: give the plugin's folder (wscan plugin new makes one)",
            args.dir.display()
        )));
    }
    if python && !args.dir.join("wit/world.wit").is_file() {
        bail!(UsageError(format!(
            "{} has an app.py but no wit/world.wit: a Python plugin is built against the WIT beside it \
             (wscan plugin new --lang python writes it)",
            args.dir.display()
        )));
    }
    if let Some(subject) = &args.subject {
        crate::targets::parse_subject(subject).map_err(UsageError)?;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // A Python plugin is built where it cannot be mistaken for the user's
    // own build (nor watched as a change).
    let dev_dir = args.dir.join(".dev");

    // Saves come in bursts (an editor writes, renames, touches): every
    // event is a nudge, and the build starts once they stop. What a build
    // writes itself (the component, Python's byte-code caches) is no save.
    let (tx, mut changed) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
            && event.paths.iter().any(|p| is_source_change(p))
        {
            let _ = tx.send(());
        }
    })
    .context("cannot watch the plugin's files")?;
    let sources = match python {
        // app.py, the SDK beside it, and whatever modules the author adds.
        true => args.dir.clone(),
        false => args.dir.join("src"),
    };
    watcher
        .watch(&sources, RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", sources.display()))?;
    let manifest_watch = (!python).then_some(&manifest);
    for file in manifest_watch.into_iter().chain(args.replay.as_ref()) {
        watcher
            .watch(file, RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {}", file.display()))?;
    }

    // One Ctrl-C future for the whole loop: a press during a build or a
    // run stops it too (a new `ctrl_c()` each time would miss it).
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        eprintln!("wscan: building {}", args.dir.display());
        let build = async {
            if python {
                return build_python(&args.dir, &dev_dir).await;
            }
            let built = tokio::process::Command::new(&cargo)
                .current_dir(&args.dir)
                .args(["build", "--release", "--target", "wasm32-wasip2"])
                .status()
                .await
                .context("cannot run cargo (is it on PATH?)")?;
            // Asked again each time: a rename in Cargo.toml moves it.
            let wasm = match built.success() {
                true => Some(component_path(&cargo, &args.dir).await?),
                false => None,
            };
            anyhow::Ok(wasm)
        };
        let built = tokio::select! {
            built = build => built?,
            _ = &mut stop => return Ok(Exit::Success),
        };
        if let Some(wasm) = built {
            let run_args = PluginRunArgs {
                plugin_ref: wasm.display().to_string(),
                subject: args.subject.clone(),
                record: None,
                replay: args.replay.clone(),
                sources: PluginSources {
                    plugin: Vec::new(),
                    plugin_dir: None,
                },
                call: args.call.clone(),
                output_format: args.output_format.clone(),
            };
            // A run that fails (a plugin that will not load, a recording
            // that is not one) is said, and the next save tries again.
            tokio::select! {
                ran = run(globals, run_args) => match ran {
                    Ok(exit) => eprintln!("wscan: the run ended with exit code {}", exit as i32),
                    Err(e) => eprintln!("wscan: {e:#}"),
                },
                _ = &mut stop => return Ok(Exit::Success),
            }
        } else {
            eprintln!("wscan: the build failed; fix it and save");
        }
        eprintln!(
            "wscan: watching {} for changes (Ctrl-C to stop)",
            args.dir.display()
        );
        tokio::select! {
            _ = changed.recv() => {}
            _ = &mut stop => return Ok(Exit::Success),
        }
        while let Ok(Some(())) =
            tokio::time::timeout(std::time::Duration::from_millis(300), changed.recv()).await
        {
        }
    }
}

/// Whether a change to `path` is the author's: not a component or a
/// byte-code cache a build wrote, nor anything under `.dev/`.
fn is_source_change(path: &Path) -> bool {
    let ours = path.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some(".dev" | "__pycache__" | "target")
        )
    });
    !ours && path.extension().is_none_or(|e| e != "wasm")
}

/// Build the Python plugin in `dir` (`app.py` against `dir/wit`) into
/// `out/plugin.wasm` with componentize-py: the component, or `None` when
/// the build failed (componentize-py has said why).
async fn build_python(dir: &Path, out: &Path) -> anyhow::Result<Option<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    // Absolute: componentize-py runs in `dir`.
    let wasm =
        std::path::absolute(out.join("plugin.wasm")).context("cannot find the current folder")?;
    let built = tokio::process::Command::new("componentize-py")
        .current_dir(dir)
        .args([
            "-d",
            "wit",
            "-w",
            "wscan:plugin/plugin",
            "componentize",
            "-p",
            ".",
            "app",
            "-o",
        ])
        .arg(&wasm)
        .output()
        .await
        .with_context(|| format!("cannot run componentize-py (pip install {COMPONENTIZE_PY})"))?;
    // Its output goes to stderr: stdout is the run's records.
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(&built.stdout);
    let _ = stderr.write_all(&built.stderr);
    Ok(built.status.success().then_some(wasm))
}

/// Where `cargo build --release --target wasm32-wasip2` in `dir` puts the
/// component, as `cargo metadata` says (it knows the target folder a
/// `.cargo/config.toml` or `CARGO_TARGET_DIR` chose).
async fn component_path(cargo: &std::ffi::OsStr, dir: &Path) -> anyhow::Result<PathBuf> {
    let out = tokio::process::Command::new(cargo)
        .current_dir(dir)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .await
        .context("cannot run cargo (is it on PATH?)")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("cargo metadata printed no JSON")?;
    let lib = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .find(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"))
        })
        .and_then(|t| t["name"].as_str())
        .ok_or_else(|| {
            UsageError(format!(
                "{} is not a plugin crate: it has no cdylib target ([lib] crate-type = [\"cdylib\"])",
                dir.display()
            ))
        })?;
    let target = meta["target_directory"]
        .as_str()
        .context("cargo metadata gave no target directory")?;
    Ok(Path::new(target)
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", lib.replace('-', "_"))))
}

#[cfg(test)]
mod tests {
    use super::type_name;

    #[test]
    fn a_plugin_type_is_named_for_the_plugin_and_never_shadows_the_prelude() {
        assert_eq!(type_name("redis-info"), "RedisInfo");
        assert_eq!(type_name("http2-check"), "Http2Check");
        assert_eq!(type_name("error"), "ErrorCheck");
        assert_eq!(type_name("plugin"), "PluginCheck");
        assert_eq!(type_name("subject-kind"), "SubjectKindCheck");
    }
}
