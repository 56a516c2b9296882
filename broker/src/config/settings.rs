//! [`BrokerSettings`]: the broker's behaviour knobs (limits, session rules,
//! MQTT features, `$SYS`, shutdown, authentication).
//!
//! This block is shared verbatim by the broker's config file (`settings:`) and
//! the operator's `MqttBroker` CRD (`spec.broker`), so its serde names, its
//! defaults and its [`validate`](BrokerSettings::validate) rules are the single
//! definition both sides use. Keys are camelCase (Kubernetes convention), every
//! struct rejects unknown keys, and every field has a production-safe default
//! so an empty block is a working configuration.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::router::RetainLimits;

/// The largest packet size MQTT can express: the variable byte integer for the
/// remaining length tops out at 268,435,455 bytes (MQTT 5.0 §1.5.5).
pub const MQTT_MAX_PACKET_SIZE: u32 = 268_435_455;

/// The shortest client identifier length a broker must accept (MQTT 5.0
/// §3.1.3.1): a lower limit would reject spec-conforming clients.
pub const MQTT_MIN_CLIENT_ID_LENGTH: u16 = 23;

/// Broker behaviour settings. Embedded as `settings` in the broker's config
/// file and as `spec.broker` in the `MqttBroker` resource.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct BrokerSettings {
    /// Resource limits that protect the broker from misbehaving or hostile clients.
    pub limits: LimitsConfig,
    /// Session and keep-alive rules negotiated with clients at CONNECT.
    pub session: SessionConfig,
    /// MQTT features the broker advertises in CONNACK and enforces.
    pub features: FeaturesConfig,
    /// Periodic `$SYS/#` statistics topics.
    pub sys: SysConfig,
    /// Graceful shutdown behaviour.
    pub shutdown: ShutdownConfig,
    /// Client authentication and authorization.
    pub auth: AuthConfig,
}

/// What the broker does when a session's outbound queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum QueueFullPolicy {
    /// Drop the oldest queued QoS 0 message to make room; QoS 1/2 messages are
    /// never dropped silently, and if none can be dropped the new message is
    /// rejected. Keeps slow consumers from growing memory without losing
    /// guaranteed deliveries.
    #[default]
    DropOldestQos0,
    /// Reject the new message (PUBACK/PUBREC with "quota exceeded" for MQTT 5
    /// publishers); nothing already queued is lost.
    Reject,
}

/// Per-connection and per-session resource limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct LimitsConfig {
    /// Largest MQTT packet accepted or sent, in bytes (advertised as Maximum
    /// Packet Size). Bounds the memory a single client can make the broker
    /// buffer. Default 1 MiB; MQTT allows at most 268435455.
    #[schemars(range(min = 1, max = 268_435_455))]
    pub max_packet_size: u32,
    /// Most concurrent client connections per broker instance; further CONNECTs
    /// are refused so an overload degrades instead of exhausting memory.
    #[schemars(range(min = 1))]
    pub max_connections: u32,
    /// Longest topic name or filter, in bytes.
    #[schemars(range(min = 1, max = 65535))]
    pub max_topic_length: u16,
    /// Most `/`-separated levels in a topic name or filter; deep topics make
    /// matching slower for every publish.
    #[schemars(range(min = 1))]
    pub max_topic_levels: u16,
    /// Longest client identifier, in bytes. MQTT requires at least 23.
    #[schemars(range(min = 23, max = 65535))]
    pub max_client_id_length: u16,
    /// Most subscriptions a single session may hold.
    #[schemars(range(min = 1))]
    pub max_subscriptions_per_client: u32,
    /// Unacknowledged QoS 1/2 PUBLISHes the broker accepts from one client at a
    /// time (advertised as Receive Maximum in CONNACK).
    #[schemars(range(min = 1, max = 65535))]
    pub receive_maximum: u16,
    /// Unacknowledged QoS 1/2 PUBLISHes the broker sends to one client at a
    /// time; the client's own Receive Maximum lowers it further.
    #[schemars(range(min = 1, max = 65535))]
    pub max_inflight_outbound: u16,
    /// Messages queued per session for delivery (offline or slow clients)
    /// before `queueFullPolicy` applies.
    #[schemars(range(min = 1))]
    pub max_queued_messages: u32,
    /// What happens when a session's outbound queue is full.
    pub queue_full_policy: QueueFullPolicy,
    /// Most topics holding a retained message at once. A retained PUBLISH to a new topic
    /// beyond it is still delivered but not retained, and a 5.0 publisher at QoS 1 or 2 is
    /// told so (reason code 0x97, Quota exceeded); replacing or deleting a retained message
    /// is always possible. Retained messages live until replaced, so without this bound any
    /// client allowed to publish could fill the broker's memory.
    #[schemars(range(min = 1))]
    pub max_retained_messages: u32,
    /// Most bytes of retained messages (topic, payload and properties) kept at once, with
    /// the same effect as `maxRetainedMessages` when a message would go past it.
    #[schemars(range(min = 1))]
    pub max_retained_bytes: u64,
    /// Connections each MQTT listener lets the kernel complete before the broker accepts
    /// them (the `listen(2)` backlog). When it is full, new connection attempts are dropped
    /// and clients retry only after 1 s, then 3 s: a fleet reconnecting at once (after a
    /// broker restart or a network outage) needs room here. The kernel caps it at
    /// `net.core.somaxconn` (4096 by default since Linux 5.4).
    #[schemars(range(min = 1, max = 65535))]
    pub listen_backlog: u32,
}

