//! Support code for Warren's black-box tests: certificates, `warren` processes, echo servers.
//!
//! Tests drive the real `warren` binary (built by `make build` / `cargo build --bins` before
//! `cargo test`), exactly as users run it.
#![forbid(unsafe_code)]

pub mod certs;
pub mod echo;
pub mod netns;
pub mod process;
pub mod tunnel;
