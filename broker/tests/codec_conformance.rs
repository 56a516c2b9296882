//! One test per decoder-relevant normative statement of MQTT 3.1.1 and 5.0. Each test is named
//! after the statement (`mqtt_<section>_<number>_...`; where the two versions number a statement
//! differently, the 5.0 number is used and the 3.1.1 one is given in the doc comment) and asserts
//! the exact [`DecodeError`] and the reason code the connection must answer with.

mod codec_support;

use bytes::BytesMut;
use codec_support::*;
use ferrumq_broker::codec::properties::id;
use ferrumq_broker::codec::*;
use PacketType as T;
use ProtocolVersion::{V3_1, V3_1_1, V5};
use ReasonCode::{MalformedPacket, PacketTooLarge, ProtocolError};

const MAX: u32 = MAX_PACKET_SIZE_LIMIT;

/// Decodes `notation` with `decoder`, expecting `error` with `code`. The input must hold the
/// whole packet (or, for header-level errors, as much of it as the test means to show is
/// enough).
fn rejects_with(mut decoder: Decoder, notation: &str, error: DecodeError, code: ReasonCode) {
    let bytes = wire(notation);
    let mut buf = BytesMut::from(&bytes[..]);
    let got = decoder.decode(&mut buf);
    assert_eq!(got, Err(error.clone()), "decoding {}", hex(&bytes));
    assert_eq!(error.reason_code(), code, "reason code of {error:?}");
    assert!(code.is_error());
}

/// Expects `error` from a decoder of `version` (after CONNECT).
fn rejects(version: ProtocolVersion, notation: &str, error: DecodeError, code: ReasonCode) {
    rejects_with(Decoder::with_version(version, MAX), notation, error, code)
}

/// Expects `error` from a fresh server-side decoder (the packet is the first of the stream).
fn rejects_first(notation: &str, error: DecodeError, code: ReasonCode) {
    rejects_with(Decoder::new(MAX), notation, error, code)
}

/// Decodes one whole packet successfully.
fn accepts(mut decoder: Decoder, notation: &str) -> Packet {
    let bytes = wire(notation);
    let mut buf = BytesMut::from(&bytes[..]);
    match decoder.decode(&mut buf) {
        Ok(Some(packet)) => {
            assert!(buf.is_empty(), "left over after {}", hex(&bytes));
            packet
        }
        other => panic!("decoding {}: {other:?}", hex(&bytes)),
    }
}

/// A 5.0 CONNECT (clean start, keep alive 0, client id "c") whose property block is `props`
/// (the Property Length is computed).
fn connect_v5_with_properties(props: &str) -> String {
    let props = wire(props);
    let body_len = 10 + 1 + props.len() + 3;
    format!(
        "10 {body_len:02X} 00 04 'M' 'Q' 'T' 'T' 05 02 00 00 {:02X} {} 00 01 'c'",
        props.len(),
        hex(&props)
    )
}

/// A 5.0 QoS 0 PUBLISH to "t" whose property block is `props`, with payload "p".
fn publish_v5_with_properties(props: &str) -> String {
    let props = wire(props);
    let body_len = 3 + 1 + props.len() + 1;
    format!(
        "30 {body_len:02X} 00 01 't' {:02X} {} 'p'",
        props.len(),
        hex(&props)
    )
}

/// A 5.0 CONNACK (Success) whose property block is `props`.
fn connack_v5_with_properties(props: &str) -> String {
    let props = wire(props);
    format!(
        "20 {:02X} 00 00 {:02X} {}",
        3 + props.len(),
        props.len(),
        hex(&props)
    )
}

/// A CONNECT with the given protocol name, level and flags byte, client id "c" and whatever
/// `payload_rest` adds after it (the Remaining Length is computed).
fn connect_raw(name: &str, level: u8, flags: u8, payload_rest: &str) -> String {
    let mut body = vec![0u8, name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&[level, flags, 0, 0]);
    if level == 5 {
        body.push(0); // empty CONNECT properties
    }
    body.extend_from_slice(&[0, 1, b'c']);
    body.extend(wire(payload_rest));
    format!("10 {:02X} {}", body.len(), hex(&body))
}

// ---------------------------------------------------------------------------------------------
// Section 1.5: data representation
// ---------------------------------------------------------------------------------------------

/// 5.0 [MQTT-1.5.4-1] / 3.1.1 [MQTT-1.5.3-1]: ill-formed UTF-8 (surrogates, overlong forms,
/// stray continuation bytes, truncated sequences) is a Malformed Packet, wherever the string is.
#[test]
fn mqtt_1_5_4_1_ill_formed_utf8_is_malformed() {
    for bad in ["ED A0 80", "C0 AF", "80", "E2 82", "F8 88 80 80 80", "FF"] {
        let n = wire(bad).len();
        // Topic name of a QoS 0 PUBLISH, both versions.
        let publish = format!("30 {:02X} 00 {n:02X} {bad}", 2 + n);
        rejects(V3_1_1, &publish, DecodeError::InvalidUtf8, MalformedPacket);
        let publish_v5 = format!("30 {:02X} 00 {n:02X} {bad} 00", 3 + n);
        rejects(V5, &publish_v5, DecodeError::InvalidUtf8, MalformedPacket);
        // Client identifier of CONNECT.
        let connect = format!(
            "10 {:02X} 00 04 'M' 'Q' 'T' 'T' 04 02 00 00 00 {n:02X} {bad}",
            12 + n
        );
        rejects_first(&connect, DecodeError::InvalidUtf8, MalformedPacket);
        // Topic filter of SUBSCRIBE.
        let subscribe = format!("82 {:02X} 00 01 00 {n:02X} {bad} 00", 5 + n);
        rejects(
            V3_1_1,
            &subscribe,
            DecodeError::InvalidUtf8,
            MalformedPacket,
        );
        // Key of a user property.
        let user = format!("26 00 {n:02X} {bad} 00 00");
        rejects(
            V5,
            &publish_v5_with_properties(&user),
            DecodeError::InvalidUtf8,
            MalformedPacket,
        );
    }
}

