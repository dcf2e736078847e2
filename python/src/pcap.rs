//! pcap files (the classic libpcap format; not pcapng), for test labs: `read_pcap`,
//! `write_pcap`, and the reading and writing behind `Balancer.replay_pcap`.
//!
//! Read: both byte orders, microsecond and nanosecond timestamps, link types Ethernet (1) and
//! raw IP (101, 228, 229). Written: little-endian, nanosecond timestamps, Ethernet or raw IP
//! (101).

use std::io::Write;
use std::path::Path;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::with_packet;
use crate::errors::PcapError;
use crate::types::Link;

const MAGIC_US: u32 = 0xa1b2_c3d4;
const MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG: u32 = 0x0a0d_0d0a;
const LINKTYPE_ETHERNET: u32 = 1;
const LINKTYPE_RAW: u32 = 101;
const LINKTYPE_IPV4: u32 = 228;
const LINKTYPE_IPV6: u32 = 229;
/// The largest record we accept (a sanity bound against corrupt lengths).
const MAX_RECORD: usize = 256 * 1024;

/// A whole capture: its link type and `(timestamp_ns, bytes)` records.
pub struct Capture {
    pub link: Link,
    pub packets: Vec<(u64, Vec<u8>)>,
}

fn bad(path: &Path, what: impl std::fmt::Display) -> PyErr {
    PcapError::new_err(format!("{}: {what}", path.display()))
}

/// Parses a capture held in memory.
pub fn parse(path: &Path, data: &[u8]) -> PyResult<Capture> {
    let header = data
        .get(..24)
        .ok_or_else(|| bad(path, "shorter than a pcap header"))?;
    let word = |b: &[u8], swap: bool| -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if swap {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let magic_le = word(&header[..4], false);
    let (swap, nanos) = match magic_le {
        MAGIC_US => (false, false),
        MAGIC_NS => (false, true),
        _ => match word(&header[..4], true) {
            MAGIC_US => (true, false),
            MAGIC_NS => (true, true),
            PCAPNG => {
                return Err(bad(
                    path,
                    "pcapng files are not supported (convert with editcap -F pcap)",
                ));
            }
            _ => return Err(bad(path, "not a pcap file (bad magic number)")),
        },
    };
    let link = match word(&header[20..24], swap) & 0x0fff_ffff {
        LINKTYPE_ETHERNET => Link::Ethernet,
        LINKTYPE_RAW | LINKTYPE_IPV4 | LINKTYPE_IPV6 => Link::Ip,
        other => {
            return Err(bad(
                path,
                format!("link type {other} not supported (Ethernet or raw IP only)"),
            ));
        }
    };
    let mut packets = Vec::new();
    let mut rest = &data[24..];
    while !rest.is_empty() {
        let rec = rest
            .get(..16)
            .ok_or_else(|| bad(path, "truncated record header"))?;
        let secs = u64::from(word(&rec[0..4], swap));
        let frac = u64::from(word(&rec[4..8], swap));
        let len = word(&rec[8..12], swap) as usize;
        if len > MAX_RECORD {
            return Err(bad(path, format!("record of {len} bytes")));
        }
        let bytes = rest
            .get(16..16 + len)
            .ok_or_else(|| bad(path, "truncated record"))?;
        let ts = secs.saturating_mul(1_000_000_000).saturating_add(if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        });
        packets.push((ts, bytes.to_vec()));
        rest = &rest[16 + len..];
    }
    Ok(Capture { link, packets })
}

pub fn read(path: &Path) -> PyResult<Capture> {
    let data = std::fs::read(path)?;
    parse(path, &data)
}

/// The capture in pcap format.
pub fn encode(capture: &Capture) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + capture.packets.iter().map(|(_, p)| 16 + p.len()).sum::<usize>());
    out.extend_from_slice(&MAGIC_NS.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(MAX_RECORD as u32).to_le_bytes());
    let linktype = match capture.link {
        Link::Ethernet => LINKTYPE_ETHERNET,
        Link::Ip => LINKTYPE_RAW,
    };
    out.extend_from_slice(&linktype.to_le_bytes());
    for (ts, p) in &capture.packets {
        let secs = u32::try_from(ts / 1_000_000_000).unwrap_or(u32::MAX);
        let ns = (ts % 1_000_000_000) as u32;
        let len = p.len() as u32;
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&ns.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

pub fn write(path: &Path, capture: &Capture) -> PyResult<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(&encode(capture))?;
    Ok(())
}

