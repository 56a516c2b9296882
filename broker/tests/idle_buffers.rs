//! An idle connection holds no I/O buffer (issue #4): read and write buffers are taken from
//! their pools only while there is something to read or write, and given back after.
//!
//! Its own test binary, because the pools are process-wide: other tests' connections would
//! hold buffers while this one counts.
mod support;

use std::time::Duration;

use ferrumq_broker::codec::*;
use ferrumq_broker::pool::{self, PoolStats};
use support::*;

/// The pools' counters are process-wide: the tests of this binary take turns.
static POOLS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Buffers taken from a pool and not given back.
fn outstanding(stats: PoolStats) -> u64 {
    stats.gets - stats.returns - stats.discards
}

/// Reads `read` until it gives `want` or two seconds pass; returns the last value read.
async fn read_until<T: PartialEq>(want: T, mut read: impl FnMut() -> T) -> T {
    let mut last = read();
    for _ in 0..200 {
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        last = read();
    }
    last
}

/// Waits (bounded) for every buffer to come back: a client can see the broker's last write
/// before the connection task has returned the buffer that carried it.
async fn wait_for_all_returned() -> (u64, u64) {
    read_until((0, 0), || {
        (
            outstanding(pool::read_buffers().stats()),
            outstanding(pool::write_buffers().stats()),
        )
    })
    .await
}

#[tokio::test]
async fn idle_connections_hold_no_read_or_write_buffer() {
    let _turn = POOLS.lock().await;
    let broker = start().await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let version = if i % 2 == 0 {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V3_1_1
        };
        let mut client = RawClient::connect(&broker, version, &format!("idle-{i}")).await;
        client.subscribe(1, "idle/#", QoS::AtLeastOnce).await;
        clients.push(client);
    }
    // Traffic through every connection: a QoS 1 publish fanned out to all twenty.
    let mut publisher = RawClient::connect(&broker, ProtocolVersion::V5, "idle-pub").await;
    publisher
        .publish("idle/x", &[7; 3000], QoS::AtLeastOnce, 9, false)
        .await;
    assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
    for client in &mut clients {
        let got = client.expect_publish().await;
        assert_eq!(got.payload.len(), 3000);
        client
            .send(&Packet::PubAck(PubResponse {
                packet_id: got.packet_id,
                ..Default::default()
            }))
            .await;
    }
    assert!(
        pool::read_buffers().stats().gets >= 20,
        "reads use the pool"
    );
    assert!(
        pool::write_buffers().stats().gets >= 20,
        "writes use the pool"
    );
    assert_eq!(
        wait_for_all_returned().await,
        (0, 0),
        "(read, write) buffers still held by 21 idle connections"
    );

    // Half a PUBLISH: the connection keeps its read buffer (and those bytes) until the rest
    // arrives, then handles the whole packet and gives the buffer back.
    let mut wire = bytes::BytesMut::new();
    let publish = Publish {
        topic: "idle/split".into(),
        payload: bytes::Bytes::from_static(b"split across two reads"),
        ..Publish::default()
    };
    encode(&Packet::Publish(publish), ProtocolVersion::V5, &mut wire).unwrap();
    let (head, tail) = wire.split_at(6);
    publisher.send_raw(head).await;
    let held = read_until(1, || outstanding(pool::read_buffers().stats())).await;
    assert_eq!(
        held, 1,
        "the connection holding a partial packet keeps one read buffer"
    );
    publisher.send_raw(tail).await;
    for client in &mut clients {
        let got = client.expect_publish().await;
        assert_eq!(&got.payload[..], b"split across two reads");
    }
    assert_eq!(wait_for_all_returned().await, (0, 0));
    broker.shutdown().await;
}

/// Connections whose CONNECT has not arrived yet hold no read buffer either: a connection
/// storm has hundreds of them at once. (A new socket can report itself readable before any
/// byte has come; the buffer taken for that read must go back before the next wait.)
#[tokio::test]
async fn connections_waiting_for_connect_hold_no_read_buffer() {
    let _turn = POOLS.lock().await;
    let broker = start().await;
    let mut sockets = Vec::new();
    for _ in 0..50 {
        sockets.push(
            tokio::net::TcpStream::connect(broker.mqtt_addr())
                .await
                .unwrap(),
        );
    }
    // Bounded wait for the broker to accept them all and start their handshakes.
    let connections = || {
        broker
            .broker
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    read_until(50, connections).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        outstanding(pool::read_buffers().stats()),
        0,
        "read buffers held by connections that sent nothing"
    );
    drop(sockets);
    broker.shutdown().await;
}
