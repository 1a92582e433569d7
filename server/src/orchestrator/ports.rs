//! The port pool: ports are checked free by binding before they are handed out,
//! and go back to the pool when their lease is dropped, on every exit path.

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, TcpListener},
    ops::RangeInclusive,
    sync::{Arc, Mutex},
};

/// Hands out ports from a range, each to one holder at a time.
#[derive(Debug, Clone)]
pub struct PortPool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    range: RangeInclusive<u16>,
    in_use: Mutex<BTreeSet<u16>>,
}

/// A port held from the pool; released when dropped.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    pool: Arc<PoolInner>,
}

impl PortLease {
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut in_use = self
            .pool
            .in_use
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        in_use.remove(&self.port);
    }
}

fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

impl PortPool {
    pub fn new(range: RangeInclusive<u16>) -> Self {
        Self {
            inner: Arc::new(PoolInner {
                range,
                in_use: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    pub fn range(&self) -> RangeInclusive<u16> {
        self.inner.range.clone()
    }

    /// The lowest port of the range that nobody holds and nothing listens on.
    pub fn claim(&self) -> Option<PortLease> {
        let mut in_use = self
            .inner
            .in_use
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let port = self
            .inner
            .range
            .clone()
            .find(|port| !in_use.contains(port) && is_free(*port))?;
        in_use.insert(port);
        Some(self.lease(port))
    }

    /// Holds `port` for a workload adopted at start-up (it is in use by that
    /// workload, so it is not checked free). `None` when someone holds it already.
    pub fn reclaim(&self, port: u16) -> Option<PortLease> {
        let mut in_use = self
            .inner
            .in_use
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        in_use.insert(port).then(|| self.lease(port))
    }

    /// How many ports are held.
    pub fn held(&self) -> usize {
        self.inner
            .in_use
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .len()
    }

    fn lease(&self, port: u16) -> PortLease {
        PortLease {
            port,
            pool: self.inner.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_held_once_and_released_on_drop() {
        let pool = PortPool::new(43100..=43102);
        let first = pool.claim().expect("a port");
        let second = pool.claim().expect("another port");
        assert_ne!(first.port(), second.port());
        assert_eq!(pool.held(), 2);
        let port = first.port();
        drop(first);
        assert_eq!(pool.held(), 1);
        assert!(pool.reclaim(port).is_some());
        assert!(pool.reclaim(second.port()).is_none());
    }

    #[test]
    fn ports_in_use_by_others_are_skipped() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let pool = PortPool::new(port..=port);
        assert!(pool.claim().is_none());
    }
}
