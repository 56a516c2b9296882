//! FerrumQ broker library: the MQTT codec, the broker's configuration and, in later modules, the broker itself.
#![deny(unsafe_code)]

pub mod alloc;
pub mod codec;
pub mod config;
