//! The load generator's receive path: finds MQTT 3.1.1 PUBLISH packets in a read buffer by
//! their framing alone, without decoding them into packets.
//!
//! A subscriber of the load generator receives millions of PUBLISH packets a second and needs
//! only their QoS, packet identifier, topic and payload. Decoding each into a `Packet` (a
//! 280-byte value moved through several calls, views split off the buffer, the topic checked
//! as UTF-8) was about two fifths of the load generator's CPU in a fan-out run, CPU the broker
//! under test then did not get. Every other packet type is left to the full decoder.
//!
//! Framing is checked (remaining length, topic length, packet identifier within the packet);
//! content is not: the broker's own tests check what it sends.

use std::io;
use std::ops::Range;

/// A PUBLISH found at the front of a buffer, as ranges of that buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedPublish {
    /// Bytes of the whole packet.
    pub len: usize,
    pub qos: u8,
    /// 0 for QoS 0.
    pub packet_id: u16,
    pub topic: Range<usize>,
    pub payload: Range<usize>,
}

/// What is at the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Not a whole packet yet.
    Incomplete,
    Publish(ScannedPublish),
    /// Another packet type: for the full decoder.
    Other,
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed PUBLISH: {what}"),
    )
}

/// Looks at the packet at the front of `buf`.
pub fn scan(buf: &[u8]) -> io::Result<Scan> {
    let Some(&first) = buf.first() else {
        return Ok(Scan::Incomplete);
    };
    if first >> 4 != 3 {
        return Ok(Scan::Other);
    }
    let qos = (first >> 1) & 0b11;
    if qos == 3 {
        return Err(malformed("QoS 3"));
    }
    // Remaining Length: at most four bytes of seven bits each (section 2.2.3).
    let mut remaining = 0usize;
    let mut header = 1;
    loop {
        let Some(&byte) = buf.get(header) else {
            return Ok(Scan::Incomplete);
        };
        remaining |= usize::from(byte & 0x7F) << (7 * (header - 1));
        header += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if header > 4 {
            return Err(malformed("remaining length longer than four bytes"));
        }
    }
    let len = header + remaining;
    if buf.len() < len {
        return Ok(Scan::Incomplete);
    }
    let body = header..len;
    let u16_at = |at: usize| -> io::Result<u16> {
        if at + 2 > body.end {
            return Err(malformed("field past the end of the packet"));
        }
        Ok(u16::from_be_bytes([buf[at], buf[at + 1]]))
    };
    let topic_len = usize::from(u16_at(body.start)?);
    let topic = body.start + 2..body.start + 2 + topic_len;
    if topic.end > body.end {
        return Err(malformed("topic past the end of the packet"));
    }
    let (packet_id, payload_start) = if qos == 0 {
        (0, topic.end)
    } else {
        (u16_at(topic.end)?, topic.end + 2)
    };
    Ok(Scan::Publish(ScannedPublish {
        len,
        qos,
        packet_id,
        topic,
        payload: payload_start..len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use ferrumq_broker::codec::{encode, Packet, ProtocolVersion, Publish, QoS};

    fn wire(topic: &str, qos: QoS, packet_id: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let publish = Publish {
            topic: topic.into(),
            qos,
            packet_id,
            payload: Bytes::copy_from_slice(payload),
            ..Publish::default()
        };
        encode(&Packet::Publish(publish), ProtocolVersion::V3_1_1, &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn finds_what_the_codec_encoded_at_every_qos_and_size() {
        for (qos, id) in [
            (QoS::AtMostOnce, 0),
            (QoS::AtLeastOnce, 7),
            (QoS::ExactlyOnce, 65535),
        ] {
            for size in [0usize, 1, 64, 200, 20_000] {
                let payload: Vec<u8> = (0..size).map(|i| i as u8).collect();
                let bytes = wire("a/b/c", qos, id, &payload);
                let Scan::Publish(p) = scan(&bytes).unwrap() else {
                    panic!("not found: qos {qos:?} size {size}");
                };
                assert_eq!(p.len, bytes.len());
                assert_eq!((p.qos, p.packet_id), (qos.as_u8(), id));
                assert_eq!(&bytes[p.topic], b"a/b/c");
                assert_eq!(&bytes[p.payload], &payload[..]);
            }
        }
    }

    #[test]
    fn a_partial_packet_is_incomplete_at_every_cut() {
        let bytes = wire("t", QoS::AtLeastOnce, 1, &[9; 300]);
        for cut in 0..bytes.len() {
            assert_eq!(
                scan(&bytes[..cut]).unwrap(),
                Scan::Incomplete,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn other_packets_are_left_to_the_decoder_and_bad_framing_is_an_error() {
        assert_eq!(scan(&[0x90, 0x03, 0, 1, 0]).unwrap(), Scan::Other); // SUBACK
        assert!(scan(&[0x36, 0x02, 0, 0]).is_err(), "QoS 3");
        assert!(
            scan(&[0x30, 0x03, 0, 9, b'x']).is_err(),
            "topic longer than the packet"
        );
        assert!(
            scan(&[0x32, 0x03, 0, 1, b'x']).is_err(),
            "packet id past the end"
        );
        assert!(
            scan(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]).is_err(),
            "five-byte length"
        );
    }
}
