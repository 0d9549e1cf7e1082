//! `crds/` and the chart's copy (`charts/warren/crds/`) must be what the Rust types generate.

#[test]
fn committed_crds_match_the_types() {
    for path in [
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crds/warren.dev_tunnelroutes.yaml"
        ),
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../charts/warren/crds/warren.dev_tunnelroutes.yaml"
        ),
    ] {
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == warren_operator::crd_yaml(),
            "{path} is stale or missing: run `make crds` and commit the result"
        );
    }
}
