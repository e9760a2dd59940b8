//! `certradius check`: what the configuration amounts to, for an operator about to (re)load it —
//! listeners, clients, the server certificate and the CAs with days to expiry (RFC 5280
//! §4.1.2.5 notAfter), CRLs with their nextUpdate (§5.1.2.5), OCSP settings (RFC 6960), rules,
//! the MAB allow file —
//! and the warnings worth acting on before they become outages.

use std::fmt::Write;
use std::time::SystemTime;

use super::reload::Loaded;
use crate::config::Config;
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

/// [`report`] as of `now`, in named steps, each adding its lines and warnings.
pub fn report_at(loaded: &Loaded, now: SystemTime) -> Report {
    let c = &loaded.config;
    let mut r = Report {
        text: String::new(),
        warnings: Vec::new(),
    };
    summary(&mut r, loaded);
    listeners(&mut r, c);
    state(&mut r, c);
    clients(&mut r, c);
    let mut inv = inventory::read(&c.tls);
    inventory::read_radsec(&c.radsec, &mut inv);
    certificates(&mut r, &inv, now);
    let (text, rollover) = super::rollover::check_lines(c, &loaded.tls);
    r.text.push_str(&text);
    r.warnings.extend(rollover);
    crls(&mut r, c, &inv, now);
    fetched_crls(&mut r, c);
    r.warnings.extend(inv.errors.iter().cloned());
    ocsp(&mut r, c);
    database(&mut r, c);
    rules(&mut r, c);
    mab(&mut r, loaded);
    warnings(&mut r);
    r
}

/// The one-line verdict: counts, versions, crypto provider.
fn summary(r: &mut Report, loaded: &Loaded) {
    let c = &loaded.config;
    let _ = writeln!(
        r.text,
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
        crate::session::fragment_size_label(c.tls.fragment_size),
        loaded.dictionary.len(),
        loaded.policy.inner.rule_count(),
        crate::tls::setup::PROVIDER_NAME,
        if crate::tls::provider().fips() {
            "active"
        } else {
            "off"
        }
    );
}

fn listeners(r: &mut Report, c: &Config) {
    let out = &mut r.text;
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
    if let Some(a) = c.health.listen {
        let _ = writeln!(
            out,
            "  health http://{a}/healthz, http://{a}/readyz (when unready: {:?})",
            c.server.when_unready
        );
    }
}

/// The files the server writes, as resolved at load (`config::paths`): what `serve` will use
/// and where `certradius sessions` looks for the control socket.
fn state(r: &mut Report, c: &Config) {
    let out = &mut r.text;
    match &c.state_directory {
        Some(dir) => {
            let _ = writeln!(out, "\nstate (relative paths in {}):", dir.display());
        }
        None => {
            let _ = writeln!(out, "\nstate (relative paths in the working directory):");
        }
    }
    let _ = writeln!(out, "  state_file {}", c.server.state_file.display());
    let _ = writeln!(
        out,
        "  control socket {}",
        super::control::path(c).display()
    );
    if let Some(f) = &c.accounting.file {
        let _ = writeln!(out, "  accounting file {}", f.display());
    }
    if c.accounting.database_url.is_some() {
        let dir = c.accounting.queue_dir_or(&c.server.state_file);
        let _ = writeln!(out, "  accounting queue {}", dir.display());
    }
    if let Some(f) = &c.audit.file {
        let _ = writeln!(out, "  audit file {}", f.display());
    }
}

