//! MQTT 5.0 properties (section 2.2.2): every identifier with its data type, the packets it may
//! appear in, its value rules, and one typed struct per packet.
//!
//! Decoding walks a property block once, rejecting unknown identifiers, identifiers that do not
//! belong in the packet (Malformed Packet), repeated identifiers and out-of-range values
//! (Protocol Error). User properties are not copied out: [`UserProperties`] keeps a view of the
//! block and iterates it on demand, so a PUBLISH with user properties still decodes without
//! allocating, and is forwarded byte for byte.

use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use smallvec::SmallVec;

use super::error::{DecodeError, EncodeError};
use super::packet::{PacketType, QoS};
use super::topic::is_valid_topic_name;
use super::wire::{Counter, Reader, Sink};

/// Property identifiers (section 2.2.2.2).
pub mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// The data type of a property's value (section 1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyType {
    Byte,
    TwoByteInteger,
    FourByteInteger,
    VariableByteInteger,
    Utf8String,
    BinaryData,
    Utf8StringPair,
}

/// Where a property block sits: a packet, or the Will Properties inside CONNECT's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyContext {
    Packet(PacketType),
    Will,
}

/// The data type of a property, or `None` if the identifier is not defined.
pub fn property_type(property: u8) -> Option<PropertyType> {
    use id::*;
    use PropertyType::*;
    Some(match property {
        PAYLOAD_FORMAT_INDICATOR
        | REQUEST_PROBLEM_INFORMATION
        | REQUEST_RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => Byte,
        SERVER_KEEP_ALIVE | RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | TOPIC_ALIAS => TwoByteInteger,
        MESSAGE_EXPIRY_INTERVAL
        | SESSION_EXPIRY_INTERVAL
        | WILL_DELAY_INTERVAL
        | MAXIMUM_PACKET_SIZE => FourByteInteger,
        SUBSCRIPTION_IDENTIFIER => VariableByteInteger,
        CONTENT_TYPE
        | RESPONSE_TOPIC
        | ASSIGNED_CLIENT_IDENTIFIER
        | AUTHENTICATION_METHOD
        | RESPONSE_INFORMATION
        | SERVER_REFERENCE
        | REASON_STRING => Utf8String,
        CORRELATION_DATA | AUTHENTICATION_DATA => BinaryData,
        USER_PROPERTY => Utf8StringPair,
        _ => return None,
    })
}

/// Whether a property may appear in a context (the table of section 2.2.2.2).
pub fn property_allowed(property: u8, context: PropertyContext) -> bool {
    use id::*;
    use PacketType as P;
    let packet = match context {
        PropertyContext::Will => {
            return matches!(
                property,
                PAYLOAD_FORMAT_INDICATOR
                    | MESSAGE_EXPIRY_INTERVAL
                    | CONTENT_TYPE
                    | RESPONSE_TOPIC
                    | CORRELATION_DATA
                    | WILL_DELAY_INTERVAL
                    | USER_PROPERTY
            )
        }
        PropertyContext::Packet(packet) => packet,
    };
    match property {
        USER_PROPERTY => !matches!(packet, P::PingReq | P::PingResp),
        PAYLOAD_FORMAT_INDICATOR
        | MESSAGE_EXPIRY_INTERVAL
        | CONTENT_TYPE
        | RESPONSE_TOPIC
        | CORRELATION_DATA
        | TOPIC_ALIAS => packet == P::Publish,
        SUBSCRIPTION_IDENTIFIER => matches!(packet, P::Publish | P::Subscribe),
        SESSION_EXPIRY_INTERVAL => matches!(packet, P::Connect | P::ConnAck | P::Disconnect),
        ASSIGNED_CLIENT_IDENTIFIER
        | SERVER_KEEP_ALIVE
        | RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => packet == P::ConnAck,
        AUTHENTICATION_METHOD | AUTHENTICATION_DATA => {
            matches!(packet, P::Connect | P::ConnAck | P::Auth)
        }
        REQUEST_PROBLEM_INFORMATION | REQUEST_RESPONSE_INFORMATION => packet == P::Connect,
        SERVER_REFERENCE => matches!(packet, P::ConnAck | P::Disconnect),
        REASON_STRING => matches!(
            packet,
            P::ConnAck
                | P::PubAck
                | P::PubRec
                | P::PubRel
                | P::PubComp
                | P::SubAck
                | P::UnsubAck
                | P::Disconnect
                | P::Auth
        ),
        RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | MAXIMUM_PACKET_SIZE => {
            matches!(packet, P::Connect | P::ConnAck)
        }
        _ => false,
    }
}

