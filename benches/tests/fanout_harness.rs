//! What the fan-out benchmark's operation leaves behind: its timing means something only if
//! routing really leaves ready-to-write bytes in every subscriber's queue (issue #4's
//! definition of a fan-out operation), and the writers then really write them.

use ferrumq_benches::fanout::FanoutHarness;
use ferrumq_broker::codec::QoS;

#[test]
fn routing_leaves_every_subscriber_a_queued_message_with_its_head_encoded() {
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let mut harness = FanoutHarness::new(100, qos, 1024);
        harness.receive(3);
        for _ in 0..3 {
            assert_eq!(harness.route_received(), 100);
        }
        let queued = harness.queued_ready();
        assert_eq!(queued.len(), 100);
        assert!(
            queued.iter().all(|&(len, ready)| len == 3 && ready),
            "{qos:?}: {queued:?}"
        );
        // The writers take everything: per subscriber three PUBLISH heads and payloads.
        let written = harness.write_all();
        assert!(
            written >= 100 * 3 * 1024,
            "{qos:?}: {written} bytes written"
        );
        assert!(harness.queued_ready().iter().all(|&(len, _)| len == 0));
    }
}
