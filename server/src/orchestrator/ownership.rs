//! A workload's owner: the node whose supervisor runs it. Starting a run takes
//! the workload over with a new owner epoch; every later write of the run names
//! that epoch, and once another node has taken the workload over (after this one
//! was declared lost) the writes are refused and the supervisor abandons the
//! run: it kills what runs here and writes nothing more.

use std::time::Duration;

use super::{OrchestratorError, supervisor::Supervisor};
use crate::{
    domain::{EventKind, NewEvent, Stage, can_transition, now},
    events::CommitError,
    store::{StateWrite, StoreError},
};

impl Supervisor {
    /// Takes the workload over for a run on this node: PENDING → VALIDATE with
    /// this node as owner and the next owner epoch, refused when another node
    /// took it meanwhile.
    pub(super) async fn claim(&mut self, why: &str) -> Result<(), OrchestratorError> {
        let from = self.workload.stage;
        if !can_transition(from, Stage::Validate) {
            return Err(OrchestratorError::internal(
                "starting a run",
                std::io::Error::other(format!("{from} -> validate is not a transition")),
            ));
        }
        let expected_epoch = self.workload.owner_epoch;
        let mut next = self.workload.clone();
        next.stage = Stage::Validate;
        next.updated_at = now();
        next.started_at = None;
        next.stopped_at = None;
        next.node_id = Some(self.inner.node_id.clone());
        next.owner_epoch = expected_epoch + 1;
        next.pending_reason = None;
        let message = match self.placement.take() {
            Some(placement) => format!("{why}: {placement}"),
            None => why.to_owned(),
        };
        let event = NewEvent::workload(EventKind::WorkloadUpdated, &next, &message);
        let write = StateWrite::ReassignWorkload {
            workload: next.clone(),
            expected_epoch,
        };
        match self.inner.events.commit(write, event).await {
            Ok(committed) => {
                self.workload = next;
                self.workload.revision = committed.revision;
            }
            Err(CommitError::Store(StoreError::Fenced { .. })) => {
                self.abandoned = true;
                return Err(OrchestratorError::Unavailable(format!(
                    "workload {} was taken over by another node; ask again",
                    self.workload.id
                )));
            }
            Err(error) => return Err(error.into()),
        }
        // Lines this node wrote for an earlier run of it (before another node
        // ran it) say nothing of the seqs stored since.
        self.inner.logs.reset_seq(&self.workload.id).await;
        self.stage_changed(Stage::Validate);
        self.publish_now().await;
        Ok(())
    }

    /// Takes a fresh copy of the workload from the store when no run is under
    /// way here and another node has owned it since this supervisor last wrote
    /// (on a shared database).
    pub(super) async fn refresh(&mut self) {
        if self.run.is_some() || !self.inner.store.is_shared() {
            return;
        }
        match self.inner.store.get_workload(&self.workload.id).await {
            Ok(Some(stored)) if stored.owner_epoch != self.workload.owner_epoch => {
                self.workload = stored;
                self.restarts.forget();
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, workload_id = %self.workload.id, "reading the workload failed");
            }
        }
    }

    /// Another node owns the workload now: kills what runs here (no grace),
    /// ends the operations under way, and writes nothing more about it.
    pub(super) async fn abandon(&mut self, why: &str) {
        if self.abandoned {
            return;
        }
        self.abandoned = true;
        tracing::warn!(
            workload_id = %self.workload.id,
            epoch = self.workload.owner_epoch,
            why,
            "abandoning the workload: another node owns it now"
        );
        if let Some(run) = &self.run {
            run.stop.send_replace(Some(Duration::ZERO));
        }
        self.restarts = super::policy::RestartState::default();
        let after = std::mem::take(&mut self.after_stop);
        for reply in after.deletes {
            let _ = reply.send(Err(OrchestratorError::Unavailable(format!(
                "workload {} is owned by another node now; ask again",
                self.workload.id
            ))));
        }
        for reply in after.shutdown {
            let _ = reply.send(());
        }
        self.operations
            .end_all(
                &self.inner.logs,
                &self.workload,
                "the workload is owned by another node now",
            )
            .await;
    }
}
