//! An authentication UDP socket (RFC 2865 §3), outside tokio's reactor.
//!
//! Datagrams are taken by a thread of the socket's own while the server is idle, and by the
//! workers between requests while it is busy (`dispatch.rs`). Neither waits on the reactor:
//! tokio's park, wake-up and scheduling cost 12-16 µs per round trip at a supplicant's pace over
//! a thread waiting in the kernel (BENCHMARKS.md, round 3, part 7), and a socket registered with
//! the reactor would wake it for every datagram even with nobody waiting there.
//!
//! The socket is blocking, with a receive timeout: the receive thread waits in `recvfrom(2)`
//! itself, one system call per datagram where `poll(2)` and then `recvfrom` took two (round 3,
//! part 8). Every other read and every send passes `MSG_DONTWAIT`, so nobody else ever waits on
//! it.
//!
//! A reply is sent with a non-blocking `sendto`, which on a UDP socket only fails with `EAGAIN`
//! when the send buffer is full (the interface's queue is stuck); then it waits a millisecond
//! and tries again, a few times.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustix::net::{RecvFlags, SendFlags};

/// Tries of a reply that finds the send buffer full, a millisecond apart (see the module
/// documentation): a NAS retransmits after seconds, so a reply still stuck after this is lost
/// to it anyway.
const SEND_TRIES: u32 = 50;

/// How long [`UdpEndpoint::recv_wait`] waits for a datagram before it returns empty-handed (the
/// receive thread then looks at its stop flag and at whose turn it is).
pub const RECEIVE_WAIT: Duration = Duration::from_millis(250);

pub struct UdpEndpoint {
    socket: std::net::UdpSocket,
}

impl UdpEndpoint {
    /// A bound socket, made blocking with a receive timeout of [`RECEIVE_WAIT`] (see the module
    /// documentation).
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(RECEIVE_WAIT))?;
        Ok(UdpEndpoint { socket })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits at most [`RECEIVE_WAIT`] for a datagram and takes it; `None` when none came (or a
    /// signal interrupted the wait).
    pub fn recv_wait(&self, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
        match self.socket.recv_from(buf) {
            Ok(got) => Ok(Some(got)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// A datagram already waiting; `WouldBlock` when there is none.
    pub fn recv_now(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (len, _, from) = rustix::net::recvfrom(&self.socket, buf, RecvFlags::DONTWAIT)?;
        // A UDP socket always reports the sender; an address of another family would be a
        // kernel defect, reported like any other receive error.
        let from = from
            .and_then(|a| SocketAddr::try_from(a).ok())
            .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
        Ok((len, from))
    }

    /// Sends one datagram (see the module documentation for a full send buffer).
    pub async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        let mut tries = 1;
        loop {
            match self.try_send_to(datagram, to) {
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
        Ok(rustix::net::sendto(
            &self.socket,
            datagram,
            SendFlags::DONTWAIT,
            &to,
        )?)
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
        // Nothing has arrived: the read without waiting returns at once, the wait after
        // RECEIVE_WAIT, empty-handed.
        assert_eq!(
            server.recv_now(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let started = crate::server::monotonic_clock();
        assert!(server.recv_wait(&mut buf).unwrap().is_none());
        assert!(started.elapsed() >= RECEIVE_WAIT / 2);
        for round in 0u8..3 {
            client.send_to(&[round, 1, 2], to).unwrap();
            client.send_to(&[round, 3], to).unwrap();
            let (len, from) = server.recv_wait(&mut buf).unwrap().unwrap();
            assert_eq!(buf.get(..len), Some(&[round, 1, 2][..]));
            assert_eq!(from, client.local_addr().unwrap());
            // The second datagram is read without waiting, and then there is none.
            let (len, from) = server.recv_now(&mut buf).unwrap();
            assert_eq!(buf.get(..len), Some(&[round, 3][..]));
            assert_eq!(from, client.local_addr().unwrap());
            assert_eq!(
                server.recv_now(&mut buf).unwrap_err().kind(),
                io::ErrorKind::WouldBlock
            );
            assert_eq!(server.send_to(&[round], from).await.unwrap(), 1);
            let mut reply = [0u8; 8];
            let (n, _) = client.recv_from(&mut reply).unwrap();
            assert_eq!(reply.get(..n), Some(&[round][..]));
        }
    }

    #[test]
    fn an_ipv6_sender_is_reported_as_such() {
        let Ok(server) = crate::server::bind("[::1]:0".parse().unwrap()) else {
            eprintln!("SKIP: no IPv6 loopback here");
            return;
        };
        let server = UdpEndpoint::new(server).unwrap();
        let client = crate::server::bind("[::1]:0".parse().unwrap()).unwrap();
        client.set_nonblocking(false).unwrap();
        client.send_to(b"x", server.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 8];
        let (len, from) = server.recv_wait(&mut buf).unwrap().unwrap();
        assert_eq!((len, from), (1, client.local_addr().unwrap()));
    }
}
