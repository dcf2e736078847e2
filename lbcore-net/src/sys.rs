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
//! - [`CpuPrefetch`]: the prefetch instruction, for `lbcore::Balancer::process_batch_prefetch`;
//! - [`HugePageSlice`]: a table in memory the kernel can back with 2 MiB pages.
//! - For the packet drivers (`crate::driver`): [`PacketRing`] (a `TPACKET_V3` receive ring), [`send_batch`]
//!   (`sendmmsg(2)`), [`packet_statistics`], [`tun_open`] (TUN/TAP devices) and [`setns_net`].

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

// ---------------------------------------------------------------------------------------------
// Packet drivers (`crate::driver`): TPACKET_V3 receive ring, batched send, TUN/TAP, setns.
// ---------------------------------------------------------------------------------------------

#[cfg_attr(not(feature = "afpacket"), allow(dead_code))]
/// `TPACKET_V3` (enum `tpacket_versions`).
const TPACKET_V3: i32 = 2;
#[cfg_attr(not(feature = "afpacket"), allow(dead_code))]
/// `ETH_P_ALL`, host order.
const ETH_P_ALL: u16 = 0x0003;
#[cfg_attr(not(feature = "afpacket"), allow(dead_code))]
/// Offset of `block_status` in `struct tpacket_block_desc` (version, offset_to_priv, then
/// `tpacket_hdr_v1` whose first field it is).
const BLOCK_STATUS_OFFSET: usize = 8;

#[cfg_attr(not(feature = "afpacket"), allow(dead_code))]
/// The geometry of a [`PacketRing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingGeometry {
    /// Bytes per block: a multiple of the page size, a power of two.
    pub block_size: u32,
    /// Number of blocks.
    pub block_nr: u32,
    /// Nominal frame size (the kernel requires it for the request; V3 packs frames).
    pub frame_size: u32,
    /// Retire-block timeout in milliseconds: a partly filled block is handed to user space
    /// after this long.
    pub retire_ms: u32,
}

#[cfg_attr(not(feature = "afpacket"), allow(dead_code))]
/// An `AF_PACKET` socket bound to one interface for all protocols (`ETH_P_ALL`) with a
/// `TPACKET_V3` receive ring mapped into memory, `PACKET_IGNORE_OUTGOING` set (frames sent by
/// this host, including our own, are not received) and optionally `PACKET_VNET_HDR` (each
/// frame is preceded by a `virtio_net_hdr` describing checksum and GSO state).
///
/// The ring is shared with the kernel; the only access this type gives is a whole block once
/// the kernel has handed it to user space (`TP_STATUS_USER`, read with acquire ordering), and
/// handing it back ([`PacketRing::release_block`], a release store), which needs `&mut self`
/// and so ends every borrow of the block.
pub struct PacketRing {
    fd: OwnedFd,
    map: std::ptr::NonNull<u8>,
    map_len: usize,
    block_size: usize,
    block_nr: usize,
}

// SAFETY: the mapping is owned by this value alone (no other handle to it exists in this
// process); moving it to another thread moves that exclusive ownership.
unsafe impl Send for PacketRing {}

