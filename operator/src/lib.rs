//! FerrumQ operator: reconciles `MqttBroker` resources into running broker
//! clusters (ConfigMap, Services, StatefulSet, PodDisruptionBudget, monitors).
#![deny(unsafe_code)]

pub mod crd;
