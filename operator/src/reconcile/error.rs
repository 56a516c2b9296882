//! Errors that make a reconcile fail and be retried with backoff.
//!
//! An invalid spec is *not* one of these: it is reported in the status and
//! the reconciler waits for a change (see [`crate::plan::SpecError`]).

/// A reconcile step failed for a reason that may go away by itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{step}: {source}")]
    Kube {
        /// What the operator was doing, e.g. `apply StatefulSet mqtt/broker`.
        step: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// A child object could not be serialized (a bug, not an input problem).
    #[error("serializing {what}: {source}")]
    Serialize {
        /// Which object.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The MqttBroker has no namespace (the CRD is namespaced, so this means
    /// a malformed object from the watch).
    #[error("MqttBroker {0} has no namespace")]
    MissingNamespace(String),
}

impl Error {
    /// Low-cardinality label for the `errors by kind` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { source, .. } => match source {
                kube::Error::Api(status) if status.code == 409 => "conflict",
                kube::Error::Api(status) if status.code == 403 => "forbidden",
                kube::Error::Api(status) if status.code == 422 => "invalid",
                kube::Error::Api(_) => "api",
                _ => "transport",
            },
            Error::Serialize { .. } => "serialize",
            Error::MissingNamespace(_) => "malformed",
        }
    }
}

/// Attaches a step description to a kube error.
pub(crate) fn kube_step(step: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let step = step.into();
    move |source| Error::Kube { step, source }
}