#[cfg_attr(not(feature = "afpacket"), allow(dead_code))]
impl PacketRing {
    /// Open the socket, set it up and map the ring; bound to `ifindex` last, so no frame of
    /// another interface gets in.
    pub fn open(ifindex: u32, geo: RingGeometry, vnet_hdr: bool) -> io::Result<PacketRing> {
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
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, TPACKET_V3)?;
        if vnet_hdr {
            setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1)?;
        }
        setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)?;
        let req = libc::tpacket_req3 {
            tp_block_size: geo.block_size,
            tp_block_nr: geo.block_nr,
            tp_frame_size: geo.frame_size,
            tp_frame_nr: (u64::from(geo.block_size) * u64::from(geo.block_nr)
                / u64::from(geo.frame_size.max(1)))
            .try_into()
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            tp_retire_blk_tov: geo.retire_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        // SAFETY: `req` is a live tpacket_req3 and its exact size is passed with it.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_RX_RING,
                (&raw const req).cast(),
                size_of::<libc::tpacket_req3>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let block_size = geo.block_size as usize;
        let block_nr = geo.block_nr as usize;
        let map_len = block_size
            .checked_mul(block_nr)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a fresh shared mapping of the ring the kernel just allocated for this socket
        // (exactly `map_len` bytes); the result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                0,
            )
        };
        let p = if p == libc::MAP_FAILED {
            // MAP_LOCKED can fail under RLIMIT_MEMLOCK: retry without it.
            // SAFETY: as above.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_POPULATE,
                    fd.as_raw_fd(),
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            p
        } else {
            p
        };
        let map =
            std::ptr::NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from(io::ErrorKind::Other))?;
        let ring = PacketRing {
            fd,
            map,
            map_len,
            block_size,
            block_nr,
        };
        // SAFETY: sockaddr_ll is a plain C struct for which all-zero bytes are a valid value.
        let mut ll: libc::sockaddr_ll = unsafe { zeroed() };
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = ETH_P_ALL.to_be();
        ll.sll_ifindex = index;
        // SAFETY: `ll` is a live sockaddr_ll and its exact size is passed with it.
        let rc = unsafe {
            libc::bind(
                ring.fd.as_raw_fd(),
                (&raw const ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ring)
    }

    /// Number of blocks.
    pub fn block_count(&self) -> usize {
        self.block_nr
    }

    fn status(&self, i: usize) -> Option<&std::sync::atomic::AtomicU32> {
        if i >= self.block_nr {
            return None;
        }
        // SAFETY: `i < block_nr`, so the offset stays inside the mapping; blocks start at
        // page-aligned offsets, so the status word (offset 8) is 4-byte aligned; the kernel
        // accesses it concurrently only as a whole aligned word, which is what an atomic is.
        Some(unsafe {
            std::sync::atomic::AtomicU32::from_ptr(
                self.map
                    .as_ptr()
                    .add(i * self.block_size + BLOCK_STATUS_OFFSET)
                    .cast::<u32>(),
            )
        })
    }

    /// Block `i` if the kernel has handed it to user space, as bytes (starting with its
    /// `tpacket_block_desc`).
    pub fn user_block(&self, i: usize) -> Option<&[u8]> {
        let st = self.status(i)?.load(std::sync::atomic::Ordering::Acquire);
        if st & libc::TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: in range (checked by `status`); while the status says TP_STATUS_USER the
        // kernel does not write the block, and the acquire load above orders our reads after
        // its writes. The slice borrows `self`, and the only way to hand the block back is
        // `release_block(&mut self)`, so the slice cannot outlive user ownership.
        Some(unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(i * self.block_size), self.block_size)
        })
    }

    /// Hand block `i` back to the kernel.
    pub fn release_block(&mut self, i: usize) {
        if let Some(s) = self.status(i) {
            s.store(libc::TP_STATUS_KERNEL, std::sync::atomic::Ordering::Release);
        }
    }
}

impl AsRawFd for PacketRing {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for PacketRing {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `open`; no borrow of it can be
        // alive (they all borrow `self`).
        unsafe {
            libc::munmap(self.map.as_ptr().cast(), self.map_len);
        }
    }
}

#[cfg_attr(not(feature = "afpacket"), allow(dead_code))]
/// Most messages one [`send_batch`] system call carries.
pub const SEND_BATCH_MAX: usize = 64;

