//! Connection states and timeouts, as IPVS tracks them.
//!
//! The TCP state machine is IPVS's (`ip_vs_proto_tcp.c`): three transition tables selected by
//! direction — INPUT (client to server), OUTPUT (server to client, seen only for NAT/FULLNAT)
//! and INPUT_ONLY (DR/TUN, where replies bypass the balancer) — each with rows for the flags
//! rst > syn > fin > ack in that priority. A segment with none of those flags moves the
//! connection to CLOSE, as in the kernel. SYN_SENT, SYN_RECV, SYNACK and ESTABLISHED count as
//! *active* connections (Linux 6.1's `tcp_state_active_table`); every other state, and every UDP
//! connection, is *inactive*. Timeouts default to the kernel's `tcp_timeouts[]` / UDP 300 s and
//! can be changed like `ipvsadm --set tcp tcpfin udp`.

use crate::time::Duration;

/// A connection's protocol state: a TCP state, or UDP's single state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnState {
    /// TCP: no state yet (a new entry before its first segment is accounted).
    None = 0,
    /// TCP: established.
    Established = 1,
    /// TCP: SYN seen from the server side.
    SynSent = 2,
    /// TCP: SYN seen from the client.
    SynRecv = 3,
    /// TCP: FIN seen.
    FinWait = 4,
    /// TCP: both FINs seen.
    TimeWait = 5,
    /// TCP: closed (RST, or a segment without flags).
    Close = 6,
    /// TCP: the client closed first.
    CloseWait = 7,
    /// TCP: last ACK pending.
    LastAck = 8,
    /// TCP: listen (FTP active data connections in IPVS).
    Listen = 9,
    /// TCP: SYN+ACK (secure_tcp tables).
    SynAck = 10,
    /// UDP's only state.
    UdpNormal = 11,
    /// A persistence template (no protocol state).
    Template = 12,
}

impl ConnState {
    /// All states, indexed by their discriminant.
    pub const ALL: [ConnState; 13] = [
        ConnState::None,
        ConnState::Established,
        ConnState::SynSent,
        ConnState::SynRecv,
        ConnState::FinWait,
        ConnState::TimeWait,
        ConnState::Close,
        ConnState::CloseWait,
        ConnState::LastAck,
        ConnState::Listen,
        ConnState::SynAck,
        ConnState::UdpNormal,
        ConnState::Template,
    ];

    /// The state with discriminant `n` (unknown values map to CLOSE).
    pub const fn from_u8(n: u8) -> ConnState {
        if (n as usize) < Self::ALL.len() {
            Self::ALL[n as usize]
        } else {
            ConnState::Close
        }
    }

    /// The name `ipvsadm -Lnc` prints.
    pub const fn name(self) -> &'static str {
        match self {
            ConnState::None => "NONE",
            ConnState::Established => "ESTABLISHED",
            ConnState::SynSent => "SYN_SENT",
            ConnState::SynRecv => "SYN_RECV",
            ConnState::FinWait => "FIN_WAIT",
            ConnState::TimeWait => "TIME_WAIT",
            ConnState::Close => "CLOSE",
            ConnState::CloseWait => "CLOSE_WAIT",
            ConnState::LastAck => "LAST_ACK",
            ConnState::Listen => "LISTEN",
            ConnState::SynAck => "SYNACK",
            ConnState::UdpNormal => "UDP",
            ConnState::Template => "NONE",
        }
    }

    /// Whether the state counts towards a destination's active connections.
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            ConnState::Established | ConnState::SynSent | ConnState::SynRecv | ConnState::SynAck
        )
    }
}

/// Which transition table a TCP segment is looked up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpDirection {
    /// Client to server, when replies also pass the balancer (NAT, FULLNAT).
    Input,
    /// Server to client (NAT, FULLNAT).
    Output,
    /// Client to server when replies bypass the balancer (DR, TUN).
    InputOnly,
}

const TCP_FLAG_FIN: u8 = 0x01;
const TCP_FLAG_SYN: u8 = 0x02;
const TCP_FLAG_RST: u8 = 0x04;
const TCP_FLAG_ACK: u8 = 0x10;

use ConnState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// `TCP_STATES[direction][flag row][current state]`; rows are syn, fin, ack, rst; columns are
/// the eleven TCP states in discriminant order (NONE .. SYNACK).
const TCP_STATES: [[[ConnState; 11]; 4]; 3] = [
    // INPUT
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT_ONLY
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// The next TCP state for a segment with `flags` (the raw TCP flags byte) in `dir`, from
/// `state`. Priority rst > syn > fin > ack; no such flag means CLOSE, as in the kernel.
pub fn tcp_next_state(state: ConnState, dir: TcpDirection, flags: u8) -> ConnState {
    let row = if flags & TCP_FLAG_RST != 0 {
        3
    } else if flags & TCP_FLAG_SYN != 0 {
        0
    } else if flags & TCP_FLAG_FIN != 0 {
        1
    } else if flags & TCP_FLAG_ACK != 0 {
        2
    } else {
        return ConnState::Close;
    };
    let table = match dir {
        TcpDirection::Input => 0,
        TcpDirection::Output => 1,
        TcpDirection::InputOnly => 2,
    };
    let col = state as usize;
    if col >= 11 {
        return ConnState::Close;
    }
    TCP_STATES[table][row][col]
}

/// Per-state timeouts (`ipvsadm --set`, `ip_vs_set_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    tcp: [Duration; 11],
    udp: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::IPVS_DEFAULT
    }
}

