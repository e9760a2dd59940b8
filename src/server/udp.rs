//! An authentication UDP socket (RFC 2865 §3) in the reactor for reading only.
//!
//! tokio's `UdpSocket` registers for both readable and writable readiness, edge-triggered. On
//! Linux every `sendto` that the kernel completes makes the socket writable again, so each reply
//! came back as an `EPOLLOUT` event that woke the reactor for nothing: at a supplicant's pace,
//! one extra `epoll_wait` return and one extra pass of the runtime's loop per round trip. This
//! socket is registered for `EPOLLIN` only. A reply is sent with a non-blocking `sendto`, which
//! on a UDP socket only fails with `EAGAIN` when the send buffer is full (the interface's queue
//! is stuck); then it waits a millisecond and tries again, a few times, as the writable wait
//! did.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Tries of a reply that finds the send buffer full, a millisecond apart (see the module
/// documentation): a NAS retransmits after seconds, so a reply still stuck after this is lost
/// to it anyway.
const SEND_TRIES: u32 = 50;

/// A way to take a datagram that never waits: [`UdpEndpoint::try_recv_from`] or
/// [`UdpEndpoint::recv_now`].
pub type Take = fn(&UdpEndpoint, &mut [u8]) -> io::Result<(usize, SocketAddr)>;

pub struct UdpEndpoint {
    fd: AsyncFd<std::net::UdpSocket>,
}

impl UdpEndpoint {
    /// Registers a bound, non-blocking socket with the current runtime's reactor.
    #[expect(
        deprecated,
        reason = "the socket owns its descriptor for as long as the AsyncFd holds it, which is \
                  the I/O safety tokio#8587 asks for; its replacement says so with `unsafe`, \
                  which this crate forbids"
    )]
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(UdpEndpoint {
            fd: AsyncFd::with_interest(socket, Interest::READABLE)?,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }

    /// Waits for a datagram.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| fd.get_ref().recv_from(buf)) {
                Ok(received) => return received,
                // Readiness was stale: the socket is empty. Its flag is now cleared; wait again.
                Err(_would_block) => continue,
            }
        }
    }

    /// A datagram already waiting, if the reactor last saw the socket readable; `WouldBlock`
    /// otherwise, or when it turns out empty (which clears the flag, so the next `recv_from`
    /// waits for the reactor instead of asking the kernel again).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.fd.try_io(Interest::READABLE, |fd| fd.recv_from(buf))
    }

    /// A datagram already waiting, asked of the kernel whatever the reactor last saw: for a
    /// worker that looks between two requests, while the reactor may not have run for a while.
    pub fn recv_now(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.fd.get_ref().recv_from(buf)
    }

    /// Sends one datagram (see the module documentation for a full send buffer).
    pub async fn send_to(&self, datagram: &[u8], to: SocketAddr) -> io::Result<usize> {
        let mut tries = 1;
        loop {
            match self.fd.get_ref().send_to(datagram, to) {
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
        self.fd.get_ref().send_to(datagram, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> UdpEndpoint {
        UdpEndpoint::new(client()).unwrap()
    }

    /// A blocking socket on a free loopback port, bound by the shell's own `bind`.
    fn client() -> std::net::UdpSocket {
        let socket = crate::server::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.set_nonblocking(false).unwrap();
        socket
    }

    #[tokio::test]
    async fn receives_and_answers_without_writable_interest() {
        let server = loopback();
        let client = client();
        let to = server.local_addr().unwrap();
        let mut buf = [0u8; 64];
        // Nothing has arrived: the look for a waiting datagram must not wait.
        assert_eq!(
            server.try_recv_from(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        for round in 0u8..3 {
            client.send_to(&[round, 1, 2], to).unwrap();
            let (len, from) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!(buf.get(..len), Some(&[round, 1, 2][..]));
            assert_eq!(from, client.local_addr().unwrap());
            assert_eq!(server.send_to(&[round], from).await.unwrap(), 1);
            let mut reply = [0u8; 8];
            let (n, _) = client.recv_from(&mut reply).unwrap();
            assert_eq!(reply.get(..n), Some(&[round][..]));
        }
    }

    #[tokio::test]
    async fn recv_now_sees_a_datagram_the_reactor_has_not() {
        let server = loopback();
        let client = client();
        let to = server.local_addr().unwrap();
        let mut buf = [0u8; 64];
        // Clear the readiness flag, then let a datagram arrive without polling the reactor.
        let _ = server.try_recv_from(&mut buf);
        client.send_to(b"late", to).unwrap();
        let mut got = None;
        for _ in 0..100 {
            match server.recv_now(&mut buf) {
                Ok((len, _)) => {
                    got = buf.get(..len).map(<[u8]>::to_vec);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("recv_now: {e}"),
            }
        }
        assert_eq!(got.as_deref(), Some(&b"late"[..]));
    }
}
