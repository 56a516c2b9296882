//! Listeners: bind every configured address, accept connections, and stop on shutdown.
//!
//! [`start`] returns once every listener is bound (so tests can use port 0 and read the real
//! address), with a [`RunningBroker`] that shuts the broker down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::{BrokerConfig, ListenerProtocol};
use crate::connection;
use crate::server::Broker;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listener {name:?}: cannot bind {bind}: {source}")]
    Bind {
        name: String,
        bind: String,
        source: std::io::Error,
    },
    #[error("listener {name:?}: protocol {protocol} is not supported by this build yet")]
    UnsupportedProtocol {
        name: String,
        protocol: &'static str,
    },
    #[error("settings.auth.passwordFile: {0}")]
    PasswordFile(#[from] crate::auth::PasswordFileError),
    #[error("settings.auth.aclFile is set, but this build does not enforce ACL files yet; it refuses to start rather than let every user reach every topic")]
    AclFileUnsupported,
}

/// A started broker.
pub struct RunningBroker {
    pub broker: Arc<Broker>,
    /// Each listener's name and bound address.
    pub listeners: Vec<(String, SocketAddr)>,
    /// The admin HTTP listener's bound address (`/metrics`, `/healthz`, `/readyz`, `/drain`).
    pub admin: SocketAddr,
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
    if config.settings.auth.acl_file.is_some() {
        return Err(StartError::AclFileUnsupported);
    }
    let mut bound = Vec::new();
    for listener in &config.listeners {
        if listener.protocol != ListenerProtocol::Mqtt {
            return Err(StartError::UnsupportedProtocol {
                name: listener.name.clone(),
                protocol: listener.protocol.as_str(),
            });
        }
        let socket =
            TcpListener::bind(&listener.bind)
                .await
                .map_err(|source| StartError::Bind {
                    name: listener.name.clone(),
                    bind: listener.bind.clone(),
                    source,
                })?;
        bound.push((listener.name.clone(), socket));
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
    let broker = Broker::with_authenticator(config, authenticator);
    tracing::info!(%admin, "admin endpoints listening");
    tokio::spawn(crate::admin::serve(Arc::clone(&broker), admin_socket));
    let mut listeners = Vec::new();
    for (name, socket) in bound {
        let addr = socket.local_addr().map_err(|source| StartError::Bind {
            name: name.clone(),
            bind: String::new(),
            source,
        })?;
        tracing::info!(listener = %name, %addr, "listening for MQTT");
        tokio::spawn(accept_loop(Arc::clone(&broker), socket, name.clone()));
        listeners.push((name, addr));
    }
    crate::sys::spawn(&broker);
    crate::server::deadlines::spawn(&broker);
    Ok(RunningBroker {
        broker,
        listeners,
        admin,
    })
}

async fn accept_loop(broker: Arc<Broker>, socket: TcpListener, name: String) {
    let publishes = broker.stats.listener_publishes(&name);
    loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    broker.tasks.spawn(connection::serve(
                        Arc::clone(&broker),
                        stream,
                        peer,
                        publishes.clone(),
                    ));
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
    /// The bound address of the first listener (what tests connect to).
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.listeners[0].1
    }

    /// Stops accepting, tells every 5.0 client DISCONNECT 0x8B, flushes, and waits up to the
    /// configured grace period for connections to close.
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
    }
}
