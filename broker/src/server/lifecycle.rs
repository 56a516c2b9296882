//! Session lifecycle: attaching a connection (with takeover and Clean Start), detaching it,
//! Will Messages with their delay, session expiry, and handing a departed shared-subscription
//! member's unacknowledged messages to another member.

use crate::auth::ClientAcl;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{Broker, Routed};
use crate::codec::{ByteString, ProtocolVersion, PublishProperties, Will};
use crate::pool::MessageRef;
use crate::session::{
    Attachment, ConnectionSignal, Events, LazyNow, Message, Outgoing, Session, SessionState,
    SubscriptionIds,
};

/// A connection's hold on its session.
pub struct Attached {
    pub session: Arc<Session>,
    pub generation: u64,
    /// Whether the session existed and was resumed (CONNACK Session Present).
    pub session_present: bool,
    pub signal: Arc<ConnectionSignal>,
}

/// What to do with the Will Message when a connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WillOnClose {
    /// Normal DISCONNECT (0x00): the Will is discarded [MQTT-3.1.2-10].
    Discard,
    /// Abnormal loss, protocol error, or DISCONNECT 0x04: the Will is published.
    Publish,
}

/// The connection's parameters a session needs while it is attached.
pub struct AttachParams {
    pub clean_start: bool,
    pub expiry_interval: u32,
    pub version: ProtocolVersion,
    pub receive_maximum: u16,
    pub maximum_packet_size: u32,
    /// The connecting client's topic rules (`None`: every topic); they replace the previous
    /// connection's, under the same lock, so no message is checked against the wrong rules.
    pub acl: Option<Arc<ClientAcl>>,
}

impl Broker {
    /// Attaches a new connection to the session for `client_id`, creating, resuming or (with
    /// Clean Start) clearing it. An existing connection is told to close: it sees that its
    /// generation is no longer current and sends DISCONNECT 0x8E [MQTT-3.1.4-3].
    pub fn attach(&self, client_id: &ByteString, params: AttachParams) -> Attached {
        let signal = Arc::new(ConnectionSignal::new());
        loop {
            let session = self.sessions.get_or_create(client_id);
            let mut st = session.state.lock();
            if st.removed {
                // Expired between the lookup and the lock; the map has no entry for it now.
                drop(st);
                continue;
            }
            let existed = st.generation > 0;
            if let Some(old) = session.set_attached(&mut st, None) {
                old.signal.raise(Events::SESSION);
            }
            let stale: Vec<String> = if params.clean_start {
                let filters = st.subscriptions.keys().cloned().collect();
                st.clear();
                filters
            } else {
                Vec::new()
            };
            st.generation += 1;
            let generation = st.generation;
            for entry in st.inflight.iter_mut() {
                entry.sent = false;
            }
            let attachment = Attachment {
                generation,
                signal: Arc::clone(&signal),
                version: params.version,
                receive_maximum: params.receive_maximum,
                maximum_packet_size: params.maximum_packet_size,
            };
            session.set_attached(&mut st, Some(attachment));
            st.kick = None;
            st.acl = params.acl;
            st.expiry_interval = params.expiry_interval;
            st.disconnected_at = None;
            if params.clean_start || !existed {
                st.started_generation = generation;
            }
            if let Some(timer) = st.will_timer.take() {
                timer.notify_one();
            }
            drop(st);
            if !stale.is_empty() {
                self.router
                    .write()
                    .unsubscribe_all(client_id, stale.iter().map(String::as_str));
            }
            return Attached {
                session,
                generation,
                session_present: existed && !params.clean_start,
                signal,
            };
        }
    }

    /// Detaches a closed connection: hands shared-subscription messages on, ends or schedules
    /// the end of the session, and publishes or schedules the Will Message.
    pub fn detach(
        self: &Arc<Self>,
        attached: &Attached,
        will: Option<Will>,
        on_close: WillOnClose,
    ) {
        let session = &attached.session;
        let (current, expiry, shared) = {
            let mut st = session.state.lock();
            let current = st.generation == attached.generation;
            if current {
                session.set_attached(&mut st, None);
                st.disconnected_at = Some(Instant::now());
            }
            let shared = if current {
                st.take_shared_pending()
            } else {
                Vec::new()
            };
            (current, st.expiry_interval, shared)
        };
        for item in shared {
            self.reroute_shared(session, item);
        }
        if current {
            match expiry {
                0 => self.end_session(session, attached.generation),
                u32::MAX => {}
                secs => self.schedule_session_end(session, attached.generation, secs),
            }
        }
        if let (Some(will), WillOnClose::Publish) = (will, on_close) {
            self.schedule_will(session, attached.generation, will, expiry);
        }
    }

