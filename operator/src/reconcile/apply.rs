//! Server-side apply of the built children, in dependency order, and
//! deletion of children the spec no longer asks for.
//!
//! Apply is with a fixed field manager and `force`: the operator owns the
//! fields it sets, and a conflicting manual edit is overwritten (the broker's
//! desired state lives in the MqttBroker, not in its children).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{kube_step, Error};
use crate::builders::{certificate_resource, monitor_resource, Children};
use crate::plan::layout::{names, FIELD_MANAGER};
use crate::plan::{BrokerPlan, Snapshot};

fn params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

async fn apply<K>(client: &Client, ns: &str, obj: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let name = obj.name_any();
    api.patch(&name, &params(), &Patch::Apply(obj))
        .await
        .map_err(kube_step(format!("apply {} {ns}/{name}", K::kind(&()))))
}

async fn apply_dynamic(
    client: &Client,
    ns: &str,
    obj: &DynamicObject,
    resource: &kube::api::ApiResource,
) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
    let name = obj.name_any();
    api.patch(&name, &params(), &Patch::Apply(obj))
        .await
        .map_err(kube_step(format!("apply {} {ns}/{name}", resource.kind)))?;
    Ok(())
}

/// Applies every child in order: ConfigMap → headless Service → client
/// Services → Certificate → StatefulSet → PodDisruptionBudget → monitor.
/// Returns the StatefulSet as the API server stored it (with its status).
pub async fn apply_children(
    client: &Client,
    plan: &BrokerPlan,
    children: &Children,
) -> Result<StatefulSet, Error> {
    let ns = plan.namespace.as_str();
    apply::<ConfigMap>(client, ns, &children.config_map).await?;
    apply::<Service>(client, ns, &children.headless_service).await?;
    for service in &children.client_services {
        apply::<Service>(client, ns, service).await?;
    }
    if let Some(cert) = &children.certificate {
        apply_dynamic(client, ns, cert, &certificate_resource()).await?;
    }
    let statefulset = apply::<StatefulSet>(client, ns, &children.statefulset).await?;
    if let Some(pdb) = &children.pdb {
        apply::<PodDisruptionBudget>(client, ns, pdb).await?;
    }
    if let (Some(monitor), Some(m)) = (&children.monitor, &plan.monitor) {
        apply_dynamic(client, ns, monitor, &monitor_resource(m.kind)).await?;
    }
    Ok(statefulset)
}

/// Deletes children that exist (per the snapshot) but are no longer wanted:
/// Services of removed listeners, a disabled PDB, a switched-off monitor,
/// a Certificate after moving to a TLS Secret. Returns what was deleted.
pub async fn delete_orphans(
    client: &Client,
    plan: &BrokerPlan,
    children: &Children,
    snapshot: &Snapshot,
) -> Result<Vec<String>, Error> {
    let ns = plan.namespace.as_str();
    let mut deleted = Vec::new();
    let wanted: Vec<String> = children
        .client_services
        .iter()
        .map(|s| s.name_any())
        .collect();
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    for name in snapshot
        .client_services
        .iter()
        .filter(|n| !wanted.contains(n))
    {
        delete(&services, name, "Service").await?;
        deleted.push(format!("Service/{name}"));
    }
    if snapshot.pdb_exists && children.pdb.is_none() {
        let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
        let name = names::workload(&plan.name);
        delete(&pdbs, &name, "PodDisruptionBudget").await?;
        deleted.push(format!("PodDisruptionBudget/{name}"));
    }
    for kind in &snapshot.existing_monitors {
        if plan.monitor.as_ref().map(|m| m.kind) == Some(*kind) {
            continue;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &monitor_resource(*kind));
        let name = names::workload(&plan.name);
        delete(&api, &name, kind.kind()).await?;
        deleted.push(format!("{}/{name}", kind.kind()));
    }
    if snapshot.certificate_exists && children.certificate.is_none() {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &certificate_resource());
        let name = names::certificate(&plan.name);
        delete(&api, &name, "Certificate").await?;
        deleted.push(format!("Certificate/{name}"));
    }
    Ok(deleted)
}

async fn delete<K>(api: &Api<K>, name: &str, kind: &str) -> Result<(), Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        // Already gone: the goal is reached.
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(e) => Err(kube_step(format!("delete {kind} {name}"))(e)),
    }
}
