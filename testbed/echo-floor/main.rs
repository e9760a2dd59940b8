//! The round-trip floor of the UDP shell: a UDP echo server two ways, for `echo-floor.sh` to
//! drive with Status-Server requests at a supplicant's pace (BENCHMARKS.md, round 3, part 7).
//!
//! - `--mode blocking`: one thread blocking in `recvfrom` and answering on the spot, as the C
//!   echo server of `run-benchmarks.sh --paced` does.
//! - `--mode tokio`: certradius's own path with nothing in the core: an authentication socket
//!   (`server::udp::UdpEndpoint`, in the reactor for reading only) on a multi-threaded runtime
//!   with certradius's event interval, a spawned receive task that looks for a second datagram
//!   (as `dispatch.rs` does before it answers inline) and answers.
//!
//! The difference between the two, per round trip, is what tokio's park, wake and scheduling
//! cost at that pace: what a receive thread of its own would save.
//!
//!   cargo run --release --example echo-floor -- --port 18191 --mode blocking|tokio
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;

use certradius::server::udp::UdpEndpoint;

fn main() {
    let mut port = 18191u16;
    let mut mode = String::from("tokio");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).expect("--port N"),
            "--mode" => mode = args.next().expect("--mode blocking|tokio"),
            other => panic!("unknown argument {other}; usage: --port N --mode blocking|tokio"),
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
        "tokio" => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .event_interval(certradius::server::start::EVENT_INTERVAL)
                .build()
                .unwrap();
            let task = runtime.spawn(async move {
                let socket = Arc::new(UdpEndpoint::new(socket).unwrap());
                let mut buf = vec![0u8; 4097];
                let mut probe = vec![0u8; 4097];
                loop {
                    let Ok((len, from)) = socket.recv_from(&mut buf).await else {
                        continue;
                    };
                    // At this pace the look finds the socket empty, as the receive loop's does.
                    if let Ok((more, more_from)) = socket.try_recv_from(&mut probe) {
                        let _ = socket
                            .send_to(probe.get(..more).unwrap_or(&[]), more_from)
                            .await;
                    }
                    let _ = socket.send_to(buf.get(..len).unwrap_or(&[]), from).await;
                }
            });
            runtime.block_on(task).unwrap();
        }
        other => panic!("unknown mode {other}: blocking or tokio"),
    }
}
