//! MQTT codec.
