//! How an operation proceeds. Its items are taken in order, `parallel` at a
//! time; each item's progress is saved before and after every step that
//! changes a workload, under the owner epoch the node holds, so that a node
//! that takes the operation over (this one's earlier run was lost) knows
//! what was done:
//!
//! - a drain item creates a replacement (a new workload of the same
//!   deployment), starts it (placement puts it on another node: this one is
//!   draining), waits until it has been ready for the healthy time, then stops
//!   the old workload and waits until it has stopped. A drain is complete only
//!   when the old workloads are stopped.
//! - a rolling-restart item records the workload's generation and revision,
//!   restarts it, and waits until a newer generation has been ready for the
//!   healthy time. Taken over with the item active, the restart is made again
//!   only if the workload has not changed since it was recorded.
//!
//! Pause and cancel are read from the operation's row at every step: a pause
//! starts no new items, a cancel ends the operation once the items under way
//! are done.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{sync::Mutex, task::JoinSet};

use super::Fleet;
use crate::domain::{
    FailurePolicy, FleetItem, FleetOperation, FleetParams, FleetState, Health, ItemState,
    Scheduling, Stage, WorkloadId, now,
};

/// How often an operation looks at its row (pause, cancel, a new owner) and
/// at the workloads it waits for.
pub(super) const TICK: Duration = Duration::from_millis(200);

/// An old workload gets this long beyond its grace period to stop.
const STOP_SLACK: Duration = Duration::from_secs(30);

/// Another node holds the operation now: this one stops without a word.
pub(super) struct Fenced;

pub(super) enum Outcome {
    Done(String),
    Failed(String),
}

pub(super) struct Run {
    fleet: Fleet,
    operation: Mutex<FleetOperation>,
}

impl Run {
    async fn save(&self) -> Result<(), Fenced> {
        let operation = self.operation.lock().await.clone();
        match self
            .fleet
            .inner
            .store
            .save_operation(&operation, None)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(Fenced),
            Err(error) => {
                // Saved with the next step.
                tracing::warn!(%error, operation = %operation.id, "saving a fleet operation's progress failed");
                Ok(())
            }
        }
    }

    pub(super) async fn update(
        &self,
        index: usize,
        change: impl FnOnce(&mut FleetItem),
    ) -> Result<(), Fenced> {
        {
            let mut operation = self.operation.lock().await;
            if let Some(item) = operation.items.get_mut(index) {
                change(item);
            }
            operation.updated_at = now();
        }
        self.save().await
    }

    pub(super) async fn item(&self, index: usize) -> Option<FleetItem> {
        self.operation.lock().await.items.get(index).cloned()
    }

    pub(super) async fn params(&self) -> FleetParams {
        self.operation.lock().await.params.clone()
    }
}

impl Fleet {
    /// Carries `operation` out in the background, unless this process
    /// already does.
    pub(super) fn spawn_run(&self, operation: FleetOperation) {
        {
            let mut running = self
                .inner
                .running
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            if !running.insert(operation.id.clone()) {
                return;
            }
        }
        let fleet = self.clone();
        // What the operation causes names who asked for it.
        let actor = format!("{} (operation {})", operation.actor, operation.id);
        tokio::spawn(async move {
            let id = operation.id.clone();
            crate::domain::acting_as(actor, fleet.run(operation)).await;
            fleet
                .inner
                .running
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .remove(&id);
        });
    }

