//! Distributed scans over Redis streams: a coordinator (`wscan scan
//! --redis URL`) splits a scan into work items, workers (`wscan worker
//! --redis URL`) run them with their own engines and send each finished
//! unit back, and the coordinator stores and prints what they send as a
//! local scan would. We do not write a cluster of our own: Redis streams
//! with a consumer group give at-least-once delivery, a list of items each
//! worker holds, and the claiming of a dead worker's items.
//!
//! What lives where in Redis (`{scan}` is a random id per run):
//! - `wscan:work`: the work items of every scan, read by the consumer
//!   group `workers`; an item names its scan and its [`Part`];
//! - `wscan:scan:{scan}`: the scan's [`Meta`] (its command line, seed,
//!   files and plugins): a worker resolves the scan, scope included, from
//!   this, never from an item alone;
//! - `wscan:scan:{scan}:results`: what workers send the coordinator
//!   ([`Message`]);
//! - `wscan:scan:{scan}:failures`: per item, why its last run failed;
//! - `wscan:scan:{scan}:units:{item}`: the units runs of the item sent,
//!   each with the subjects it emitted: another worker that takes the item
//!   over runs only the rest, as `--resume` does;
//! - `wscan:plugin:{sha256}`: a plugin's component, by its digest;
//! - `wscan:dead`: items that failed every delivery (the dead letters).
//!
//! Delivery: a worker acknowledges an item only after the item's results
//! are in the results stream; an item a worker holds longer than the lease
//! without a heartbeat is claimed by another worker; an item delivered more
//! than `--max-deliveries` times goes to `wscan:dead` and ends as an error
//! record. A unit's records travel in one message when the unit ends, and
//! the coordinator stores a unit once: an item run twice (redelivered)
//! writes nothing twice.
//!
//! - `wscan:dns:{servers}:{type}:{name}`: DNS answers shared by workers
//!   (`--dns-cache redis`, [`answers`]).
//!
//! - [`coordinator`]: publishes a scan and collects its results;
//! - [`worker`]: takes items, runs them, sends results.

pub mod answers;
pub mod coordinator;
pub mod worker;

use crate::scheduler::NetTotals;
use crate::scheduler::spec::Part;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The stream of work items.
pub const WORK: &str = "wscan:work";
/// The consumer group of workers on [`WORK`].
pub const GROUP: &str = "workers";
/// The dead-letter stream.
pub const DEAD: &str = "wscan:dead";

/// The key of a scan's [`Meta`].
pub fn meta_key(scan: &str) -> String {
    format!("wscan:scan:{scan}")
}

/// The key of a scan's results stream.
pub fn results_key(scan: &str) -> String {
    format!("wscan:scan:{scan}:results")
}

/// The key of a scan's hash of item failures.
pub fn failures_key(scan: &str) -> String {
    format!("wscan:scan:{scan}:failures")
}

/// The key of the hash of the units a work item's runs sent (unit key ->
/// the subjects it emitted): a run of a redelivered item skips them.
pub fn units_key(scan: &str, item: u64) -> String {
    format!("wscan:scan:{scan}:units:{item}")
}

/// The key of a plugin's component.
pub fn plugin_key(digest: &str) -> String {
    format!("wscan:plugin:{digest}")
}

/// The journal key under which the coordinator marks an item done, so a
/// resumed coordinator publishes only the items not done.
pub fn item_unit(item: u64) -> String {
    format!("cluster item {item}")
}

/// What a worker needs to run any item of a scan: the scan as the
/// coordinator resolved it, in the form it was asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// The coordinator's `wscan scan` command line, without the program
    /// name: the worker parses and resolves it as the coordinator did.
    pub argv: Vec<String>,
    /// The address order's seed (drawn by the coordinator when the command
    /// line gives none): every worker walks the same permutation.
    pub seed: u64,
    /// The text of `--exclude-file`, read by the coordinator.
    pub exclude_file: Option<String>,
    /// The PEM text of each `--ca-file`, read by the coordinator.
    pub ca_pems: Vec<String>,
    /// The plugins the scan runs, each by name and component digest.
    pub plugins: Vec<Shipped>,
    /// Deliveries of an item before it is a dead letter.
    pub max_deliveries: u32,
}

