//! Feeds arbitrary bytes to the MQTT decoder: a fresh server-side decoder (CONNECT first) and
//! decoders already set to 3.1.1 and 5.0, each with the largest and with a small maximum packet
//! size. Besides not panicking, every decoded packet must re-encode to bytes that decode to the
//! same packet, each decode must consume at least the two-byte fixed header, `Ok(None)` must
//! consume nothing, and every error must name a failure reason code (0x80 or above).
#![no_main]

use bytes::BytesMut;
use ferrumq_broker::codec::{
    encode, encoded_len, Decoder, Packet, ProtocolVersion, MAX_PACKET_SIZE_LIMIT,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for max in [MAX_PACKET_SIZE_LIMIT, 64] {
        run(Decoder::new(max), data);
        run(Decoder::with_version(ProtocolVersion::V3_1_1, max), data);
        run(Decoder::with_version(ProtocolVersion::V5, max), data);
    }
});

fn run(mut decoder: Decoder, data: &[u8]) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match decoder.decode(&mut buf) {
            Ok(Some(packet)) => {
                assert!(before - buf.len() >= 2, "a packet is at least two bytes");
                round_trip(&packet, &decoder);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) must not consume");
                return;
            }
            Err(error) => {
                assert!(error.reason_code().is_error(), "{error:?}");
                return;
            }
        }
    }
}

/// decode(encode(p)) == p, in the version the stream negotiated.
fn round_trip(packet: &Packet, decoder: &Decoder) {
    let version = match packet {
        Packet::Connect(connect) => connect.protocol,
        _ => decoder.version().expect("version is known after CONNECT"),
    };
    let mut bytes = BytesMut::new();
    encode(packet, version, &mut bytes).expect("a decoded packet encodes");
    assert_eq!(encoded_len(packet, version), Ok(bytes.len()));
    let mut again = match packet {
        Packet::Connect(_) => Decoder::new(MAX_PACKET_SIZE_LIMIT),
        _ => Decoder::with_version(version, MAX_PACKET_SIZE_LIMIT),
    };
    let decoded = again.decode(&mut bytes);
    assert_eq!(decoded.as_ref(), Ok(&Some(packet.clone())));
    assert!(bytes.is_empty());
}