/// A decoded property value other than a user property.
pub(crate) enum Value {
    Int(u32),
    Str(ByteString),
    Bin(Bytes),
}

impl Value {
    fn int(&self) -> u32 {
        match self {
            Value::Int(v) => *v,
            _ => 0,
        }
    }
    fn str(self) -> ByteString {
        match self {
            Value::Str(s) => s,
            _ => ByteString::new(),
        }
    }
    fn bin(self) -> Bytes {
        match self {
            Value::Bin(b) => b,
            _ => Bytes::new(),
        }
    }
}

/// Value rules that make a property a Protocol Error (section 3 per property).
fn check_value(property: u8, value: &Value) -> Result<(), DecodeError> {
    use id::*;
    let bad = |v: u32| {
        Err(DecodeError::InvalidPropertyValue {
            id: property,
            value: v,
        })
    };
    match (property, value) {
        (
            PAYLOAD_FORMAT_INDICATOR
            | REQUEST_PROBLEM_INFORMATION
            | REQUEST_RESPONSE_INFORMATION
            | MAXIMUM_QOS
            | RETAIN_AVAILABLE
            | WILDCARD_SUBSCRIPTION_AVAILABLE
            | SUBSCRIPTION_IDENTIFIER_AVAILABLE
            | SHARED_SUBSCRIPTION_AVAILABLE,
            Value::Int(v),
        ) if *v > 1 => bad(*v),
        (
            RECEIVE_MAXIMUM | MAXIMUM_PACKET_SIZE | TOPIC_ALIAS | SUBSCRIPTION_IDENTIFIER,
            Value::Int(0),
        ) => bad(0),
        (RESPONSE_TOPIC, Value::Str(s)) if !is_valid_topic_name(s) => {
            Err(DecodeError::TopicNameInvalid(s.to_string()))
        }
        _ => Ok(()),
    }
}

/// Reads one property block (its Property Length first), checking every identifier against
/// `context`, and hands each non-user property to `apply`. Returns the user properties.
pub(crate) fn decode_block(
    r: &mut Reader,
    context: PropertyContext,
    mut apply: impl FnMut(u8, Value) -> Result<(), DecodeError>,
) -> Result<UserProperties, DecodeError> {
    let len = r.varint()? as usize;
    let mut block = r.sub(len)?;
    let raw = block.peek();
    let mut seen: u64 = 0;
    let mut user_len = 0usize;
    while block.remaining() > 0 {
        let wire_id = block.varint()?;
        let property = u8::try_from(wire_id)
            .ok()
            .filter(|p| property_type(*p).is_some())
            .ok_or(DecodeError::UnknownProperty(wire_id))?;
        let packet = match context {
            PropertyContext::Packet(p) => p,
            PropertyContext::Will => PacketType::Connect,
        };
        if !property_allowed(property, context) {
            return Err(DecodeError::PropertyNotAllowed {
                id: property,
                packet,
            });
        }
        let repeatable = property == id::USER_PROPERTY
            || (property == id::SUBSCRIPTION_IDENTIFIER && packet == PacketType::Publish);
        if !repeatable {
            if seen & (1u64 << property) != 0 {
                return Err(DecodeError::DuplicateProperty(property));
            }
            seen |= 1u64 << property;
        }
        let value = match property_type(property) {
            Some(PropertyType::Byte) => Value::Int(u32::from(block.u8()?)),
            Some(PropertyType::TwoByteInteger) => Value::Int(u32::from(block.u16()?)),
            Some(PropertyType::FourByteInteger) => Value::Int(block.u32()?),
            Some(PropertyType::VariableByteInteger) => Value::Int(block.varint()?),
            Some(PropertyType::Utf8String) => Value::Str(block.string()?),
            Some(PropertyType::BinaryData) => Value::Bin(block.binary()?),
            Some(PropertyType::Utf8StringPair) | None => {
                let key = block.string()?;
                let value = block.string()?;
                user_len += 5 + key.len() + value.len();
                continue;
            }
        };
        check_value(property, &value)?;
        apply(property, value)?;
    }
    Ok(if user_len == 0 {
        UserProperties::default()
    } else {
        UserProperties {
            block: raw,
            encoded_len: user_len,
        }
    })
}

