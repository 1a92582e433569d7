//! A token bucket per client, in a map of bounded size.
//!
//! A bucket that has been idle long enough to fill up again is the same as a
//! new one, so it is forgotten when the map is full; if the map is still full
//! then (more clients than [`MAX_CLIENTS`] active within one refill time), the
//! least recently seen half is forgotten, which only ever lets those clients
//! in sooner. Memory stays bounded whatever the callers do.

use std::{collections::HashMap, hash::Hash, sync::Mutex, time::Instant};

/// The most clients whose buckets are kept.
pub const MAX_CLIENTS: usize = 16_384;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets of `burst` tokens refilled at `rate` per second, one per key.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    capacity: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate` calls per second on average, `burst` at most at once (at least 1
    /// of each), for up to [`MAX_CLIENTS`] clients at a time.
    pub fn new(rate: u32, burst: u32) -> RateLimiter<K> {
        Self::with_capacity(rate, burst, MAX_CLIENTS)
    }

    /// As [`RateLimiter::new`], keeping at most `capacity` buckets.
    pub fn with_capacity(rate: u32, burst: u32, capacity: usize) -> RateLimiter<K> {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            capacity: capacity.max(2),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `key`'s bucket: whether the call may go ahead.
    pub fn try_acquire(&self, key: &K) -> bool {
        self.try_acquire_at(key, Instant::now())
    }

    fn try_acquire_at(&self, key: &K, now: Instant) -> bool {
        let Ok(mut buckets) = self.buckets.lock() else {
            // A panic while the lock was held; limiting is not worth failing calls.
            return true;
        };
        if !buckets.contains_key(key) && buckets.len() >= self.capacity {
            self.make_room(&mut buckets, now);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets the buckets that are full again; if that is not enough, the
    /// least recently used half.
    fn make_room(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| {
            let idle = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + idle * self.rate < self.burst
        });
        if buckets.len() < self.capacity {
            return;
        }
        let mut seen: Vec<Instant> = buckets.values().map(|bucket| bucket.updated).collect();
        let middle = seen.len() / 2;
        let (_, cutoff, _) = seen.select_nth_unstable(middle);
        let cutoff = *cutoff;
        buckets.retain(|_, bucket| bucket.updated > cutoff);
    }

    /// How many clients have a bucket now.
    pub fn tracked_clients(&self) -> usize {
        self.buckets
            .lock()
            .map(|buckets| buckets.len())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = RateLimiter::new(10, 5);
        let start = Instant::now();
        let allowed = (0..100)
            .filter(|_| limiter.try_acquire_at(&"a", start))
            .count();
        assert_eq!(allowed, 5);
        // Another client has its own bucket.
        assert!(limiter.try_acquire_at(&"b", start));
        // After half a second, 5 more tokens (10 per second).
        let later = start + Duration::from_millis(500);
        let allowed = (0..100)
            .filter(|_| limiter.try_acquire_at(&"a", later))
            .count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn the_map_stays_bounded() {
        let limiter = RateLimiter::with_capacity(1, 1, 1000);
        let start = Instant::now();
        for client in 0..100_000u32 {
            // Every client is still empty (no time passes): none can be
            // forgotten as full, so the oldest are.
            limiter.try_acquire_at(&client, start + Duration::from_micros(u64::from(client)));
            assert!(limiter.tracked_clients() <= 1000);
        }
        // The most recent client is remembered: its bucket is empty.
        let last = start + Duration::from_micros(99_999);
        assert!(!limiter.try_acquire_at(&99_999, last));
    }

    #[test]
    fn full_buckets_are_forgotten_first() {
        let limiter = RateLimiter::with_capacity(10, 10, 4);
        let start = Instant::now();
        for client in 0..4u32 {
            limiter.try_acquire_at(&client, start);
        }
        // Two seconds later every bucket is full again: all can go.
        let later = start + Duration::from_secs(2);
        limiter.try_acquire_at(&100, later);
        assert_eq!(limiter.tracked_clients(), 1);
    }
}
