//! A running control plane (etcd + kube-apiserver) started through `e2e/cluster.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::Error;
use crate::paths::{bin_dir, binary, e2e_dir};
use crate::process::{Output, run};

/// Start-up is bounded by the script (180 s for /readyz); this is the outer bound on top.
const START_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound for one kubectl or helm invocation.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// A control plane owned by this process; dropping it stops it and deletes its data dir.
#[derive(Debug)]
pub struct TestCluster {
    dir: PathBuf,
    kubeconfig: PathBuf,
    server: String,
}

static SHARED: OnceLock<Result<TestCluster, String>> = OnceLock::new();

/// The control plane shared by all tests of this test binary, started on first use.
///
/// A static is never dropped: the cluster is torn down by `cluster.sh`'s supervisor once the
/// test process has exited. A failed start is remembered, so every test reports it.
pub fn shared() -> Result<&'static TestCluster, Error> {
    SHARED
        .get_or_init(|| TestCluster::start().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|message| Error::Shared(message.clone()))
}

static STARTED: AtomicU32 = AtomicU32::new(0);

/// A name unique within this machine for a while: pid, a counter and the clock.
fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{}-{}-{:x}",
        std::process::id(),
        STARTED.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

// === impl TestCluster ===

impl TestCluster {
    /// Starts etcd and kube-apiserver on free loopback ports in a fresh data dir and waits for
    /// `/readyz`. The cluster dies with this process even if it is killed.
    pub fn start() -> Result<TestCluster, Error> {
        for exe in ["etcd", "kube-apiserver", "kubectl"] {
            binary(exe)?;
        }
        let dir = std::env::temp_dir().join(format!("warren-e2e-{}", unique_suffix()));
        let mut cmd = Command::new("bash");
        cmd.arg(e2e_dir().join("cluster.sh"))
            .arg("start")
            .arg("--dir")
            .arg(&dir)
            .arg("--watch-pid")
            .arg(std::process::id().to_string())
            .env("WARREN_E2E_BIN", bin_dir());
        run(cmd, None, START_TIMEOUT).map_err(|e| match e {
            Error::Command { status, stderr, .. } => Error::Start(format!("{status}\n{stderr}")),
            other => other,
        })?;
        let server = std::fs::read_to_string(dir.join("server"))
            .map_err(|e| Error::io(format!("reading {}/server", dir.display()), e))?
            .trim()
            .to_owned();
        Ok(TestCluster {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            server,
        })
    }

    /// The admin kubeconfig (client certificate in group `system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server URL, `https://127.0.0.1:PORT`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The data dir: PKI (`pki/ca.crt`, ...), logs (`apiserver.log`, `etcd.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A kube client logged in as the admin. Make one per test: a client is tied to the tokio
    /// runtime it was made on, and each `#[tokio::test]` has its own.
    pub async fn client(&self) -> Result<Client, Error> {
        let client_err = |source: Box<dyn std::error::Error + Send + Sync>| Error::Client {
            path: self.kubeconfig.clone(),
            source,
        };
        let kubeconfig =
            Kubeconfig::read_from(&self.kubeconfig).map_err(|e| client_err(Box::new(e)))?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| client_err(Box::new(e)))?;
        Client::try_from(config).map_err(|e| client_err(Box::new(e)))
    }

    /// Creates a fresh namespace `<prefix>-<unique>` and its `default` ServiceAccount, which
    /// no controller-manager creates here. Namespaces are not deleted: without the namespace
    /// controller they would stay Terminating; the whole cluster goes away instead.
    pub async fn namespace(&self, client: &Client, prefix: &str) -> Result<String, Error> {
        let name = format!("{prefix}-{}", unique_suffix());
        let kube_err = |context: String| move |source: kube::Error| Error::Kube { context, source };
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([("warren.dev/e2e".to_owned(), "true".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .map_err(kube_err(format!("creating namespace {name}")))?;
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some("default".to_owned()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        Api::<ServiceAccount>::namespaced(client.clone(), &name)
            .create(&PostParams::default(), &sa)
            .await
            .map_err(kube_err(format!("creating {name}/default ServiceAccount")))?;
        Ok(name)
    }

    /// Runs the built kubectl against this cluster; returns its stdout, or an error with
    /// everything it printed when it exits non-zero.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, Error> {
        self.kubectl_stdin(args, None)
    }

    /// [`TestCluster::kubectl`] with `stdin` fed to it (e.g. `apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<String, Error> {
        let mut cmd = Command::new(binary("kubectl")?);
        cmd.env("KUBECACHEDIR", self.dir.join("kube-cache"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args);
        Ok(run(cmd, stdin, TOOL_TIMEOUT)?.stdout)
    }

    /// Runs the built helm against this cluster, its caches and config kept in the data dir.
    pub fn helm(&self, args: &[&str]) -> Result<String, Error> {
        let mut cmd = Command::new(binary("helm")?);
        let home = self.dir.join("helm");
        // Discovery caches go to the data dir too, not to ~/.kube/cache.
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("kube-cache"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .args(args);
        let Output { stdout, .. } = run(cmd, None, TOOL_TIMEOUT)?;
        Ok(stdout)
    }

    /// Stops the cluster and deletes its data dir (also done on drop).
    pub fn stop(&self) -> Result<(), Error> {
        let mut cmd = Command::new("bash");
        cmd.arg(e2e_dir().join("cluster.sh"))
            .arg("stop")
            .arg(&self.dir);
        run(cmd, None, Duration::from_secs(60)).map(drop)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!(
                "warren-e2e: stopping the cluster in {}: {e}",
                self.dir.display()
            );
        }
    }
}
