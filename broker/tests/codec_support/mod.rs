//! Helpers shared by the `codec_*` integration tests: a wire-notation parser for hand-written
//! vectors, and proptest strategies that generate valid packets of every type for each protocol
//! version. Not a test target of its own (Cargo only builds `tests/*.rs` and `tests/*/main.rs`).
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use ferrumq_broker::codec::topic::{is_valid_topic_filter, split_shared};
use ferrumq_broker::codec::*;
use proptest::prelude::*;
use proptest::sample::select;

/// Parses the notation used by the vectors: whitespace-separated tokens, each either a hex byte
/// (`0A`), a quoted character (`'M'`) or a quoted ASCII string without spaces (`"a/b"`).
pub fn wire(notation: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for token in notation.split_whitespace() {
        let bytes = token.as_bytes();
        if bytes.len() == 3 && bytes[0] == b'\'' && bytes[2] == b'\'' {
            out.push(bytes[1]);
        } else if bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"' {
            out.extend_from_slice(&bytes[1..bytes.len() - 1]);
        } else {
            let byte = u8::from_str_radix(token, 16)
                .unwrap_or_else(|_| panic!("bad token {token:?} in {notation:?}"));
            out.push(byte);
        }
    }
    out
}

/// `00 0A 4D ...`: for failure messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn s(text: &str) -> ByteString {
    ByteString::from(text.to_owned())
}

pub fn b(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

pub fn users(pairs: &[(&str, &str)]) -> UserProperties {
    UserProperties::from_pairs(pairs.iter().copied()).expect("short pairs")
}

/// A decoder in the state that can read `packet`: a fresh server-side decoder for CONNECT
/// (which sets the version), a decoder of the negotiated version for everything else.
pub fn decoder_for(packet: &Packet, version: ProtocolVersion, max: u32) -> Decoder {
    match packet {
        Packet::Connect(_) => Decoder::new(max),
        _ => Decoder::with_version(version, max),
    }
}

/// Encodes `packet` for `version`, checking that [`encoded_len`] predicted the size.
pub fn encode_checked(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode(packet, version, &mut buf).expect("valid packet encodes");
    let predicted = encoded_len(packet, version).expect("valid packet has a length");
    assert_eq!(predicted, buf.len(), "encoded_len of {packet:?}");
    buf.to_vec()
}

/// Decodes exactly one packet from `bytes`, asserting the buffer is left empty.
pub fn decode_one(
    packet_hint: &Packet,
    version: ProtocolVersion,
    bytes: &[u8],
) -> Result<Option<Packet>, DecodeError> {
    let mut decoder = decoder_for(packet_hint, version, MAX_PACKET_SIZE_LIMIT);
    let mut buf = BytesMut::from(bytes);
    let result = decoder.decode(&mut buf);
    if let Ok(Some(_)) = result {
        assert!(buf.is_empty(), "bytes left after {}", hex(bytes));
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

pub const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];

/// A UTF-8 string MQTT accepts: any scalar value but U+0000 (ASCII-heavy, some multi-byte).
pub fn utf8_string(max_chars: usize) -> impl Strategy<Value = ByteString> {
    let ch = prop_oneof![
        6 => proptest::char::range('\u{1}', '\u{7F}'),
        1 => proptest::char::range('\u{80}', '\u{7FF}'),
        1 => proptest::char::range('\u{800}', '\u{FFFF}'),
        1 => proptest::char::range('\u{10000}', '\u{10FFFF}'),
    ];
    prop::collection::vec(ch, 0..=max_chars)
        .prop_map(|chars| ByteString::from(chars.into_iter().collect::<String>()))
}

pub fn binary(max_len: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..=max_len).prop_map(Bytes::from)
}

fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9]{0,6}",
        1 => "[$ A-Z_é€]{1,3}",
    ]
}

/// A valid topic name: one or more levels without wildcards, never empty.
pub fn topic_name() -> impl Strategy<Value = ByteString> {
    prop::collection::vec(level(), 1..4)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("topic names are not empty", |t| !t.is_empty())
        .prop_map(ByteString::from)
}

/// A valid topic filter, sometimes with wildcards, sometimes shared (`$share/group/...`).
pub fn topic_filter() -> impl Strategy<Value = ByteString> {
    let filter_level = prop_oneof![4 => level(), 1 => Just("+".to_owned())];
    let plain = (
        prop::collection::vec(filter_level, 1..4),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(mut levels, multi)| {
            if multi {
                levels.push("#".to_owned());
            }
            levels.join("/")
        });
    (plain, prop::option::weighted(0.2, "[a-z]{1,4}"))
        .prop_map(|(filter, group)| match group {
            Some(group) => format!("$share/{group}/{filter}"),
            None => filter,
        })
        .prop_filter("valid filter", |f| is_valid_topic_filter(f))
        .prop_map(ByteString::from)
}

