//! Errors of the test support: each names the command, file or step that failed.

use std::path::PathBuf;

/// What went wrong while starting, using or stopping a test control plane.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A binary of the control plane has not been built.
    #[error("{} is missing: build the test control plane first with `make e2e-bins` (bash e2e/build.sh)", .0.display())]
    MissingBinary(PathBuf),
    /// `cluster.sh start` failed; its stderr carries the tail of the etcd/apiserver logs.
    #[error("starting the test control plane failed:\n{0}")]
    Start(String),
    /// The shared cluster of this test binary failed to start (the first error, repeated).
    #[error("the shared test control plane is unavailable: {0}")]
    Shared(String),
    /// A program exited unsuccessfully or did not finish in time.
    #[error("`{command}` failed ({status}):\nstdout:\n{stdout}\nstderr:\n{stderr}")]
    Command {
        /// The command line, for the reader.
        command: String,
        /// Exit status, or a note that it was killed after the timeout.
        status: String,
        /// Everything it printed on stdout.
        stdout: String,
        /// Everything it printed on stderr.
        stderr: String,
    },
    /// A local I/O step (spawning, reading a file) failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Reading the kubeconfig or building a client from it failed.
    #[error("building a kube client from {}: {source}", path.display())]
    Client {
        /// The kubeconfig used.
        path: PathBuf,
        /// The underlying error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An API call made by the support code failed.
    #[error("{context}: {source}")]
    Kube {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: kube::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
