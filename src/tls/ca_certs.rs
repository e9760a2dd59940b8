//! The CA certificates of `tls.ca_file`, read once when the configuration is loaded, for the two
//! questions every verified conversation asks of them:
//!
//! - the issuer certificate of the peer's leaf, whose name and key hash an OCSP request carries
//!   (RFC 6960 §4.1.1, `CertID`);
//! - the CA chain above the leaf as (issuer, serial) pairs, what a CRL entry names, kept with the
//!   live session so that revoking an intermediate disconnects what it issued (RFC 5280 §6.3).
//!
//! Both walks used to parse every CA certificate again for every authentication: some 90,000
//! instructions of an RSA handshake's 9.4 million, and at a supplicant's pace a parse that runs
//! with cold caches every time (BENCHMARKS.md, performance round 3). The names they compare are
//! now read here once. Intermediates a peer sends itself are read the first time one arrives and
//! remembered (up to [`MAX_SENT`] of them): every client of a PKI sends the same few.

use std::sync::{Arc, Mutex};

use rustls::pki_types::CertificateDer;

use super::VerifiedPeer;

/// Links a chain walk follows at most: a longer path is not one a CA of ours issues.
const MAX_DEPTH: usize = 8;

/// Distinct peer-sent intermediates remembered read; past this many, further ones are read per
/// conversation (and a peer that sends junk besides its path cannot grow the memory).
const MAX_SENT: usize = 16;

/// What the walks compare of one certificate.
struct Link {
    subject: Vec<u8>,
    issuer_raw: Vec<u8>,
    /// The issuer's name as logs and CRL entries print it.
    issuer: String,
    /// The serial number in lowercase hex, as `openssl x509 -serial` prints it.
    serial: String,
}

impl Link {
    /// None for a certificate x509-parser cannot read (rustls may still accept it as an
    /// anchor); the walks skip such a certificate, as they always have.
    fn parse(der: &[u8]) -> Option<Link> {
        let (_, cert) = crate::x509::parse_certificate(der).ok()?;
        Some(Link {
            subject: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            issuer: cert.issuer().to_string(),
            serial: crate::hex::lower(cert.raw_serial()),
        })
    }

    fn self_issued(&self) -> bool {
        self.subject == self.issuer_raw
    }
}

/// Every certificate of `tls.ca_file`, with the names the walks compare read once.
#[derive(Default)]
pub struct CaCerts {
    certs: Vec<CertificateDer<'static>>,
    /// `links[i]` is `certs[i]` read; None where it could not be.
    links: Vec<Option<Link>>,
    /// Intermediates peers have sent, with what they read as (None: unreadable).
    sent: Mutex<Vec<(CertificateDer<'static>, Option<Arc<Link>>)>>,
}

impl CaCerts {
    pub fn new(certs: Vec<CertificateDer<'static>>) -> CaCerts {
        let links = certs.iter().map(|c| Link::parse(c.as_ref())).collect();
        CaCerts {
            certs,
            links,
            sent: Mutex::default(),
        }
    }

