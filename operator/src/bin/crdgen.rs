//! Prints Warren's CustomResourceDefinitions as YAML (`make crds` writes them to `crds/`).
use warren_operator::crd_yaml;

fn main() {
    print!("{}", crd_yaml());
}
