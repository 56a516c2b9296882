//! The byte stream a connection serves, as the connection loop needs it.

use std::future::Future;
use std::io;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A client's stream with readiness: the connection waits until the stream is readable
/// before it takes a read buffer from the pool, so an idle connection holds none (an `async`
/// read needs its buffer for as long as it waits).
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// Completes when a read may make progress (data, end of stream or an error).
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;

    /// Reads what is available without waiting; `WouldBlock` when nothing is.
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize>;
}

impl Transport for TcpStream {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::readable(self)
    }

    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        TcpStream::try_read_buf(self, buf)
    }
}
