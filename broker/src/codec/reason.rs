//! Reason codes of MQTT 5.0 (section 2.4) and the return codes of MQTT 3.1.1 that map onto them.
//!
//! The broker works with one [`ReasonCode`] type for both protocol versions; the codec translates
//! to the 3.1.1 CONNACK return codes and SUBACK codes when it encodes for a 3.1.1 client, so the
//! connection layer never has to know which version it is answering.

use super::packet::PacketType;

/// Every MQTT 5.0 reason code. Several codes share the byte `0x00` (Success, Normal
/// disconnection, Granted QoS 0); they are one variant here and named by the packet they sit in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum ReasonCode {
    /// 0x00: Success / Normal disconnection / Granted QoS 0.
    #[default]
    Success = 0x00,
    GrantedQos1 = 0x01,
    GrantedQos2 = 0x02,
    DisconnectWithWillMessage = 0x04,
    NoMatchingSubscribers = 0x10,
    NoSubscriptionExisted = 0x11,
    ContinueAuthentication = 0x18,
    ReAuthenticate = 0x19,
    UnspecifiedError = 0x80,
    MalformedPacket = 0x81,
    ProtocolError = 0x82,
    ImplementationSpecificError = 0x83,
    UnsupportedProtocolVersion = 0x84,
    ClientIdentifierNotValid = 0x85,
    BadUserNameOrPassword = 0x86,
    NotAuthorized = 0x87,
    ServerUnavailable = 0x88,
    ServerBusy = 0x89,
    Banned = 0x8A,
    ServerShuttingDown = 0x8B,
    BadAuthenticationMethod = 0x8C,
    KeepAliveTimeout = 0x8D,
    SessionTakenOver = 0x8E,
    TopicFilterInvalid = 0x8F,
    TopicNameInvalid = 0x90,
    PacketIdentifierInUse = 0x91,
    PacketIdentifierNotFound = 0x92,
    ReceiveMaximumExceeded = 0x93,
    TopicAliasInvalid = 0x94,
    PacketTooLarge = 0x95,
    MessageRateTooHigh = 0x96,
    QuotaExceeded = 0x97,
    AdministrativeAction = 0x98,
    PayloadFormatInvalid = 0x99,
    RetainNotSupported = 0x9A,
    QosNotSupported = 0x9B,
    UseAnotherServer = 0x9C,
    ServerMoved = 0x9D,
    SharedSubscriptionsNotSupported = 0x9E,
    ConnectionRateExceeded = 0x9F,
    MaximumConnectTime = 0xA0,
    SubscriptionIdentifiersNotSupported = 0xA1,
    WildcardSubscriptionsNotSupported = 0xA2,
}

/// All reason codes, in byte order; used by tests and by [`ReasonCode::from_u8`].
pub const ALL_REASON_CODES: [ReasonCode; 43] = {
    use ReasonCode::*;
    [
        Success,
        GrantedQos1,
        GrantedQos2,
        DisconnectWithWillMessage,
        NoMatchingSubscribers,
        NoSubscriptionExisted,
        ContinueAuthentication,
        ReAuthenticate,
        UnspecifiedError,
        MalformedPacket,
        ProtocolError,
        ImplementationSpecificError,
        UnsupportedProtocolVersion,
        ClientIdentifierNotValid,
        BadUserNameOrPassword,
        NotAuthorized,
        ServerUnavailable,
        ServerBusy,
        Banned,
        ServerShuttingDown,
        BadAuthenticationMethod,
        KeepAliveTimeout,
        SessionTakenOver,
        TopicFilterInvalid,
        TopicNameInvalid,
        PacketIdentifierInUse,
        PacketIdentifierNotFound,
        ReceiveMaximumExceeded,
        TopicAliasInvalid,
        PacketTooLarge,
        MessageRateTooHigh,
        QuotaExceeded,
        AdministrativeAction,
        PayloadFormatInvalid,
        RetainNotSupported,
        QosNotSupported,
        UseAnotherServer,
        ServerMoved,
        SharedSubscriptionsNotSupported,
        ConnectionRateExceeded,
        MaximumConnectTime,
        SubscriptionIdentifiersNotSupported,
        WildcardSubscriptionsNotSupported,
    ]
};

impl ReasonCode {
    /// The code for a byte, if the byte is a defined MQTT 5.0 reason code.
    pub fn from_u8(byte: u8) -> Option<ReasonCode> {
        ALL_REASON_CODES.iter().copied().find(|c| *c as u8 == byte)
    }

    /// The byte on the wire.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Codes below 0x80 report success; 0x80 and above report failure (section 2.4).
    pub const fn is_error(self) -> bool {
        (self as u8) >= 0x80
    }

