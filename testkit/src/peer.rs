//! The other end, for tests, fuzzing and load generation: an EAP-TLS supplicant (RFC 5216 §2.1
//! and RFC 9190 §2.1, peer side, over a rustls client) and the NAS that wraps its EAP in RADIUS
//! Access-Requests (RFC 3579 §3) and checks the replies (Response Authenticator, Message-
//! Authenticator, MS-MPPE keys per RFC 2548 against the supplicant's own MSK).
//!
//! Never used by the server itself.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use rustls::ClientConnection;
use rustls::pki_types::ServerName;

use certradius::eap::{
    self, EapCode, EapPacket, EapType, Fragmenter, Progress, Reassembler, ReassemblyLimits,
    TlsFrame,
};
use certradius::radius::{self, Code, Packet, PacketBuilder, SharedSecret, attr};
use certradius::tls::keys::{self, SessionKeys};

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("setup: {0}")]
    Setup(String),
    #[error("malformed EAP from the server: {0}")]
    Eap(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("bad RADIUS reply: {0}")]
    Radius(String),
    #[error("protocol: {0}")]
    Protocol(String),
}

/// A rustls client configuration from PEM files: CA to verify the server, client chain and key.
pub fn client_config(
    ca_file: &Path,
    cert_file: &Path,
    key_file: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<Arc<rustls::ClientConfig>, PeerError> {
    let setup = |e: certradius::tls::PemError| PeerError::Setup(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for c in certradius::tls::load_certs("ca", ca_file).map_err(setup)? {
        roots
            .add(c)
            .map_err(|e| PeerError::Setup(format!("CA: {e}")))?;
    }
    let chain = certradius::tls::load_certs("client certificate", cert_file).map_err(setup)?;
    let key = certradius::tls::load_key("client key", key_file).map_err(setup)?;
    let cfg = rustls::ClientConfig::builder_with_provider(certradius::tls::provider())
        .with_protocol_versions(versions)
        .map_err(|e| PeerError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| PeerError::Setup(e.to_string()))?;
    Ok(Arc::new(cfg))
}

/// What the supplicant does with an EAP-Request or the final EAP-Success/Failure.
#[derive(Debug)]
pub enum PeerStep {
    Respond(Vec<u8>),
    Success(Box<SessionKeys>),
    Failure,
}

pub struct Supplicant {
    conn: ClientConnection,
    identity: Vec<u8>,
    fragment_size: usize,
    reassembler: Reassembler,
    sending: Option<Fragmenter>,
    /// RFC 9190 §2.5 success indication (0x00 application data) seen.
    pub success_indication: bool,
    /// The TLS error (usually the server's alert) that ended our side of the handshake.
    pub tls_failure: Option<String>,
}

impl Supplicant {
    pub fn new(
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
        identity: &[u8],
        fragment_size: usize,
    ) -> Result<Self, PeerError> {
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| PeerError::Setup(format!("server name: {e}")))?;
        let conn =
            ClientConnection::new(config, name).map_err(|e| PeerError::Tls(e.to_string()))?;
        Ok(Supplicant {
            conn,
            identity: identity.to_vec(),
            fragment_size: fragment_size.max(1),
            reassembler: Reassembler::new(ReassemblyLimits {
                max_message_len: 1 << 20,
                max_fragments: 4096,
            }),
            sending: None,
            success_indication: false,
            tls_failure: None,
        })
    }

    /// The EAP-Response/Identity the NAS puts in the first Access-Request.
    pub fn identity_response(&self, identifier: u8) -> Vec<u8> {
        eap::packet::encode(
            EapCode::Response,
            identifier,
            Some(EapType::Identity),
            &self.identity,
        )
    }

    /// Whether the TLS handshake resumed an earlier session.
    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    pub fn keys(&self) -> Result<SessionKeys, PeerError> {
        keys::derive(&self.conn).map_err(|e| PeerError::Tls(e.to_string()))
    }

    pub fn handle(&mut self, request: &[u8]) -> Result<PeerStep, PeerError> {
        let p = EapPacket::decode(request).map_err(|e| PeerError::Eap(e.to_string()))?;
        match p.code {
            EapCode::Success => return Ok(PeerStep::Success(Box::new(self.keys()?))),
            EapCode::Failure => return Ok(PeerStep::Failure),
            EapCode::Request => {}
            other => return Err(PeerError::Eap(format!("unexpected code {other:?}"))),
        }
        let id = p.identifier;
        match p.typ {
            Some(EapType::Identity) => return Ok(PeerStep::Respond(self.identity_response(id))),
            Some(EapType::Tls) => {}
            other => return Err(PeerError::Protocol(format!("unexpected method {other:?}"))),
        }
        let frame = TlsFrame::decode(p.type_data).map_err(|e| PeerError::Eap(e.to_string()))?;
        if frame.flags.start {
            // RFC 5216 §2.1.1: the ClientHello answers EAP-TLS Start.
            let out = self.take_output();
            return Ok(self.send_flight(id, out));
        }
        if let Some(flight) = &mut self.sending {
            if !flight.is_done() {
                if !frame.is_ack() {
                    return Err(PeerError::Protocol(
                        "expected an ACK of our fragment".into(),
                    ));
                }
                return Ok(self.next_fragment(id));
            }
            self.sending = None;
        }
        if frame.is_ack() {
            return Err(PeerError::Protocol("unexpected empty request".into()));
        }
        match self
            .reassembler
            .push(&frame)
            .map_err(|e| PeerError::Eap(e.to_string()))?
        {
            Progress::NeedMore => Ok(PeerStep::Respond(eap::tls_response(id, &TlsFrame::ack()))),
            Progress::Complete(msg) => match self.receive_tls(&msg) {
                Ok(()) => {
                    let out = self.take_output();
                    if out.is_empty() {
                        // Our answer to the server's last flight is an empty EAP-TLS response.
                        return Ok(PeerStep::Respond(eap::tls_response(id, &TlsFrame::ack())));
                    }
                    Ok(self.send_flight(id, out))
                }
                Err(e) => {
                    // Like wpa_supplicant: a fatal TLS error (the server's alert) is answered
                    // with whatever alert we queued, or an empty response; the server then
                    // ends the conversation with EAP-Failure.
                    self.tls_failure = Some(e.to_string());
                    let out = self.take_output();
                    if out.is_empty() {
                        return Ok(PeerStep::Respond(eap::tls_response(id, &TlsFrame::ack())));
                    }
                    Ok(self.send_flight(id, out))
                }
            },
        }
    }

    fn receive_tls(&mut self, msg: &[u8]) -> Result<(), PeerError> {
        {
            {
                let mut rd = msg;
                while !rd.is_empty() {
                    self.conn
                        .read_tls(&mut rd)
                        .map_err(|e| PeerError::Tls(e.to_string()))?;
                    let state = self
                        .conn
                        .process_new_packets()
                        .map_err(|e| PeerError::Tls(e.to_string()))?;
                    if state.plaintext_bytes_to_read() > 0 {
                        let mut buf = vec![0u8; state.plaintext_bytes_to_read()];
                        let n = self
                            .conn
                            .reader()
                            .read(&mut buf)
                            .map_err(|e| PeerError::Tls(e.to_string()))?;
                        if buf.get(..n) == Some(&[0u8][..]) {
                            self.success_indication = true;
                        } else {
                            return Err(PeerError::Protocol(
                                "application data other than the 0x00 success indication".into(),
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn take_output(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out
    }

    fn send_flight(&mut self, id: u8, out: Vec<u8>) -> PeerStep {
        self.sending = Some(Fragmenter::new(out, self.fragment_size));
        self.next_fragment(id)
    }

    fn next_fragment(&mut self, id: u8) -> PeerStep {
        let frame = self
            .sending
            .as_mut()
            .and_then(|f| f.next_frame().map(|fr| eap::tls_response(id, &fr)));
        PeerStep::Respond(frame.unwrap_or_else(|| eap::tls_response(id, &TlsFrame::ack())))
    }
}

/// A NAS: wraps EAP in Access-Requests and checks what comes back.
pub struct Nas {
    pub secret: SharedSecret,
    pub framed_mtu: Option<u32>,
    pub calling_station_id: Option<Vec<u8>>,
    pub user_name: Option<Vec<u8>>,
    state: Option<Vec<u8>>,
    next_id: u8,
}

#[derive(Debug)]
pub struct NasReply {
    pub code: Code,
    pub eap: Option<Vec<u8>>,
    pub recv_key: Option<Vec<u8>>,
    pub send_key: Option<Vec<u8>>,
    /// Every standard attribute of the reply, in order, for checks on granted attributes.
    pub attributes: Vec<(u8, Vec<u8>)>,
}

impl Nas {
    pub fn new(secret: &[u8]) -> Self {
        Nas {
            secret: SharedSecret::new(secret.to_vec()),
            framed_mtu: Some(1400),
            calling_station_id: Some(b"02-00-00-00-00-01".to_vec()),
            user_name: None,
            state: None,
            next_id: 0,
        }
    }

    pub fn state(&self) -> Option<&[u8]> {
        self.state.as_deref()
    }

    pub fn set_state(&mut self, s: Option<Vec<u8>>) {
        self.state = s;
    }

    /// Builds the next Access-Request carrying `eap`; returns (packet, its authenticator).
    pub fn access_request(&mut self, eap: &[u8], authenticator: [u8; 16]) -> Vec<u8> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut b = PacketBuilder::new(Code::AccessRequest, id);
        if let Some(u) = &self.user_name {
            let _ = b.attr(attr::USER_NAME, u);
        }
        let _ = b.attr(attr::NAS_IP_ADDRESS, &[127, 0, 0, 1]);
        let _ = b.attr(attr::NAS_PORT_TYPE, &19u32.to_be_bytes());
        if let Some(mtu) = self.framed_mtu {
            let _ = b.attr(attr::FRAMED_MTU, &mtu.to_be_bytes());
        }
        if let Some(c) = &self.calling_station_id {
            let _ = b.attr(attr::CALLING_STATION_ID, c);
        }
        if let Some(s) = &self.state {
            let _ = b.attr(attr::STATE, s);
        }
        b.eap_message(eap);
        b.encode_request(&self.secret, authenticator)
            .unwrap_or_default()
    }

    /// Verifies a reply to the request with `request_authenticator` and extracts what matters.
    pub fn read_reply(
        &mut self,
        reply: &[u8],
        request_authenticator: &[u8; 16],
    ) -> Result<NasReply, PeerError> {
        let p = Packet::decode(reply).map_err(|e| PeerError::Radius(e.to_string()))?;
        radius::auth::verify_response_authenticator(&p, &self.secret, request_authenticator)
            .map_err(|e| PeerError::Radius(format!("Response Authenticator: {e:?}")))?;
        radius::auth::verify_message_authenticator(&p, &self.secret, Some(request_authenticator))
            .map_err(|e| PeerError::Radius(format!("Message-Authenticator: {e:?}")))?;
        if p.attributes().next().map(|a| a.typ) != Some(attr::MESSAGE_AUTHENTICATOR) {
            return Err(PeerError::Radius(
                "Message-Authenticator is not the first attribute".into(),
            ));
        }
        self.state = p.first(attr::STATE).map(|s| s.to_vec());
        let mut recv_key = None;
        let mut send_key = None;
        for v in p.vendor_attributes(attr::VENDOR_MICROSOFT) {
            let k = radius::mppe::decrypt_key(v.value, &self.secret, request_authenticator)
                .map_err(|e| PeerError::Radius(format!("MPPE key: {e:?}")))?;
            match v.typ {
                attr::MS_MPPE_RECV_KEY => recv_key = Some(k),
                attr::MS_MPPE_SEND_KEY => send_key = Some(k),
                _ => {}
            }
        }
        Ok(NasReply {
            code: p.code(),
            eap: p.eap_message(),
            recv_key,
            send_key,
            attributes: p.attributes().map(|a| (a.typ, a.value.to_vec())).collect(),
        })
    }
}

/// How a conversation ended, from the NAS+supplicant's point of view.
#[derive(Debug)]
pub enum Outcome {
    Accepted {
        /// The MS-MPPE keys the server sent decrypt to the supplicant's own MSK halves.
        keys_match: bool,
        reply: NasReply,
    },
    Rejected(NasReply),
}

/// One round trip as seen on the wire, for transcript assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundTrip {
    pub request_eap_len: usize,
    pub reply_code: Code,
    pub reply_eap_len: usize,
}

/// A supplicant behind a NAS: produces Access-Requests, consumes replies.
pub struct Conversation {
    pub supplicant: Supplicant,
    pub nas: Nas,
    last: Option<(Vec<u8>, [u8; 16], usize)>,
    pub transcript: Vec<RoundTrip>,
}

pub enum Next {
    Send(Vec<u8>),
    Done(Box<Outcome>),
}

impl Conversation {
    pub fn new(supplicant: Supplicant, nas: Nas) -> Self {
        Conversation {
            supplicant,
            nas,
            last: None,
            transcript: Vec::new(),
        }
    }

    /// The first Access-Request: EAP-Response/Identity, no State.
    pub fn start(&mut self, authenticator: [u8; 16]) -> Vec<u8> {
        let eap = self.supplicant.identity_response(1);
        self.send(eap, authenticator)
    }

    /// The last request sent, for a NAS-style retransmission.
    pub fn last_request(&self) -> Option<&[u8]> {
        self.last.as_ref().map(|(p, _, _)| p.as_slice())
    }

    fn send(&mut self, eap: Vec<u8>, authenticator: [u8; 16]) -> Vec<u8> {
        let packet = self.nas.access_request(&eap, authenticator);
        self.last = Some((packet.clone(), authenticator, eap.len()));
        packet
    }

    /// Consumes the server's reply to the last request.
    pub fn on_reply(
        &mut self,
        reply: &[u8],
        next_authenticator: [u8; 16],
    ) -> Result<Next, PeerError> {
        let Some((_, auth, eap_len)) = &self.last else {
            return Err(PeerError::Protocol("reply before any request".into()));
        };
        let auth = *auth;
        let request_eap_len = *eap_len;
        let r = self.nas.read_reply(reply, &auth)?;
        self.transcript.push(RoundTrip {
            request_eap_len,
            reply_code: r.code,
            reply_eap_len: r.eap.as_ref().map(|e| e.len()).unwrap_or(0),
        });
        match r.code {
            Code::AccessChallenge => {
                let eap = r
                    .eap
                    .as_deref()
                    .ok_or_else(|| PeerError::Protocol("Access-Challenge without EAP".into()))?;
                match self.supplicant.handle(eap)? {
                    PeerStep::Respond(resp) => Ok(Next::Send(self.send(resp, next_authenticator))),
                    other => Err(PeerError::Protocol(format!(
                        "Access-Challenge carried a final EAP packet: {other:?}"
                    ))),
                }
            }
            Code::AccessAccept => {
                let eap = r
                    .eap
                    .as_deref()
                    .ok_or_else(|| PeerError::Protocol("Access-Accept without EAP".into()))?;
                match self.supplicant.handle(eap)? {
                    PeerStep::Success(keys) => {
                        let keys_match = r.recv_key.as_deref() == Some(keys.mppe_recv_key())
                            && r.send_key.as_deref() == Some(keys.mppe_send_key());
                        Ok(Next::Done(Box::new(Outcome::Accepted {
                            keys_match,
                            reply: r,
                        })))
                    }
                    other => Err(PeerError::Protocol(format!(
                        "Access-Accept without EAP-Success: {other:?}"
                    ))),
                }
            }
            Code::AccessReject => Ok(Next::Done(Box::new(Outcome::Rejected(r)))),
            other => Err(PeerError::Protocol(format!("unexpected reply {other}"))),
        }
    }
}
