//! Password files: `username:password-hash` lines, in Mosquitto's format, so files made with
//! `mosquitto_passwd` (and the users a Mosquitto deployment already has) work unchanged.
//!
//! Two hash formats are read, the two `mosquitto_passwd` writes:
//! - `$7$<iterations>$<salt>$<hash>`: PBKDF2-HMAC-SHA512 with 64-byte output (its default);
//! - `$6$<salt>$<hash>`: SHA-512 of the password followed by the salt (Mosquitto 1.6 and
//!   earlier).
//!
//! Salt and hash are standard base64. Blank lines and lines starting with `#` are skipped. A
//! line that cannot be read stops start-up with its number; nothing is half-loaded.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// How one user's password is checked.
#[derive(Clone)]
enum Hash {
    Pbkdf2Sha512 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Sha512 {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

impl Hash {
    fn parse(text: &str) -> Result<Hash, String> {
        let decode = |field: &str, what: &str| {
            STANDARD
                .decode(field)
                .map_err(|e| format!("{what} is not base64: {e}"))
        };
        let parts: Vec<&str> = text.split('$').collect();
        match parts.as_slice() {
            ["", "7", iterations, salt, hash] => {
                let iterations: u32 = iterations
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("iteration count {iterations:?} is not a positive number"))?;
                let salt = decode(salt, "salt")?;
                let hash = decode(hash, "hash")?;
                if hash.len() != 64 {
                    return Err(format!("a $7$ hash is 64 bytes, this one {}", hash.len()));
                }
                Ok(Hash::Pbkdf2Sha512 {
                    iterations,
                    salt,
                    hash,
                })
            }
            ["", "6", salt, hash] => {
                let salt = decode(salt, "salt")?;
                let hash = decode(hash, "hash")?;
                if hash.len() != 64 {
                    return Err(format!("a $6$ hash is 64 bytes, this one {}", hash.len()));
                }
                Ok(Hash::Sha512 { salt, hash })
            }
            _ => Err(
                "the hash is neither $7$ (PBKDF2-SHA512) nor $6$ (SHA-512); make it with mosquitto_passwd"
                    .into(),
            ),
        }
    }

    fn matches(&self, password: &[u8]) -> bool {
        let mut computed = [0u8; 64];
        let expected = match self {
            Hash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut computed);
                hash
            }
            Hash::Sha512 { salt, hash } => {
                let mut digest = Sha512::new();
                digest.update(password);
                digest.update(salt);
                computed.copy_from_slice(&digest.finalize());
                hash
            }
        };
        bool::from(computed.as_slice().ct_eq(expected))
    }
}

/// Iterations `mosquitto_passwd` uses for `$7$` hashes, and so the default of
/// `ferrumq-broker passwd`: every CONNECT with a password pays them.
pub const DEFAULT_ITERATIONS: u32 = 101;

/// Why [`password_line`] made no line.
#[derive(Debug, thiserror::Error)]
pub enum PasswordLineError {
    #[error("the username must not be empty or contain ':' or a line break")]
    Username,
    #[error("the password must not be empty")]
    EmptyPassword,
    #[error("the iteration count must be at least 1")]
    Iterations,
    #[error("no random salt: {0}")]
    Random(getrandom::Error),
}

/// One password file line for `username`: a `$7$` (PBKDF2-HMAC-SHA512) hash of `password`
/// with a random 12-byte salt, as `mosquitto_passwd` writes it, so Mosquitto reads the file
/// too.
pub fn password_line(
    username: &str,
    password: &[u8],
    iterations: u32,
) -> Result<String, PasswordLineError> {
    if username.is_empty() || username.contains([':', '\n', '\r']) {
        return Err(PasswordLineError::Username);
    }
    if password.is_empty() {
        return Err(PasswordLineError::EmptyPassword);
    }
    if iterations == 0 {
        return Err(PasswordLineError::Iterations);
    }
    let mut salt = [0u8; 12];
    getrandom::fill(&mut salt).map_err(PasswordLineError::Random)?;
    let mut hash = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<Sha512>(password, &salt, iterations, &mut hash);
    Ok(format!(
        "{username}:$7${iterations}${}${}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    ))
}

/// The users of a password file.
#[derive(Clone)]
pub struct PasswordFile {
    users: HashMap<String, Hash>,
    /// Checked for unknown users, so a refusal takes as long whether the user exists or not.
    decoy: Hash,
}

impl std::fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordFile")
            .field("users", &self.users.len())
            .finish()
    }
}

