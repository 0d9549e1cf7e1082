//! `warren init`: installs the capture rules (being written; see issue 3).

use clap::Args;

/// `warren init` options.
#[derive(Debug, Args)]
pub struct InitArgs {}

/// Applies the capture rules.
pub fn run(_args: &InitArgs) -> anyhow::Result<()> {
    anyhow::bail!("warren init is not built yet")
}
