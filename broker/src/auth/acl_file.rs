//! Mosquitto's ACL file (`settings.auth.aclFile`): which topics each client may publish to,
//! subscribe to and receive.
//!
//! ```text
//! # Before the first `user` line: rules for clients without a username.
//! topic read public/#
//! user alice
//! topic readwrite sensors/alice/#
//! topic read sensors/#
//! topic deny sensors/secret/#
//! # Every client, with %c its client identifier and %u its username.
//! pattern readwrite clients/%c/#
//! ```
//!
//! `topic [read|write|readwrite|deny] FILTER` (readwrite when the access is left out) and
//! `pattern ...` (the same, for every client) take a topic filter; `user NAME` starts that
//! user's rules. With an ACL file, what no rule allows is refused: a client may publish to a
//! topic when a rule of its own matching the topic grants `write` and no matching rule says
//! `deny`, and receives a message when one grants `read` and none says `deny`. A SUBSCRIBE
//! filter is granted when some readable filter overlaps it and no `deny` rule covers it;
//! each message is still checked before it is queued, so `#` brings only what the client may
//! read. A shared subscription's filter must be readable throughout, since a group member
//! that dropped a message would lose it for the whole group. A pattern is not applied to a client whose identifier (for `%c`) or username (`%u`)
//! holds `+`, `#` or `/`, which would widen it, nor `%u` ones to clients without a username.

use std::collections::HashMap;
use std::sync::Arc;

use crate::codec::topic::{filter_matches, is_valid_plain_filter};

/// What a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Access {
    fn grants(self, action: Action) -> bool {
        matches!(
            (self, action),
            (Access::ReadWrite, _) | (Access::Read, Action::Read) | (Access::Write, Action::Write)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Read,
    Write,
}

/// One `topic` or `pattern` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    access: Access,
    filter: String,
}

/// A parsed ACL file. Each user's rules are shared by all of that user's connections; only
/// patterns are filled in per client.
#[derive(Debug, Clone, Default)]
pub struct AclFile {
    anonymous: Arc<[Rule]>,
    users: HashMap<String, Arc<[Rule]>>,
    patterns: Vec<Rule>,
}

impl AclFile {
    /// Parses an ACL file's text; an error carries the 1-based line at fault.
    pub fn parse(text: &str) -> Result<AclFile, (usize, String)> {
        let mut anonymous = Vec::new();
        let mut users: HashMap<String, Vec<Rule>> = HashMap::new();
        let mut patterns = Vec::new();
        let mut user: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fail = |reason: String| (index + 1, reason);
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "user" if rest.is_empty() => return Err(fail("`user` needs a username".into())),
                "user" => {
                    user = Some(rest.to_string());
                    users.entry(rest.to_string()).or_default();
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(rest).map_err(fail)?;
                    match (keyword, &user) {
                        ("pattern", _) => patterns.push(rule),
                        (_, Some(name)) => users.entry(name.clone()).or_default().push(rule),
                        (_, None) => anonymous.push(rule),
                    }
                }
                other => {
                    return Err(fail(format!(
                        "unknown keyword {other:?}: expected `topic`, `pattern` or `user`"
                    )))
                }
            }
        }
        Ok(AclFile {
            anonymous: anonymous.into(),
            users: users.into_iter().map(|(k, v)| (k, v.into())).collect(),
            patterns,
        })
    }

    /// The rules that apply to the client `client_id`, authenticated as `username` (none for
    /// an anonymous client), with patterns filled in.
    pub fn for_client(&self, username: Option<&str>, client_id: &str) -> ClientAcl {
        let own = match username {
            Some(name) => self.users.get(name).cloned().unwrap_or_default(),
            None => Arc::clone(&self.anonymous),
        };
        let mut filled = Vec::new();
        let widens = |value: &str| value.contains(['+', '#', '/']);
        for pattern in &self.patterns {
            let uses_user = pattern.filter.contains("%u");
            let uses_client = pattern.filter.contains("%c");
            let user = match (uses_user, username) {
                (true, None) => continue,
                (true, Some(name)) if widens(name) => continue,
                (_, name) => name.unwrap_or_default(),
            };
            if uses_client && widens(client_id) {
                continue;
            }
            let filter = pattern.filter.replace("%c", client_id).replace("%u", user);
            filled.push(Rule {
                access: pattern.access,
                filter,
            });
        }
        ClientAcl {
            username: username.map(Arc::from),
            own,
            patterns: filled,
        }
    }
}

