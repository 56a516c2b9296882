//! Reloading what the broker reads from files while it runs: TLS certificates (a renewed
//! certificate must not need a restart that disconnects every client) and, through the
//! broker, the authentication files. On a timer per listener and, for everything at once,
//! on SIGHUP ([`Reloader`]).

use std::sync::Arc;

use super::tls::TlsListener;
use crate::server::Broker;

/// Reloads every reloadable file of a running broker. Cheap to clone: it shares the
/// listeners' TLS state.
#[derive(Clone)]
pub struct Reloader {
    broker: Arc<Broker>,
    /// The TLS listeners, by name.
    tls: Vec<(String, TlsListener)>,
}

impl Reloader {
    pub(super) fn new(broker: Arc<Broker>, tls: Vec<(String, TlsListener)>) -> Reloader {
        Reloader { broker, tls }
    }

    /// Reloads the authentication files and every listener's TLS files that changed,
    /// logging and counting the outcome (what SIGHUP does).
    pub fn reload(&self) {
        self.broker.reload_auth_logged();
        for (name, tls) in &self.tls {
            reload_tls_logged(&self.broker, name, tls);
        }
    }

    /// Checks each TLS listener's files every `tls.reloadIntervalSecs` (unless 0) until the
    /// broker shuts down.
    pub(super) fn spawn_tls_timers(&self) {
        for (name, tls) in &self.tls {
            let interval = tls.reload_interval();
            if interval.is_zero() {
                continue;
            }
            let (broker, name, tls) = (Arc::clone(&self.broker), name.clone(), tls.clone());
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {}
                        _ = broker.shutdown.cancelled() => return,
                    }
                    // Reading and parsing PEM files is blocking work: off the worker threads.
                    let (b, n, t) = (Arc::clone(&broker), name.clone(), tls.clone());
                    let _ =
                        tokio::task::spawn_blocking(move || reload_tls_logged(&b, &n, &t)).await;
                }
            });
        }
    }
}

/// [`TlsListener::reload`], logged and counted in `ferrumq_tls_reloads_total`.
fn reload_tls_logged(broker: &Broker, name: &str, tls: &TlsListener) {
    match tls.reload() {
        Ok(false) => {}
        Ok(true) => {
            broker.stats.tls_reloaded(name, true);
            tracing::info!(listener = %name, "TLS files reloaded");
        }
        Err(error) => {
            broker.stats.tls_reloaded(name, false);
            tracing::error!(listener = %name, %error, "TLS files not reloaded; the previous ones stay in force");
        }
    }
}
