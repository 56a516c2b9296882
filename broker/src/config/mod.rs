//! Broker configuration (filled by the config work).