/// The default `limits.listenBacklog`: Linux's default `somaxconn`. (Tokio's own default is
/// 128, which a storm of 256 concurrent connection attempts overflowed: about 1% of them
/// waited a full second for a SYN retransmission.)
pub const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_packet_size: 1024 * 1024,
            max_connections: 100_000,
            max_topic_length: 1024,
            max_topic_levels: 32,
            max_client_id_length: 128,
            max_subscriptions_per_client: 100,
            receive_maximum: 1024,
            max_inflight_outbound: 1024,
            max_queued_messages: 1000,
            queue_full_policy: QueueFullPolicy::DropOldestQos0,
            max_retained_messages: 100_000,
            max_retained_bytes: 64 * 1024 * 1024,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
        }
    }
}

/// Session lifetime, keep-alive and client identifier rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct SessionConfig {
    /// Upper bound on the Session Expiry Interval a client may request, in
    /// seconds; longer requests are lowered to this. Caps how long state for
    /// vanished clients is kept. Default one day.
    pub max_session_expiry_interval_secs: u32,
    /// When set, the broker overrides every client's keep-alive with this value
    /// (MQTT 5 Server Keep Alive). Unset: the client's value is used.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub server_keep_alive_secs: Option<u16>,
    /// When set, CONNECTs asking for a longer keep-alive (or none, 0) get this
    /// value instead, so dead connections are always noticed eventually.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_keep_alive_secs: Option<u16>,
    /// Topic aliases a client may use when publishing to the broker
    /// (advertised as Topic Alias Maximum); 0 disables topic aliases.
    pub topic_alias_maximum: u16,
    /// Accept CONNECT with an empty client identifier. Requires
    /// `assignClientId`, since such a client needs an identifier from the broker.
    pub allow_empty_client_id: bool,
    /// Generate a unique identifier for clients that connect without one and
    /// return it as Assigned Client Identifier (MQTT 5).
    pub assign_client_id: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_session_expiry_interval_secs: 86_400,
            server_keep_alive_secs: None,
            max_keep_alive_secs: None,
            topic_alias_maximum: 16,
            allow_empty_client_id: true,
            assign_client_id: true,
        }
    }
}

/// Optional MQTT features. Each is advertised in CONNACK (MQTT 5) and
/// enforced for all protocol versions, so turning one off is a real guarantee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct FeaturesConfig {
    /// Store retained messages and deliver them to new subscribers.
    pub retain_available: bool,
    /// Allow `+` and `#` in subscription filters.
    pub wildcard_subscription_available: bool,
    /// Allow `$share/<group>/<filter>` shared subscriptions.
    pub shared_subscription_available: bool,
    /// Allow Subscription Identifiers in SUBSCRIBE (MQTT 5).
    pub subscription_identifiers_available: bool,
    /// Highest QoS the broker grants (0, 1 or 2); higher requests are downgraded.
    #[schemars(range(max = 2))]
    pub maximum_qos: u8,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig {
            retain_available: true,
            wildcard_subscription_available: true,
            shared_subscription_available: true,
            subscription_identifiers_available: true,
            maximum_qos: 2,
        }
    }
}

/// `$SYS/#` statistics topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct SysConfig {
    /// Seconds between `$SYS` updates; 0 disables `$SYS` topics entirely.
    pub interval_secs: u32,
}

impl Default for SysConfig {
    fn default() -> Self {
        SysConfig { interval_secs: 10 }
    }
}

/// Graceful shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct ShutdownConfig {
    /// Seconds the broker spends draining on SIGTERM (or `POST /drain`):
    /// it stops accepting connections, sends DISCONNECT with "server shutting
    /// down" / "use another server" and flushes in-flight messages before
    /// exiting. The operator sets the pod's termination grace period above it.
    pub grace_period_secs: u32,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            grace_period_secs: 30,
        }
    }
}

/// Authentication and authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct AuthConfig {
    /// Accept clients that send no username. Unset means: allowed only when no
    /// `passwordFile` is configured, so adding users closes anonymous access
    /// without a second switch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_anonymous: Option<bool>,
    /// File of `username:password-hash` lines. Unset: no username/password
    /// authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// File of topic access rules per user. Unset: every authenticated client
    /// may publish and subscribe to every topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acl_file: Option<PathBuf>,
    /// Seconds between checks of `passwordFile` and `aclFile` for changes (a
    /// Secret updated in place, an edited file); changed files are reloaded
    /// without a restart, and new topic rules apply to connected clients too.
    /// 0: only on SIGHUP. A file that no longer parses is logged and the
    /// previous one stays in force.
    pub reload_interval_secs: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_anonymous: None,
            password_file: None,
            acl_file: None,
            reload_interval_secs: 10,
        }
    }
}

