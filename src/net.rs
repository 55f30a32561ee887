//! The addresses at which peers can reach this machine's Syncthing, exchanged while pairing so
//! that the first connection needs no discovery.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Syncthing address strings (`tcp://ip:port`) for every address of an interface that is up,
/// routable ones first and loopback last (loopback only helps peers on this same host, and a
/// wrong endpoint is harmless: Syncthing checks the device ID on every connection).
pub fn sync_addresses(port: u16) -> Vec<String> {
    let mut ips = interface_ips();
    ips.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6()));
    ips.dedup();
    ips.into_iter().map(|ip| format!("tcp://{}", SocketAddr::new(ip, port))).collect()
}

fn interface_ips() -> Vec<IpAddr> {
    let mut found = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
        }
        let mut cursor = list;
        while let Some(entry) = cursor.as_ref() {
            cursor = entry.ifa_next;
            let up = entry.ifa_flags & (libc::IFF_UP as libc::c_uint) != 0;
            if !up || entry.ifa_addr.is_null() {
                continue;
            }
            if let Some(ip) = socket_ip(entry.ifa_addr) {
                let name = CStr::from_ptr(entry.ifa_name).to_string_lossy();
                if usable(&ip) && !name.starts_with("docker") {
                    found.push(ip);
                }
            }
        }
        libc::freeifaddrs(list);
    }
    found
}

/// # Safety
/// `addr` must point to a valid sockaddr as returned by getifaddrs.
unsafe fn socket_ip(addr: *const libc::sockaddr) -> Option<IpAddr> {
    match (*addr).sa_family as libc::c_int {
        libc::AF_INET => {
            let v4 = &*(addr as *const libc::sockaddr_in);
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))))
        }
        libc::AF_INET6 => {
            let v6 = &*(addr as *const libc::sockaddr_in6);
            Some(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// Link-local IPv6 needs a zone to be dialled, which a peer cannot know; skip it.
fn usable(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_link_local(),
        IpAddr::V6(v6) => !v6.is_unspecified() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_loopback_last_with_the_port() {
        let addresses = sync_addresses(22123);
        assert!(!addresses.is_empty());
        assert!(addresses.iter().all(|a| a.starts_with("tcp://") && a.ends_with(":22123")));
        let first_loopback = addresses.iter().position(|a| a.contains("127.0.0.1") || a.contains("[::1]"));
        if let Some(i) = first_loopback {
            assert!(addresses[i..].iter().all(|a| a.contains("127.0.0.1") || a.contains("[::1]")));
        }
    }

    #[test]
    fn skips_unusable_addresses() {
        assert!(!usable(&"fe80::1".parse().unwrap()));
        assert!(!usable(&"0.0.0.0".parse().unwrap()));
        assert!(usable(&"192.168.1.20".parse().unwrap()));
        assert!(usable(&"::1".parse().unwrap()));
    }
}
