//! The round-trip floor of the UDP shell: a UDP echo server three ways, for `echo-floor.sh` to
//! drive with Status-Server requests at a supplicant's pace (BENCHMARKS.md, round 3, part 7).
//!
//! - `--mode blocking`: one thread blocking in `recvfrom` and answering on the spot, as the C
//!   echo server of `run-benchmarks.sh --paced` does.
//! - `--mode thread`: certradius's receive thread with nothing in the core: a
//!   `server::udp::UdpEndpoint` waited on with `poll(2)`, read without waiting, a look for a
//!   second datagram (as `dispatch.rs` makes before it answers inline), the reply.
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
            "--mode" => mode = args.next().expect("--mode blocking|thread|tokio"),
            other => {
                panic!("unknown argument {other}; usage: --port N --mode blocking|thread|tokio")
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
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut buf = vec![0u8; 4097];
            let mut probe = vec![0u8; 4097];
            loop {
                if !socket.wait_readable(Duration::from_millis(250)).unwrap() {
                    continue;
                }
                let Ok((len, from)) = socket.recv_now(&mut buf) else {
                    continue;
                };
                // At this pace the look finds the socket empty, as the receive thread's does.
                if let Ok((more, more_from)) = socket.recv_now(&mut probe) {
                    let _ = socket.try_send_to(probe.get(..more).unwrap_or(&[]), more_from);
                }
                runtime
                    .block_on(socket.send_to(buf.get(..len).unwrap_or(&[]), from))
                    .ok();
            }
        }
        "tokio" => tokio_echo(socket),
        other => panic!("unknown mode {other}: blocking, thread or tokio"),
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
