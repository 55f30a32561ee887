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

/// The addresses this machine can be reached at on `port`, for peers that do not use discovery
/// (the `direct` profile): every non-loopback interface address, loopback last.
pub fn local_addresses(port: u16) -> Vec<String> {
    let mut external = Vec::new();
    let mut loopback = Vec::new();
    for ip in interface_ips() {
        let url = match ip {
            std::net::IpAddr::V4(v4) => format!("tcp://{v4}:{port}"),
            std::net::IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => continue, // link-local needs a scope id
            std::net::IpAddr::V6(v6) => format!("tcp://[{v6}]:{port}"),
        };
        if ip.is_loopback() {
            loopback.push(url)
        } else {
            external.push(url)
        }
    }
    external.extend(loopback);
    external
}

fn interface_ips() -> Vec<std::net::IpAddr> {
    let mut ips = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we only read and then free exactly once.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return ips;
        }
        let mut cursor = head;
        while !cursor.is_null() {
            let entry = &*cursor;
            let up = entry.ifa_flags & (libc::IFF_UP as libc::c_uint) != 0;
            if up && !entry.ifa_addr.is_null() {
                match (*entry.ifa_addr).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(entry.ifa_addr as *const libc::sockaddr_in);
                        ips.push(std::net::IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(entry.ifa_addr as *const libc::sockaddr_in6);
                        ips.push(std::net::IpAddr::from(sin6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cursor = entry.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    ips.dedup();
    ips
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
