//! One product list as MP returned it, when, and how it is stored in Redis.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::proto::Product;

/// A product list and the wall-clock time MP returned it. Wall-clock, not
/// `Instant`, so that replicas sharing it through Redis agree on its age.
#[derive(Debug, Clone)]
pub struct Snapshot {
    products: Arc<[Product]>,
    fetched_at: SystemTime,
}

impl Snapshot {
    pub fn new(products: impl Into<Arc<[Product]>>, fetched_at: SystemTime) -> Self {
        Self {
            products: products.into(),
            fetched_at,
        }
    }

    pub fn products(&self) -> &Arc<[Product]> {
        &self.products
    }

    pub fn fetched_at(&self) -> SystemTime {
        self.fetched_at
    }

    /// How long ago MP returned it; zero when another replica's clock runs ahead.
    pub fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.fetched_at).unwrap_or_default()
    }

    /// The bytes stored in Redis: a protobuf message, so a reader that knows
    /// `Product` can read it. A change of meaning bumps the key's version instead.
    pub fn encode(&self) -> Vec<u8> {
        let fetched_at_unix_ms = self
            .fetched_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        Stored {
            fetched_at_unix_ms: u64::try_from(fetched_at_unix_ms).unwrap_or(u64::MAX),
            products: self.products.to_vec(),
        }
        .encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        let stored = Stored::decode(bytes)?;
        Ok(Self {
            products: stored.products.into(),
            fetched_at: UNIX_EPOCH + Duration::from_millis(stored.fetched_at_unix_ms),
        })
    }
}

/// The Redis value of a product list (version 1).
#[derive(Clone, PartialEq, prost::Message)]
struct Stored {
    #[prost(uint64, tag = "1")]
    fetched_at_unix_ms: u64,
    #[prost(message, repeated, tag = "2")]
    products: Vec<Product>,
}

/// How usable a list of a given age is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Younger than the TTL: serve it.
    Fresh,
    /// Past the TTL but within the stale limit: serve it and refresh it.
    Stale,
    /// Past the stale limit: never served.
    Expired,
}

/// The TTL and the stale limit, applied to snapshots.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub ttl: Duration,
    pub max_stale: Duration,
}

impl Lifetimes {
    pub fn freshness(&self, snapshot: &Snapshot, now: SystemTime) -> Freshness {
        let age = snapshot.age(now);
        if age < self.ttl {
            Freshness::Fresh
        } else if age < self.ttl.saturating_add(self.max_stale) {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }

    /// How long a list fetched now may be served at all: its lifetime in Redis.
    pub fn servable_for(&self) -> Duration {
        self.ttl.saturating_add(self.max_stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: u64) -> Product {
        Product {
            product_id: id,
            product_name: format!("product {id}"),
            order_quantities: vec![1, 3],
            ..Default::default()
        }
    }

    #[test]
    fn a_snapshot_survives_encoding_to_the_millisecond() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let snapshot = Snapshot::new(vec![product(5), product(6)], at);
        let decoded = Snapshot::decode(&snapshot.encode()).unwrap();
        assert_eq!(decoded.fetched_at(), at);
        assert_eq!(&*decoded.products, &*snapshot.products);
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(Snapshot::decode(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn freshness_follows_the_ttl_then_the_stale_limit() {
        let lifetimes = Lifetimes {
            ttl: Duration::from_secs(300),
            max_stale: Duration::from_secs(3600),
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let snapshot = Snapshot::new(vec![product(1)], at);
        let after = |secs| at + Duration::from_secs(secs);
        assert_eq!(lifetimes.freshness(&snapshot, after(0)), Freshness::Fresh);
        assert_eq!(lifetimes.freshness(&snapshot, after(299)), Freshness::Fresh);
        assert_eq!(lifetimes.freshness(&snapshot, after(300)), Freshness::Stale);
        assert_eq!(
            lifetimes.freshness(&snapshot, after(3899)),
            Freshness::Stale
        );
        assert_eq!(
            lifetimes.freshness(&snapshot, after(3900)),
            Freshness::Expired
        );
        let ahead = at - Duration::from_secs(5);
        assert_eq!(lifetimes.freshness(&snapshot, ahead), Freshness::Fresh);
    }
}