/// A plugin shipped through Redis: its name and its component's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    /// The plugin's name.
    pub name: String,
    /// The SHA-256 of its component, lowercase hex.
    pub digest: String,
}

/// A work item as it sits in [`WORK`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The scan's id.
    pub scan: String,
    /// The item's number in its scan, from 0.
    pub item: u64,
    /// What it covers.
    pub part: Part,
    /// Lines of the scan's `-i` input this item scans instead of a window
    /// of the walk (the scope still holds the whole scan's targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Arc<Vec<String>>>,
}

/// What workers send the coordinator, on the scan's results stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Message {
    /// A unit ended, with everything it produced.
    Unit(UnitResult),
    /// An item ended: every unit of it was sent before.
    Item {
        /// The item's number.
        item: u64,
        /// Which run of the item (each run draws one).
        run: u64,
        /// How many unit messages this run sent: the coordinator counts
        /// them, and runs the item again if some never arrived (a Redis
        /// that lost the end of a stream).
        units: u64,
        /// The worker that ran it.
        worker: String,
        /// What running it did.
        totals: ItemTotals,
    },
    /// An item failed every delivery and went to the dead letters.
    Dead {
        /// The item's number.
        item: u64,
        /// How many times it was delivered.
        deliveries: u64,
        /// Why its last run failed, as far as a worker said.
        error: String,
    },
}

/// One unit's work, sent when it ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnitResult {
    /// The item it was part of.
    pub item: u64,
    /// Which run of the item sent it.
    pub run: u64,
    /// The unit's journal key (plugin, subject, ports).
    pub unit: String,
    /// Whether it failed.
    pub failed: bool,
    /// Its records, each as JSON Lines has it.
    pub records: Vec<String>,
    /// The subjects it emitted: whether reported out of scope, and the
    /// subject as JSON.
    pub emitted: Vec<(bool, String)>,
}

/// The counters of one item's run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ItemTotals {
    /// Targets taken.
    pub targets: u64,
    /// Operations the scope check denied.
    pub denied: u64,
    /// Network operations.
    pub net: NetTotals,
    /// Plugin time, in milliseconds, by plugin name.
    pub plugin_ms: BTreeMap<String, u64>,
    /// Wall time of the item, in milliseconds.
    pub elapsed_ms: u64,
    /// Lines of its `-i` chunk that were not targets.
    #[serde(default)]
    pub bad_lines: u64,
    /// What was wrong with the first of them (line numbers count from
    /// the chunk's first line).
    #[serde(default)]
    pub input_errors: Vec<String>,
}

/// Why a distributed scan or a worker could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The URL is not a Redis URL.
    #[error(
        "--redis {url}: {error}; give redis://[:PASSWORD@]HOST[:PORT][/DB] or rediss:// for TLS"
    )]
    Url {
        /// The URL, password hidden.
        url: String,
        /// Why.
        error: redis::RedisError,
    },
    /// Redis could not be reached or refused a command.
    #[error("Redis at {url}: {error}")]
    Redis {
        /// The URL, password hidden.
        url: String,
        /// Why.
        error: redis::RedisError,
    },
    /// The server is older than wscan needs.
    #[error(
        "Redis at {url} is version {version}; wscan needs Redis 7.0 or later (streams with XAUTOCLAIM, EXPIRE ... NX)"
    )]
    Version {
        /// The URL, password hidden.
        url: String,
        /// The version it reports.
        version: String,
    },
    /// The scan splits into more work items than a coordinator keeps.
    #[error(
        "the scan would be {items} work items; give a larger --item-size (up to 4294967296) or fewer addresses (at most {MAX_ITEMS} items)"
    )]
    TooManyItems {
        /// How many.
        items: u128,
    },
    /// A TLS setting for Redis is missing, unreadable, or does not fit the
    /// URL.
    #[error("{0}")]
    Tls(String),
    /// A file the scan names cannot be read.
    #[error("cannot read {what}: {error}")]
    Read {
        /// Which file.
        what: String,
        /// Why.
        error: std::io::Error,
    },
    /// A message on a stream is not what wscan writes.
    #[error("a malformed message on {key}: {error}")]
    Malformed {
        /// The stream.
        key: String,
        /// Why.
        error: String,
    },
    /// A plugin cannot be shipped.
    #[error("cannot publish plugin {name}: {error}")]
    Plugin {
        /// The plugin.
        name: String,
        /// Why.
        error: String,
    },
    /// The results could not be stored or written.
    #[error(transparent)]
    Scan(#[from] crate::scheduler::ScanError),
}

