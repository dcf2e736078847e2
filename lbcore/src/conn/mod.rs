//! Connection tracking: the table of connections and persistence templates, and the IPVS
//! protocol state machines with their timeouts.

pub mod state;
pub mod table;

pub use state::{ConnState, TcpDirection, Timeouts, tcp_next_state};
pub use table::{Conn, ConnTable, Dir, FwdKind};
