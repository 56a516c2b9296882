//! How a connection ends: why ([`Close`]), the DISCONNECT the server sends for it (5.0), and
//! what closing does once the socket is done with (buffers back, deadlines withdrawn, the
//! close counted and logged, the session detached and its Will published if due).

use tokio::io::AsyncWriteExt;

use super::{Connection, Transport, CLOSE_TIMEOUT};
use crate::codec::properties::id as property_id;
use crate::codec::{
    encoded_len, ByteString, DecodeError, Disconnect, DisconnectProperties, Packet, ReasonCode,
};
use crate::pool;
use crate::server::WillOnClose;

/// Why a connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Close {
    /// The client sent DISCONNECT; `with_will` for reason 0x04.
    ClientDisconnect {
        with_will: bool,
    },
    /// The socket closed or failed without DISCONNECT.
    Lost(String),
    /// The client broke the protocol or a limit: DISCONNECT with this reason (5.0), then close.
    Violation(ReasonCode, String),
    KeepAliveTimeout,
    TakenOver,
    ServerShutdown,
    Kicked(ReasonCode),
}

impl Close {
    pub(super) fn violation(code: ReasonCode, message: impl Into<String>) -> Close {
        Close::Violation(code, message.into())
    }

    /// The DISCONNECT reason the server sends (5.0 only), if it sends one.
    fn server_reason(&self) -> Option<ReasonCode> {
        match self {
            Close::ClientDisconnect { .. } | Close::Lost(_) => None,
            Close::Violation(code, _) | Close::Kicked(code) => Some(*code),
            Close::KeepAliveTimeout => Some(ReasonCode::KeepAliveTimeout),
            Close::TakenOver => Some(ReasonCode::SessionTakenOver),
            Close::ServerShutdown => Some(ReasonCode::ServerShuttingDown),
        }
    }

    /// The metrics label for a close the server sent no reason code for.
    fn label(&self) -> &'static str {
        match self {
            Close::ClientDisconnect { with_will: false } => "client",
            Close::ClientDisconnect { with_will: true } => "client_with_will",
            _ => "lost",
        }
    }

    fn will(&self) -> WillOnClose {
        match self {
            Close::ClientDisconnect { with_will: false } | Close::ServerShutdown => {
                WillOnClose::Discard
            }
            _ => WillOnClose::Publish,
        }
    }
}

impl<S: Transport> Connection<S> {
    pub(super) async fn finish(mut self, close: Close) {
        if let (Some(reason), true) = (close.server_reason(), self.version.is_v5()) {
            let reason_string = match (&close, self.problem_information) {
                (Close::Violation(_, message), true) => Some(ByteString::from(message.as_str())),
                _ => None,
            };
            let mut disconnect = Disconnect {
                reason_code: reason,
                properties: DisconnectProperties {
                    reason_string,
                    ..Default::default()
                },
            };
            // [MQTT-3.14.2-3]: no Reason String that would exceed the client's Maximum Packet Size.
            let fits = |d: &Disconnect| {
                encoded_len(&Packet::Disconnect(d.clone()), self.version)
                    .is_ok_and(|len| len <= self.outbox.limits().maximum_packet_size as usize)
            };
            if !fits(&disconnect) {
                disconnect.properties.reason_string = None;
            }
            self.send(&Packet::Disconnect(disconnect));
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = self
                .outbox
                .write_to(&mut self.stream, &self.broker.stats)
                .await;
            let _ = self.stream.shutdown().await;
        })
        .await;
        self.leave(close);
    }
}

impl<S> Connection<S> {
    /// Everything closing does once the socket is done with: gives buffers back, withdraws
    /// deadlines, counts and logs the close, and detaches from the session (publishing the
    /// Will if the close calls for it).
    pub(super) fn leave(mut self, close: Close) {
        self.outbox.release_buffer();
        if let Some(entry) = self.keep_alive_entry.take() {
            self.broker
                .keep_alive
                .cancel(entry.get(), &self.attached.signal);
        }
        if let Some(tick) = self.sleep_entry.take() {
            self.broker
                .sleep_deadlines
                .cancel(tick.get(), &self.attached.signal);
        }
        // Whatever the read buffer still holds is unhandled input of a closed connection.
        if self.rbuf.capacity() > 0 {
            pool::read_buffers().put(std::mem::take(&mut self.rbuf));
        }
        tracing::info!(client_id = %self.attached.session.client_id, peer = %self.peer, reason = ?close, "client disconnected");
        self.broker
            .stats
            .disconnected(self.version, close.server_reason(), close.label());
        self.broker.detach(
            &self.attached,
            self.will.take().map(|will| *will),
            close.will(),
        );
    }
}

/// The DISCONNECT reason for a packet that could not be decoded. A Topic Alias of 0 is the
/// codec's invalid property value, but the connection's Topic Alias Invalid (0x94) like any
/// other alias outside 1..=Topic Alias Maximum (section 3.3.2.3.4).
pub(super) fn reason_for(error: &DecodeError) -> ReasonCode {
    match error {
        DecodeError::InvalidPropertyValue { id, .. } if *id == property_id::TOPIC_ALIAS => {
            ReasonCode::TopicAliasInvalid
        }
        _ => error.reason_code(),
    }
}
