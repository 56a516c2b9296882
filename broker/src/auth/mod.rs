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
mod configured;
mod password_file;

pub use acl_file::{AclFile, ClientAcl};
pub use configured::ConfiguredAuth;
pub use password_file::{password_line, PasswordFile, PasswordLineError, DEFAULT_ITERATIONS};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codec::{Connect, ReasonCode};

/// Why a file named in `settings.auth` could not be used. Nothing is half-loaded: at start-up
/// the broker does not start, on a reload the files in force stay.
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

/// The text of the file at `path` (the setting `field`).
fn read(field: &'static str, path: &Path) -> Result<String, AuthFileError> {
    std::fs::read_to_string(path).map_err(|source| AuthFileError::Read {
        field,
        path: path.to_owned(),
        source,
    })
}

/// Parses `text`, read from `path` (the setting `field`), with `parse`, which names the
/// 1-based line at fault.
fn parse<T>(
    field: &'static str,
    path: &Path,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, (usize, String)>,
) -> Result<T, AuthFileError> {
    parse(text).map_err(|(line, reason)| AuthFileError::Line {
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
    fn acl_for(&self, connect: &Connect, client_id: &str) -> Option<Arc<ClientAcl>> {
        self.acl_for_user(connect.username.as_deref(), client_id)
    }

    /// The topic rules of user `username` (`None`: anonymous) connected as `client_id`: what
    /// [`acl_for`](Self::acl_for) gives a CONNECT, and what a session is held to again after
    /// a reload or a restart. `None`: every topic.
    fn acl_for_user(&self, _username: Option<&str>, _client_id: &str) -> Option<Arc<ClientAcl>> {
        None
    }

    /// Whether the CONNECT's Will may be published under the client's topic rules: a Will
    /// goes out under the client's name. Asked of every CONNECT, whatever proved who the
    /// client is (a password or a certificate).
    fn will_allowed(&self, connect: &Connect) -> bool {
        connect.will.as_ref().is_none_or(|will| {
            self.acl_for(connect, &connect.client_id)
                .is_none_or(|acl| acl.may_publish(&will.topic))
        })
    }

    /// Re-reads what the authenticator reads from files; true if anything changed. A file
    /// that cannot be read or parsed leaves the previous one in force.
    fn reload(&self) -> Result<bool, AuthFileError> {
        Ok(false)
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
