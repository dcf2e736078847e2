//! Netlink attributes (TLVs) of the IPVS family, built and read by hand: the family's
//! attributes are few and flat except for three nests, so a small builder and a bounds-checked
//! iterator are clearer than a typed `Nla` per attribute.
//!
//! The reader never panics on kernel bytes: short or malformed attributes end the iteration.

use netlink_packet_core::{DecodeError, Emitable, NLA_F_NESTED, NLA_TYPE_MASK, ParseableParametrized};
use netlink_packet_generic::{GenlFamily, GenlHeader};

/// `IPVS_GENL_VERSION`.
pub(crate) const IPVS_GENL_VERSION: u8 = 0x1;

/// Generic-netlink commands (`IPVS_CMD_*`).
pub(crate) mod cmd {
    pub const NEW_SERVICE: u8 = 1;
    pub const SET_SERVICE: u8 = 2;
    pub const DEL_SERVICE: u8 = 3;
    pub const GET_SERVICE: u8 = 4;
    pub const NEW_DEST: u8 = 5;
    pub const SET_DEST: u8 = 6;
    pub const DEL_DEST: u8 = 7;
    pub const GET_DEST: u8 = 8;
    pub const NEW_DAEMON: u8 = 9;
    pub const DEL_DAEMON: u8 = 10;
    pub const GET_DAEMON: u8 = 11;
    pub const SET_CONFIG: u8 = 12;
    pub const GET_CONFIG: u8 = 13;
    pub const GET_INFO: u8 = 15;
    pub const ZERO: u8 = 16;
    pub const FLUSH: u8 = 17;
}

/// Top-level attributes (`IPVS_CMD_ATTR_*`).
pub(crate) mod top {
    pub const SERVICE: u16 = 1;
    pub const DEST: u16 = 2;
    pub const DAEMON: u16 = 3;
    pub const TIMEOUT_TCP: u16 = 4;
    pub const TIMEOUT_TCP_FIN: u16 = 5;
    pub const TIMEOUT_UDP: u16 = 6;
}

/// Service attributes (`IPVS_SVC_ATTR_*`).
pub(crate) mod svc {
    pub const AF: u16 = 1;
    pub const PROTOCOL: u16 = 2;
    pub const ADDR: u16 = 3;
    pub const PORT: u16 = 4;
    pub const FWMARK: u16 = 5;
    pub const SCHED_NAME: u16 = 6;
    pub const FLAGS: u16 = 7;
    pub const TIMEOUT: u16 = 8;
    pub const NETMASK: u16 = 9;
    pub const STATS: u16 = 10;
    pub const PE_NAME: u16 = 11;
    pub const STATS64: u16 = 12;
}

/// Destination attributes (`IPVS_DEST_ATTR_*`).
pub(crate) mod dest {
    pub const ADDR: u16 = 1;
    pub const PORT: u16 = 2;
    pub const FWD_METHOD: u16 = 3;
    pub const WEIGHT: u16 = 4;
    pub const U_THRESH: u16 = 5;
    pub const L_THRESH: u16 = 6;
    pub const ACTIVE_CONNS: u16 = 7;
    pub const INACT_CONNS: u16 = 8;
    pub const PERSIST_CONNS: u16 = 9;
    pub const STATS: u16 = 10;
    pub const ADDR_FAMILY: u16 = 11;
    pub const STATS64: u16 = 12;
    pub const TUN_TYPE: u16 = 13;
    pub const TUN_PORT: u16 = 14;
    pub const TUN_FLAGS: u16 = 15;
}

/// Sync daemon attributes (`IPVS_DAEMON_ATTR_*`).
pub(crate) mod daemon {
    pub const STATE: u16 = 1;
    pub const MCAST_IFN: u16 = 2;
    pub const SYNC_ID: u16 = 3;
}

/// Info attributes (`IPVS_INFO_ATTR_*`).
pub(crate) mod info {
    pub const VERSION: u16 = 1;
    pub const CONN_TAB_SIZE: u16 = 2;
}

/// A generic-netlink payload of the IPVS family: the command and its attributes, already
/// encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IpvsMessage {
    pub cmd: u8,
    pub attrs: Vec<u8>,
}

