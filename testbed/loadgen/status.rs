//! `--status-server`: the per-round-trip floor. Status-Server requests (RFC 5997), one at a time,
//! each answered with almost no work (two HMAC-MD5s); the server CPU per round trip is what a
//! datagram in and a datagram out cost it before any EAP or TLS: wake-up, receive, send, and on
//! loopback the kernel's delivery to (and wake-up of) the generator. Multiplied by the round trips
//! of an authentication it is the part of the light-load figure no server code can remove.
//!
//! With `--pace-ms` the generator sleeps that long before each request, so the server is asleep
//! when it arrives, as at a real supplicant's pace: the same idle pattern for the C echo server
//! and for certradius gives the round-trip floor of a paced authentication.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use certradius::radius::{Code, PacketBuilder, SharedSecret};

/// Sends `count` Status-Server requests one after the other, each `pace` after the previous
/// reply; returns how many were answered.
pub fn run(server: SocketAddr, secret: &[u8], count: u64, pace: Duration) -> Result<u64, String> {
    let bind = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind: {e}"))?;
    socket
        .connect(server)
        .map_err(|e| format!("connect to {server}: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| format!("socket: {e}"))?;
    let secret = SharedSecret::new(secret.to_vec());
    let mut answered = 0;
    let mut buf = [0u8; 4096];
    for i in 0..count {
        let mut authenticator = [0u8; 16];
        getrandom::fill(&mut authenticator).map_err(|e| format!("random: {e}"))?;
        let request = PacketBuilder::new(Code::StatusServer, (i % 256) as u8)
            .encode_request(&secret, authenticator)
            .map_err(|e| format!("encode: {e}"))?;
        if !pace.is_zero() {
            // A blocking sleep (a timer in the kernel), not a spin.
            std::thread::sleep(pace);
        }
        socket.send(&request).map_err(|e| format!("send: {e}"))?;
        if socket.recv(&mut buf).is_ok() {
            answered += 1;
        }
    }
    Ok(answered)
}