#[cfg_attr(not(feature = "afpacket"), allow(dead_code))]
/// `sendmmsg(2)` on a connected or bound packet socket: message `i` is
/// `data[i * slot..i * slot + lens[i]]`. Sends at most [`SEND_BATCH_MAX`] messages per system
/// call and loops until all are sent or one fails; returns how many were sent, or the error
/// of the first system call if it sent nothing.
pub fn send_batch(fd: &impl AsRawFd, data: &[u8], slot: usize, lens: &[u16]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < lens.len() {
        let n = (lens.len() - sent).min(SEND_BATCH_MAX);
        // SAFETY: iovec and mmsghdr are plain C structs for which all-zero bytes are valid.
        let mut iovs: [libc::iovec; SEND_BATCH_MAX] = unsafe { zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; SEND_BATCH_MAX] = unsafe { zeroed() };
        for k in 0..n {
            let i = sent + k;
            let len = usize::from(lens[i]);
            let off = i * slot;
            let Some(bytes) = data.get(off..off + len) else {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            };
            iovs[k] = libc::iovec {
                iov_base: bytes.as_ptr().cast_mut().cast(),
                iov_len: bytes.len(),
            };
            msgs[k].msg_hdr.msg_iov = &raw mut iovs[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the first `n` entries of `msgs` each point to one iovec of `iovs`, which
        // describes a live range of `data` (bounds checked above); the kernel only reads the
        // data and writes `msg_len` within `msgs`.
        let rc = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if rc < 0 {
            if sent == 0 {
                return Err(io::Error::last_os_error());
            }
            return Ok(sent);
        }
        // Non-negative here.
        let rc = rc as usize;
        sent += rc;
        if rc < n {
            break;
        }
    }
    Ok(sent)
}

#[cfg_attr(not(any(feature = "tun", feature = "tap")), allow(dead_code))]
/// Open `/dev/net/tun` and attach to (or create) interface `name` (empty: the kernel picks a
/// name) as a TUN (`tap == false`, bare IP) or TAP (Ethernet) device, without packet
/// information (`IFF_NO_PI`). Non-blocking, close-on-exec. Returns the descriptor and the
/// interface's name.
pub fn tun_open(name: &str, tap: bool) -> io::Result<(OwnedFd, String)> {
    use std::os::unix::fs::OpenOptionsExt;
    if name.len() >= libc::IFNAMSIZ || name.as_bytes().contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    // SAFETY: ifreq is a plain C struct (with a union) for which all-zero bytes are valid.
    let mut ifr: libc::ifreq = unsafe { zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
        *d = *s as libc::c_char;
    }
    let kind = if tap { libc::IFF_TAP } else { libc::IFF_TUN };
    ifr.ifr_ifru.ifru_flags = (kind | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which `ifr` is (live, exclusive).
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF as _, &raw mut ifr) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes: Vec<u8> = ifr
        .ifr_name
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    Ok((OwnedFd::from(file), String::from_utf8_lossy(&bytes).into_owned()))
}

/// `setns(2)` with `CLONE_NEWNET`: move the calling thread into the network namespace `ns`
/// refers to (an open `/run/netns/NAME` or `/proc/PID/ns/net`).
pub fn setns_net(ns: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: plain system call on a descriptor the caller keeps open for its duration.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg_attr(not(feature = "afpacket"), allow(dead_code))]
/// `getsockopt(PACKET_STATISTICS)` on a `TPACKET_V3` socket: (packets, drops) since the last
/// call (reading resets the kernel's counters).
pub fn packet_statistics(fd: &impl AsRawFd) -> io::Result<(u32, u32)> {
    // SAFETY: tpacket_stats_v3 is a plain C struct for which all-zero bytes are valid.
    let mut st: libc::tpacket_stats_v3 = unsafe { zeroed() };
    let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: `st` is a live, exclusively borrowed tpacket_stats_v3 and `len` its size; the
    // kernel writes at most `len` bytes and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&raw mut st).cast(),
            &raw mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.tp_packets, st.tp_drops))
}

/// The CPU's prefetch instruction as a [`lbcore::balancer::Prefetch`], for
/// [`lbcore::Balancer::process_batch_prefetch`] (lbcore itself forbids `unsafe`): `prefetcht0`
/// on x86_64, `prfm pldl1keep` on aarch64, nothing elsewhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuPrefetch;

impl lbcore::balancer::Prefetch for CpuPrefetch {
    #[inline(always)]
    fn prefetch<T>(&self, value: &T) {
        let p: *const T = value;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint: it reads nothing architecturally, writes nothing and
        // never faults (here the address is even a live reference). The intrinsic is declared
        // with the `sse` target feature, which every x86_64 CPU has (it is in the baseline).
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
        }
        #[cfg(target_arch = "aarch64")]
        // SAFETY: PRFM is a hint that never faults and changes no register, flag or memory; the
        // asm reads only its address operand.
        unsafe {
            core::arch::asm!("prfm pldl1keep, [{0}]", in(reg) p, options(nostack, readonly, preserves_flags));
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let _ = p;
    }
}

/// The size of a transparent huge page on x86_64 and (4 KiB granule) aarch64, and the
/// alignment [`HugePageSlice`] gives its mapping so the kernel can back it with such pages.
pub const HUGE_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// A slice of `len` values in an anonymous mapping aligned to [`HUGE_PAGE_BYTES`] and marked
/// `MADV_HUGEPAGE`, for a large table such as the connection table (hand it to
/// `lbcore::Balancer::with_storage`). With 4 KiB pages a 64 MB table spans 16,384 pages, eight
/// times the reach of the data TLB, so nearly every lookup misses the TLB as well as the cache;
/// with 2 MiB pages it spans 32. The kernel may still back parts with small pages (THP
/// disabled, memory fragmented): [`HugePageSlice::huge_page_bytes`] says how much it did back.
/// The values are written once here, before any is read.
pub struct HugePageSlice<T> {
    ptr: std::ptr::NonNull<T>,
    len: usize,
    map_len: usize,
}

// SAFETY: the mapping is owned by this value alone, as a `Box<[T]>` owns its allocation; it can
// move to or be shared with another thread exactly when `T` can.
unsafe impl<T: Send> Send for HugePageSlice<T> {}
// SAFETY: as above; shared access gives only `&[T]`.
unsafe impl<T: Sync> Sync for HugePageSlice<T> {}

