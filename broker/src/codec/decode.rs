//! Decoding packets in place from a connection's read buffer.
//!
//! [`Decoder::decode`] looks at the fixed header first: a reserved type, bad flags, a first packet
//! that is not CONNECT, a Remaining Length over four bytes or a packet over the maximum size are
//! rejected as soon as their bytes arrive, before any body is buffered. A partial packet returns
//! `Ok(None)` and leaves the buffer untouched. A whole packet is split off the buffer and frozen,
//! so every string and payload in the result is a view of the bytes that were read.

use bytes::{Buf, BytesMut};

use super::error::DecodeError;
use super::packet::*;
use super::properties::decode_block;
use super::properties::{
    decode_into, AckProperties, AuthProperties, ConnAckProperties, ConnectProperties,
    DisconnectProperties, PropertyContext, PublishProperties, SubscribeProperties, UserProperties,
    WillProperties,
};
use super::reason::ReasonCode;
use super::topic::{is_valid_topic_filter, is_valid_topic_name, split_shared};
use super::wire::Reader;

/// The largest packet MQTT can express: a 4-byte Remaining Length of 268,435,455 plus the fixed
/// header's five bytes.
pub const MAX_PACKET_SIZE_LIMIT: u32 = 268_435_460;

/// Decodes packets from one connection's byte stream.
#[derive(Debug, Clone)]
pub struct Decoder {
    version: Option<ProtocolVersion>,
    max_packet_size: u32,
}

impl Decoder {
    /// A decoder for a server-side connection: the first packet must be CONNECT, which sets the
    /// protocol version for the rest of the stream.
    pub fn new(max_packet_size: u32) -> Self {
        Decoder {
            version: None,
            max_packet_size,
        }
    }

    /// A decoder whose protocol version is already known (a client's view of the stream).
    pub fn with_version(version: ProtocolVersion, max_packet_size: u32) -> Self {
        Decoder {
            version: Some(version),
            max_packet_size,
        }
    }

    pub fn version(&self) -> Option<ProtocolVersion> {
        self.version
    }

    pub fn max_packet_size(&self) -> u32 {
        self.max_packet_size
    }

    /// Decodes one packet from the front of `buf`.
    ///
    /// `Ok(None)` means more bytes are needed; nothing was consumed or allocated. On error the
    /// connection must be closed (the error's reason code says with what).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Packet>, DecodeError> {
        let mut publish = Publish::default();
        Ok(match self.decode_reusing(buf, &mut publish)? {
            None => None,
            Some(Decoded::Publish) => Some(Packet::Publish(publish)),
            Some(Decoded::Other(packet)) => Some(packet),
        })
    }

    /// Decodes one packet from the front of `buf` as [`decode`](Self::decode) does, but a
    /// PUBLISH is written into `publish` (every field set) instead of being returned: the
    /// connection's read loop keeps one `Publish` for all the PUBLISH packets of a read, so
    /// the 250-byte struct is not built and then moved through `Packet` and on to the
    /// message envelope (those copies were a fifth of a single-subscriber publish).
    pub fn decode_reusing(
        &mut self,
        buf: &mut BytesMut,
        publish: &mut Publish,
    ) -> Result<Option<Decoded>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let packet_type = check_first_byte(first, self.version)?;
        let Some((header_len, remaining)) = parse_remaining_length(buf)? else {
            return Ok(None);
        };
        let total = header_len + remaining;
        if total > self.max_packet_size as usize {
            return Err(DecodeError::PacketTooLarge {
                size: total,
                max: self.max_packet_size,
            });
        }
        if buf.len() < total {
            return Ok(None);
        }
        let mut frame = buf.split_to(total).freeze();
        frame.advance(header_len);
        let mut reader = Reader::new(frame, packet_type);
        let version = self.version;
        if let (PacketType::Publish, Some(v)) = (packet_type, version) {
            decode_publish(first & 0x0F, &mut reader, v, publish)?;
            reader.finish()?;
            return Ok(Some(Decoded::Publish));
        }
        let packet = decode_body(first & 0x0F, reader, version)?;
        if let Packet::Connect(connect) = &packet {
            if self.version.is_none() {
                self.version = Some(connect.protocol);
            }
        }
        Ok(Some(Decoded::Other(packet)))
    }
}

/// What [`Decoder::decode_reusing`] decoded.
// `Other` is as large as `Packet`, which `decode` returns anyway; boxing it would allocate for
// every acknowledgement a client sends.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decoded {
    /// A PUBLISH, now in the `Publish` the caller passed.
    Publish,
    /// Any other packet.
    Other(Packet),
}

