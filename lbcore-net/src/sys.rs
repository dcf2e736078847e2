//! The system calls the safe crates (`socket2`, `netlink-sys`, `std`) do not cover, each behind
//! a safe function. This is the only module of the crate allowed `unsafe`; every block says
//! why it is sound in a `// SAFETY:` comment.
//!
//! - [`poll`]: `poll(2)` over a slice of [`libc::pollfd`];
//! - [`recvmsg`]: `recvmsg(2)` with the source address and the control messages (IPv6 raw
//!   sockets report the destination and the hop limit only there); parse the control bytes
//!   with [`crate::vrrp::rx::parse_cmsgs`], which is safe code;
//! - [`send_v6_from`]: `sendmsg(2)` with an `IPV6_PKTINFO` control message choosing the source
//!   address of an IPv6 packet;
//! - [`setsockopt_int`]: integer socket options socket2 has no setter for;
//! - [`packet_socket`]: an `AF_PACKET` socket bound to one interface (sending whole Ethernet
//!   frames);
//! - [`kill_process_group`]: `kill(2)` on a process group (a hung script and its children).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use socket2::{SockAddr, SockAddrStorage, Socket};

/// `poll(2)`: wait until one of `fds` is ready or `timeout_ms` passed (-1: forever). Returns
/// the number of entries with a nonzero `revents`. `EINTR` is reported as zero ready entries.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    let n = libc::nfds_t::try_from(fds.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fds` is a valid, exclusively borrowed array of `n` pollfd structures, which the
    // kernel only reads (fd, events) and writes (revents) within those bounds.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), n, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    // Non-negative here.
    Ok(rc as usize)
}

/// What [`recvmsg`] received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes written to the data buffer.
    pub len: usize,
    /// Bytes of control messages written to the control buffer.
    pub control_len: usize,
    /// The packet was longer than the data buffer (`MSG_TRUNC`).
    pub truncated: bool,
    /// The sender's address, for IP sockets.
    pub src: Option<SocketAddr>,
}

/// `recvmsg(2)` without blocking (`MSG_DONTWAIT`): one datagram into `buf`, its control
/// messages into `control`.
pub fn recvmsg(fd: &impl AsRawFd, buf: &mut [u8], control: &mut [u8]) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let storage = SockAddrStorage::zeroed();
    // SAFETY: msghdr is a plain C struct for which all-zero bytes are a valid value.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    let mut name = storage;
    msg.msg_name = (&raw mut name).cast();
    msg.msg_namelen = name.size_of();
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    // SAFETY: every pointer in `msg` refers to a live, exclusively borrowed buffer of the
    // length given next to it (`buf` through `iov`, `name`, `control`); the kernel writes
    // within those lengths only and updates the lengths in `msg`.
    let rc = unsafe { libc::recvmsg(fd.as_raw_fd(), &raw mut msg, libc::MSG_DONTWAIT) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let namelen = msg.msg_namelen;
    // SAFETY: the kernel initialised `namelen` bytes of the storage (zeroed beforehand, so
    // any byte is initialised anyway) with a socket address of the socket's family.
    let src = unsafe { SockAddr::new(name, namelen) }.as_socket();
    // rc >= 0 here; msg_controllen is at most the buffer length we passed.
    Ok(Received {
        len: (rc as usize).min(buf.len()),
        control_len: (msg.msg_controllen as usize).min(control.len()),
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        src,
    })
}

/// `sendmsg(2)` of `payload` on an IPv6 socket to `dst`, with an `IPV6_PKTINFO` control
/// message setting the source address (and the outgoing interface, if `ifindex` is not 0).
pub fn send_v6_from(
    fd: &impl AsRawFd,
    payload: &[u8],
    dst: SocketAddrV6,
    src: Ipv6Addr,
    ifindex: u32,
) -> io::Result<usize> {
    let dst = SockAddr::from(dst);
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    let info = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr {
            s6_addr: src.octets(),
        },
        ipi6_ifindex: ifindex,
    };
    // Room for one control message with an in6_pktinfo, aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: CMSG_SPACE only computes a size from its argument.
    let space = unsafe { libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) } as usize;
    if space > size_of::<[u64; 8]>() {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: msghdr is a plain C struct for which all-zero bytes are a valid value.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = dst.as_ptr().cast_mut().cast();
    msg.msg_namelen = dst.len();
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` describes `control` (8-byte aligned, `space` <= its size, checked above),
    // so CMSG_FIRSTHDR returns a pointer inside it with room for the header and CMSG_DATA
    // room for `space - header` >= size_of::<in6_pktinfo>() bytes; the writes are unaligned
    // writes of plain values within that buffer.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        if cmsg.is_null() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
        (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
        (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>(), info);
    }
    // SAFETY: every pointer in `msg` refers to a live buffer of the length given next to it
    // (`dst`, `payload` through `iov`, `control`), which the kernel only reads.
    let rc = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, libc::MSG_DONTWAIT) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // Non-negative here.
    Ok(rc as usize)
}

/// `setsockopt(2)` with an `int` value.
pub fn setsockopt_int(fd: &impl AsRawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    let v: libc::c_int = value;
    // SAFETY: the option value is a live c_int and its exact size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&raw const v).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// An `AF_PACKET` / `SOCK_RAW` socket bound to interface `ifindex` with protocol 0: it
/// receives nothing and sends whole Ethernet frames (`send`) out of that interface as they
/// are. Non-blocking, close-on-exec.
pub fn packet_socket(ifindex: u32) -> io::Result<Socket> {
    let index = i32::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: plain system call with constant arguments; the returned descriptor is checked.
    let fd: RawFd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is a plain C struct for which all-zero bytes are a valid value.
    let mut ll: libc::sockaddr_ll = unsafe { zeroed() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = 0;
    ll.sll_ifindex = index;
    // SAFETY: `ll` is a live sockaddr_ll and its exact size is passed with it.
    let rc = unsafe {
        libc::bind(
            owned.as_raw_fd(),
            (&raw const ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Socket::from(owned))
}

/// `kill(2)` the process group `pgid` (a child spawned with `process_group(0)`) with `signal`.
/// A group that no longer exists is not an error.
pub fn kill_process_group(pgid: u32, signal: i32) -> io::Result<()> {
    let pid = i32::try_from(pgid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    if pid <= 1 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: plain system call on integers; a negative pid names the process group.
    let rc = unsafe { libc::kill(-pid, signal) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(e);
    }
    Ok(())
}
