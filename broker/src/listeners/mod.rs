//! Listeners: bind every configured address, accept connections, and stop on shutdown.
//!
//! [`start`] returns once every listener is bound (so tests can use port 0 and read the real
//! address), with a [`RunningBroker`] that shuts the broker down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};

mod layers;
mod reload;
mod tls;
mod websocket;

use layers::Layers;
pub use layers::HANDSHAKE_TIMEOUT;
pub use reload::Reloader;
pub use tls::{TlsError, TlsListener};
pub use websocket::WsStream;

use crate::config::BrokerConfig;
use crate::connection;
use crate::server::Broker;
use crate::store::{save_logged, Store, StoreError, StoreMetrics};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listener {name:?}: cannot bind {bind}: {source}")]
    Bind {
        name: String,
        bind: String,
        source: std::io::Error,
    },
    #[error("listener {name:?}: tls.{source}")]
    Tls { name: String, source: Box<TlsError> },
    #[error("{0}")]
    AuthFile(#[from] crate::auth::AuthFileError),
    #[error("persistence: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    ApiToken(#[from] crate::admin::ApiTokenError),
    #[error("persistence: cannot register its metrics: {0}")]
    StoreMetrics(#[from] prometheus::Error),
}

/// The state file a running broker saves to, and the metrics of its saves.
struct Persistence {
    store: Arc<Store>,
    metrics: Arc<StoreMetrics>,
}

/// A started broker.
pub struct RunningBroker {
    pub broker: Arc<Broker>,
    /// Each listener's name and bound address.
    pub listeners: Vec<(String, SocketAddr)>,
    /// The admin HTTP listener's bound address (`/metrics`, `/healthz`, `/readyz`, `/drain`).
    pub admin: SocketAddr,
    /// Set with `persistence.dataDir`: saved to when the broker stops.
    persistence: Option<Persistence>,
    reloader: Reloader,
}

/// Binds every listener and starts accepting, authenticating as the configuration says.
pub async fn start(config: BrokerConfig) -> Result<RunningBroker, StartError> {
    let authenticator = Box::new(crate::auth::ConfiguredAuth::new(&config.settings.auth)?);
    start_with_authenticator(config, authenticator).await
}

/// Like [`start`], with an [`Authenticator`](crate::auth::Authenticator) of the embedder's.
pub async fn start_with_authenticator(
    config: BrokerConfig,
    authenticator: Box<dyn crate::auth::Authenticator>,
) -> Result<RunningBroker, StartError> {
    let mut bound = Vec::new();
    for listener in &config.listeners {
        let layers = Layers::of(listener)?;
        let backlog = config.settings.limits.listen_backlog;
        let socket = bind_with_backlog(&listener.bind, backlog)
            .await
            .map_err(|source| StartError::Bind {
                name: listener.name.clone(),
                bind: listener.bind.clone(),
                source,
            })?;
        bound.push((listener.name.clone(), socket, layers));
    }
    let admin_bind = config.admin.bind.clone();
    let admin_socket = TcpListener::bind(&admin_bind)
        .await
        .map_err(|source| StartError::Bind {
            name: "admin".into(),
            bind: admin_bind.clone(),
            source,
        })?;
    let admin = admin_socket
        .local_addr()
        .map_err(|source| StartError::Bind {
            name: "admin".into(),
            bind: admin_bind,
            source,
        })?;
    let api_token = match &config.admin.api_token_file {
        Some(path) => Some(Arc::new(crate::admin::ApiToken::from_file(path)?)),
        None => None,
    };
    let store = match &config.persistence.data_dir {
        Some(dir) => Some(Arc::new(Store::open(dir)?)),
        None => None,
    };
    let autosave = Duration::from_secs(u64::from(config.persistence.autosave_interval_secs));
    let broker = Broker::with_authenticator(config, authenticator);
    // Before anything is served, so no client sees the broker without its saved state.
    let persistence = match store {
        Some(store) => Some(restore(store, &broker, autosave)?),
        None => None,
    };
    tracing::info!(%admin, "admin endpoints listening");
    tokio::spawn(crate::admin::serve(
        Arc::clone(&broker),
        admin_socket,
        api_token,
    ));
    let tls = bound
        .iter()
        .filter_map(|(name, _, layers)| Some((name.clone(), layers.as_ref()?.tls()?.clone())))
        .collect();
    let reloader = Reloader::new(Arc::clone(&broker), tls);
    reloader.spawn_timers();
    let mut listeners = Vec::new();
    for (name, socket, layers) in bound {
        let addr = socket.local_addr().map_err(|source| StartError::Bind {
            name: name.clone(),
            bind: String::new(),
            source,
        })?;
        tracing::info!(listener = %name, %addr, "listening for MQTT");
        tokio::spawn(accept_loop(
            Arc::clone(&broker),
            socket,
            name.clone(),
            layers,
        ));
        listeners.push((name, addr));
    }
    crate::sys::spawn(&broker);
    crate::server::deadlines::spawn(&broker);
    Ok(RunningBroker {
        broker,
        listeners,
        admin,
        persistence,
        reloader,
    })
}

/// Loads the saved state into `broker` and starts saving it every `autosave` (if not 0).
fn restore(
    store: Arc<Store>,
    broker: &Arc<Broker>,
    autosave: Duration,
) -> Result<Persistence, StartError> {
    let metrics = Arc::new(StoreMetrics::new(&broker.stats.registry)?);
    let restored = store.restore(broker)?;
    tracing::info!(
        file = %store.path().display(),
        sessions = restored.sessions,
        retained = restored.retained,
        expired = restored.expired,
        "saved state loaded"
    );
    let (saving, b, m) = (Arc::clone(&store), Arc::clone(broker), Arc::clone(&metrics));
    broker.every_blocking(autosave, move || save_logged(&saving, &b, &m));
    Ok(Persistence { store, metrics })
}

/// Binds `bind` (an `IP:port`, or a name resolved as [`TcpListener::bind`] resolves it: the
/// first address that binds wins) with a listen backlog of `backlog` connections; Tokio's
/// `bind` fixes it at 128.
async fn bind_with_backlog(bind: &str, backlog: u32) -> std::io::Result<TcpListener> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(bind).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        // As `TcpListener::bind` does: a restarted broker binds while its old connections
        // linger in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

/// Accepts connections on `socket`, serving them directly or, with `layers`, after their TLS
/// or WebSocket handshakes.
async fn accept_loop(
    broker: Arc<Broker>,
    socket: TcpListener,
    name: String,
    layers: Option<Layers>,
) {
    let publishes = broker.stats.listener_publishes(&name);
    // A series only for listeners with a handshake: a plain one has none to fail.
    let layers = layers.map(|layers| (layers, broker.stats.handshake_failures(&name)));
    loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let serving = Arc::clone(&broker);
                    match &layers {
                        None => {
                            broker.tasks.spawn(connection::serve(
                                serving,
                                stream,
                                peer,
                                publishes.clone(),
                            ));
                        }
                        Some((layers, failures)) => {
                            broker.tasks.spawn(layers.clone().serve(
                                serving,
                                stream,
                                peer,
                                publishes.clone(),
                                failures.clone(),
                            ));
                        }
                    }
                }
                Err(error) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = broker.shutdown.cancelled() => return,
        }
    }
}

