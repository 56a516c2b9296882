//! [`PersistenceConfig`]: where the broker keeps its state across restarts.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Saving retained messages and persistent sessions to disk, so that a restart (a rolling
/// update, a rescheduled pod) does not lose them.
///
/// The broker saves a whole snapshot every `autosaveIntervalSecs` and once more when it stops,
/// after its clients are gone, and loads it when it starts. Like Mosquitto's autosave, nothing
/// is written on the message path: a crash loses what changed since the last save, a clean
/// stop loses nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct PersistenceConfig {
    /// Directory of the state file (`ferrumq.redb`), created if missing. Unset: nothing is
    /// saved and every restart starts empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Seconds between saves while running; 0 saves only when the broker stops.
    pub autosave_interval_secs: u32,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        PersistenceConfig {
            data_dir: None,
            autosave_interval_secs: 60,
        }
    }
}
