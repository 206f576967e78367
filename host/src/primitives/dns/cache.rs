//! The scan's cache of DNS answers (`--no-dns-cache` turns it off).
//!
//! hickory-resolver has a cache of its own, but on a scan of many names,
//! each asked once, keeping it cost more than the queries it saved: about
//! a third of the time of a loop of 100,000 lookups against a local server,
//! and 25 MB. This one keeps what a scan reuses (a host's address for the
//! next plugin, a PTR asked by many units) as the answers the contract
//! returns, bounded in entries, each for its TTL.

use super::core::{DnsError, Kind, Record};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What [`SharedAnswers::get`] finds: the answer and the seconds it has
/// left.
pub type SharedGet<'a> =
    Pin<Box<dyn Future<Output = Option<(Result<Vec<Record>, DnsError>, u32)>> + Send + 'a>>;

/// Answers shared beyond this process, behind the scan's own cache
/// (`--dns-cache redis`: every worker of a distributed scan asks the
/// others' answers before the name server). Implemented where the store
/// is (the cluster's Redis); nothing here knows it. A store that fails or
/// is slow is a miss, never an error of the query.
pub trait SharedAnswers: Send + Sync + std::fmt::Debug {
    /// The answer kept for `name` and `kind`, its TTLs counted down by the
    /// time it was kept, with the seconds it has left.
    fn get<'a>(&'a self, name: &'a str, kind: Kind) -> SharedGet<'a>;

    /// Keep `answer` (records, or `NotFound`) for `ttl` seconds, without
    /// waiting for the store.
    fn put(&self, name: &str, kind: Kind, answer: &Result<Vec<Record>, DnsError>, ttl: u32);
}

/// How long `answer` may be kept: records for their smallest TTL, "none of
/// this type" and `NotFound` for `negative_ttl` (the zone's, from its
/// SOA). Failures that say nothing about the name (timeouts, SERVFAIL,
/// REFUSED) and zero TTLs are not kept (`None`).
pub fn keep_for(answer: &Result<Vec<Record>, DnsError>, negative_ttl: Option<u32>) -> Option<u32> {
    let ttl = match answer {
        Ok(records) if !records.is_empty() => records.iter().map(|r| r.ttl).min(),
        Ok(_) | Err(DnsError::NotFound) => negative_ttl,
        Err(_) => None,
    };
    ttl.filter(|&t| t > 0)
}

/// Answers kept at once; the least used go first.
pub const CAPACITY: usize = 16_384;

/// An answer kept: records (empty: the name has none of this type) or
/// `NotFound`, until `expires`.
#[derive(Clone)]
struct Kept {
    answer: Result<Arc<[Record]>, DnsError>,
    stored: Instant,
    expires: Instant,
}

/// Answers by (lowercase fully qualified name, record type).
pub struct AnswerCache {
    entries: quick_cache::sync::Cache<(String, Kind), Kept>,
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl Default for AnswerCache {
    fn default() -> Self {
        AnswerCache {
            entries: quick_cache::sync::Cache::new(CAPACITY),
        }
    }
}

impl AnswerCache {
    /// The answer kept for `name` and `kind`, its TTLs counted down by the
    /// time it was kept; `None` if there is none or it expired.
    pub fn get(&self, name: &str, kind: Kind) -> Option<Result<Vec<Record>, DnsError>> {
        let key = (name.to_string(), kind);
        let kept = self.entries.get(&key)?;
        let now = Instant::now();
        if now >= kept.expires {
            self.entries.remove(&key);
            return None;
        }
        let age = u32::try_from(now.duration_since(kept.stored).as_secs()).unwrap_or(u32::MAX);
        Some(kept.answer.map(|records| {
            records
                .iter()
                .map(|r| Record {
                    ttl: r.ttl.saturating_sub(age),
                    ..r.clone()
                })
                .collect()
        }))
    }

    /// Keep `answer` for `name` and `kind` for as long as [`keep_for`]
    /// says.
    pub fn put(
        &self,
        name: &str,
        kind: Kind,
        answer: &Result<Vec<Record>, DnsError>,
        negative_ttl: Option<u32>,
    ) {
        let Some(ttl) = keep_for(answer, negative_ttl) else {
            return;
        };
        let stored = Instant::now();
        let kept = Kept {
            answer: answer.clone().map(Arc::from),
            stored,
            expires: stored + Duration::from_secs(u64::from(ttl)),
        };
        self.entries.insert((name.to_string(), kind), kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::dns::Data;

    fn a(ttl: u32) -> Record {
        Record {
            name: "a.test.".into(),
            ttl,
            data: Data::A([192, 0, 2, 1].into()),
        }
    }

    #[test]
    fn answers_are_kept_for_their_smallest_ttl() {
        let cache = AnswerCache::default();
        cache.put("a.test.", Kind::A, &Ok(vec![a(300), a(60)]), None);
        let kept = cache.get("a.test.", Kind::A).unwrap().unwrap();
        assert_eq!(kept, vec![a(300), a(60)]);
        assert!(cache.get("a.test.", Kind::Aaaa).is_none());
        assert!(cache.get("b.test.", Kind::A).is_none());
    }

    #[test]
    fn only_answers_about_the_name_are_kept() {
        let cache = AnswerCache::default();
        cache.put("gone.test.", Kind::A, &Err(DnsError::NotFound), Some(30));
        assert!(matches!(
            cache.get("gone.test.", Kind::A),
            Some(Err(DnsError::NotFound))
        ));
        cache.put("none.test.", Kind::A, &Ok(Vec::new()), Some(30));
        assert_eq!(cache.get("none.test.", Kind::A).unwrap().unwrap(), vec![]);
        // No SOA, no negative TTL: not kept.
        cache.put("nosoa.test.", Kind::A, &Err(DnsError::NotFound), None);
        assert!(cache.get("nosoa.test.", Kind::A).is_none());
        for error in [
            DnsError::Timeout,
            DnsError::ServerFailure,
            DnsError::Refused,
        ] {
            cache.put("down.test.", Kind::A, &Err(error), Some(30));
            assert!(cache.get("down.test.", Kind::A).is_none());
        }
        cache.put("zero.test.", Kind::A, &Ok(vec![a(0)]), None);
        assert!(cache.get("zero.test.", Kind::A).is_none());
    }
}
