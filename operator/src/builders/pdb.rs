//! The PodDisruptionBudget that keeps voluntary evictions (node drains,
//! cluster upgrades) from taking down too many brokers at once.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::{child_meta, selector_labels};
use crate::plan::layout::names;
use crate::plan::BrokerPlan;

/// The PDB, or `None` when disabled or the broker is stopped.
pub fn pod_disruption_budget(plan: &BrokerPlan) -> Option<PodDisruptionBudget> {
    let pdb = plan.pdb.as_ref()?;
    Some(PodDisruptionBudget {
        metadata: child_meta(plan, names::workload(&plan.name), "broker"),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(plan)),
                ..LabelSelector::default()
            }),
            min_available: pdb.min_available.clone(),
            max_unavailable: pdb.max_unavailable.clone(),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}
