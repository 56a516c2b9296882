//! Writing to the client: the connection drives its [`Outbox`](crate::delivery::Outbox) with
//! the session's queue, checking first that it still owns the session.

use std::task::{ready, Context, Poll};

use super::{Close, Connection, Transport};

impl<S> Connection<S>
where
    S: Transport,
{
    /// Writes pending control packets and as many queued messages as flow control allows;
    /// ready once nothing more can be sent now. A poll, so that the connection holds no
    /// write future while it waits for a slow reader: the outbox keeps where the write
    /// stands, and `collect_more` whether the queue had more than one batch.
    pub(super) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Close>> {
        loop {
            if !self.writing {
                self.collect_more = self.collect()?;
                if self.outbox.is_empty() {
                    self.outbox.release_buffer();
                    return Poll::Ready(Ok(()));
                }
                self.writing = true;
            }
            let written =
                ready!(self
                    .outbox
                    .poll_write_to(&mut self.stream, cx, &self.broker.stats));
            self.writing = false;
            if let Err(error) = written {
                return Poll::Ready(Err(Close::Lost(error.to_string())));
            }
            if !self.collect_more {
                self.outbox.release_buffer();
                return Poll::Ready(Ok(()));
            }
        }
    }

    /// Moves queued messages into the outbox. Fails when a newer connection has taken the
    /// session over or the session was asked to close.
    fn collect(&mut self) -> Result<bool, Close> {
        let mut st = self.attached.session.state.lock();
        if st.generation != self.attached.generation {
            return Err(Close::TakenOver);
        }
        if let Some(reason) = st.kick.take() {
            return Err(Close::Kicked(reason));
        }
        Ok(self.outbox.collect(&mut st, &self.broker.stats))
    }
}