/// User properties (0x26), in order, duplicates allowed [MQTT-3.3.2-18]. Holds a view of the
/// property block they were decoded from (or a block of only user properties built by
/// [`UserProperties::from_pairs`]) and parses it on iteration.
#[derive(Clone, Default)]
pub struct UserProperties {
    block: Bytes,
    /// Encoded size of the user properties alone; zero means none.
    encoded_len: usize,
}

impl UserProperties {
    /// Builds user properties from pairs, in order.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, EncodeError> {
        let mut block = BytesMut::new();
        for (key, value) in pairs {
            block.put_u8(id::USER_PROPERTY);
            block.put_binary(key.as_bytes())?;
            block.put_binary(value.as_bytes())?;
        }
        Ok(UserProperties {
            encoded_len: block.len(),
            block: block.freeze(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.encoded_len == 0
    }

    /// The pairs in the order they appeared.
    pub fn iter(&self) -> UserPropertyIter<'_> {
        UserPropertyIter {
            rest: &self.block,
            active: self.encoded_len > 0,
        }
    }

    /// Writes every user property (identifier, key, value) to `sink`.
    pub(crate) fn write<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        for (key, value) in self.iter() {
            sink.put_u8(id::USER_PROPERTY);
            sink.put_binary(key.as_bytes())?;
            sink.put_binary(value.as_bytes())?;
        }
        Ok(())
    }
}

impl PartialEq for UserProperties {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for UserProperties {}

impl std::fmt::Debug for UserProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a validated property block, yielding only the user properties.
pub struct UserPropertyIter<'a> {
    rest: &'a [u8],
    active: bool,
}

impl<'a> UserPropertyIter<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }
    fn varint(&mut self) -> Option<u32> {
        let mut value = 0u32;
        for i in 0..4 {
            let byte = self.take(1)?[0];
            value |= u32::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    fn prefixed(&mut self) -> Option<&'a [u8]> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        self.take(len)
    }
    fn next_pair(&mut self) -> Option<(&'a str, &'a str)> {
        loop {
            let property = u8::try_from(self.varint()?).ok()?;
            match property_type(property)? {
                PropertyType::Byte => drop(self.take(1)?),
                PropertyType::TwoByteInteger => drop(self.take(2)?),
                PropertyType::FourByteInteger => drop(self.take(4)?),
                PropertyType::VariableByteInteger => drop(self.varint()?),
                PropertyType::Utf8String | PropertyType::BinaryData => drop(self.prefixed()?),
                PropertyType::Utf8StringPair => {
                    let key = std::str::from_utf8(self.prefixed()?).ok()?;
                    let value = std::str::from_utf8(self.prefixed()?).ok()?;
                    return Some((key, value));
                }
            }
        }
    }
}

impl<'a> Iterator for UserPropertyIter<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        if !self.active {
            return None;
        }
        let pair = self.next_pair();
        if pair.is_none() {
            self.active = false;
        }
        pair
    }
}

/// A typed property block that knows how to write itself.
pub(crate) trait PropertyBlock {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError>;

    /// Property Length followed by the properties.
    fn write_block<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        let mut counter = Counter(0);
        self.write_properties(&mut counter)?;
        sink.put_varint(counter.0 as u32);
        self.write_properties(sink)
    }
}

fn put_int<S: Sink>(sink: &mut S, property: u8, value: Option<u32>) -> Result<(), EncodeError> {
    let Some(value) = value else { return Ok(()) };
    sink.put_u8(property);
    match property_type(property) {
        Some(PropertyType::Byte) => sink.put_u8(value as u8),
        Some(PropertyType::TwoByteInteger) => sink.put_u16(value as u16),
        Some(PropertyType::VariableByteInteger) => sink.put_varint(checked_varint(value)?),
        _ => sink.put_u32(value),
    }
    Ok(())
}

/// A value that fits a Variable Byte Integer. Larger values would be written as five bytes
/// while [`Counter`] sizes them as four, corrupting the Remaining Length.
pub(crate) fn checked_varint(value: u32) -> Result<u32, EncodeError> {
    if value > super::wire::VARINT_MAX {
        return Err(EncodeError::VariableIntegerTooLarge(value));
    }
    Ok(value)
}

fn put_bytes<S: Sink>(sink: &mut S, property: u8, value: Option<&[u8]>) -> Result<(), EncodeError> {
    if let Some(value) = value {
        sink.put_u8(property);
        sink.put_binary(value)?;
    }
    Ok(())
}