impl PasswordFile {
    /// Parses a password file's text; an error carries the 1-based line at fault.
    pub fn parse(text: &str) -> Result<PasswordFile, (usize, String)> {
        let mut users = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let number = index + 1;
            let Some((user, hash)) = line.split_once(':') else {
                return Err((number, "expected username:password-hash".into()));
            };
            if user.is_empty() {
                return Err((number, "the username is empty".into()));
            }
            let hash = Hash::parse(hash).map_err(|reason| (number, reason))?;
            if users.insert(user.to_owned(), hash).is_some() {
                return Err((number, format!("user {user:?} is listed twice")));
            }
        }
        Ok(PasswordFile {
            users,
            decoy: Hash::Pbkdf2Sha512 {
                iterations: 101,
                salt: vec![0; 12],
                hash: vec![0; 64],
            },
        })
    }

    /// Whether `password` is `username`'s. An unknown user is checked against a decoy hash,
    /// so the answer's timing does not tell which users exist.
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        match self.users.get(username) {
            Some(hash) => hash.matches(password),
            None => {
                self.decoy.matches(password);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with `mosquitto_passwd` 2.0.11 (Debian): alice with its default PBKDF2-SHA512,
    /// bob with `-H sha512`. The live tool is exercised in `tests/interop_mosquitto.rs`.
    const MOSQUITTO_FILE: &str = "\
alice:$7$101$lFsRAykQhxz60NxJ$glU/QUr5HJ45pcoP8yR9QnLNCy851aCMgsYSIVDu1f8BLyYGjiBuwRW2pgoqX5YSawf/N2FCRnre4aTtvYNb2A==
bob:$6$EomL2EILM9cp06Ek$bOx3fdhf8XBy/DrXyITa+G5RMpaquKImMg+vO/TuKJcQelVLFSxs3uah4jFVq1NUW9P9OcdO/fE6rJ/x5iduSw==
";

    #[test]
    fn passwords_made_by_mosquitto_passwd_verify_in_both_formats() {
        let file = PasswordFile::parse(MOSQUITTO_FILE).unwrap();
        assert_eq!(file.users.len(), 2);
        assert!(file.verify("alice", b"wonder land"));
        assert!(file.verify("bob", b"s3cret"));
        assert!(!file.verify("alice", b"wonder lan"));
        assert!(!file.verify("bob", b"s3cret "));
        assert!(
            !file.verify("alice", b"s3cret"),
            "bob's password is not alice's"
        );
        assert!(!file.verify("carol", b"wonder land"), "unknown user");
    }

    #[test]
    fn made_lines_verify_and_never_share_a_salt() {
        let a = password_line("alice", b"wonder land", DEFAULT_ITERATIONS).unwrap();
        let b = password_line("bob", b"wonder land", 1000).unwrap();
        let file = PasswordFile::parse(&format!("{a}\n{b}\n")).unwrap();
        assert!(file.verify("alice", b"wonder land"));
        assert!(file.verify("bob", b"wonder land"));
        assert!(!file.verify("alice", b"wonderland"));
        assert!(b.contains(":$7$1000$"), "{b}");
        let again = password_line("alice", b"wonder land", DEFAULT_ITERATIONS).unwrap();
        assert_ne!(a, again, "a fresh salt each time");
        for (user, password, iterations) in [
            ("", &b"p"[..], 1),
            ("a:b", b"p", 1),
            ("a\nb", b"p", 1),
            ("a", b"", 1),
            ("a", b"p", 0),
        ] {
            assert!(
                password_line(user, password, iterations).is_err(),
                "{user:?}"
            );
        }
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number() {
        let text = format!("# users\n\n{MOSQUITTO_FILE}dave:plaintext\n");
        let (line, reason) = PasswordFile::parse(&text).unwrap_err();
        assert_eq!(line, 5);
        assert!(reason.contains("mosquitto_passwd"), "{reason}");
        for (bad, expect) in [
            ("nocolon", "username:password-hash"),
            (":$6$AAAA$AAAA", "username is empty"),
            ("e:$7$0$AAAA$AAAA", "iteration count"),
            ("e:$6$!!$AAAA", "salt is not base64"),
            ("e:$6$AAAA$AAAA", "64 bytes"),
        ] {
            let (line, reason) = PasswordFile::parse(bad).unwrap_err();
            assert_eq!(line, 1);
            assert!(reason.contains(expect), "{bad}: {reason}");
        }
        let twice = format!("{MOSQUITTO_FILE}{}", MOSQUITTO_FILE.lines().next().unwrap());
        assert!(PasswordFile::parse(&twice).unwrap_err().1.contains("twice"));
    }
}