/// A forwarded packet (`data`, of link kind `from`) in the form a file of link kind `to` holds.
pub fn relink(data: &[u8], from: Link, to: Link, our_mac: [u8; 6]) -> Vec<u8> {
    match (from, to) {
        (Link::Ethernet, Link::Ethernet) | (Link::Ip, Link::Ip) => data.to_vec(),
        (Link::Ip, Link::Ethernet) => {
            let ethertype: u16 = match data.first().map(|b| b >> 4) {
                Some(6) => 0x86dd,
                _ => 0x0800,
            };
            let mut out = Vec::with_capacity(14 + data.len());
            out.extend_from_slice(&[0; 6]);
            out.extend_from_slice(&our_mac);
            out.extend_from_slice(&ethertype.to_be_bytes());
            out.extend_from_slice(data);
            out
        }
        (Link::Ethernet, Link::Ip) => {
            // Skip the Ethernet header and up to two VLAN tags.
            let mut off = 12;
            while let Some(t) = data.get(off..off + 2) {
                if t == [0x81, 0x00] || t == [0x88, 0xa8] {
                    off += 4;
                } else {
                    break;
                }
            }
            data.get(off + 2..).unwrap_or(&[]).to_vec()
        }
    }
}

/// `(timestamp_ns, packet)` records as Python sees them.
type Records<'py> = Vec<(u64, Bound<'py, PyBytes>)>;

/// Reads a pcap file: its link type and `(timestamp_ns, packet)` records.
#[pyfunction]
fn read_pcap<'py>(py: Python<'py>, path: std::path::PathBuf) -> PyResult<(Link, Records<'py>)> {
    let capture = py.detach(|| read(&path))?;
    let packets = capture
        .packets
        .iter()
        .map(|(ts, p)| (*ts, PyBytes::new(py, p)))
        .collect();
    Ok((capture.link, packets))
}

/// Writes `(timestamp_ns, packet)` records to a pcap file (nanosecond timestamps).
#[pyfunction]
#[pyo3(signature = (path, packets, link = Link::Ethernet))]
fn write_pcap(
    py: Python<'_>,
    path: std::path::PathBuf,
    packets: &Bound<'_, PyAny>,
    link: Link,
) -> PyResult<()> {
    let mut records = Vec::new();
    for item in packets.try_iter()? {
        let (ts, p): (u64, Bound<'_, PyAny>) = item?.extract()?;
        records.push((ts, with_packet(&p, <[u8]>::to_vec)?));
    }
    let capture = Capture {
        link,
        packets: records,
    };
    py.detach(|| write(&path, &capture))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(read_pcap, m)?)?;
    m.add_function(wrap_pyfunction!(write_pcap, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_both_byte_orders() {
        let cap = Capture {
            link: Link::Ip,
            packets: vec![(1_500_000_000_123, vec![0x45, 0, 0, 20]), (2, vec![])],
        };
        let bytes = encode(&cap);
        let back = parse(Path::new("x"), &bytes).unwrap();
        assert_eq!(back.link, Link::Ip);
        assert_eq!(back.packets, cap.packets);

        // A big-endian microsecond file, as some tools write it.
        let mut be = Vec::new();
        for w in [
            MAGIC_US.to_be_bytes(),
            [0, 2, 0, 4],
            [0; 4],
            [0; 4],
            65535u32.to_be_bytes(),
            1u32.to_be_bytes(),
        ] {
            be.extend_from_slice(&w);
        }
        for w in [3u32, 7, 2, 2] {
            be.extend_from_slice(&w.to_be_bytes());
        }
        be.extend_from_slice(&[0xaa, 0xbb]);
        let back = parse(Path::new("x"), &be).unwrap();
        assert_eq!(back.link, Link::Ethernet);
        assert_eq!(back.packets, vec![(3_000_007_000, vec![0xaa, 0xbb])]);
    }

    #[test]
    fn relinks_between_ethernet_and_ip() {
        let ip = vec![0x45, 1, 2, 3];
        let eth = relink(&ip, Link::Ip, Link::Ethernet, [2, 0, 0, 0, 0, 1]);
        assert_eq!(&eth[..14], &[0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        assert_eq!(relink(&eth, Link::Ethernet, Link::Ip, [0; 6]), ip);
    }
}