fn opt_str(value: &Option<ByteString>) -> Option<&[u8]> {
    value.as_ref().map(|s| s.as_bytes().as_ref())
}

fn opt_bin(value: &Option<Bytes>) -> Option<&[u8]> {
    value.as_deref()
}

fn flag(value: Option<bool>) -> Option<u32> {
    value.map(u32::from)
}

/// Defines a property struct: its fields, how decoded values fill it, and how it is written.
/// Each field is listed once with its identifier and kind, so decode and encode cannot drift.
macro_rules! property_struct {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$fmeta:meta])* $field:ident : $kind:ident = $pid:path ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: property_struct!(@type $kind), )*
            pub user_properties: UserProperties,
        }

        impl $name {
            pub(crate) fn apply(&mut self, property: u8, value: Value) -> Result<(), DecodeError> {
                $( if property == $pid {
                    property_struct!(@set self.$field, $kind, value);
                    return Ok(());
                } )*
                let _ = value;
                Err(DecodeError::PropertyNotAllowed { id: property, packet: PacketType::Connect })
            }
        }

        impl PropertyBlock for $name {
            fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
                $( property_struct!(@put sink, $pid, self.$field, $kind); )*
                self.user_properties.write(sink)
            }
        }
    };
    (@type int) => { Option<u32> };
    (@type u16) => { Option<u16> };
    (@type bool) => { Option<bool> };
    (@type qos) => { Option<QoS> };
    (@type str) => { Option<ByteString> };
    (@type bin) => { Option<Bytes> };
    (@type subids) => { SmallVec<[u32; 2]> };
    (@set $f:expr, int, $v:ident) => { $f = Some($v.int()) };
    (@set $f:expr, u16, $v:ident) => { $f = Some($v.int() as u16) };
    (@set $f:expr, bool, $v:ident) => { $f = Some($v.int() == 1) };
    (@set $f:expr, qos, $v:ident) => { $f = QoS::from_u8($v.int() as u8) };
    (@set $f:expr, str, $v:ident) => { $f = Some($v.str()) };
    (@set $f:expr, bin, $v:ident) => { $f = Some($v.bin()) };
    (@set $f:expr, subids, $v:ident) => { $f.push($v.int()) };
    (@put $s:ident, $pid:path, $f:expr, int) => { put_int($s, $pid, $f)? };
    (@put $s:ident, $pid:path, $f:expr, u16) => { put_int($s, $pid, $f.map(u32::from))? };
    (@put $s:ident, $pid:path, $f:expr, bool) => { put_int($s, $pid, flag($f))? };
    (@put $s:ident, $pid:path, $f:expr, qos) => { put_int($s, $pid, $f.map(|q| u32::from(q.as_u8())))? };
    (@put $s:ident, $pid:path, $f:expr, str) => { put_bytes($s, $pid, opt_str(&$f))? };
    (@put $s:ident, $pid:path, $f:expr, bin) => { put_bytes($s, $pid, opt_bin(&$f))? };
    (@put $s:ident, $pid:path, $f:expr, subids) => {
        for sub_id in &$f { put_int($s, $pid, Some(*sub_id))? }
    };
}

property_struct! {
    /// CONNECT properties (section 3.1.2.11).
    ConnectProperties {
        session_expiry_interval: int = id::SESSION_EXPIRY_INTERVAL,
        receive_maximum: u16 = id::RECEIVE_MAXIMUM,
        maximum_packet_size: int = id::MAXIMUM_PACKET_SIZE,
        topic_alias_maximum: u16 = id::TOPIC_ALIAS_MAXIMUM,
        request_response_information: bool = id::REQUEST_RESPONSE_INFORMATION,
        request_problem_information: bool = id::REQUEST_PROBLEM_INFORMATION,
        authentication_method: str = id::AUTHENTICATION_METHOD,
        authentication_data: bin = id::AUTHENTICATION_DATA,
    }
}

property_struct! {
    /// Will properties, inside CONNECT's payload (section 3.1.3.2).
    WillProperties {
        will_delay_interval: int = id::WILL_DELAY_INTERVAL,
        payload_format_indicator: bool = id::PAYLOAD_FORMAT_INDICATOR,
        message_expiry_interval: int = id::MESSAGE_EXPIRY_INTERVAL,
        content_type: str = id::CONTENT_TYPE,
        response_topic: str = id::RESPONSE_TOPIC,
        correlation_data: bin = id::CORRELATION_DATA,
    }
}

