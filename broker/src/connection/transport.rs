//! The byte stream a connection serves, as the connection loop needs it.

use std::io;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::codec::ByteString;
use crate::listeners::WsStream;

/// A client's stream with readiness: the connection waits until the stream is readable
/// before it takes a read buffer from the pool, so an idle connection holds none (an `async`
/// read needs its buffer for as long as it waits). Readiness is polled, not awaited: the
/// waker is kept in the stream's own slot, so the wait adds nothing to the task. `Sync`
/// because the wait borrows the stream while the task may move between threads.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + Sync {
    /// Ready when a read may make progress (data, end of stream or an error).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Reads what is available without waiting; `WouldBlock` when nothing is.
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize>;

    /// The username the transport proved: a verified client certificate's Common Name on a
    /// TLS listener with `useIdentityAsUsername`. It replaces the CONNECT's credentials.
    fn certified_username(&self) -> Option<&ByteString> {
        None
    }

    /// Whether an idle connection on this transport can go to sleep (see `dormant`): only a
    /// plain TCP socket can be watched without the runtime.
    fn can_sleep(&self) -> bool {
        false
    }

    /// The socket without its registration with the runtime, for a connection going to
    /// sleep. Called only when [`Transport::can_sleep`] is true.
    fn into_std(self) -> io::Result<std::net::TcpStream>
    where
        Self: Sized,
    {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl Transport for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        TcpStream::try_read_buf(self, buf)
    }

    fn can_sleep(&self) -> bool {
        true
    }

    fn into_std(self) -> io::Result<std::net::TcpStream> {
        TcpStream::into_std(self)
    }
}

/// A stream layered over a client's TCP socket: TLS, WebSocket, or both.
pub trait OverSocket {
    fn socket(&self) -> &TcpStream;
}

impl OverSocket for TcpStream {
    fn socket(&self) -> &TcpStream {
        self
    }
}

impl OverSocket for tokio_rustls::server::TlsStream<TcpStream> {
    fn socket(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl<S: OverSocket + AsyncRead + AsyncWrite + Unpin> OverSocket for WsStream<S> {
    fn socket(&self) -> &TcpStream {
        self.get_ref().socket()
    }
}

/// A layered stream (TLS, WebSocket) as a [`Transport`].
///
/// Waiting for the socket is not enough here: a layer may hold decoded bytes the last read
/// had no room for (a TLS record, a WebSocket message larger than the read buffer), and Tokio
/// clears a socket's readiness after any short read, so the socket may never turn readable
/// again for bytes that already arrived. The stream is therefore read again, without waiting,
/// until a read would block: only then has every layer handed over what it had, and only
/// then does the connection wait for the socket.
pub struct Layered<T> {
    stream: T,
    /// Whether the last read would have blocked (every layer is empty).
    drained: bool,
    /// See [`Transport::certified_username`].
    identity: Option<ByteString>,
}

impl<T> Layered<T> {
    /// `stream`, whose client the TLS layer knows as `identity` (if it does).
    pub fn new(stream: T, identity: Option<ByteString>) -> Layered<T> {
        Layered {
            stream,
            drained: false,
            identity,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Layered<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.stream).poll_read(cx, buf);
        self.drained = polled.is_pending();
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Layered<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl<T> Transport for Layered<T>
where
    T: OverSocket + AsyncRead + AsyncWrite + Unpin + Send + Sync,
{
    fn certified_username(&self) -> Option<&ByteString> {
        self.identity.as_ref()
    }

    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.drained {
            self.stream.socket().poll_read_ready(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }

    /// One read of decoded bytes, without waiting. Polled with a waker that does nothing: when
    /// it would block, the socket's read interest is left with that waker, and the connection
    /// loop's next wait ([`Transport::poll_read_ready`]) puts its own back before it sleeps.
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match tokio_util::io::poll_read_buf(std::pin::Pin::new(self), &mut cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}