/// Checks what the first byte alone can tell: the type exists in this version, its flags are the
/// ones section 2.1.3 requires, and a stream starts with CONNECT [MQTT-3.1.0-1].
fn check_first_byte(
    first: u8,
    version: Option<ProtocolVersion>,
) -> Result<PacketType, DecodeError> {
    let type_bits = first >> 4;
    let flags = first & 0x0F;
    let packet_type =
        PacketType::from_u8(type_bits).ok_or(DecodeError::ReservedPacketType(type_bits))?;
    match version {
        None if packet_type != PacketType::Connect => {
            return Err(DecodeError::FirstPacketNotConnect(packet_type))
        }
        Some(v) if packet_type == PacketType::Auth && !v.is_v5() => {
            return Err(DecodeError::ReservedPacketType(type_bits))
        }
        _ => {}
    }
    if packet_type == PacketType::Publish {
        let qos = (flags >> 1) & 0b11;
        if qos == 3 {
            return Err(DecodeError::InvalidQos);
        }
        if qos == 0 && flags & 0b1000 != 0 {
            return Err(DecodeError::DupOnQos0);
        }
    } else if flags != packet_type.required_flags() {
        return Err(DecodeError::InvalidHeaderFlags {
            packet: packet_type,
            flags,
        });
    }
    Ok(packet_type)
}

/// Parses the fixed header's Remaining Length: `(header length, remaining length)`, or `None`
/// if its bytes have not all arrived. A fifth length byte is Malformed [MQTT-2.2.3].
pub fn parse_remaining_length(buf: &[u8]) -> Result<Option<(usize, usize)>, DecodeError> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((2 + i, remaining)));
        }
    }
    Err(DecodeError::MalformedRemainingLength)
}