/// 5.0 [MQTT-1.5.4-2] / 3.1.1 [MQTT-1.5.3-2]: a UTF-8 string must not contain U+0000.
#[test]
fn mqtt_1_5_4_2_null_character_is_malformed() {
    rejects(
        V3_1_1,
        "30 05 00 03 'a' 00 'b'",
        DecodeError::NullCharacter,
        MalformedPacket,
    );
    rejects_first(
        "10 0F 00 04 'M' 'Q' 'T' 'T' 04 02 00 00 00 03 'a' 00 'b'",
        DecodeError::NullCharacter,
        MalformedPacket,
    );
    rejects(
        V5,
        &publish_v5_with_properties("03 00 01 00"),
        DecodeError::NullCharacter,
        MalformedPacket,
    );
}

/// 5.0 [MQTT-1.5.4-3] / 3.1.1 [MQTT-1.5.3-3]: a leading U+FEFF is kept, not stripped.
#[test]
fn mqtt_1_5_4_3_byte_order_mark_is_not_stripped() {
    let packet = accepts(
        Decoder::with_version(V3_1_1, MAX),
        "30 07 00 05 EF BB BF 'a' '/' ",
    );
    let Packet::Publish(p) = packet else {
        panic!("{packet:?}")
    };
    assert_eq!(&*p.topic, "\u{FEFF}a/");
}

/// 5.0 section 1.5.5: a Variable Byte Integer has at most four bytes; a fifth is malformed.
#[test]
fn mqtt_1_5_5_variable_byte_integer_at_most_four_bytes() {
    // A Subscription Identifier (a Variable Byte Integer property) of five bytes.
    rejects(
        V5,
        &publish_v5_with_properties("0B 80 80 80 80 01"),
        DecodeError::MalformedVariableInteger,
        MalformedPacket,
    );
    // A Property Length of five bytes.
    rejects(
        V5,
        "30 08 00 01 't' 80 80 80 80 01",
        DecodeError::MalformedVariableInteger,
        MalformedPacket,
    );
}

// ---------------------------------------------------------------------------------------------
// Section 2: fixed header, packet identifier, properties, reason codes
// ---------------------------------------------------------------------------------------------

/// 5.0 section 2.1.2 / 3.1.1 section 2.2.1: packet type 0 is reserved (Malformed).
#[test]
fn mqtt_2_1_2_packet_type_0_is_reserved() {
    for version in [V3_1, V3_1_1, V5] {
        rejects(
            version,
            "00 00",
            DecodeError::ReservedPacketType(0),
            MalformedPacket,
        );
    }
}

/// 3.1.1 section 2.2.1: packet type 15 is reserved; AUTH exists only in 5.0.
#[test]
fn mqtt_2_1_2_auth_is_reserved_before_5_0() {
    for version in [V3_1, V3_1_1] {
        rejects(
            version,
            "F0 00",
            DecodeError::ReservedPacketType(15),
            MalformedPacket,
        );
    }
    assert_eq!(
        accepts(Decoder::with_version(V5, MAX), "F0 00"),
        Packet::Auth(Auth::default())
    );
}

/// 5.0 [MQTT-2.1.3-1] / 3.1.1 [MQTT-2.2.2-1] and [MQTT-2.2.2-2]: the reserved flag bits of every
/// packet but PUBLISH must be as listed (0010 for PUBREL, SUBSCRIBE, UNSUBSCRIBE, 0000 for the
/// rest); anything else is Malformed, and is detected from the first byte alone.
#[test]
fn mqtt_2_1_3_1_reserved_header_flags_must_be_as_listed() {
    for version in [V3_1_1, V5] {
        for type_bits in 1..=15u8 {
            let packet = PacketType::from_u8(type_bits).unwrap();
            if packet == T::Publish || (packet == T::Auth && !version.is_v5()) {
                continue;
            }
            for flags in 0..16u8 {
                if flags == packet.required_flags() {
                    continue;
                }
                let decoder = if packet == T::Connect {
                    Decoder::new(MAX)
                } else {
                    Decoder::with_version(version, MAX)
                };
                // Only the first byte: nothing else is needed to reject it.
                rejects_with(
                    decoder,
                    &format!("{:02X}", type_bits << 4 | flags),
                    DecodeError::InvalidHeaderFlags { packet, flags },
                    MalformedPacket,
                );
            }
        }
    }
}

/// 3.1.1 [MQTT-3.6.1-1] / 5.0 section 3.6.1: PUBREL's flags must be 0010.
#[test]
fn mqtt_3_6_1_1_pubrel_flags_must_be_0010() {
    for version in [V3_1_1, V5] {
        rejects(
            version,
            "60 02 00 01",
            DecodeError::InvalidHeaderFlags {
                packet: T::PubRel,
                flags: 0,
            },
            MalformedPacket,
        );
    }
}

/// 3.1.1 [MQTT-3.8.1-1] / 5.0 section 3.8.1: SUBSCRIBE's flags must be 0010.
#[test]
fn mqtt_3_8_1_1_subscribe_flags_must_be_0010() {
    for version in [V3_1_1, V5] {
        rejects(
            version,
            "80 06 00 01 00 01 'a' 00",
            DecodeError::InvalidHeaderFlags {
                packet: T::Subscribe,
                flags: 0,
            },
            MalformedPacket,
        );
    }
}

/// 3.1.1 [MQTT-3.10.1-1] / 5.0 section 3.10.1: UNSUBSCRIBE's flags must be 0010.
#[test]
fn mqtt_3_10_1_1_unsubscribe_flags_must_be_0010() {
    for version in [V3_1_1, V5] {
        rejects(
            version,
            "A0 05 00 01 00 01 'a'",
            DecodeError::InvalidHeaderFlags {
                packet: T::Unsubscribe,
                flags: 0,
            },
            MalformedPacket,
        );
    }
}

