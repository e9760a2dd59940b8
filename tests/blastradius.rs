//! Message-Authenticator policy (BlastRADIUS, CVE-2024-3596) against the real binary:
//! `require_message_authenticator = true | false | "auto"`, the learned "auto" state surviving a
//! restart, and Proxy-State without Message-Authenticator refused.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::random16;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use certradius::radius::{Code, Packet, PacketBuilder, SharedSecret, attr};
use common::{SECRET, Server};

fn exchange(to: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(600)))
        .unwrap();
    s.send_to(packet, to).unwrap();
    let mut buf = vec![0u8; 4096];
    s.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
}

/// An Access-Request with no EAP (e.g. a PAP probe), with or without Message-Authenticator.
fn plain_request(with_ma: bool, proxy_state: bool) -> Vec<u8> {
    let mut b = PacketBuilder::new(Code::AccessRequest, 9);
    b.attr(attr::USER_NAME, b"probe").unwrap();
    if proxy_state {
        b.attr(attr::PROXY_STATE, b"proxy-1").unwrap();
    }
    let p = b
        .encode_request(&SharedSecret::new(SECRET.as_bytes().to_vec()), random16())
        .unwrap();
    if with_ma {
        return p;
    }
    let mut out = p[..20].to_vec();
    out.extend_from_slice(&p[38..]);
    let len = out.len() as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    out
}

fn config(dir: &Path, pki: &Path, name: &str, policy: &str) -> std::path::PathBuf {
    let path = common::write_config(dir, pki, name, "", "");
    let state = dir.join("learned.state");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "secret = \"testing123\"",
        &format!("secret = \"testing123\"\nrequire_message_authenticator = {policy}"),
    );
    let text = text.replace(
        "[server]\n",
        &format!("[server]\nstate_file = \"{}\"\n", state.display()),
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn code(reply: &[u8]) -> Code {
    Packet::decode(reply).unwrap().code()
}

#[test]
fn required_by_default() {
    let pki = common::pki("blast");
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), &pki, "default", "", "");
    let server = Server::start(&cfg, &dir.path().join("default.log"));
    assert!(exchange(server.addr, &plain_request(false, false)).is_none());
    let reply = exchange(server.addr, &plain_request(true, false)).unwrap();
    assert_eq!(
        code(&reply),
        Code::AccessReject,
        "no EAP: rejected, but answered"
    );
    let p = Packet::decode(&reply).unwrap();
    assert_eq!(
        p.attributes().next().unwrap().typ,
        attr::MESSAGE_AUTHENTICATOR,
        "Message-Authenticator first in every reply"
    );
}

#[test]
fn not_required_still_refuses_proxy_state_without_it() {
    let pki = common::pki("blast");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pki, "off", "false");
    let server = Server::start(&cfg, &dir.path().join("off.log"));
    let reply = exchange(server.addr, &plain_request(false, false)).unwrap();
    assert_eq!(code(&reply), Code::AccessReject);
    assert!(exchange(server.addr, &plain_request(false, true)).is_none());
    assert!(
        server
            .log_text()
            .contains("proxy_state_without_message_authenticator")
    );
}

#[test]
fn auto_learns_and_remembers_across_a_restart() {
    let pki = common::pki("blast");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &pki, "auto", "\"auto\"");
    {
        let server = Server::start(&cfg, &dir.path().join("auto1.log"));
        // Not learned yet: a request without Message-Authenticator is served.
        assert_eq!(
            code(&exchange(server.addr, &plain_request(false, false)).unwrap()),
            Code::AccessReject
        );
        // A valid one teaches the server that this client sends it...
        assert!(exchange(server.addr, &plain_request(true, false)).is_some());
        // ...so from now on it is required.
        assert!(exchange(server.addr, &plain_request(false, false)).is_none());
        // The shell writes the state file within about a second.
        let state = dir.path().join("learned.state");
        for _ in 0..40 {
            if std::fs::read_to_string(&state).is_ok_and(|t| t.contains("127.0.0.1")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            std::fs::read_to_string(&state)
                .unwrap()
                .contains("127.0.0.1")
        );
    }
    let server = Server::start(&cfg, &dir.path().join("auto2.log"));
    assert!(
        exchange(server.addr, &plain_request(false, false)).is_none(),
        "after a restart the learned requirement must still hold"
    );
    assert!(exchange(server.addr, &plain_request(true, false)).is_some());
}
