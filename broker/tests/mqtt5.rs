//! MQTT 5.0 server-side conformance: one test per normative statement of sections 3 and 4 that
//! a client can observe, named after it (`mqtt_3_1_2_4_...` is [MQTT-3.1.2-4]). Statements with
//! no code of their own are named after their section. Every test starts its own broker on an
//! ephemeral port and talks to it with the raw codec client of `support`.

mod support;

mod mqtt5 {
    pub mod common;
    mod section3_10_unsubscribe;
    mod section3_14_disconnect;
    mod section3_1_connect;
    mod section3_1_will;
    mod section3_2_connack;
    mod section3_3_publish;
    mod section3_3_topic_alias;
    mod section3_8_subscribe;
    mod section4_12_auth;
    mod section4_13_errors;
    mod section4_1_session;
    mod section4_3_qos;
    mod section4_4_redelivery;
    mod section4_6_ordering;
    mod section4_7_topics;
    mod section4_8_shared;
    mod section4_9_flow_control;
}