/// 3.1.1 section 2.2.3 / 5.0 section 1.5.5: the Remaining Length takes at most four bytes. The
/// fifth continuation byte is rejected as soon as it arrives.
#[test]
fn mqtt_2_2_3_remaining_length_at_most_four_bytes() {
    for version in [V3_1_1, V5] {
        rejects(
            version,
            "30 80 80 80 80",
            DecodeError::MalformedRemainingLength,
            MalformedPacket,
        );
        rejects(
            version,
            "30 FF FF FF FF 7F",
            DecodeError::MalformedRemainingLength,
            MalformedPacket,
        );
    }
    // Four bytes that are still continuing: wait for the next one.
    let mut buf = BytesMut::from(&wire("30 80 80 80")[..]);
    assert_eq!(Decoder::with_version(V5, MAX).decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 4);
}

/// 5.0 / 3.1.1 [MQTT-2.2.1-3] (3.1.1 numbers it [MQTT-2.3.1-1]): SUBSCRIBE, UNSUBSCRIBE and
/// PUBLISH with QoS > 0 carry a non-zero Packet Identifier.
#[test]
fn mqtt_2_2_1_3_packet_id_non_zero() {
    for version in [V3_1_1, V5] {
        let props = if version.is_v5() { "00" } else { "" };
        let extra = usize::from(version.is_v5());
        for (first, packet) in [(0x32u8, T::Publish), (0x34, T::Publish)] {
            rejects(
                version,
                &format!("{first:02X} {:02X} 00 01 't' 00 00 {props}", 5 + extra),
                DecodeError::ZeroPacketIdentifier(packet),
                ProtocolError,
            );
        }
        rejects(
            version,
            &format!("82 {:02X} 00 00 {props} 00 01 't' 00", 6 + extra),
            DecodeError::ZeroPacketIdentifier(T::Subscribe),
            ProtocolError,
        );
        rejects(
            version,
            &format!("A2 {:02X} 00 00 {props} 00 01 't'", 5 + extra),
            DecodeError::ZeroPacketIdentifier(T::Unsubscribe),
            ProtocolError,
        );
        // The acknowledgements echo a non-zero identifier, so zero is an error there too.
        for (first, packet) in [
            (0x40u8, T::PubAck),
            (0x50, T::PubRec),
            (0x62, T::PubRel),
            (0x70, T::PubComp),
            (0xB0, T::UnsubAck),
        ] {
            if packet == T::UnsubAck && version.is_v5() {
                continue;
            }
            rejects(
                version,
                &format!("{first:02X} 02 00 00"),
                DecodeError::ZeroPacketIdentifier(packet),
                ProtocolError,
            );
        }
    }
}

/// 5.0 section 2.2.2.2: a property identifier that is not defined is a Malformed Packet.
#[test]
fn mqtt_2_2_2_2_unknown_property_is_malformed() {
    for (props, wire_id) in [("00", 0u32), ("04 00", 4), ("7F 00", 0x7F), ("A6 01", 0xA6)] {
        rejects(
            V5,
            &publish_v5_with_properties(props),
            DecodeError::UnknownProperty(wire_id),
            MalformedPacket,
        );
    }
}

/// 5.0 section 2.2.2.2: "A Control Packet which contains an Identifier which is not valid for
/// its packet type ... is a Malformed Packet".
#[test]
fn mqtt_2_2_2_2_property_not_allowed_in_packet_is_malformed() {
    let not_allowed = |notation: &str, pid: u8, packet: PacketType| {
        rejects(
            V5,
            notation,
            DecodeError::PropertyNotAllowed { id: pid, packet },
            MalformedPacket,
        )
    };
    // Topic Alias in CONNECT.
    not_allowed(
        &connect_v5_with_properties("23 00 01"),
        id::TOPIC_ALIAS,
        T::Connect,
    );
    // Will Delay Interval in the CONNECT properties (it belongs in the Will Properties).
    not_allowed(
        &connect_v5_with_properties("18 00 00 00 01"),
        id::WILL_DELAY_INTERVAL,
        T::Connect,
    );
    // Session Expiry Interval in PUBLISH.
    not_allowed(
        &publish_v5_with_properties("11 00 00 00 01"),
        id::SESSION_EXPIRY_INTERVAL,
        T::Publish,
    );
    // Reason String in SUBSCRIBE.
    not_allowed(
        "82 0A 00 01 04 1F 00 01 'x' 00 01 'a' 00",
        id::REASON_STRING,
        T::Subscribe,
    );
    // Reason String in UNSUBSCRIBE (only User Property is allowed).
    not_allowed(
        "A2 0A 00 01 04 1F 00 01 'x' 00 01 'a'",
        id::REASON_STRING,
        T::Unsubscribe,
    );
    // Maximum QoS in PUBACK.
    not_allowed("40 06 00 01 00 02 24 01", id::MAXIMUM_QOS, T::PubAck);
    // Server Reference in AUTH.
    not_allowed("F0 06 18 04 1C 00 01 'x'", id::SERVER_REFERENCE, T::Auth);
    // Session Expiry Interval inside the Will Properties.
    not_allowed(
        &connect_raw("MQTT", 5, 0x06, "05 11 00 00 00 01 00 01 't' 00 00"),
        id::SESSION_EXPIRY_INTERVAL,
        T::Connect,
    );
}

