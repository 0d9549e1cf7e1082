//! The harness itself: clusters started side by side do not collide, `stop` (drop) leaves no
//! process and no data dir behind, and a cluster whose watched process dies tears itself down.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use warren_e2e::TestCluster;

/// Pids of the etcd and kube-apiserver of a cluster, read from its data dir.
fn pids(dir: &Path) -> Result<Vec<u32>> {
    ["etcd.pid", "apiserver.pid"]
        .iter()
        .map(|f| {
            let path = dir.join(f);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            text.trim()
                .parse()
                .with_context(|| format!("parsing {}", path.display()))
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

/// Waits (bounded) until none of `pids` runs and `dir` is gone.
fn wait_gone(pids: &[u32], dir: &Path, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !pids.iter().any(|p| alive(*p)) && !dir.exists() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "after {within:?}: alive {:?}, dir exists: {}",
        pids.iter().filter(|p| alive(**p)).collect::<Vec<_>>(),
        dir.exists()
    )
}

#[tokio::test]
async fn clusters_side_by_side_stop_cleanly_and_die_with_their_watched_process() -> Result<()> {
    let a = TestCluster::start()?;
    let b = TestCluster::start()?;
    assert_ne!(a.server(), b.server());
    assert_ne!(a.dir(), b.dir());
    for cluster in [&a, &b] {
        let client = cluster.client().await?;
        let ns = cluster.namespace(&client, "harness").await?;
        assert!(
            cluster
                .kubectl(&["get", "namespace", &ns, "-o", "name"])?
                .contains(&ns)
        );
    }

    let (a_pids, a_dir) = (pids(a.dir())?, a.dir().to_owned());
    drop(a);
    wait_gone(&a_pids, &a_dir, Duration::from_secs(5)).context("after drop")?;
    // b is unaffected by a's teardown.
    b.kubectl(&["get", "--raw", "/readyz"])?;
    drop(b);

    // A cluster watching a process that is killed goes away by itself.
    let mut parent = Command::new("sleep").arg("300").spawn()?;
    let dir = std::env::temp_dir().join(format!("warren-e2e-watch-{}", std::process::id()));
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/cluster.sh"))
        .args(["start", "--dir"])
        .arg(&dir)
        .args(["--watch-pid", &parent.id().to_string()])
        .env("WARREN_E2E_BIN", warren_e2e::bin_dir())
        .output()?;
    if !out.status.success() {
        let _ = parent.kill();
        bail!(
            "cluster.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let watched = pids(&dir)?;
    assert!(watched.iter().all(|p| alive(*p)));
    parent.kill()?;
    parent.wait()?;
    wait_gone(&watched, &dir, Duration::from_secs(20)).context("after the watched process died")
}
