//! Typed decode and encode errors. Every decode error names the reason code the specification
//! gives for it, so the connection layer answers a bad packet with the right CONNACK or
//! DISCONNECT without re-deriving why the packet was bad.

use super::packet::PacketType;
use super::reason::ReasonCode;

/// Why bytes from the network are not a valid MQTT packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("remaining length uses more than four bytes")]
    MalformedRemainingLength,
    #[error("variable byte integer uses more than four bytes")]
    MalformedVariableInteger,
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge { size: usize, max: u32 },
    #[error("packet type {0} is reserved")]
    ReservedPacketType(u8),
    #[error("{packet:?} has reserved fixed header flags {flags:#06b}")]
    InvalidHeaderFlags { packet: PacketType, flags: u8 },
    #[error("QoS 3 is not a valid QoS level")]
    InvalidQos,
    #[error("DUP set on a QoS 0 PUBLISH")]
    DupOnQos0,
    #[error("{0:?} ended before its fields did")]
    Truncated(PacketType),
    #[error("{0:?} has bytes after its last field")]
    TrailingBytes(PacketType),
    #[error("string is not well-formed UTF-8")]
    InvalidUtf8,
    #[error("string contains the null character U+0000")]
    NullCharacter,
    #[error("protocol name {name:?} with level {level} is not a supported MQTT version")]
    UnsupportedProtocol { name: String, level: u8 },
    #[error("CONNECT reserved flag is set")]
    ConnectReservedFlag,
    #[error("CONNECT will flags are inconsistent: {0}")]
    WillFlags(&'static str),
    #[error("password flag set without the user name flag (MQTT 3.1.1)")]
    PasswordWithoutUsername,
    #[error("the first packet must be CONNECT, got {0:?}")]
    FirstPacketNotConnect(PacketType),
    #[error("{0:?} is not a packet of this protocol version")]
    PacketNotInVersion(PacketType),
    #[error("packet identifier must be non-zero in {0:?}")]
    ZeroPacketIdentifier(PacketType),
    #[error("topic name {0:?} is invalid")]
    TopicNameInvalid(String),
    #[error("topic filter {0:?} is invalid")]
    TopicFilterInvalid(String),
    #[error("{0:?} must contain at least one topic filter")]
    NoTopicFilters(PacketType),
    #[error("subscription options byte {0:#010b} has reserved bits set")]
    SubscriptionOptionsReserved(u8),
    #[error("retain handling 3 is not defined")]
    InvalidRetainHandling,
    #[error("subscription Maximum QoS 3 is not defined")]
    InvalidMaximumQos,
    #[error("No Local set on a shared subscription")]
    NoLocalOnSharedSubscription,
    #[error("property identifier {0:#04x} is not defined")]
    UnknownProperty(u32),
    #[error("property {id:#04x} is not allowed in {packet:?}")]
    PropertyNotAllowed { id: u8, packet: PacketType },
    #[error("property {0:#04x} appears more than once")]
    DuplicateProperty(u8),
    #[error("property {id:#04x} has invalid value {value}")]
    InvalidPropertyValue { id: u8, value: u32 },
    #[error("authentication data without an authentication method")]
    AuthDataWithoutMethod,
    #[error("topic name is empty and no topic alias is given")]
    EmptyTopicWithoutAlias,
    #[error("reason code {code:#04x} is not valid in {packet:?}")]
    InvalidReasonCode { code: u8, packet: PacketType },
    #[error("CONNACK flags {0:#010b} have reserved bits set")]
    ConnAckReservedFlags(u8),
}

impl DecodeError {
    /// The reason code the specification names for this violation (0x81 Malformed Packet unless
    /// the specification says Protocol Error or something more precise).
    pub fn reason_code(&self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            UnsupportedProtocol { .. } => ReasonCode::UnsupportedProtocolVersion,
            TopicNameInvalid(_) => ReasonCode::TopicNameInvalid,
            TopicFilterInvalid(_) => ReasonCode::TopicFilterInvalid,
            FirstPacketNotConnect(_)
            | PacketNotInVersion(_)
            | ZeroPacketIdentifier(_)
            | NoTopicFilters(_)
            | InvalidRetainHandling
            | InvalidMaximumQos
            | NoLocalOnSharedSubscription
            | DuplicateProperty(_)
            | InvalidPropertyValue { .. }
            | AuthDataWithoutMethod
            | EmptyTopicWithoutAlias => ReasonCode::ProtocolError,
            MalformedRemainingLength
            | MalformedVariableInteger
            | ReservedPacketType(_)
            | InvalidHeaderFlags { .. }
            | InvalidQos
            | DupOnQos0
            | Truncated(_)
            | TrailingBytes(_)
            | InvalidUtf8
            | NullCharacter
            | ConnectReservedFlag
            | WillFlags(_)
            | PasswordWithoutUsername
            | SubscriptionOptionsReserved(_)
            | UnknownProperty(_)
            | PropertyNotAllowed { .. }
            | InvalidReasonCode { .. }
            | ConnAckReservedFlags(_) => ReasonCode::MalformedPacket,
        }
    }
}

/// Why a packet cannot be written in the requested protocol version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("string or binary field of {0} bytes exceeds 65535")]
    FieldTooLong(usize),
    #[error("packet body of {0} bytes exceeds the 268435455-byte maximum remaining length")]
    PacketTooLarge(usize),
    #[error("{0:?} does not exist in this protocol version")]
    PacketNotInVersion(PacketType),
    #[error("a QoS {0} PUBLISH needs a non-zero packet identifier")]
    MissingPacketIdentifier(u8),
    #[error("value {0} does not fit a variable byte integer")]
    VariableIntegerTooLarge(u32),
}
