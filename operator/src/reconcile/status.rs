//! Status computation: what the MqttBroker says about itself. Pure functions
//! from what was observed, so every branch is unit-testable.

use k8s_openapi::api::apps::v1::StatefulSet;

use crate::builders::selector_string;
use crate::crd::{condition_types as ct, ConditionStatus, MqttBrokerStatus};
use crate::plan::{BrokerPlan, SpecError};

/// Status after a successful apply. `statefulset` is the object returned by
/// the apply (so its status is as fresh as the API server has it).
pub fn reconciled_status(
    plan: &BrokerPlan,
    statefulset: &StatefulSet,
    previous: Option<&MqttBrokerStatus>,
) -> MqttBrokerStatus {
    let sts_status = statefulset.status.clone().unwrap_or_default();
    let desired = plan.replicas;
    let replicas = sts_status.replicas;
    let ready = sts_status.ready_replicas.unwrap_or(0);
    let updated = sts_status.updated_replicas.unwrap_or(0);
    let sts_current = match (
        sts_status.observed_generation,
        statefulset.metadata.generation,
    ) {
        (Some(observed), Some(generation)) => observed >= generation,
        (None, Some(_)) => false,
        _ => true,
    };
    let gen = plan.generation;

    let mut status = MqttBrokerStatus {
        observed_generation: gen,
        conditions: previous.map(|p| p.conditions.clone()).unwrap_or_default(),
        replicas,
        ready_replicas: ready,
        updated_replicas: updated,
        desired_replicas: desired,
        selector: Some(selector_string(plan)),
        config_hash: Some(plan.config_hash.clone()),
        image: Some(plan.image.clone()),
    };

    let (available, reason, message) = if plan.stopped {
        (
            false,
            "Stopped",
            "clusterOperation.stopped is set; scaled to zero".to_owned(),
        )
    } else if ready >= desired && desired > 0 {
        (
            true,
            "AllReplicasReady",
            format!("{ready}/{desired} brokers ready"),
        )
    } else if ready > 0 {
        (
            true,
            "MinimumReplicasReady",
            format!("{ready}/{desired} brokers ready"),
        )
    } else if desired == 0 {
        (false, "ScaledToZero", "spec.replicas is 0".to_owned())
    } else {
        (
            false,
            "NoReplicasReady",
            format!("0/{desired} brokers ready"),
        )
    };
    status.set_condition(
        previous,
        ct::AVAILABLE,
        ConditionStatus::from_bool(available),
        reason,
        message,
        gen,
    );

    let rolling = !sts_current || updated < desired || ready < desired || replicas != desired;
    let (reason, message) = if rolling {
        (
            "RollingOut",
            format!("{ready}/{desired} ready, {updated}/{desired} on the current template, {replicas} pods exist"),
        )
    } else if plan.stopped {
        ("Stopped", "no pods running".to_owned())
    } else {
        (
            "RolloutComplete",
            format!("{desired} brokers on config {}", plan.config_hash),
        )
    };
    status.set_condition(
        previous,
        ct::PROGRESSING,
        ConditionStatus::from_bool(rolling),
        reason,
        message,
        gen,
    );

    let message = if plan.warnings.is_empty() {
        "spec applied".to_owned()
    } else {
        plan.warnings.join("; ")
    };
    status.set_condition(
        previous,
        ct::DEGRADED,
        ConditionStatus::False,
        "Reconciled",
        message,
        gen,
    );
    status
}

/// Status when the spec cannot be realised: `Degraded` names the field; the
/// other conditions and counters keep their last known values, since the
/// running pods are untouched.
pub fn spec_error_status(
    error: &SpecError,
    generation: Option<i64>,
    previous: Option<&MqttBrokerStatus>,
) -> MqttBrokerStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.set_condition(
        previous,
        ct::DEGRADED,
        ConditionStatus::True,
        error.reason,
        format!("{}: {}", error.field, error.message),
        generation,
    );
    status.set_condition(
        previous,
        ct::PROGRESSING,
        ConditionStatus::False,
        error.reason,
        "waiting for the spec (or the referenced objects) to change",
        generation,
    );
    if status.condition(ct::AVAILABLE).is_none() {
        status.set_condition(
            previous,
            ct::AVAILABLE,
            ConditionStatus::Unknown,
            "NotReconciled",
            "nothing deployed yet",
            generation,
        );
    }
    status
}

/// Status when an API call failed mid-apply; retried with backoff.
pub fn api_error_status(
    message: &str,
    generation: Option<i64>,
    previous: Option<&MqttBrokerStatus>,
) -> MqttBrokerStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.set_condition(
        previous,
        ct::DEGRADED,
        ConditionStatus::True,
        "ApplyFailed",
        message,
        generation,
    );
    status
}

