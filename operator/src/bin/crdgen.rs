//! Prints Warren's CustomResourceDefinitions as YAML.
fn main() {}