/// 5.0 section 2.2.2.2 and the per-property rules of section 3: including a property more than
/// once is a Protocol Error, except User Property and (in PUBLISH) Subscription Identifier.
#[test]
fn mqtt_2_2_2_2_duplicate_property_is_protocol_error() {
    let dup = |notation: &str, pid: u8| {
        rejects(
            V5,
            notation,
            DecodeError::DuplicateProperty(pid),
            ProtocolError,
        )
    };
    dup(
        &connect_v5_with_properties("11 00 00 00 01 11 00 00 00 02"),
        id::SESSION_EXPIRY_INTERVAL,
    );
    dup(
        &connect_v5_with_properties("21 00 01 21 00 01"),
        id::RECEIVE_MAXIMUM,
    );
    dup(
        &publish_v5_with_properties("03 00 01 'a' 03 00 01 'b'"),
        id::CONTENT_TYPE,
    );
    dup(
        &publish_v5_with_properties("23 00 01 23 00 01"),
        id::TOPIC_ALIAS,
    );
    dup(&connack_v5_with_properties("24 00 24 00"), id::MAXIMUM_QOS);
    dup(
        "82 0A 00 01 04 0B 01 0B 02 00 01 'a' 00",
        id::SUBSCRIPTION_IDENTIFIER,
    );
    dup(
        "40 0C 00 01 80 08 1F 00 01 'a' 1F 00 01 'b'",
        id::REASON_STRING,
    );

    // Repeatable: User Property anywhere, Subscription Identifier in PUBLISH.
    let packet = accepts(
        Decoder::with_version(V5, MAX),
        &publish_v5_with_properties("0B 01 0B 02 26 00 00 00 00 26 00 00 00 00"),
    );
    let Packet::Publish(p) = packet else {
        panic!("{packet:?}")
    };
    assert_eq!(&p.properties.subscription_identifiers[..], &[1, 2]);
    assert_eq!(p.properties.user_properties.iter().count(), 2);
}

/// 5.0 property value rules (sections 3.1.2.11, 3.2.2.3, 3.3.2.3, 3.8.2.1): out-of-range values
/// are Protocol Errors.
#[test]
fn mqtt_2_2_2_2_out_of_range_property_values_are_protocol_errors() {
    let bad = |notation: &str, pid: u8, value: u32| {
        rejects(
            V5,
            notation,
            DecodeError::InvalidPropertyValue { id: pid, value },
            ProtocolError,
        )
    };
    // 3.1.2.11.3 / 3.2.2.3.3: Receive Maximum 0.
    bad(
        &connect_v5_with_properties("21 00 00"),
        id::RECEIVE_MAXIMUM,
        0,
    );
    bad(
        &connack_v5_with_properties("21 00 00"),
        id::RECEIVE_MAXIMUM,
        0,
    );
    // 3.1.2.11.4 / 3.2.2.3.6: Maximum Packet Size 0.
    bad(
        &connect_v5_with_properties("27 00 00 00 00"),
        id::MAXIMUM_PACKET_SIZE,
        0,
    );
    bad(
        &connack_v5_with_properties("27 00 00 00 00"),
        id::MAXIMUM_PACKET_SIZE,
        0,
    );
    // 3.1.2.11.6 / 3.1.2.11.7: Request Response / Problem Information other than 0 or 1.
    bad(
        &connect_v5_with_properties("19 02"),
        id::REQUEST_RESPONSE_INFORMATION,
        2,
    );
    bad(
        &connect_v5_with_properties("17 FF"),
        id::REQUEST_PROBLEM_INFORMATION,
        255,
    );
    // 3.3.2.3.2: Payload Format Indicator other than 0 or 1 (also in the Will Properties).
    bad(
        &publish_v5_with_properties("01 02"),
        id::PAYLOAD_FORMAT_INDICATOR,
        2,
    );
    bad(
        &connect_raw("MQTT", 5, 0x06, "02 01 02 00 01 't' 00 00"),
        id::PAYLOAD_FORMAT_INDICATOR,
        2,
    );
    // 3.3.2.3.4: Topic Alias 0 [MQTT-3.3.2-8].
    bad(&publish_v5_with_properties("23 00 00"), id::TOPIC_ALIAS, 0);
    // 3.3.2.3.8 / 3.8.2.1.2: Subscription Identifier 0.
    bad(
        &publish_v5_with_properties("0B 00"),
        id::SUBSCRIPTION_IDENTIFIER,
        0,
    );
    bad(
        "82 08 00 01 02 0B 00 00 01 'a' 00",
        id::SUBSCRIPTION_IDENTIFIER,
        0,
    );
    // 3.2.2.3.4 and following: CONNACK Byte properties other than 0 or 1.
    for pid in [
        id::MAXIMUM_QOS,
        id::RETAIN_AVAILABLE,
        id::WILDCARD_SUBSCRIPTION_AVAILABLE,
        id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        id::SHARED_SUBSCRIPTION_AVAILABLE,
    ] {
        bad(
            &connack_v5_with_properties(&format!("{pid:02X} 02")),
            pid,
            2,
        );
    }
}

/// 5.0 section 2.2.2.1: a Property Length that runs past the end of the packet is malformed.
#[test]
fn mqtt_2_2_2_1_property_length_beyond_the_packet_is_malformed() {
    rejects(
        V5,
        "30 05 00 01 't' 05 01",
        DecodeError::Truncated(T::Publish),
        MalformedPacket,
    );
    // A property whose value runs past the end of its block.
    rejects(
        V5,
        "30 08 00 01 't' 03 02 00 00 00",
        DecodeError::Truncated(T::Publish),
        MalformedPacket,
    );
}

/// 5.0 section 2.4 and the reason code tables of each packet: a reason code the packet may not
/// carry (or an undefined byte) is a Malformed Packet.
#[test]
fn mqtt_2_4_reason_code_not_allowed_in_packet_is_malformed() {
    let bad = |notation: &str, code: u8, packet: PacketType| {
        rejects(
            V5,
            notation,
            DecodeError::InvalidReasonCode { code, packet },
            MalformedPacket,
        )
    };
    bad("20 03 00 01 00", 0x01, T::ConnAck);
    bad("20 03 00 8E 00", 0x8E, T::ConnAck);
    bad("40 03 00 01 01", 0x01, T::PubAck);
    bad("50 03 00 01 92", 0x92, T::PubRec);
    bad("62 03 00 01 10", 0x10, T::PubRel);
    bad("70 03 00 01 80", 0x80, T::PubComp);
    bad("90 04 00 01 00 04", 0x04, T::SubAck);
    bad("B0 04 00 01 00 02", 0x02, T::UnsubAck);
    bad("E0 01 01", 0x01, T::Disconnect);
    bad("E0 01 84", 0x84, T::Disconnect);
    bad("F0 01 87", 0x87, T::Auth);
    // Bytes that are no reason code at all.
    bad("40 03 00 01 03", 0x03, T::PubAck);
    bad("E0 01 FF", 0xFF, T::Disconnect);
}

