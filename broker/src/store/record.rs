//! The saved form of retained messages and sessions, and how they go back into a broker.
//!
//! A message is saved as the MQTT 5.0 PUBLISH packet that carries it (topic, QoS, RETAIN,
//! every property and the payload; [`Message::to_v5_packet`]), so the codec that reads
//! clients' packets reads it back and nothing about a message has a second encoding to keep
//! in step. Everything around it
//! (sessions, subscriptions, queues) is a serde record written with `postcard`.
//!
//! Times are saved as wall-clock milliseconds since the Unix epoch, because `Instant`s do not
//! survive a restart: Message Expiry and Session Expiry keep counting while the broker is down.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::codec::{ByteString, QoS, RetainHandling, SubscriptionOptions};
use crate::pool::MessageRef;
use crate::router::Subscription;
use crate::server::Broker;
use crate::session::{
    DetachError, Inflight, InflightState, Message, Outgoing, SessionLink, SessionState,
    SubscriptionIds,
};

/// Why a record could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Message(#[from] DetachError),
    #[error("the record does not decode: {0}")]
    Serde(#[from] postcard::Error),
    #[error("the record holds an invalid {0}")]
    Invalid(&'static str),
}

/// Wall-clock milliseconds since the Unix epoch, now.
pub(super) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `now_ms` less the time since `at`.
fn unix_ms_of(at: Instant, now_ms: u64) -> u64 {
    let age = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
    now_ms.saturating_sub(age)
}

/// The `Instant` that lies `age_ms` before now (now itself if the clock cannot go back so far).
fn instant_ago(age_ms: u64) -> Instant {
    let now = Instant::now();
    now.checked_sub(Duration::from_millis(age_ms))
        .unwrap_or(now)
}

/// One application message.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SavedMessage {
    /// The message as an MQTT 5.0 PUBLISH.
    publish: Vec<u8>,
    /// When the broker received it.
    received_unix_ms: u64,
    /// Its publisher, for No Local.
    publisher: Option<String>,
}

impl SavedMessage {
    pub(super) fn of(message: &Message, now_ms: u64) -> Result<SavedMessage, RecordError> {
        Ok(SavedMessage {
            publish: Vec::from(message.to_v5_packet().map_err(DetachError::from)?),
            received_unix_ms: unix_ms_of(message.received_at, now_ms),
            publisher: message.publisher.as_ref().map(|p| p.to_string()),
        })
    }

    /// The message, and whether its Message Expiry Interval ran out by `now_ms`.
    pub(super) fn restore(self, now_ms: u64) -> Result<(MessageRef, bool), RecordError> {
        let age_ms = now_ms.saturating_sub(self.received_unix_ms);
        let message = Message::from_v5_packet(
            &mut BytesMut::from(Bytes::from(self.publish)),
            self.publisher.map(ByteString::from),
            instant_ago(age_ms),
        )?;
        let expired = message
            .properties
            .message_expiry_interval
            .is_some_and(|secs| age_ms >= u64::from(secs) * 1000);
        Ok((message, expired))
    }
}

/// One message queued for, or in flight to, a session.
#[derive(Debug, Serialize, Deserialize)]
struct SavedDelivery {
    message: SavedMessage,
    qos: u8,
    retain: bool,
    subscription_ids: Vec<u32>,
    shared_group: Option<String>,
}

impl SavedDelivery {
    fn of(item: &Outgoing, now_ms: u64) -> Result<SavedDelivery, RecordError> {
        Ok(SavedDelivery {
            message: SavedMessage::of(&item.message, now_ms)?,
            qos: item.qos.as_u8(),
            retain: item.retain,
            subscription_ids: item.subscription_ids.as_slice().to_vec(),
            shared_group: item.shared_group.as_ref().map(|g| g.to_string()),
        })
    }