    async fn run(&self, operation: FleetOperation) {
        let id = operation.id.clone();
        let held = operation.owner_epoch;
        let parallel = operation.parallel.max(1) as usize;
        let deadline = operation.deadline;
        let run = Arc::new(Run {
            fleet: self.clone(),
            operation: Mutex::new(operation),
        });
        let mut tasks: JoinSet<(usize, Result<Outcome, Fenced>)> = JoinSet::new();
        let mut in_flight: HashSet<usize> = HashSet::new();
        let mut ending: Option<(FleetState, String)> = None;
        let mut past_deadline;
        loop {
            let stored = match self.inner.store.operation(&id).await {
                Ok(Some(stored)) => Some(stored),
                Ok(None) => {
                    tasks.abort_all();
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, operation = %id, "reading a fleet operation failed");
                    None
                }
            };
            if let Some(stored) = &stored {
                if stored.owner_epoch != held {
                    tracing::warn!(operation = %id, "another node carries the operation out now");
                    tasks.abort_all();
                    return;
                }
                if stored.state == FleetState::Cancelled && ending.is_none() {
                    ending = Some((FleetState::Cancelled, "cancelled".to_owned()));
                }
            }
            past_deadline = now() >= deadline;
            let state = stored.map(|stored| stored.state);
            let launching =
                state == Some(FleetState::Running) && ending.is_none() && !past_deadline;
            if launching {
                if let Err(Fenced) = self.pick_up_newcomers(&run).await {
                    tasks.abort_all();
                    return;
                }
                let next: Vec<usize> = {
                    let operation = run.operation.lock().await;
                    operation
                        .items
                        .iter()
                        .enumerate()
                        .filter(|(index, item)| !item.state.is_over() && !in_flight.contains(index))
                        .map(|(index, _)| index)
                        .collect()
                };
                for index in next {
                    if in_flight.len() >= parallel {
                        break;
                    }
                    in_flight.insert(index);
                    let run = run.clone();
                    let actor = crate::domain::current_actor().unwrap_or_default();
                    tasks.spawn(crate::domain::acting_as(actor, async move {
                        (index, run.fleet.carry_out(&run, index).await)
                    }));
                }
            }
            if tasks.is_empty() {
                in_flight.clear();
                let left = run
                    .operation
                    .lock()
                    .await
                    .items
                    .iter()
                    .any(|item| !item.state.is_over());
                // Paused (by a failure, or asked), it waits to be resumed or
                // cancelled, even with nothing left to do.
                let paused = state == Some(FleetState::Paused);
                if ending.is_some() || past_deadline || (!left && !paused) {
                    break;
                }
            }
            tokio::select! {
                joined = tasks.join_next(), if !tasks.is_empty() => {
                    let Some(Ok((index, outcome))) = joined else { continue };
                    in_flight.remove(&index);
                    match outcome {
                        Err(Fenced) => {
                            tasks.abort_all();
                            return;
                        }
                        Ok(outcome) => {
                            if let Err(Fenced) = self.record(&run, index, outcome, &mut ending).await {
                                tasks.abort_all();
                                return;
                            }
                        }
                    }
                }
                _ = tokio::time::sleep(TICK) => {}
            }
        }
        self.finish(&run, ending, past_deadline).await;
    }

    /// Saves an item's outcome; a rolling restart's failure pauses or aborts
    /// the operation as it asks.
    async fn record(
        &self,
        run: &Run,
        index: usize,
        outcome: Outcome,
        ending: &mut Option<(FleetState, String)>,
    ) -> Result<(), Fenced> {
        let failed = matches!(outcome, Outcome::Failed(_));
        let message = match outcome {
            Outcome::Done(message) | Outcome::Failed(message) => message,
        };
        run.update(index, |item| {
            item.state = if failed {
                ItemState::Failed
            } else {
                ItemState::Done
            };
            item.message = message.clone();
            item.finished_at = Some(now());
        })
        .await?;
        let params = run.params().await;
        let Some(on_failure) = params.on_failure() else {
            return Ok(());
        };
        if !failed {
            return Ok(());
        }
        let workload = run
            .item(index)
            .await
            .map(|item| item.workload_id.to_string())
            .unwrap_or_default();
        match on_failure {
            FailurePolicy::Abort => {
                let why = format!("aborted: workload {workload}: {message}");
                run.operation.lock().await.message = why.clone();
                *ending = Some((FleetState::Failed, why));
                run.save().await
            }
            FailurePolicy::Pause => {
                let why = format!(
                    "paused: workload {workload}: {message}; resume or cancel the operation"
                );
                let id = {
                    let mut operation = run.operation.lock().await;
                    operation.message = why;
                    operation.id.clone()
                };
                run.save().await?;
                if let Err(error) = self
                    .inner
                    .store
                    .set_operation_state(&id, &[FleetState::Running], FleetState::Paused)
                    .await
                {
                    tracing::warn!(%error, operation = %id, "pausing the operation failed");
                }
                Ok(())
            }
        }
    }

    /// A drain also moves the workloads placed on the node after it began.
    async fn pick_up_newcomers(&self, run: &Run) -> Result<(), Fenced> {
        let FleetParams::Drain { node_id, .. } = run.params().await else {
            return Ok(());
        };
        let Ok(live) = self.inner.store.live_workloads_on(&node_id).await else {
            return Ok(());
        };
        let known: HashSet<WorkloadId> = {
            let operation = run.operation.lock().await;
            operation
                .items
                .iter()
                .flat_map(|item| [Some(item.workload_id.clone()), item.replacement_id.clone()])
                .flatten()
                .collect()
        };
        let new: Vec<_> = live
            .into_iter()
            .filter(|workload| !known.contains(&workload.id))
            .collect();
        let added = self.items(&new).await;
        if added.is_empty() {
            return Ok(());
        }
        run.operation.lock().await.items.extend(added);
        run.save().await
    }

    async fn carry_out(&self, run: &Run, index: usize) -> Result<Outcome, Fenced> {
        match run.params().await {
            FleetParams::Drain { .. } => self.move_off(run, index).await,
            FleetParams::RollingRestart { .. } => self.restart(run, index).await,
            FleetParams::Rollout { .. } => self.roll(run, index).await,
        }
    }

    /// One drain item: replacement first, then the old workload stops.
    pub(super) async fn move_off(&self, run: &Run, index: usize) -> Result<Outcome, Fenced> {
        let Some(item) = run.item(index).await else {
            return Ok(Outcome::Done(String::new()));
        };
        let params = run.params().await;
        let store = &self.inner.store;
        let control = &self.inner.control;
        let old = match store.get_workload(&item.workload_id).await {
            Ok(Some(old)) => old,
            Ok(None) => return Ok(Outcome::Done("deleted meanwhile: nothing to move".into())),
            Err(error) => return Ok(Outcome::Failed(format!("reading it failed: {error}"))),
        };
        let old_live = !old.stage.is_terminal() || old.next_restart_at.is_some();
        if !old_live && item.replacement_id.is_none() {
            return Ok(Outcome::Done(format!(
                "{} meanwhile: nothing to move",
                old.stage.as_str()
            )));
        }
        let replacement_id = match item.replacement_id.clone() {
            Some(id) => id,
            None => {
                let replacement = match self
                    .inner
                    .orchestrator
                    .create_workload(&item.deployment_id)
                    .await
                {
                    Ok(replacement) => replacement,
                    Err(error) => {
                        return Ok(Outcome::Failed(format!(
                            "creating its replacement failed: {error}"
                        )));
                    }
                };
                let id = replacement.id.clone();
                run.update(index, |item| {
                    item.state = ItemState::Active;
                    item.started_at = Some(now());
                    item.replacement_id = Some(id.clone());
                    item.message = format!("starting its replacement {id}");
                })
                .await?;
                id
            }
        };
        let replacement = match store.get_workload(&replacement_id).await {
            Ok(Some(replacement)) => replacement,
            Ok(None) => {
                return Ok(Outcome::Failed(format!(
                    "its replacement {replacement_id} was deleted"
                )));
            }
            Err(error) => return Ok(Outcome::Failed(format!("reading it failed: {error}"))),
        };
        let never_started = replacement.stage == Stage::Pending
            && replacement.node_id.is_none()
            && replacement.next_restart_at.is_none();
        if never_started && let Err(status) = control.start(&replacement_id).await {
            let now_stage = store
                .get_workload(&replacement_id)
                .await
                .ok()
                .flatten()
                .map(|workload| workload.stage);
            if now_stage == Some(Stage::Pending) || now_stage == Some(Stage::Failed) {
                self.discard(&replacement_id).await;
                return Ok(Outcome::Failed(format!(
                    "its replacement could not start: {}",
                    status.message()
                )));
            }
        }
        if let Err(why) = self
            .wait_ready(
                &replacement_id,
                0,
                params.min_healthy(),
                params.healthy_deadline(),
            )
            .await
        {
            self.discard(&replacement_id).await;
            return Ok(Outcome::Failed(format!(
                "its replacement {replacement_id} {why}"
            )));
        }
        let on = self.node_name_of(&replacement_id).await;
        run.update(index, |item| {
            item.message = format!(
                "replacement {replacement_id} ready on node {on}; stopping the old workload"
            );
        })
        .await?;
        if let Err(status) = control.stop(&item.workload_id).await {
            let still_live = store
                .get_workload(&item.workload_id)
                .await
                .ok()
                .flatten()
                .is_some_and(|old| !old.stage.is_terminal());
            if still_live {
                return Ok(Outcome::Failed(format!(
                    "its replacement {replacement_id} runs on node {on}, but stopping it failed: {}",
                    status.message()
                )));
            }
        }
        let limit = Duration::from_millis(item.grace_ms) + STOP_SLACK;
        if let Err(why) = self.wait_stopped(&item.workload_id, limit).await {
            return Ok(Outcome::Failed(format!(
                "its replacement {replacement_id} runs on node {on}, but it {why}"
            )));
        }
        Ok(Outcome::Done(format!(
            "moved: replaced by workload {replacement_id} on node {on}, and stopped"
        )))
    }

    /// One rolling-restart item.
    pub(super) async fn restart(&self, run: &Run, index: usize) -> Result<Outcome, Fenced> {
        let Some(item) = run.item(index).await else {
            return Ok(Outcome::Done(String::new()));
        };
        let params = run.params().await;
        let store = &self.inner.store;
        let workload = match store.get_workload(&item.workload_id).await {
            Ok(Some(workload)) => workload,
            Ok(None) => return Ok(Outcome::Done("deleted meanwhile: not restarted".into())),
            Err(error) => return Ok(Outcome::Failed(format!("reading it failed: {error}"))),
        };
        let (from_generation, restart_now) = if item.state == ItemState::Active {
            // Taken over while under way: restart again only if nothing
            // happened to it since the restart was recorded.
            let untouched = workload.generation == item.from_generation
                && workload.revision == item.from_revision;
            (item.from_generation, untouched)
        } else {
            if workload.stage != Stage::Running {
                return Ok(Outcome::Done(format!(
                    "{} meanwhile: not restarted",
                    workload.stage.as_str()
                )));
            }
            let (generation, revision) = (workload.generation, workload.revision);
            run.update(index, |item| {
                item.state = ItemState::Active;
                item.started_at = Some(now());
                item.from_generation = generation;
                item.from_revision = revision;
                item.message = format!("restarting generation {generation}");
            })
            .await?;
            (generation, true)
        };
        if restart_now && let Err(status) = self.inner.control.restart(&item.workload_id).await {
            let moved_on = store
                .get_workload(&item.workload_id)
                .await
                .ok()
                .flatten()
                .is_some_and(|workload| workload.generation > from_generation);
            if !moved_on {
                return Ok(Outcome::Failed(format!(
                    "the restart was refused: {}",
                    status.message()
                )));
            }
        }
        match self
            .wait_ready(
                &item.workload_id,
                from_generation,
                params.min_healthy(),
                params.healthy_deadline(),
            )
            .await
        {
            Ok(generation) => Ok(Outcome::Done(format!(
                "restarted: generation {generation} ready"
            ))),
            Err(why) => Ok(Outcome::Failed(format!("it {why}"))),
        }
    }

    /// Waits until a generation after `after_generation` has been running and
    /// not unhealthy for `min_healthy`; its generation, or why not.
    async fn wait_ready(
        &self,
        id: &WorkloadId,
        after_generation: u64,
        min_healthy: Duration,
        limit: Duration,
    ) -> Result<u64, String> {
        let began = Instant::now();
        let mut ready_since: Option<Instant> = None;
        loop {
            let workload = match self.inner.store.get_workload(id).await {
                Ok(Some(workload)) => workload,
                Ok(None) => return Err("was deleted".to_owned()),
                Err(error) => {
                    tracing::warn!(%error, "reading a workload failed");
                    tokio::time::sleep(TICK).await;
                    continue;
                }
            };
            let newer = workload.generation > after_generation;
            let ready =
                newer && workload.stage == Stage::Running && workload.health != Health::Unhealthy;
            if ready {
                let since = *ready_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= min_healthy {
                    return Ok(workload.generation);
                }
            } else {
                ready_since = None;
                let over = workload.stage.is_terminal() && workload.next_restart_at.is_none();
                if newer && over {
                    return Err(match &workload.error {
                        Some(error) => format!("{}: {error}", workload.stage.as_str()),
                        None => workload.stage.as_str().to_owned(),
                    });
                }
            }
            if began.elapsed() >= limit {
                return Err(format!(
                    "was not ready for {}s within {}s (it is {}{})",
                    min_healthy.as_secs(),
                    limit.as_secs(),
                    workload.stage.as_str(),
                    if workload.health == Health::Unhealthy {
                        ", unhealthy"
                    } else {
                        ""
                    }
                ));
            }
            tokio::time::sleep(TICK).await;
        }
    }

    async fn wait_stopped(&self, id: &WorkloadId, limit: Duration) -> Result<(), String> {
        let began = Instant::now();
        loop {
            match self.inner.store.get_workload(id).await {
                Ok(Some(workload)) if workload.stage.is_terminal() => return Ok(()),
                Ok(None) => return Ok(()),
                Ok(Some(workload)) if began.elapsed() >= limit => {
                    return Err(format!(
                        "did not stop within {}s (it is {})",
                        limit.as_secs(),
                        workload.stage.as_str()
                    ));
                }
                _ => tokio::time::sleep(TICK).await,
            }
        }
    }

    /// Stops and removes a replacement that did not work out.
    async fn discard(&self, id: &WorkloadId) {
        if let Err(status) = self.inner.control.delete(id).await {
            tracing::warn!(workload_id = %id, error = %status.message(), "removing a failed replacement failed");
        }
    }

    async fn node_name_of(&self, id: &WorkloadId) -> String {
        let store = &self.inner.store;
        let Ok(Some(workload)) = store.get_workload(id).await else {
            return "?".to_owned();
        };
        let Some(node) = workload.node_id else {
            return "?".to_owned();
        };
        match store.node(node.as_str()).await {
            Ok(Some(node)) => node.registration.name,
            _ => node.to_string(),
        }
    }

    /// Ends the operation: the items not done are skipped, a drain leaves its
    /// node drained (or paused, when not everything moved), and the final
    /// state and message are saved.
    async fn finish(&self, run: &Run, ending: Option<(FleetState, String)>, past_deadline: bool) {
        let reason = match &ending {
            Some((_, why)) => why.clone(),
            None if past_deadline => "the deadline passed".to_owned(),
            None => String::new(),
        };
        {
            let mut operation = run.operation.lock().await;
            for item in operation
                .items
                .iter_mut()
                .filter(|item| !item.state.is_over())
            {
                item.state = ItemState::Skipped;
                item.message = format!("not done: {reason}");
                item.finished_at = Some(now());
            }
        }
        let params = run.params().await;
        let (state, message) = match params {
            FleetParams::Drain {
                node_id,
                node_name,
                force,
                ..
            } => {
                self.finish_drain(
                    run,
                    &node_id,
                    &node_name,
                    force,
                    ending.as_ref().map(|e| e.0),
                )
                .await
            }
            FleetParams::RollingRestart { .. } | FleetParams::Rollout { .. } => {
                let operation = run.operation.lock().await;
                let total = operation.items.len();
                let done = count(&operation, ItemState::Done);
                let failed: Vec<String> = operation
                    .items
                    .iter()
                    .filter(|item| item.state == ItemState::Failed)
                    .map(|item| format!("{}: {}", item.workload_id, item.message))
                    .collect();
                match ending {
                    Some((FleetState::Cancelled, _)) => (
                        FleetState::Cancelled,
                        format!("cancelled: restarted {done} of {total} workloads"),
                    ),
                    Some((state, why)) => (state, why),
                    None if !failed.is_empty() => (
                        FleetState::Failed,
                        format!(
                            "{} of {total} workloads did not come back ready: {}",
                            failed.len(),
                            failed.join("; ")
                        ),
                    ),
                    None if done < total => (
                        FleetState::Failed,
                        format!("{reason}: restarted {done} of {total} workloads"),
                    ),
                    None => (
                        FleetState::Succeeded,
                        format!("restarted {total} workloads"),
                    ),
                }
            }
        };
        let operation = {
            let mut operation = run.operation.lock().await;
            operation.message = message.clone();
            operation.finished_at = Some(now());
            operation.updated_at = now();
            operation.clone()
        };
        let from = [
            FleetState::Running,
            FleetState::Paused,
            FleetState::Cancelled,
        ];
        match self
            .inner
            .store
            .save_operation(&operation, Some((&from, state)))
            .await
        {
            Ok(true) => {
                tracing::info!(operation = %operation.id, state = state.as_str(), "{message}")
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, operation = %operation.id, "ending a fleet operation failed")
            }
        }
    }

    async fn finish_drain(
        &self,
        run: &Run,
        node_id: &crate::domain::NodeId,
        node_name: &str,
        force: bool,
        ending: Option<FleetState>,
    ) -> (FleetState, String) {
        let store = &self.inner.store;
        let (total, moved) = {
            let operation = run.operation.lock().await;
            (operation.items.len(), count(&operation, ItemState::Done))
        };
        if ending == Some(FleetState::Cancelled) {
            let _ = store
                .set_node_scheduling_if(node_id, Scheduling::Draining, Scheduling::Paused)
                .await;
            return (
                FleetState::Cancelled,
                format!(
                    "cancelled: moved {moved} of {total} workloads; node {node_name} stays paused"
                ),
            );
        }
        // What is still live there: not moved, or placed there meanwhile.
        let left: Vec<WorkloadId> = match store.live_workloads_on(node_id).await {
            Ok(live) => live.into_iter().map(|workload| workload.id).collect(),
            Err(error) => {
                tracing::warn!(%error, "listing the drained node's workloads failed");
                Vec::new()
            }
        };
        if left.is_empty() || force {
            let mut stopped = 0;
            for id in &left {
                match self.inner.control.stop(id).await {
                    Ok(()) => stopped += 1,
                    Err(status) => {
                        tracing::warn!(workload_id = %id, error = %status.message(), "stopping a workload that could not move failed")
                    }
                }
                let mut operation = run.operation.lock().await;
                if let Some(item) = operation
                    .items
                    .iter_mut()
                    .find(|item| &item.workload_id == id)
                {
                    item.message = format!("{}; stopped (force)", item.message);
                }
            }
            let _ = store
                .set_node_scheduling_if(node_id, Scheduling::Draining, Scheduling::Drained)
                .await;
            let forced = if left.is_empty() {
                String::new()
            } else {
                format!(", and stopped {stopped} that could not move (force)")
            };
            return (
                FleetState::Succeeded,
                format!("drained node {node_name}: moved {moved} workloads{forced}"),
            );
        }
        let _ = store
            .set_node_scheduling_if(node_id, Scheduling::Draining, Scheduling::Paused)
            .await;
        let reasons: Vec<String> = {
            let operation = run.operation.lock().await;
            operation
                .items
                .iter()
                .filter(|item| left.contains(&item.workload_id))
                .map(|item| format!("{}: {}", item.workload_id, item.message))
                .collect()
        };
        (
            FleetState::Failed,
            format!(
                "could not move {} of {total} workloads ({}); node {node_name} stays paused: resume it, or drain again with force to stop them",
                left.len(),
                reasons.join("; ")
            ),
        )
    }
}

fn count(operation: &FleetOperation, state: ItemState) -> usize {
    operation
        .items
        .iter()
        .filter(|item| item.state == state)
        .count()
}
