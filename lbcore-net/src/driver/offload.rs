//! Software fallbacks for the offloads a Linux sender leaves to the "hardware": completing a
//! partial (`CHECKSUM_PARTIAL`) L4 checksum, and segmenting a TCP GSO super-frame into
//! MTU-sized segments. Safe code on byte slices; used by the `AF_PACKET` driver, where a veth
//! peer with offloads on hands such frames to packet sockets.
//!
//! Segmentation follows the kernel's `tcp_gso_segment` / `inet_gso_segment`: every segment
//! gets the headers of the super-frame with the IPv4 total length (and an ID incremented per
//! segment) or the IPv6 payload length fixed, the TCP sequence number advanced by the payload
//! before it, CWR only on the first segment, FIN and PSH only on the last, and full IPv4
//! header and TCP checksums. Supported: Ethernet + IPv4 (with options) or IPv6 without
//! extension headers + TCP (with options). Anything else is refused ([`GsoError`]).

/// `virtio_net_hdr` as `PACKET_VNET_HDR` puts it before each received frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`.
    pub gso_type: u8,
    /// Length of the headers (Ethernet to L4).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts, from the start of the frame.
    pub csum_start: u16,
    /// Where the checksum goes, from `csum_start`.
    pub csum_offset: u16,
}

/// Size of a `virtio_net_hdr`.
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`.
pub const VNET_F_NEEDS_CSUM: u8 = 0x01;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const VNET_GSO_NONE: u8 = 0x00;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const VNET_GSO_TCPV4: u8 = 0x01;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const VNET_GSO_TCPV6: u8 = 0x04;
/// `VIRTIO_NET_HDR_GSO_ECN` (a flag on the type).
pub const VNET_GSO_ECN: u8 = 0x80;

impl VnetHdr {
    /// Parse (host byte order, as `AF_PACKET` writes it on little-endian hosts and on
    /// big-endian hosts alike for the legacy header).
    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = b.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }
}

/// Add `data` to a ones'-complement sum (big-endian 16-bit words, an odd last byte padded
/// with zero) in a wide accumulator.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // chunks_exact(8) yields 8-byte slices.
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = acc.overflowing_add(w);
        acc = s + u64::from(carry);
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Fold a wide sum to 16 bits and complement it: the checksum field value.
pub fn fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Complete a partial checksum in place: sum `frame[csum_start..]` (whose checksum field
/// already holds the pseudo-header sum) and store the folded result at `csum_start +
/// csum_offset` (0 becomes 0xffff, as the kernel's `skb_checksum_help` does). `false` if the
/// offsets do not fit the frame.
pub fn complete_partial(frame: &mut [u8], csum_start: usize, csum_offset: usize) -> bool {
    let at = csum_start.saturating_add(csum_offset);
    if csum_start >= frame.len() || at.saturating_add(2) > frame.len() {
        return false;
    }
    let c = fold(sum(&frame[csum_start..], 0));
    let c = if c == 0 { 0xffff } else { c };
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}

/// Why a GSO frame was not segmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoError {
    /// Not Ethernet + IPv4/IPv6 + TCP, an IPv6 extension header, or a GSO type other than TCP.
    Unsupported,
    /// Lengths that do not add up.
    Malformed,
    /// A segment does not fit the output buffer.
    TooBig,
}

/// The layout of a TCP super-frame, found once by [`TcpGso::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpGso {
    l3: usize,
    l4: usize,
    hdr_len: usize,
    v4: bool,
    mss: usize,
    payload: usize,
}

impl TcpGso {
    /// Parse an Ethernet frame holding a TCP super-frame cut into `gso_size`-byte segments.
    pub fn parse(frame: &[u8], gso_size: u16) -> Result<TcpGso, GsoError> {
        let ethertype = u16::from_be_bytes([
            *frame.get(12).ok_or(GsoError::Malformed)?,
            *frame.get(13).ok_or(GsoError::Malformed)?,
        ]);
        let l3 = 14;
        let (v4, l4) = match ethertype {
            0x0800 => {
                let ihl = usize::from(frame.get(l3).ok_or(GsoError::Malformed)? & 0x0f) * 4;
                if ihl < 20 || frame.get(l3 + 9) != Some(&6) {
                    return Err(GsoError::Unsupported);
                }
                (true, l3 + ihl)
            }
            0x86dd => {
                if frame.get(l3 + 6) != Some(&6) {
                    return Err(GsoError::Unsupported);
                }
                (false, l3 + 40)
            }
            _ => return Err(GsoError::Unsupported),
        };
        let doff = usize::from(frame.get(l4 + 12).ok_or(GsoError::Malformed)? >> 4) * 4;
        let hdr_len = l4 + doff;
        if doff < 20 || hdr_len > frame.len() || gso_size == 0 {
            return Err(GsoError::Malformed);
        }
        Ok(TcpGso {
            l3,
            l4,
            hdr_len,
            v4,
            mss: usize::from(gso_size),
            payload: frame.len() - hdr_len,
        })
    }

    /// Number of segments.
    pub fn segments(&self) -> usize {
        self.payload.div_ceil(self.mss).max(1)
    }

