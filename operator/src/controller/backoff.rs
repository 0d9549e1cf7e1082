//! Per-route exponential backoff after failed reconciliations.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

/// The longest wait between retries of one route.
const MAX_DELAY: Duration = Duration::from_secs(300);

/// Consecutive failures per route: 1 s, 2 s, 4 s … up to five minutes.
///
/// A route deleted while failing is never reconciled again, so nothing would clear its counter;
/// counters of routes that are gone are dropped whenever any counter changes.
#[derive(Debug)]
pub struct Backoff<K> {
    failures: Mutex<HashMap<K, u32>>,
}

// === impl Backoff ===

impl<K: Hash + Eq + Clone> Default for Backoff<K> {
    fn default() -> Self {
        Self {
            failures: Mutex::default(),
        }
    }
}

impl<K: Hash + Eq + Clone> Backoff<K> {
    /// Counts a failure of `route` and returns how long to wait before retrying it; `exists`
    /// says whether a route is still there.
    pub fn failed(&self, route: &K, exists: impl Fn(&K) -> bool) -> Duration {
        let mut failures = self.failures.lock().expect("backoff lock");
        failures.retain(|key, _| key == route || exists(key));
        let n = failures.entry(route.clone()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs(1u64 << (*n - 1).min(9)).min(MAX_DELAY)
    }

    /// Forgets the failures of `route`, which has just been reconciled.
    pub fn succeeded(&self, route: &K, exists: impl Fn(&K) -> bool) {
        let mut failures = self.failures.lock().expect("backoff lock");
        if !failures.is_empty() {
            failures.retain(|key, _| key != route && exists(key));
        }
    }

    /// How many routes have a failure counted.
    pub fn len(&self) -> usize {
        self.failures.lock().expect("backoff lock").len()
    }

    /// Whether no route has a failure counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everything(_: &&str) -> bool {
        true
    }

    #[test]
    fn doubles_up_to_five_minutes() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (0..12)
            .map(|_| backoff.failed(&"a", everything).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }

    #[test]
    fn success_starts_over() {
        let backoff = Backoff::default();
        backoff.failed(&"a", everything);
        backoff.failed(&"a", everything);
        backoff.succeeded(&"a", everything);
        assert!(backoff.is_empty());
        assert_eq!(backoff.failed(&"a", everything), Duration::from_secs(1));
    }

    #[test]
    fn routes_count_separately() {
        let backoff = Backoff::default();
        backoff.failed(&"a", everything);
        backoff.failed(&"a", everything);
        assert_eq!(backoff.failed(&"b", everything), Duration::from_secs(1));
        assert_eq!(backoff.failed(&"a", everything), Duration::from_secs(4));
    }

    #[test]
    fn deleted_routes_are_forgotten() {
        let backoff = Backoff::default();
        backoff.failed(&"deleted", everything);
        backoff.failed(&"kept", everything);
        backoff.succeeded(&"other", |key| *key != "deleted");
        assert_eq!(backoff.len(), 1);
        backoff.failed(&"third", |key| *key == "third");
        assert_eq!(backoff.len(), 1, "only the failing route itself is kept");
    }
}
