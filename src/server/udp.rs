//! An authentication UDP socket (RFC 2865 §3), outside tokio's reactor.
//!
//! Datagrams are taken by a thread of the socket's own while the server is idle, and by the
//! workers between requests while it is busy (`dispatch.rs`). Neither waits on the reactor:
//! tokio's park, wake-up and scheduling cost 12-16 µs per round trip at a supplicant's pace over
//! a thread waiting in the kernel (BENCHMARKS.md, round 3, part 7), and a socket registered with
//! the reactor would wake it for every datagram even with nobody waiting there. The socket stays
//! non-blocking: the receive thread waits in `poll(2)`, everyone reads without waiting.
//!
//! A reply is sent with a non-blocking `sendto`, which on a UDP socket only fails with `EAGAIN`
//! when the send buffer is full (the interface's queue is stuck); then it waits a millisecond
//! and tries again, a few times.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

/// Tries of a reply that finds the send buffer full, a millisecond apart (see the module
/// documentation): a NAS retransmits after seconds, so a reply still stuck after this is lost
/// to it anyway.
const SEND_TRIES: u32 = 50;

pub struct UdpEndpoint {
    socket: std::net::UdpSocket,
}

impl UdpEndpoint {
    /// A bound socket, made non-blocking.
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(UdpEndpoint { socket })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits at most `timeout` for a datagram to arrive; true: one is waiting (or the socket
    /// has an error to report, which the next read returns).
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let timeout = Timespec::try_from(timeout).map_err(|_| io::ErrorKind::InvalidInput)?;
        let mut fds = [PollFd::new(&self.socket, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(ready) => Ok(ready > 0),
            Err(rustix::io::Errno::INTR) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// A datagram already waiting; `WouldBlock` when there is none.
    pub fn recv_now(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf)
    }

    /// Sends one datagram (see the module documentation for a full send buffer).
    pub async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        let mut tries = 1;
        loop {
            match self.socket.send_to(datagram, to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && tries < SEND_TRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                sent => return sent,
            }
        }
    }

    /// Sends one datagram now or not at all (for the replies of the drop path, which must not
    /// wait).
    pub fn try_send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.socket.send_to(datagram, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blocking socket on a free loopback port, bound by the shell's own `bind`.
    fn client() -> std::net::UdpSocket {
        let socket = crate::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.set_nonblocking(false).unwrap();
        socket
    }

    #[tokio::test]
    async fn waits_receives_and_answers() {
        let server = UdpEndpoint::new(client()).unwrap();
        let client = client();
        let to = server.local_addr().unwrap();
        let mut buf = [0u8; 64];
        // Nothing has arrived: neither the wait nor the read may block.
        assert!(!server.wait_readable(Duration::from_millis(20)).unwrap());
        assert_eq!(
            server.recv_now(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        for round in 0u8..3 {
            client.send_to(&[round, 1, 2], to).unwrap();
            assert!(server.wait_readable(Duration::from_secs(5)).unwrap());
            let (len, from) = server.recv_now(&mut buf).unwrap();
            assert_eq!(buf.get(..len), Some(&[round, 1, 2][..]));
            assert_eq!(from, client.local_addr().unwrap());
            assert_eq!(server.send_to(&[round], from).await.unwrap(), 1);
            let mut reply = [0u8; 8];
            let (n, _) = client.recv_from(&mut reply).unwrap();
            assert_eq!(reply.get(..n), Some(&[round][..]));
        }
    }
}
