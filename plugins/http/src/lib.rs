//! wscan's built-in `http` plugin: a `GET` of each web service, following
//! redirects while they stay in scope, and an `http-response` finding with
//! status, title, server, content type and length, the redirect chain and
//! technology hints from the headers.

mod hash;
mod page;

use std::net::IpAddr;
use url::Url;
use wscan_sdk::dns::RecordType;
use wscan_sdk::http::{Request, Response};
use wscan_sdk::prelude::*;
use wscan_sdk::serde_json::{Value, json};

struct Http;

/// Ports where web servers usually listen.
const HTTP_PORTS: &[u16] = &[
    80, 81, 443, 591, 3000, 5000, 8000, 8008, 8080, 8081, 8088, 8443, 8888, 9000, 9090, 9443,
];
/// Service names (nmap's vocabulary) of web servers.
const HTTP_SERVICES: &[&str] = &["http", "https", "http-alt", "http-proxy", "https-alt"];
/// The largest favicon read whole (its hash is of the whole file).
const MAX_ICON_BYTES: u32 = 1 << 20;
/// Ports where a web server speaks TLS, when the service name does not say.
const HTTPS_PORTS: &[u16] = &[443, 8443, 9443];

impl Plugin for Http {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "http",
            env!("CARGO_PKG_VERSION"),
            "GET of each web service: status, title, server, redirects (followed while in scope), technology hints",
        )
        .consumes(
            SubjectFilter::services()
                .ports(HTTP_PORTS)
                .service_names(HTTP_SERVICES),
        )
        .capability(Capability::Http)
        .capability(Capability::Dns)
        .arg(ArgInfo::text("path", "the path to request").default("/"))
        .arg(ArgInfo::integer("max-redirects", "redirects to follow (0: none)", 0..=50).default(5))
        .arg(
            ArgInfo::integer(
                "body-bytes",
                "bytes of each body to read (for the title)",
                1..=1_048_576,
            )
            .default(65536),
        )
        .arg(
            ArgInfo::boolean(
                "favicon",
                "also GET /favicon.ico and report its hashes (Shodan's and httpx's MurmurHash3, SHA-256)",
            )
            .default(false),
        )
    }

    async fn scan(subject: Subject, options: ScanOptions) -> Result<(), Error> {
        let Subject::Service(service) = &subject else {
            return Err("the http plugin consumes services only".into());
        };
        // Checked and defaulted by the host; the fallbacks serve an older one.
        let path = options.text("path").unwrap_or("/").to_string();
        let max_redirects: usize = options.integer("max-redirects").unwrap_or(5);
        let body_bytes: u32 = options.integer("body-bytes").unwrap_or(65536);
        let favicon = options.boolean("favicon").unwrap_or(false);
        let ip = wscan_sdk::to_ip(service.address);
        let tls = service.tls
            || match service.name.as_deref() {
                Some("https" | "https-alt" | "ssl") => true,
                Some(_) => false,
                None => HTTPS_PORTS.contains(&service.port),
            };
        let start = start_url(tls, service.host.as_deref(), ip, service.port, &path)?;

        let mut url = start.clone();
        let mut connect_to = ip;
        let mut hops: Vec<Value> = Vec::new();
        let mut out_of_scope: Option<String> = None;
        // The last response that came back, and its URL.
        let mut last: Option<(Response, Url)> = None;
        loop {
            let request = Request::get(url.as_str())
                .connect_to(connect_to)
                .max_body(body_bytes);
            let response = match http::send(&request).await {
                Ok(r) => r,
                Err(e) if last.is_none() => {
                    return Err(format!("GET {url}: {}", e.message()).into());
                }
                // The host refused a hop outside the scope: nothing was sent.
                Err(ErrorCode::AccessDenied(_)) => {
                    out_of_scope = Some(url.to_string());
                    break;
                }
                Err(e) => {
                    // The service itself answered; a later hop failing is
                    // part of what it does, not the unit's failure.
                    hops.push(json!({"url": url.as_str(), "error": e.message()}));
                    break;
                }
            };
            let next = redirect(&response, &url);
            hops.push(json!({
                "url": url.as_str(),
                "status": response.status,
                "location": response.header("location"),
            }));
            last = Some((response, url.clone()));
            let Some(next) = next else { break };
            if hops.len() > max_redirects {
                break;
            }
            match destination(&next, &url, connect_to).await {
                Ok(ip) => {
                    connect_to = ip;
                    url = next;
                }
                Err(ErrorCode::AccessDenied(_)) => {
                    out_of_scope = Some(next.to_string());
                    break;
                }
                Err(e) => {
                    hops.push(json!({"url": next.as_str(), "error": e.message()}));
                    break;
                }
            }
        }
        let Some((response, final_url)) = last else {
            unreachable!("the first hop either answered or returned early");
        };

        if let Some(target) = &out_of_scope {
            let finding = Finding::new(
                "http-redirect-out-of-scope",
                Severity::Info,
                format!("{start} redirects outside the scan's scope, to {target}"),
                subject.clone(),
            )
            .data(json!({"url": start.as_str(), "location": target}));
            report::finding(finding).context("report")?;
        }
        let body = String::from_utf8_lossy(&response.body);
        let title = page::title(&body);
        let (remote_ip, remote_port) = response.remote();
        let content_length = response
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(response.body.len() as u64);
        let first = &hops[0];
        let favicon = match favicon {
            true => icon(&final_url, connect_to).await,
            false => Value::Null,
        };
        let data = json!({
            "url": start.as_str(),
            "final_url": final_url.as_str(),
            "status": response.status,
            "title": title,
            "server": response.header("server"),
            "content_type": response.header("content-type"),
            "content_length": content_length,
            "location": first["location"],
            "redirects": hops.len() - 1,
            "chain": hops,
            "technologies": page::technologies(&response),
            "remote": {"address": remote_ip.to_string(), "port": remote_port},
            "elapsed_ms": response.elapsed_ms,
            "body_truncated": response.body_truncated,
            // Only of a whole body: a prefix's hash would join with nothing.
            "body_sha256": (!response.body_truncated).then(|| hash::sha256(&response.body)),
            "favicon": favicon,
        });
        let title_text = match &title {
            Some(t) => format!("{} {final_url} [{t}]", response.status),
            None => format!("{} {final_url}", response.status),
        };
        report::finding(
            Finding::new("http-response", Severity::Info, title_text, subject.clone()).data(data),
        )
        .context("report")
    }
}

