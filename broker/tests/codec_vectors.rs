//! Byte-exact vectors for every control packet of MQTT 3.1.1 and 5.0 (and CONNECT of 3.1),
//! written by hand from the specifications' figures and examples. Each canonical vector is
//! checked both ways: the bytes decode to the expected packet, and the packet encodes to the
//! same bytes. `decode_only` vectors are valid but non-canonical wire forms (for example a 5.0
//! PUBACK that spells out a Success reason code the encoder would omit).
//!
//! Notation (see `codec_support::wire`): hex bytes, `'c'` for one ASCII character and `"abc"`
//! for an ASCII string; the fixed header comes first, then `|`-free groups that follow the
//! specification's field order.

mod codec_support;

use bytes::BytesMut;
use codec_support::*;
use ferrumq_broker::codec::*;
use ProtocolVersion::{V3_1, V3_1_1, V5};

/// Decodes `notation` into `expected` and encodes `expected` back into the same bytes.
fn vector(version: ProtocolVersion, notation: &str, expected: Packet) {
    vector_bytes(version, &wire(notation), expected);
}

fn vector_bytes(version: ProtocolVersion, bytes: &[u8], expected: Packet) {
    decode_bytes(version, bytes, expected.clone());
    let mut out = BytesMut::new();
    encode(&expected, version, &mut out).expect("encodes");
    assert_eq!(
        hex(&out),
        hex(bytes),
        "encoding {expected:?} for {version:?}"
    );
    assert_eq!(encoded_len(&expected, version), Ok(bytes.len()));
}

/// Decodes `notation` into `expected` (the whole buffer, nothing left over).
fn decode_only(version: ProtocolVersion, notation: &str, expected: Packet) {
    decode_bytes(version, &wire(notation), expected);
}

fn decode_bytes(version: ProtocolVersion, bytes: &[u8], expected: Packet) {
    let mut decoder = decoder_for(&expected, version, MAX_PACKET_SIZE_LIMIT);
    let mut buf = BytesMut::from(bytes);
    assert_eq!(
        decoder.decode(&mut buf),
        Ok(Some(expected)),
        "decoding {} as {version:?}",
        hex(bytes)
    );
    assert!(buf.is_empty(), "bytes left over: {}", hex(&buf));
}

fn ack(packet_id: u16, reason_code: ReasonCode, properties: AckProperties) -> PubResponse {
    PubResponse {
        packet_id,
        reason_code,
        properties,
    }
}

fn publish(
    qos: QoS,
    dup: bool,
    retain: bool,
    topic: &str,
    packet_id: u16,
    payload: &[u8],
) -> Publish {
    Publish {
        dup,
        qos,
        retain,
        topic: s(topic),
        packet_id,
        properties: PublishProperties::default(),
        payload: b(payload),
    }
}

fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Section 2.2.3 (3.1.1) / 1.5.5 (5.0): Remaining Length and Variable Byte Integer examples.
// ---------------------------------------------------------------------------------------------

#[test]
fn remaining_length_table_of_section_2_2_3() {
    for (value, notation) in [
        (0usize, "00"),
        (127, "7F"),
        (128, "80 01"),
        (16_383, "FF 7F"),
        (16_384, "80 80 01"),
        (2_097_151, "FF FF 7F"),
        (2_097_152, "80 80 80 01"),
        (268_435_455, "FF FF FF 7F"),
    ] {
        let mut header = vec![0x30];
        header.extend(wire(notation));
        assert_eq!(
            parse_remaining_length(&header),
            Ok(Some((header.len(), value))),
            "{notation}"
        );
        assert_eq!(varint_len(value as u32), header.len() - 1);
    }
}

