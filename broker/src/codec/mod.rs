//! The MQTT 3.1, 3.1.1 and 5.0 codec.
//!
//! - [`Decoder`] decodes packets in place from a connection's `BytesMut`: strings and payloads
//!   in the result are views of the read buffer, partial packets consume nothing, and the
//!   maximum packet size is enforced from the fixed header before a body is buffered.
//! - [`encode`] writes any packet into a caller-supplied buffer; [`OutboundPublish`] encodes a
//!   PUBLISH once and writes per-subscriber heads in front of the shared payload;
//!   [`SharedHeads`] encodes the head most subscribers share once per message.
//! - Every violation of the specifications is a [`DecodeError`] carrying the [`ReasonCode`] to
//!   answer with.

mod decode;
mod encode;
mod error;
mod outbound;
mod packet;
pub mod properties;
mod reason;
mod shared_head;
pub mod topic;
mod wire;

pub use decode::{parse_remaining_length, Decoded, Decoder, MAX_PACKET_SIZE_LIMIT};
pub use encode::{encode, encoded_len, first_byte, publish_flags};
pub use error::{DecodeError, EncodeError};
pub use outbound::{shared_properties, Delivery, OutboundPublish, PublishWire};
pub use packet::*;
pub use properties::{
    AckProperties, AuthProperties, ConnAckProperties, ConnectProperties, DisconnectProperties,
    PublishProperties, SubscribeProperties, UserProperties, WillProperties,
};
pub use reason::{ReasonCode, ALL_REASON_CODES};
pub use shared_head::{SharedHead, SharedHeads, SHARED_HEAD_MAX};
pub use wire::{varint_len, Counter, Sink, VARINT_MAX};

pub use bytestring::ByteString;
