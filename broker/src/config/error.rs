//! Errors from loading and validating the broker configuration.
//!
//! Every error names *where* the problem is — a line/column for syntax and type
//! errors, a dotted field path (`settings.limits.receiveMaximum`) for
//! cross-field rules — because the person reading it is editing a YAML file or
//! an `MqttBroker` resource and needs to know which key to change.

use std::path::PathBuf;

/// Why a configuration could not be loaded or was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The path that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The YAML is malformed, has an unknown key or a value of the wrong type.
    ///
    /// `message` comes from serde_yaml and already contains the key path
    /// (for example `settings.limits: unknown field `foo``); `line` and
    /// `column` are 1-based when the parser knows them.
    #[error("{}", format_parse(message, *line, *column))]
    Parse {
        /// The parser's description, including the key path.
        message: String,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// 1-based column of the problem, when known.
        column: Option<usize>,
    },

    /// The document parsed but breaks a rule that spans fields or values.
    #[error("invalid value for {field}: {message}")]
    Invalid {
        /// Dotted path of the offending field in camelCase, for example
        /// `settings.limits.receiveMaximum` or `listeners[1].tls`.
        field: String,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
}

fn format_parse(message: &str, line: Option<usize>, column: Option<usize>) -> String {
    // serde_yaml already appends "at line X column Y" to most messages; only
    // add the location when it is missing so it is never printed twice.
    match (line, column) {
        (Some(l), Some(c)) if !message.contains(" at line ") => {
            format!("{message} at line {l} column {c}")
        }
        _ => message.to_owned(),
    }
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prepends `prefix` to the field path of an [`ConfigError::Invalid`].
    ///
    /// [`BrokerSettings`](super::BrokerSettings) validates with paths relative
    /// to itself (`limits.receiveMaximum`); the broker file nests it under
    /// `settings` and the operator's CRD under `spec.broker`, so each caller
    /// prefixes its own location and the message matches what the user wrote.
    #[must_use]
    pub fn prefixed(self, prefix: &str) -> Self {
        match self {
            ConfigError::Invalid { field, message } if !prefix.is_empty() => ConfigError::Invalid {
                field: format!("{prefix}.{field}"),
                message,
            },
            other => other,
        }
    }

    /// The dotted field path for validation errors, `None` for other kinds.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

impl From<serde_yaml::Error> for ConfigError {
    fn from(err: serde_yaml::Error) -> Self {
        let location = err.location();
        ConfigError::Parse {
            message: err.to_string(),
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
        }
    }
}