/// `[read|write|readwrite|deny] FILTER`.
fn parse_rule(rest: &str) -> Result<Rule, String> {
    let (first, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let access = match first {
        "read" => Some(Access::Read),
        "write" => Some(Access::Write),
        "readwrite" => Some(Access::ReadWrite),
        "deny" => Some(Access::Deny),
        _ => None,
    };
    let (access, filter) = match access {
        Some(access) if !after.trim().is_empty() => (access, after.trim()),
        Some(_) => return Err(format!("`{first}` needs a topic filter after it")),
        None => (Access::ReadWrite, rest),
    };
    if !is_valid_plain_filter(filter) {
        return Err(format!("{filter:?} is not a valid topic filter"));
    }
    Ok(Rule {
        access,
        filter: filter.to_string(),
    })
}

/// The rules of one client (see the module documentation for how they decide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAcl {
    /// The user the rules are for (`None`: an anonymous client), to make them again from a
    /// reloaded file.
    username: Option<Arc<str>>,
    /// The user's (or the anonymous clients') rules, shared.
    own: Arc<[Rule]>,
    /// The patterns, filled in for this client.
    patterns: Vec<Rule>,
}

impl ClientAcl {
    /// The user these rules are for; `None` for an anonymous client.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Whether the client may publish to `topic`.
    pub fn may_publish(&self, topic: &str) -> bool {
        self.allows(topic, Action::Write)
    }

    /// Whether the client may receive a message published to `topic`.
    pub fn may_read(&self, topic: &str) -> bool {
        self.allows(topic, Action::Read)
    }

    /// Whether the client may join a shared subscription on `filter` (without the
    /// `$share/{group}/` prefix): only if it may read every topic the filter matches. A group
    /// hands each message to one member; a member that could not read it would lose it for
    /// the whole group.
    pub fn may_share(&self, filter: &str) -> bool {
        self.may_take(filter, filters_overlap, filter_covers)
    }

    /// Whether the client may subscribe to `filter` (without a `$share/{group}/` prefix). A
    /// deny rule refuses it when the filter, read as a topic, matches the rule.
    pub fn may_subscribe(&self, filter: &str) -> bool {
        self.may_take(filter, filter_matches, filters_overlap)
    }

    /// No deny rule `denies(rule, filter)`, and some read rule `grants(rule, filter)`.
    fn may_take(
        &self,
        filter: &str,
        denies: fn(&str, &str) -> bool,
        grants: fn(&str, &str) -> bool,
    ) -> bool {
        let denied = self
            .rules()
            .any(|r| r.access == Access::Deny && denies(&r.filter, filter));
        !denied
            && self
                .rules()
                .any(|r| r.access.grants(Action::Read) && grants(&r.filter, filter))
    }

    fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.own.iter().chain(&self.patterns)
    }

    fn allows(&self, topic: &str, action: Action) -> bool {
        let mut granted = false;
        for rule in self.rules() {
            if filter_matches(&rule.filter, topic) {
                if rule.access == Access::Deny {
                    return false;
                }
                granted |= rule.access.grants(action);
            }
        }
        granted
    }
}

/// Whether one filter starts with a `$` level and the other with a wildcard: a wildcard first
/// level does not reach `$` topics, so no topic matches both.
fn dollar_vs_wildcard(a: &str, b: &str) -> bool {
    let wildcard = |f: &str| f.starts_with(['+', '#']);
    (a.starts_with('$') && wildcard(b)) || (b.starts_with('$') && wildcard(a))
}

/// Whether every topic `inner` matches also matches `outer`.
fn filter_covers(outer: &str, inner: &str) -> bool {
    if dollar_vs_wildcard(outer, inner) {
        return false;
    }
    let (mut outer, mut inner) = (outer.split('/'), inner.split('/'));
    loop {
        match (outer.next(), inner.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(o), Some(i)) if o == i && o != "+" => {}
            _ => return false,
        }
    }
}

/// Whether some topic matches both filters.
fn filters_overlap(a: &str, b: &str) -> bool {
    if dollar_vs_wildcard(a, b) {
        return false;
    }
    let (mut a, mut b) = (a.split('/'), b.split('/'));
    loop {
        match (a.next(), b.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some(x), Some(y)) if x == "+" || y == "+" || x == y => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests;
