//! Writing to the client: control packets, then queued messages within the client's Receive
//! Maximum and Maximum Packet Size, as one vectored write.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::time::Instant;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Close, Connection};
use crate::codec::{Delivery, Packet, PubResponse, QoS, ReasonCode};
use crate::metrics::DropReason;
use crate::server::Stats;
use crate::session::{Inflight, InflightState, Outgoing};

/// Messages moved from the queue per write, so one busy session cannot starve its reads.
const BATCH: usize = 256;
/// Buffers handed to one `writev` call (the kernel's IOV_MAX is 1024).
const MAX_IOVECS: usize = 64;

/// Writes every chunk, front to back, with vectored writes.
pub(super) async fn write_chunks<S: AsyncWrite + Unpin>(
    stream: &mut S,
    chunks: &mut VecDeque<Bytes>,
) -> std::io::Result<usize> {
    let mut total = 0;
    while !chunks.is_empty() {
        let mut written = {
            let slices: smallvec::SmallVec<[IoSlice<'_>; MAX_IOVECS]> = chunks
                .iter()
                .take(MAX_IOVECS)
                .map(|c| IoSlice::new(c))
                .collect();
            stream.write_vectored(&slices).await?
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        total += written;
        while written > 0 {
            let Some(front) = chunks.front_mut() else {
                break;
            };
            if written >= front.len() {
                written -= front.len();
                chunks.pop_front();
            } else {
                front.advance(written);
                written = 0;
            }
        }
    }
    stream.flush().await?;
    Ok(total)
}

impl<S> Connection<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Writes pending control packets and as many queued messages as flow control allows.
    pub(super) async fn flush(&mut self) -> Result<(), Close> {
        loop {
            let more = self.collect()?;
            if self.chunks.is_empty() {
                return Ok(());
            }
            match write_chunks(&mut self.stream, &mut self.chunks).await {
                Ok(n) => Stats::add(&self.broker.stats.bytes_sent, n as u64),
                Err(error) => return Err(Close::Lost(error.to_string())),
            }
            let now = Instant::now();
            for received in self.written.drain(..) {
                let latency = now.saturating_duration_since(received);
                self.broker
                    .stats
                    .delivery_latency
                    .observe(latency.as_secs_f64());
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Moves control packets and up to [`BATCH`] queued messages into `chunks`. Returns whether
    /// more messages could be sent right away.
    fn collect(&mut self) -> Result<bool, Close> {
        if !self.wbuf.is_empty() {
            let control = self.wbuf.split().freeze();
            self.chunks.push_back(control);
        }
        let session = std::sync::Arc::clone(&self.attached.session);
        let mut st = session.state.lock();
        if st.generation != self.attached.generation {
            return Err(Close::TakenOver);
        }
        if let Some(reason) = st.kick.take() {
            return Err(Close::Kicked(reason));
        }
        let window = usize::from(self.client_receive_maximum).min(usize::from(
            self.broker.settings().limits.max_inflight_outbound,
        ));
        let now = Instant::now();
        let mut sent = 0;
        while sent < BATCH {
            let Some(front) = st.queue.front() else {
                return Ok(false);
            };
            if front.qos != QoS::AtMostOnce && st.inflight.len() >= window {
                return Ok(false);
            }
            let Some(item) = st.queue.pop_front() else {
                return Ok(false);
            };
            let Some(expiry) = item.message.remaining_expiry(now) else {
                self.broker.stats.dropped(DropReason::Expired);
                continue;
            };
            let packet_id = match item.qos {
                QoS::AtMostOnce => 0,
                _ => match st.allocate_packet_id() {
                    Some(id) => id,
                    None => {
                        st.queue.push_front(item);
                        return Ok(false);
                    }
                },
            };
            if self.write_publish(&item, packet_id, false, expiry) {
                sent += 1;
                if item.qos != QoS::AtMostOnce {
                    let state = if item.qos == QoS::AtLeastOnce {
                        InflightState::AwaitingPubAck
                    } else {
                        InflightState::AwaitingPubRec
                    };
                    st.inflight.push_back(Inflight {
                        packet_id,
                        state,
                        item,
                    });
                }
            }
        }
        Ok(!st.queue.is_empty())
    }

    /// Writes one PUBLISH head and payload into `chunks`. False when the packet is larger than
    /// the client's Maximum Packet Size: it is then discarded as if sent [MQTT-3.1.2-25].
    fn write_publish(
        &mut self,
        item: &Outgoing,
        packet_id: u16,
        dup: bool,
        expiry: Option<u32>,
    ) -> bool {
        let message = &item.message;
        // The alias is only recorded once the packet that establishes it is really written:
        // a dropped packet must not leave the client an alias it never saw.
        let (topic_alias, omit_topic) = self.outbound_alias(&message.topic);
        let new_alias = topic_alias.filter(|_| !omit_topic);
        let delivery = Delivery {
            qos: item.qos,
            dup,
            retain: item.retain,
            packet_id,
            topic_alias,
            omit_topic,
            subscription_identifiers: &item.subscription_ids,
            message_expiry_interval: expiry,
        };
        if message.wire.encoded_len(self.version, &delivery)
            > self.client_maximum_packet_size as usize
        {
            self.broker.stats.dropped(DropReason::TooLarge);
            return false;
        }
        if message
            .wire
            .write_head(self.version, &delivery, &mut self.wbuf)
            .is_err()
        {
            return false;
        }
        if let Some(alias) = new_alias {
            self.outbound_aliases.insert(message.topic.clone(), alias);
        }
        let head = self.wbuf.split().freeze();
        self.chunks.push_back(head);
        if !message.payload.is_empty() {
            self.chunks.push_back(message.payload.clone());
        }
        self.broker.stats.delivered(item.qos);
        self.written.push(message.received_at);
        true
    }

    /// The Topic Alias to use for `topic` (5.0 clients that accept aliases), and whether the
    /// client already knows it: the first topics sent get aliases until the client's Topic
    /// Alias Maximum is reached. A new alias is recorded by the caller once it is sent.
    fn outbound_alias(&self, topic: &bytestring::ByteString) -> (Option<u16>, bool) {
        if !self.version.is_v5() || self.client_topic_alias_maximum == 0 {
            return (None, false);
        }
        if let Some(alias) = self.outbound_aliases.get(topic) {
            return (Some(*alias), true);
        }
        let next = self.outbound_aliases.len() + 1;
        if next > usize::from(self.client_topic_alias_maximum) {
            return (None, false);
        }
        (Some(next as u16), false)
    }

    /// On resuming a session, resends unacknowledged PUBLISH packets with DUP set and PUBREL
    /// for those already received, in their original order [MQTT-4.4.0-1].
    pub(super) fn resend_inflight(&mut self) {
        let session = std::sync::Arc::clone(&self.attached.session);
        let inflight: Vec<Inflight> = session.state.lock().inflight.iter().cloned().collect();
        let now = Instant::now();
        for entry in inflight {
            match entry.state {
                InflightState::AwaitingPubComp => {
                    let rel = PubResponse {
                        packet_id: entry.packet_id,
                        reason_code: ReasonCode::Success,
                        ..Default::default()
                    };
                    self.send(&Packet::PubRel(rel));
                }
                _ => {
                    let control = self.wbuf.split().freeze();
                    if !control.is_empty() {
                        self.chunks.push_back(control);
                    }
                    // An expired message still resends: the client may already have it.
                    let expiry = entry.item.message.remaining_expiry(now).unwrap_or(Some(0));
                    self.write_publish(&entry.item, entry.packet_id, true, expiry);
                }
            }
        }
    }
}
