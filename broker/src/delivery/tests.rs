//! The outbox's pieces: heads and small payloads in one buffer, large payloads shared.

use crate::session::SubscriptionIds;
use bytes::Bytes;

use super::*;
use crate::codec::{Decoder, Publish};
use crate::session::{Message, Session};

fn limits() -> ClientLimits {
    ClientLimits {
        version: ProtocolVersion::V3_1_1,
        inflight_window: 16,
        maximum_packet_size: u32::MAX,
        topic_alias_maximum: 0,
    }
}

fn queue(st: &mut SessionState, payload: Bytes) {
    let message = Message::pooled(
        "t/1".into(),
        QoS::AtMostOnce,
        false,
        payload,
        Default::default(),
        None,
        std::time::Instant::now(),
    )
    .unwrap();
    st.queue.push_back(Outgoing {
        message,
        qos: QoS::AtMostOnce,
        retain: false,
        subscription_ids: SubscriptionIds::None,
        shared_group: None,
    });
}

/// Decodes everything the outbox would write.
fn written_publishes(outbox: &mut Outbox, stats: &Stats) -> Vec<Publish> {
    let mut wire = Vec::new();
    outbox.drain_into(&mut wire, stats);
    let mut buf = bytes::BytesMut::from(&wire[..]);
    let mut decoder =
        Decoder::with_version(ProtocolVersion::V3_1_1, crate::codec::MAX_PACKET_SIZE_LIMIT);
    let mut out = Vec::new();
    while let Some(packet) = decoder.decode(&mut buf).unwrap() {
        match packet {
            Packet::Publish(p) => out.push(p),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(buf.is_empty(), "trailing bytes");
    out
}

#[test]
fn small_payloads_travel_in_the_buffer_as_one_piece() {
    let stats = Stats::new().unwrap();
    let session = Session::new("c".into());
    let mut st = session.state.lock();
    for i in 0..3u8 {
        queue(&mut st, Bytes::from(vec![i; 64]));
    }
    let mut outbox = Outbox::new(limits());
    outbox.collect(&mut st, &stats);
    outbox.out().list_buffered();
    assert_eq!(
        outbox.out().chunks.len(),
        1,
        "three heads and payloads in one piece"
    );
    let got = written_publishes(&mut outbox, &stats);
    assert_eq!(got.len(), 3);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(&p.payload[..], &vec![i as u8; 64][..]);
    }
}

#[test]
fn large_payloads_are_shared_not_copied() {
    let stats = Stats::new().unwrap();
    let session = Session::new("c".into());
    let mut st = session.state.lock();
    let payload = Bytes::from(vec![9u8; INLINE_PAYLOAD_MAX + 1]);
    queue(&mut st, payload.clone());
    let mut outbox = Outbox::new(limits());
    outbox.collect(&mut st, &stats);
    outbox.out().list_buffered();
    let shared = outbox.out().chunks.iter().any(|c| match c {
        Chunk::Payload(m) => {
            m.payload.as_ptr() == payload.as_ptr() && m.payload.len() == payload.len()
        }
        Chunk::Head(_) => false,
    });
    assert!(shared, "the payload piece is the message's own bytes");
    let got = written_publishes(&mut outbox, &stats);
    assert_eq!(got[0].payload, payload);
}

#[test]
fn inlining_never_grows_the_buffer() {
    let stats = Stats::new().unwrap();
    let session = Session::new("c".into());
    let mut st = session.state.lock();
    let mut outbox = Outbox::new(limits());
    let capacity = outbox.out().buf.capacity();
    // More small messages than the buffer holds inline: the rest go as shared pieces.
    let n = capacity / INLINE_PAYLOAD_MAX + 8;
    for _ in 0..n {
        queue(&mut st, Bytes::from(vec![1u8; INLINE_PAYLOAD_MAX]));
    }
    while outbox.collect(&mut st, &stats) {}
    assert!(st.queue.is_empty());
    assert_eq!(
        outbox.out().buf.capacity(),
        capacity,
        "the buffer did not grow"
    );
    assert!(outbox
        .out()
        .chunks
        .iter()
        .any(|c| matches!(c, Chunk::Payload(_))));
    assert_eq!(written_publishes(&mut outbox, &stats).len(), n);
}

#[test]
fn an_outbox_with_nothing_to_write_holds_no_write_buffer() {
    let stats = Stats::new().unwrap();
    let session = Session::new("c".into());
    let mut st = session.state.lock();
    queue(&mut st, Bytes::from_static(b"x"));
    let mut outbox = Outbox::new(limits());
    outbox.collect(&mut st, &stats);
    assert!(
        outbox.pending.is_some(),
        "a buffer is taken for the bytes to write"
    );
    outbox.release_buffer();
    assert!(outbox.pending.is_some(), "it is kept while bytes wait");
    assert_eq!(written_publishes(&mut outbox, &stats).len(), 1);
    outbox.release_buffer();
    assert!(
        outbox.pending.is_none(),
        "once written, the buffer and its piece list go back to the pool"
    );
}
