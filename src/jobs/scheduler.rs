//! The scheduler: every few seconds it fails the runs whose instance died and starts the
//! synchronisations that schedules say are due. Every `roster serve` runs one (unless
//! `--no-scheduler`), and so does `roster worker`; any number of them may share a database:
//! an occurrence is claimed by compare-and-set on the schedule's next run time, and a run by
//! the profile's lease, so each due run starts exactly once.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::db::models::{schedules, sync_runs};
use crate::sync::{self, Outcome, SyncContext, SyncError, Trigger};

/// What one round did; the handles finish with the runs it started.
#[derive(Default)]
pub struct Round {
    pub abandoned: usize,
    pub started: Vec<tokio::task::JoinHandle<Outcome>>,
    /// Due schedules whose profile was already synchronising (their occurrence is skipped).
    pub busy: usize,
}

pub async fn run_once(ctx: &SyncContext, now: DateTime<Utc>) -> anyhow::Result<Round> {
    let (at, lease) = (now.timestamp(), ctx.lease_seconds);
    let (abandoned, due) = ctx
        .db
        .run(move |c| {
            let abandoned = sync_runs::fail_abandoned(c, at, lease)?;
            Ok::<_, anyhow::Error>((abandoned, schedules::due(c, at)?))
        })
        .await?;
    if abandoned > 0 {
        tracing::warn!(abandoned, "runs whose instance stopped were marked failed");
    }
    let mut round = Round {
        abandoned,
        ..Round::default()
    };
    for schedule in due {
        let (Some(when), Some(due_at)) = (schedule.when(), schedule.next_run_at) else {
            tracing::warn!(schedule = schedule.id.0, "schedule cannot be read: skipped");
            continue;
        };
        let anchor = DateTime::from_timestamp(due_at, 0);
        let next = when.next_after(now, anchor).timestamp();
        let id = schedule.id;
        let claimed = ctx
            .db
            .run(move |c| schedules::claim(c, id, due_at, next, at).map_err(anyhow::Error::from))
            .await?;
        if !claimed {
            continue; // another scheduler took this occurrence
        }
        let started_by = format!("schedule {id}");
        match sync::start(
            ctx,
            schedule.profile_id,
            Trigger::Schedule,
            &started_by,
            false,
        )
        .await
        {
            Ok(started) => {
                let run_id = started.run_id;
                ctx.db
                    .run(move |c| schedules::record_run(c, id, run_id).map_err(anyhow::Error::from))
                    .await?;
                tracing::info!(
                    schedule = id.0,
                    run_id = run_id.0,
                    "scheduled synchronisation started"
                );
                let ctx = ctx.clone();
                round.started.push(tokio::spawn(
                    async move { sync::execute(&ctx, started).await },
                ));
            }
            Err(SyncError::Busy) => {
                tracing::info!(
                    schedule = id.0,
                    "profile already synchronising: occurrence skipped"
                );
                round.busy += 1;
            }
            Err(e) => tracing::warn!(schedule = id.0, error = %e, "scheduled run not started"),
        }
    }
    Ok(round)
}

/// Runs rounds every `every` until `shutdown` completes. Runs already started carry on
/// in the runtime; if the process ends with them, their leases expire.
pub async fn run(ctx: SyncContext, every: Duration, shutdown: impl Future<Output = ()>) {
    let rounds = async {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = run_once(&ctx, Utc::now()).await {
                tracing::warn!(error = %e, "scheduler round failed; trying again next round");
            }
        }
    };
    tokio::select! {
        _ = rounds => {}
        _ = shutdown => {}
    }
}