/// Reason on `Progressing` while reconciliation is paused.
pub const PAUSED_REASON: &str = "ReconciliationPaused";

/// Status while paused; `None` when the status already says so (so a paused
/// broker causes no writes at all).
pub fn paused_status(
    generation: Option<i64>,
    previous: Option<&MqttBrokerStatus>,
) -> Option<MqttBrokerStatus> {
    let already = previous
        .and_then(|p| p.condition(ct::PROGRESSING))
        .is_some_and(|c| c.reason == PAUSED_REASON && c.observed_generation == generation);
    if already {
        return None;
    }
    let mut status = previous.cloned().unwrap_or_default();
    status.set_condition(
        previous,
        ct::PROGRESSING,
        ConditionStatus::False,
        PAUSED_REASON,
        "clusterOperation.reconciliationPaused is set; children are left alone",
        generation,
    );
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::condition_types as ct;
    use crate::crd::{MqttBroker, MqttBrokerSpec};
    use crate::plan::{plan, Snapshot};
    use k8s_openapi::api::apps::v1::StatefulSetStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn test_plan(replicas: i32, stopped: bool) -> BrokerPlan {
        let mut spec = MqttBrokerSpec {
            replicas,
            ..MqttBrokerSpec::default()
        };
        spec.cluster_operation.stopped = stopped;
        let mut b = MqttBroker::new("b", spec);
        b.metadata.namespace = Some("ns".into());
        b.metadata.uid = Some("u".into());
        b.metadata.generation = Some(2);
        plan(&b, &Snapshot::default(), "t").expect("plan")
    }

    fn sts(replicas: i32, ready: i32, updated: i32) -> StatefulSet {
        let mut s = StatefulSet::default();
        s.metadata.generation = Some(1);
        s.status = Some(StatefulSetStatus {
            replicas,
            ready_replicas: Some(ready),
            updated_replicas: Some(updated),
            observed_generation: Some(1),
            ..StatefulSetStatus::default()
        });
        s
    }

    fn reason(status: &MqttBrokerStatus, type_: &str) -> (String, String) {
        let c = status.condition(type_).expect("condition");
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn conditions_follow_the_statefulset() {
        let p = test_plan(3, false);
        let s = reconciled_status(&p, &sts(3, 3, 3), None);
        assert_eq!(
            reason(&s, ct::AVAILABLE),
            ("True".into(), "AllReplicasReady".into())
        );
        assert_eq!(
            reason(&s, ct::PROGRESSING),
            ("False".into(), "RolloutComplete".into())
        );
        assert_eq!(
            reason(&s, ct::DEGRADED),
            ("False".into(), "Reconciled".into())
        );
        assert_eq!(s.observed_generation, Some(2));

        let s = reconciled_status(&p, &sts(3, 1, 1), None);
        assert_eq!(
            reason(&s, ct::AVAILABLE),
            ("True".into(), "MinimumReplicasReady".into())
        );
        assert_eq!(
            reason(&s, ct::PROGRESSING),
            ("True".into(), "RollingOut".into())
        );

        let s = reconciled_status(&p, &sts(0, 0, 0), None);
        assert_eq!(
            reason(&s, ct::AVAILABLE),
            ("False".into(), "NoReplicasReady".into())
        );

        let stopped = test_plan(3, true);
        let s = reconciled_status(&stopped, &sts(0, 0, 0), None);
        assert_eq!(
            reason(&s, ct::AVAILABLE),
            ("False".into(), "Stopped".into())
        );
        assert_eq!(
            reason(&s, ct::PROGRESSING),
            ("False".into(), "Stopped".into())
        );
        assert_eq!(s.desired_replicas, 0);
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let p = test_plan(1, false);
        let mut previous = reconciled_status(&p, &sts(1, 1, 1), None);
        let old = Time(Timestamp::UNIX_EPOCH);
        for c in &mut previous.conditions {
            c.last_transition_time = old.clone();
        }
        let same = reconciled_status(&p, &sts(1, 1, 1), Some(&previous));
        let c = same.condition(ct::AVAILABLE).expect("available");
        assert_eq!(
            c.last_transition_time, old,
            "unchanged status keeps its time"
        );
        let changed = reconciled_status(&p, &sts(1, 0, 1), Some(&previous));
        let c = changed.condition(ct::AVAILABLE).expect("available");
        assert_ne!(c.last_transition_time, old, "a flip records a new time");
    }

    #[test]
    fn paused_is_recorded_once() {
        let first = paused_status(Some(4), None).expect("first time writes");
        assert!(paused_status(Some(4), Some(&first)).is_none());
        assert!(
            paused_status(Some(5), Some(&first)).is_some(),
            "new generation, new note"
        );
    }
}
