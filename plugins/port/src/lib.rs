//! wscan's built-in `port` plugin: a TCP connect scan of the requested ports
//! on each address, an `open-port` finding per open port the moment its
//! connect succeeds, then a short banner read (and, on a silent port of an
//! unknown number, identification) whose result is a `service` finding and
//! a `service` subject for the plugins downstream.
//!
//! The open port is reported before its details are sought so that a slow
//! or silent service (a tarpit that accepts and never speaks) cannot make
//! the plugin's deadline arrive before the port is known: a deadline stops
//! the details, never the ports already found.

mod identify;
mod service;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;
use wscan_sdk::prelude::*;
use wscan_sdk::serde_json::json;

struct Port;

/// Bytes kept of a banner by default.
const DEFAULT_BANNER_BYTES: u32 = 512;
/// How long to wait for a service to speak first, by default. Short: most
/// services that talk first (SSH, FTP, SMTP) do so at once.
const DEFAULT_BANNER_MS: u64 = 1500;

impl Plugin for Port {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "port",
            env!("CARGO_PKG_VERSION"),
            "TCP connect scan of the requested ports, with a banner read on each open port",
        )
        .consumes(SubjectFilter::addresses())
        .capability(Capability::Tcp)
        .capability(Capability::Tls)
        .arg(ArgInfo::boolean("banner", "read a banner from each open port").default(true))
        .arg(
            ArgInfo::integer("banner-bytes", "bytes to keep of each banner", 1..=65536)
                .default(DEFAULT_BANNER_BYTES),
        )
        .arg(
            ArgInfo::boolean(
                "identify",
                "probe an open port that sent no banner and whose number says nothing: a TLS handshake, then an HTTP request",
            )
            .default(true),
        )
        .arg(
            ArgInfo::duration(
                "banner-timeout",
                "how long to wait for a banner",
                Duration::from_millis(1)..=Duration::from_secs(300),
            )
            .default(format!("{DEFAULT_BANNER_MS}ms")),
        )
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), Error> {
        let Subject::Address(target) = subject else {
            return Err("the port plugin consumes addresses only".into());
        };
        let settings = Settings::new(&options);
        let ip = wscan_sdk::to_ip(target.address);
        let mut probe = tcp::probe(ip, &options.ports, None).context(format_args!("probe {ip}"))?;

        // Each open port is reported at once; its banner read starts while
        // the sweep goes on, as its own task on the plugin's reactor.
        let mut grabs = Vec::new();
        while let Some(batch) = probe.next().await {
            for result in batch {
                if result.state == tcp::PortState::Open {
                    let host = target.host.clone();
                    report_open(ip, result.port, host.clone());
                    grabs.push(wscan_sdk::spawn(details(ip, result.port, host, settings)));
                }
            }
        }
        for grab in grabs {
            grab.await;
        }
        Ok(())
    }

    /// Every address of the batch in one sweep: on a network of one port,
    /// one probe of hundreds of addresses instead of hundreds of probes.
    async fn scan_batch(tasks: Vec<Task>, options: ScanOptions) {
        let settings = Settings::new(&options);
        // The tasks of each address (one address may come with several
        // host names).
        let mut by_ip: HashMap<IpAddr, Vec<usize>> = HashMap::new();
        for (index, task) in tasks.iter().enumerate() {
            if let Subject::Address(target) = task.subject() {
                by_ip
                    .entry(wscan_sdk::to_ip(target.address))
                    .or_default()
                    .push(index);
            }
        }
        let ips: Vec<IpAddr> = by_ip.keys().copied().collect();
        let mut probe = match tcp::probe_many(&ips, &options.ports, None) {
            Ok(probe) => probe,
            Err(e) => {
                let failed = Error::from(e);
                for task in tasks {
                    task.finish(Err(failed.clone()));
                }
                return;
            }
        };
        let mut grabs = Vec::new();
        while let Some(batch) = probe.next().await {
            for result in batch {
                if result.state != tcp::PortState::Open {
                    continue;
                }
                for &index in &by_ip[&result.ip] {
                    let task = &tasks[index];
                    let Subject::Address(target) = task.subject() else {
                        continue;
                    };
                    let host = target.host.clone();
                    task.enter(|| {
                        report_open(result.ip, result.port, host.clone());
                        grabs.push(wscan_sdk::spawn(details(
                            result.ip,
                            result.port,
                            host,
                            settings,
                        )));
                    });
                }
            }
        }
        for grab in grabs {
            grab.await;
        }
        for task in tasks {
            let result = match task.subject() {
                Subject::Address(_) => Ok(()),
                _ => Err("the port plugin consumes addresses only".into()),
            };
            task.finish(result);
        }
    }
}

