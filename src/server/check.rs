//! `certradius check`: what the configuration amounts to, for an operator about to (re)load it —
//! listeners, clients, the server certificate and the CAs with days to expiry (RFC 5280
//! §4.1.2.5 notAfter), CRLs with their nextUpdate (§5.1.2.5), OCSP settings (RFC 6960), rules —
//! and the warnings worth acting on before they become outages.

use std::fmt::Write;
use std::time::SystemTime;

use super::reload::Loaded;
use crate::x509::inventory::{self, days_until};

/// A certificate expiring within this many days is a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// The summary, and the warnings in it (exit code 1 when there are any).
pub struct Report {
    pub text: String,
    pub warnings: Vec<String>,
}

fn date(t: i64) -> String {
    match x509_parser::time::ASN1Time::from_timestamp(t) {
        Ok(d) => d.to_string(),
        Err(_) => t.to_string(),
    }
}

/// Summarises a configuration that loaded without error, as of now.
pub fn report(loaded: &Loaded) -> Report {
    report_at(loaded, super::wall_clock())
}

pub fn report_at(loaded: &Loaded, now: SystemTime) -> Report {
    let c = &loaded.config;
    let mut warnings = Vec::new();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "configuration OK: {} client(s), listen {}, TLS {}..{}, fragment_size {}, {} dictionary attributes, {} authorization rule(s), crypto provider {}, FIPS mode {}",
        c.clients.len(),
        c.server
            .listen
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        c.tls.tls_min_version,
        c.tls.tls_max_version,
        c.tls.fragment_size,
        loaded.dictionary.len(),
        loaded.policy.inner.rule_count(),
        crate::tls::setup::PROVIDER_NAME,
        if crate::tls::provider().fips() {
            "active"
        } else {
            "off"
        }
    );
    let _ = writeln!(out, "\nlisteners:");
    for a in &c.server.listen {
        let _ = writeln!(out, "  udp {a}");
    }
    match c.metrics.listen {
        Some(a) => {
            let _ = writeln!(out, "  metrics http://{a}/metrics");
        }
        None => {
            let _ = writeln!(out, "  metrics off ([metrics] listen unset)");
        }
    }
    let _ = writeln!(out, "\nclients ({}):", c.clients.len());
    for (i, cl) in c.clients.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {} {} require_message_authenticator={:?} max_sessions={}",
            cl.name, cl.address, cl.require_message_authenticator, cl.max_sessions
        );
        if cl.secret.expose() == "testing123" && !cl.address.addr.is_loopback() {
            warnings.push(format!(
                "client[{i}].secret: client {} ({}) is not on loopback and uses the default secret testing123",
                cl.name, cl.address
            ));
        }
    }
    let inv = inventory::read(&c.tls);
    let _ = writeln!(out, "\ncertificates:");
    for cert in &inv.certificates {
        let days = days_until(cert.not_after, now);
        let _ = writeln!(
            out,
            "  {:<6} {}  expires {} ({} days)  [{}]",
            cert.role,
            cert.subject,
            date(cert.not_after),
            days,
            cert.file
        );
        if days < 0 {
            warnings.push(format!(
                "{} certificate {} ({}) has expired",
                cert.role, cert.subject, cert.file
            ));
        } else if days < EXPIRY_WARNING_DAYS {
            warnings.push(format!(
                "{} certificate {} ({}) expires in {days} days",
                cert.role, cert.subject, cert.file
            ));
        }
    }
    let _ = writeln!(out, "\nCRLs (check_crl = {:?}):", c.tls.crl_scope());
    if inv.crls.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for crl in &inv.crls {
        match crl.next_update {
            Some(t) => {
                let days = days_until(t, now);
                let _ = writeln!(
                    out,
                    "  {}  nextUpdate {} ({} days)  [{}]",
                    crl.issuer,
                    date(t),
                    days,
                    crl.file
                );
                if t < inventory::unix_now(now) {
                    warnings.push(format!(
                        "CRL of {} ({}) is past its nextUpdate {}",
                        crl.issuer,
                        crl.file,
                        date(t)
                    ));
                }
            }
            None => {
                let _ = writeln!(out, "  {}  no nextUpdate  [{}]", crl.issuer, crl.file);
            }
        }
    }
    for e in &inv.errors {
        warnings.push(e.clone());
    }
    let o = &c.ocsp;
    if o.enable {
        let _ = writeln!(
            out,
            "\nOCSP: on, mode {:?}, url {}, timeout_ms {}, soft_fail {}, nonce {}, cache {} entries / {} s, {} concurrent lookups",
            o.mode,
            o.url.as_deref().unwrap_or("(from each certificate's AIA)"),
            o.timeout_ms,
            o.soft_fail,
            o.use_nonce,
            o.cache_max_entries,
            o.cache_max_secs,
            o.max_concurrent_lookups
        );
    } else {
        let _ = writeln!(out, "\nOCSP: off");
    }
    let a = &c.authorize;
    let default = a.default.as_deref().unwrap_or(if a.rules.is_empty() {
        "accept"
    } else {
        "reject"
    });
    let _ = writeln!(out, "\nrules ({}, default {default}):", a.rules.len());
    for r in &a.rules {
        let _ = writeln!(
            out,
            "  {} -> {}{}",
            r.name,
            r.action.as_deref().unwrap_or("accept"),
            if r.reply.is_empty() {
                String::new()
            } else {
                format!(
                    " with {}",
                    r.reply.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        );
    }
    let id = &loaded.config.identity;
    if !id.match_fields.is_empty() || !id.templates.is_empty() {
        let _ = writeln!(
            out,
            "identity binding: {} field(s), {} template(s)",
            id.match_fields.len(),
            id.templates.len()
        );
    }
    if !warnings.is_empty() {
        let _ = writeln!(out, "\nwarnings ({}):", warnings.len());
        for w in &warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
    }
    Report {
        text: out,
        warnings,
    }
}
