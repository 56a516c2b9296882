//! Writing to the client: the connection drives its [`Outbox`](crate::delivery::Outbox) with
//! the session's queue, checking first that it still owns the session.

use std::sync::Arc;

use super::{Close, Connection, Transport};
use crate::server::Stats;

impl<S> Connection<S>
where
    S: Transport,
{
    /// Writes pending control packets and as many queued messages as flow control allows.
    pub(super) async fn flush(&mut self) -> Result<(), Close> {
        loop {
            let more = self.collect()?;
            if self.outbox.is_empty() {
                self.outbox.release_buffer();
                return Ok(());
            }
            match self
                .outbox
                .write_to(&mut self.stream, &self.broker.stats)
                .await
            {
                Ok(n) => Stats::add(&self.broker.stats.bytes_sent, n as u64),
                Err(error) => return Err(Close::Lost(error.to_string())),
            }
            if !more {
                self.outbox.release_buffer();
                return Ok(());
            }
        }
    }

    /// Moves queued messages into the outbox. Fails when a newer connection has taken the
    /// session over or the session was asked to close.
    fn collect(&mut self) -> Result<bool, Close> {
        let session = Arc::clone(&self.attached.session);
        let mut st = session.state.lock();
        if st.generation != self.attached.generation {
            return Err(Close::TakenOver);
        }
        if let Some(reason) = st.kick.take() {
            return Err(Close::Kicked(reason));
        }
        Ok(self.outbox.collect(&mut st, &self.broker.stats))
    }
}
