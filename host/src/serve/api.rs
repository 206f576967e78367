//! The service's JSON: a scan request and what the API answers, with
//! their OpenAPI schemas. A request becomes `wscan scan`'s own command
//! line, so a scan started from the API is checked by the same parsers,
//! fails with the same texts, and is stored exactly as one started from
//! the CLI (`wscan scan --resume ID` continues either).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A scan to start: `wscan scan`'s flags as fields. Only `targets` is
/// required; every other field has the CLI's default.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanBody {
    /// Addresses, CIDR blocks, ranges, host names, HOST:PORT or URLs, as
    /// on the command line.
    #[schema(example = json!(["127.0.0.1"]))]
    pub targets: Vec<String>,
    /// Port spec: `22,80,8000-8100`, `top-100`, `all` (default `top-1000`).
    #[schema(example = "22,80,443")]
    pub ports: Option<String>,
    /// Plugins to run, by name (default: every plugin loaded).
    pub plugins: Option<Vec<String>>,
    /// Plugin arguments, `PLUGIN.KEY` to value: `{"port.banner": "false"}`.
    pub plugin_args: Option<BTreeMap<String, String>>,
    /// Addresses never to scan.
    pub exclude: Option<Vec<String>>,
    /// Seed of the address order.
    pub seed: Option<u64>,
    /// Scan addresses in the order given.
    pub ordered: Option<bool>,
    /// This scan's share of the addresses, `I/N`.
    pub shard: Option<String>,
    /// Network operations in flight across the scan.
    pub concurrency: Option<u64>,
    /// Network operations in flight against one address.
    pub host_concurrency: Option<u64>,
    /// New connections and DNS queries per second.
    pub rate: Option<f64>,
    /// Retries of a connect that timed out.
    pub retries: Option<u64>,
    /// Per-operation timeout, such as `1s` or `500ms`.
    pub timeout: Option<String>,
    /// Wall-clock limit of one subject in a plugin, such as `5m`.
    pub plugin_timeout: Option<String>,
    /// Linear memory one plugin call may grow to, such as `256M`.
    pub plugin_memory: Option<String>,
    /// Name servers, `IP[:PORT]`.
    pub resolver: Option<Vec<String>>,
    /// Ask the name server every time.
    pub no_dns_cache: Option<bool>,
    /// Plugin instances running at once.
    pub parallel: Option<u64>,
    /// The most subjects one plugin instance scans at once.
    pub batch_size: Option<u64>,
}

/// Each field of [`ScanBody`] and the flag of `wscan scan` it stands for
/// (`targets` are the positional arguments).
pub const FIELD_FLAGS: &[(&str, &str)] = &[
    ("targets", "TARGET"),
    ("ports", "--ports"),
    ("plugins", "--plugins"),
    ("plugin_args", "--plugin-arg"),
    ("exclude", "--exclude"),
    ("seed", "--seed"),
    ("ordered", "--ordered"),
    ("shard", "--shard"),
    ("concurrency", "--concurrency"),
    ("host_concurrency", "--host-concurrency"),
    ("rate", "--rate"),
    ("retries", "--retries"),
    ("timeout", "--timeout"),
    ("plugin_timeout", "--plugin-timeout"),
    ("plugin_memory", "--plugin-memory"),
    ("resolver", "--resolver"),
    ("no_dns_cache", "--no-dns-cache"),
    ("parallel", "--parallel"),
    ("batch_size", "--batch-size"),
];

impl ScanBody {
    /// The arguments of `wscan scan` this request stands for (without
    /// `scan`). A value starting with `-` goes after `=` so it is never
    /// taken for a flag.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = Vec::new();
        let mut flag = |name: &str, value: String| argv.push(format!("{name}={value}"));
        let list = |items: &Vec<String>| items.join(",");
        if let Some(v) = &self.ports {
            flag("--ports", v.clone());
        }
        if let Some(v) = &self.plugins {
            flag("--plugins", list(v));
        }
        for (key, value) in self.plugin_args.iter().flatten() {
            flag("--plugin-arg", format!("{key}={value}"));
        }
        if let Some(v) = &self.exclude {
            flag("--exclude", list(v));
        }
        if let Some(v) = self.seed {
            flag("--seed", v.to_string());
        }
        if let Some(v) = &self.shard {
            flag("--shard", v.clone());
        }
        for (name, value) in [
            ("--concurrency", self.concurrency),
            ("--host-concurrency", self.host_concurrency),
            ("--retries", self.retries),
            ("--parallel", self.parallel),
            ("--batch-size", self.batch_size),
        ] {
            if let Some(v) = value {
                flag(name, v.to_string());
            }
        }
        if let Some(v) = self.rate {
            flag("--rate", v.to_string());
        }
        for (name, value) in [
            ("--timeout", &self.timeout),
            ("--plugin-timeout", &self.plugin_timeout),
            ("--plugin-memory", &self.plugin_memory),
        ] {
            if let Some(v) = value {
                flag(name, v.clone());
            }
        }
        for v in self.resolver.iter().flatten() {
            flag("--resolver", v.clone());
        }
        if self.ordered == Some(true) {
            argv.push("--ordered".into());
        }
        if self.no_dns_cache == Some(true) {
            argv.push("--no-dns-cache".into());
        }
        // Targets last, after `--`: a target is never read as a flag.
        argv.push("--".into());
        argv.extend(self.targets.iter().cloned());
        argv
    }
}

