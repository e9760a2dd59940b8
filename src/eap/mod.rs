//! EAP (RFC 3748) packet codec and the EAP-TLS (RFC 5216, RFC 9190) framing, fragmentation
//! and reassembly that the authenticator needs. Pure octet handling: no I/O, no TLS state.

pub mod fragment;
pub mod packet;
pub mod tls_frame;

pub use fragment::{
    FragmentError, Fragmenter, Progress, Reassembler, ReassemblyBudget, ReassemblyLimits,
};
pub use packet::{EapCode, EapError, EapPacket, EapType, failure, success};
pub use tls_frame::{
    FrameError, TLS_HEADER_OVERHEAD, TlsFlags, TlsFrame, tls_request, tls_response,
};
