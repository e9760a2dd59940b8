//! The NAS side of RADIUS over streams for tests: a RadSec client (RFC 6614, tokio-rustls) and
//! RADIUS/TCP (RFC 6613), with packets framed by the RADIUS Length field.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::peer::PeerError;

pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A RadSec client configuration: `ca_file` verifies the server; `chain` (PEM files, leaf first)
/// and `key` are the NAS certificate; `alpn` the protocols offered (RFC 9765 `radius/1.1`).
pub fn client_config(
    ca_file: &Path,
    chain: &[&Path],
    key: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, PeerError> {
    let setup = |e: certradius::tls::PemError| PeerError::Setup(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for c in certradius::tls::load_certs("ca", ca_file).map_err(setup)? {
        roots
            .add(c)
            .map_err(|e| PeerError::Setup(format!("CA: {e}")))?;
    }
    let mut certs = Vec::new();
    for f in chain {
        certs.extend(certradius::tls::load_certs("NAS certificate", f).map_err(setup)?);
    }
    let key = certradius::tls::load_key("NAS key", key).map_err(setup)?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(certradius::tls::provider())
        .with_protocol_versions(versions)
        .map_err(|e| PeerError::Setup(e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| PeerError::Setup(e.to_string()))?;
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(Arc::new(cfg))
}

/// Connects and completes the TLS handshake (server name `server_name`).
pub async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
) -> std::io::Result<TlsStream> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// Reads one RADIUS packet (by its Length field) from a stream; `None` at a clean end of stream.
pub async fn read_packet<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    match s.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
    if !(20..=4096).contains(&len) {
        return Err(std::io::Error::other(format!("bad RADIUS length {len}")));
    }
    let mut p = vec![0u8; len];
    p[..4].copy_from_slice(&head);
    s.read_exact(&mut p[4..]).await?;
    Ok(Some(p))
}

/// Writes a packet, flushing (TLS records go out at once).
pub async fn write_packet<S: AsyncWrite + Unpin>(s: &mut S, p: &[u8]) -> std::io::Result<()> {
    s.write_all(p).await?;
    s.flush().await
}

/// A RADIUS/1.1 request (RFC 9765 §4): Identifier 0, the Token in the first four octets of the
/// Authenticator, the other twelve zero, no Message-Authenticator; `eap` split into
/// EAP-Message attributes of at most 253 octets.
pub fn v11_request(code: u8, token: u32, eap: Option<&[u8]>, state: Option<&[u8]>) -> Vec<u8> {
    let mut p = vec![code, 0, 0, 0];
    p.extend_from_slice(&token.to_be_bytes());
    p.extend_from_slice(&[0; 12]);
    if let Some(s) = state {
        p.push(24);
        p.push(u8::try_from(s.len() + 2).unwrap_or(255));
        p.extend_from_slice(s);
    }
    if let Some(eap) = eap {
        for chunk in eap.chunks(253) {
            p.push(79);
            p.push(u8::try_from(chunk.len() + 2).unwrap_or(255));
            p.extend_from_slice(chunk);
        }
    }
    let len = u16::try_from(p.len()).unwrap_or(u16::MAX).to_be_bytes();
    p[2] = len[0];
    p[3] = len[1];
    p
}