#[derive(Clone, Copy)]
struct Settings {
    banner: bool,
    banner_bytes: u32,
    banner_wait: Duration,
    identify: bool,
}

impl Settings {
    fn new(options: &ScanOptions) -> Self {
        // The host checked each value against its declared range and
        // filled in the defaults; the fallbacks only serve an older host.
        Settings {
            banner: options.boolean("banner").unwrap_or(true),
            banner_bytes: options
                .integer("banner-bytes")
                .unwrap_or(DEFAULT_BANNER_BYTES),
            banner_wait: options
                .duration("banner-timeout")
                .unwrap_or(Duration::from_millis(DEFAULT_BANNER_MS)),
            identify: options.boolean("identify").unwrap_or(true),
        }
    }
}

/// Report `port` open, named by its number alone (the banner may say more
/// later, in a `service` finding).
fn report_open(ip: IpAddr, port: u16, host: Option<String>) {
    let name = service::guess(port, None);
    let title = match name {
        Some(name) => format!("open port {port}/tcp ({name})"),
        None => format!("open port {port}/tcp"),
    };
    let mut data = json!({ "port": port, "protocol": "tcp" });
    if let Some(name) = name {
        data["service"] = json!(name);
    }
    let subject = Subject::Service(Service {
        host,
        name: name.map(str::to_string),
        ..Service::new(ip, port)
    });
    if let Err(e) =
        report::finding(Finding::new("open-port", Severity::Info, title, subject).data(data))
    {
        log::warn(&format!(
            "{ip}:{port}: finding not reported: {}",
            e.message()
        ));
    }
}

/// Read a banner from an open port (and identify a silent one), report what
/// was learned as a `service` finding, and hand the service on.
async fn details(ip: IpAddr, port: u16, host: Option<String>, settings: Settings) {
    let banner = if settings.banner {
        grab_banner(ip, port, settings).await
    } else {
        None
    };
    let mut name = service::guess(port, banner.as_deref());
    // Like `nmap -sV`: a silent port with an unknown number may still be a
    // web or TLS service; find out, so the plugins downstream pick it up.
    let mut tls = false;
    if settings.banner && settings.identify && banner.is_none() && name.is_none() {
        (name, tls) = identify::probe(ip, port, host.as_deref()).await;
    }
    let service = Service {
        host,
        name: name.map(str::to_string),
        banner: banner.clone(),
        tls,
        ..Service::new(ip, port)
    };
    let subject = Subject::Service(service);
    // Only what the open-port finding did not say already: a banner, or a
    // name the number alone did not give.
    if banner.is_some() || tls || name != service::guess(port, None) {
        // The banner is in `data` (the table output shows it too).
        let mut data = json!({ "port": port, "protocol": "tcp" });
        let mut title = match name {
            Some(name) => format!("{port}/tcp is {name}"),
            None => format!("{port}/tcp sent a banner"),
        };
        if let Some(name) = name {
            data["service"] = json!(name);
        }
        if tls {
            data["tls"] = json!(true);
            title.push_str(" over TLS");
        }
        if let Some(banner) = &banner {
            data["banner"] = json!(banner);
        }
        if let Err(e) = report::finding(
            Finding::new("service", Severity::Info, title, subject.clone()).data(data),
        ) {
            log::warn(&format!(
                "{ip}:{port}: finding not reported: {}",
                e.message()
            ));
        }
    }
    if let Err(e) = report::subject(subject) {
        log::warn(&format!(
            "{ip}:{port}: service not handed on: {}",
            e.message()
        ));
    }
}

/// What the service says first, if anything, as text. A second connection:
/// the probe closes its sockets at once to keep thousands in flight cheap.
async fn grab_banner(ip: IpAddr, port: u16, settings: Settings) -> Option<String> {
    let connection = match tcp::connect(ip, port, None).await {
        Ok(c) => c,
        Err(e) => {
            log::debug(&format!(
                "{ip}:{port}: banner connect failed: {}",
                e.message()
            ));
            return None;
        }
    };
    match connection
        .read(settings.banner_bytes, Some(settings.banner_wait))
        .await
    {
        Ok(bytes) if !bytes.is_empty() => {
            let text = String::from_utf8_lossy(&bytes);
            let text = text.trim_end_matches(['\r', '\n', '\0']);
            (!text.is_empty()).then(|| text.to_string())
        }
        Ok(_) | Err(ErrorCode::Timeout) => None,
        Err(e) => {
            log::debug(&format!("{ip}:{port}: banner read failed: {}", e.message()));
            None
        }
    }
}

wscan_sdk::export_plugin!(Port);