// ---------------------------------------------------------------------------------------------
// Section 3.1: CONNECT
// ---------------------------------------------------------------------------------------------

/// [MQTT-3.1.0-1]: the first packet from the client must be CONNECT; anything else is a
/// Protocol Error, known from the first byte alone.
#[test]
fn mqtt_3_1_0_1_first_packet_must_be_connect() {
    for (first, packet) in [
        ("C0", T::PingReq),
        ("30", T::Publish),
        ("82", T::Subscribe),
        ("E0", T::Disconnect),
        ("20", T::ConnAck),
        ("F0", T::Auth),
    ] {
        rejects_first(
            first,
            DecodeError::FirstPacketNotConnect(packet),
            ProtocolError,
        );
    }
    // A reserved type is still Malformed first of all.
    rejects_first("00", DecodeError::ReservedPacketType(0), MalformedPacket);
    // After CONNECT the decoder follows the version the client chose.
    let mut decoder = Decoder::new(MAX);
    let mut buf = BytesMut::from(&wire("10 0C 00 04 'M' 'Q' 'T' 'T' 04 02 00 00 00 00 C0 00")[..]);
    assert!(matches!(
        decoder.decode(&mut buf),
        Ok(Some(Packet::Connect(_)))
    ));
    assert_eq!(decoder.version(), Some(V3_1_1));
    assert_eq!(decoder.decode(&mut buf), Ok(Some(Packet::PingReq)));
}

/// 5.0 / 3.1.1 [MQTT-3.1.2-1]: the protocol name must be "MQTT" ("MQIsdp" for 3.1); otherwise
/// the server answers Unsupported Protocol Version (0x84; 3.1.1 return code 0x01).
#[test]
fn mqtt_3_1_2_1_protocol_name_must_match() {
    for name in ["MQTX", "mqtt", "MQIsdpX", ""] {
        rejects_first(
            &connect_raw(name, 4, 0x02, ""),
            DecodeError::UnsupportedProtocol {
                name: name.to_owned(),
                level: 4,
            },
            ReasonCode::UnsupportedProtocolVersion,
        );
    }
}

/// 5.0 / 3.1.1 [MQTT-3.1.2-2]: an unsupported protocol level is answered with Unsupported
/// Protocol Version; the name and level must agree (MQIsdp/3, MQTT/4, MQTT/5).
#[test]
fn mqtt_3_1_2_2_unsupported_protocol_level() {
    for (name, level) in [
        ("MQTT", 6),
        ("MQTT", 3),
        ("MQTT", 0),
        ("MQIsdp", 4),
        ("MQIsdp", 5),
    ] {
        rejects_first(
            &connect_raw(name, level, 0x02, ""),
            DecodeError::UnsupportedProtocol {
                name: name.to_owned(),
                level,
            },
            ReasonCode::UnsupportedProtocolVersion,
        );
        assert_eq!(
            ReasonCode::UnsupportedProtocolVersion.to_v4_connack(),
            0x01,
            "3.1.1 return code"
        );
    }
    for (name, level, version) in [("MQIsdp", 3, V3_1), ("MQTT", 4, V3_1_1), ("MQTT", 5, V5)] {
        let mut decoder = Decoder::new(MAX);
        let mut buf = BytesMut::from(&wire(&connect_raw(name, level, 0x02, ""))[..]);
        assert!(matches!(
            decoder.decode(&mut buf),
            Ok(Some(Packet::Connect(_)))
        ));
        assert_eq!(decoder.version(), Some(version));
    }
}

/// 5.0 / 3.1.1 [MQTT-3.1.2-3]: the reserved bit 0 of the Connect Flags must be zero.
#[test]
fn mqtt_3_1_2_3_reserved_flag_must_be_zero() {
    for (name, level) in [("MQIsdp", 3), ("MQTT", 4), ("MQTT", 5)] {
        rejects_first(
            &connect_raw(name, level, 0x03, ""),
            DecodeError::ConnectReservedFlag,
            MalformedPacket,
        );
    }
}

/// 5.0 [MQTT-3.1.2-11] / 3.1.1 [MQTT-3.1.2-13]: without the Will Flag, Will QoS must be 0.
#[test]
fn mqtt_3_1_2_11_will_flags_consistency() {
    for level in [4, 5] {
        for flags in [0x08u8, 0x10] {
            rejects_first(
                &connect_raw("MQTT", level, 0x02 | flags, ""),
                DecodeError::WillFlags("Will QoS or Will Retain set without the Will Flag"),
                MalformedPacket,
            );
        }
    }
}

/// 5.0 [MQTT-3.1.2-12] / 3.1.1 [MQTT-3.1.2-14]: Will QoS 3 is a Malformed Packet.
#[test]
fn mqtt_3_1_2_12_will_qos_3_is_malformed() {
    rejects_first(
        &connect_raw("MQTT", 4, 0x1E, "00 01 't' 00 00"),
        DecodeError::WillFlags("Will QoS is 3"),
        MalformedPacket,
    );
    rejects_first(
        &connect_raw("MQTT", 5, 0x1E, "00 00 01 't' 00 00"),
        DecodeError::WillFlags("Will QoS is 3"),
        MalformedPacket,
    );
}

/// 5.0 [MQTT-3.1.2-13] / 3.1.1 [MQTT-3.1.2-15]: without the Will Flag, Will Retain must be 0.
#[test]
fn mqtt_3_1_2_13_will_retain_needs_the_will_flag() {
    for level in [4, 5] {
        rejects_first(
            &connect_raw("MQTT", level, 0x22, ""),
            DecodeError::WillFlags("Will QoS or Will Retain set without the Will Flag"),
            MalformedPacket,
        );
    }
}

