//! Step 1, the only step that reads the cluster: fetch everything the
//! MqttBroker references or owns into a [`Snapshot`].

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};

use super::error::{kube_step, Error};
use crate::builders::{certificate_resource, monitor_resource};
use crate::crd::MqttBroker;
use crate::plan::layout::{
    names, FIELD_MANAGER, LABEL_COMPONENT, LABEL_INSTANCE, LABEL_MANAGED_BY,
};
use crate::plan::{ApiAvailability, MonitorKind, Snapshot};

/// Reads the referenced Secrets, the existing children and which optional
/// APIs are served.
pub async fn dereference(client: &Client, broker: &MqttBroker) -> Result<Snapshot, Error> {
    let name = broker.name_any();
    let ns = broker
        .namespace()
        .ok_or_else(|| Error::MissingNamespace(name.clone()))?;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let auth_secret = match &broker.spec.auth {
        Some(auth) => secrets
            .get_opt(&auth.secret_name)
            .await
            .map_err(kube_step(format!("get Secret {ns}/{}", auth.secret_name)))?,
        None => None,
    };
    let tls_secret_name = broker.spec.tls.as_ref().map(|t| match &t.secret_name {
        Some(secret) => secret.clone(),
        None => names::certificate(&name),
    });
    let tls_secret = match &tls_secret_name {
        Some(secret) => secrets
            .get_opt(secret)
            .await
            .map_err(kube_step(format!("get Secret {ns}/{secret}")))?,
        None => None,
    };

    let statefulset = Api::<StatefulSet>::namespaced(client.clone(), &ns)
        .get_opt(&names::workload(&name))
        .await
        .map_err(kube_step(format!("get StatefulSet {ns}/{name}")))?;

    let selector = format!(
        "{LABEL_INSTANCE}={name},{LABEL_MANAGED_BY}={FIELD_MANAGER},{LABEL_COMPONENT}={}",
        crate::builders::CLIENT_SERVICE_COMPONENT
    );
    let client_services = Api::<Service>::namespaced(client.clone(), &ns)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_step(format!("list client Services in {ns}")))?
        .items
        .into_iter()
        .map(|s| s.name_any())
        .collect();

    let pdb_exists = Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns)
        .get_opt(&names::workload(&name))
        .await
        .map_err(kube_step(format!("get PodDisruptionBudget {ns}/{name}")))?
        .is_some();

    let monitoring = served_kinds(client, "monitoring.coreos.com/v1").await?;
    let cert_manager = served_kinds(client, "cert-manager.io/v1").await?;
    let apis = ApiAvailability {
        service_monitor: monitoring.iter().any(|k| k == "ServiceMonitor"),
        pod_monitor: monitoring.iter().any(|k| k == "PodMonitor"),
        certificate: cert_manager.iter().any(|k| k == "Certificate"),
    };

    let mut existing_monitors = Vec::new();
    for kind in MonitorKind::ALL {
        let served = match kind {
            MonitorKind::ServiceMonitor => apis.service_monitor,
            MonitorKind::PodMonitor => apis.pod_monitor,
        };
        if !served {
            continue;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &monitor_resource(kind));
        let found = api
            .get_opt(&names::workload(&name))
            .await
            .map_err(kube_step(format!("get {} {ns}/{name}", kind.kind())))?;
        if found.is_some_and(|m| is_ours(&m, &name)) {
            existing_monitors.push(kind);
        }
    }

    let certificate_exists = if apis.certificate {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &certificate_resource());
        let cert = names::certificate(&name);
        api.get_opt(&cert)
            .await
            .map_err(kube_step(format!("get Certificate {ns}/{cert}")))?
            .is_some_and(|c| is_ours(&c, &name))
    } else {
        false
    };

    Ok(Snapshot {
        auth_secret,
        tls_secret,
        statefulset,
        client_services,
        pdb_exists,
        apis,
        existing_monitors,
        certificate_exists,
    })
}

/// Whether an object found by name carries our labels; an object someone
/// else made with the same name is never deleted as an "orphan".
fn is_ours(obj: &DynamicObject, broker: &str) -> bool {
    let labels = obj.labels();
    labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(FIELD_MANAGER)
        && labels.get(LABEL_INSTANCE).map(String::as_str) == Some(broker)
}

/// Kinds served under `group_version`, empty when the group is not installed.
async fn served_kinds(client: &Client, group_version: &str) -> Result<Vec<String>, Error> {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => Ok(list.resources.into_iter().map(|r| r.kind).collect()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(Vec::new()),
        Err(e) => Err(kube_step(format!("discover {group_version}"))(e)),
    }
}
