//! Where the scripts and the built binaries are.

use std::path::{Path, PathBuf};

use crate::Error;

/// The `e2e/` directory of the source tree (this crate's manifest dir).
pub(crate) fn e2e_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding etcd, kube-apiserver, kubectl and helm: `$WARREN_E2E_BIN`, else
/// `$WARREN_CACHE/e2e/bin`, else `<repo>/.cache/e2e/bin` (the Makefile's default cache).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WARREN_E2E_BIN") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("WARREN_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| e2e_dir().join("../.cache"));
    cache.join("e2e").join("bin")
}

/// The path of one built binary, or [`Error::MissingBinary`] when it has not been built.
pub(crate) fn binary(name: &str) -> Result<PathBuf, Error> {
    let path = bin_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingBinary(path))
    }
}
