//! Handling each packet a client sends after CONNECT.

use super::run::PublishRun;
use super::{Close, Connection, Transport};
use crate::codec::topic::{has_wildcard, split_shared};
use crate::codec::{
    AckProperties, ByteString, Packet, PubResponse, Publish, QoS, ReasonCode, RetainHandling,
    SubAck, Subscribe, UnsubAck, Unsubscribe,
};
use crate::config::LimitsConfig;
use crate::router::Subscription;
use crate::server::{Routed, Stats};
use crate::session::{InflightState, LazyNow, Message, Outgoing, SessionLink};

/// Whether a topic name or filter is within the configured length and level limits.
pub(super) fn topic_within_limits(topic: &str, limits: &LimitsConfig) -> bool {
    topic.len() <= usize::from(limits.max_topic_length)
        && topic.split('/').count() <= usize::from(limits.max_topic_levels)
}

impl<S> Connection<S>
where
    S: Transport,
{
    /// Handles one packet. QoS 0 PUBLISH packets may wait in `run`; any other packet routes the
    /// run first, so it is handled after everything received before it.
    pub(super) fn handle(&mut self, packet: Packet, run: &mut PublishRun) -> Result<(), Close> {
        if !matches!(packet, Packet::Publish(_)) {
            run.flush(&self.broker);
        }
        match packet {
            Packet::Publish(mut publish) => self.on_publish(&mut publish, run),
            Packet::PubAck(ack) => {
                self.attached
                    .session
                    .state
                    .lock()
                    .complete(ack.packet_id, InflightState::AwaitingPubAck);
                Ok(())
            }
            Packet::PubRec(rec) => {
                self.on_pubrec(rec);
                Ok(())
            }
            Packet::PubRel(rel) => {
                let known = self
                    .attached
                    .session
                    .state
                    .lock()
                    .inbound_qos2
                    .remove(&rel.packet_id);
                let reason_code = if known {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                self.send(&Packet::PubComp(PubResponse {
                    packet_id: rel.packet_id,
                    reason_code,
                    ..Default::default()
                }));
                Ok(())
            }
            Packet::PubComp(comp) => {
                self.attached
                    .session
                    .state
                    .lock()
                    .complete(comp.packet_id, InflightState::AwaitingPubComp);
                Ok(())
            }
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe) => {
                self.on_unsubscribe(unsubscribe);
                Ok(())
            }
            Packet::PingReq => {
                self.send(&Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect(disconnect) => {
                if let Some(expiry) = disconnect.properties.session_expiry_interval {
                    // [MQTT-3.14.2-2]: a session that was to end at disconnect cannot be kept.
                    if self.connect_expiry == 0 && expiry != 0 {
                        return Err(Close::violation(
                            ReasonCode::ProtocolError,
                            "Session Expiry Interval cannot be set on DISCONNECT when it was 0 on CONNECT",
                        ));
                    }
                    let max = self
                        .broker
                        .settings()
                        .session
                        .max_session_expiry_interval_secs;
                    self.attached.session.state.lock().expiry_interval = expiry.min(max);
                }
                let with_will = disconnect.reason_code == ReasonCode::DisconnectWithWillMessage;
                Err(Close::ClientDisconnect { with_will })
            }
            Packet::Connect(_) => Err(Close::violation(
                ReasonCode::ProtocolError,
                "second CONNECT",
            )),
            Packet::Auth(_) => Err(Close::violation(
                ReasonCode::ProtocolError,
                "AUTH without an authentication method in CONNECT",
            )),
            other => Err(Close::violation(
                ReasonCode::ProtocolError,
                format!("{:?} is sent by servers, not clients", other.packet_type()),
            )),
        }
    }

    fn ack(&mut self, qos: QoS, packet_id: u16, reason_code: ReasonCode) {
        let ack = PubResponse {
            packet_id,
            reason_code,
            properties: AckProperties::default(),
        };
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(ack)),
            QoS::ExactlyOnce => self.send(&Packet::PubRec(ack)),
        }
    }

    /// Whether this client's topic rules, if the broker has any, `refuse` something: looked
    /// at under the session lock, without taking a reference to them.
    fn refused_by_rules(&self, refuse: impl FnOnce(&crate::auth::ClientAcl) -> bool) -> bool {
        self.broker.acl_enabled
            && self
                .attached
                .session
                .state
                .lock()
                .acl
                .as_deref()
                .is_some_and(refuse)
    }

    /// Handles a PUBLISH; a message takes `publish`'s contents (see `Message::from_publish`).
    pub(super) fn on_publish(
        &mut self,
        publish: &mut Publish,
        run: &mut PublishRun,
    ) -> Result<(), Close> {
        Stats::add(&self.listener_publishes, 1);
        let settings = self.broker.settings();
        if !publish.properties.subscription_identifiers.is_empty() {
            return Err(Close::violation(
                ReasonCode::ProtocolError,
                "PUBLISH from a client carries a Subscription Identifier",
            ));
        }
        if let Some(alias) = publish.properties.topic_alias.take() {
            if alias == 0 || alias > settings.session.topic_alias_maximum {
                return Err(Close::violation(
                    ReasonCode::TopicAliasInvalid,
                    format!("topic alias {alias} is out of range"),
                ));
            }
            if publish.topic.is_empty() {
                match self
                    .inbound_aliases
                    .as_ref()
                    .and_then(|aliases| aliases.get(&alias))
                {
                    Some(topic) => publish.topic = topic.clone(),
                    None => {
                        return Err(Close::violation(
                            ReasonCode::ProtocolError,
                            format!("topic alias {alias} was never set"),
                        ))
                    }
                }
            } else {
                self.inbound_aliases
                    .get_or_insert_with(Box::default)
                    .insert(alias, publish.topic.clone());
            }
        }
        if publish.qos.as_u8() > settings.features.maximum_qos {
            return Err(Close::violation(
                ReasonCode::QosNotSupported,
                "QoS above the Maximum QoS",
            ));
        }
        if publish.retain && !settings.features.retain_available {
            return Err(Close::violation(
                ReasonCode::RetainNotSupported,
                "retain is not available",
            ));
        }
        let refusal = if !topic_within_limits(&publish.topic, &settings.limits) {
            Some(ReasonCode::TopicNameInvalid)
        } else if publish.topic.starts_with('$') {
            // $SYS and other $-topics belong to the broker.
            Some(ReasonCode::NotAuthorized)
        } else if self.refused_by_rules(|acl| !acl.may_publish(&publish.topic)) {
            Some(ReasonCode::NotAuthorized)
        } else if publish.properties.payload_format_indicator == Some(true)
            && std::str::from_utf8(&publish.payload).is_err()
        {
            Some(ReasonCode::PayloadFormatInvalid)
        } else {
            None
        };
        if let Some(reason) = refusal {
            if publish.qos == QoS::AtMostOnce || !self.version.is_v5() {
                if reason == ReasonCode::NotAuthorized {
                    // Dropped, as 3.1.1 and QoS 0 have no way to say so; 3.1.1 QoS 1/2 still
                    // gets its positive acknowledgement [MQTT-3.3.5-2], or the client would wait
                    // for it forever. (A PUBREL for it is answered like any other.)
                    self.ack(publish.qos, publish.packet_id, ReasonCode::Success);
                    return Ok(());
                }
                return Err(Close::violation(
                    reason,
                    format!("PUBLISH to {:?} refused", publish.topic),
                ));
            }
            self.ack(publish.qos, publish.packet_id, reason);
            return Ok(());
        }
        if publish.qos == QoS::ExactlyOnce {
            let mut st = self.attached.session.state.lock();
            if st.inbound_qos2.contains(&publish.packet_id) {
                // A resend of a message already received: acknowledge, do not deliver twice.
                drop(st);
                self.ack(QoS::ExactlyOnce, publish.packet_id, ReasonCode::Success);
                return Ok(());
            }
            if st.inbound_qos2.len() >= usize::from(settings.limits.receive_maximum) {
                return Err(Close::violation(
                    ReasonCode::ReceiveMaximumExceeded,
                    "more QoS 2 publishes unacknowledged than Receive Maximum",
                ));
            }
            st.inbound_qos2.insert(publish.packet_id);
        }
        let (qos, packet_id) = (publish.qos, publish.packet_id);
        let message =
            Message::from_publish(publish, Some(self.client_id().clone()), self.last_received)
                .map_err(|e| {
                    Close::violation(ReasonCode::ImplementationSpecificError, e.to_string())
                })?;
        if PublishRun::admits(&message) {
            run.push(&self.broker, message);
            return Ok(());
        }
        run.flush(&self.broker);
        let routed = self.broker.publish(message);
        let reason = ack_reason(routed);
        if qos != QoS::AtMostOnce {
            // From the read that brought the PUBLISH in to its acknowledgement.
            self.broker.stats.observe_ack(self.last_received.elapsed());
        }
        self.ack(
            qos,
            packet_id,
            if self.version.is_v5() {
                reason
            } else {
                ReasonCode::Success
            },
        );
        Ok(())
    }

    fn on_pubrec(&mut self, rec: PubResponse) {
        let mut st = self.attached.session.state.lock();
        if rec.reason_code.is_error() {
            // The receiver refused it: the exchange ends here (section 4.3.3).
            st.complete(rec.packet_id, InflightState::AwaitingPubRec);
            return;
        }
        let known = st.released(rec.packet_id);
        drop(st);
        let reason_code = if known {
            ReasonCode::Success
        } else {
            ReasonCode::PacketIdentifierNotFound
        };
        self.send(&Packet::PubRel(PubResponse {
            packet_id: rec.packet_id,
            reason_code,
            ..Default::default()
        }));
    }

    fn on_subscribe(&mut self, subscribe: Subscribe) -> Result<(), Close> {
        let settings = self.broker.settings();
        let features = &settings.features;
        let identifier = subscribe.properties.subscription_identifier;
        if identifier.is_some() && !features.subscription_identifiers_available {
            return Err(Close::violation(
                ReasonCode::SubscriptionIdentifiersNotSupported,
                "subscription identifiers are not available",
            ));
        }
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        let mut retained_for: Vec<(ByteString, QoS)> = Vec::new();
        for (filter, mut options) in subscribe.filters {
            let shared = split_shared(&filter).is_some();
            let inner = split_shared(&filter)
                .and_then(Result::ok)
                .map_or(&*filter, |(_, f)| f);
            let (known, count) = {
                let st = self.attached.session.state.lock();
                (
                    st.subscriptions.contains_key(&*filter),
                    st.subscriptions.len(),
                )
            };
            let refusal = if shared && !features.shared_subscription_available {
                Some(ReasonCode::SharedSubscriptionsNotSupported)
            } else if has_wildcard(inner) && !features.wildcard_subscription_available {
                Some(ReasonCode::WildcardSubscriptionsNotSupported)
            } else if !topic_within_limits(&filter, &settings.limits) {
                Some(ReasonCode::TopicFilterInvalid)
            } else if !known && count >= settings.limits.max_subscriptions_per_client as usize {
                Some(ReasonCode::QuotaExceeded)
            } else if self.refused_by_rules(|acl| {
                if shared {
                    !acl.may_share(inner)
                } else {
                    !acl.may_subscribe(inner)
                }
            }) {
                Some(ReasonCode::NotAuthorized)
            } else {
                None
            };
            if let Some(code) = refusal {
                codes.push(code);
                continue;
            }
            options.qos = options
                .qos
                .min(QoS::from_u8(features.maximum_qos).unwrap_or(QoS::ExactlyOnce));
            let subscription = Subscription {
                options,
                identifier,
                session: SessionLink::default(),
            };
            let linked = Subscription {
                session: SessionLink::to(&self.attached.session),
                ..subscription.clone()
            };
            let is_new = self
                .broker
                .router
                .write()
                .subscribe(&filter, self.client_id(), linked);
            self.attached
                .session
                .state
                .lock()
                .subscriptions
                .insert(filter.to_string(), subscription);
            codes.push(match options.qos {
                QoS::AtMostOnce => ReasonCode::Success,
                QoS::AtLeastOnce => ReasonCode::GrantedQos1,
                QoS::ExactlyOnce => ReasonCode::GrantedQos2,
            });
            // Retained messages are not sent for shared subscriptions (section 4.8.2), and
            // Retain Handling decides for the rest [MQTT-3.3.1-9, 10, 11].
            let send_retained = match options.retain_handling {
                RetainHandling::SendOnSubscribe => true,
                RetainHandling::SendIfNew => is_new,
                RetainHandling::DoNotSend => false,
            };
            if send_retained && !shared && features.retain_available {
                retained_for.push((filter, options.qos));
            }
        }
        self.send(&Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: AckProperties::default(),
            reason_codes: codes,
        }));
        for (filter, granted) in retained_for {
            let mut messages = Vec::new();
            self.broker.retained.read().matches(&filter, &mut messages);
            let mut routed = Routed::default();
            let mut now = LazyNow::new();
            for message in messages {
                let item = Outgoing {
                    qos: message.qos.min(granted),
                    message,
                    retain: true,
                    subscription_ids: identifier.into(),
                    shared_group: None,
                };
                self.broker
                    .offer(&self.attached.session, [item], &mut routed, &mut now);
            }
        }
        Ok(())
    }

    fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) {
        let mut codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            let existed = self
                .broker
                .router
                .write()
                .unsubscribe(filter, self.client_id());
            self.attached
                .session
                .state
                .lock()
                .subscriptions
                .remove(&**filter);
            codes.push(if existed {
                ReasonCode::Success
            } else {
                ReasonCode::NoSubscriptionExisted
            });
        }
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: AckProperties::default(),
            reason_codes: if self.version.is_v5() {
                codes
            } else {
                Vec::new()
            },
        }));
    }
}

/// The PUBACK/PUBREC reason for a routed message: Quota Exceeded if a subscriber could not
/// take it, No Matching Subscribers if nobody could, else Success.
fn ack_reason(routed: Routed) -> ReasonCode {
    if routed.rejected > 0 || routed.retain_refused {
        ReasonCode::QuotaExceeded
    } else if routed.delivered == 0 {
        ReasonCode::NoMatchingSubscribers
    } else {
        ReasonCode::Success
    }
}
