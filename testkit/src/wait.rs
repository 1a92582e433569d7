//! Waiting on what can only be polled, with a deadline.

use std::{future::Future, time::Duration};

use crate::PATIENCE;

/// Polls `check` until it gives a value, and returns it; fails the test,
/// naming `what`, after [`PATIENCE`].
pub async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
