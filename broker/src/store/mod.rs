//! Persistence: retained messages and persistent sessions saved to an embedded database
//! (`redb`, one file in `persistence.dataDir`) and loaded back when the broker starts.
//!
//! The broker saves a whole snapshot in one transaction, every `autosaveIntervalSecs` and once
//! more when it stops (after its clients have gone, so their sessions are saved detached). The
//! message path never touches the disk: a crash loses what changed since the last save, a
//! clean stop (SIGTERM, a rolling update) loses nothing. A snapshot replaces the previous one
//! whole, so the file never holds half of two saves.
//!
//! What is saved: every retained message except `$` topics (the broker makes those itself),
//! and every session with a Session Expiry Interval above 0, with its subscriptions, queued
//! messages, messages in flight and QoS 2 packet identifiers awaiting PUBREL. Will Messages
//! waiting out a Will Delay Interval are not.

mod metrics;
mod record;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::codec::ByteString;
use crate::server::Broker;
pub use metrics::StoreMetrics;
pub use record::RecordError;
use record::{now_unix_ms, SavedMessage, SavedSession, SessionCopy};

/// The state file's name in the data directory.
pub const FILE_NAME: &str = "ferrumq.redb";

/// Version of the records' layout; a file saved with another is refused, not misread.
/// 2: sessions keep whose topic rules they were held to.
const FORMAT: u32 = 2;

const META: TableDefinition<&str, u32> = TableDefinition::new("meta");
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");

/// Why the state file could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Database { path: PathBuf, source: redb::Error },
    #[error("{path} was saved in format {found}, this broker reads format {FORMAT}; move it aside to start empty")]
    Format { path: PathBuf, found: u32 },
    #[error(
        "{path}: {what} {key:?} cannot be read back ({source}); move the file aside to start empty"
    )]
    Record {
        path: PathBuf,
        what: &'static str,
        key: String,
        source: RecordError,
    },
}

/// What a save wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Saved {
    pub sessions: usize,
    pub retained: usize,
    /// Records left out because they could not be encoded (logged one by one).
    pub skipped: usize,
}

impl Saved {
    fn count(&mut self, written: bool, total: impl FnOnce(&mut Saved) -> &mut usize) {
        if written {
            *total(self) += 1;
        } else {
            self.skipped += 1;
        }
    }
}

/// What a start-up load put back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Restored {
    pub sessions: usize,
    pub retained: usize,
    /// Sessions and retained messages whose expiry interval ran out while the broker was down.
    pub expired: usize,
}

/// The open state file.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// One save at a time: an autosave and the final save must not interleave.
    saving: Mutex<()>,
}