/// A Redis URL with its password hidden, for messages. A URL that does
/// not parse has everything between `://` and the last `@` hidden.
pub fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}***{}", &url[..scheme + 3], &url[at..])
            }
            _ => url.to_string(),
        },
    }
}

/// The oldest Redis wscan works with: XAUTOCLAIM (6.2) and EXPIRE ... NX
/// (7.0).
const MIN_REDIS: (u32, u32) = (7, 0);

/// Where Redis is, and for `rediss://`, whom to trust and who we are.
#[derive(Clone, Default)]
pub struct Endpoint {
    /// The URL, as given (it may hold a password: print [`shown`]).
    pub url: String,
    /// PEM certificates that sign the server's (`--redis-ca`), in place of
    /// the public roots.
    pub ca: Option<Vec<u8>>,
    /// A client certificate and its key, PEM (`--redis-cert`,
    /// `--redis-key`), for a server that asks for one.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &shown(&self.url))
            .field("ca", &self.ca.is_some())
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl Endpoint {
    /// The endpoint of `url`, with the TLS files read. The files go only
    /// with a `rediss://` URL, and a certificate only with its key.
    pub fn load(
        url: &str,
        ca: Option<&std::path::Path>,
        cert: Option<&std::path::Path>,
        key: Option<&std::path::Path>,
    ) -> Result<Endpoint, ClusterError> {
        let read = |flag: &str, path: &std::path::Path| {
            std::fs::read(path)
                .map_err(|e| ClusterError::Tls(format!("{flag} {}: {e}", path.display())))
        };
        if (ca.is_some() || cert.is_some()) && !url.starts_with("rediss://") {
            return Err(ClusterError::Tls(format!(
                "--redis-ca, --redis-cert and --redis-key are for TLS: give a rediss:// URL, not {}",
                shown(url)
            )));
        }
        let client = match (cert, key) {
            (Some(cert), Some(key)) => {
                Some((read("--redis-cert", cert)?, read("--redis-key", key)?))
            }
            (None, None) => None,
            _ => {
                return Err(ClusterError::Tls(
                    "--redis-cert and --redis-key go together: give both".into(),
                ));
            }
        };
        Ok(Endpoint {
            url: url.to_string(),
            ca: ca.map(|path| read("--redis-ca", path)).transpose()?,
            client,
        })
    }

    /// The URL with its password hidden.
    pub fn shown(&self) -> String {
        shown(&self.url)
    }

    fn client(&self) -> redis::RedisResult<redis::Client> {
        if self.ca.is_none() && self.client.is_none() {
            return redis::Client::open(self.url.as_str());
        }
        redis::Client::build_with_tls(
            self.url.as_str(),
            redis::TlsCertificates {
                client_tls: self
                    .client
                    .as_ref()
                    .map(|(cert, key)| redis::ClientTlsConfig {
                        client_cert: cert.clone(),
                        client_key: key.clone(),
                    }),
                root_cert: self.ca.clone(),
            },
        )
    }
}

/// A Redis connection that reconnects on its own (with backoff) after the
/// server goes away. Blocking reads wait `block` at most, so the response
/// timeout is longer than that.
pub async fn connect(endpoint: &Endpoint) -> Result<ConnectionManager, ClusterError> {
    let url = endpoint.url.as_str();
    let client = endpoint.client().map_err(|error| ClusterError::Url {
        url: shown(url),
        error,
    })?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(BLOCK + Duration::from_secs(10)))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(2));
    // A TLS failure says which flag mends it.
    let failed = |error: redis::RedisError| {
        let text = error.to_string();
        if text.contains("invalid peer certificate") {
            let mend = match endpoint.ca {
                None => {
                    "if your own CA signed the server's certificate, give it with --redis-ca FILE"
                }
                Some(_) => {
                    "the server's certificate must be signed by a CA of --redis-ca and name the URL's host"
                }
            };
            ClusterError::Tls(format!("Redis at {}: {text}; {mend}", shown(url)))
        } else if url.starts_with("rediss://")
            && error.is_io_error()
            && !error.is_connection_refusal()
            && endpoint.client.is_none()
        {
            ClusterError::Tls(format!(
                "Redis at {}: {text}; a server that asks for client certificates (tls-auth-clients) needs --redis-cert FILE --redis-key FILE",
                shown(url)
            ))
        } else {
            ClusterError::Redis {
                url: shown(url),
                error,
            }
        }
    };
    let mut conn = client
        .get_connection_manager_with_config(config)
        .await
        .map_err(failed)?;
    // A wrong password or an unreachable server fails here, at once.
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .map_err(failed)?;
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .unwrap_or("0")
        .trim()
        .to_string();
    let mut numbers = version.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let found = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    if found < MIN_REDIS {
        return Err(ClusterError::Version {
            url: shown(url),
            version,
        });
    }
    Ok(conn)
}

