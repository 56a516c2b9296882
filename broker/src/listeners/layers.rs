//! What a listener puts between a client's TCP socket and MQTT: nothing (`mqtt`), TLS
//! (`mqtts`), WebSocket (`ws`) or both (`wss`); and the handshakes that set them up before the
//! connection is served.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;
use tokio::net::TcpStream;

use super::tls::{TlsError, TlsListener};
use super::{websocket, StartError};
use crate::config::{ListenerConfig, ListenerProtocol};
use crate::connection::{self, Layered, OverSocket};
use crate::server::Broker;

/// Longest a client may take for the TLS and WebSocket handshakes together; the MQTT CONNECT
/// timeout starts after them.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes a WebSocket message may hold beyond the largest MQTT packet (a message may carry the
/// end of one packet and the start of the next).
const WS_MESSAGE_SLACK: usize = 64 * 1024;

/// The layers of one listener, made once at start-up (a plain `mqtt` listener has none).
#[derive(Clone)]
pub(super) enum Layers {
    Tls(TlsListener),
    Ws,
    Wss(TlsListener),
}

impl Layers {
    /// The layers `listener` asks for, with its TLS files read and checked.
    pub(super) fn of(listener: &ListenerConfig) -> Result<Option<Layers>, StartError> {
        let tls = || {
            let files = listener.tls.as_ref().ok_or(TlsError::NoFiles);
            files
                .and_then(TlsListener::from_files)
                .map_err(|source| StartError::Tls {
                    name: listener.name.clone(),
                    source: Box::new(source),
                })
        };
        Ok(match listener.protocol {
            ListenerProtocol::Mqtt => None,
            ListenerProtocol::Mqtts => Some(Layers::Tls(tls()?)),
            ListenerProtocol::Ws => Some(Layers::Ws),
            ListenerProtocol::Wss => Some(Layers::Wss(tls()?)),
        })
    }

    /// The listener's TLS layer, if it has one.
    pub(super) fn tls(&self) -> Option<&TlsListener> {
        match self {
            Layers::Tls(tls) | Layers::Wss(tls) => Some(tls),
            Layers::Ws => None,
        }
    }

    /// Sets up the layers on `stream` within [`HANDSHAKE_TIMEOUT`], then serves the
    /// connection. A failed or timed-out handshake is counted in `failures`.
    pub(super) async fn serve(
        self,
        broker: Arc<Broker>,
        stream: TcpStream,
        peer: SocketAddr,
        publishes: IntCounter,
        failures: IntCounter,
    ) {
        if let Err(error) = self.set_up_and_serve(broker, stream, peer, publishes).await {
            failures.inc();
            tracing::debug!(%peer, %error, "handshake failed");
        }
    }

    /// The work of [`Layers::serve`] for each kind of listener, boxed per kind: one future
    /// holding every kind's states at once took 22 KB, for as long as each connection lived.
    fn set_up_and_serve(
        self,
        broker: Arc<Broker>,
        stream: TcpStream,
        peer: SocketAddr,
        publishes: IntCounter,
    ) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send>> {
        let max_message = broker.settings().limits.max_packet_size as usize + WS_MESSAGE_SLACK;
        match self {
            Layers::Tls(tls) => Box::pin(async move {
                let stream = within_timeout(tls.handshake(stream)).await?;
                // The stream is borrowed for its identity inside a plain function: a local
                // borrowed in this block keeps its slot in the block's state (1.2 KB for a
                // TLS stream) for as long as the connection is served.
                let layered = with_identity(&tls, stream)?;
                serve_layered(broker, layered, peer, publishes).await;
                Ok(())
            }),
            Layers::Ws => Box::pin(async move {
                let stream = within_timeout(websocket::accept(stream, max_message)).await?;
                serve_layered(broker, Layered::new(stream, None), peer, publishes).await;
                Ok(())
            }),
            Layers::Wss(tls) => Box::pin(async move {
                let layered = async {
                    let stream = tls.handshake(stream).await?;
                    let identity = tls.identity(&stream)?;
                    Ok((websocket::accept(stream, max_message).await?, identity))
                };
                let (stream, identity) = within_timeout(layered).await?;
                serve_layered(broker, Layered::new(stream, identity), peer, publishes).await;
                Ok(())
            }),
        }
    }
}

/// `stream` as a [`Layered`] transport with the identity its client certificate gives it.
fn with_identity(
    tls: &TlsListener,
    stream: tokio_rustls::server::TlsStream<TcpStream>,
) -> io::Result<Layered<tokio_rustls::server::TlsStream<TcpStream>>> {
    let identity = tls.identity(&stream)?;
    Ok(Layered::new(stream, identity))
}

/// Serves a connection whose layers are set up, boxed at its own size: the task's future
/// holds every arm of [`Layers::serve`] at once, and inline the largest stream type (WebSocket
/// over TLS) would set the size of all of them.
fn serve_layered<T>(
    broker: Arc<Broker>,
    stream: Layered<T>,
    peer: SocketAddr,
    publishes: IntCounter,
) -> Pin<Box<impl Future<Output = ()>>>
where
    T: OverSocket + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync + 'static,
{
    Box::pin(connection::serve(broker, stream, peer, publishes))
}

/// Runs a handshake within [`HANDSHAKE_TIMEOUT`], boxed: the handshakes' state (22 KB for
/// TLS and WebSocket together) is freed when they finish; inline, it widened the task of every
/// TLS or WebSocket connection for as long as the connection lived.
fn within_timeout<T>(
    handshake: impl Future<Output = io::Result<T>>,
) -> Pin<Box<impl Future<Output = io::Result<T>>>> {
    Box::pin(async move {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    })
}
