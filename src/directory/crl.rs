//! CRLs published in the directory: `ldap://` CRL Distribution Points (RFC 5280 §4.2.1.13),
//! the Active Directory Certificate Services default, read through the `[directory]`
//! connection settings (URLs, StartTLS, CA file, service account, timeout).
//!
//! An LDAP URL (RFC 4516) names the entry and the attribute:
//! `ldap:///CN=Issuing CA,CN=host,CN=CDP,CN=Public Key Services,...?certificateRevocationList?base?objectClass=cRLDistributionPoint`.
//! Without a host (AD CS writes `ldap:///`, meaning "a domain controller of this domain") the
//! `[directory] url` list is tried in order; with one, that server (same account and TLS
//! settings). The read is one base-scope search of that entry for the attribute, asked for
//! both with and without the `;binary` transfer option (RFC 4522: OpenLDAP's schema wants it,
//! AD answers either), and the first value is the CRL (DER). Its signature is checked by the
//! caller like any fetched CRL: the directory is a transport, not a trust anchor.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope};

use super::entry::first_value;
use crate::config::{DirectoryConfig, Secret};
use crate::x509::crl_fetch::{FetchFailure, FetchResult, MAX_CRL_BYTES};

/// The connection settings of `[directory]` that a CRL read needs.
#[derive(Clone)]
pub struct CrlReader {
    urls: Vec<String>,
    start_tls: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
    bind: Option<(String, Secret)>,
    timeout: Duration,
}

impl CrlReader {
    /// Reads the password and CA files of `[directory]`; errors name the key, never the
    /// password.
    pub fn from_config(cfg: &DirectoryConfig) -> Result<Self, String> {
        let bind = match (&cfg.bind_dn, &cfg.bind_password_file) {
            (Some(dn), Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("directory.bind_password_file {}: {e}", path.display()))?;
                Some((
                    dn.clone(),
                    Secret::new(text.lines().next().unwrap_or("").to_string()),
                ))
            }
            _ => None,
        };
        let tls = match &cfg.ca_file {
            Some(path) => Some(super::client::tls_config(path)?),
            None => None,
        };
        Ok(CrlReader {
            urls: cfg.url.list(),
            start_tls: cfg.start_tls,
            tls,
            bind,
            timeout: Duration::from_millis(cfg.timeout_ms),
        })
    }

    /// The CRL (DER) the LDAP URL `url` names.
    pub async fn read(&self, url: &str) -> Result<Vec<u8>, FetchFailure> {
        let target = Target::parse(url)?;
        let servers = match &target.server {
            Some(s) => vec![s.clone()],
            None => self.urls.clone(),
        };
        let mut failures: Vec<FetchFailure> = Vec::new();
        for server in &servers {
            match self.read_on(server, &target).await {
                Ok(body) => return Ok(body),
                Err(e) => failures.push(FetchFailure::new(
                    e.result,
                    format!("{server}: {}", e.message),
                )),
            }
        }
        let result = if failures.iter().any(|f| f.result == FetchResult::TooLarge) {
            FetchResult::TooLarge
        } else if !failures.is_empty() && failures.iter().all(|f| f.result == FetchResult::Timeout)
        {
            FetchResult::Timeout
        } else {
            FetchResult::Error
        };
        let message = failures
            .into_iter()
            .map(|f| f.message)
            .collect::<Vec<_>>()
            .join("; ");
        Err(FetchFailure::new(
            result,
            if message.is_empty() {
                "no directory server to ask ([directory] url)".to_string()
            } else {
                message
            },
        ))
    }

    async fn read_on(&self, server: &str, target: &Target) -> Result<Vec<u8>, FetchFailure> {
        let err = |m: String| FetchFailure::new(FetchResult::Error, m);
        let mut conn = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.start_tls && server.starts_with("ldap://"));
        if let Some(tls) = &self.tls {
            conn = conn.set_config(tls.clone());
        }
        let (driver, mut ldap) =
            tokio::time::timeout(self.timeout, LdapConnAsync::with_settings(conn, server))
                .await
                .map_err(|_| {
                    FetchFailure::new(FetchResult::Timeout, "connect timed out".to_string())
                })?
                .map_err(|e| err(format!("connect: {e}")))?;
        let drive = tokio::spawn(async move {
            if let Err(e) = driver.drive().await {
                tracing::debug!("directory CRL read: connection ended: {e}");
            }
        });
        let result = self.search(&mut ldap, target).await;
        let _ = tokio::time::timeout(self.timeout, ldap.unbind()).await;
        drive.abort();
        result
    }

    async fn search(
        &self,
        ldap: &mut ldap3::Ldap,
        target: &Target,
    ) -> Result<Vec<u8>, FetchFailure> {
        let err = |m: String| {
            let result = if m.contains("timeout") || m.contains("timed out") {
                FetchResult::Timeout
            } else {
                FetchResult::Error
            };
            FetchFailure::new(result, m)
        };
        if let Some((dn, password)) = &self.bind {
            let res = ldap
                .with_timeout(self.timeout)
                .simple_bind(dn, password.expose())
                .await
                .map_err(|e| err(format!("bind: {e}")))?;
            if res.rc != 0 {
                return Err(err(format!(
                    "bind as {dn} refused (result code {})",
                    res.rc
                )));
            }
        }
        let binary = format!("{};binary", target.attribute);
        let (entries, _) = ldap
            .with_timeout(self.timeout)
            .search(
                &target.dn,
                Scope::Base,
                &target.filter,
                vec![target.attribute.as_str(), binary.as_str()],
            )
            .await
            .map_err(|e| err(format!("search: {e}")))?
            .non_error()
            .map_err(|e| err(format!("search: {e}")))?;
        let entry = entries
            .into_iter()
            .next()
            .ok_or_else(|| err(format!("no entry {}", target.dn)))?;
        let value = first_value(entry, &target.attribute)
            .ok_or_else(|| err(format!("the entry has no {}", target.attribute)))?;
        if value.len() > MAX_CRL_BYTES {
            return Err(FetchFailure::new(
                FetchResult::TooLarge,
                format!("value larger than {MAX_CRL_BYTES} bytes"),
            ));
        }
        Ok(value)
    }
}

