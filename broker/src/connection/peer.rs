//! A client's address, as a connection keeps it for its logs.

use std::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

/// A client's address in 16 bytes rather than `SocketAddr`'s 32, which every connection,
/// asleep or awake, would pay for (issue #4: bytes per idle connection). IPv6 addresses, the
/// rarer kind among devices, are boxed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Peer {
    V4(SocketAddrV4),
    V6(Box<SocketAddrV6>),
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Peer {
        match addr {
            SocketAddr::V4(v4) => Peer::V4(v4),
            SocketAddr::V6(v6) => Peer::V6(Box::new(v6)),
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::V4(v4) => v4.fmt(f),
            Peer::V6(v6) => v6.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_prints_as_its_socket_address_and_stays_small() {
        for text in ["192.0.2.7:1883", "[2001:db8::1]:8883"] {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(Peer::from(addr).to_string(), text);
        }
        assert!(std::mem::size_of::<Peer>() <= 16);
    }
}
