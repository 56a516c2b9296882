//! MQTT over WebSocket (`ws` and `wss` listeners, MQTT 5.0 chapter 6): the server handshake,
//! and [`WsStream`], which turns the WebSocket's binary messages back into the byte stream the
//! connection loop reads and writes.
//!
//! A client offers the `mqtt` subprotocol [MQTT-6.0.0-3] (MQTT 3.1 clients offer `mqttv3.1`),
//! and the server selects it [MQTT-6.0.0-4]. MQTT control packets travel in binary data frames
//! only; a text frame closes the connection [MQTT-6.0.0-1]. A frame may hold several packets
//! or part of one [MQTT-6.0.0-2], so the messages are simply concatenated.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Subprotocols the server accepts, in order of preference.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// Read buffer of the WebSocket layer: small, since decoded messages are handed on at once
/// (tungstenite's default is 128 KiB per connection).
const READ_BUFFER: usize = 4096;

/// Completes the server side of the WebSocket handshake on `stream`, selecting the `mqtt`
/// subprotocol; refuses a client that offers subprotocols but not an MQTT one. Messages larger
/// than `max_message` bytes end the connection.
pub async fn accept<S>(stream: S, max_message: usize) -> io::Result<WsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let inner =
        tokio_tungstenite::accept_hdr_async_with_config(stream, select_subprotocol, Some(config))
            .await
            .map_err(io::Error::other)?;
    Ok(WsStream::new(inner))
}

/// The handshake callback: answers with the first MQTT subprotocol the client offers.
#[allow(clippy::result_large_err)] // the signature tungstenite's `Callback` requires
fn select_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let offered: Vec<&str> = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    if offered.is_empty() {
        // Some clients offer none; serve them anyway rather than fail a working setup.
        return Ok(response);
    }
    match SUBPROTOCOLS.iter().find(|p| offered.contains(p)) {
        Some(chosen) => {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_static(chosen));
            Ok(response)
        }
        None => {
            let mut refusal = ErrorResponse::new(Some(
                "this server speaks the mqtt WebSocket subprotocol only".into(),
            ));
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            Err(refusal)
        }
    }
}

/// A WebSocket connection as a byte stream: reads return the payloads of binary messages in
/// order; each write sends one binary message.
pub struct WsStream<S> {
    inner: WebSocketStream<S>,
    /// The part of the last binary message not read yet.
    unread: Bytes,
}

impl<S> WsStream<S> {
    /// A byte stream over an established WebSocket (either end: tests wrap their clients).
    pub fn new(inner: WebSocketStream<S>) -> WsStream<S> {
        WsStream {
            inner,
            unread: Bytes::new(),
        }
    }

    /// The stream under the WebSocket layer.
    pub fn get_ref(&self) -> &S
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.inner.get_ref()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.unread.is_empty() {
            match ready!(Pin::new(&mut self.inner).poll_next(cx)) {
                Some(Ok(Message::Binary(data))) => self.unread = data,
                // [MQTT-6.0.0-1]: a text frame closes the connection.
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a WebSocket text frame (MQTT travels in binary frames only)",
                    )))
                }
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Err(error)) => return Poll::Ready(Err(io::Error::other(error))),
            }
        }
        let n = buf.remaining().min(self.unread.len());
        buf.put_slice(&self.unread[..n]);
        self.unread.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    /// Everything in `bufs` as one binary message (copied: the message owns its payload).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let n = bufs.iter().map(|b| b.len()).sum();
        if n == 0 {
            // Nothing to send: no empty message on the wire.
            return Poll::Ready(Ok(0));
        }
        let mut inner = Pin::new(&mut self.inner);
        ready!(inner.as_mut().poll_ready(cx)).map_err(io::Error::other)?;
        let mut message = Vec::with_capacity(n);
        for b in bufs {
            message.extend_from_slice(b);
        }
        inner
            .start_send(Message::Binary(message.into()))
            .map_err(io::Error::other)?;
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner)
            .poll_close(cx)
            .map_err(io::Error::other)
    }
}