pub fn user_properties() -> impl Strategy<Value = UserProperties> {
    prop::collection::vec((utf8_string(6), utf8_string(6)), 0..4).prop_map(|pairs| {
        UserProperties::from_pairs(pairs.iter().map(|(k, v)| (&**k, &**v))).expect("short pairs")
    })
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

fn packet_id() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

/// Values a Variable Byte Integer property may hold (and a subscription identifier must: 1..).
fn varint_value() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..=127, 128u32..=16_383, 16_384u32..=VARINT_MAX]
}

/// A reason code `packet` may carry in `version` (the defaults for packets without one).
pub fn reason_code(packet: PacketType, version: ProtocolVersion) -> BoxedStrategy<ReasonCode> {
    use ReasonCode::*;
    if version.is_v5() {
        let codes: Vec<ReasonCode> = ALL_REASON_CODES
            .iter()
            .copied()
            .filter(|c| c.allowed_in(packet))
            .collect();
        return select(codes).boxed();
    }
    match packet {
        PacketType::ConnAck => select(vec![
            Success,
            UnsupportedProtocolVersion,
            ClientIdentifierNotValid,
            ServerUnavailable,
            BadUserNameOrPassword,
            NotAuthorized,
        ])
        .boxed(),
        PacketType::SubAck => {
            select(vec![Success, GrantedQos1, GrantedQos2, UnspecifiedError]).boxed()
        }
        _ => Just(Success).boxed(),
    }
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        (
            any::<Option<u32>>(),
            prop::option::of(1..=u16::MAX),
            prop::option::of(1..=u32::MAX),
            any::<Option<u16>>(),
        ),
        (
            any::<Option<bool>>(),
            any::<Option<bool>>(),
            prop::option::of(utf8_string(8)),
            prop::option::of(binary(8)),
            user_properties(),
        ),
    )
        .prop_map(
            |((session, receive, max_size, alias_max), (rri, rpi, method, data, users))| {
                ConnectProperties {
                    session_expiry_interval: session,
                    receive_maximum: receive,
                    maximum_packet_size: max_size,
                    topic_alias_maximum: alias_max,
                    request_response_information: rri,
                    request_problem_information: rpi,
                    // Authentication Data without a method is a Protocol Error.
                    authentication_data: if method.is_some() { data } else { None },
                    authentication_method: method,
                    user_properties: users,
                }
            },
        )
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        any::<Option<u32>>(),
        any::<Option<bool>>(),
        any::<Option<u32>>(),
        prop::option::of(utf8_string(8)),
        prop::option::of(topic_name()),
        prop::option::of(binary(8)),
        user_properties(),
    )
        .prop_map(
            |(delay, format, expiry, content_type, response_topic, correlation, users)| {
                WillProperties {
                    will_delay_interval: delay,
                    payload_format_indicator: format,
                    message_expiry_interval: expiry,
                    content_type,
                    response_topic,
                    correlation_data: correlation,
                    user_properties: users,
                }
            },
        )
}

/// CONNECT of `protocol` (any of the three levels).
pub fn connect(protocol: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = protocol.is_v5();
    let will = (
        qos(),
        any::<bool>(),
        topic_name(),
        binary(16),
        will_properties(),
    )
        .prop_map(move |(qos, retain, topic, payload, properties)| Will {
            qos,
            retain,
            topic,
            payload,
            properties: if v5 { properties } else { Default::default() },
        });
    (
        any::<bool>(),
        any::<u16>(),
        utf8_string(12),
        prop::option::of(will),
        prop::option::of(utf8_string(8)),
        prop::option::of(binary(8)),
        connect_properties(),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // Before 5.0 a password needs a user name [MQTT-3.1.2-22].
                let password = if v5 || username.is_some() {
                    password
                } else {
                    None
                };
                Packet::Connect(Box::new(Connect {
                    protocol,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties: if v5 { properties } else { Default::default() },
                }))
            },
        )
}