    fn restore(self, now_ms: u64) -> Result<(Outgoing, bool), RecordError> {
        let (message, expired) = self.message.restore(now_ms)?;
        let item = Outgoing {
            message,
            qos: QoS::from_u8(self.qos).ok_or(RecordError::Invalid("QoS"))?,
            retain: self.retain,
            subscription_ids: SubscriptionIds::from_slice(&self.subscription_ids),
            shared_group: self.shared_group.map(|g| Arc::new(ByteString::from(g))),
        };
        Ok((item, expired))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedInflight {
    packet_id: u16,
    /// 0 awaiting PUBACK, 1 awaiting PUBREC, 2 awaiting PUBCOMP.
    state: u8,
    delivery: SavedDelivery,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedSubscription {
    filter: String,
    qos: u8,
    no_local: bool,
    retain_as_published: bool,
    retain_handling: u8,
    identifier: Option<u32>,
}

impl SavedSubscription {
    fn of(filter: &str, sub: &Subscription) -> SavedSubscription {
        SavedSubscription {
            filter: filter.to_owned(),
            qos: sub.options.qos.as_u8(),
            no_local: sub.options.no_local,
            retain_as_published: sub.options.retain_as_published,
            retain_handling: sub.options.retain_handling as u8,
            identifier: sub.identifier,
        }
    }

    fn restore(self) -> Result<(String, Subscription), RecordError> {
        let retain_handling = match self.retain_handling {
            0 => RetainHandling::SendOnSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(RecordError::Invalid("Retain Handling")),
        };
        let options = SubscriptionOptions {
            qos: QoS::from_u8(self.qos).ok_or(RecordError::Invalid("QoS"))?,
            no_local: self.no_local,
            retain_as_published: self.retain_as_published,
            retain_handling,
        };
        let subscription = Subscription {
            options,
            identifier: self.identifier,
            session: SessionLink::default(),
        };
        Ok((self.filter, subscription))
    }
}

/// A session that outlives its connection (Session Expiry Interval above 0).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct SavedSession {
    expiry_interval: u32,
    /// When its connection left; the time of the save for a session still connected then.
    disconnected_unix_ms: u64,
    next_packet_id: u16,
    subscriptions: Vec<SavedSubscription>,
    queued: Vec<SavedDelivery>,
    inflight: Vec<SavedInflight>,
    inbound_qos2: Vec<u16>,
    /// Whose topic rules the session was held to: `Some(user)` (`Some(None)`: anonymous), or
    /// `None` when the broker had no ACL. A restored session is held to them again, so it
    /// queues nothing its client may not read while the client is away.
    acl_user: Option<Option<String>>,
}

/// What a save copies out of a session under its lock (message handles, not encodings), so
/// the lock is held for a few clones and the encoding happens after.
pub(super) struct SessionCopy {
    expiry_interval: u32,
    disconnected_at: Option<Instant>,
    next_packet_id: u16,
    subscriptions: Vec<(String, Subscription)>,
    queued: Vec<Outgoing>,
    inflight: Vec<Inflight>,
    inbound_qos2: Vec<u16>,
    acl_user: Option<Option<String>>,
}

impl SessionCopy {
    /// The state of a session worth saving: `None` for one that ends with its connection
    /// (Session Expiry Interval 0), has ended, or was never attached.
    pub(super) fn of(st: &SessionState) -> Option<SessionCopy> {
        if st.expiry_interval == 0 || st.removed || st.generation == 0 {
            return None;
        }
        Some(SessionCopy {
            expiry_interval: st.expiry_interval,
            disconnected_at: st.disconnected_at,
            next_packet_id: st.next_packet_id(),
            subscriptions: st
                .subscriptions
                .iter()
                .map(|(filter, sub)| (filter.clone(), sub.clone()))
                .collect(),
            queued: st.queue.iter().cloned().collect(),
            inflight: st.inflight.iter().cloned().collect(),
            inbound_qos2: st.inbound_qos2.iter().copied().collect(),
            acl_user: st.acl.as_ref().map(|acl| acl.username().map(str::to_owned)),
        })
    }
}

impl SavedSession {
    pub(super) fn of(copy: SessionCopy, now_ms: u64) -> Result<SavedSession, RecordError> {
        let inflight = copy
            .inflight
            .iter()
            .map(|f| {
                Ok(SavedInflight {
                    packet_id: f.packet_id,
                    state: match f.state {
                        InflightState::AwaitingPubAck => 0,
                        InflightState::AwaitingPubRec => 1,
                        InflightState::AwaitingPubComp => 2,
                    },
                    delivery: SavedDelivery::of(&f.item, now_ms)?,
                })
            })
            .collect::<Result<_, RecordError>>()?;
        Ok(SavedSession {
            expiry_interval: copy.expiry_interval,
            disconnected_unix_ms: copy
                .disconnected_at
                .map_or(now_ms, |at| unix_ms_of(at, now_ms)),
            next_packet_id: copy.next_packet_id,
            subscriptions: copy
                .subscriptions
                .iter()
                .map(|(filter, sub)| SavedSubscription::of(filter, sub))
                .collect(),
            queued: copy
                .queued
                .iter()
                .map(|item| SavedDelivery::of(item, now_ms))
                .collect::<Result<_, _>>()?,
            inflight,
            inbound_qos2: copy.inbound_qos2,
            acl_user: copy.acl_user,
        })
    }

    /// Puts the session back into `broker`, detached, with its subscriptions in the tree and
    /// its expiry timer running for the time it had left. False (and nothing restored) if
    /// it expired while the broker was down. Queued messages that expired meanwhile are
    /// dropped [MQTT-3.3.2-5]; in-flight ones are kept, their delivery having begun.
    pub(super) fn restore(
        self,
        client_id: ByteString,
        broker: &Arc<Broker>,
        now_ms: u64,
    ) -> Result<bool, RecordError> {
        let away_ms = now_ms.saturating_sub(self.disconnected_unix_ms);
        let expiry_ms = u64::from(self.expiry_interval) * 1000;
        if self.expiry_interval != u32::MAX && away_ms >= expiry_ms {
            return Ok(false);
        }
        let subscriptions = self
            .subscriptions
            .into_iter()
            .map(SavedSubscription::restore)
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        let mut queue = VecDeque::with_capacity(self.queued.len());
        for saved in self.queued {
            let (item, expired) = saved.restore(now_ms)?;
            if !expired {
                queue.push_back(item);
            }
        }
        let inflight = self
            .inflight
            .into_iter()
            .map(|f| {
                let state = match f.state {
                    0 => InflightState::AwaitingPubAck,
                    1 => InflightState::AwaitingPubRec,
                    2 => InflightState::AwaitingPubComp,
                    _ => return Err(RecordError::Invalid("in-flight state")),
                };
                Ok(Inflight {
                    packet_id: f.packet_id,
                    state,
                    item: f.delivery.restore(now_ms)?.0,
                    sent: false,
                })
            })
            .collect::<Result<VecDeque<_>, RecordError>>()?;

        // With an ACL, the rules of the user saved with the session; a session saved before
        // the broker had an ACL is held to the anonymous clients' rules (the narrowest).
        let acl = if broker.acl_enabled {
            let user = self.acl_user.flatten();
            broker
                .authenticator
                .acl_for_user(user.as_deref(), &client_id)
        } else {
            None
        };
        let session = broker.sessions.get_or_create(&client_id);
        {
            let mut st = session.state.lock();
            // Generation 1, never attached since: the next connection resumes it (Session
            // Present) unless it asks for a Clean Start.
            st.generation = 1;
            st.started_generation = 1;
            st.expiry_interval = self.expiry_interval;
            st.disconnected_at = Some(instant_ago(away_ms));
            st.set_next_packet_id(self.next_packet_id);
            st.subscriptions = subscriptions.clone();
            st.queue = queue;
            st.inflight = inflight;
            st.inbound_qos2 = self.inbound_qos2.into_iter().collect::<BTreeSet<_>>();
            st.acl = acl;
        }
        let mut tree = broker.router.write();
        for (filter, sub) in subscriptions {
            let linked = Subscription {
                session: SessionLink::to(&session),
                ..sub
            };
            tree.subscribe(&filter, &client_id, linked);
        }
        drop(tree);
        if self.expiry_interval != u32::MAX {
            let left_secs = (expiry_ms - away_ms).div_ceil(1000);
            let left_secs = u32::try_from(left_secs).unwrap_or(u32::MAX);
            broker.schedule_session_end(&session, 1, left_secs);
        }
        Ok(true)
    }
}
