//! Warren's data plane.
#![forbid(unsafe_code)]

pub mod cli;
pub mod init;