fn connack(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let props = (
        (
            any::<Option<u32>>(),
            prop::option::of(1..=u16::MAX),
            prop::option::of(select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])),
            any::<Option<bool>>(),
            prop::option::of(1..=u32::MAX),
            prop::option::of(utf8_string(8)),
            any::<Option<u16>>(),
            prop::option::of(utf8_string(8)),
        ),
        (
            any::<Option<bool>>(),
            any::<Option<bool>>(),
            any::<Option<bool>>(),
            any::<Option<u16>>(),
            prop::option::of(utf8_string(8)),
            prop::option::of(utf8_string(8)),
            prop::option::of((utf8_string(8), prop::option::of(binary(8)))),
            user_properties(),
        ),
    )
        .prop_map(|(a, b)| {
            let (session, receive, max_qos, retain, max_size, assigned, alias_max, reason) = a;
            let (wildcard, sub_ids, shared, keep_alive, info, reference, auth, users) = b;
            let (authentication_method, authentication_data) = match auth {
                Some((method, data)) => (Some(method), data),
                None => (None, None),
            };
            ConnAckProperties {
                session_expiry_interval: session,
                receive_maximum: receive,
                maximum_qos: max_qos,
                retain_available: retain,
                maximum_packet_size: max_size,
                assigned_client_identifier: assigned,
                topic_alias_maximum: alias_max,
                reason_string: reason,
                wildcard_subscription_available: wildcard,
                subscription_identifiers_available: sub_ids,
                shared_subscription_available: shared,
                server_keep_alive: keep_alive,
                response_information: info,
                server_reference: reference,
                authentication_method,
                authentication_data,
                user_properties: users,
            }
        });
    (
        any::<bool>(),
        reason_code(PacketType::ConnAck, version),
        props,
    )
        .prop_map(move |(session_present, reason_code, properties)| {
            Packet::ConnAck(ConnAck {
                session_present,
                reason_code,
                properties: if version.is_v5() {
                    properties
                } else {
                    Default::default()
                },
            })
        })
}

pub fn publish_properties() -> impl Strategy<Value = PublishProperties> {
    (
        any::<Option<bool>>(),
        any::<Option<u32>>(),
        prop::option::of(1..=u16::MAX),
        prop::option::of(topic_name()),
        prop::option::of(binary(8)),
        prop::collection::vec(varint_value(), 0..4),
        prop::option::of(utf8_string(8)),
        user_properties(),
    )
        .prop_map(
            |(format, expiry, alias, response_topic, correlation, sub_ids, content_type, users)| {
                PublishProperties {
                    payload_format_indicator: format,
                    message_expiry_interval: expiry,
                    topic_alias: alias,
                    response_topic,
                    correlation_data: correlation,
                    subscription_identifiers: sub_ids.into_iter().collect(),
                    content_type,
                    user_properties: users,
                }
            },
        )
}

pub fn publish(version: ProtocolVersion) -> impl Strategy<Value = Publish> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        topic_name(),
        prop::bool::weighted(0.2),
        packet_id(),
        publish_properties(),
        binary(48),
    )
        .prop_map(
            move |(qos, dup, retain, topic, alias_only, id, properties, payload)| {
                let v5 = version.is_v5();
                let properties = if v5 { properties } else { Default::default() };
                // In 5.0 a Topic Alias may stand for the topic name, which is then empty.
                let topic = if v5 && alias_only && properties.topic_alias.is_some() {
                    ByteString::new()
                } else {
                    topic
                };
                let at_most_once = qos == QoS::AtMostOnce;
                Publish {
                    dup: dup && !at_most_once,
                    qos,
                    retain,
                    topic,
                    packet_id: if at_most_once { 0 } else { id },
                    properties,
                    payload,
                }
            },
        )
}

fn ack_properties(version: ProtocolVersion) -> impl Strategy<Value = AckProperties> {
    (prop::option::of(utf8_string(10)), user_properties()).prop_map(move |(reason, users)| {
        if version.is_v5() {
            AckProperties {
                reason_string: reason,
                user_properties: users,
            }
        } else {
            AckProperties::default()
        }
    })
}

fn pub_response(packet: PacketType, version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        reason_code(packet, version),
        ack_properties(version),
    )
        .prop_map(move |(packet_id, reason_code, properties)| {
            let r = PubResponse {
                packet_id,
                reason_code,
                properties,
            };
            match packet {
                PacketType::PubAck => Packet::PubAck(r),
                PacketType::PubRec => Packet::PubRec(r),
                PacketType::PubRel => Packet::PubRel(r),
                _ => Packet::PubComp(r),
            }
        })
}

fn subscription_options(version: ProtocolVersion) -> impl Strategy<Value = SubscriptionOptions> {
    (
        qos(),
        any::<bool>(),
        any::<bool>(),
        select(vec![
            RetainHandling::SendOnSubscribe,
            RetainHandling::SendIfNew,
            RetainHandling::DoNotSend,
        ]),
    )
        .prop_map(move |(qos, no_local, rap, rh)| {
            if version.is_v5() {
                SubscriptionOptions {
                    qos,
                    no_local,
                    retain_as_published: rap,
                    retain_handling: rh,
                }
            } else {
                SubscriptionOptions {
                    qos,
                    ..Default::default()
                }
            }
        })
}