/// 3.1.1 [MQTT-3.1.2-22]: without the User Name Flag the Password Flag must be 0. 5.0 lifted
/// this rule (section 3.1.2.9), so only 3.1 and 3.1.1 reject it.
#[test]
fn mqtt_3_1_2_22_password_without_user_name_only_before_5_0() {
    for (name, level) in [("MQIsdp", 3), ("MQTT", 4)] {
        rejects_first(
            &connect_raw(name, level, 0x42, "00 02 'p' 'w'"),
            DecodeError::PasswordWithoutUsername,
            MalformedPacket,
        );
    }
    let packet = accepts(
        Decoder::new(MAX),
        &connect_raw("MQTT", 5, 0x42, "00 02 'p' 'w'"),
    );
    let Packet::Connect(c) = packet else {
        panic!("{packet:?}")
    };
    assert_eq!(c.username, None);
    assert_eq!(c.password.as_deref(), Some(&b"pw"[..]));
}

/// 5.0 section 3.1.2.11.10: Authentication Data without an Authentication Method is a Protocol
/// Error.
#[test]
fn mqtt_3_1_2_11_10_authentication_data_needs_a_method() {
    rejects_first(
        &connect_v5_with_properties("16 00 01 FF"),
        DecodeError::AuthDataWithoutMethod,
        ProtocolError,
    );
}

/// 5.0 / 3.1.1 [MQTT-3.1.3-11] (3.1.1: [MQTT-3.1.3-10]): the Will Topic is a UTF-8 string and a
/// topic name, so it has no wildcards.
#[test]
fn mqtt_3_1_3_will_topic_must_be_a_valid_topic_name() {
    rejects_first(
        &connect_raw("MQTT", 4, 0x06, "00 03 'a' '/' '#' 00 00"),
        DecodeError::TopicNameInvalid("a/#".to_owned()),
        ReasonCode::TopicNameInvalid,
    );
    rejects_first(
        &connect_raw("MQTT", 4, 0x06, "00 02 'a' 00 00 00"),
        DecodeError::NullCharacter,
        MalformedPacket,
    );
}

/// Fields announced by the Connect Flags must be present: a CONNECT that ends early is
/// malformed, and so is one with bytes after its last field.
#[test]
fn mqtt_3_1_3_payload_fields_must_match_the_flags() {
    // User Name Flag set, no user name.
    rejects_first(
        &connect_raw("MQTT", 4, 0x82, ""),
        DecodeError::Truncated(T::Connect),
        MalformedPacket,
    );
    // Nothing announced, one byte extra.
    rejects_first(
        &connect_raw("MQTT", 4, 0x02, "00"),
        DecodeError::TrailingBytes(T::Connect),
        MalformedPacket,
    );
}

// ---------------------------------------------------------------------------------------------
// Section 3.2: CONNACK
// ---------------------------------------------------------------------------------------------

/// 5.0 [MQTT-3.2.2-1] / 3.1.1 section 3.2.2.1: bits 7-1 of the Connect Acknowledge Flags are
/// reserved and must be 0.
#[test]
fn mqtt_3_2_2_1_connack_reserved_flags_must_be_zero() {
    rejects(
        V3_1_1,
        "20 02 02 00",
        DecodeError::ConnAckReservedFlags(0x02),
        MalformedPacket,
    );
    rejects(
        V5,
        "20 03 80 00 00",
        DecodeError::ConnAckReservedFlags(0x80),
        MalformedPacket,
    );
}

