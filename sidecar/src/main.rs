//! The `warren` binary.
fn main() {}
