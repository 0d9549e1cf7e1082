//! The open-files limit, and the connection limit that keeps a tunnel inside it.
//!
//! Every tunneled connection holds two sockets. With the usual soft limit of 1,024 open files a
//! busy sidecar would run out after about 500 connections and fail accepts with `EMFILE`, so the
//! process raises its soft limit to the hard limit at start (as Go's runtime does for every Go
//! program), and by default accepts no more connections than the raised limit can hold: past it,
//! new connections wait in the listen backlog instead of being accepted and failed.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Descriptors kept aside for everything that is not a tunnel: listeners, the admin endpoint,
/// the Kubernetes watch, certificate and policy files, the runtime's own.
const RESERVED_FILES: u64 = 64;

/// The usual soft limit, assumed should the real one be unreadable.
const ASSUMED_FILES: u64 = 1024;

/// Sockets per tunneled connection: the accepted one and the one to the next hop.
const FILES_PER_CONNECTION: u64 = 2;

/// Raises the soft open-files limit to the hard limit; returns the soft limit now in force.
pub fn raise_open_files() -> u64 {
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-files limit; assuming {ASSUMED_FILES}");
            return ASSUMED_FILES;
        }
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            tracing::debug!(from = soft, to = hard, "raised the open-files limit");
            hard
        }
        Err(error) => {
            tracing::warn!(%error, soft, hard, "cannot raise the open-files limit");
            soft
        }
    }
}

/// The most connections `open_files` descriptors can hold, never less than one.
pub fn max_connections_for(open_files: u64) -> usize {
    let connections = open_files.saturating_sub(RESERVED_FILES) / FILES_PER_CONNECTION;
    usize::try_from(connections.max(1)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_limit_leaves_room_for_the_process() {
        assert_eq!(max_connections_for(1024), 480);
        assert_eq!(max_connections_for(1_048_576), 524_256);
        // A limit too small for the reserve still admits one connection rather than none.
        assert_eq!(max_connections_for(10), 1);
        assert_eq!(
            max_connections_for(u64::MAX),
            usize::try_from((u64::MAX - 64) / 2).unwrap()
        );
    }

    #[test]
    fn raising_reaches_the_hard_limit() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(raise_open_files(), hard);
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap().0, hard);
    }
}
