//! The `warren.dev/` annotations a pod or namespace carries to ask for, or tune, injection.

use std::collections::BTreeMap;

use warren_core::capture::{parse_net, parse_ports};

/// `enabled` or `disabled`, on a pod or its namespace; the pod's wins.
pub const INJECT: &str = "warren.dev/inject";
/// Set on every injected pod: the operator version that injected it.
pub const INJECTED: &str = "warren.dev/injected";
/// Never capture these ports (comma-separated ports or ranges `a-b`).
pub const EXCLUDE_PORTS: &str = "warren.dev/exclude-outbound-ports";
/// Never capture connections to these networks (comma-separated CIDRs).
pub const EXCLUDE_CIDRS: &str = "warren.dev/exclude-outbound-cidrs";
/// Only capture these ports.
pub const INCLUDE_PORTS: &str = "warren.dev/include-outbound-ports";
/// Only capture connections to these networks.
pub const INCLUDE_CIDRS: &str = "warren.dev/include-outbound-cidrs";
/// The Secret (in the pod's namespace) holding the workload's `tls.crt`, `tls.key` and `ca.crt`.
pub const IDENTITY_SECRET: &str = "warren.dev/identity-secret";

/// What an `inject` annotation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wish {
    /// `enabled`.
    Enabled,
    /// `disabled`.
    Disabled,
}

/// Reads the `inject` annotation of `owner` ("the pod", "namespace x"), if any.
pub fn inject_wish(
    annotations: Option<&BTreeMap<String, String>>,
    owner: &str,
) -> Result<Option<Wish>, String> {
    match annotations.and_then(|a| a.get(INJECT)).map(String::as_str) {
        None => Ok(None),
        Some("enabled") => Ok(Some(Wish::Enabled)),
        Some("disabled") => Ok(Some(Wish::Disabled)),
        Some(other) => Err(format!(
            "{owner}: annotation {INJECT} must be \"enabled\" or \"disabled\", not {other:?}"
        )),
    }
}

/// The capture overrides of a pod, checked, as `warren init` environment variables.
pub fn capture_env(
    annotations: Option<&BTreeMap<String, String>>,
) -> Result<Vec<(&'static str, String)>, String> {
    let mut env = Vec::new();
    for (annotation, variable, check) in [
        (
            EXCLUDE_PORTS,
            "WARREN_INIT_EXCLUDE_PORTS",
            check_ports as fn(&str) -> Result<(), String>,
        ),
        (EXCLUDE_CIDRS, "WARREN_INIT_EXCLUDE_CIDRS", check_cidrs),
        (INCLUDE_PORTS, "WARREN_INIT_INCLUDE_PORTS", check_ports),
        (INCLUDE_CIDRS, "WARREN_INIT_INCLUDE_CIDRS", check_cidrs),
    ] {
        let Some(value) = annotations.and_then(|a| a.get(annotation)) else {
            continue;
        };
        let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        check(&value).map_err(|e| format!("annotation {annotation}: {e}"))?;
        env.push((variable, value));
    }
    Ok(env)
}

/// Ports or ranges `a-b`, comma-separated, exactly as `warren init` will parse them.
fn check_ports(list: &str) -> Result<(), String> {
    list.split(',')
        .try_for_each(|item| parse_ports(item).map(drop))
}

/// CIDRs or bare addresses, comma-separated, exactly as `warren init` will parse them.
fn check_cidrs(list: &str) -> Result<(), String> {
    list.split(',')
        .try_for_each(|item| parse_net(item).map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn inject_takes_two_words_only() {
        let read = |v: &str| inject_wish(Some(&annotations(&[(INJECT, v)])), "the pod");
        assert_eq!(read("enabled"), Ok(Some(Wish::Enabled)));
        assert_eq!(read("disabled"), Ok(Some(Wish::Disabled)));
        assert_eq!(inject_wish(None, "the pod"), Ok(None));
        let error = read("true").unwrap_err();
        assert!(error.contains("not \"true\""), "{error}");
    }

    #[test]
    fn capture_overrides_become_init_env() {
        let env = capture_env(Some(&annotations(&[
            (EXCLUDE_PORTS, "22, 8000-8100"),
            (INCLUDE_CIDRS, "10.0.0.0/8,fd00::/8,192.168.1.1"),
        ])))
        .unwrap();
        assert_eq!(
            env,
            [
                ("WARREN_INIT_EXCLUDE_PORTS", "22,8000-8100".to_owned()),
                (
                    "WARREN_INIT_INCLUDE_CIDRS",
                    "10.0.0.0/8,fd00::/8,192.168.1.1".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn bad_overrides_are_named() {
        for (annotation, value, expected) in [
            (EXCLUDE_PORTS, "0", "invalid port \"0\""),
            (EXCLUDE_PORTS, "22,70000", "invalid port \"70000\""),
            (INCLUDE_PORTS, "90-80", "runs backwards"),
            (
                EXCLUDE_CIDRS,
                "10.0.0.0/33",
                "invalid address \"10.0.0.0/33\"",
            ),
            (INCLUDE_CIDRS, "", "invalid address \"\""),
        ] {
            let error = capture_env(Some(&annotations(&[(annotation, value)]))).unwrap_err();
            assert!(
                error.contains(annotation) && error.contains(expected),
                "{error}"
            );
        }
    }
}