    /// A certificate the peer sent, read once per distinct certificate (see [`MAX_SENT`]).
    fn sent_link(&self, cert: &CertificateDer<'_>) -> Option<Arc<Link>> {
        let known = |sent: &[(CertificateDer<'static>, Option<Arc<Link>>)]| {
            sent.iter()
                .find(|(c, _)| c.as_ref() == cert.as_ref())
                .map(|(_, link)| link.clone())
        };
        if let Some(link) = known(&crate::core::guard::lock(&self.sent)) {
            return link;
        }
        // Parsed without the lock: another conversation's lookup does not wait for it.
        let link = Link::parse(cert.as_ref()).map(Arc::new);
        let mut sent = crate::core::guard::lock(&self.sent);
        if known(&sent).is_none() && sent.len() < MAX_SENT {
            sent.push((cert.clone().into_owned(), link.clone()));
        }
        link
    }

    /// The certificates, in the order of the files.
    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// The issuer certificate (DER) of the peer's leaf: the next certificate of the chain it
    /// sent, or one of ours, whichever first has the leaf's issuer as subject.
    pub fn issuer_of(&self, peer: &VerifiedPeer) -> Option<Vec<u8>> {
        let wanted = peer.leaf().issuer_raw.as_slice();
        let sent = peer.chain().iter().skip(1).find(|c| {
            self.sent_link(c)
                .is_some_and(|link| link.subject.as_slice() == wanted)
        });
        let ours = || {
            self.certs
                .iter()
                .zip(&self.links)
                .find(|(_, link)| {
                    link.as_ref()
                        .is_some_and(|l| l.subject.as_slice() == wanted)
                })
                .map(|(cert, _)| cert)
        };
        sent.or_else(ours).map(|c| c.as_ref().to_vec())
    }

    /// The CA certificates of the peer's verified chain, leaf excluded, as (issuer, serial in
    /// lowercase hex), from the leaf's issuer upwards; each is found in the chain the peer sent
    /// or among ours. At most [`MAX_DEPTH`] links; stops at a self-issued certificate.
    pub fn chain_of(&self, peer: &VerifiedPeer) -> Vec<(String, String)> {
        // Intermediates the peer sent come first, as rustls would have built the path.
        let sent: Vec<Arc<Link>> = peer
            .chain()
            .iter()
            .skip(1)
            .take(MAX_DEPTH)
            .filter_map(|c| self.sent_link(c))
            .collect();
        let mut out = Vec::new();
        let mut wanted = peer.leaf().issuer_raw.as_slice();
        for _ in 0..MAX_DEPTH {
            let found = sent
                .iter()
                .map(|link| &**link)
                .chain(self.links.iter().flatten())
                .find(|link| link.subject.as_slice() == wanted);
            let Some(link) = found else {
                break;
            };
            out.push((link.issuer.clone(), link.serial.clone()));
            if link.self_issued() {
                break;
            }
            wanted = link.issuer_raw.as_slice();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::load_certs;
    use certradius_pki as pki;

    fn serial_and_issuer(der: &[u8]) -> (String, String) {
        let (_, c) = crate::x509::parse_certificate(der).unwrap();
        let serial = crate::hex::lower(c.raw_serial());
        (c.issuer().to_string(), serial)
    }

    #[test]
    fn walks_the_chain_to_the_root_from_our_certificates_and_the_peers() {
        let dir = tempfile::tempdir().unwrap();
        pki::generate(dir.path()).unwrap();
        let paths = pki::PkiPaths::new(dir.path());
        let root = load_certs("test", &paths.ca_cert()).unwrap();
        let intermediate = load_certs("test", &paths.intermediate_cert()).unwrap();
        let root_der = root.first().unwrap().as_ref().to_vec();
        let intermediate_der = intermediate.first().unwrap().as_ref().to_vec();
        let leaf = load_certs("test", &paths.client_cert("rsa")).unwrap();
        let leaf_only = VerifiedPeer::for_test(leaf.get(..1).unwrap().to_vec()).unwrap();
        let expected = vec![
            serial_and_issuer(&intermediate_der),
            serial_and_issuer(&root_der),
        ];
        assert!(expected[0].0.contains(pki::ROOT_CN), "{expected:?}");

        // Both CAs ours, the peer sending its leaf alone.
        let ours = CaCerts::new([root.clone(), intermediate.clone()].concat());
        assert_eq!(ours.chain_of(&leaf_only), expected);
        assert_eq!(ours.issuer_of(&leaf_only), Some(intermediate_der.clone()));

        // Only the root ours: the intermediate comes from the chain the peer sent.
        let root_only = CaCerts::new(root.clone());
        let with_intermediate =
            VerifiedPeer::for_test([leaf.get(..1).unwrap(), &intermediate[..]].concat()).unwrap();
        assert_eq!(root_only.chain_of(&with_intermediate), expected);
        assert_eq!(
            root_only.issuer_of(&with_intermediate),
            Some(intermediate_der.clone())
        );
        // The intermediate was read once and remembered; asked again, the answer is the same.
        assert_eq!(crate::core::guard::lock(&root_only.sent).len(), 1);
        assert_eq!(root_only.chain_of(&with_intermediate), expected);
        assert_eq!(crate::core::guard::lock(&root_only.sent).len(), 1);

        // Past MAX_SENT distinct certificates nothing more is remembered, and the walk still
        // reads what the peer sent.
        let full = CaCerts::new(root.clone());
        for n in 0..MAX_SENT {
            full.sent_link(&CertificateDer::from(vec![
                0x30,
                0x01,
                u8::try_from(n).unwrap(),
            ]));
        }
        assert_eq!(full.chain_of(&with_intermediate), expected);
        assert_eq!(full.issuer_of(&with_intermediate), Some(intermediate_der));
        assert_eq!(crate::core::guard::lock(&full.sent).len(), MAX_SENT);

        // Neither: nothing is made up.
        assert!(root_only.chain_of(&leaf_only).is_empty());
        assert_eq!(root_only.issuer_of(&leaf_only), None);
        assert!(CaCerts::default().chain_of(&leaf_only).is_empty());
    }
}