    /// Removes the session if no connection has attached since `generation` left.
    pub fn end_session(&self, session: &Arc<Session>, generation: u64) {
        let removed = self.sessions.remove_if(session, |s| {
            let mut st = s.state.lock();
            if st.generation == generation && st.attached.is_none() {
                st.removed = true;
                true
            } else {
                false
            }
        });
        if !removed {
            return;
        }
        let (filters, shared) = {
            let mut st = session.state.lock();
            let filters: Vec<String> = st.subscriptions.keys().cloned().collect();
            (filters, st.take_shared_pending())
        };
        self.router
            .write()
            .unsubscribe_all(&session.client_id, filters.iter().map(String::as_str));
        for item in shared {
            self.reroute_shared(session, item);
        }
    }

    /// Ends the session `secs` from now unless a connection attaches to it first.
    pub(crate) fn schedule_session_end(
        self: &Arc<Self>,
        session: &Arc<Session>,
        generation: u64,
        secs: u32,
    ) {
        let broker = Arc::clone(self);
        let session = Arc::clone(session);
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(u64::from(secs))) => {
                    broker.end_session(&session, generation);
                }
                _ = broker.shutdown.cancelled() => {}
            }
        });
    }

    /// Publishes the Will after its Will Delay Interval or when the session ends, whichever
    /// comes first; a reconnect to the session before then cancels it (section 3.1.3.2.2).
    fn schedule_will(
        self: &Arc<Self>,
        session: &Arc<Session>,
        generation: u64,
        will: Will,
        expiry: u32,
    ) {
        let delay = will.properties.will_delay_interval.unwrap_or(0).min(expiry);
        let message = match will_message(&session.client_id, will) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(client_id = %session.client_id, %error, "will message cannot be encoded");
                return;
            }
        };
        if delay == 0 {
            self.publish(message);
            return;
        }
        // The session this Will belongs to has ended (expired, or discarded by a Clean Start
        // reconnect), or a connection has resumed it (the Will is cancelled [MQTT-3.1.3-9]).
        let ended = move |st: &SessionState| st.removed || st.started_generation > generation;
        let resumed = move |st: &SessionState| !ended(st) && st.generation != generation;
        let timer = {
            let mut st = session.state.lock();
            if resumed(&st) {
                return;
            }
            if ended(&st) {
                drop(st);
                self.publish(message);
                return;
            }
            let timer = Arc::new(Notify::new());
            st.will_timer = Some(Arc::clone(&timer));
            timer
        };
        let broker = Arc::clone(self);
        let session = Arc::clone(session);
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(u64::from(delay))) => {}
                // A connection attached: decide below whether that cancels or releases it.
                _ = timer.notified() => {}
                _ = broker.shutdown.cancelled() => return,
            }
            let publish = {
                let mut st = session.state.lock();
                if st
                    .will_timer
                    .as_ref()
                    .is_some_and(|t| Arc::ptr_eq(t, &timer))
                {
                    st.will_timer = None;
                }
                !resumed(&st)
            };
            if publish {
                broker.publish(message);
            }
        });
    }

    /// Gives a message routed through a shared subscription to another attached member of the
    /// same group; keeps it with `from` when no other member is attached.
    fn reroute_shared(&self, from: &Session, item: Outgoing) {
        let mut matches = Vec::new();
        self.router.read().matches(
            &item.message.topic,
            item.message.publisher.as_ref(),
            &|client| client != &from.client_id && self.is_attached(client),
            &mut matches,
        );
        let target = matches
            .into_iter()
            .find(|m| m.shared_group == item.shared_group && m.client != from.client_id);
        let mut routed = Routed::default();
        let mut now = LazyNow::new();
        match target.and_then(|m| m.session.session().cloned().map(|s| (s, m))) {
            Some((session, m)) => {
                let moved = Outgoing {
                    qos: item.message.qos.min(m.qos),
                    subscription_ids: SubscriptionIds::from_slice(&m.subscription_ids),
                    ..item
                };
                self.offer(&session, [moved], &mut routed, &mut now);
            }
            None => {
                let limits = &self.settings().limits;
                from.state.lock().enqueue(
                    item,
                    limits.max_queued_messages as usize,
                    limits.queue_full_policy,
                    &mut now,
                );
            }
        }
    }
}

/// The Will as an application message, with every Will property carried (section 3.1.3.2).
fn will_message(
    client_id: &ByteString,
    will: Will,
) -> Result<MessageRef, crate::codec::EncodeError> {
    let p = will.properties;
    let properties = PublishProperties {
        payload_format_indicator: p.payload_format_indicator,
        message_expiry_interval: p.message_expiry_interval,
        content_type: p.content_type,
        response_topic: p.response_topic,
        correlation_data: p.correlation_data,
        user_properties: p.user_properties,
        ..PublishProperties::default()
    };
    Message::pooled(
        will.topic,
        will.qos,
        will.retain,
        will.payload,
        properties,
        Some(client_id.clone()),
        Instant::now(),
    )
}
