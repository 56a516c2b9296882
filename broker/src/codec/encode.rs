//! Encoding packets into a caller-supplied buffer.
//!
//! Each packet is written by one generic function over [`Sink`]: run once over a [`Counter`] to
//! learn the Remaining Length, then over the caller's `BytesMut`. Fields that a protocol version
//! does not have (properties and reason codes before 5.0) are not written for it.

use bytes::BytesMut;

use super::error::EncodeError;
use super::packet::*;
use super::properties::PropertyBlock;
use super::reason::ReasonCode;
use super::wire::{varint_len, Counter, Sink, VARINT_MAX};

/// Writes `packet`, encoded for `version`, to the end of `buf`.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let body = body_len(packet, version)?;
    buf.reserve(1 + varint_len(body as u32) + body);
    buf.put_u8(first_byte(packet));
    buf.put_varint(body as u32);
    write_body(packet, version, buf)
}

/// The number of bytes [`encode`] writes for `packet`: what a Maximum Packet Size is compared to.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    let body = body_len(packet, version)?;
    Ok(1 + varint_len(body as u32) + body)
}

fn body_len(packet: &Packet, version: ProtocolVersion) -> Result<usize, EncodeError> {
    let mut counter = Counter(0);
    write_body(packet, version, &mut counter)?;
    if counter.0 > VARINT_MAX as usize {
        return Err(EncodeError::PacketTooLarge(counter.0));
    }
    Ok(counter.0)
}

/// The fixed header's first byte: type in the high nibble, flags in the low one.
pub fn first_byte(packet: &Packet) -> u8 {
    let packet_type = packet.packet_type();
    let flags = match packet {
        Packet::Publish(p) => publish_flags(p.dup, p.qos, p.retain),
        _ => packet_type.required_flags(),
    };
    (packet_type as u8) << 4 | flags
}

/// The low nibble of a PUBLISH fixed header (section 3.3.1).
pub fn publish_flags(dup: bool, qos: QoS, retain: bool) -> u8 {
    (u8::from(dup) << 3) | (qos.as_u8() << 1) | u8::from(retain)
}

fn write_body<S: Sink>(packet: &Packet, v: ProtocolVersion, s: &mut S) -> Result<(), EncodeError> {
    match packet {
        Packet::Connect(c) => write_connect(c, s),
        Packet::ConnAck(c) => {
            s.put_u8(u8::from(c.session_present));
            s.put_u8(if v.is_v5() {
                c.reason_code.as_u8()
            } else {
                c.reason_code.to_v4_connack()
            });
            v5_block(v, &c.properties, s)
        }
        Packet::Publish(p) => {
            s.put_binary(p.topic.as_bytes())?;
            if p.qos != QoS::AtMostOnce {
                if p.packet_id == 0 {
                    return Err(EncodeError::MissingPacketIdentifier(p.qos.as_u8()));
                }
                s.put_u16(p.packet_id);
            }
            v5_block(v, &p.properties, s)?;
            s.put_slice(&p.payload);
            Ok(())
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            s.put_u16(r.packet_id);
            write_optional_tail(v, r.reason_code, &r.properties, s)
        }
        Packet::Subscribe(sub) => {
            s.put_u16(sub.packet_id);
            v5_block(v, &sub.properties, s)?;
            for (filter, options) in &sub.filters {
                s.put_binary(filter.as_bytes())?;
                s.put_u8(options_byte(options, v));
            }
            Ok(())
        }
        Packet::SubAck(ack) => {
            s.put_u16(ack.packet_id);
            v5_block(v, &ack.properties, s)?;
            for code in &ack.reason_codes {
                s.put_u8(if v.is_v5() {
                    code.as_u8()
                } else {
                    code.to_v4_suback()
                });
            }
            Ok(())
        }
        Packet::Unsubscribe(unsub) => {
            s.put_u16(unsub.packet_id);
            v5_block(v, &unsub.properties, s)?;
            for filter in &unsub.filters {
                s.put_binary(filter.as_bytes())?;
            }
            Ok(())
        }
        Packet::UnsubAck(ack) => {
            s.put_u16(ack.packet_id);
            if v.is_v5() {
                ack.properties.write_block(s)?;
                for code in &ack.reason_codes {
                    s.put_u8(code.as_u8());
                }
            }
            Ok(())
        }
        Packet::PingReq | Packet::PingResp => Ok(()),
        Packet::Disconnect(d) => write_optional_tail(v, d.reason_code, &d.properties, s),
        Packet::Auth(a) => {
            if !v.is_v5() {
                return Err(EncodeError::PacketNotInVersion(PacketType::Auth));
            }
            write_optional_tail(v, a.reason_code, &a.properties, s)
        }
    }
}

fn v5_block<S: Sink, P: PropertyBlock>(
    v: ProtocolVersion,
    props: &P,
    s: &mut S,
) -> Result<(), EncodeError> {
    if v.is_v5() {
        props.write_block(s)?;
    }
    Ok(())
}

fn has_properties<P: PropertyBlock>(props: &P) -> Result<bool, EncodeError> {
    let mut counter = Counter(0);
    props.write_properties(&mut counter)?;
    Ok(counter.0 > 0)
}

/// The 5.0 tail of acknowledgements, DISCONNECT and AUTH: omitted entirely for Success with no
/// properties, the reason code alone when there are no properties (e.g. section 3.4.2.1).
fn write_optional_tail<S: Sink, P: PropertyBlock>(
    v: ProtocolVersion,
    code: ReasonCode,
    props: &P,
    s: &mut S,
) -> Result<(), EncodeError> {
    if !v.is_v5() {
        return Ok(());
    }
    let with_properties = has_properties(props)?;
    if code == ReasonCode::Success && !with_properties {
        return Ok(());
    }
    s.put_u8(code.as_u8());
    if with_properties {
        props.write_block(s)?;
    }
    Ok(())
}

/// The subscription options byte (section 3.8.3.1); 3.1.1 has only the QoS bits.
fn options_byte(options: &SubscriptionOptions, v: ProtocolVersion) -> u8 {
    let qos = options.qos.as_u8();
    if !v.is_v5() {
        return qos;
    }
    qos | (u8::from(options.no_local) << 2)
        | (u8::from(options.retain_as_published) << 3)
        | ((options.retain_handling as u8) << 4)
}

fn write_connect<S: Sink>(c: &Connect, s: &mut S) -> Result<(), EncodeError> {
    let v = c.protocol;
    s.put_binary(v.protocol_name().as_bytes())?;
    s.put_u8(v.level());
    let mut flags = u8::from(c.clean_start) << 1;
    if let Some(will) = &c.will {
        flags |= 0x04 | (will.qos.as_u8() << 3) | (u8::from(will.retain) << 5);
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    s.put_u8(flags);
    s.put_u16(c.keep_alive);
    v5_block(v, &c.properties, s)?;
    s.put_binary(c.client_id.as_bytes())?;
    if let Some(will) = &c.will {
        v5_block(v, &will.properties, s)?;
        s.put_binary(will.topic.as_bytes())?;
        s.put_binary(&will.payload)?;
    }
    if let Some(username) = &c.username {
        s.put_binary(username.as_bytes())?;
    }
    if let Some(password) = &c.password {
        s.put_binary(password)?;
    }
    Ok(())
}
