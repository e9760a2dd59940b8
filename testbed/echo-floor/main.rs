//! The round-trip floor of the UDP shell: a UDP echo server four ways, for `echo-floor.sh` to
//! drive with Status-Server requests at a supplicant's pace (BENCHMARKS.md, round 3, part 7).
//!
//! - `--mode blocking`: one thread blocking in `recvfrom` and answering on the spot, as the C
//!   echo server of `run-benchmarks.sh --paced` does.
//! - `--mode thread`: certradius's receive thread with nothing in the core: a
//!   `server::udp::UdpEndpoint` waited on in `recvfrom(2)`, a look for a second datagram (as
//!   `dispatch.rs` makes before it answers inline), the reply polled once in the runtime's
//!   context.
//! - `--mode poll`: the receive thread as it was before round 3, part 8: a non-blocking socket
//!   waited on with `poll(2)` and then read, the look, the reply through `block_on`.
//! - `--mode tokio`: the same through tokio's reactor, as certradius received before its
//!   receive threads: the socket registered for reading only on a multi-threaded runtime with
//!   certradius's event interval, a spawned task that receives, looks and answers.
//!
//! The difference between two modes, per round trip, is what the way of waiting costs at that
//! pace.
//!
//!   cargo run --release --example echo-floor -- --port 18191 --mode blocking|thread|tokio
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

use certradius::server::udp::UdpEndpoint;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

fn main() {
    let mut port = 18191u16;
    let mut mode = String::from("tokio");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--mode" => mode = args.next().expect("--mode blocking|thread|poll|tokio"),
            other => {
                panic!(
                    "unknown argument {other}; usage: --port N --mode blocking|thread|poll|tokio"
                )
            }
        }
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let socket = certradius::server::bind(addr).expect("bind");
    match mode.as_str() {
        "blocking" => {
            socket.set_nonblocking(false).unwrap();
            let mut buf = vec![0u8; 4097];
            loop {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(buf.get(..len).unwrap_or(&[]), from);
                }
            }
        }
        "thread" => {
            let socket = UdpEndpoint::new(socket).unwrap();
            let runtime = current_thread();
            let mut buf = vec![0u8; 4097];
            loop {
                let Ok(Some((len, from))) = socket.recv_wait(&mut buf) else {
                    continue;
                };
                look_again(|b| socket.recv_now(b), |d, to| socket.try_send_to(d, to));
                // The reply polled once in the runtime's context, as `dispatch::run_here` does.
                let _context = runtime.enter();
                let reply = std::pin::pin!(socket.send_to(buf.get(..len).unwrap_or(&[]), from));
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                let _ = std::future::Future::poll(reply, &mut cx);
            }
        }
        "poll" => {
            socket.set_nonblocking(true).unwrap();
            let runtime = current_thread();
            let mut buf = vec![0u8; 4097];
            loop {
                let mut fds = [PollFd::new(&socket, PollFlags::IN)];
                let wait = Timespec::try_from(Duration::from_millis(250)).unwrap();
                if !matches!(rustix::event::poll(&mut fds, Some(&wait)), Ok(n) if n > 0) {
                    continue;
                }
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                look_again(|b| socket.recv_from(b), |d, to| socket.send_to(d, to));
                // The reply through `block_on`, as the receive thread sent it before part 8.
                let reply = async { socket.send_to(buf.get(..len).unwrap_or(&[]), from) };
                runtime.block_on(reply).ok();
            }
        }
        "tokio" => tokio_echo(socket),
        other => panic!("unknown mode {other}: blocking, thread, poll or tokio"),
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The look for a second datagram the receive thread makes before it answers inline; at this
/// pace it finds the socket empty, as the receive thread's does.
fn look_again(
    recv: impl FnOnce(&mut [u8]) -> std::io::Result<(usize, SocketAddr)>,
    send: impl FnOnce(&[u8], SocketAddr) -> std::io::Result<usize>,
) {
    let mut probe = [0u8; 4097];
    if let Ok((more, from)) = recv(&mut probe) {
        let _ = send(probe.get(..more).unwrap_or(&[]), from);
    }
}

/// Receives through tokio's reactor (see the module documentation).
#[expect(
    deprecated,
    reason = "the socket owns its descriptor for as long as the AsyncFd holds it; the \
              replacement is unsafe, which this crate forbids"
)]
fn tokio_echo(socket: std::net::UdpSocket) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(certradius::server::start::EVENT_INTERVAL)
        .build()
        .unwrap();
    let task = runtime.spawn(async move {
        let fd = Arc::new(AsyncFd::with_interest(socket, Interest::READABLE).unwrap());
        let mut buf = vec![0u8; 4097];
        let mut probe = vec![0u8; 4097];
        loop {
            let mut ready = fd.readable().await.unwrap();
            let Ok(Ok((len, from))) = ready.try_io(|s| s.get_ref().recv_from(&mut buf)) else {
                continue;
            };
            if let Ok((more, more_from)) =
                fd.try_io(Interest::READABLE, |s| s.recv_from(&mut probe))
            {
                let _ = fd
                    .get_ref()
                    .send_to(probe.get(..more).unwrap_or(&[]), more_from);
            }
            let _ = fd.get_ref().send_to(buf.get(..len).unwrap_or(&[]), from);
        }
    });
    runtime.block_on(task).unwrap();
}
