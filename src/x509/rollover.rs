//! Server certificate rollover: what supplicants pin, and whether a new server certificate
//! keeps it.
//!
//! EAP-TLS supplicants validate the server certificate against what their profile pins, not
//! against a browser's trust store (RFC 5216 §5.3, RFC 9190 §5.1): Windows pins the root's
//! thumbprint and the server names ("Connect to these servers"), Apple profiles list the
//! certificates and `TLSTrustedServerNames`, Android pins a CA and a domain. A renewed
//! certificate from another CA, or with another subject or SAN DNS names, is refused by those
//! devices with a fatal alert, which the server logs as `supplicant_rejected_server_certificate`.
//! [`changes`] names what changed and who will refuse it, for the reload log and `check`.

use std::path::Path;

/// What supplicants pin of a server certificate (RFC 5280 §4.1.2.4 issuer, §4.1.2.6 subject,
/// §4.2.1.6 subjectAltName dNSName).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedIdentity {
    pub issuer: String,
    pub subject: String,
    pub dns_names: Vec<String>,
}

impl ServedIdentity {
    /// The identity of a DER certificate; None when it does not parse.
    pub fn of(der: &[u8]) -> Option<ServedIdentity> {
        let (_, cert) = super::parse_certificate(der).ok()?;
        let mut dns_names: Vec<String> = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => {
                            Some(d.to_ascii_lowercase())
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        dns_names.sort();
        dns_names.dedup();
        Some(ServedIdentity {
            issuer: cert.issuer().to_string(),
            subject: cert.subject().to_string(),
            dns_names,
        })
    }

    /// The identity of the first certificate of a PEM file.
    pub fn of_file(path: &Path) -> Option<ServedIdentity> {
        let certs = super::pem::load_certs("tls.certificate_file", path).ok()?;
        Self::of(certs.first()?.as_ref())
    }
}

/// One warning per difference that makes supplicants refuse the new certificate; empty when
/// the rollover keeps what they pin.
pub fn changes(old: &ServedIdentity, new: &ServedIdentity) -> Vec<String> {
    let mut out = Vec::new();
    if old.issuer != new.issuer {
        out.push(format!(
            "the new server certificate is issued by \"{}\", the one served so far by \"{}\": \
             supplicants that pin the issuing CA (Windows: trusted root thumbprint; Android: CA \
             certificate; Apple: the profile's certificates) will refuse it until their profile \
             trusts the new CA; they show up as reason supplicant_rejected_server_certificate",
            new.issuer, old.issuer
        ));
    }
    if old.subject != new.subject {
        out.push(format!(
            "the new server certificate's subject is \"{}\", was \"{}\": supplicants that check \
             the server name (Windows: Connect to these servers; Apple: TLSTrustedServerNames) \
             may refuse it (reason supplicant_rejected_server_certificate)",
            new.subject, old.subject
        ));
    }
    if old.dns_names != new.dns_names {
        out.push(format!(
            "the new server certificate's SAN DNS names are [{}], were [{}]: supplicants that \
             check a domain (Android: Domain; Windows: Connect to these servers) will refuse \
             it if theirs is gone (reason supplicant_rejected_server_certificate)",
            new.dns_names.join(", "),
            old.dns_names.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(issuer: &str, subject: &str, dns: &[&str]) -> ServedIdentity {
        ServedIdentity {
            issuer: issuer.into(),
            subject: subject.into(),
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_renewal_with_the_same_ca_and_names_warns_nothing() {
        let a = id("CN=CA", "CN=radius", &["radius.example.org"]);
        assert!(changes(&a, &a.clone()).is_empty());
    }

    #[test]
    fn each_change_is_named_with_who_refuses_it() {
        let a = id("CN=CA", "CN=radius", &["radius.example.org"]);
        let b = id("CN=Other CA", "CN=radius2", &["radius2.example.org"]);
        let w = changes(&a, &b);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("CN=Other CA") && w[0].contains("Windows"));
        assert!(w[1].contains("CN=radius2"));
        assert!(w[2].contains("radius2.example.org") && w[2].contains("Android"));
        assert!(
            w.iter()
                .all(|l| l.contains("supplicant_rejected_server_certificate"))
        );
    }
}