impl RunningBroker {
    /// What reloads the broker's files (on SIGHUP, in `main`).
    pub fn reloader(&self) -> Reloader {
        self.reloader.clone()
    }

    /// The bound address of the first listener (what tests connect to).
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.listeners[0].1
    }

    /// Stops accepting, tells every 5.0 client DISCONNECT 0x8B, flushes, waits up to the
    /// configured grace period for connections to close, then (with persistence) saves the
    /// retained messages and the sessions, now detached, for the next start.
    pub async fn shutdown(self) {
        let grace =
            Duration::from_secs(u64::from(self.broker.settings().shutdown.grace_period_secs));
        self.broker.begin_shutdown();
        self.broker.tasks.close();
        if tokio::time::timeout(grace, self.broker.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after the shutdown grace period");
        }
        if let Some(Persistence { store, metrics }) = self.persistence {
            let broker = Arc::clone(&self.broker);
            let _ =
                tokio::task::spawn_blocking(move || save_logged(&store, &broker, &metrics)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;
    use tokio::time::timeout;

    /// Completes a TCP handshake with `addr`, or gives up after `wait`.
    async fn handshake(addr: SocketAddr, wait: Duration) -> Option<TcpStream> {
        timeout(wait, TcpStream::connect(addr)).await.ok()?.ok()
    }

    #[tokio::test]
    async fn the_backlog_holds_connections_the_broker_has_not_accepted_yet() {
        // Nothing accepts here, as when the broker is busy. Linux completes `backlog + 1`
        // handshakes and then drops SYNs, which clients retry only after 1 s, 3 s, ...
        let listener = bind_with_backlog("127.0.0.1:0", 8).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        for i in 0..9 {
            let stream = handshake(addr, Duration::from_secs(10)).await;
            held.push(stream.unwrap_or_else(|| panic!("connection {i} fits the backlog")));
        }
        assert!(
            handshake(addr, Duration::from_millis(1500)).await.is_none(),
            "a 10th connection waits while the backlog of 8 is full"
        );
        drop(listener);
    }

    #[tokio::test]
    async fn the_default_backlog_takes_a_storm_of_300_connections_without_accepting() {
        // Tokio's own `bind` (backlog 128) left most of these waiting.
        let backlog = crate::config::LimitsConfig::default().listen_backlog;
        let listener = bind_with_backlog("127.0.0.1:0", backlog).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let storm: Vec<_> = (0..300)
            .map(|_| tokio::spawn(handshake(addr, Duration::from_secs(10))))
            .collect();
        for (i, attempt) in storm.into_iter().enumerate() {
            assert!(attempt.await.unwrap().is_some(), "connection {i} completed");
        }
    }
}