#[test]
fn remaining_length_boundaries_in_whole_publish_packets() {
    // QoS 0 PUBLISH to "a" (3 bytes of topic, 5.0 adds a 1-byte Property Length): the
    // payload fills the rest.
    for (remaining, header) in [
        (127usize, "30 7F"),
        (128, "30 80 01"),
        (16_383, "30 FF 7F"),
        (16_384, "30 80 80 01"),
    ] {
        for version in VERSIONS {
            let mut bytes = wire(header);
            bytes.extend(wire("00 01 'a'"));
            if version.is_v5() {
                bytes.push(0x00);
            }
            let payload = vec![0xAB; remaining - (bytes.len() - wire(header).len())];
            bytes.extend_from_slice(&payload);
            let packet = Packet::Publish(publish(QoS::AtMostOnce, false, false, "a", 0, &payload));
            vector_bytes(version, &bytes, packet);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CONNECT
// ---------------------------------------------------------------------------------------------

/// MQTT 3.1.1 section 3.1.2.10, Figure 3.6: the variable header example
/// `00 04 'M' 'Q' 'T' 'T' 04 CE 00 0A` (user name, password, Will QoS 1, Will Flag, Clean
/// Session; keep alive 10), here with a payload that fills every field those flags announce.
#[test]
fn connect_v3_1_1_spec_example_figure_3_6() {
    vector(
        V3_1_1,
        "10 27
         00 04 'M' 'Q' 'T' 'T' 04 CE 00 0A
         00 07 \"ferrumq\"
         00 03 \"a/b\"
         00 03 \"bye\"
         00 04 \"user\"
         00 02 \"pw\"",
        Packet::Connect(Box::new(Connect {
            protocol: V3_1_1,
            clean_start: true,
            keep_alive: 10,
            client_id: s("ferrumq"),
            will: Some(Will {
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: s("a/b"),
                payload: b(b"bye"),
                properties: WillProperties::default(),
            }),
            username: Some(s("user")),
            password: Some(b(b"pw")),
            properties: ConnectProperties::default(),
        })),
    );
}

#[test]
fn connect_v3_1_1_minimal_empty_client_id() {
    vector(
        V3_1_1,
        "10 0C 00 04 'M' 'Q' 'T' 'T' 04 02 00 3C 00 00",
        Packet::Connect(Box::new(Connect {
            protocol: V3_1_1,
            clean_start: true,
            keep_alive: 60,
            client_id: s(""),
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        })),
    );
}

#[test]
fn connect_v3_1_1_retained_qos_2_will_and_user_name_only() {
    // Flags: User Name 1, Password 0, Will Retain 1, Will QoS 2, Will Flag 1, Clean Session 0.
    vector(
        V3_1_1,
        "10 19 00 04 'M' 'Q' 'T' 'T' 04 B4 FF FF
         00 01 'c'
         00 01 't'
         00 00
         00 05 \"alice\"",
        Packet::Connect(Box::new(Connect {
            protocol: V3_1_1,
            clean_start: false,
            keep_alive: 0xFFFF,
            client_id: s("c"),
            will: Some(Will {
                qos: QoS::ExactlyOnce,
                retain: true,
                topic: s("t"),
                payload: b(b""),
                properties: WillProperties::default(),
            }),
            username: Some(s("alice")),
            password: None,
            properties: ConnectProperties::default(),
        })),
    );
}

/// MQTT 3.1 (protocol name "MQIsdp", level 3): the variable header example of the 3.1
/// specification, `00 06 'M' 'Q' 'I' 's' 'd' 'p' 03 ... 00 0A`, with Clean Session, Will QoS 1
/// and the Will Flag.
#[test]
fn connect_v3_1_mqisdp_level_3() {
    vector(
        V3_1,
        "10 1A 00 06 'M' 'Q' 'I' 's' 'd' 'p' 03 0E 00 0A
         00 03 \"abc\"
         00 03 \"a/b\"
         00 02 \"hi\"",
        Packet::Connect(Box::new(Connect {
            protocol: V3_1,
            clean_start: true,
            keep_alive: 10,
            client_id: s("abc"),
            will: Some(Will {
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: s("a/b"),
                payload: b(b"hi"),
                properties: WillProperties::default(),
            }),
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        })),
    );
}

/// MQTT 5.0 section 3.1.2.11, Figure 3-6: the variable header example
/// `00 04 'M' 'Q' 'T' 'T' 05 CE 00 0A 05 11 00 00 00 0A` (Session Expiry Interval 10), with a
/// payload carrying Will Properties (Will Delay Interval 30, Payload Format Indicator 1).
#[test]
fn connect_v5_spec_example_figure_3_6() {
    vector(
        V5,
        "10 35
         00 04 'M' 'Q' 'T' 'T' 05 CE 00 0A
         05 11 00 00 00 0A
         00 07 \"ferrumq\"
         07 18 00 00 00 1E 01 01
         00 03 \"a/b\"
         00 03 \"bye\"
         00 04 \"user\"
         00 02 \"pw\"",
        Packet::Connect(Box::new(Connect {
            protocol: V5,
            clean_start: true,
            keep_alive: 10,
            client_id: s("ferrumq"),
            will: Some(Will {
                qos: QoS::AtLeastOnce,
                retain: false,
                topic: s("a/b"),
                payload: b(b"bye"),
                properties: WillProperties {
                    will_delay_interval: Some(30),
                    payload_format_indicator: Some(true),
                    ..WillProperties::default()
                },
            }),
            username: Some(s("user")),
            password: Some(b(b"pw")),
            properties: ConnectProperties {
                session_expiry_interval: Some(10),
                ..ConnectProperties::default()
            },
        })),
    );
}

/// 5.0 allows a password without a user name (section 3.1.2.9), and every CONNECT property.
#[test]
fn connect_v5_every_property_and_password_without_user_name() {
    vector(
        V5,
        "10 42
         00 04 'M' 'Q' 'T' 'T' 05 42 00 00
         30
            11 FF FF FF FF
            21 00 14
            27 00 01 00 00
            22 00 0A
            19 01
            17 00
            15 00 05 \"SCRAM\"
            16 00 02 AB CD
            26 00 01 'k' 00 01 'v'
            26 00 01 'k' 00 02 \"v2\"
         00 00
         00 03 01 02 03",
        Packet::Connect(Box::new(Connect {
            protocol: V5,
            clean_start: true,
            keep_alive: 0,
            client_id: s(""),
            will: None,
            username: None,
            password: Some(b(&[1, 2, 3])),
            properties: ConnectProperties {
                session_expiry_interval: Some(u32::MAX),
                receive_maximum: Some(20),
                maximum_packet_size: Some(65_536),
                topic_alias_maximum: Some(10),
                request_response_information: Some(true),
                request_problem_information: Some(false),
                authentication_method: Some(s("SCRAM")),
                authentication_data: Some(b(&[0xAB, 0xCD])),
                user_properties: users(&[("k", "v"), ("k", "v2")]),
            },
        })),
    );
}

#[test]
fn connect_v5_will_with_every_will_property() {
    vector(
        V5,
        "10 40
         00 04 'M' 'Q' 'T' 'T' 05 2C 00 1E
         00
         00 02 \"id\"
         25
            18 00 00 00 05
            01 00
            02 00 00 0E 10
            03 00 04 \"text\"
            08 00 03 \"r/t\"
            09 00 02 00 01
            26 00 01 'a' 00 01 'b'
         00 03 \"w/t\"
         00 04 \"gone\"",
        Packet::Connect(Box::new(Connect {
            protocol: V5,
            clean_start: false,
            keep_alive: 30,
            client_id: s("id"),
            will: Some(Will {
                qos: QoS::AtLeastOnce,
                retain: true,
                topic: s("w/t"),
                payload: b(b"gone"),
                properties: WillProperties {
                    will_delay_interval: Some(5),
                    payload_format_indicator: Some(false),
                    message_expiry_interval: Some(3600),
                    content_type: Some(s("text")),
                    response_topic: Some(s("r/t")),
                    correlation_data: Some(b(&[0, 1])),
                    user_properties: users(&[("a", "b")]),
                },
            }),
            username: None,
            password: None,
            properties: ConnectProperties::default(),
        })),
    );
}

// ---------------------------------------------------------------------------------------------
// CONNACK
// ---------------------------------------------------------------------------------------------

#[test]
fn connack_v3_1_1_accepted() {
    vector(V3_1_1, "20 02 00 00", Packet::ConnAck(ConnAck::default()));
}

#[test]
fn connack_v3_1_1_session_present() {
    vector(
        V3_1_1,
        "20 02 01 00",
        Packet::ConnAck(ConnAck {
            session_present: true,
            ..ConnAck::default()
        }),
    );
}

/// The six return codes of 3.1.1 section 3.2.2.3, Table 3.1.
#[test]
fn connack_v3_1_1_every_return_code() {
    use ReasonCode::*;
    for (byte, code) in [
        (0x00, Success),
        (0x01, UnsupportedProtocolVersion),
        (0x02, ClientIdentifierNotValid),
        (0x03, ServerUnavailable),
        (0x04, BadUserNameOrPassword),
        (0x05, NotAuthorized),
    ] {
        vector(
            V3_1_1,
            &format!("20 02 00 {byte:02X}"),
            Packet::ConnAck(ConnAck {
                reason_code: code,
                ..ConnAck::default()
            }),
        );
    }
}

#[test]
fn connack_v5_success_without_properties() {
    vector(V5, "20 03 00 00 00", Packet::ConnAck(ConnAck::default()));
}

#[test]
fn connack_v5_refused_not_authorized() {
    vector(
        V5,
        "20 03 00 87 00",
        Packet::ConnAck(ConnAck {
            reason_code: ReasonCode::NotAuthorized,
            ..ConnAck::default()
        }),
    );
}

#[test]
fn connack_v5_every_property() {
    vector(
        V5,
        "20 52 01 00
         4F
            11 00 00 00 3C
            21 00 64
            24 01
            25 00
            27 00 00 10 00
            12 00 03 \"cid\"
            22 00 05
            1F 00 02 \"ok\"
            28 01
            29 01
            2A 00
            13 00 1E
            1A 00 04 \"resp\"
            1C 00 04 \"host\"
            15 00 05 \"SCRAM\"
            16 00 01 FF
            26 00 03 \"key\" 00 05 \"value\"",
        Packet::ConnAck(ConnAck {
            session_present: true,
            reason_code: ReasonCode::Success,
            properties: ConnAckProperties {
                session_expiry_interval: Some(60),
                receive_maximum: Some(100),
                maximum_qos: Some(QoS::AtLeastOnce),
                retain_available: Some(false),
                maximum_packet_size: Some(4096),
                assigned_client_identifier: Some(s("cid")),
                topic_alias_maximum: Some(5),
                reason_string: Some(s("ok")),
                wildcard_subscription_available: Some(true),
                subscription_identifiers_available: Some(true),
                shared_subscription_available: Some(false),
                server_keep_alive: Some(30),
                response_information: Some(s("resp")),
                server_reference: Some(s("host")),
                authentication_method: Some(s("SCRAM")),
                authentication_data: Some(b(&[0xFF])),
                user_properties: users(&[("key", "value")]),
            },
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// PUBLISH
// ---------------------------------------------------------------------------------------------

/// MQTT 3.1.1 section 3.3.2.3, Figure 3.11: Topic Name "a/b", Packet Identifier 10
/// (`00 03 'a' '/' 'b' 00 0A`), QoS 1.
#[test]
fn publish_v3_1_1_spec_example_figure_3_11() {
    vector(
        V3_1_1,
        "32 0C 00 03 'a' '/' 'b' 00 0A \"hello\"",
        Packet::Publish(publish(QoS::AtLeastOnce, false, false, "a/b", 10, b"hello")),
    );
}

#[test]
fn publish_v3_1_1_qos_0_retained_has_no_packet_identifier() {
    vector(
        V3_1_1,
        "31 0A 00 03 'a' '/' 'b' \"hello\"",
        Packet::Publish(publish(QoS::AtMostOnce, false, true, "a/b", 0, b"hello")),
    );
}

#[test]
fn publish_v3_1_1_qos_2_dup_empty_payload() {
    vector(
        V3_1_1,
        "3C 0B 00 07 \"sensors\" FF FE",
        Packet::Publish(publish(
            QoS::ExactlyOnce,
            true,
            false,
            "sensors",
            0xFFFE,
            b"",
        )),
    );
}

/// MQTT 5.0 section 3.3.2.3, Figure 3-9: Topic Name "a/b", Packet Identifier 10, no properties
/// (`00 03 'a' '/' 'b' 00 0A 00`).
#[test]
fn publish_v5_spec_example_figure_3_9() {
    vector(
        V5,
        "32 0D 00 03 'a' '/' 'b' 00 0A 00 \"hello\"",
        Packet::Publish(publish(QoS::AtLeastOnce, false, false, "a/b", 10, b"hello")),
    );
}

#[test]
fn publish_v5_qos_0_without_properties() {
    vector(
        V5,
        "30 06 00 01 't' 00 'h' 'i'",
        Packet::Publish(publish(QoS::AtMostOnce, false, false, "t", 0, b"hi")),
    );
}

/// An empty Topic Name stands for the Topic Alias (section 3.3.2.3.4).
#[test]
fn publish_v5_topic_alias_with_empty_topic_name() {
    let mut p = publish(QoS::AtMostOnce, false, false, "", 0, b"x");
    p.properties.topic_alias = Some(5);
    vector(V5, "30 07 00 00 03 23 00 05 'x'", Packet::Publish(p));
}

#[test]
fn publish_v5_every_property() {
    let mut p = publish(QoS::ExactlyOnce, false, true, "a/b", 0x1234, b"{}");
    p.properties = PublishProperties {
        payload_format_indicator: Some(true),
        message_expiry_interval: Some(120),
        topic_alias: Some(1),
        response_topic: Some(s("re/ply")),
        correlation_data: Some(b(&[0xC0, 0xFF, 0xEE])),
        subscription_identifiers: [1u32, 268_435_455].into_iter().collect(),
        content_type: Some(s("application/json")),
        user_properties: users(&[("trace", "1"), ("trace", "2")]),
    };
    vector(
        V5,
        "35 53 00 03 'a' '/' 'b' 12 34
         49
            01 01
            02 00 00 00 78
            23 00 01
            08 00 06 \"re/ply\"
            09 00 03 C0 FF EE
            0B 01
            0B FF FF FF 7F
            03 00 10 \"application/json\"
            26 00 05 \"trace\" 00 01 '1'
            26 00 05 \"trace\" 00 01 '2'
         '{' '}'",
        Packet::Publish(p),
    );
}

/// Properties may come in any order; the decoder does not insist on the encoder's.
#[test]
fn publish_v5_properties_in_another_order_decode_the_same() {
    let mut p = publish(QoS::AtMostOnce, false, false, "t", 0, b"");
    p.properties.content_type = Some(s("c"));
    p.properties.payload_format_indicator = Some(false);
    p.properties.user_properties = users(&[("a", "1")]);
    decode_only(
        V5,
        "30 11 00 01 't' 0D 26 00 01 'a' 00 01 '1' 03 00 01 'c' 01 00",
        Packet::Publish(p),
    );
}

// ---------------------------------------------------------------------------------------------
// PUBACK, PUBREC, PUBREL, PUBCOMP
// ---------------------------------------------------------------------------------------------

#[test]
fn pub_responses_v3_1_1() {
    let r = ack(10, ReasonCode::Success, AckProperties::default());
    vector(V3_1_1, "40 02 00 0A", Packet::PubAck(r.clone()));
    vector(V3_1_1, "50 02 00 0A", Packet::PubRec(r.clone()));
    vector(V3_1_1, "62 02 00 0A", Packet::PubRel(r.clone()));
    vector(V3_1_1, "70 02 00 0A", Packet::PubComp(r));
}

/// 5.0 section 3.4.2.1: Success without properties omits the reason code (Remaining Length 2).
#[test]
fn pub_responses_v5_success_is_two_bytes() {
    let r = ack(0xBEEF, ReasonCode::Success, AckProperties::default());
    vector(V5, "40 02 BE EF", Packet::PubAck(r.clone()));
    vector(V5, "50 02 BE EF", Packet::PubRec(r.clone()));
    vector(V5, "62 02 BE EF", Packet::PubRel(r.clone()));
    vector(V5, "70 02 BE EF", Packet::PubComp(r));
}

/// 5.0 section 3.4.2.2: a reason code without properties (Remaining Length 3).
#[test]
fn pub_responses_v5_reason_code_without_properties() {
    vector(
        V5,
        "40 03 00 0A 10",
        Packet::PubAck(ack(
            10,
            ReasonCode::NoMatchingSubscribers,
            Default::default(),
        )),
    );
    vector(
        V5,
        "50 03 00 0A 97",
        Packet::PubRec(ack(10, ReasonCode::QuotaExceeded, Default::default())),
    );
    vector(
        V5,
        "62 03 00 0A 92",
        Packet::PubRel(ack(
            10,
            ReasonCode::PacketIdentifierNotFound,
            Default::default(),
        )),
    );
    vector(
        V5,
        "70 03 00 0A 92",
        Packet::PubComp(ack(
            10,
            ReasonCode::PacketIdentifierNotFound,
            Default::default(),
        )),
    );
}

#[test]
fn pub_responses_v5_with_reason_string_and_user_property() {
    let props = AckProperties {
        reason_string: Some(s("oops")),
        user_properties: users(&[("k", "v")]),
    };
    let tail = "0E 1F 00 04 \"oops\" 26 00 01 'k' 00 01 'v'";
    vector(
        V5,
        &format!("40 12 00 0A 80 {tail}"),
        Packet::PubAck(ack(10, ReasonCode::UnspecifiedError, props.clone())),
    );
    vector(
        V5,
        &format!("50 12 00 0A 87 {tail}"),
        Packet::PubRec(ack(10, ReasonCode::NotAuthorized, props.clone())),
    );
    vector(
        V5,
        &format!("62 12 00 0A 00 {tail}"),
        Packet::PubRel(ack(10, ReasonCode::Success, props.clone())),
    );
    vector(
        V5,
        &format!("70 12 00 0A 00 {tail}"),
        Packet::PubComp(ack(10, ReasonCode::Success, props)),
    );
}

/// Valid longer spellings of a plain Success acknowledgement (sections 3.4.2.1 and 3.4.2.2).
#[test]
fn pub_responses_v5_explicit_success_forms_decode() {
    let r = ack(10, ReasonCode::Success, AckProperties::default());
    decode_only(V5, "40 03 00 0A 00", Packet::PubAck(r.clone()));
    decode_only(V5, "40 04 00 0A 00 00", Packet::PubAck(r.clone()));
    decode_only(V5, "62 04 00 0A 00 00", Packet::PubRel(r));
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE / SUBACK
// ---------------------------------------------------------------------------------------------

/// MQTT 3.1.1 sections 3.8.2 (Figure 3.21, Packet Identifier 10) and 3.8.3 (Figure 3.23:
/// "a/b" at QoS 1, "c/d" at QoS 2).
#[test]
fn subscribe_v3_1_1_spec_example_section_3_8_3() {
    vector(
        V3_1_1,
        "82 0E 00 0A 00 03 'a' '/' 'b' 01 00 03 'c' '/' 'd' 02",
        Packet::Subscribe(Subscribe {
            packet_id: 10,
            properties: SubscribeProperties::default(),
            filters: vec![
                (s("a/b"), opts(QoS::AtLeastOnce)),
                (s("c/d"), opts(QoS::ExactlyOnce)),
            ],
        }),
    );
}

/// MQTT 5.0 section 3.8.2 (Figure 3-19, `00 0A 00`) and 3.8.3 (Figure 3-21) examples.
#[test]
fn subscribe_v5_spec_example_section_3_8_3() {
    vector(
        V5,
        "82 0F 00 0A 00 00 03 'a' '/' 'b' 01 00 03 'c' '/' 'd' 02",
        Packet::Subscribe(Subscribe {
            packet_id: 10,
            properties: SubscribeProperties::default(),
            filters: vec![
                (s("a/b"), opts(QoS::AtLeastOnce)),
                (s("c/d"), opts(QoS::ExactlyOnce)),
            ],
        }),
    );
}

/// Every subscription option bit of 5.0 section 3.8.3.1, a Subscription Identifier and a shared
/// subscription.
#[test]
fn subscribe_v5_options_identifier_and_shared_subscription() {
    vector(
        V5,
        "82 26 00 01
         0A 0B 80 01 26 00 01 'k' 00 01 'v'
         00 05 \"a/+/#\" 2D
         00 0A \"$share/g/x\" 1A
         00 01 '#' 00",
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: SubscribeProperties {
                subscription_identifier: Some(128),
                user_properties: users(&[("k", "v")]),
            },
            filters: vec![
                (
                    s("a/+/#"),
                    SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: true,
                        retain_as_published: true,
                        retain_handling: RetainHandling::DoNotSend,
                    },
                ),
                (
                    s("$share/g/x"),
                    SubscriptionOptions {
                        qos: QoS::ExactlyOnce,
                        no_local: false,
                        retain_as_published: true,
                        retain_handling: RetainHandling::SendIfNew,
                    },
                ),
                (s("#"), opts(QoS::AtMostOnce)),
            ],
        }),
    );
}

/// MQTT 3.1.1 section 3.9.3, Figure 3.26: "Success - Maximum QoS 0", "Success - Maximum QoS 2",
/// "Failure" (`00 02 80`), after Packet Identifier 10.
#[test]
fn suback_v3_1_1_spec_example_figure_3_26() {
    vector(
        V3_1_1,
        "90 05 00 0A 00 02 80",
        Packet::SubAck(SubAck {
            packet_id: 10,
            properties: AckProperties::default(),
            reason_codes: vec![
                ReasonCode::Success,
                ReasonCode::GrantedQos2,
                ReasonCode::UnspecifiedError,
            ],
        }),
    );
    vector(
        V3_1_1,
        "90 03 00 0B 01",
        Packet::SubAck(SubAck {
            packet_id: 11,
            properties: AckProperties::default(),
            reason_codes: vec![ReasonCode::GrantedQos1],
        }),
    );
}

#[test]
fn suback_v5_reason_codes_and_properties() {
    vector(
        V5,
        "90 06 00 0A 00 00 01 02",
        Packet::SubAck(SubAck {
            packet_id: 10,
            properties: AckProperties::default(),
            reason_codes: vec![
                ReasonCode::Success,
                ReasonCode::GrantedQos1,
                ReasonCode::GrantedQos2,
            ],
        }),
    );
    vector(
        V5,
        "90 0E 00 0A 05 1F 00 02 \"no\" 02 87 8F 9E A1 A2",
        Packet::SubAck(SubAck {
            packet_id: 10,
            properties: AckProperties {
                reason_string: Some(s("no")),
                user_properties: UserProperties::default(),
            },
            reason_codes: vec![
                ReasonCode::GrantedQos2,
                ReasonCode::NotAuthorized,
                ReasonCode::TopicFilterInvalid,
                ReasonCode::SharedSubscriptionsNotSupported,
                ReasonCode::SubscriptionIdentifiersNotSupported,
                ReasonCode::WildcardSubscriptionsNotSupported,
            ],
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// UNSUBSCRIBE / UNSUBACK
// ---------------------------------------------------------------------------------------------

/// MQTT 3.1.1 section 3.10.3, Figure 3.30: "a/b" and "c/d", after Packet Identifier 10.
#[test]
fn unsubscribe_v3_1_1_spec_example_figure_3_30() {
    vector(
        V3_1_1,
        "A2 0C 00 0A 00 03 'a' '/' 'b' 00 03 'c' '/' 'd'",
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 10,
            properties: UserProperties::default(),
            filters: vec![s("a/b"), s("c/d")],
        }),
    );
}

/// MQTT 5.0 section 3.10.3 example (Figure 3-28) with an empty property block.
#[test]
fn unsubscribe_v5_spec_example() {
    vector(
        V5,
        "A2 0D 00 0A 00 00 03 'a' '/' 'b' 00 03 'c' '/' 'd'",
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 10,
            properties: UserProperties::default(),
            filters: vec![s("a/b"), s("c/d")],
        }),
    );
    vector(
        V5,
        "A2 16 00 0B 07 26 00 01 'k' 00 01 'v' 00 0A \"$share/g/#\"",
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 11,
            properties: users(&[("k", "v")]),
            filters: vec![s("$share/g/#")],
        }),
    );
}

#[test]
fn unsuback_v3_1_1_is_a_packet_identifier() {
    vector(
        V3_1_1,
        "B0 02 00 0A",
        Packet::UnsubAck(UnsubAck {
            packet_id: 10,
            ..UnsubAck::default()
        }),
    );
}

#[test]
fn unsuback_v5_reason_codes() {
    vector(
        V5,
        "B0 05 00 0A 00 00 11",
        Packet::UnsubAck(UnsubAck {
            packet_id: 10,
            properties: AckProperties::default(),
            reason_codes: vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
        }),
    );
    vector(
        V5,
        "B0 08 00 0A 04 1F 00 01 'x' 87",
        Packet::UnsubAck(UnsubAck {
            packet_id: 10,
            properties: AckProperties {
                reason_string: Some(s("x")),
                ..AckProperties::default()
            },
            reason_codes: vec![ReasonCode::NotAuthorized],
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// PINGREQ, PINGRESP, DISCONNECT, AUTH
// ---------------------------------------------------------------------------------------------

#[test]
fn pingreq_and_pingresp() {
    for version in VERSIONS {
        vector(version, "C0 00", Packet::PingReq);
        vector(version, "D0 00", Packet::PingResp);
    }
}

#[test]
fn disconnect_v3_1_1() {
    vector(V3_1_1, "E0 00", Packet::Disconnect(Disconnect::default()));
}

/// 5.0 section 3.14.2.1: Remaining Length 0 means Normal disconnection.
#[test]
fn disconnect_v5_normal() {
    vector(V5, "E0 00", Packet::Disconnect(Disconnect::default()));
    decode_only(V5, "E0 01 00", Packet::Disconnect(Disconnect::default()));
    decode_only(V5, "E0 02 00 00", Packet::Disconnect(Disconnect::default()));
}

#[test]
fn disconnect_v5_with_will_message_and_properties() {
    vector(
        V5,
        "E0 01 04",
        Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::DisconnectWithWillMessage,
            ..Disconnect::default()
        }),
    );
    vector(
        V5,
        "E0 16 9C 14 11 00 00 00 00 1F 00 04 \"move\" 1C 00 05 \"other\"",
        Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::UseAnotherServer,
            properties: DisconnectProperties {
                session_expiry_interval: Some(0),
                reason_string: Some(s("move")),
                server_reference: Some(s("other")),
                user_properties: UserProperties::default(),
            },
        }),
    );
}

/// 5.0 section 3.15.2.1: Remaining Length 0 is Success without properties.
#[test]
fn auth_v5() {
    vector(V5, "F0 00", Packet::Auth(Auth::default()));
    vector(
        V5,
        "F0 13 18 11 15 00 05 \"SCRAM\" 16 00 03 01 02 03 1F 00 00",
        Packet::Auth(Auth {
            reason_code: ReasonCode::ContinueAuthentication,
            properties: AuthProperties {
                authentication_method: Some(s("SCRAM")),
                authentication_data: Some(b(&[1, 2, 3])),
                reason_string: Some(s("")),
                user_properties: UserProperties::default(),
            },
        }),
    );
    vector(
        V5,
        "F0 0A 19 08 15 00 05 \"SCRAM\"",
        Packet::Auth(Auth {
            reason_code: ReasonCode::ReAuthenticate,
            properties: AuthProperties {
                authentication_method: Some(s("SCRAM")),
                ..AuthProperties::default()
            },
        }),
    );
}

// ---------------------------------------------------------------------------------------------
// OutboundPublish
// ---------------------------------------------------------------------------------------------

/// One PUBLISH prepared once, written for two subscribers of different versions and options.
#[test]
fn outbound_publish_heads_are_byte_exact() {
    let mut original = publish(QoS::ExactlyOnce, false, true, "a/b", 7, b"hello");
    original.properties.content_type = Some(s("t"));
    original.properties.topic_alias = Some(9); // per hop: not forwarded
    original.properties.message_expiry_interval = Some(100); // replaced per delivery
    let outbound = OutboundPublish::new(&original).unwrap();

    let qos0 = Delivery::default();
    let head = {
        let mut buf = BytesMut::new();
        outbound.wire().write_head(V3_1_1, &qos0, &mut buf).unwrap();
        buf
    };
    assert_eq!(hex(&head), hex(&wire("30 0A 00 03 'a' '/' 'b'")));
    assert_eq!(
        &outbound.wire().to_bytes(V3_1_1, &qos0).unwrap()[..],
        &wire("30 0A 00 03 'a' '/' 'b' \"hello\"")[..]
    );

    let ids = [3u32, 200];
    let v5 = Delivery {
        qos: QoS::AtLeastOnce,
        dup: true,
        retain: false,
        packet_id: 0x0102,
        topic_alias: Some(4),
        omit_topic: true,
        subscription_identifiers: &ids,
        message_expiry_interval: Some(40),
    };
    let mut head = BytesMut::new();
    outbound.wire().write_head(V5, &v5, &mut head).unwrap();
    assert_eq!(
        hex(&head),
        hex(&wire(
            "3A 1B 00 00 01 02
             11 02 00 00 00 28 23 00 04 0B 03 0B C8 01 03 00 01 't'"
        ))
    );
    assert_eq!(outbound.payload(), &b(b"hello"));
    assert_eq!(outbound.wire().head_len(V5, &v5), head.len());
    assert_eq!(outbound.wire().encoded_len(V5, &v5), head.len() + 5);
}

// ---------------------------------------------------------------------------------------------
// What the encoder refuses
// ---------------------------------------------------------------------------------------------

/// A Subscription Identifier above 268,435,455 does not fit a Variable Byte Integer. It used to
/// be written as five bytes while `encoded_len` counted four, so the Remaining Length was wrong
/// and the stream lost framing; now it is an error, in every place one can be written.
#[test]
fn encoder_rejects_variable_byte_integers_above_268_435_455() {
    let mut p = publish(QoS::AtMostOnce, false, false, "t", 0, b"");
    p.properties.subscription_identifiers.push(VARINT_MAX + 1);
    let packet = Packet::Publish(p.clone());
    let too_large = Err(EncodeError::VariableIntegerTooLarge(VARINT_MAX + 1));
    assert_eq!(encode(&packet, V5, &mut BytesMut::new()), too_large);
    assert_eq!(encoded_len(&packet, V5), too_large.map(|()| 0));
    // 3.1.1 has no properties, so nothing is written and nothing can be wrong.
    assert!(encode(&packet, V3_1_1, &mut BytesMut::new()).is_ok());

    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: 1,
        properties: SubscribeProperties {
            subscription_identifier: Some(u32::MAX),
            ..Default::default()
        },
        filters: vec![(s("a"), opts(QoS::AtMostOnce))],
    });
    assert_eq!(
        encode(&subscribe, V5, &mut BytesMut::new()),
        Err(EncodeError::VariableIntegerTooLarge(u32::MAX))
    );

    p.properties.subscription_identifiers.clear();
    let outbound = OutboundPublish::new(&p).unwrap();
    let ids = [VARINT_MAX, VARINT_MAX + 1];
    let delivery = Delivery {
        subscription_identifiers: &ids,
        ..Delivery::default()
    };
    assert_eq!(
        outbound
            .wire()
            .write_head(V5, &delivery, &mut BytesMut::new()),
        Err(EncodeError::VariableIntegerTooLarge(VARINT_MAX + 1))
    );

    // The largest value that fits is written in four bytes, as counted.
    let mut p = publish(QoS::AtMostOnce, false, false, "t", 0, b"");
    p.properties.subscription_identifiers.push(VARINT_MAX);
    vector(V5, "30 09 00 01 't' 05 0B FF FF FF 7F", Packet::Publish(p));
}