fn decode_body(
    flags: u8,
    mut r: Reader,
    version: Option<ProtocolVersion>,
) -> Result<Packet, DecodeError> {
    // CONNECT carries its own version; check_first_byte guarantees one for every other packet.
    let v = version.unwrap_or(ProtocolVersion::V5);
    let packet = match r.packet() {
        PacketType::Connect => Packet::Connect(Box::new(decode_connect(&mut r)?)),
        PacketType::ConnAck => Packet::ConnAck(decode_connack(&mut r, v)?),
        PacketType::Publish => {
            let mut publish = Publish::default();
            decode_publish(flags, &mut r, v, &mut publish)?;
            Packet::Publish(publish)
        }
        PacketType::PubAck => Packet::PubAck(decode_pub_response(&mut r, v)?),
        PacketType::PubRec => Packet::PubRec(decode_pub_response(&mut r, v)?),
        PacketType::PubRel => Packet::PubRel(decode_pub_response(&mut r, v)?),
        PacketType::PubComp => Packet::PubComp(decode_pub_response(&mut r, v)?),
        PacketType::Subscribe => Packet::Subscribe(decode_subscribe(&mut r, v)?),
        PacketType::SubAck => Packet::SubAck(decode_suback(&mut r, v)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(decode_unsubscribe(&mut r, v)?),
        PacketType::UnsubAck => Packet::UnsubAck(decode_unsuback(&mut r, v)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => {
            let (reason_code, properties) =
                decode_reason_and_properties::<DisconnectProperties>(&mut r, v)?;
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
        }
        PacketType::Auth => {
            let (reason_code, properties) =
                decode_reason_and_properties::<AuthProperties>(&mut r, v)?;
            Packet::Auth(Auth {
                reason_code,
                properties,
            })
        }
    };
    r.finish()?;
    Ok(packet)
}

fn decode_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let name = r.string()?;
    let level = r.u8()?;
    let protocol = ProtocolVersion::from_level(level)
        .filter(|version| version.protocol_name() == &*name)
        .ok_or_else(|| DecodeError::UnsupportedProtocol {
            name: name.to_string(),
            level,
        })?;
    let flags = r.u8()?;
    if flags & 0x01 != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let clean_start = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0b11;
    let will_retain = flags & 0x20 != 0;
    let password_flag = flags & 0x40 != 0;
    let username_flag = flags & 0x80 != 0;
    let will_qos = QoS::from_u8(will_qos).ok_or(DecodeError::WillFlags("Will QoS is 3"))?;
    if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
        return Err(DecodeError::WillFlags(
            "Will QoS or Will Retain set without the Will Flag",
        ));
    }
    if protocol != ProtocolVersion::V5 && password_flag && !username_flag {
        return Err(DecodeError::PasswordWithoutUsername);
    }
    let keep_alive = r.u16()?;
    let properties = if protocol.is_v5() {
        decode_into!(
            r,
            PropertyContext::Packet(PacketType::Connect),
            ConnectProperties
        )
    } else {
        ConnectProperties::default()
    };
    if properties.authentication_data.is_some() && properties.authentication_method.is_none() {
        return Err(DecodeError::AuthDataWithoutMethod);
    }
    let client_id = r.string()?;
    let will = if will_flag {
        let properties = if protocol.is_v5() {
            decode_into!(r, PropertyContext::Will, WillProperties)
        } else {
            WillProperties::default()
        };
        let topic = r.string()?;
        if !is_valid_topic_name(&topic) {
            return Err(DecodeError::TopicNameInvalid(topic.to_string()));
        }
        let payload = r.binary()?;
        Some(Will {
            qos: will_qos,
            retain: will_retain,
            topic,
            payload,
            properties,
        })
    } else {
        None
    };
    let username = if username_flag {
        Some(r.string()?)
    } else {
        None
    };
    let password = if password_flag {
        Some(r.binary()?)
    } else {
        None
    };
    r.finish()?;
    Ok(Connect {
        protocol,
        clean_start,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

fn reason(code: u8, packet: PacketType, v: ProtocolVersion) -> Result<ReasonCode, DecodeError> {
    let decoded = match (v, packet) {
        (ProtocolVersion::V5, _) => ReasonCode::from_u8(code).filter(|c| c.allowed_in(packet)),
        (_, PacketType::ConnAck) => ReasonCode::from_v4_connack(code),
        (_, PacketType::SubAck) => ReasonCode::from_v4_suback(code),
        _ => None,
    };
    decoded.ok_or(DecodeError::InvalidReasonCode { code, packet })
}

fn decode_connack(r: &mut Reader, v: ProtocolVersion) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    if flags & 0xFE != 0 {
        return Err(DecodeError::ConnAckReservedFlags(flags));
    }
    let reason_code = reason(r.u8()?, PacketType::ConnAck, v)?;
    let properties = if v.is_v5() {
        decode_into!(
            r,
            PropertyContext::Packet(PacketType::ConnAck),
            ConnAckProperties
        )
    } else {
        ConnAckProperties::default()
    };
    Ok(ConnAck {
        session_present: flags & 0x01 != 0,
        reason_code,
        properties,
    })
}

fn packet_id(r: &mut Reader) -> Result<u16, DecodeError> {
    match r.u16()? {
        0 => Err(DecodeError::ZeroPacketIdentifier(r.packet())),
        id => Ok(id),
    }
}

/// Decodes a PUBLISH's variable header and payload into `publish`, setting every field.
fn decode_publish(
    flags: u8,
    r: &mut Reader,
    v: ProtocolVersion,
    publish: &mut Publish,
) -> Result<(), DecodeError> {
    // check_first_byte already rejected QoS 3 and DUP on QoS 0.
    let qos = QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQos)?;
    publish.qos = qos;
    publish.dup = flags & 0b1000 != 0;
    publish.retain = flags & 0b0001 != 0;
    publish.topic = r.string()?;
    publish.packet_id = if qos == QoS::AtMostOnce {
        0
    } else {
        packet_id(r)?
    };
    if v.is_v5() {
        publish.properties = decode_into!(
            r,
            PropertyContext::Packet(PacketType::Publish),
            PublishProperties
        );
    } else if publish.properties != PublishProperties::default() {
        // A reused `Publish` whose properties were taken is already empty: no 176-byte write.
        publish.properties = PublishProperties::default();
    }
    if publish.topic.is_empty() {
        if publish.properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopicWithoutAlias);
        }
    } else if !is_valid_topic_name(&publish.topic) {
        return Err(DecodeError::TopicNameInvalid(publish.topic.to_string()));
    }
    publish.payload = r.rest();
    Ok(())
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP: in 5.0 the reason code and properties may be omitted
/// (sections 3.4.2.1 and 3.4.2.2).
fn decode_pub_response(r: &mut Reader, v: ProtocolVersion) -> Result<PubResponse, DecodeError> {
    let packet_id = packet_id(r)?;
    let (reason_code, properties) = decode_reason_and_properties::<AckProperties>(r, v)?;
    Ok(PubResponse {
        packet_id,
        reason_code,
        properties,
    })
}

/// Packets whose 5.0 form ends in an optional reason code and optional properties.
trait OptionalTail: Default {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError>;
}

impl OptionalTail for AckProperties {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        let context = PropertyContext::Packet(r.packet());
        Ok(decode_into!(r, context, AckProperties))
    }
}
impl OptionalTail for DisconnectProperties {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(decode_into!(
            r,
            PropertyContext::Packet(PacketType::Disconnect),
            DisconnectProperties
        ))
    }
}
impl OptionalTail for AuthProperties {
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(decode_into!(
            r,
            PropertyContext::Packet(PacketType::Auth),
            AuthProperties
        ))
    }
}