impl AuthConfig {
    /// Whether anonymous clients are accepted once the default is applied:
    /// an explicit value wins, otherwise only when no password file is set.
    pub fn anonymous_allowed(&self) -> bool {
        self.allow_anonymous.unwrap_or(self.password_file.is_none())
    }
}

impl BrokerSettings {
    /// Checks the rules a schema cannot express. Field paths in errors are
    /// relative to this block (`limits.receiveMaximum`); callers add their
    /// own prefix with [`ConfigError::prefixed`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.limits.validate().map_err(|e| e.prefixed("limits"))?;
        self.session.validate().map_err(|e| e.prefixed("session"))?;
        self.features
            .validate()
            .map_err(|e| e.prefixed("features"))?;
        self.auth.validate().map_err(|e| e.prefixed("auth"))?;
        Ok(())
    }
}

/// Largest `limits.listenBacklog`: what kernels before 5.4 could hold (a 16-bit field), far
/// above any useful value.
const MAX_LISTEN_BACKLOG: u32 = 65535;

/// Checks that `value` of `field` lies in `1..=max`; `why` explains the bound in the error.
fn at_most(field: &str, value: u32, max: u32, why: &str) -> Result<(), ConfigError> {
    if (1..=max).contains(&value) {
        return Ok(());
    }
    Err(ConfigError::invalid(
        field,
        format!("{value} is outside 1..={max}{why}"),
    ))
}

impl LimitsConfig {
    /// `maxRetainedMessages` and `maxRetainedBytes` as the retained store applies them.
    pub fn retain_limits(&self) -> RetainLimits {
        RetainLimits {
            max_messages: self.max_retained_messages as usize,
            max_bytes: usize::try_from(self.max_retained_bytes).unwrap_or(usize::MAX),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        at_most(
            "maxPacketSize",
            self.max_packet_size,
            MQTT_MAX_PACKET_SIZE,
            ", the range MQTT can express",
        )?;
        at_most("listenBacklog", self.listen_backlog, MAX_LISTEN_BACKLOG, "")?;
        let positive: [(&str, u64); 9] = [
            ("maxConnections", self.max_connections.into()),
            ("maxTopicLength", self.max_topic_length.into()),
            ("maxTopicLevels", self.max_topic_levels.into()),
            (
                "maxSubscriptionsPerClient",
                self.max_subscriptions_per_client.into(),
            ),
            ("receiveMaximum", self.receive_maximum.into()),
            ("maxInflightOutbound", self.max_inflight_outbound.into()),
            ("maxQueuedMessages", self.max_queued_messages.into()),
            ("maxRetainedMessages", self.max_retained_messages.into()),
            ("maxRetainedBytes", self.max_retained_bytes),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(ConfigError::invalid(field, "must be at least 1"));
            }
        }
        if self.max_client_id_length < MQTT_MIN_CLIENT_ID_LENGTH {
            return Err(ConfigError::invalid(
                "maxClientIdLength",
                format!(
                    "{} is below {MQTT_MIN_CLIENT_ID_LENGTH}, the length MQTT requires brokers to accept",
                    self.max_client_id_length
                ),
            ));
        }
        Ok(())
    }
}

impl SessionConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.server_keep_alive_secs == Some(0) {
            return Err(ConfigError::invalid(
                "serverKeepAliveSecs",
                "must be at least 1; leave it unset to use each client's keep-alive",
            ));
        }
        if self.max_keep_alive_secs == Some(0) {
            return Err(ConfigError::invalid(
                "maxKeepAliveSecs",
                "must be at least 1; leave it unset for no upper bound",
            ));
        }
        if let (Some(server), Some(max)) = (self.server_keep_alive_secs, self.max_keep_alive_secs) {
            if server > max {
                return Err(ConfigError::invalid(
                    "serverKeepAliveSecs",
                    format!("{server} exceeds maxKeepAliveSecs ({max})"),
                ));
            }
        }
        if self.allow_empty_client_id && !self.assign_client_id {
            return Err(ConfigError::invalid(
                "allowEmptyClientId",
                "requires assignClientId: true, clients without an identifier need one from the broker",
            ));
        }
        Ok(())
    }
}

impl FeaturesConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.maximum_qos > 2 {
            return Err(ConfigError::invalid(
                "maximumQos",
                format!("{} is not a QoS level; use 0, 1 or 2", self.maximum_qos),
            ));
        }
        Ok(())
    }
}

impl AuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.allow_anonymous == Some(false) && self.password_file.is_none() {
            return Err(ConfigError::invalid(
                "allowAnonymous",
                "is false but no passwordFile is set, so no client could ever connect",
            ));
        }
        for (field, path) in [
            ("passwordFile", &self.password_file),
            ("aclFile", &self.acl_file),
        ] {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(ConfigError::invalid(
                    field,
                    "must not be empty; leave it unset instead",
                ));
            }
        }
        Ok(())
    }
}
