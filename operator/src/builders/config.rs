//! The ConfigMap holding the broker's YAML config.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::child_meta;
use crate::plan::layout::{names, CONFIG_KEY};
use crate::plan::BrokerPlan;

/// The ConfigMap with the rendered `ferrumq.yaml`.
pub fn config_map(plan: &BrokerPlan) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(plan, names::config_map(&plan.name), "config"),
        data: Some(BTreeMap::from([(
            CONFIG_KEY.to_owned(),
            plan.config_yaml.clone(),
        )])),
        ..ConfigMap::default()
    }
}
