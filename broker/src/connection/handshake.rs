//! The CONNECT handshake (section 3.1.4): validate, authenticate, attach the session, answer
//! with CONNACK, and resend what the resumed session still owes the client.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Connection, Transport, CLOSE_TIMEOUT};
use crate::auth::Decision;
use crate::codec::{
    encode, parse_remaining_length, ByteString, ConnAck, ConnAckProperties, Connect, DecodeError,
    Decoder, Packet, ProtocolVersion, QoS, ReasonCode,
};
use crate::delivery::{ClientLimits, Outbox};
use crate::server::{AttachParams, Broker, Stats};

/// Answers a CONNECT that could not be decoded: 0x01 in the 3.1.1 form for an unknown
/// protocol level [MQTT-3.1.2-2], the error's reason code for a 5.0 CONNECT, nothing for 3.1.1
/// (which must just close [MQTT-3.1.4-1]). `level` is the CONNECT's protocol level byte, read
/// before decoding (a decode that fails has already taken the packet off the buffer).
pub(super) async fn refuse_malformed<S: AsyncWrite + Unpin>(
    stream: &mut S,
    level: Option<u8>,
    error: &DecodeError,
    stats: &Stats,
) {
    let connack = match error {
        DecodeError::UnsupportedProtocol { .. } => Some((
            ProtocolVersion::V3_1_1,
            ReasonCode::UnsupportedProtocolVersion,
        )),
        _ if level == Some(5) => Some((ProtocolVersion::V5, error.reason_code())),
        _ => None,
    };
    if let Some((version, reason_code)) = connack {
        let mut buf = BytesMut::new();
        let packet = Packet::ConnAck(ConnAck {
            reason_code,
            ..ConnAck::default()
        });
        if encode(&packet, version, &mut buf).is_ok() {
            if let Ok(Ok(())) = tokio::time::timeout(CLOSE_TIMEOUT, stream.write_all(&buf)).await {
                Stats::add(&stats.bytes_sent, buf.len() as u64);
            }
        }
    }
}

/// The protocol level byte of a CONNECT whose fixed header and protocol name have arrived.
pub(super) fn sniff_level(buf: &[u8]) -> Option<u8> {
    let (header, _) = parse_remaining_length(buf).ok()??;
    let name_len = usize::from(u16::from_be_bytes([
        *buf.get(header)?,
        *buf.get(header + 1)?,
    ]));
    buf.get(header + 2 + name_len).copied()
}