impl<T: Copy> HugePageSlice<T> {
    /// Maps `len` copies of `fill` (`len` ≥ 1). Errors: `InvalidInput` for a zero or overflowing
    /// size or a `T` aligned beyond a page, and the `mmap(2)` error. `madvise(2)` failing (a
    /// kernel without transparent huge pages) is not an error: the memory is then small pages.
    pub fn new(len: usize, fill: T) -> io::Result<HugePageSlice<T>> {
        let bytes = len
            .checked_mul(size_of::<T>())
            .filter(|&b| b > 0 && std::mem::align_of::<T>() <= 4096)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let map_len = bytes
            .checked_next_multiple_of(HUGE_PAGE_BYTES)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let over = map_len
            .checked_add(HUGE_PAGE_BYTES)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a fresh private anonymous mapping; the kernel chooses the address and the
        // result is checked before use.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                over,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // mmap aligns only to the small page; map one huge page more and give back the head and
        // tail around the aligned part.
        let start = raw as usize;
        let aligned = start.next_multiple_of(HUGE_PAGE_BYTES);
        let head = aligned - start;
        let tail = over - head - map_len;
        // SAFETY: both ranges lie inside the mapping just made (head + map_len + tail = over),
        // are page-aligned (`start` and `aligned` are, and so are all the lengths), and nothing
        // refers to them.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap((aligned + map_len) as *mut libc::c_void, tail);
            }
        }
        // SAFETY: `aligned..aligned + map_len` is the part of the mapping we kept; advice never
        // changes its contents.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, map_len, libc::MADV_HUGEPAGE);
        }
        let ptr = std::ptr::NonNull::new(aligned as *mut T).ok_or_else(io::Error::last_os_error)?;
        for i in 0..len {
            // SAFETY: `i < len` and `len * size_of::<T>() <= map_len`, so the slot is inside
            // the writable mapping; it is suitably aligned (the mapping is page-aligned and
            // `T`'s alignment divides the page size, checked above); writing a `Copy` value
            // over uninitialized memory drops nothing.
            unsafe { ptr.as_ptr().add(i).write(fill) };
        }
        Ok(HugePageSlice { ptr, len, map_len })
    }
}

impl<T> HugePageSlice<T> {
    /// The bytes of this mapping the kernel backs with huge pages now (`AnonHugePages` of its
    /// entry in `/proc/self/smaps`); 0 where that file is unreadable.
    pub fn huge_page_bytes(&self) -> u64 {
        let start = self.ptr.as_ptr() as usize;
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return 0;
        };
        let mut mine = false;
        let mut huge_kib = 0u64;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if let Some((lo, hi)) = first.split_once('-')
                && let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                // The kernel may have merged the mapping with a neighbour of the same kind.
                mine = lo <= start && start < hi;
                continue;
            }
            if mine && let Some(kib) = line.strip_prefix("AnonHugePages:") {
                huge_kib += kib
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0);
            }
        }
        huge_kib * 1024
    }

    /// Gives the mapping up for the rest of the process, as `Box::leak` does: for a table that
    /// lives as long as the daemon and is borrowed by a `Balancer<'static>`.
    pub fn leak(self) -> &'static mut [T] {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: the `len` values were initialized in `new`; the mapping is never unmapped (the
        // destructor does not run), so the borrow may last for the rest of the process; it is
        // the only reference, since `self` is consumed.
        unsafe { std::slice::from_raw_parts_mut(this.ptr.as_ptr(), this.len) }
    }
}

impl<T> std::ops::Deref for HugePageSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialized values at `ptr`, alive as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> std::ops::DerefMut for HugePageSlice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for HugePageSlice<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the aligned part kept in `new`; no borrow of it is alive
        // (they all borrow `self`). `T: Copy` in `new`, so there is nothing to drop first.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.map_len);
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for HugePageSlice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugePageSlice")
            .field("len", &self.len)
            .field("map_len", &self.map_len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod huge_page_tests {
    use super::*;

    #[test]
    fn holds_its_values_aligned_and_writable() {
        let mut s = HugePageSlice::new(100_000, 7u64).expect("mmap");
        assert_eq!(s.len(), 100_000);
        assert_eq!(s.as_ptr() as usize % HUGE_PAGE_BYTES, 0);
        assert!(s.iter().all(|&v| v == 7));
        s[99_999] = 9;
        assert_eq!(s[99_999], 9);
        assert!(s.huge_page_bytes() <= s.map_len as u64);
    }

    #[test]
    fn rejects_empty_and_overflowing_sizes() {
        assert_eq!(
            HugePageSlice::new(0, 0u8).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            HugePageSlice::new(usize::MAX / 2, 0u64).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