/// The field of [`ScanBody`] a flag of `wscan scan` stands for.
pub fn field_of_flag(flag: &str) -> Option<&'static str> {
    FIELD_FLAGS
        .iter()
        .find(|(_, f)| *f == flag)
        .map(|(field, _)| *field)
}

/// A scan as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanView {
    /// Its number.
    pub id: i64,
    /// `running`, `completed`, `interrupted` or `failed`.
    #[schema(example = "running")]
    pub status: String,
    /// When it started, RFC 3339.
    pub started: String,
    /// When its last run ended.
    pub finished: Option<String>,
    /// How many times it was started.
    pub runs: u32,
    /// Its `wscan scan` command line (without the program name).
    pub argv: Vec<String>,
    /// The address order's seed.
    pub seed: Option<u64>,
    /// Findings stored.
    pub findings: u64,
    /// Failed units stored.
    pub errors: u64,
    /// The statistics of its last run, once it ended (as `wscan scan
    /// --stats` writes them).
    #[schema(value_type = Option<Object>)]
    pub stats: Option<serde_json::Value>,
    /// Where to read more.
    pub urls: ScanUrls,
    /// How far it is, while this daemon runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// The URLs of one scan.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanUrls {
    /// The scan.
    #[serde(rename = "self")]
    pub this: String,
    /// Its records.
    pub records: String,
    /// Stop it.
    pub cancel: String,
}

impl From<crate::store::ScanRow> for ScanView {
    fn from(row: crate::store::ScanRow) -> Self {
        let base = format!("/v1/scans/{}", row.id);
        ScanView {
            id: row.id,
            status: row.status.to_string(),
            started: row.started,
            finished: row.finished,
            runs: row.runs,
            argv: row.argv,
            seed: row.seed,
            findings: row.findings,
            errors: row.errors,
            stats: row.stats,
            urls: ScanUrls {
                records: format!("{base}/records"),
                cancel: format!("{base}/cancel"),
                this: base,
            },
            progress: None,
        }
    }
}

/// How far a running scan is (also the data of its stream's `progress`
/// events).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Progress {
    /// Units finished.
    pub units_done: u64,
    /// Units known so far (targets not yet taken count one each).
    pub units_known: u64,
    /// Units finished a second, lately.
    pub per_second: f64,
    /// Since it started (this run).
    pub elapsed_s: f64,
    /// Time left at the current pace, once there is one.
    pub eta_s: Option<f64>,
    /// Connection attempts so far (this run).
    pub connects: u64,
}

/// A page of scans, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanPage {
    /// The scans.
    pub scans: Vec<ScanView>,
    /// The `after` of the next page, when there is one.
    pub next: Option<i64>,
}

/// Who a request comes from (`GET /v1/whoami`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Identity {
    /// The token's name; none on an open service.
    pub name: Option<String>,
    /// `read`, `scan` or `admin` (an open service lets anyone do
    /// anything: `admin`).
    pub role: String,
    /// The service has no tokens (on loopback): no login needed.
    pub open: bool,
}

/// A page of one scan's records, in the order they were stored. (The
/// handler writes this shape around the stored JSON text; the type
/// describes it in the OpenAPI document.)
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordPage {
    /// The records, as JSON Lines has them (docs/jsonl-schema.json), each
    /// with its position in the scan as `id`.
    #[schema(value_type = Vec<Object>)]
    pub records: Vec<serde_json::Value>,
    /// The `after` of the next page, when there are more records now.
    pub next: Option<i64>,
}

/// What went wrong with a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiError {
    /// For people.
    pub error: String,
    /// The request field it is about, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The HTTP status (also in the body, for logs).
    #[serde(skip)]
    pub status: u16,
}

impl ApiError {
    /// An error with `status` and text `error`.
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            error: error.into(),
            field: None,
            status: status.as_u16(),
        }
    }

    /// The same, about request field `field`.
    pub fn field(mut self, field: Option<impl Into<String>>) -> Self {
        self.field = field.map(Into::into);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_the_command_line_of_the_same_scan() {
        let body: ScanBody = serde_json::from_str(
            r#"{"targets":["127.0.0.1","-x"],"ports":"22,80","plugins":["port","http"],
                "plugin_args":{"port.banner":"false"},"ordered":true,"rate":0.5}"#,
        )
        .unwrap();
        assert_eq!(
            body.argv(),
            [
                "--ports=22,80",
                "--plugins=port,http",
                "--plugin-arg=port.banner=false",
                "--rate=0.5",
                "--ordered",
                "--",
                "127.0.0.1",
                "-x"
            ]
        );
        let unknown = serde_json::from_str::<ScanBody>(r#"{"targets":[],"port":"22"}"#);
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `port`")
        );
        assert_eq!(field_of_flag("--plugin-arg"), Some("plugin_args"));
    }
}
