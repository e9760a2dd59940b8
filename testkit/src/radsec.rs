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
