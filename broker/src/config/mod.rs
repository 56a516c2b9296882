//! The broker's configuration file, as typed Rust values.
//!
//! One YAML file configures a broker (see `broker/config/ferrumq.example.yaml`
//! for every key with its default). The same types are used by the operator:
//! it embeds [`BrokerSettings`] in the `MqttBroker` CRD as `spec.broker` and
//! renders a whole [`BrokerConfig`] into the ConfigMap the broker reads, so the
//! operator and the broker can never disagree about names, defaults or rules.
//!
//! Conventions, used everywhere in this module:
//! - keys and enum values are camelCase (Kubernetes convention, so the CRD and
//!   the file look the same);
//! - every struct rejects unknown keys (`deny_unknown_fields`), so a typo is an
//!   error that names the key and its line instead of a silently ignored knob;
//! - every field has a default (`#[serde(default)]`), so an empty or missing
//!   file is a working broker: one `mqtt` listener on `0.0.0.0:1883` and the
//!   admin (metrics/health) listener on `0.0.0.0:9464`;
//! - settings live under a nested `settings:` key rather than being flattened
//!   into the top level, because serde cannot combine `flatten` with
//!   `deny_unknown_fields`, and strictness matters more than one less level.
//!
//! Loading is two steps: [`BrokerConfig::from_yaml_str`] (syntax, unknown keys,
//! types — errors carry line and column) then [`BrokerConfig::validate`]
//! (cross-field rules — errors carry the field path). [`BrokerConfig::load`]
//! and [`BrokerConfig::from_yaml_str`] run both.

mod error;
mod listener;
mod persistence;
mod settings;
#[cfg(test)]
mod tests;

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use error::ConfigError;
pub use listener::{check_listener_name, ListenerConfig, ListenerProtocol, TlsFiles};
pub use persistence::PersistenceConfig;
pub use settings::{
    AuthConfig, BrokerSettings, FeaturesConfig, LimitsConfig, QueueFullPolicy, SessionConfig,
    ShutdownConfig, SysConfig, MQTT_MAX_PACKET_SIZE, MQTT_MIN_CLIENT_ID_LENGTH,
};

/// Default address of the admin HTTP listener (metrics, health, drain).
pub const DEFAULT_ADMIN_BIND: &str = "0.0.0.0:9464";

/// Port of [`DEFAULT_ADMIN_BIND`]; the operator points probes and monitors here.
pub const DEFAULT_ADMIN_PORT: u16 = 9464;

/// The annotated example config: every key with its default value. A unit test
/// asserts it parses to exactly [`BrokerConfig::default()`], so it cannot drift.
pub const EXAMPLE_YAML: &str = include_str!("../../config/ferrumq.example.yaml");

/// The whole broker configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct BrokerConfig {
    /// MQTT listeners. At least one; names and ports must be unique.
    pub listeners: Vec<ListenerConfig>,
    /// The admin HTTP listener (`/metrics`, `/healthz`, `/readyz`, `POST
    /// /drain`), kept apart from MQTT listeners so it is never exposed to
    /// MQTT clients by accident.
    pub admin: AdminConfig,
    /// Broker behaviour; the same block as `spec.broker` in an `MqttBroker`.
    pub settings: BrokerSettings,
    /// Logging.
    pub log: LogConfig,
    /// Saving retained messages and sessions across restarts.
    pub persistence: PersistenceConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listeners: vec![ListenerConfig::default()],
            admin: AdminConfig::default(),
            settings: BrokerSettings::default(),
            log: LogConfig::default(),
            persistence: PersistenceConfig::default(),
        }
    }
}

/// The admin HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct AdminConfig {
    /// Socket address to bind, `IP:port`.
    pub bind: String,
    /// File holding the bearer token of the admin REST API (`/api/v1/`: list clients and
    /// sessions, disconnect a client, delete a retained message). Unset: the API is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_token_file: Option<std::path::PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            bind: DEFAULT_ADMIN_BIND.to_owned(),
            api_token_file: None,
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LogLevel {
    /// Everything, including per-packet traces.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Lifecycle events (the default).
    #[default]
    Info,
    /// Problems the broker recovers from.
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    /// The `tracing` filter directive for this level.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct LogConfig {
    /// Least severe level that is logged.
    pub level: LogLevel,
    /// Line format.
    pub format: LogFormat,
}

impl BrokerConfig {
    /// Parses and validates a YAML document. An empty document (or one with
    /// only comments) yields the defaults.
    pub fn from_yaml_str(yaml: &str) -> Result<BrokerConfig, ConfigError> {
        let config = Self::parse_yaml(yaml)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses without [`validate`](Self::validate): syntax, unknown keys and
    /// types only. Useful to report every layer's errors separately.
    pub fn parse_yaml(yaml: &str) -> Result<BrokerConfig, ConfigError> {
        if is_blank_yaml(yaml) {
            return Ok(BrokerConfig::default());
        }
        Ok(serde_yaml::from_str(yaml)?)
    }

    /// Reads, parses and validates the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<BrokerConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml_str(&text)
    }

    /// Loads `path` when given, otherwise returns the validated defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<BrokerConfig, ConfigError> {
        match path {
            Some(path) => Self::load(path),
            None => Ok(BrokerConfig::default()),
        }
    }

    /// Serializes to YAML. Unset optional keys are omitted, never `null`.
    pub fn to_yaml_string(&self) -> Result<String, ConfigError> {
        Ok(serde_yaml::to_string(self)?)
    }

    /// Checks the rules that span fields: listener names and bind addresses,
    /// TLS presence per protocol, port clashes (including with the admin
    /// listener) and every [`BrokerSettings::validate`] rule. Errors name the
    /// field path, e.g. `listeners[1].bind` or `settings.limits.receiveMaximum`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listeners.is_empty() {
            return Err(ConfigError::invalid(
                "listeners",
                "at least one listener is required",
            ));
        }
        let admin = listener::parse_bind("admin.bind", &self.admin.bind)?;
        let mut seen: Vec<(&str, std::net::SocketAddr)> = Vec::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let field = format!("listeners[{i}]");
            let addr = l.validate(&field)?;
            if let Some((_, _)) = seen.iter().find(|(name, _)| *name == l.name) {
                return Err(ConfigError::invalid(
                    format!("{field}.name"),
                    format!("duplicate listener name {:?}", l.name),
                ));
            }
            if let Some((other, _)) = seen
                .iter()
                .find(|(_, a)| listener::binds_conflict(*a, addr))
            {
                return Err(ConfigError::invalid(
                    format!("{field}.bind"),
                    format!("{} clashes with listener {other:?}", l.bind),
                ));
            }
            if listener::binds_conflict(admin, addr) {
                return Err(ConfigError::invalid(
                    format!("{field}.bind"),
                    format!("{} clashes with admin.bind {}", l.bind, self.admin.bind),
                ));
            }
            seen.push((&l.name, addr));
        }
        self.settings.validate().map_err(|e| e.prefixed("settings"))
    }
}

/// True when the document has no content besides whitespace, comments and
/// document markers; serde_yaml would reject it, but "empty file" means
/// "all defaults".
fn is_blank_yaml(yaml: &str) -> bool {
    yaml.lines().all(|line| {
        let t = line.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}
