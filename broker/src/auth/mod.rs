//! The authentication hook: who may connect.
//!
//! The broker asks its [`Authenticator`] about every CONNECT. The built-in one,
//! [`ConfiguredAuth`], applies the configuration: anonymous clients are accepted only when
//! `settings.auth` allows them, and no extended authentication method (section 4.12) is
//! offered, so a CONNECT naming one is refused with 0x8C Bad Authentication Method. Password
//! files and extended methods (the AUTH exchange) plug in here as other implementations.

use crate::codec::{Connect, ReasonCode};
use crate::config::AuthConfig;

/// An authenticator's answer to a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refuse with this CONNACK reason code.
    Deny(ReasonCode),
}

/// Decides whether a client may connect. Called on the connection's task: it must not block.
pub trait Authenticator: Send + Sync {
    /// Whether `method` (a CONNECT's Authentication Method) is an extended authentication
    /// method this authenticator runs.
    fn supports_method(&self, method: &str) -> bool;

    /// Decides on a CONNECT's credentials.
    fn authenticate(&self, connect: &Connect) -> Decision;

    /// The common first step: an Authentication Method nobody supports is 0x8C.
    fn check_method(&self, connect: &Connect) -> Decision {
        match &connect.properties.authentication_method {
            Some(method) if !self.supports_method(method) => {
                Decision::Deny(ReasonCode::BadAuthenticationMethod)
            }
            _ => Decision::Allow,
        }
    }
}

/// The authenticator the configuration describes.
#[derive(Debug, Clone)]
pub struct ConfiguredAuth {
    allow_anonymous: bool,
}

impl ConfiguredAuth {
    pub fn new(config: &AuthConfig) -> ConfiguredAuth {
        ConfiguredAuth {
            allow_anonymous: config.anonymous_allowed(),
        }
    }
}

impl Authenticator for ConfiguredAuth {
    fn supports_method(&self, _method: &str) -> bool {
        false
    }

    fn authenticate(&self, connect: &Connect) -> Decision {
        if let Decision::Deny(reason) = self.check_method(connect) {
            return Decision::Deny(reason);
        }
        if connect.username.is_none() && !self.allow_anonymous {
            return Decision::Deny(ReasonCode::NotAuthorized);
        }
        Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{ConnectProperties, ProtocolVersion};

    fn connect(username: Option<&str>, method: Option<&str>) -> Connect {
        Connect {
            protocol: ProtocolVersion::V5,
            clean_start: true,
            keep_alive: 0,
            client_id: "c".into(),
            will: None,
            username: username.map(Into::into),
            password: None,
            properties: ConnectProperties {
                authentication_method: method.map(Into::into),
                ..Default::default()
            },
        }
    }

    #[test]
    fn mqtt_4_12_unsupported_method_is_bad_authentication_method() {
        let auth = ConfiguredAuth::new(&AuthConfig::default());
        assert_eq!(
            auth.authenticate(&connect(None, Some("SCRAM-SHA-1"))),
            Decision::Deny(ReasonCode::BadAuthenticationMethod)
        );
        assert_eq!(auth.authenticate(&connect(None, None)), Decision::Allow);
    }

    #[test]
    fn anonymous_clients_are_refused_when_the_config_says_so() {
        let config = AuthConfig {
            allow_anonymous: Some(false),
            ..Default::default()
        };
        let auth = ConfiguredAuth::new(&config);
        assert_eq!(
            auth.authenticate(&connect(None, None)),
            Decision::Deny(ReasonCode::NotAuthorized)
        );
        assert_eq!(
            auth.authenticate(&connect(Some("u"), None)),
            Decision::Allow
        );
    }
}