impl Timeouts {
    /// The kernel's defaults: NONE 2 s, ESTABLISHED 900 s, SYN_SENT 120 s, SYN_RECV 60 s,
    /// FIN_WAIT 120 s, TIME_WAIT 120 s, CLOSE 10 s, CLOSE_WAIT 60 s, LAST_ACK 30 s, LISTEN 120 s,
    /// SYNACK 120 s; UDP 300 s.
    pub const IPVS_DEFAULT: Timeouts = Timeouts {
        tcp: [
            Duration::from_secs(2),
            Duration::from_secs(900),
            Duration::from_secs(120),
            Duration::from_secs(60),
            Duration::from_secs(120),
            Duration::from_secs(120),
            Duration::from_secs(10),
            Duration::from_secs(60),
            Duration::from_secs(30),
            Duration::from_secs(120),
            Duration::from_secs(120),
        ],
        udp: Duration::from_secs(300),
    };

    /// `ipvsadm --set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP timeouts; a zero leaves the
    /// value unchanged, as in the kernel.
    pub fn set(&mut self, tcp: Duration, tcp_fin: Duration, udp: Duration) {
        if !tcp.is_zero() {
            self.tcp[ConnState::Established as usize] = tcp;
        }
        if !tcp_fin.is_zero() {
            self.tcp[ConnState::FinWait as usize] = tcp_fin;
        }
        if !udp.is_zero() {
            self.udp = udp;
        }
    }

    /// The `(tcp, tcpfin, udp)` triple `ipvsadm -L --timeout` shows.
    pub fn get(&self) -> (Duration, Duration, Duration) {
        (
            self.tcp[ConnState::Established as usize],
            self.tcp[ConnState::FinWait as usize],
            self.udp,
        )
    }

    /// The timeout of a connection in `state` (templates use their service's persistence).
    pub fn of(&self, state: ConnState) -> Duration {
        match state {
            ConnState::UdpNormal => self.udp,
            ConnState::Template => Duration::ZERO,
            s => self.tcp[s as usize],
        }
    }

    /// Sets the timeout of one TCP state (an extension over ipvsadm, as sysctls allow).
    pub fn set_tcp_state(&mut self, state: ConnState, timeout: Duration) {
        if (state as usize) < 11 {
            self.tcp[state as usize] = timeout;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u8 = TCP_FLAG_SYN;
    const SA_: u8 = TCP_FLAG_SYN | TCP_FLAG_ACK;
    const A: u8 = TCP_FLAG_ACK;
    const F: u8 = TCP_FLAG_FIN | TCP_FLAG_ACK;
    const R: u8 = TCP_FLAG_RST;

    fn walk(dir_of: &[(TcpDirection, u8)]) -> ConnState {
        dir_of
            .iter()
            .fold(ConnState::None, |s, &(d, f)| tcp_next_state(s, d, f))
    }

    #[test]
    fn nat_handshake_and_close() {
        use TcpDirection::*;
        assert_eq!(walk(&[(Input, S)]), ConnState::SynRecv);
        assert_eq!(walk(&[(Input, S), (Output, SA_)]), ConnState::SynRecv);
        assert_eq!(
            walk(&[(Input, S), (Output, SA_), (Input, A)]),
            ConnState::Established
        );
        // Client closes first: FIN in -> CLOSE_WAIT; server FIN out -> TIME_WAIT.
        let est = [(Input, S), (Output, SA_), (Input, A)];
        let mut s = walk(&est);
        s = tcp_next_state(s, Input, F);
        assert_eq!(s, ConnState::CloseWait);
        s = tcp_next_state(s, Output, F);
        assert_eq!(s, ConnState::TimeWait);
        // Server closes first: FIN out -> FIN_WAIT; client FIN in -> TIME_WAIT.
        let mut s = walk(&est);
        s = tcp_next_state(s, Output, F);
        assert_eq!(s, ConnState::FinWait);
        s = tcp_next_state(s, Input, F);
        assert_eq!(s, ConnState::TimeWait);
    }

    #[test]
    fn dr_input_only_table() {
        use TcpDirection::*;
        let mut s = walk(&[(InputOnly, S), (InputOnly, A)]);
        assert_eq!(s, ConnState::Established);
        s = tcp_next_state(s, InputOnly, F);
        assert_eq!(
            s,
            ConnState::FinWait,
            "INPUT_ONLY: the client's FIN means FIN_WAIT"
        );
        s = tcp_next_state(s, InputOnly, A);
        assert_eq!(s, ConnState::FinWait);
        s = tcp_next_state(s, InputOnly, R);
        assert_eq!(s, ConnState::Close);
        // A bare ACK without a connection handshake closes; no flags at all closes.
        assert_eq!(tcp_next_state(ConnState::None, InputOnly, A), ConnState::Close);
        assert_eq!(tcp_next_state(ConnState::Established, Input, 0), ConnState::Close);
        // RST has priority over SYN.
        assert_eq!(tcp_next_state(ConnState::None, Input, S | R), ConnState::Close);
    }

    #[test]
    fn active_states_match_linux_6_1() {
        let active: Vec<_> = ConnState::ALL
            .iter()
            .filter(|s| s.is_active())
            .map(|s| s.name())
            .collect();
        assert_eq!(active, ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "SYNACK"]);
    }

    #[test]
    fn default_timeouts_and_set() {
        let mut t = Timeouts::default();
        assert_eq!(
            t.get(),
            (
                Duration::from_secs(900),
                Duration::from_secs(120),
                Duration::from_secs(300)
            )
        );
        assert_eq!(t.of(ConnState::Close), Duration::from_secs(10));
        assert_eq!(t.of(ConnState::SynRecv), Duration::from_secs(60));
        t.set(Duration::from_secs(7200), Duration::ZERO, Duration::from_secs(60));
        assert_eq!(
            t.get(),
            (
                Duration::from_secs(7200),
                Duration::from_secs(120),
                Duration::from_secs(60)
            )
        );
    }
}