    /// Write segment `k` of `frame` into `out`; returns its length.
    pub fn segment(&self, frame: &[u8], k: usize, out: &mut [u8]) -> Result<usize, GsoError> {
        let n = self.segments();
        if k >= n {
            return Err(GsoError::Malformed);
        }
        let off = k * self.mss;
        let chunk = self.mss.min(self.payload - off);
        let len = self.hdr_len + chunk;
        let out = out.get_mut(..len).ok_or(GsoError::TooBig)?;
        let src = frame.get(..self.hdr_len).ok_or(GsoError::Malformed)?;
        out[..self.hdr_len].copy_from_slice(src);
        let pay = frame
            .get(self.hdr_len + off..self.hdr_len + off + chunk)
            .ok_or(GsoError::Malformed)?;
        out[self.hdr_len..].copy_from_slice(pay);
        let (l3, l4) = (self.l3, self.l4);
        let l4_len = len - l4;
        // IP header.
        let pseudo = if self.v4 {
            let tot = u16::try_from(len - l3).map_err(|_| GsoError::TooBig)?;
            out[l3 + 2..l3 + 4].copy_from_slice(&tot.to_be_bytes());
            let id = u16::from_be_bytes([out[l3 + 4], out[l3 + 5]]).wrapping_add(k as u16);
            out[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
            out[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
            let c = fold(sum(&out[l3..l4], 0));
            out[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            sum(&out[l3 + 12..l3 + 20], 6 + l4_len as u64)
        } else {
            let pl = u16::try_from(len - l3 - 40).map_err(|_| GsoError::TooBig)?;
            out[l3 + 4..l3 + 6].copy_from_slice(&pl.to_be_bytes());
            sum(&out[l3 + 8..l3 + 40], 6 + l4_len as u64)
        };
        // TCP header.
        let seq =
            u32::from_be_bytes([out[l4 + 4], out[l4 + 5], out[l4 + 6], out[l4 + 7]]).wrapping_add(off as u32);
        out[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        const FIN: u8 = 0x01;
        const PSH: u8 = 0x08;
        const CWR: u8 = 0x80;
        if k + 1 < n {
            out[l4 + 13] &= !(FIN | PSH);
        }
        if k > 0 {
            out[l4 + 13] &= !CWR;
        }
        out[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        let c = fold(sum(&out[l4..], pseudo));
        out[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    fn tcp_frame(v6: bool, payload: &[u8], flags_fin_psh: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let b = if v6 {
            b.ipv6([0xfd; 16], [0xfe; 16], 64)
        } else {
            b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        };
        let mut b = b.tcp(1234, 80, 1_000_000, 65535).ack(77).cwr();
        if flags_fin_psh {
            b = b.fin().psh();
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn check(seg: &[u8]) -> (u32, Vec<u8>, bool, bool, bool) {
        let p = SlicedPacket::from_ethernet(seg).unwrap();
        let Some(TransportSlice::Tcp(t)) = p.transport else {
            panic!()
        };
        let ok = match &p.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => {
                let h = ip.header().to_header();
                assert_eq!(h.header_checksum, h.calc_header_checksum());
                t.calc_checksum_ipv4(ip.header().source(), ip.header().destination())
                    .unwrap()
                    == t.checksum()
            }
            Some(etherparse::NetSlice::Ipv6(ip)) => {
                t.calc_checksum_ipv6(ip.header().source(), ip.header().destination())
                    .unwrap()
                    == t.checksum()
            }
            _ => panic!(),
        };
        assert!(ok, "tcp checksum");
        (
            t.sequence_number(),
            t.payload().to_vec(),
            t.fin(),
            t.psh(),
            t.cwr(),
        )
    }

    #[test]
    fn segments_v4_and_v6() {
        let payload: Vec<u8> = (0..3001u32).map(|i| i as u8).collect();
        for v6 in [false, true] {
            let f = tcp_frame(v6, &payload, true);
            let g = TcpGso::parse(&f, 1000).unwrap();
            assert_eq!(g.segments(), 4);
            let mut all = Vec::new();
            for k in 0..4 {
                let mut out = [0u8; 1600];
                let n = g.segment(&f, k, &mut out).unwrap();
                let (seq, pay, fin, psh, cwr) = check(&out[..n]);
                assert_eq!(seq, 1_000_000 + 1000 * k as u32);
                assert_eq!((fin, psh), (k == 3, k == 3));
                assert_eq!(cwr, k == 0);
                all.extend(pay);
            }
            assert_eq!(all, payload);
        }
    }

    #[test]
    fn completes_partial_checksum() {
        let mut f = tcp_frame(false, b"hello world!", false);
        let good = f.clone();
        // Leave the pseudo-header sum in the field, as CHECKSUM_PARTIAL does.
        let l4 = 34;
        let tcp_len = (f.len() - l4) as u64;
        let pseudo = fold(sum(&f[26..34], 6 + tcp_len));
        f[l4 + 16..l4 + 18].copy_from_slice(&(!pseudo).to_be_bytes());
        assert_ne!(f, good);
        assert!(complete_partial(&mut f, l4, 16));
        assert_eq!(f, good);
        assert!(!complete_partial(&mut f, 100, 16));
    }
}