impl GenlFamily for IpvsMessage {
    fn family_name() -> &'static str {
        "IPVS"
    }
    fn command(&self) -> u8 {
        self.cmd
    }
    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Emitable for IpvsMessage {
    fn buffer_len(&self) -> usize {
        self.attrs.len()
    }
    fn emit(&self, buffer: &mut [u8]) {
        if let Some(dst) = buffer.get_mut(..self.attrs.len()) {
            dst.copy_from_slice(&self.attrs);
        }
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsMessage {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Ok(IpvsMessage {
            cmd: header.cmd,
            attrs: buf.to_vec(),
        })
    }
}

/// Appends attributes to a buffer, 4-byte aligned.
#[derive(Default, Debug)]
pub(crate) struct AttrWriter {
    pub buf: Vec<u8>,
}

impl AttrWriter {
    pub fn bytes(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        // An attribute longer than 64 KiB cannot be expressed; ours are at most 16 bytes.
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
        self
    }
    pub fn u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.bytes(kind, &[v])
    }
    pub fn u16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.bytes(kind, &v.to_ne_bytes())
    }
    /// A `u16` carried in network byte order (ports).
    pub fn be16(&mut self, kind: u16, v: u16) -> &mut Self {
        self.bytes(kind, &v.to_be_bytes())
    }
    pub fn u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.bytes(kind, &v.to_ne_bytes())
    }
    /// A NUL-terminated string.
    pub fn string(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.bytes(kind, &v)
    }
    /// A nested attribute holding what `inner` wrote.
    pub fn nested(&mut self, kind: u16, inner: &AttrWriter) -> &mut Self {
        self.bytes(kind | NLA_F_NESTED, &inner.buf)
    }
}

/// Iterates over the attributes of a buffer as `(type, value)`, with the nested and
/// byte-order flags stripped from the type.
pub(crate) struct Attrs<'a> {
    rest: &'a [u8],
}

pub(crate) fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs { rest: buf }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let hdr = self.rest.get(..4)?;
        let len = usize::from(u16::from_ne_bytes([hdr[0], hdr[1]]));
        let kind = u16::from_ne_bytes([hdr[2], hdr[3]]) & NLA_TYPE_MASK;
        if len < 4 {
            self.rest = &[];
            return None;
        }
        let value = self.rest.get(4..len)?;
        let aligned = (len + 3) & !3;
        self.rest = self.rest.get(aligned..).unwrap_or(&[]);
        Some((kind, value))
    }
}

/// The value of the first attribute of type `kind`.
pub(crate) fn find(buf: &[u8], kind: u16) -> Option<&[u8]> {
    attrs(buf).find(|(k, _)| *k == kind).map(|(_, v)| v)
}

pub(crate) fn get_u8(v: &[u8]) -> Option<u8> {
    v.first().copied()
}
pub(crate) fn get_u16(v: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(v.get(..2)?.try_into().ok()?))
}
pub(crate) fn get_be16(v: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(v.get(..2)?.try_into().ok()?))
}
pub(crate) fn get_u32(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.get(..4)?.try_into().ok()?))
}
pub(crate) fn get_u64(v: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?))
}
/// A NUL-terminated (or unterminated) string.
pub(crate) fn get_string(v: &[u8]) -> String {
    let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_and_reader_round_trip() {
        let mut inner = AttrWriter::default();
        inner
            .u16(svc::AF, 2)
            .be16(svc::PORT, 80)
            .string(svc::SCHED_NAME, "wlc");
        let mut w = AttrWriter::default();
        w.nested(top::SERVICE, &inner).u32(top::TIMEOUT_TCP, 900);
        // Literal bytes: nested header (len 4+8+8+8 = 28, type 1|NESTED), then AF, PORT, SCHED.
        let mut expect = Vec::new();
        expect.extend_from_slice(&28u16.to_ne_bytes());
        expect.extend_from_slice(&(1u16 | NLA_F_NESTED).to_ne_bytes());
        expect.extend_from_slice(&6u16.to_ne_bytes());
        expect.extend_from_slice(&1u16.to_ne_bytes());
        expect.extend_from_slice(&[2, 0, 0, 0]);
        expect.extend_from_slice(&6u16.to_ne_bytes());
        expect.extend_from_slice(&4u16.to_ne_bytes());
        expect.extend_from_slice(&[0, 80, 0, 0]);
        expect.extend_from_slice(&8u16.to_ne_bytes());
        expect.extend_from_slice(&6u16.to_ne_bytes());
        expect.extend_from_slice(b"wlc\0");
        expect.extend_from_slice(&8u16.to_ne_bytes());
        expect.extend_from_slice(&4u16.to_ne_bytes());
        expect.extend_from_slice(&900u32.to_ne_bytes());
        assert_eq!(w.buf, expect);

        let nest = find(&w.buf, top::SERVICE).unwrap();
        assert_eq!(find(nest, svc::PORT).and_then(get_be16), Some(80));
        assert_eq!(get_string(find(nest, svc::SCHED_NAME).unwrap()), "wlc");
        assert_eq!(find(&w.buf, top::TIMEOUT_TCP).and_then(get_u32), Some(900));
    }

    #[test]
    fn reader_stops_on_garbage() {
        assert_eq!(attrs(&[8, 0, 1]).count(), 0);
        assert_eq!(attrs(&[2, 0, 1, 0, 9, 9, 9, 9]).count(), 0);
        assert_eq!(attrs(&[40, 0, 1, 0, 9, 9, 9, 9]).count(), 0);
    }
}
