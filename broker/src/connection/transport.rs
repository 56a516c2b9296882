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
