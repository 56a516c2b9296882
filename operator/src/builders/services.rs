//! The headless Service (stable pod DNS for clustering) and one client
//! Service per listener.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{child_meta, non_empty, selector_labels};
use crate::plan::layout::{names, ADMIN_PORT, ADMIN_PORT_NAME};
use crate::plan::BrokerPlan;

/// Component label of client Services; the reconciler lists by it to find
/// Services of listeners that were removed.
pub const CLIENT_SERVICE_COMPONENT: &str = "client";

/// Headless Service over all pods, ready or not: peers must find each other
/// while they start, so `publishNotReadyAddresses` is on. It also exposes the
/// admin port, which the ServiceMonitor scrapes.
pub fn headless_service(plan: &BrokerPlan) -> Service {
    let mut ports: Vec<ServicePort> = plan
        .listeners
        .iter()
        .map(|l| ServicePort {
            name: Some(l.name.clone()),
            port: l.port,
            target_port: Some(IntOrString::String(l.name.clone())),
            protocol: Some("TCP".to_owned()),
            ..ServicePort::default()
        })
        .collect();
    ports.push(ServicePort {
        name: Some(ADMIN_PORT_NAME.to_owned()),
        port: i32::from(ADMIN_PORT),
        target_port: Some(IntOrString::String(ADMIN_PORT_NAME.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    });
    Service {
        metadata: child_meta(plan, names::headless_service(&plan.name), "headless"),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(plan)),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// One Service per listener, with that listener's type, annotations and
/// source ranges. Only ready pods receive client traffic.
pub fn client_services(plan: &BrokerPlan) -> Vec<Service> {
    plan.listeners
        .iter()
        .map(|l| {
            let mut metadata = child_meta(
                plan,
                names::client_service(&plan.name, &l.name),
                CLIENT_SERVICE_COMPONENT,
            );
            metadata.annotations = non_empty(l.service.annotations.clone());
            Service {
                metadata,
                spec: Some(ServiceSpec {
                    type_: Some(l.service.type_.as_str().to_owned()),
                    selector: Some(selector_labels(plan)),
                    ports: Some(vec![ServicePort {
                        name: Some(l.name.clone()),
                        port: l.port,
                        target_port: Some(IntOrString::String(l.name.clone())),
                        protocol: Some("TCP".to_owned()),
                        node_port: l.service.node_port,
                        ..ServicePort::default()
                    }]),
                    load_balancer_source_ranges: (!l
                        .service
                        .load_balancer_source_ranges
                        .is_empty())
                    .then(|| l.service.load_balancer_source_ranges.clone()),
                    ..ServiceSpec::default()
                }),
                ..Service::default()
            }
        })
        .collect()
}
