//! The authentication hook: who may connect.
//!
//! The broker asks its [`Authenticator`] about every CONNECT. The built-in one,
//! [`ConfiguredAuth`], applies the configuration: a client that sends a username must give
//! that user's password from `settings.auth.passwordFile` (Mosquitto's format, see
//! [`PasswordFile`]) when one is configured, else 0x86 Bad User Name or Password; anonymous
//! clients are accepted only when `settings.auth` allows them; and no extended
//! authentication method (section 4.12) is offered, so a CONNECT naming one is refused with
//! 0x8C Bad Authentication Method. Extended methods (the AUTH exchange) plug in here as
//! other implementations.

mod acl_file;
mod password_file;

pub use acl_file::{AclFile, ClientAcl};
pub use password_file::PasswordFile;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codec::{Connect, ReasonCode};
use crate::config::AuthConfig;

/// Why a file named in `settings.auth` could not be used. Nothing is half-loaded: the broker
/// does not start.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("settings.auth.{field} {path}: cannot read: {source}")]
    Read {
        field: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings.auth.{field} {path}:{line}: {reason}")]
    Line {
        field: &'static str,
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Reads the file at `path` (the setting `field`) and parses it with `parse`, which names the
/// 1-based line at fault.
fn load<T>(
    field: &'static str,
    path: &Path,
    parse: impl FnOnce(&str) -> Result<T, (usize, String)>,
) -> Result<T, AuthFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthFileError::Read {
        field,
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|(line, reason)| AuthFileError::Line {
        field,
        path: path.to_owned(),
        line,
        reason,
    })
}

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

    /// Whether [`Authenticator::acl_for`] gives any client rules.
    fn enforces_topic_rules(&self) -> bool {
        false
    }

    /// The topic rules of a client whose CONNECT was allowed, connected as `client_id` (the
    /// CONNECT's, or the one the broker assigned); `None`: every topic.
    fn acl_for(&self, _connect: &Connect, _client_id: &str) -> Option<Arc<ClientAcl>> {
        None
    }

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
    passwords: Option<PasswordFile>,
    acl: Option<AclFile>,
}

impl ConfiguredAuth {
    /// The authenticator `config` describes, with its password and ACL files read and
    /// checked.
    pub fn new(config: &AuthConfig) -> Result<ConfiguredAuth, AuthFileError> {
        let passwords = config
            .password_file
            .as_deref()
            .map(|path| load("passwordFile", path, PasswordFile::parse))
            .transpose()?;
        let acl = config
            .acl_file
            .as_deref()
            .map(|path| load("aclFile", path, AclFile::parse))
            .transpose()?;
        Ok(ConfiguredAuth {
            acl,
            ..ConfiguredAuth::with_passwords(config, passwords)
        })
    }

    /// The authenticator `config` describes, with `passwords` as its users and no ACL file.
    pub fn with_passwords(config: &AuthConfig, passwords: Option<PasswordFile>) -> ConfiguredAuth {
        ConfiguredAuth {
            allow_anonymous: config.anonymous_allowed(),
            passwords,
            acl: None,
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
        let credentials = match (&connect.username, &self.passwords) {
            (None, _) if !self.allow_anonymous => Decision::Deny(ReasonCode::NotAuthorized),
            (None, _) | (Some(_), None) => Decision::Allow,
            (Some(username), Some(passwords)) => {
                let password = connect.password.as_deref().unwrap_or_default();
                if passwords.verify(username, password) {
                    Decision::Allow
                } else {
                    Decision::Deny(ReasonCode::BadUserNameOrPassword)
                }
            }
        };
        // A Will goes out under the client's name: it must be allowed to publish it.
        let will_denied = connect.will.as_ref().is_some_and(|will| {
            self.acl_for(connect, &connect.client_id)
                .is_some_and(|acl| !acl.may_publish(&will.topic))
        });
        match credentials {
            Decision::Allow if will_denied => Decision::Deny(ReasonCode::NotAuthorized),
            decision => decision,
        }
    }

    fn enforces_topic_rules(&self) -> bool {
        self.acl.is_some()
    }

    fn acl_for(&self, connect: &Connect, client_id: &str) -> Option<Arc<ClientAcl>> {
        let acl = self.acl.as_ref()?;
        Some(Arc::new(
            acl.for_client(connect.username.as_deref(), client_id),
        ))
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
        let auth = ConfiguredAuth::new(&AuthConfig::default()).unwrap();
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
        let auth = ConfiguredAuth::new(&config).unwrap();
        assert_eq!(
            auth.authenticate(&connect(None, None)),
            Decision::Deny(ReasonCode::NotAuthorized)
        );
        assert_eq!(
            auth.authenticate(&connect(Some("u"), None)),
            Decision::Allow
        );
    }

    #[test]
    fn with_a_password_file_a_username_needs_its_password() {
        let passwords = PasswordFile::parse(
            "alice:$6$EomL2EILM9cp06Ek$bOx3fdhf8XBy/DrXyITa+G5RMpaquKImMg+vO/TuKJcQelVLFSxs3uah4jFVq1NUW9P9OcdO/fE6rJ/x5iduSw==\n",
        )
        .unwrap();
        let config = AuthConfig {
            password_file: Some("/unused".into()),
            ..Default::default()
        };
        let auth = ConfiguredAuth::with_passwords(&config, Some(passwords));
        let with = |user: Option<&str>, password: Option<&[u8]>| {
            let mut c = connect(user, None);
            c.password = password.map(bytes::Bytes::copy_from_slice);
            auth.authenticate(&c)
        };
        assert_eq!(with(Some("alice"), Some(b"s3cret")), Decision::Allow);
        for (user, password) in [
            (Some("alice"), Some(&b"wrong"[..])),
            (Some("alice"), None),
            (Some("mallory"), Some(&b"s3cret"[..])),
        ] {
            assert_eq!(
                with(user, password),
                Decision::Deny(ReasonCode::BadUserNameOrPassword),
                "{user:?}"
            );
        }
        // A password file closes anonymous access unless allowAnonymous says otherwise.
        assert_eq!(with(None, None), Decision::Deny(ReasonCode::NotAuthorized));
    }
}
