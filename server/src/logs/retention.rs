//! Retention: each workload keeps at least its limits of lines and bytes; when
//! its log grows a tenth past a limit, the oldest lines are dropped down to the
//! limit (so trimming is not done for every batch, and never below the limit).

use std::collections::HashMap;

use super::LogRetention;
use crate::{
    domain::WorkloadId,
    store::{Store, StoreError},
};

/// What a workload's stored log weighs.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Usage {
    pub lines: u64,
    pub bytes: u64,
}

/// How far past a limit a log may grow before it is trimmed: a tenth of it.
fn slack(limit: u64) -> u64 {
    (limit / 10).max(1)
}

pub(super) struct Retention {
    store: Store,
    limits: LogRetention,
    usage: HashMap<WorkloadId, Usage>,
}

impl Retention {
    pub fn new(store: Store, limits: LogRetention) -> Self {
        Self {
            store,
            limits,
            usage: HashMap::new(),
        }
    }

    /// Drops what is known of a deleted workload.
    pub fn forget(&mut self, workload_id: &WorkloadId) {
        self.usage.remove(workload_id);
    }

    /// Adds what was just stored to the workload's usage and drops its oldest
    /// lines when it is a tenth past a limit.
    pub async fn account(&mut self, workload_id: &WorkloadId, added: Usage) {
        let usage = match self.usage.get_mut(workload_id) {
            Some(usage) => {
                usage.lines += added.lines;
                usage.bytes += added.bytes;
                *usage
            }
            None => {
                // The store already holds the batch just written.
                let (lines, bytes) = match self.store.log_usage(workload_id).await {
                    Ok(usage) => usage,
                    Err(error) => {
                        tracing::warn!(%error, %workload_id, "measuring a log failed");
                        return;
                    }
                };
                let usage = Usage { lines, bytes };
                self.usage.insert(workload_id.clone(), usage);
                usage
            }
        };
        let limits = self.limits;
        if usage.lines <= limits.max_lines + slack(limits.max_lines)
            && usage.bytes <= limits.max_bytes + slack(limits.max_bytes)
        {
            return;
        }
        match self.trim(workload_id, usage).await {
            Ok(left) => {
                self.usage.insert(workload_id.clone(), left);
            }
            Err(error) => tracing::warn!(%error, %workload_id, "dropping old log lines failed"),
        }
    }

    /// Drops the oldest lines until the log is within both limits.
    async fn trim(&self, workload_id: &WorkloadId, mut usage: Usage) -> Result<Usage, StoreError> {
        let limits = self.limits;
        let over = |usage: &Usage| usage.lines > limits.max_lines || usage.bytes > limits.max_bytes;
        let mut after = self
            .store
            .first_log_seq(workload_id)
            .await?
            .unwrap_or(1)
            .saturating_sub(1);
        let mut cutoff = None;
        'pages: while over(&usage) {
            let page = self.store.read_log_lines(workload_id, after, 1000).await?;
            if page.is_empty() {
                break;
            }
            for line in page {
                if !over(&usage) {
                    break 'pages;
                }
                usage.lines -= 1;
                usage.bytes = usage.bytes.saturating_sub(line.message.len() as u64);
                cutoff = Some(line.seq);
                after = line.seq;
            }
        }
        if let Some(cutoff) = cutoff {
            self.store
                .delete_log_lines_through(workload_id, cutoff)
                .await?;
            tracing::debug!(%workload_id, through = cutoff, "dropped old log lines");
        }
        Ok(usage)
    }
}
