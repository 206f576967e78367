//! DNS answers shared through Redis (`--dns-cache redis`): each worker of
//! a distributed scan asks Redis before its name server, and keeps what
//! a name server told it there, for the answer's TTL, so a name is asked
//! once across the machines of a scan (and of the scans after it, while
//! the TTL lasts).
//!
//! Keys are `wscan:dns:{servers}:{type}:{name}` (`{type}` as `A`, `Aaaa`,
//! `Ptr`...), `{servers}` being the
//! scan's `--resolver` list (or `system`), since another name server may
//! answer otherwise. Each key expires with its answer; its value is JSON:
//! the TTL it was kept for and the answer. Redis's own count-down of the
//! key (`PTTL`) says how old the answer is, whatever the machines' clocks.

use crate::primitives::dns::cache::{SharedAnswers, SharedGet};
use crate::primitives::dns::{DnsError, Kind, Record};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a query waits for Redis before it asks the name server: a
/// slow Redis must not make DNS slower than no cache at all.
const WAIT: Duration = Duration::from_millis(500);

/// An answer as kept in Redis.
#[derive(Serialize, Deserialize)]
struct Kept {
    /// The seconds it was kept for.
    ttl: u32,
    /// The records (none: the name has none of the type), or `None` for
    /// NXDOMAIN.
    records: Option<Vec<Record>>,
}

/// The answers of the name servers `servers`, shared through one Redis.
pub struct RedisAnswers {
    conn: ConnectionManager,
    prefix: String,
    /// A failure is logged once, not once per query.
    warned: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAnswers")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisAnswers {
    /// Answers of `servers` (empty: the system's configuration) kept in
    /// the Redis of `conn`.
    pub fn new(conn: ConnectionManager, servers: &[SocketAddr]) -> RedisAnswers {
        let servers = match servers {
            [] => "system".to_string(),
            _ => servers
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(","),
        };
        RedisAnswers {
            conn,
            prefix: format!("wscan:dns:{servers}:"),
            warned: Arc::default(),
        }
    }

    fn key(&self, name: &str, kind: Kind) -> String {
        format!("{}{kind:?}:{name}", self.prefix)
    }
}

/// Say once that the shared cache failed (`what`: a read or a write).
fn failed(warned: &AtomicBool, what: &str, error: &str) {
    if !warned.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "the shared DNS cache ({what}): {error}; queries go to the name server meanwhile"
        );
    }
}

impl SharedAnswers for RedisAnswers {
    fn get<'a>(&'a self, name: &'a str, kind: Kind) -> SharedGet<'a> {
        Box::pin(async move {
            let key = self.key(name, kind);
            let mut conn = self.conn.clone();
            let mut pipe = redis::pipe();
            pipe.get(&key).pttl(&key);
            let read = pipe.query_async::<(Option<Vec<u8>>, i64)>(&mut conn);
            let (value, left_ms) = match tokio::time::timeout(WAIT, read).await {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => {
                    failed(&self.warned, "read", &e.to_string());
                    return None;
                }
                Err(_) => {
                    failed(&self.warned, "read", "no answer within 500 ms");
                    return None;
                }
            };
            let kept: Kept = serde_json::from_slice(&value?).ok()?;
            // Whole seconds left, rounded down as a resolver counts them.
            let left = u32::try_from(left_ms / 1000).ok().filter(|&s| s > 0)?;
            let age = kept.ttl.saturating_sub(left);
            let answer = match kept.records {
                Some(records) => Ok(records
                    .into_iter()
                    .map(|r| Record {
                        ttl: r.ttl.saturating_sub(age),
                        ..r
                    })
                    .collect()),
                None => Err(DnsError::NotFound),
            };
            Some((answer, left))
        })
    }

    fn put(&self, name: &str, kind: Kind, answer: &Result<Vec<Record>, DnsError>, ttl: u32) {
        let records = match answer {
            Ok(records) => Some(records.clone()),
            Err(DnsError::NotFound) => None,
            Err(_) => return,
        };
        let value = serde_json::to_vec(&Kept { ttl, records }).expect("answers serialize");
        let key = self.key(name, kind);
        let mut conn = self.conn.clone();
        let warned = self.warned.clone();
        // The query does not wait for Redis: the answer is the name
        // server's either way.
        tokio::spawn(async move {
            let stored: redis::RedisResult<()> = redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("EX")
                .arg(ttl)
                .query_async(&mut conn)
                .await;
            if let Err(e) = stored {
                failed(&warned, "write", &e.to_string());
            }
        });
    }
}
