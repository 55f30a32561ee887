//! Choosing ports: the GUI/REST port on loopback and the sync listen port, each picked free at
//! `init` and persisted, so several roots on one host never collide.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use rand::Rng;

/// Ports are drawn from a range below Linux's ephemeral range (32768+), so outgoing connections
/// of other programs never squat on a port we recorded.
const RANGE: std::ops::RangeInclusive<u16> = 20_000..=32_000;
const ATTEMPTS: usize = 200;

/// Whether nothing listens on `127.0.0.1:port` (TCP), judged by binding it for a moment.
pub fn loopback_tcp_free(port: u16) -> bool {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok()
}

/// Whether `port` is free on every interface for TCP, and for UDP too when `udp` (QUIC).
pub fn sync_port_free(port: u16, udp: bool) -> bool {
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    TcpListener::bind(any).is_ok() && (!udp || UdpSocket::bind(any).is_ok())
}

/// A random port in our range for which `free` holds and that is not in `taken`.
pub fn pick(taken: &[u16], free: impl Fn(u16) -> bool) -> Option<u16> {
    let mut rng = rand::rng();
    (0..ATTEMPTS).map(|_| rng.random_range(RANGE)).find(|p| !taken.contains(p) && free(*p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_not_free_and_is_never_picked() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!loopback_tcp_free(port));
        let picked = pick(&[port], loopback_tcp_free).unwrap();
        assert_ne!(picked, port);
        assert!(RANGE.contains(&picked));
    }
}
