//! One operator replica: campaigns for the Lease and runs the controller while it leads.

use std::sync::Arc;

use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::controller;
use crate::leader::{self, LeaseConfig};
use crate::metrics::Metrics;

/// Campaigns for the Lease and runs the controller whenever this replica leads, until
/// `shutdown`; then stops the controller and only afterwards releases the Lease, so that a
/// standby never writes beside this replica's last reconciliation.
pub async fn run(
    client: Client,
    lease: LeaseConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let campaign = leader::campaign(client.clone(), lease);
    let mut leading = campaign.leading();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = leading.wait_for(|l| *l) => if changed.is_err() { break },
        }
        metrics.leader.set(1);
        tracing::info!("leading: starting the controller");
        let mut lost = leading.clone();
        let stop = shutdown.clone();
        controller::run(client.clone(), metrics.clone(), async move {
            tokio::select! {
                () = stop.cancelled() => {}
                _ = lost.wait_for(|l| !*l) => {}
            }
        })
        .await;
        metrics.leader.set(0);
        if shutdown.is_cancelled() {
            break;
        }
        tracing::warn!("lost the lease: controller stopped, campaigning again");
    }
    campaign.resign().await;
}