    /// Whether an MQTT 5.0 packet of `packet` type may carry this code (the tables of
    /// sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3, 3.14.2.1, 3.15.2.1).
    pub fn allowed_in(self, packet: PacketType) -> bool {
        use ReasonCode::*;
        match packet {
            PacketType::ConnAck => matches!(
                self,
                Success
                    | UnspecifiedError
                    | MalformedPacket
                    | ProtocolError
                    | ImplementationSpecificError
                    | UnsupportedProtocolVersion
                    | ClientIdentifierNotValid
                    | BadUserNameOrPassword
                    | NotAuthorized
                    | ServerUnavailable
                    | ServerBusy
                    | Banned
                    | BadAuthenticationMethod
                    | TopicNameInvalid
                    | PacketTooLarge
                    | QuotaExceeded
                    | PayloadFormatInvalid
                    | RetainNotSupported
                    | QosNotSupported
                    | UseAnotherServer
                    | ServerMoved
                    | ConnectionRateExceeded
            ),
            PacketType::PubAck | PacketType::PubRec => matches!(
                self,
                Success
                    | NoMatchingSubscribers
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicNameInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | PayloadFormatInvalid
            ),
            PacketType::PubRel | PacketType::PubComp => {
                matches!(self, Success | PacketIdentifierNotFound)
            }
            PacketType::SubAck => matches!(
                self,
                Success
                    | GrantedQos1
                    | GrantedQos2
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | SharedSubscriptionsNotSupported
                    | SubscriptionIdentifiersNotSupported
                    | WildcardSubscriptionsNotSupported
            ),
            PacketType::UnsubAck => matches!(
                self,
                Success
                    | NoSubscriptionExisted
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
            ),
            PacketType::Disconnect => !matches!(
                self,
                GrantedQos1
                    | GrantedQos2
                    | NoMatchingSubscribers
                    | NoSubscriptionExisted
                    | ContinueAuthentication
                    | ReAuthenticate
                    | UnsupportedProtocolVersion
                    | ClientIdentifierNotValid
                    | BadUserNameOrPassword
                    | ServerUnavailable
                    | Banned
                    | BadAuthenticationMethod
                    | PacketIdentifierInUse
                    | PacketIdentifierNotFound
            ),
            PacketType::Auth => matches!(self, Success | ContinueAuthentication | ReAuthenticate),
            _ => false,
        }
    }

    /// The MQTT 3.1.1 CONNACK return code (section 3.2.2.3) that best says the same thing.
    /// 3.1.1 has only six; anything without a direct equivalent becomes "Server unavailable".
    pub fn to_v4_connack(self) -> u8 {
        use ReasonCode::*;
        match self {
            Success => 0,
            UnsupportedProtocolVersion => 1,
            ClientIdentifierNotValid => 2,
            BadUserNameOrPassword | BadAuthenticationMethod => 4,
            NotAuthorized | Banned => 5,
            _ => 3,
        }
    }

    /// The reason code for an MQTT 3.1.1 CONNACK return code, if it is one of the six.
    pub fn from_v4_connack(code: u8) -> Option<ReasonCode> {
        use ReasonCode::*;
        Some(match code {
            0 => Success,
            1 => UnsupportedProtocolVersion,
            2 => ClientIdentifierNotValid,
            3 => ServerUnavailable,
            4 => BadUserNameOrPassword,
            5 => NotAuthorized,
            _ => return None,
        })
    }

    /// The MQTT 3.1.1 SUBACK return code (section 3.9.3): the granted QoS, or 0x80 for failure.
    pub fn to_v4_suback(self) -> u8 {
        match self {
            ReasonCode::Success | ReasonCode::GrantedQos1 | ReasonCode::GrantedQos2 => self as u8,
            _ => 0x80,
        }
    }

    /// The reason code for a 3.1.1 SUBACK return code (0x00, 0x01, 0x02 or 0x80).
    pub fn from_v4_suback(code: u8) -> Option<ReasonCode> {
        match code {
            0x00 => Some(ReasonCode::Success),
            0x01 => Some(ReasonCode::GrantedQos1),
            0x02 => Some(ReasonCode::GrantedQos2),
            0x80 => Some(ReasonCode::UnspecifiedError),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_byte_round_trips_and_undefined_bytes_are_rejected() {
        let mut defined = 0;
        for byte in 0..=255u8 {
            match ReasonCode::from_u8(byte) {
                Some(code) => {
                    assert_eq!(code.as_u8(), byte);
                    defined += 1;
                }
                None => assert!(![0x00, 0x01, 0x02, 0x04, 0x10, 0x8B, 0xA2].contains(&byte)),
            }
        }
        assert_eq!(defined, ALL_REASON_CODES.len());
    }

    #[test]
    fn v4_connack_return_codes_map_both_ways() {
        for code in 0..=5u8 {
            let reason = ReasonCode::from_v4_connack(code).expect("defined");
            assert_eq!(reason.to_v4_connack(), code);
        }
        assert_eq!(ReasonCode::from_v4_connack(6), None);
        assert_eq!(ReasonCode::QuotaExceeded.to_v4_connack(), 3);
    }

    #[test]
    fn v4_suback_failure_is_0x80() {
        assert_eq!(ReasonCode::TopicFilterInvalid.to_v4_suback(), 0x80);
        assert_eq!(ReasonCode::GrantedQos2.to_v4_suback(), 2);
    }
}
