//! FerrumQ operator: reconciles `MqttBroker` resources into running broker
//! clusters (ConfigMap, Services, StatefulSet, PodDisruptionBudget, monitors).
//!
//! The crate is split by concern: [`crd`] (the resource types), [`plan`]
//! (validate a spec into a typed desired state), [`builders`] (pure functions
//! from that state to child objects) and [`reconcile`] (the controller loop
//! that reads, applies and reports).
#![deny(unsafe_code)]

pub mod builders;
pub mod crd;
pub mod metrics;
pub mod plan;
pub mod reconcile;
pub mod runtime;
