//! Waiting for a workload to get somewhere: a stage, health, the end of its
//! run, each bounded by a timeout.

use std::time::Duration;

use futures::StreamExt;
use slipway::v1::{Health, Stage, WatchEventsRequest, Workload};

use crate::{Client, Error, Result, agent::reached};

/// What [`Client::wait_for`] waits for. A [`Stage`] converts into
/// `Condition::Stage`.
///
/// ```
/// use slipway_sdk::{Condition, proto::Stage};
/// let running: Condition = Stage::Running.into();
/// assert_eq!(running, Condition::Stage(Stage::Running));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Condition {
    /// The workload is in this stage. Coming to rest in another terminal stage
    /// first (STOPPED or FAILED with no restart pending) is
    /// [`Error::UnexpectedStage`].
    Stage(Stage),
    /// `RUNNING` and its liveness check passed (`HEALTHY`); resting in a
    /// terminal stage first is [`Error::UnexpectedStage`].
    Healthy,
    /// Its run is over: `STOPPED` or `FAILED`, with no restart pending.
    Terminal,
    /// No operation under way: `RUNNING`, or its run is over with no restart
    /// pending. What an agent waits for after starting something.
    Settled,
}

impl From<Stage> for Condition {
    fn from(stage: Stage) -> Condition {
        Condition::Stage(stage)
    }
}

impl Condition {
    /// Whether `workload` meets the condition: `Ok(Some)` when it does,
    /// `Ok(None)` while it may still, an error when it no longer can.
    ///
    /// ```
    /// use slipway_sdk::{Condition, proto::{Stage, Workload}};
    /// let mut workload = Workload::default();
    /// workload.set_stage(Stage::Stopped);
    /// assert!(Condition::Terminal.check(workload.clone()).unwrap().is_some());
    /// assert!(Condition::Stage(Stage::Running).check(workload).is_err());
    /// ```
    pub fn check(&self, workload: Workload) -> Result<Option<Workload>> {
        let at_rest = matches!(workload.stage(), Stage::Stopped | Stage::Failed)
            && workload.next_restart_at.is_none();
        match self {
            Condition::Stage(stage) => reached(workload, *stage),
            Condition::Healthy => {
                if workload.stage() == Stage::Running && workload.health() == Health::Healthy {
                    Ok(Some(workload))
                } else {
                    reached(workload, Stage::Running).map(|_| None)
                }
            }
            Condition::Terminal => Ok(at_rest.then_some(workload)),
            Condition::Settled => {
                Ok((at_rest || workload.stage() == Stage::Running).then_some(workload))
            }
        }
    }
}

impl Client {
    /// Waits until the workload meets `condition` (checked now, then on each of
    /// its changes) and returns it; [`Error::TimedOut`] after `timeout`, and
    /// [`Error::UnexpectedStage`] when the condition can no longer be met.
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client, id: &str) -> slipway_sdk::Result<()> {
    /// use std::time::Duration;
    /// use slipway_sdk::{Condition, proto::Stage};
    ///
    /// let running = client.wait_for(id, Stage::Running, Duration::from_secs(30)).await?;
    /// let over = client.wait_for(id, Condition::Terminal, Duration::from_secs(60)).await?;
    /// println!("{} then {:?}", running.port, over.stage());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for(
        &self,
        workload_id: &str,
        condition: impl Into<Condition>,
        timeout: Duration,
    ) -> Result<Workload> {
        let condition = condition.into();
        let waiting = self.watch_workload(workload_id, |workload| condition.check(workload));
        tokio::time::timeout(timeout, waiting)
            .await
            .map_err(|_| Error::TimedOut { waited: timeout })?
    }

    /// Waits until `condition` holds for the workload (checked now, then on each
    /// of its changes), for at most `timeout`: [`Error::TimedOut`] after that.
    ///
    /// ```no_run
    /// # async fn example(client: slipway_sdk::Client, id: &str) -> slipway_sdk::Result<()> {
    /// let restarted = client
    ///     .wait_until(id, |workload| workload.generation >= 2, std::time::Duration::from_secs(30))
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_until(
        &self,
        workload_id: &str,
        condition: impl Fn(&Workload) -> bool,
        timeout: Duration,
    ) -> Result<Workload> {
        let waiting = self.watch_workload(workload_id, |workload| {
            Ok(condition(&workload).then_some(workload))
        });
        tokio::time::timeout(timeout, waiting)
            .await
            .map_err(|_| Error::TimedOut { waited: timeout })?
    }

    /// Checks the workload now, then on each of its changes, until `check`
    /// returns a workload (or an error).
    pub(crate) async fn watch_workload(
        &self,
        workload_id: &str,
        check: impl Fn(Workload) -> Result<Option<Workload>>,
    ) -> Result<Workload> {
        let workload = self.get_workload(workload_id).await?;
        let revision = workload.revision;
        if let Some(done) = check(workload)? {
            return Ok(done);
        }
        let mut events = Box::pin(
            self.watch_events(WatchEventsRequest {
                since_revision: revision,
                workload_id: workload_id.to_owned(),
                ..WatchEventsRequest::default()
            })
            .await?,
        );
        while let Some(event) = events.next().await {
            if let Some(snapshot) = event?.workload {
                if let Some(done) = check(snapshot)? {
                    return Ok(done);
                }
            }
        }
        Err(Error::StreamEnded("the event stream ended while waiting"))
    }
}
