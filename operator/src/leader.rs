//! Leader election through a `coordination.k8s.io/v1` Lease, so that of several replicas only one
//! reconciles and writes status.
//!
//! Every `renew_every` the candidate reads the Lease: it takes it when absent, released or expired
//! (`renewTime + leaseDurationSeconds` in the past), renews it when it holds it, and otherwise
//! waits. Every write carries the `resourceVersion` it read, so two candidates can never both
//! win the same round: the API server rejects the second write with a conflict.
//!
//! The holder must also stop before anyone else may start. A write that succeeded at a round
//! that began at `t` wrote a `renewTime` of at least `t`, so others wait until at least
//! `t + duration`; the holder leads only until `t + duration - margin` (a fifth of the duration,
//! for clock skew and for in-flight writes to finish), by a timer of its own, even while a round
//! hangs on an unreachable API server. Rounds are bounded by `renew_every`.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Which Lease, and who is asking.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub duration: Duration,
    /// How often the holder renews and others check; also the bound of one round. Keep it well
    /// under `duration` (a third, say), or the holder loses the lead between renewals.
    pub renew_every: Duration,
}

/// A running campaign.
pub struct Campaign {
    leading: watch::Receiver<bool>,
    resign: CancellationToken,
    task: JoinHandle<()>,
}

// === impl Campaign ===

impl Campaign {
    /// Whether this replica leads, as it changes.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stops campaigning and releases a held Lease, so that another replica takes over at once
    /// instead of after the Lease expires. Call it once the work the Lease guards has stopped.
    pub async fn resign(self) {
        self.resign.cancel();
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "lease campaign task failed");
        }
    }
}

/// Campaigns for the Lease until [`Campaign::resign`].
pub fn campaign(client: Client, config: LeaseConfig) -> Campaign {
    let (tx, leading) = watch::channel(false);
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let resign = CancellationToken::new();
    let stop = resign.clone();
    let margin = config.duration / 5;
    let task = tokio::spawn(async move {
        // Until when this replica may act as the leader.
        let mut valid_until: Option<Instant> = None;
        loop {
            let round = Instant::now();
            let attempt = tokio::time::timeout(config.renew_every, try_acquire(&api, &config));
            let outcome = tokio::select! {
                outcome = attempt => outcome,
                () = stop.cancelled() => break,
            };
            match outcome {
                Ok(Ok(true)) => valid_until = Some(round + config.duration - margin),
                Ok(Ok(false)) => valid_until = None,
                Ok(Err(error)) => {
                    tracing::warn!(%error, lease = %config.name, "lease round failed")
                }
                Err(_) => tracing::warn!(lease = %config.name, "lease round timed out"),
            }
            let next_round = round + config.renew_every;
            loop {
                let lead = valid_until.is_some_and(|t| Instant::now() < t);
                if *tx.borrow() != lead {
                    tracing::info!(leading = lead, identity = %config.identity, "leadership changed");
                    tx.send_replace(lead);
                }
                // Wake for the next round, or earlier when the lead runs out.
                let wake = match valid_until {
                    Some(t) if lead && t < next_round => t,
                    _ => next_round,
                };
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep_until(wake) => {}
                }
                if wake == next_round {
                    break;
                }
            }
            if stop.is_cancelled() {
                break;
            }
        }
        if *tx.borrow() {
            tx.send_replace(false);
            match tokio::time::timeout(config.renew_every, release(&api, &config)).await {
                Ok(Ok(())) => tracing::info!(lease = %config.name, "lease released"),
                Ok(Err(error)) => tracing::warn!(%error, "cannot release the lease"),
                Err(_) => tracing::warn!("releasing the lease timed out"),
            }
        }
    });
    Campaign {
        leading,
        resign,
        task,
    }
}

/// One round: returns whether this replica holds the Lease afterwards.
async fn try_acquire(api: &Api<Lease>, config: &LeaseConfig) -> kube::Result<bool> {
    let now = Timestamp::now();
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                ..Default::default()
            },
            spec: Some(spec(config, now, now, 0)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let current = lease.spec.clone().unwrap_or_default();
    let holder = current.holder_identity.as_deref().unwrap_or("");
    let renewed = current
        .renew_time
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    let duration =
        SignedDuration::from_secs(i64::from(current.lease_duration_seconds.unwrap_or(0)));
    let expired = holder.is_empty() || renewed + duration < now;
    let (acquired, transitions) = match (holder == config.identity, expired) {
        (true, _) => (
            current.acquire_time.map_or(now, |t| t.0),
            current.lease_transitions.unwrap_or(0),
        ),
        (false, true) => (now, current.lease_transitions.unwrap_or(0) + 1),
        (false, false) => return Ok(false),
    };
    lease.spec = Some(spec(config, acquired, now, transitions));
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

fn spec(
    config: &LeaseConfig,
    acquired: Timestamp,
    renewed: Timestamp,
    transitions: i32,
) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(config.duration.as_secs() as i32),
        acquire_time: Some(MicroTime(acquired)),
        renew_time: Some(MicroTime(renewed)),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// Gives the Lease up: no holder, so the next candidate takes it without waiting for expiry.
async fn release(api: &Api<Lease>, config: &LeaseConfig) -> kube::Result<()> {
    let mut lease = api.get(&config.name).await?;
    if let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(&config.identity)
    {
        spec.holder_identity = None;
        api.replace(&config.name, &PostParams::default(), &lease)
            .await?;
    }
    Ok(())
}
