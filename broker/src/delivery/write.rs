//! Sending an outbox's pieces with vectored writes.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use smallvec::SmallVec;
use tokio::io::AsyncWrite;

use super::{Chunk, Outbox, WriteBuffer};
use crate::metrics::Stats;
use crate::pool;

/// Buffers handed to one `writev` call (the kernel's IOV_MAX is 1024).
const MAX_IOVECS: usize = 64;

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Head(range) => range.len(),
            Chunk::Payload(message) => message.payload.len(),
        }
    }
}

impl WriteBuffer {
    fn pending_len(&self) -> usize {
        let listed: usize = self.chunks.iter().map(Chunk::len).sum();
        listed - self.front_written + (self.buf.len() - self.unlisted_from)
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
            let skip = if i == 0 { self.front_written } else { 0 };
            slices.push(IoSlice::new(&self.bytes_of(chunk)[skip..]));
        }
        Pin::new(writer).poll_write_vectored(cx, &slices)
    }

    fn bytes_of<'a>(&'a self, chunk: &'a Chunk) -> &'a [u8] {
        match chunk {
            Chunk::Head(range) => &self.buf[range.clone()],
            Chunk::Payload(message) => &message.payload,
        }
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
        stats.observe_deliveries(Instant::now(), &self.received);
        self.received.clear();
    }
}

impl Outbox {
    /// Bytes waiting to be written.
    pub fn pending_len(&self) -> usize {
        self.pending.as_ref().map_or(0, |out| out.pending_len())
    }

    /// Writes everything pending, front to back, with vectored writes; then clears the buffer
    /// in place and records each delivered message's latency. Bytes written are counted in
    /// `bytes_sent` as each write completes.
    ///
    /// A poll, not a future: where the write stands is kept in the outbox itself, so a
    /// connection waiting on a slow reader holds no write future (that future was a fifth of
    /// every connection's task), and dropping the wait loses nothing. Bytes encoded between
    /// polls are written too.
    pub fn poll_write_to<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        cx: &mut Context<'_>,
        stats: &Stats,
    ) -> Poll<io::Result<()>> {
        let Some(out) = self.pending.as_deref_mut() else {
            return Poll::Ready(Ok(()));
        };
        out.list_buffered();
        while !out.chunks.is_empty() {
            let written = ready!(out.poll_write_front(writer, cx))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            Stats::add(&stats.bytes_sent, written as u64);
            out.advance(written);
        }
        ready!(Pin::new(writer).poll_flush(cx))?;
        out.written(stats);
        Poll::Ready(Ok(()))
    }

    /// [`Outbox::poll_write_to`] as a future.
    pub async fn write_to<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        stats: &Stats,
    ) -> io::Result<()> {
        poll_fn(|cx| self.poll_write_to(writer, cx, stats)).await
    }

    /// Copies out every pending byte and marks it written, as a socket write would. For tests
    /// and benchmarks that check or count the bytes without a socket.
    pub fn drain_into(&mut self, out: &mut Vec<u8>, stats: &Stats) {
        let Some(pending) = self.pending.as_deref_mut() else {
            return;
        };
        pending.list_buffered();
        for (i, chunk) in pending.chunks.iter().enumerate() {
            let skip = if i == 0 { pending.front_written } else { 0 };
            out.extend_from_slice(&pending.bytes_of(chunk)[skip..]);
        }
        pending.written(stats);
    }

    /// Marks every pending byte written without copying it (benchmarks).
    pub fn discard_pending(&mut self, stats: &Stats) {
        if let Some(pending) = self.pending.as_deref_mut() {
            pending.list_buffered();
            pending.written(stats);
        }
    }

    /// Gives the write buffer back to the pool when nothing is pending, so an idle connection
    /// holds no buffer.
    pub fn release_buffer(&mut self) {
        if self.is_empty() {
            if let Some(pending) = self.pending.take() {
                pool::write_buffers().put(pending);
            }
        }
    }
}