fn decode_reason_and_properties<P: OptionalTail>(
    r: &mut Reader,
    v: ProtocolVersion,
) -> Result<(ReasonCode, P), DecodeError> {
    if !v.is_v5() || r.remaining() == 0 {
        return Ok((ReasonCode::Success, P::default()));
    }
    let code = reason(r.u8()?, r.packet(), v)?;
    let properties = if r.remaining() > 0 {
        P::decode(r)?
    } else {
        P::default()
    };
    Ok((code, properties))
}

fn filter(r: &mut Reader) -> Result<bytestring::ByteString, DecodeError> {
    let filter = r.string()?;
    if !is_valid_topic_filter(&filter) {
        return Err(DecodeError::TopicFilterInvalid(filter.to_string()));
    }
    Ok(filter)
}

fn decode_subscribe(r: &mut Reader, v: ProtocolVersion) -> Result<Subscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if v.is_v5() {
        decode_into!(
            r,
            PropertyContext::Packet(PacketType::Subscribe),
            SubscribeProperties
        )
    } else {
        SubscribeProperties::default()
    };
    let mut filters = Vec::new();
    while r.remaining() > 0 {
        let topic = filter(r)?;
        let byte = r.u8()?;
        let reserved = if v.is_v5() { 0b1100_0000 } else { 0b1111_1100 };
        if byte & reserved != 0 {
            return Err(DecodeError::SubscriptionOptionsReserved(byte));
        }
        let qos = match QoS::from_u8(byte & 0b11) {
            Some(qos) => qos,
            // 5.0 section 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the
            // value 3". In 3.1.1 it is malformed [MQTT-3.8.3-4].
            None if v.is_v5() => return Err(DecodeError::InvalidMaximumQos),
            None => return Err(DecodeError::InvalidQos),
        };
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendOnSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::InvalidRetainHandling),
        };
        let options = SubscriptionOptions {
            qos,
            no_local: byte & 0b0100 != 0,
            retain_as_published: byte & 0b1000 != 0,
            retain_handling,
        };
        // [MQTT-3.8.3-4]: No Local on a shared subscription is a Protocol Error.
        if options.no_local && split_shared(&topic).is_some() {
            return Err(DecodeError::NoLocalOnSharedSubscription);
        }
        filters.push((topic, options));
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters(PacketType::Subscribe));
    }
    Ok(Subscribe {
        packet_id,
        properties,
        filters,
    })
}

fn reason_codes(r: &mut Reader, v: ProtocolVersion) -> Result<Vec<ReasonCode>, DecodeError> {
    let mut codes = Vec::with_capacity(r.remaining());
    while r.remaining() > 0 {
        codes.push(reason(r.u8()?, r.packet(), v)?);
    }
    if codes.is_empty() {
        return Err(DecodeError::Truncated(r.packet()));
    }
    Ok(codes)
}

fn decode_suback(r: &mut Reader, v: ProtocolVersion) -> Result<SubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if v.is_v5() {
        decode_into!(
            r,
            PropertyContext::Packet(PacketType::SubAck),
            AckProperties
        )
    } else {
        AckProperties::default()
    };
    Ok(SubAck {
        packet_id,
        properties,
        reason_codes: reason_codes(r, v)?,
    })
}

fn decode_unsubscribe(r: &mut Reader, v: ProtocolVersion) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = if v.is_v5() {
        let context = PropertyContext::Packet(PacketType::Unsubscribe);
        decode_block(r, context, |id, _| {
            Err(DecodeError::PropertyNotAllowed {
                id,
                packet: PacketType::Unsubscribe,
            })
        })?
    } else {
        UserProperties::default()
    };
    let mut filters = Vec::new();
    while r.remaining() > 0 {
        filters.push(filter(r)?);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters(PacketType::Unsubscribe));
    }
    Ok(Unsubscribe {
        packet_id,
        properties,
        filters,
    })
}

fn decode_unsuback(r: &mut Reader, v: ProtocolVersion) -> Result<UnsubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    if !v.is_v5() {
        return Ok(UnsubAck {
            packet_id,
            ..UnsubAck::default()
        });
    }
    let properties = decode_into!(
        r,
        PropertyContext::Packet(PacketType::UnsubAck),
        AckProperties
    );
    Ok(UnsubAck {
        packet_id,
        properties,
        reason_codes: reason_codes(r, v)?,
    })
}
