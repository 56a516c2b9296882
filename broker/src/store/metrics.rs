//! Metrics of the saves, so that a broker whose state is no longer being saved is noticed
//! (an alert on `ferrumq_persistence_saves_total{result="error"}`) before a restart loses it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{Gauge, IntCounterVec, IntGauge, Opts, Registry};

use super::Saved;

pub struct StoreMetrics {
    saves: IntCounterVec,
    last_success: Gauge,
    duration: Gauge,
    sessions: IntGauge,
    retained: IntGauge,
}

impl StoreMetrics {
    /// Registers the persistence metrics in `registry`.
    pub fn new(registry: &Registry) -> Result<StoreMetrics, prometheus::Error> {
        let saves = IntCounterVec::new(
            Opts::new(
                "ferrumq_persistence_saves_total",
                "Snapshots of retained messages and sessions written to the data directory, by result (ok, error).",
            ),
            &["result"],
        )?;
        let last_success = Gauge::new(
            "ferrumq_persistence_last_save_timestamp_seconds",
            "Unix time of the last snapshot that was written successfully.",
        )?;
        let duration = Gauge::new(
            "ferrumq_persistence_last_save_duration_seconds",
            "How long the last successful snapshot took to write.",
        )?;
        let sessions = IntGauge::new(
            "ferrumq_persistence_saved_sessions",
            "Persistent sessions in the last successful snapshot.",
        )?;
        let retained = IntGauge::new(
            "ferrumq_persistence_saved_retained_messages",
            "Retained messages in the last successful snapshot.",
        )?;
        registry.register(Box::new(saves.clone()))?;
        registry.register(Box::new(last_success.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(sessions.clone()))?;
        registry.register(Box::new(retained.clone()))?;
        // Both series exist from the start, so a rate over them is defined before a failure.
        saves.with_label_values(&["ok"]);
        saves.with_label_values(&["error"]);
        Ok(StoreMetrics {
            saves,
            last_success,
            duration,
            sessions,
            retained,
        })
    }

    pub fn saved(&self, saved: &Saved, took: Duration) {
        self.saves.with_label_values(&["ok"]).inc();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_success.set(now);
        self.duration.set(took.as_secs_f64());
        self.sessions
            .set(i64::try_from(saved.sessions).unwrap_or(i64::MAX));
        self.retained
            .set(i64::try_from(saved.retained).unwrap_or(i64::MAX));
    }

    pub fn failed(&self) {
        self.saves.with_label_values(&["error"]).inc();
    }
}