/// Validates `connect`, attaches its session and sends CONNACK. `None` when it was refused
/// (the refusal has been sent and the stream closed).
pub(super) async fn accept<S>(
    broker: Arc<Broker>,
    mut stream: S,
    peer: SocketAddr,
    rbuf: BytesMut,
    decoder: Decoder,
    mut connect: Connect,
    listener_publishes: prometheus::IntCounter,
) -> Option<Connection<S>>
where
    S: Transport,
{
    let version = connect.protocol;
    let settings = broker.settings();
    // A verified client certificate names the user: the CONNECT's credentials are not used.
    let certified = stream.certified_username().cloned();
    if let Some(name) = &certified {
        connect.username = Some(name.clone());
        connect.password = None;
    }
    let mut assigned = None;
    let refusal = check(&broker, &connect, certified.is_some()).or_else(|| {
        if connect.client_id.is_empty() {
            assigned = Some(broker.assign_client_id());
        }
        None
    });
    if let Some(reason_code) = refusal {
        broker.stats.refused(reason_code);
        tracing::info!(%peer, client_id = %connect.client_id, ?reason_code, "connect refused");
        let mut buf = BytesMut::new();
        let packet = Packet::ConnAck(ConnAck {
            reason_code,
            ..ConnAck::default()
        });
        if encode(&packet, version, &mut buf).is_ok() {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                if stream.write_all(&buf).await.is_ok() {
                    Stats::add(&broker.stats.bytes_sent, buf.len() as u64);
                }
                let _ = stream.shutdown().await;
            })
            .await;
        }
        return None;
    }
    // Copied out of the read buffer: the session keeps its identifier for as long as it
    // lives, and a view would keep the whole buffer the CONNECT arrived in.
    let client_id = assigned
        .clone()
        .unwrap_or_else(|| ByteString::from(&*connect.client_id));
    let props = &connect.properties;

    // Session Expiry: 5.0 says so in CONNECT; 3.1.1 persistent sessions last as long as the
    // broker's configured maximum.
    let max_expiry = settings.session.max_session_expiry_interval_secs;
    let requested_expiry = match (version.is_v5(), connect.clean_start) {
        (true, _) => props.session_expiry_interval.unwrap_or(0),
        (false, true) => 0,
        (false, false) => max_expiry,
    };
    let expiry = requested_expiry.min(max_expiry);

    // Keep Alive: the server's setting wins (Server Keep Alive); a maximum caps the client's.
    let mut server_keep_alive = settings.session.server_keep_alive_secs;
    if server_keep_alive.is_none() && version.is_v5() {
        if let Some(max) = settings.session.max_keep_alive_secs {
            if connect.keep_alive == 0 || connect.keep_alive > max {
                server_keep_alive = Some(max);
            }
        }
    }
    let keep_alive = server_keep_alive.unwrap_or(connect.keep_alive);

    let client_receive_maximum = props.receive_maximum.unwrap_or(u16::MAX);
    let client_maximum_packet_size = props.maximum_packet_size.unwrap_or(u32::MAX);
    let attached = broker.attach(
        &client_id,
        AttachParams {
            clean_start: connect.clean_start,
            expiry_interval: expiry,
            version,
            receive_maximum: client_receive_maximum,
            maximum_packet_size: client_maximum_packet_size,
            acl: broker.authenticator.acl_for(&connect, &client_id),
        },
    );
    broker.stats.connected(version);

    let limits = &settings.limits;
    let features = &settings.features;
    let properties = if version.is_v5() {
        ConnAckProperties {
            session_expiry_interval: (expiry != requested_expiry).then_some(expiry),
            receive_maximum: (limits.receive_maximum != u16::MAX).then_some(limits.receive_maximum),
            maximum_qos: (features.maximum_qos < 2)
                .then(|| QoS::from_u8(features.maximum_qos))
                .flatten(),
            retain_available: (!features.retain_available).then_some(false),
            maximum_packet_size: Some(limits.max_packet_size),
            assigned_client_identifier: assigned.clone(),
            topic_alias_maximum: (settings.session.topic_alias_maximum > 0)
                .then_some(settings.session.topic_alias_maximum),
            wildcard_subscription_available: (!features.wildcard_subscription_available)
                .then_some(false),
            subscription_identifiers_available: (!features.subscription_identifiers_available)
                .then_some(false),
            shared_subscription_available: (!features.shared_subscription_available)
                .then_some(false),
            server_keep_alive,
            response_information: (props.request_response_information == Some(true))
                .then(|| ByteString::from(format!("$response/{client_id}/"))),
            ..ConnAckProperties::default()
        }
    } else {
        ConnAckProperties::default()
    };
    let session_present = attached.session_present;
    tracing::info!(
        %peer, %client_id, protocol = version.level(), clean_start = connect.clean_start,
        session_present, keep_alive, expiry, "client connected"
    );
    let outbox = Outbox::new(ClientLimits {
        version,
        inflight_window: client_receive_maximum.min(settings.limits.max_inflight_outbound),
        maximum_packet_size: client_maximum_packet_size,
        topic_alias_maximum: props.topic_alias_maximum.unwrap_or(0),
    });
    let mut conn = Connection {
        broker,
        stream,
        peer: peer.into(),
        rbuf,
        outbox,
        decoder,
        version,
        attached,
        will: connect.will.map(Box::new),
        keep_alive_secs: keep_alive,
        last_received: Instant::now(),
        keep_alive_entry: None,
        sleep_entry: None,
        active_tick: 0,
        writing: false,
        collect_more: false,
        problem_information: props.request_problem_information.unwrap_or(true),
        connect_expiry: expiry,
        inbound_aliases: None,
        listener_publishes,
    };
    conn.send(&Packet::ConnAck(ConnAck {
        session_present,
        reason_code: ReasonCode::Success,
        properties,
    }));
    Some(conn)
}

/// The CONNACK refusal a CONNECT earns, if any. A `certified` client (its username from a
/// verified certificate) is not asked for a password.
fn check(broker: &Broker, connect: &Connect, certified: bool) -> Option<ReasonCode> {
    let settings = broker.settings();
    let version = connect.protocol;
    if broker.shutdown.is_cancelled() {
        return Some(ReasonCode::ServerUnavailable);
    }
    // One connection is this one, counted before the handshake.
    if broker.connections.load(Ordering::Relaxed) > settings.limits.max_connections as usize {
        return Some(ReasonCode::QuotaExceeded);
    }
    // An Authentication Method no authenticator runs is 0x8C (section 4.12).
    if let Decision::Deny(reason) = broker.authenticator.check_method(connect) {
        return Some(reason);
    }
    let id = &connect.client_id;
    if id.is_empty() {
        // [MQTT-3.1.3-8]: 3.1.1 needs Clean Session for an empty identifier; 3.1 has none.
        let allowed = settings.session.allow_empty_client_id
            && settings.session.assign_client_id
            && version != ProtocolVersion::V3_1
            && (version.is_v5() || connect.clean_start);
        if !allowed {
            return Some(ReasonCode::ClientIdentifierNotValid);
        }
    } else if id.len() > usize::from(settings.limits.max_client_id_length)
        || (version == ProtocolVersion::V3_1 && id.len() > 23)
    {
        return Some(ReasonCode::ClientIdentifierNotValid);
    }
    if certified {
        // The certificate proved who the client is; its Will is still held to its rules.
        if !broker.authenticator.will_allowed(connect) {
            return Some(ReasonCode::NotAuthorized);
        }
    } else if let Decision::Deny(reason) = broker.authenticator.authenticate(connect) {
        return Some(reason);
    }
    if let Some(will) = &connect.will {
        if will.qos.as_u8() > settings.features.maximum_qos {
            return Some(ReasonCode::QosNotSupported);
        }
        if will.retain && !settings.features.retain_available {
            return Some(ReasonCode::RetainNotSupported);
        }
        if !super::inbound::topic_within_limits(&will.topic, &settings.limits) {
            return Some(ReasonCode::TopicNameInvalid);
        }
    }
    None
}
