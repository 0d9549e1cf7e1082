//! Leader election through a `coordination.k8s.io/v1` Lease, so that of several replicas only one
//! reconciles and writes status.
//!
//! Every `renew_every` the candidate reads the Lease: it takes it when absent, released or expired
//! (`renewTime + leaseDurationSeconds` in the past), renews it when it holds it, and otherwise
//! waits. Every write carries the `resourceVersion` it read, so two candidates can never both
//! win the same round: the API server rejects the second write with a conflict.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;
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
    /// How often the holder renews and others check.
    pub renew_every: Duration,
}

/// Campaigns for the Lease until `shutdown`; the receiver says whether this replica leads.
/// On shutdown a held Lease is released so another replica takes over at once.
pub fn campaign(
    client: Client,
    config: LeaseConfig,
    shutdown: CancellationToken,
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    tokio::spawn(async move {
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            match try_acquire(&api, &config).await {
                Ok(true) => last_renewal = Some(tokio::time::Instant::now()),
                Ok(false) => last_renewal = None,
                Err(error) => tracing::warn!(%error, lease = %config.name, "lease round failed"),
            }
            // A holder that cannot renew stops leading before its Lease can expire elsewhere.
            let leading = last_renewal.is_some_and(|t| t.elapsed() < config.duration);
            if *tx.borrow() != leading {
                tracing::info!(leading, identity = %config.identity, "leadership changed");
                tx.send_replace(leading);
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(config.renew_every) => {}
            }
        }
        if *tx.borrow() {
            if let Err(error) = release(&api, &config).await {
                tracing::warn!(%error, "cannot release the lease");
            }
            tx.send_replace(false);
        }
    });
    rx
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
