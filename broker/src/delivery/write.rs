//! Sending an outbox's pieces with vectored writes.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use smallvec::SmallVec;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Chunk, Outbox};
use crate::metrics::Stats;
use crate::pool;

/// Buffers handed to one `writev` call (the kernel's IOV_MAX is 1024).
const MAX_IOVECS: usize = 64;

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Head(range) => range.len(),
            Chunk::Payload(bytes) => bytes.len(),
        }
    }
}

impl Outbox {
    /// Bytes waiting to be written.
    pub fn pending_len(&self) -> usize {
        let listed: usize = self.chunks.iter().map(Chunk::len).sum();
        listed - self.front_written + (self.buf.len() - self.unlisted_from)
    }

    /// Writes everything pending, front to back, with vectored writes; then clears the buffer
    /// in place and records each delivered message's latency. Returns the bytes written.
    pub async fn write_to<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        stats: &Stats,
    ) -> io::Result<usize> {
        self.list_buffered();
        let mut total = 0;
        while !self.chunks.is_empty() {
            let written = poll_fn(|cx| self.poll_write_front(writer, cx)).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            total += written;
            self.advance(written);
        }
        writer.flush().await?;
        self.written(stats);
        Ok(total)
    }

    /// One `writev` of up to [`MAX_IOVECS`] pending pieces. The slice list is built on the
    /// stack inside the poll, not held across the await: it would otherwise add a kilobyte
    /// to every connection's task, idle or not.
    fn poll_write_front<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let mut slices: SmallVec<[IoSlice<'_>; MAX_IOVECS]> = SmallVec::new();
        for (i, chunk) in self.chunks.iter().take(MAX_IOVECS).enumerate() {
            let bytes: &[u8] = match chunk {
                Chunk::Head(range) => &self.buf[range.clone()],
                Chunk::Payload(payload) => payload,
            };
            let skip = if i == 0 { self.front_written } else { 0 };
            slices.push(IoSlice::new(&bytes[skip..]));
        }
        Pin::new(writer).poll_write_vectored(cx, &slices)
    }

    /// Drops `n` written bytes from the front of the list.
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.chunks.front() else {
                return;
            };
            let left = front.len() - self.front_written;
            if n >= left {
                n -= left;
                self.chunks.pop_front();
                self.front_written = 0;
            } else {
                self.front_written += n;
                n = 0;
            }
        }
    }

    /// Everything listed has reached the socket: reset the buffer in place and record latency.
    fn written(&mut self, stats: &Stats) {
        self.chunks.clear();
        self.front_written = 0;
        self.buf.clear();
        self.unlisted_from = 0;
        if self.received.is_empty() {
            return;
        }
        let now = Instant::now();
        for received in self.received.drain(..) {
            stats.observe_delivery(now.saturating_duration_since(received));
        }
    }

    /// Copies out every pending byte and marks it written, as a socket write would. For tests
    /// and benchmarks that check or count the bytes without a socket.
    pub fn drain_into(&mut self, out: &mut Vec<u8>, stats: &Stats) {
        self.list_buffered();
        for (i, chunk) in self.chunks.iter().enumerate() {
            let bytes: &[u8] = match chunk {
                Chunk::Head(range) => &self.buf[range.clone()],
                Chunk::Payload(payload) => payload,
            };
            let skip = if i == 0 { self.front_written } else { 0 };
            out.extend_from_slice(&bytes[skip..]);
        }
        self.written(stats);
    }

    /// Marks every pending byte written without copying it (benchmarks).
    pub fn discard_pending(&mut self, stats: &Stats) {
        self.list_buffered();
        self.written(stats);
    }

    /// Gives the write buffer back to the pool when nothing is pending, so an idle connection
    /// holds no buffer.
    pub fn release_buffer(&mut self) {
        if self.is_empty() && self.buf.capacity() > 0 {
            pool::write_buffers().put(std::mem::take(&mut self.buf));
        }
    }
}
