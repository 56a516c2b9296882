//! Names, paths, ports and label keys shared by the plan and the builders,
//! kept in one place so the rendered broker config and the pod spec agree on
//! where files are mounted.

/// Field manager for every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "ferrumq-operator";

/// The broker's admin HTTP port (`/metrics`, `/healthz`, `/readyz`, `POST /drain`).
pub const ADMIN_PORT: u16 = ferrumq_broker::config::DEFAULT_ADMIN_PORT;
/// Name of the admin container/Service port; reserved as a listener name.
pub const ADMIN_PORT_NAME: &str = "admin";

/// Directory the ConfigMap is mounted at.
pub const CONFIG_DIR: &str = "/etc/ferrumq/config";
/// Key of the broker config in the ConfigMap (and file name in [`CONFIG_DIR`]).
pub const CONFIG_KEY: &str = "ferrumq.yaml";
/// Directory the TLS Secret is mounted at.
pub const TLS_DIR: &str = "/etc/ferrumq/tls";
/// File name, in [`TLS_DIR`], of the authorities that sign client certificates
/// (projected from `spec.tls.clientAuth.caKey`).
pub const CLIENT_CA_FILE: &str = "client-ca.crt";
/// Directory the auth Secret is mounted at.
pub const AUTH_DIR: &str = "/etc/ferrumq/auth";
/// Directory of the data volume (PVC or emptyDir).
pub const DATA_DIR: &str = "/var/lib/ferrumq";
/// File names the auth Secret's keys are projected to.
pub const PASSWORDS_FILE: &str = "passwords";
/// See [`PASSWORDS_FILE`].
pub const ACL_FILE: &str = "acl";
/// See [`PASSWORDS_FILE`]: the admin API's bearer token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Path of the broker binary in the image. Assumption shared with the broker
/// image build: the binary sits at the filesystem root and accepts
/// `--config <file>` and a `drain --admin <addr>` subcommand that calls the
/// admin listener's `POST /drain`.
pub const BROKER_BINARY: &str = "/ferrumq-broker";

/// Pod annotation holding the config hash: a change alters the pod template,
/// so the StatefulSet rolls the pods onto the new config.
pub const CONFIG_HASH_ANNOTATION: &str = "ferrumq.io/config-hash";

/// Standard label keys.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// See [`LABEL_NAME`].
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
/// See [`LABEL_NAME`].
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// See [`LABEL_NAME`].
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// See [`LABEL_NAME`].
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";
/// Value of [`LABEL_NAME`] on every child.
pub const APP_NAME: &str = "ferrumq-broker";

/// Seconds added to the broker's drain grace period for the pod's
/// `terminationGracePeriodSeconds`, so the kubelet never kills a draining broker.
pub const TERMINATION_MARGIN_SECS: i64 = 15;

/// Child object names, derived from the MqttBroker name.
pub mod names {
    /// ConfigMap with the broker config.
    pub fn config_map(broker: &str) -> String {
        format!("{broker}-config")
    }
    /// Headless Service giving pods stable DNS names.
    pub fn headless_service(broker: &str) -> String {
        format!("{broker}-headless")
    }
    /// Client Service of one listener.
    pub fn client_service(broker: &str, listener: &str) -> String {
        format!("{broker}-{listener}")
    }
    /// StatefulSet, PodDisruptionBudget and monitors share the broker's name.
    pub fn workload(broker: &str) -> String {
        broker.to_owned()
    }
    /// cert-manager Certificate and the Secret it writes.
    pub fn certificate(broker: &str) -> String {
        format!("{broker}-tls")
    }
}
