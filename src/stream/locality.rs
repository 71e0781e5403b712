//! Whether a connected socket's peer runs on this host.
//!
//! The channel polls for a reply from such a peer every time it waits
//! (`channel::spin` says why: a busy stock server on the same host needs
//! its clients' CPUs kept busy, and a loopback round trip fits in the
//! polling budget); for a peer elsewhere it backs off. A Unix socket's peer
//! is always here; a TCP peer is when its address is a loopback one or our
//! own end's. Hands [`peer_on_this_host`] to the socket reader, which
//! answers [`ReadHalf::peer_on_this_host`](super::ReadHalf::peer_on_this_host).

use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;

/// True when the peer of the connected socket `fd` runs on this host. A
/// socket whose addresses cannot be read counts as elsewhere (the cautious
/// answer: its replies' polling backs off).
pub(super) fn peer_on_this_host(fd: RawFd) -> bool {
    match (address(fd, libc::getsockname), address(fd, libc::getpeername)) {
        (Some(Address::Unix), _) | (_, Some(Address::Unix)) => true,
        (Some(Address::Ip(ours)), Some(Address::Ip(theirs))) => ip_on_this_host(ours, theirs),
        _ => false,
    }
}

/// A peer at `theirs`, reached from our end at `ours`, runs on this host:
/// a loopback address (an IPv4-mapped one included), or our own.
pub(super) fn ip_on_this_host(ours: IpAddr, theirs: IpAddr) -> bool {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let theirs = canonical(theirs);
    theirs.is_loopback() || theirs == canonical(ours)
}

/// The family and, for IP, the address of one end of a socket.
enum Address {
    Unix,
    Ip(IpAddr),
}

/// `getsockname` or `getpeername` of `fd`, as far as it matters here.
fn address(
    fd: RawFd,
    get: unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int,
) -> Option<Address> {
    let mut storage = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is a writable sockaddr_storage of `len` bytes, the
    // largest address any family returns; the kernel writes at most `len`
    // bytes and reports how many.
    let rc = unsafe { get(fd, storage.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return None;
    }
    // SAFETY: zeroed, then (partly) written by the kernel: every byte is
    // initialized, and any bit pattern is a valid sockaddr_storage.
    let storage = unsafe { storage.assume_init() };
    match libc::c_int::from(storage.ss_family) {
        libc::AF_UNIX => Some(Address::Unix),
        libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: an AF_INET address of sockaddr_in's size, inside a
            // sockaddr_storage, which is aligned for every family.
            let sin = unsafe { &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(Address::Ip(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))))
        }
        libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for AF_INET6 and sockaddr_in6.
            let sin6 = unsafe { &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(Address::Ip(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn loopback_and_our_own_address_are_this_host_others_are_not() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let here = ip("10.1.2.3");
        assert!(ip_on_this_host(here, ip("127.0.0.1")));
        assert!(ip_on_this_host(here, ip("127.8.9.10")));
        assert!(ip_on_this_host(ip("::1"), ip("::1")));
        assert!(ip_on_this_host(here, ip("::ffff:127.0.0.1")), "IPv4-mapped loopback");
        assert!(ip_on_this_host(here, ip("10.1.2.3")), "our own address");
        assert!(ip_on_this_host(ip("::ffff:10.1.2.3"), ip("10.1.2.3")), "our own, mapped");
        assert!(!ip_on_this_host(here, ip("10.1.2.4")));
        assert!(!ip_on_this_host(ip("2001:db8::1"), ip("2001:db8::2")));
        assert!(!ip_on_this_host(here, ip("::ffff:10.1.2.4")));
    }

    #[test]
    fn sockets_to_a_loopback_peer_or_over_unix_are_this_host() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert!(peer_on_this_host(client.as_raw_fd()));
        assert!(peer_on_this_host(server.as_raw_fd()));
        let (a, _b) = UnixStream::pair().unwrap();
        assert!(peer_on_this_host(a.as_raw_fd()));
        // Not a socket: its addresses cannot be read, so elsewhere.
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(!peer_on_this_host(file.as_raw_fd()));
    }
}