/// The accounting database: where, and the TLS mode in force (`config/database.rs`); a
/// plain-text link to a host that is not this one is a warning (the records and the password
/// cross the network readable).
fn database(r: &mut Report, c: &Config) {
    use crate::config::database::{self, SslMode};
    use tokio_postgres::config::Host;
    let Some(url) = &c.accounting.database_url else {
        return;
    };
    // The configuration loaded, so the URL parsed; the message never quotes it.
    let Ok(target) = database::parse(url.expose()) else {
        return;
    };
    let hosts: Vec<String> = target
        .config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let mode = target.effective_mode();
    let what = match mode {
        SslMode::Disable => "no TLS",
        SslMode::Prefer => "TLS if the server offers it, certificate not checked",
        SslMode::Require => "TLS, certificate not checked",
        SslMode::VerifyCa => "TLS, certificate chain checked against sslrootcert",
        SslMode::VerifyFull => "TLS, certificate chain and host name checked",
    };
    let _ = writeln!(
        r.text,
        "
accounting database:
  host {}  sslmode={} ({what})",
        hosts.join(","),
        mode.as_str()
    );
    if let Some(root) = &target.root_cert {
        let _ = writeln!(r.text, "  sslrootcert {}", root.display());
    }
    // `hostaddr`, when given, is where the connection goes (the host is then only the name).
    let addrs = target.config.get_hostaddrs();
    let remote = if addrs.is_empty() {
        target.config.get_hosts().iter().any(|h| match h {
            Host::Tcp(name) => {
                name != "localhost"
                    && !name
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            Host::Unix(_) => false,
        })
    } else {
        addrs.iter().any(|ip| !ip.is_loopback())
    };
    if mode == SslMode::Disable && remote {
        r.warnings.push(format!(
            "accounting.database_url: sslmode=disable to {}, not on this host: records and the \
             password cross the network in clear (use sslmode=verify-full with sslrootcert=)",
            hosts.join(",")
        ));
    }
}

/// Each NAS; the default secret on a non-loopback client is a warning.
fn clients(r: &mut Report, c: &Config) {
    let _ = writeln!(r.text, "\nclients ({}):", c.clients.len());
    for (i, cl) in c.clients.iter().enumerate() {
        let _ = writeln!(
            r.text,
            "  {} {} require_message_authenticator={:?} max_sessions={}{}",
            cl.name,
            cl.address,
            cl.require_message_authenticator,
            cl.max_sessions,
            tls_overrides(c, cl)
        );
        if cl.secret.expose() == "testing123" && !cl.address.addr.is_loopback() {
            r.warnings.push(format!(
                "client[{i}].secret: client {} ({}) is not on loopback and uses the default secret testing123",
                cl.name, cl.address
            ));
        }
    }
}

/// A NAS's `[tls]` overrides as `check` prints them (empty when it has none).
fn tls_overrides(c: &Config, cl: &crate::config::ClientConfig) -> String {
    let mut out = String::new();
    if let Some((min, max)) = cl.tls_versions(c.tls.tls_min_version, c.tls.tls_max_version) {
        let _ = write!(out, " tls={min}..{max}");
    }
    if let Some(schemes) = &cl.client_signature_schemes {
        let names: Vec<&str> = schemes.iter().map(|s| s.name).collect();
        let _ = write!(out, " client_signature_schemes=[{}]", names.join(","));
    }
    out
}

/// Each certificate with its days to notAfter; expired or within [`EXPIRY_WARNING_DAYS`] warns.
fn certificates(r: &mut Report, inv: &inventory::Inventory, now: SystemTime) {
    let _ = writeln!(r.text, "\ncertificates:");
    for cert in &inv.certificates {
        let days = days_until(cert.not_after, now);
        let _ = writeln!(
            r.text,
            "  {:<6} {}  expires {} ({} days)  [{}]",
            cert.role,
            cert.subject,
            date(cert.not_after),
            days,
            cert.file
        );
        if days < 0 {
            r.warnings.push(format!(
                "{} certificate {} ({}) has expired",
                cert.role, cert.subject, cert.file
            ));
        } else if cert.not_before > inventory::unix_now(now) {
            r.warnings.push(format!(
                "{} certificate {} ({}) is not valid before {}",
                cert.role,
                cert.subject,
                cert.file,
                date(cert.not_before)
            ));
        } else if days < EXPIRY_WARNING_DAYS {
            r.warnings.push(format!(
                "{} certificate {} ({}) expires in {days} days",
                cert.role, cert.subject, cert.file
            ));
        }
        if cert.role == "server" && days < EXPIRY_WARNING_DAYS {
            r.warnings.push(
                "renew the server certificate from the same CA with the same names (keep the key if \
                 devices pin it): supplicants refuse an expired or unfamiliar server certificate, \
                 which the log shows as reason supplicant_rejected_server_certificate"
                    .to_string(),
            );
        }
    }
}

/// Each CRL with its nextUpdate; one past it warns.
fn crls(r: &mut Report, c: &Config, inv: &inventory::Inventory, now: SystemTime) {
    let _ = writeln!(r.text, "\nCRLs (check_crl = {:?}):", c.tls.crl_scope());
    if inv.crls.is_empty() {
        let _ = writeln!(r.text, "  none");
    }
    for crl in &inv.crls {
        match crl.next_update {
            Some(t) => {
                let days = days_until(t, now);
                let _ = writeln!(
                    r.text,
                    "  {}  nextUpdate {} ({} days)  [{}]",
                    crl.issuer,
                    date(t),
                    days,
                    crl.file
                );
                if t < inventory::unix_now(now) {
                    r.warnings.push(format!(
                        "CRL of {} ({}) is past its nextUpdate {}",
                        crl.issuer,
                        crl.file,
                        date(t)
                    ));
                }
            }
            None => {
                let _ = writeln!(r.text, "  {}  no nextUpdate  [{}]", crl.issuer, crl.file);
            }
        }
    }
}

/// The fetched CRL sources (`tls.crl_url`, `tls.crl_from_certificates`) and their cache.
fn fetched_crls(r: &mut Report, c: &Config) {
    use crate::x509::crl_fetch;
    let (urls, skipped) = crl_fetch::sources(&c.tls);
    if urls.is_empty() && skipped.is_empty() {
        return;
    }
    let _ = writeln!(
        r.text,
        "\nFetched CRLs (every {} s; at most {} MiB, {} s, {} redirects):",
        c.tls.crl_refresh_secs,
        crl_fetch::MAX_CRL_BYTES / (1024 * 1024),
        crl_fetch::FETCH_TIMEOUT.as_secs(),
        crl_fetch::MAX_REDIRECTS
    );
    let (_, cas) = crl_fetch::configured_cas(&c.tls);
    for url in &urls {
        let url_shown = crate::escape::Escaped::str(url);
        let Some(dir) = &c.tls.crl_cache_dir else {
            let _ = writeln!(r.text, "  {url_shown}  (no cache directory)");
            continue;
        };
        let path = crl_fetch::cache_path(dir, url);
        match std::fs::read(&path) {
            Err(_) => {
                let _ = writeln!(r.text, "  {url_shown}  not cached yet [{}]", path.display());
            }
            Ok(body) => match crl_fetch::verify_body(&body, &cas, &path) {
                Ok(crls) => {
                    for crl in crls {
                        let next = crl
                            .next_update
                            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                            .and_then(|d| i64::try_from(d.as_secs()).ok())
                            .map_or_else(|| "no nextUpdate".to_string(), date);
                        let _ = writeln!(
                            r.text,
                            "  {url_shown}  cached: {}, {} revoked, nextUpdate {next} [{}]",
                            crl.issuer,
                            crl.revoked,
                            path.display()
                        );
                    }
                }
                Err(e) => {
                    let _ = writeln!(r.text, "  {url_shown}  cache unusable: {}", e.message);
                    r.warnings.push(format!(
                        "cached CRL of {url_shown} ({}) is unusable: {}",
                        path.display(),
                        e.message
                    ));
                }
            },
        }
    }
    for url in &skipped {
        let _ = writeln!(
            r.text,
            "  {}  skipped: only http:// is fetched, and ldap:// needs the [directory] section",
            crate::escape::Escaped::str(url)
        );
    }
}

fn ocsp(r: &mut Report, c: &Config) {
    let o = &c.ocsp;
    if o.enable {
        let _ = writeln!(
            r.text,
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
        let _ = writeln!(r.text, "\nOCSP: off");
    }
}

/// The authorization rules with the attributes each grants, and the identity binding.
/// MAC Authentication Bypass: the allow file's counts (a file that does not parse failed the
/// load already, naming its line).
fn mab(r: &mut Report, loaded: &Loaded) {
    let out = &mut r.text;
    let c = &loaded.config.mab;
    match &loaded.mab {
        Some(list) => {
            let _ = writeln!(
                out,
                "\nmab: on, allow_file {}: {} MAC(s), {} vendor prefix(es) (OUI)",
                c.allow_file.display(),
                list.macs(),
                list.ouis()
            );
            if list.macs() == 0 && list.ouis() == 0 {
                r.warnings
                    .push("mab.allow_file lists no device: every MAB request is refused".into());
            }
        }
        None => {
            let _ = writeln!(
                out,
                "\nmab: off (MAB requests are refused with mab_disabled)"
            );
        }
    }
}

fn rules(r: &mut Report, c: &Config) {
    let out = &mut r.text;
    let a = &c.authorize;
    let default = a.default.as_deref().unwrap_or(if a.rules.is_empty() {
        "accept"
    } else {
        "reject"
    });
    let _ = writeln!(out, "\nrules ({}, default {default}):", a.rules.len());
    if c.directory.is_none() {
        for rule in &a.rules {
            if rule
                .r#match
                .keys()
                .any(|k| k.eq_ignore_ascii_case("directory_group"))
            {
                r.warnings.push(format!(
                    "authorize rule {:?} matches directory_group, but there is no [directory]: \
                     it never matches",
                    rule.name
                ));
            }
        }
    }
    let out = &mut r.text;
    for rule in &a.rules {
        let _ = writeln!(
            out,
            "  {} -> {}{}",
            rule.name,
            rule.action.as_deref().unwrap_or("accept"),
            if rule.reply.is_empty() {
                String::new()
            } else {
                format!(
                    " with {}",
                    rule.reply.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        );
    }
    let id = &c.identity;
    if !id.match_fields.is_empty() || !id.templates.is_empty() {
        let _ = writeln!(
            out,
            "identity binding: {} field(s), {} template(s)",
            id.match_fields.len(),
            id.templates.len()
        );
    }
}

/// The warnings gathered by the steps above, repeated at the end where an operator looks.
fn warnings(r: &mut Report) {
    if !r.warnings.is_empty() {
        let _ = writeln!(r.text, "\nwarnings ({}):", r.warnings.len());
        for w in &r.warnings {
            let _ = writeln!(r.text, "  warning: {w}");
        }
    }
}