/// `/favicon.ico` of the final page's site, fetched from the address the
/// page came from: its URL, size and hashes, or why there is none.
async fn icon(page: &Url, connect_to: IpAddr) -> Value {
    let Ok(url) = page.join("/favicon.ico") else {
        return Value::Null;
    };
    let request = Request::get(url.as_str())
        .connect_to(connect_to)
        .max_body(MAX_ICON_BYTES);
    match http::send(&request).await {
        Ok(r) if r.status == 200 && !r.body.is_empty() && !r.body_truncated => json!({
            "url": url.as_str(),
            "size": r.body.len(),
            "mmh3": hash::favicon_mmh3(&r.body),
            "sha256": hash::sha256(&r.body),
        }),
        Ok(r) if r.body_truncated => {
            json!({"url": url.as_str(), "error": format!("larger than {MAX_ICON_BYTES} bytes")})
        }
        Ok(r) => json!({"url": url.as_str(), "status": r.status}),
        Err(e) => json!({"url": url.as_str(), "error": e.message()}),
    }
}

/// The service's own URL: its host name when it has one (for `Host` and
/// SNI), else its address; the port left out when it is the default.
fn start_url(
    tls: bool,
    host: Option<&str>,
    ip: IpAddr,
    port: u16,
    path: &str,
) -> Result<Url, String> {
    let scheme = if tls { "https" } else { "http" };
    let authority = match (host, ip) {
        (Some(name), _) => name.to_string(),
        (None, IpAddr::V6(v6)) => format!("[{v6}]"),
        (None, IpAddr::V4(v4)) => v4.to_string(),
    };
    let mut url = Url::parse(&format!("{scheme}://{authority}/"))
        .map_err(|e| format!("cannot make a URL for {authority}: {e}"))?;
    url.set_port(Some(port))
        .map_err(|_| format!("bad port {port}"))?;
    let url = url
        .join(path)
        .map_err(|e| format!("argument path: {path:?}: {e}"))?;
    Ok(url)
}

/// Where a 3xx response points, resolved against the page's URL.
fn redirect(response: &Response, base: &Url) -> Option<Url> {
    if !(300..400).contains(&response.status) {
        return None;
    }
    let location = response.header("location")?;
    base.join(location.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

/// The address to send `next` to: the same as now for the same host, the
/// host's own address for an address, the scan's resolver's answer for a
/// name. The host checks each against the scope.
async fn destination(next: &Url, current: &Url, connect_to: IpAddr) -> Result<IpAddr, ErrorCode> {
    let host = next
        .host_str()
        .ok_or_else(|| ErrorCode::InvalidArgument(format!("{next} has no host")))?;
    let bare = host.trim_matches(['[', ']']);
    if current
        .host_str()
        .is_some_and(|h| h.eq_ignore_ascii_case(host))
    {
        return Ok(connect_to);
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    let records = dns::lookup(bare, RecordType::A).await?;
    records
        .iter()
        .find_map(|r| r.data.ip())
        .ok_or_else(|| ErrorCode::Other(format!("{bare} has no address")))
}

wscan_sdk::export_plugin!(Http);
