//! Network listeners: where the broker accepts MQTT connections and how.

use std::net::SocketAddr;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Transport of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ListenerProtocol {
    /// MQTT over plain TCP (conventionally port 1883).
    #[default]
    Mqtt,
    /// MQTT over TLS (conventionally port 8883). Requires `tls`.
    Mqtts,
    /// MQTT over WebSocket (conventionally port 8080 or 80).
    Ws,
    /// MQTT over WebSocket over TLS (conventionally port 8443 or 443). Requires `tls`.
    Wss,
}

impl ListenerProtocol {
    /// Whether this transport terminates TLS and so needs certificate files.
    pub fn needs_tls(self) -> bool {
        matches!(self, ListenerProtocol::Mqtts | ListenerProtocol::Wss)
    }

    /// The lowercase name used in config files and resource names.
    pub fn as_str(self) -> &'static str {
        match self {
            ListenerProtocol::Mqtt => "mqtt",
            ListenerProtocol::Mqtts => "mqtts",
            ListenerProtocol::Ws => "ws",
            ListenerProtocol::Wss => "wss",
        }
    }
}

/// PEM files for a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct TlsFiles {
    /// PEM certificate chain presented to clients, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key of the leaf certificate.
    pub key_file: PathBuf,
    /// PEM certificates of the authorities that sign client certificates. Set: every client
    /// must present a certificate that chains to one of them (mutual TLS), or its handshake
    /// fails. Unset: clients are not asked for a certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
    /// Take the client certificate's subject Common Name as the client's username, in place
    /// of the CONNECT's username and password: the certificate is the credential, and ACL
    /// `user` rules apply to that name (Mosquitto's `use_identity_as_username`). Needs
    /// `clientCaFile`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub use_identity_as_username: bool,
    /// Seconds between checks of these files for changes (a renewed certificate); changed
    /// files are loaded without a restart, for new connections. 0: only on SIGHUP. Files
    /// that do not make a usable configuration are logged and the previous ones stay.
    pub reload_interval_secs: u32,
}

impl Default for TlsFiles {
    fn default() -> Self {
        TlsFiles {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            client_ca_file: None,
            use_identity_as_username: false,
            reload_interval_secs: 60,
        }
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct ListenerConfig {
    /// Unique name: 1-15 lowercase letters, digits or `-`, starting with a
    /// letter and not ending with `-`. The limit matches Kubernetes port
    /// names, so the operator can name container and Service ports after it.
    pub name: String,
    /// Socket address to bind, `IP:port` (for IPv6 `[::]:1883`).
    pub bind: String,
    /// Transport spoken on this socket.
    pub protocol: ListenerProtocol,
    /// Certificate files; required for `mqtts` and `wss`, rejected otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFiles>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            name: "mqtt".to_owned(),
            bind: "0.0.0.0:1883".to_owned(),
            protocol: ListenerProtocol::Mqtt,
            tls: None,
        }
    }
}

/// Checks `name` against the listener naming rule (an IANA service name, as
/// Kubernetes port names are). Returns the reason on failure.
pub fn check_listener_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 15 {
        return Err(format!("{name:?} must be 1 to 15 characters long"));
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Err(format!(
            "{name:?} may contain only lowercase letters, digits and '-'"
        ));
    }
    if !bytes[0].is_ascii_lowercase() {
        return Err(format!("{name:?} must start with a lowercase letter"));
    }
    if bytes[bytes.len() - 1] == b'-' || name.contains("--") {
        return Err(format!("{name:?} must not end with '-' or contain \"--\""));
    }
    Ok(())
}

/// Parses a bind address, naming `field` on failure.
pub(crate) fn parse_bind(field: &str, bind: &str) -> Result<SocketAddr, ConfigError> {
    bind.parse().map_err(|_| {
        ConfigError::invalid(
            field,
            format!(
                "{bind:?} is not a socket address; write IP:port, e.g. 0.0.0.0:1883 or [::]:1883"
            ),
        )
    })
}

/// Whether two bound sockets would collide: same port and either the same IP
/// or one of them is the wildcard of the same family.
pub(crate) fn binds_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && (a.ip() == b.ip()
            || (a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified())))
}

impl ListenerConfig {
    /// Checks this listener on its own; `field` is its path, e.g. `listeners[0]`.
    pub(crate) fn validate(&self, field: &str) -> Result<SocketAddr, ConfigError> {
        check_listener_name(&self.name)
            .map_err(|m| ConfigError::invalid(format!("{field}.name"), m))?;
        let addr = parse_bind(&format!("{field}.bind"), &self.bind)?;
        match (&self.tls, self.protocol.needs_tls()) {
            (None, true) => {
                return Err(ConfigError::invalid(
                    format!("{field}.tls"),
                    format!(
                        "protocol {} needs tls.certFile and tls.keyFile",
                        self.protocol.as_str()
                    ),
                ))
            }
            (Some(_), false) => {
                return Err(ConfigError::invalid(
                    format!("{field}.tls"),
                    format!(
                        "protocol {} does not use TLS; use mqtts or wss, or remove tls",
                        self.protocol.as_str()
                    ),
                ))
            }
            (Some(tls), true) => {
                for (key, path) in [("certFile", &tls.cert_file), ("keyFile", &tls.key_file)] {
                    if path.as_os_str().is_empty() {
                        return Err(ConfigError::invalid(
                            format!("{field}.tls.{key}"),
                            "must be set to a PEM file path",
                        ));
                    }
                }
                if tls.use_identity_as_username && tls.client_ca_file.is_none() {
                    return Err(ConfigError::invalid(
                        format!("{field}.tls.useIdentityAsUsername"),
                        "needs tls.clientCaFile: only a verified client certificate names a user",
                    ));
                }
            }
            (None, false) => {}
        }
        Ok(addr)
    }
}