property_struct! {
    /// CONNACK properties (section 3.2.2.3).
    ConnAckProperties {
        session_expiry_interval: int = id::SESSION_EXPIRY_INTERVAL,
        receive_maximum: u16 = id::RECEIVE_MAXIMUM,
        maximum_qos: qos = id::MAXIMUM_QOS,
        retain_available: bool = id::RETAIN_AVAILABLE,
        maximum_packet_size: int = id::MAXIMUM_PACKET_SIZE,
        assigned_client_identifier: str = id::ASSIGNED_CLIENT_IDENTIFIER,
        topic_alias_maximum: u16 = id::TOPIC_ALIAS_MAXIMUM,
        reason_string: str = id::REASON_STRING,
        wildcard_subscription_available: bool = id::WILDCARD_SUBSCRIPTION_AVAILABLE,
        subscription_identifiers_available: bool = id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        shared_subscription_available: bool = id::SHARED_SUBSCRIPTION_AVAILABLE,
        server_keep_alive: u16 = id::SERVER_KEEP_ALIVE,
        response_information: str = id::RESPONSE_INFORMATION,
        server_reference: str = id::SERVER_REFERENCE,
        authentication_method: str = id::AUTHENTICATION_METHOD,
        authentication_data: bin = id::AUTHENTICATION_DATA,
    }
}

property_struct! {
    /// PUBLISH properties (section 3.3.2.3). Subscription identifiers appear only from server to
    /// client, once per matching subscription.
    PublishProperties {
        payload_format_indicator: bool = id::PAYLOAD_FORMAT_INDICATOR,
        message_expiry_interval: int = id::MESSAGE_EXPIRY_INTERVAL,
        topic_alias: u16 = id::TOPIC_ALIAS,
        response_topic: str = id::RESPONSE_TOPIC,
        correlation_data: bin = id::CORRELATION_DATA,
        subscription_identifiers: subids = id::SUBSCRIPTION_IDENTIFIER,
        content_type: str = id::CONTENT_TYPE,
    }
}

property_struct! {
    /// Properties of PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK.
    AckProperties {
        reason_string: str = id::REASON_STRING,
    }
}

property_struct! {
    /// SUBSCRIBE properties (section 3.8.2.1).
    SubscribeProperties {
        subscription_identifier: int = id::SUBSCRIPTION_IDENTIFIER,
    }
}

property_struct! {
    /// DISCONNECT properties (section 3.14.2.2).
    DisconnectProperties {
        session_expiry_interval: int = id::SESSION_EXPIRY_INTERVAL,
        reason_string: str = id::REASON_STRING,
        server_reference: str = id::SERVER_REFERENCE,
    }
}

property_struct! {
    /// AUTH properties (section 3.15.2.2).
    AuthProperties {
        authentication_method: str = id::AUTHENTICATION_METHOD,
        authentication_data: bin = id::AUTHENTICATION_DATA,
        reason_string: str = id::REASON_STRING,
    }
}

impl PropertyBlock for UserProperties {
    fn write_properties<S: Sink>(&self, sink: &mut S) -> Result<(), EncodeError> {
        self.write(sink)
    }
}

/// Decodes a property block into a typed struct, returning it with its user properties set.
macro_rules! decode_into {
    ($reader:expr, $context:expr, $ty:ty) => {{
        let mut props = <$ty>::default();
        let users = decode_block($reader, $context, |p, v| props.apply(p, v))?;
        props.user_properties = users;
        props
    }};
}
pub(crate) use decode_into;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_identifier_of_section_2_2_2_2_has_a_type_and_at_least_one_home() {
        let defined: Vec<u8> = (0..=255u8)
            .filter(|p| property_type(*p).is_some())
            .collect();
        assert_eq!(defined.len(), 27);
        let contexts: Vec<PropertyContext> = (1..=15u8)
            .filter_map(PacketType::from_u8)
            .map(PropertyContext::Packet)
            .chain([PropertyContext::Will])
            .collect();
        for p in defined {
            assert!(contexts.iter().any(|c| property_allowed(p, *c)), "{p:#x}");
        }
    }

    #[test]
    fn user_properties_keep_order_and_duplicates() {
        let users = UserProperties::from_pairs([("a", "1"), ("b", "2"), ("a", "3")]).unwrap();
        let pairs: Vec<_> = users.iter().collect();
        assert_eq!(pairs, [("a", "1"), ("b", "2"), ("a", "3")]);
    }
}