impl Store {
    /// Opens (creating if needed) the state file in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| StoreError::Database {
            path: path.clone(),
            source: e.into(),
        })?;
        let store = Store {
            db,
            path,
            saving: Mutex::new(()),
        };
        store.check_format()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_error(&self, error: impl Into<redb::Error>) -> StoreError {
        StoreError::Database {
            path: self.path.clone(),
            source: error.into(),
        }
    }

    /// Marks a new file with [`FORMAT`], refuses a file of another format, and creates the
    /// tables so that reading them never finds one missing.
    fn check_format(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.db_error(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.db_error(e))?;
            let found = meta
                .get("format")
                .map_err(|e| self.db_error(e))?
                .map(|v| v.value());
            match found {
                Some(FORMAT) => {}
                Some(found) => {
                    return Err(StoreError::Format {
                        path: self.path.clone(),
                        found,
                    })
                }
                None => {
                    meta.insert("format", FORMAT)
                        .map_err(|e| self.db_error(e))?;
                }
            }
            txn.open_table(RETAINED).map_err(|e| self.db_error(e))?;
            txn.open_table(SESSIONS).map_err(|e| self.db_error(e))?;
        }
        txn.commit().map_err(|e| self.db_error(e))
    }

    /// Saves every retained message and persistent session of `broker`, replacing the
    /// previous snapshot in one transaction. Blocking (disk I/O): call it off the runtime's
    /// worker threads ([`save_logged`] on a blocking thread).
    pub fn save(&self, broker: &Broker) -> Result<Saved, StoreError> {
        let _one_at_a_time = self.saving.lock();
        let now_ms = now_unix_ms();
        let mut retained = Vec::new();
        broker.retained.read().for_each(|m| {
            if !m.topic.starts_with('$') {
                retained.push(m.clone());
            }
        });
        let mut saved = Saved::default();
        let txn = self.db.begin_write().map_err(|e| self.db_error(e))?;
        txn.delete_table(RETAINED).map_err(|e| self.db_error(e))?;
        txn.delete_table(SESSIONS).map_err(|e| self.db_error(e))?;
        {
            let mut table = txn.open_table(RETAINED).map_err(|e| self.db_error(e))?;
            for message in retained {
                let record = SavedMessage::of(&message, now_ms);
                let written =
                    self.insert(&mut table, "retained message", &message.topic, record)?;
                saved.count(written, |saved| &mut saved.retained);
            }
            let mut table = txn.open_table(SESSIONS).map_err(|e| self.db_error(e))?;
            for session in broker.sessions.all() {
                let Some(copy) = SessionCopy::of(&session.state.lock()) else {
                    continue;
                };
                let record = SavedSession::of(copy, now_ms);
                let written = self.insert(&mut table, "session", &session.client_id, record)?;
                saved.count(written, |saved| &mut saved.sessions);
            }
        }
        txn.commit().map_err(|e| self.db_error(e))?;
        Ok(saved)
    }

    /// Writes `record` under `key`. A record that cannot be encoded is logged and left out
    /// (false): one bad message must not cost the whole snapshot.
    fn insert<T: serde::Serialize>(
        &self,
        table: &mut redb::Table<&str, &[u8]>,
        what: &str,
        key: &str,
        record: Result<T, RecordError>,
    ) -> Result<bool, StoreError> {
        match record.and_then(|r| Ok(postcard::to_allocvec(&r)?)) {
            Ok(bytes) => {
                table
                    .insert(key, bytes.as_slice())
                    .map_err(|e| self.db_error(e))?;
                Ok(true)
            }
            Err(error) => {
                tracing::warn!(%key, %error, "{what} not saved");
                Ok(false)
            }
        }
    }

    /// Loads the last snapshot into `broker`, which must not be serving clients yet. Sessions
    /// come back detached, with their expiry timers running (so this needs a Tokio runtime).
    pub fn restore(&self, broker: &Arc<Broker>) -> Result<Restored, StoreError> {
        let now_ms = now_unix_ms();
        let mut restored = Restored::default();
        let txn = self.db.begin_read().map_err(|e| self.db_error(e))?;
        let record_error = |what, key: &str, source| StoreError::Record {
            path: self.path.clone(),
            what,
            key: key.to_owned(),
            source,
        };
        let table = txn.open_table(RETAINED).map_err(|e| self.db_error(e))?;
        let mut retained = broker.retained.write();
        for entry in table.iter().map_err(|e| self.db_error(e))? {
            let (key, value) = entry.map_err(|e| self.db_error(e))?;
            let topic = key.value();
            let (message, expired) = postcard::from_bytes::<SavedMessage>(value.value())
                .map_err(RecordError::from)
                .and_then(|r| r.restore(now_ms))
                .map_err(|e| record_error("retained message", topic, e))?;
            if expired {
                restored.expired += 1;
            } else {
                retained.insert(topic, message);
                restored.retained += 1;
            }
        }
        drop(retained);
        let table = txn.open_table(SESSIONS).map_err(|e| self.db_error(e))?;
        for entry in table.iter().map_err(|e| self.db_error(e))? {
            let (key, value) = entry.map_err(|e| self.db_error(e))?;
            let client_id = key.value();
            let live = postcard::from_bytes::<SavedSession>(value.value())
                .map_err(RecordError::from)
                .and_then(|r| r.restore(ByteString::from(client_id.to_owned()), broker, now_ms))
                .map_err(|e| record_error("session", client_id, e))?;
            if live {
                restored.sessions += 1;
            } else {
                restored.expired += 1;
            }
        }
        Ok(restored)
    }
}

/// Saves, recording the outcome in `metrics` and the log: what the timer and the final save
/// at shutdown run. Blocking (disk I/O): run it on a blocking thread.
pub fn save_logged(store: &Store, broker: &Broker, metrics: &StoreMetrics) {
    let started = Instant::now();
    match store.save(broker) {
        Ok(saved) => {
            metrics.saved(&saved, started.elapsed());
            tracing::debug!(
                sessions = saved.sessions,
                retained = saved.retained,
                "state saved"
            );
        }
        Err(error) => {
            metrics.failed();
            tracing::error!(%error, "saving the broker's state failed");
        }
    }
}
