//! The status a route should have: a pure function of the route, its validation and its
//! conflicts, so that it is tested without a cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::api::TunnelRouteStatus;

/// What the controller found about one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    /// `Err(message)` when the route is invalid.
    pub valid: Result<(), String>,
    /// Names (`namespace/name`) of routes it conflicts with.
    pub conflicts_with: Vec<String>,
}

/// The status for `findings`, keeping each condition's `lastTransitionTime` from `current` when
/// its status did not change.
pub fn desired(
    findings: &Findings,
    generation: Option<i64>,
    current: Option<&TunnelRouteStatus>,
    now: Time,
) -> TunnelRouteStatus {
    let previous =
        |type_: &str| current.and_then(|s| s.conditions.iter().find(|c| c.type_ == type_).cloned());
    let condition = |type_: &str, status: bool, reason: &str, message: String| {
        let status = if status { "True" } else { "False" }.to_owned();
        let last_transition_time = match previous(type_) {
            Some(c) if c.status == status => c.last_transition_time,
            _ => now.clone(),
        };
        Condition {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message,
            observed_generation: generation,
            last_transition_time,
        }
    };
    let accepted = match &findings.valid {
        Ok(()) => condition("Accepted", true, "Valid", "the route is in force".into()),
        Err(message) => condition("Accepted", false, "Invalid", message.clone()),
    };
    let conflicted = if findings.conflicts_with.is_empty() {
        condition(
            "Conflicted",
            false,
            "NoConflict",
            "no conflicting route".into(),
        )
    } else {
        condition(
            "Conflicted",
            true,
            "OppositeActionAtEqualPriority",
            format!(
                "same priority, overlapping clients and destinations, opposite action: {} (Deny wins)",
                findings.conflicts_with.join(", ")
            ),
        )
    };
    TunnelRouteStatus {
        observed_generation: generation,
        conditions: vec![accepted, conflicted],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn valid_invalid_and_conflicted() {
        let ok = Findings {
            valid: Ok(()),
            conflicts_with: vec![],
        };
        let s = desired(&ok, Some(3), None, at(10));
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(
            (
                s.conditions[0].status.as_str(),
                s.conditions[0].reason.as_str()
            ),
            ("True", "Valid")
        );
        assert_eq!(s.conditions[1].status, "False");

        let bad = Findings {
            valid: Err("spec.destinations[0].cidr: bad".into()),
            conflicts_with: vec![],
        };
        let s = desired(&bad, Some(1), None, at(10));
        assert_eq!(s.conditions[0].status, "False");
        assert!(s.conditions[0].message.contains("cidr"));

        let clash = Findings {
            valid: Ok(()),
            conflicts_with: vec!["shop/deny".into()],
        };
        let s = desired(&clash, Some(1), None, at(10));
        assert_eq!(s.conditions[1].status, "True");
        assert!(s.conditions[1].message.contains("shop/deny"));
    }

    #[test]
    fn transition_times_move_only_on_change() {
        let ok = Findings {
            valid: Ok(()),
            conflicts_with: vec![],
        };
        let first = desired(&ok, Some(1), None, at(10));
        let again = desired(&ok, Some(2), Some(&first), at(20));
        assert_eq!(again.conditions[0].last_transition_time, at(10));
        let bad = Findings {
            valid: Err("x".into()),
            conflicts_with: vec![],
        };
        let changed = desired(&bad, Some(3), Some(&again), at(30));
        assert_eq!(changed.conditions[0].last_transition_time, at(30));
        assert_eq!(changed.conditions[1].last_transition_time, at(10));
    }
}
