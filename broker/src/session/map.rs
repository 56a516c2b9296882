//! Every session of the broker, found by client identifier.
//!
//! The map's entries are the sessions themselves, hashed and compared by the client
//! identifier each session already holds: a map from a copy of the identifier to the session
//! was 40 bytes an entry (a 32-byte `ByteString` key beside the pointer), against 8 here, and
//! every idle connection pays for its entry (issue #4: bytes per idle connection). Sharded
//! (`dashmap`), so connects and disconnects on different shards never wait for each other.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use dashmap::DashMap;

use super::Session;
use crate::codec::ByteString;
use crate::router::KeyedHashBuilder;

/// A session as a map key: hashed and compared as its client identifier, so the map is
/// searched with a `&str`.
#[derive(Debug, Clone)]
struct SessionKey(Arc<Session>);

impl SessionKey {
    fn client_id(&self) -> &str {
        &self.0.client_id
    }
}

impl Hash for SessionKey {
    /// As `str` hashes, which [`Borrow<str>`] requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.client_id().hash(state);
    }
}

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        self.client_id() == other.client_id()
    }
}

impl Eq for SessionKey {}

impl Borrow<str> for SessionKey {
    fn borrow(&self) -> &str {
        self.client_id()
    }
}

/// Sessions by client identifier, hashed with a keyed fast hash (client identifiers come from
/// clients; SipHash was a tenth of a fan-out's time).
#[derive(Debug, Default)]
pub struct SessionMap {
    map: DashMap<SessionKey, (), KeyedHashBuilder>,
}

impl SessionMap {
    /// The session of `client_id`, if there is one.
    pub fn get(&self, client_id: &str) -> Option<Arc<Session>> {
        self.map
            .get(client_id)
            .map(|entry| Arc::clone(&entry.key().0))
    }

    /// The session of `client_id`, created (empty) if there is none.
    pub fn get_or_create(&self, client_id: &ByteString) -> Arc<Session> {
        if let Some(session) = self.get(client_id) {
            return session;
        }
        let created = SessionKey(Session::new(client_id.clone()));
        // Another connection may have created it since the lookup: the entry keeps the first.
        let entry = self.map.entry(created).or_insert(());
        Arc::clone(&entry.key().0)
    }

    /// Removes `session` from the map if it is still the one filed under its client
    /// identifier and `remove` says so; `remove` runs under the map's shard lock.
    pub fn remove_if(&self, session: &Arc<Session>, remove: impl FnOnce(&Session) -> bool) -> bool {
        self.map
            .remove_if(&*session.client_id, |key, ()| {
                Arc::ptr_eq(&key.0, session) && remove(&key.0)
            })
            .is_some()
    }

    /// Every session, collected first so that no session lock is ever taken under a shard lock
    /// by the caller.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.map
            .iter()
            .map(|entry| Arc::clone(&entry.key().0))
            .collect()
    }

    /// Calls `f` on every session while holding each shard's read lock in turn; `f` must not
    /// touch the map.
    pub fn for_each(&self, mut f: impl FnMut(&Session)) {
        for entry in self.map.iter() {
            f(&entry.key().0);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_client_identifier_and_created_once() {
        let map = SessionMap::default();
        let id = ByteString::from("device-7");
        let created = map.get_or_create(&id);
        assert!(Arc::ptr_eq(&created, &map.get_or_create(&id)));
        assert!(Arc::ptr_eq(&created, &map.get("device-7").unwrap()));
        assert!(map.get("device-8").is_none());
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn only_the_filed_session_is_removed_and_only_when_asked() {
        let map = SessionMap::default();
        let id = ByteString::from("c");
        let filed = map.get_or_create(&id);
        let stranger = Session::new(id.clone());
        assert!(
            !map.remove_if(&stranger, |_| true),
            "same id, other session"
        );
        assert!(!map.remove_if(&filed, |_| false));
        assert_eq!(map.len(), 1);
        assert!(map.remove_if(&filed, |s| s.client_id == "c"));
        assert!(map.is_empty());
        assert!(map.get("c").is_none());
    }
}
