//! [`ConfiguredAuth`]: the authenticator `settings.auth` describes. Its files can be re-read
//! while the broker runs ([`Authenticator::reload`]): adding a user or changing a rule takes
//! effect without a restart, for new connections and (topic rules) connected ones alike.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use parking_lot::RwLock;

use super::{
    parse, read, AclFile, AuthFileError, Authenticator, ClientAcl, Decision, PasswordFile,
};
use crate::codec::{Connect, ReasonCode};
use crate::config::AuthConfig;

/// The authenticator the configuration describes.
#[derive(Debug)]
pub struct ConfiguredAuth {
    config: AuthConfig,
    allow_anonymous: bool,
    /// Swapped whole by a reload; a CONNECT works with the files it found.
    files: RwLock<Arc<Files>>,
}

/// The password and ACL files as last read.
#[derive(Debug, Default)]
struct Files {
    passwords: Option<PasswordFile>,
    acl: Option<AclFile>,
    /// Hash of the files' text: a reload that finds the same text changes nothing.
    digest: u64,
}

impl Files {
    /// Reads and parses the files `config` names. `unless` is the digest of files already
    /// in force: the same text is not parsed again (`None` then).
    fn read(config: &AuthConfig, unless: Option<u64>) -> Result<Option<Files>, AuthFileError> {
        let password_text = config
            .password_file
            .as_deref()
            .map(|path| read("passwordFile", path).map(|text| (path, text)))
            .transpose()?;
        let acl_text = config
            .acl_file
            .as_deref()
            .map(|path| read("aclFile", path).map(|text| (path, text)))
            .transpose()?;
        let mut hasher = DefaultHasher::new();
        password_text.as_ref().map(|(_, t)| t).hash(&mut hasher);
        acl_text.as_ref().map(|(_, t)| t).hash(&mut hasher);
        let digest = hasher.finish();
        if unless == Some(digest) {
            return Ok(None);
        }
        let passwords = password_text
            .map(|(path, text)| parse("passwordFile", path, &text, PasswordFile::parse))
            .transpose()?;
        let acl = acl_text
            .map(|(path, text)| parse("aclFile", path, &text, AclFile::parse))
            .transpose()?;
        Ok(Some(Files {
            passwords,
            acl,
            digest,
        }))
    }
}

impl ConfiguredAuth {
    /// The authenticator `config` describes, with its password and ACL files read and
    /// checked.
    pub fn new(config: &AuthConfig) -> Result<ConfiguredAuth, AuthFileError> {
        let files = Files::read(config, None)?.unwrap_or_default();
        Ok(ConfiguredAuth::with_files(config, files))
    }

    /// The authenticator `config` describes, with `passwords` as its users and no ACL file.
    pub fn with_passwords(config: &AuthConfig, passwords: Option<PasswordFile>) -> ConfiguredAuth {
        let files = Files {
            passwords,
            ..Files::default()
        };
        ConfiguredAuth::with_files(config, files)
    }

    fn with_files(config: &AuthConfig, files: Files) -> ConfiguredAuth {
        ConfiguredAuth {
            config: config.clone(),
            allow_anonymous: config.anonymous_allowed(),
            files: RwLock::new(Arc::new(files)),
        }
    }

    fn files(&self) -> Arc<Files> {
        Arc::clone(&self.files.read())
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
        let files = self.files();
        let credentials = match (&connect.username, &files.passwords) {
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
        match credentials {
            Decision::Allow if !self.will_allowed(connect) => {
                Decision::Deny(ReasonCode::NotAuthorized)
            }
            decision => decision,
        }
    }

    fn enforces_topic_rules(&self) -> bool {
        self.config.acl_file.is_some()
    }

    fn acl_for_user(&self, username: Option<&str>, client_id: &str) -> Option<Arc<ClientAcl>> {
        let files = self.files();
        let acl = files.acl.as_ref()?;
        Some(Arc::new(acl.for_client(username, client_id)))
    }

    fn reload(&self) -> Result<bool, AuthFileError> {
        let digest = self.files.read().digest;
        match Files::read(&self.config, Some(digest))? {
            Some(files) => {
                *self.files.write() = Arc::new(files);
                Ok(true)
            }
            None => Ok(false),
        }
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
