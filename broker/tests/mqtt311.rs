//! MQTT 3.1.1 conformance: one test per server-side MUST of sections 3 and 4 that a client can
//! observe, named after its normative statement ([MQTT-x.y.z-n] becomes `mqtt_x_y_z_n_...`),
//! plus MQTT 3.1 ("MQIsdp", level 3). Every test starts its own broker on an ephemeral port and
//! talks to it through `support::RawClient`, so packets are exact and answers are checked byte
//! for byte by the codec.
mod support;

#[path = "mqtt311/util.rs"]
mod util;

#[path = "mqtt311/mqtt31.rs"]
mod mqtt31;
#[path = "mqtt311/section3_10_unsubscribe.rs"]
mod section3_10_unsubscribe;
#[path = "mqtt311/section3_12_ping_disconnect.rs"]
mod section3_12_ping_disconnect;
#[path = "mqtt311/section3_1_connect.rs"]
mod section3_1_connect;
#[path = "mqtt311/section3_2_connack.rs"]
mod section3_2_connack;
#[path = "mqtt311/section3_3_publish.rs"]
mod section3_3_publish;
#[path = "mqtt311/section3_8_subscribe.rs"]
mod section3_8_subscribe;
#[path = "mqtt311/section4_3_qos.rs"]
mod section4_3_qos;
#[path = "mqtt311/section4_4_redelivery.rs"]
mod section4_4_redelivery;
#[path = "mqtt311/section4_6_ordering.rs"]
mod section4_6_ordering;
#[path = "mqtt311/section4_7_topics.rs"]
mod section4_7_topics;
#[path = "mqtt311/section4_8_errors.rs"]
mod section4_8_errors;
