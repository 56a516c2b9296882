//! FerrumQ broker library: the MQTT codec, configuration, routing, sessions and the server.
#![deny(unsafe_code)]

pub mod admin;
pub mod alloc;
pub mod auth;
pub mod codec;
pub mod config;
pub mod connection;
pub mod delivery;
pub mod listeners;
pub mod metrics;
pub mod pool;
pub mod router;
pub mod server;
pub mod session;
pub mod store;
pub mod sys;