/// 3.1.1 section 3.2.2.3, Table 3.1: return codes 6-255 are reserved.
#[test]
fn mqtt_3_2_2_3_connack_return_codes_6_to_255_are_reserved() {
    for code in [0x06u8, 0x80, 0xFF] {
        rejects(
            V3_1_1,
            &format!("20 02 00 {code:02X}"),
            DecodeError::InvalidReasonCode {
                code,
                packet: T::ConnAck,
            },
            MalformedPacket,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Section 3.3: PUBLISH
// ---------------------------------------------------------------------------------------------

/// 5.0 / 3.1.1 [MQTT-3.3.1-4]: both QoS bits set is a Malformed Packet, known from the first
/// byte.
#[test]
fn mqtt_3_3_1_4_qos_3_is_malformed() {
    for version in [V3_1_1, V5] {
        for first in ["36", "37", "3E", "3F"] {
            rejects(version, first, DecodeError::InvalidQos, MalformedPacket);
        }
    }
}

/// 5.0 / 3.1.1 [MQTT-3.3.1-2]: DUP must be 0 on a QoS 0 message.
#[test]
fn mqtt_3_3_1_2_dup_must_be_zero_for_qos_0() {
    for version in [V3_1_1, V5] {
        rejects(version, "38", DecodeError::DupOnQos0, MalformedPacket);
        rejects(version, "39", DecodeError::DupOnQos0, MalformedPacket);
    }
}

/// 5.0 / 3.1.1 [MQTT-3.3.2-1]: the Topic Name is a UTF-8 string; a PUBLISH too short to hold
/// one is malformed.
#[test]
fn mqtt_3_3_2_1_topic_name_must_be_present() {
    for version in [V3_1_1, V5] {
        rejects(
            version,
            "30 01 00",
            DecodeError::Truncated(T::Publish),
            MalformedPacket,
        );
        rejects(
            version,
            "30 03 00 05 'a'",
            DecodeError::Truncated(T::Publish),
            MalformedPacket,
        );
    }
}

/// 5.0 / 3.1.1 [MQTT-3.3.2-2]: the Topic Name must not contain wildcards (Topic Name invalid,
/// 0x90).
#[test]
fn mqtt_3_3_2_2_topic_name_no_wildcards() {
    for topic in ["a/+", "#", "a/#", "+", "a+b"] {
        let n = topic.len();
        rejects(
            V3_1_1,
            &format!("30 {:02X} 00 {n:02X} {}", 2 + n, hex(topic.as_bytes())),
            DecodeError::TopicNameInvalid(topic.to_owned()),
            ReasonCode::TopicNameInvalid,
        );
        rejects(
            V5,
            &format!("30 {:02X} 00 {n:02X} {} 00", 3 + n, hex(topic.as_bytes())),
            DecodeError::TopicNameInvalid(topic.to_owned()),
            ReasonCode::TopicNameInvalid,
        );
    }
}

/// 3.1.1 [MQTT-4.7.3-1]: topic names are at least one character long (3.1.1 has no Topic
/// Alias to stand for an empty one).
#[test]
fn mqtt_4_7_3_1_topic_name_at_least_one_character() {
    rejects(
        V3_1_1,
        "30 02 00 00",
        DecodeError::EmptyTopicWithoutAlias,
        ProtocolError,
    );
}

/// 5.0 section 3.3.2.3.4: a zero-length Topic Name without a Topic Alias is a Protocol Error.
#[test]
fn mqtt_3_3_2_3_4_empty_topic_name_needs_a_topic_alias() {
    rejects(
        V5,
        "30 03 00 00 00",
        DecodeError::EmptyTopicWithoutAlias,
        ProtocolError,
    );
    accepts(Decoder::with_version(V5, MAX), "30 06 00 00 03 23 00 01");
}

/// 5.0 [MQTT-3.3.2-14]: the Response Topic is a topic name, so it has no wildcards.
#[test]
fn mqtt_3_3_2_14_response_topic_no_wildcards() {
    rejects(
        V5,
        &publish_v5_with_properties("08 00 03 'a' '/' '#'"),
        DecodeError::TopicNameInvalid("a/#".to_owned()),
        ReasonCode::TopicNameInvalid,
    );
}

// ---------------------------------------------------------------------------------------------
// Sections 3.4 to 3.7, 3.9, 3.11, 3.12 to 3.15: acknowledgements and the short packets
// ---------------------------------------------------------------------------------------------

/// Packets with a fixed size carry nothing after their last field: PINGREQ, PINGRESP, 3.1.1
/// DISCONNECT and acknowledgements with a Remaining Length other than 2 are malformed.
#[test]
fn fixed_size_packets_with_extra_bytes_are_malformed() {
    for version in [V3_1_1, V5] {
        rejects(
            version,
            "C0 01 00",
            DecodeError::TrailingBytes(T::PingReq),
            MalformedPacket,
        );
        rejects(
            version,
            "D0 01 00",
            DecodeError::TrailingBytes(T::PingResp),
            MalformedPacket,
        );
    }
    rejects(
        V3_1_1,
        "E0 01 00",
        DecodeError::TrailingBytes(T::Disconnect),
        MalformedPacket,
    );
    rejects(
        V3_1_1,
        "40 03 00 01 00",
        DecodeError::TrailingBytes(T::PubAck),
        MalformedPacket,
    );
    rejects(
        V3_1_1,
        "B0 03 00 01 00",
        DecodeError::TrailingBytes(T::UnsubAck),
        MalformedPacket,
    );
    rejects(
        V3_1_1,
        "20 03 00 00 00",
        DecodeError::TrailingBytes(T::ConnAck),
        MalformedPacket,
    );
    rejects(
        V3_1_1,
        "40 01 00",
        DecodeError::Truncated(T::PubAck),
        MalformedPacket,
    );
    // 5.0: bytes after the property block.
    rejects(
        V5,
        "40 05 00 01 00 00 00",
        DecodeError::TrailingBytes(T::PubAck),
        MalformedPacket,
    );
}

/// 3.1.1 [MQTT-3.9.3-2]: SUBACK return codes other than 0x00, 0x01, 0x02 and 0x80 are reserved.
#[test]
fn mqtt_3_9_3_2_suback_return_codes_are_0_1_2_or_0x80() {
    for code in [0x03u8, 0x87, 0x8F] {
        rejects(
            V3_1_1,
            &format!("90 03 00 01 {code:02X}"),
            DecodeError::InvalidReasonCode {
                code,
                packet: T::SubAck,
            },
            MalformedPacket,
        );
    }
}

/// 5.0 sections 3.9.3 and 3.11.3: SUBACK and UNSUBACK carry one reason code per filter, so at
/// least one.
#[test]
fn mqtt_3_9_3_suback_and_unsuback_need_reason_codes() {
    rejects(
        V5,
        "90 03 00 01 00",
        DecodeError::Truncated(T::SubAck),
        MalformedPacket,
    );
    rejects(
        V3_1_1,
        "90 02 00 01",
        DecodeError::Truncated(T::SubAck),
        MalformedPacket,
    );
    rejects(
        V5,
        "B0 03 00 01 00",
        DecodeError::Truncated(T::UnsubAck),
        MalformedPacket,
    );
}

// ---------------------------------------------------------------------------------------------
// Section 3.8: SUBSCRIBE
// ---------------------------------------------------------------------------------------------

/// 5.0 / 3.1.1 [MQTT-3.8.3-1]: topic filters are UTF-8 strings that follow section 4.7
/// (Topic Filter invalid, 0x8F).
#[test]
fn mqtt_3_8_3_1_topic_filters_must_be_valid() {
    for filter in [
        "a/#/b",
        "a#",
        "a+/b",
        "",
        "$share//a",
        "$share/g+/a",
        "$share/g/",
    ] {
        let n = filter.len();
        let bytes = hex(filter.as_bytes());
        rejects(
            V5,
            &format!("82 {:02X} 00 01 00 00 {n:02X} {bytes} 00", 6 + n),
            DecodeError::TopicFilterInvalid(filter.to_owned()),
            ReasonCode::TopicFilterInvalid,
        );
        rejects(
            V5,
            &format!("A2 {:02X} 00 01 00 00 {n:02X} {bytes}", 5 + n),
            DecodeError::TopicFilterInvalid(filter.to_owned()),
            ReasonCode::TopicFilterInvalid,
        );
    }
}

/// 5.0 [MQTT-3.8.3-2] / 3.1.1 [MQTT-3.8.3-3]: a SUBSCRIBE must contain at least one filter.
#[test]
fn mqtt_3_8_3_2_subscribe_needs_a_filter() {
    rejects(
        V3_1_1,
        "82 02 00 01",
        DecodeError::NoTopicFilters(T::Subscribe),
        ProtocolError,
    );
    rejects(
        V5,
        "82 03 00 01 00",
        DecodeError::NoTopicFilters(T::Subscribe),
        ProtocolError,
    );
}

/// 5.0 [MQTT-3.8.3-4]: No Local on a Shared Subscription is a Protocol Error.
#[test]
fn mqtt_3_8_3_4_no_local_on_shared_subscription_is_protocol_error() {
    rejects(
        V5,
        "82 0E 00 01 00 00 08 '$' 's' 'h' 'a' 'r' 'e' '/' 'g' 04",
        DecodeError::TopicFilterInvalid("$share/g".to_owned()),
        ReasonCode::TopicFilterInvalid,
    );
    rejects(
        V5,
        "82 10 00 01 00 00 0A \"$share/g/a\" 05",
        DecodeError::NoLocalOnSharedSubscription,
        ProtocolError,
    );
    // The same option on a plain filter is fine.
    accepts(
        Decoder::with_version(V5, MAX),
        "82 07 00 01 00 00 01 'a' 05",
    );
}

/// 5.0 [MQTT-3.8.3-5] / 3.1.1 [MQTT-3.8.3-4]: reserved bits of the options byte must be 0
/// (5.0: bits 7-6; 3.1.1: bits 7-2).
#[test]
fn mqtt_3_8_3_5_subscription_options_reserved_bits_must_be_zero() {
    for byte in [0x40u8, 0x80, 0xC1] {
        rejects(
            V5,
            &format!("82 07 00 01 00 00 01 'a' {byte:02X}"),
            DecodeError::SubscriptionOptionsReserved(byte),
            MalformedPacket,
        );
    }
    for byte in [0x04u8, 0x08, 0x10, 0x21, 0x80] {
        rejects(
            V3_1_1,
            &format!("82 06 00 01 00 01 'a' {byte:02X}"),
            DecodeError::SubscriptionOptionsReserved(byte),
            MalformedPacket,
        );
    }
}

/// 5.0 section 3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3."
/// 3.1.1 [MQTT-3.8.3-4]: a requested QoS that is not 0, 1 or 2 is malformed.
#[test]
fn mqtt_3_8_3_1_maximum_qos_3_is_protocol_error() {
    rejects(
        V5,
        "82 07 00 01 00 00 01 'a' 03",
        DecodeError::InvalidMaximumQos,
        ProtocolError,
    );
    rejects(
        V3_1_1,
        "82 06 00 01 00 01 'a' 03",
        DecodeError::InvalidQos,
        MalformedPacket,
    );
}

/// 5.0 section 3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3."
#[test]
fn mqtt_3_8_3_1_retain_handling_3_is_protocol_error() {
    rejects(
        V5,
        "82 07 00 01 00 00 01 'a' 30",
        DecodeError::InvalidRetainHandling,
        ProtocolError,
    );
}

/// A filter without its options byte is malformed.
#[test]
fn mqtt_3_8_3_each_filter_has_an_options_byte() {
    rejects(
        V5,
        "82 06 00 01 00 00 01 'a'",
        DecodeError::Truncated(T::Subscribe),
        MalformedPacket,
    );
}

// ---------------------------------------------------------------------------------------------
// Section 3.10: UNSUBSCRIBE
// ---------------------------------------------------------------------------------------------

/// 5.0 / 3.1.1 [MQTT-3.10.3-2]: an UNSUBSCRIBE must contain at least one filter.
#[test]
fn mqtt_3_10_3_2_unsubscribe_needs_a_filter() {
    rejects(
        V3_1_1,
        "A2 02 00 01",
        DecodeError::NoTopicFilters(T::Unsubscribe),
        ProtocolError,
    );
    rejects(
        V5,
        "A2 03 00 01 00",
        DecodeError::NoTopicFilters(T::Unsubscribe),
        ProtocolError,
    );
}

/// 5.0 / 3.1.1 [MQTT-3.10.3-1]: UNSUBSCRIBE filters are UTF-8 strings.
#[test]
fn mqtt_3_10_3_1_unsubscribe_filters_are_utf8() {
    rejects(
        V3_1_1,
        "A2 05 00 01 00 01 FF",
        DecodeError::InvalidUtf8,
        MalformedPacket,
    );
}

// ---------------------------------------------------------------------------------------------
// Maximum Packet Size
// ---------------------------------------------------------------------------------------------

/// 5.0 section 3.1.2.11.4 and [MQTT-3.2.2-15]: a packet larger than the Maximum Packet Size is
/// answered with Packet too large (0x95). The decoder knows the size from the fixed header and
/// rejects the packet before its body arrives.
#[test]
fn mqtt_3_1_2_11_4_packet_too_large_is_detected_from_the_fixed_header() {
    for version in [V3_1_1, V5] {
        // Remaining Length 1000 (E8 07): 1003 bytes in all, only the header present.
        rejects_with(
            Decoder::with_version(version, 100),
            "30 E8 07",
            DecodeError::PacketTooLarge {
                size: 1003,
                max: 100,
            },
            PacketTooLarge,
        );
        // The largest Remaining Length, against the largest limit MQTT can express.
        rejects_with(
            Decoder::with_version(version, 1_000_000),
            "30 FF FF FF 7F",
            DecodeError::PacketTooLarge {
                size: 268_435_460,
                max: 1_000_000,
            },
            PacketTooLarge,
        );
    }
    // On the first packet too: CONNECT over the limit.
    rejects_with(
        Decoder::new(10),
        "10 0C",
        DecodeError::PacketTooLarge { size: 14, max: 10 },
        PacketTooLarge,
    );
    // Exactly at the limit is fine; the limit counts the whole packet, header included.
    let exact = "30 05 00 01 't' 'a' 'b'";
    accepts(Decoder::with_version(V3_1_1, 7), exact);
    rejects_with(
        Decoder::with_version(V3_1_1, 6),
        exact,
        DecodeError::PacketTooLarge { size: 7, max: 6 },
        PacketTooLarge,
    );
}
