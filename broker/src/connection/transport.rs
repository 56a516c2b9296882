//! The byte stream a connection serves, as the connection loop needs it.

use std::io;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

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

/// A TLS connection (`mqtts`). Its readiness is the socket's: rustls reads from the socket
/// only when it has no decrypted bytes left, so while decrypted bytes wait in the session the
/// socket's readiness has not been cleared (only a read that would block clears it), and a
/// wait for the socket returns at once.
impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_ref().0.poll_read_ready(cx)
    }

    /// One non-blocking read of decrypted bytes. Polled with a waker that does nothing: when
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