fn subscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let filters = prop::collection::vec((topic_filter(), subscription_options(version)), 1..5)
        .prop_map(|filters| {
            filters
                .into_iter()
                .map(|(filter, mut options)| {
                    // No Local on a shared subscription is a Protocol Error [MQTT-3.8.3-4].
                    if split_shared(&filter).is_some() {
                        options.no_local = false;
                    }
                    (filter, options)
                })
                .collect::<Vec<_>>()
        });
    (
        packet_id(),
        prop::option::of(varint_value()),
        user_properties(),
        filters,
    )
        .prop_map(move |(packet_id, sub_id, users, filters)| {
            let properties = if version.is_v5() {
                SubscribeProperties {
                    subscription_identifier: sub_id,
                    user_properties: users,
                }
            } else {
                SubscribeProperties::default()
            };
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                filters,
            })
        })
}

fn suback(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        ack_properties(version),
        prop::collection::vec(reason_code(PacketType::SubAck, version), 1..6),
    )
        .prop_map(|(packet_id, properties, reason_codes)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reason_codes,
            })
        })
}

fn unsubscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        user_properties(),
        prop::collection::vec(topic_filter(), 1..5),
    )
        .prop_map(move |(packet_id, users, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties: if version.is_v5() {
                    users
                } else {
                    UserProperties::default()
                },
                filters,
            })
        })
}

fn unsuback(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        ack_properties(version),
        prop::collection::vec(reason_code(PacketType::UnsubAck, version), 1..6),
    )
        .prop_map(move |(packet_id, properties, reason_codes)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                // 3.1.1 UNSUBACK has no payload.
                reason_codes: if version.is_v5() {
                    reason_codes
                } else {
                    Vec::new()
                },
            })
        })
}

fn disconnect(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        reason_code(PacketType::Disconnect, version),
        any::<Option<u32>>(),
        prop::option::of(utf8_string(10)),
        prop::option::of(utf8_string(10)),
        user_properties(),
    )
        .prop_map(move |(reason_code, session, reason, reference, users)| {
            let properties = if version.is_v5() {
                DisconnectProperties {
                    session_expiry_interval: session,
                    reason_string: reason,
                    server_reference: reference,
                    user_properties: users,
                }
            } else {
                DisconnectProperties::default()
            };
            Packet::Disconnect(Disconnect {
                reason_code,
                properties,
            })
        })
}

fn auth() -> impl Strategy<Value = Packet> {
    (
        reason_code(PacketType::Auth, ProtocolVersion::V5),
        prop::option::of(utf8_string(8)),
        prop::option::of(binary(8)),
        prop::option::of(utf8_string(10)),
        user_properties(),
    )
        .prop_map(|(reason_code, method, data, reason, users)| {
            Packet::Auth(Auth {
                reason_code,
                properties: AuthProperties {
                    authentication_method: method,
                    authentication_data: data,
                    reason_string: reason,
                    user_properties: users,
                },
            })
        })
}

/// Every packet type that exists in `version`, as a strategy per type (name, strategy).
pub fn packets_by_type(version: ProtocolVersion) -> Vec<(PacketType, BoxedStrategy<Packet>)> {
    let mut all: Vec<(PacketType, BoxedStrategy<Packet>)> = vec![
        (PacketType::Connect, connect(version).boxed()),
        (PacketType::ConnAck, connack(version).boxed()),
        (
            PacketType::Publish,
            publish(version).prop_map(Packet::Publish).boxed(),
        ),
        (
            PacketType::PubAck,
            pub_response(PacketType::PubAck, version).boxed(),
        ),
        (
            PacketType::PubRec,
            pub_response(PacketType::PubRec, version).boxed(),
        ),
        (
            PacketType::PubRel,
            pub_response(PacketType::PubRel, version).boxed(),
        ),
        (
            PacketType::PubComp,
            pub_response(PacketType::PubComp, version).boxed(),
        ),
        (PacketType::Subscribe, subscribe(version).boxed()),
        (PacketType::SubAck, suback(version).boxed()),
        (PacketType::Unsubscribe, unsubscribe(version).boxed()),
        (PacketType::UnsubAck, unsuback(version).boxed()),
        (PacketType::PingReq, Just(Packet::PingReq).boxed()),
        (PacketType::PingResp, Just(Packet::PingResp).boxed()),
        (PacketType::Disconnect, disconnect(version).boxed()),
    ];
    if version.is_v5() {
        all.push((PacketType::Auth, auth().boxed()));
    }
    all
}

/// Any packet of `version` (CONNECT of that version included).
pub fn any_packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let strategies: Vec<BoxedStrategy<Packet>> = packets_by_type(version)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    proptest::strategy::Union::new(strategies).boxed()
}

/// One packet of `packet_type` in `version`.
pub fn packet_of(packet_type: PacketType, version: ProtocolVersion) -> BoxedStrategy<Packet> {
    packets_by_type(version)
        .into_iter()
        .find(|(t, _)| *t == packet_type)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("{packet_type:?} does not exist in {version:?}"))
}