/// What an LDAP CRL URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// `ldap://host:port` or `ldaps://...`; None for `ldap:///` (the `[directory]` servers).
    server: Option<String>,
    dn: String,
    attribute: String,
    filter: String,
}

impl Target {
    fn parse(text: &str) -> Result<Self, FetchFailure> {
        let bad = |why: &str| FetchFailure::new(FetchResult::Error, format!("bad LDAP URL: {why}"));
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "ldap" && url.scheme() != "ldaps" {
            return Err(bad("not ldap:// or ldaps://"));
        }
        let params = ldap3::get_url_params(&url).map_err(|e| bad(&e.to_string()))?;
        if params.base.is_empty() {
            return Err(bad("no entry named"));
        }
        // A CDP names one attribute; "*" (none given) means the usual one.
        let attribute = params
            .attrs
            .first()
            .filter(|a| !a.is_empty() && **a != "*")
            .map_or("certificateRevocationList", |a| {
                a.strip_suffix(";binary").unwrap_or(a)
            })
            .to_string();
        let server = url.host_str().filter(|h| !h.is_empty()).map(|host| {
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}", url.scheme())
        });
        Ok(Target {
            server,
            dn: params.base.into_owned(),
            attribute,
            filter: params.filter.into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ad_cs_distribution_point_names_the_entry_and_uses_the_directory_servers() {
        let t = Target::parse(
            "ldap:///CN=Issuing%20CA,CN=dc1,CN=CDP,CN=Public%20Key%20Services,CN=Services,\
             CN=Configuration,DC=example,DC=org?certificateRevocationList?base?\
             objectClass=cRLDistributionPoint",
        )
        .unwrap();
        assert_eq!(t.server, None);
        assert_eq!(
            t.dn,
            "CN=Issuing CA,CN=dc1,CN=CDP,CN=Public Key Services,CN=Services,\
             CN=Configuration,DC=example,DC=org"
        );
        assert_eq!(t.attribute, "certificateRevocationList");
        assert_eq!(t.filter, "objectClass=cRLDistributionPoint");
    }

    #[test]
    fn a_host_in_the_url_is_the_server_and_binary_is_understood() {
        let t = Target::parse(
            "ldaps://pki.example.org:1636/CN=CA,DC=example?certificateRevocationList;binary",
        )
        .unwrap();
        assert_eq!(t.server.as_deref(), Some("ldaps://pki.example.org:1636"));
        assert_eq!(t.attribute, "certificateRevocationList");
        let t = Target::parse("ldap://127.0.0.1/CN=CA").unwrap();
        assert_eq!(t.server.as_deref(), Some("ldap://127.0.0.1"));
        assert_eq!(t.attribute, "certificateRevocationList");
    }

    #[test]
    fn urls_that_name_nothing_are_refused() {
        for bad in ["ldap:///", "http://x/CN=CA", "ldap://[::1/CN=CA"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
