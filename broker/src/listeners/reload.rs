//! Reloading what the broker reads from files while it runs: TLS certificates (a renewed
//! certificate must not need a restart that disconnects every client) and, through the
//! broker, the authentication files. On a timer per listener and, for everything at once,
//! on SIGHUP ([`Reloader`]).

use std::sync::Arc;
use std::time::Duration;

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

    /// Checks the authentication files every `settings.auth.reloadIntervalSecs` and each TLS
    /// listener's files every `tls.reloadIntervalSecs` (a zero interval: only on SIGHUP),
    /// until the broker shuts down.
    pub(super) fn spawn_timers(&self) {
        let auth = &self.broker.settings().auth;
        if auth.password_file.is_some() || auth.acl_file.is_some() {
            let interval = Duration::from_secs(u64::from(auth.reload_interval_secs));
            let broker = Arc::clone(&self.broker);
            self.broker
                .every_blocking(interval, move || broker.reload_auth_logged());
        }
        for (name, tls) in &self.tls {
            let (broker, name, tls) = (Arc::clone(&self.broker), name.clone(), tls.clone());
            self.broker.every_blocking(tls.reload_interval(), move || {
                reload_tls_logged(&broker, &name, &tls)
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