/// How long a scan's keys live in Redis without its coordinator renewing
/// them (every few seconds): a killed coordinator's work is dropped by the
/// workers after this, and what they still send for it expires.
pub const KEYS_TTL_S: u64 = 120;

/// The most work items a scan is split into: the coordinator keeps each
/// item's part in memory.
pub const MAX_ITEMS: u128 = 1 << 20;

/// How long a blocking read waits for a message before looking around.
pub const BLOCK: Duration = Duration::from_secs(1);

/// Create the workers' group on [`WORK`] (and the stream), unless it is
/// there. It starts at the stream's beginning, so items published before
/// the first worker came are not missed.
pub async fn ensure_group(conn: &mut ConnectionManager) -> redis::RedisResult<()> {
    let made: redis::RedisResult<String> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(WORK)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match made {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Run `op` until it succeeds, waiting longer after each failure (0.1 s
/// doubling to 5 s), for `patience` at most; the last error after that.
/// Redis restarts and network blips are waited out, not fatal.
pub async fn retry<T, F, Fut>(what: &str, patience: Duration, mut op: F) -> redis::RedisResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = redis::RedisResult<T>>,
{
    let started = std::time::Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(e) if started.elapsed() + wait > patience || !transient(&e) => return Err(e),
            Err(e) => {
                tracing::warn!("Redis: {what}: {e}; trying again in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Whether an error may pass by itself (the connection, not the command).
fn transient(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.code() == Some("LOADING")
        || e.code() == Some("TRYAGAIN")
}

/// A field of a stream entry as text.
pub fn field(entry: &redis::streams::StreamId, name: &str) -> Option<String> {
    entry.get::<String>(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_urls_that_parse_and_in_those_that_do_not() {
        assert_eq!(
            shown("redis://:s3cret@127.0.0.1:6379"),
            "redis://:***@127.0.0.1:6379"
        );
        assert_eq!(shown("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(shown("redis://:ab/cd@host:1:2"), "redis://***@host:1:2");
    }
}
