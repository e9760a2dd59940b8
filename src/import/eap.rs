//! The FreeRADIUS `eap` module (mods-available/eap) → `[eap]`, `[tls]`, `[identity]` and
//! `[ocsp]`: the EAP-TLS method (RFC 5216, RFC 9190) and its `tls-config` (certificates, CAs and
//! the hashed `ca_path` directory, CRLs per RFC 5280 §5, versions, fragment size, issuer and CN
//! checks, session resumption, OCSP per RFC 6960).

use std::path::{Path, PathBuf};

use super::Aux;
use super::draft::{self, Draft};
use super::raddb_parser::{Item, Loc, Pair, Section};

/// EAP methods certradius does not serve, with what their users need.
fn method_why(name: &str) -> &'static str {
    match name {
        "peap" | "ttls" | "fast" => {
            "tunnelled password methods are not served (EAP-TLS only): their users need certificates, or another server"
        }
        _ => "not served: certradius speaks EAP-TLS only",
    }
}

/// Finds the `eap` module among the enabled modules and translates it.
pub fn translate(modules: &Section, aux: &Aux, d: &mut Draft) {
    let mut eaps = modules.sections("eap");
    let Some(eap) = eaps.next() else {
        d.fatal.push(
            "no eap module is enabled (mods-enabled/eap): certradius needs its tls-config (server certificate and key)"
                .into(),
        );
        return;
    };
    for other in eaps {
        d.untranslated(
            Some(&other.loc),
            format!("eap {}", other.instance()),
            "a second eap module instance: only the first is translated",
        );
    }
    let mut tls_section: Option<&Section> = None;
    for item in &eap.items {
        match item {
            Item::Pair(p) => eap_pair(p, d),
            Item::Section(s) if s.name == "tls-config" => {}
            Item::Section(s) if s.name == "tls" => tls_section = Some(s),
            Item::Section(s) => d.untranslated(
                Some(&s.loc),
                format!("EAP method {}", s.name),
                method_why(&s.name),
            ),
            Item::Word(w) => d.untranslated(
                Some(&w.loc),
                w.name.clone(),
                "not understood in the eap module",
            ),
        }
    }
    let config = match tls_section {
        Some(t) => match t.pair("tls") {
            Some(r) => match eap.sections("tls-config").find(|c| c.instance() == r.value) {
                Some(c) => Some(c),
                None => {
                    d.fatal.push(format!(
                        "{}: tls = {} names no tls-config section",
                        r.loc, r.value
                    ));
                    None
                }
            },
            // Old style: the settings inside `tls { }` itself.
            None => Some(t),
        },
        None => {
            let first = eap.section("tls-config");
            d.untranslated(
                Some(&eap.loc),
                "eap module without a tls { } method",
                match first {
                    Some(_) => {
                        "EAP-TLS was off there; its tls-config is used for certradius's EAP-TLS"
                    }
                    None => "EAP-TLS was off there and there is no tls-config",
                },
            );
            first
        }
    };
    match config {
        Some(c) => tls_config(c, aux, d),
        None if d.fatal.is_empty() => d.fatal.push(format!(
            "{}: no tls-config in the eap module: certradius needs a server certificate and key",
            eap.loc
        )),
        None => {}
    }
}

fn eap_pair(p: &Pair, d: &mut Draft) {
    match p.name.as_str() {
        "default_eap_type" if p.value.eq_ignore_ascii_case("tls") => {}
        "default_eap_type" => d.untranslated(
            Some(&p.loc),
            format!("default_eap_type = {}", p.value),
            "certradius starts every conversation with EAP-TLS: supplicants configured for another method (PEAP/TTLS users, MD5) need another plan",
        ),
        "timer_expire" => number(&mut d.eap, "session_timeout_secs", p, None),
        "max_sessions" => number(&mut d.eap, "max_sessions", p, None),
        _ => d.untranslated(
            Some(&p.loc),
            format!("eap: {}", p.name),
            "no certradius equivalent",
        ),
    }
}

/// `key = N` when the value is a number.
fn number(t: &mut draft::Table, key: &str, p: &Pair, why: Option<&str>) {
    if let Ok(n) = p.value.trim().parse::<u64>() {
        t.set(key, n.to_string(), &[&p.loc], why);
    }
}

fn yes(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" => Some(true),
        "no" | "false" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// `tls_min_version = "1.2"`: certradius does 1.2 and 1.3 only.
fn version(p: &Pair, key: &str, d: &mut Draft) {
    let v = p.value.trim();
    let kept = match v {
        "1.2" | "1.3" => v,
        "1.0" | "1.1" if key == "tls_min_version" => {
            d.note(
                Some(&p.loc),
                format!("tls_min_version = {v}"),
                "raised to 1.2: certradius (rustls) does not speak TLS 1.0 or 1.1",
            );
            "1.2"
        }
        _ => {
            return d.untranslated(
                Some(&p.loc),
                format!("{key} = {v}"),
                "certradius speaks TLS 1.2 and 1.3 only",
            );
        }
    };
    d.tls.set(key, draft::string(kept), &[&p.loc], None);
}

/// Everything of a `tls-config` section.
fn tls_config(c: &Section, aux: &Aux, d: &mut Draft) {
    let mut cas: Vec<(PathBuf, Loc)> = Vec::new();
    let mut crls: Vec<(PathBuf, Loc)> = Vec::new();
    let (mut check_crl, mut check_all) = (None, None);
    for item in &c.items {
        match item {
            Item::Pair(p) => match p.name.as_str() {
                "certificate_file" | "private_key_file" => {
                    d.tls.set(&p.name, draft::string(&p.value), &[&p.loc], None);
                }
                "private_key_password" => {
                    d.files
                        .push((aux.key_password.clone(), format!("{}\n", p.value)));
                    d.tls.set(
                        "private_key_password_file",
                        draft::path(&aux.key_password),
                        &[&p.loc],
                        Some("the password, written to this file (mode 0600)"),
                    );
                    d.note(
                        Some(&p.loc),
                        "private_key_password",
                        format!("written to {} (mode 0600)", aux.key_password.display()),
                    );
                }
                "ca_file" => cas.push((PathBuf::from(&p.value), p.loc.clone())),
                "ca_path" => ca_path(p, &mut cas, &mut crls, d),
                "check_crl" => check_crl = yes(&p.value).map(|v| (v, p.loc.clone())),
                "check_all_crl" => check_all = yes(&p.value).map(|v| (v, p.loc.clone())),
                "allow_expired_crl" => match yes(&p.value) {
                    Some(v) => d
                        .tls
                        .set("allow_expired_crl", v.to_string(), &[&p.loc], None),
                    None => d.untranslated(Some(&p.loc), "allow_expired_crl", "not yes or no"),
                },
                "tls_min_version" | "tls_max_version" => version(p, &p.name, d),
                "fragment_size" => fragment(p, d),
                "check_cert_issuer" => issuer(p, d),
                "check_cert_cn" => cert_cn(p, d),
                other => d.untranslated(
                    Some(&p.loc),
                    format!("tls-config: {other}"),
                    other_why(other),
                ),
            },
            Item::Section(s) => match s.name.as_str() {
                "cache" => cache(s, d),
                "ocsp" => ocsp(s, d),
                "verify" => verify(s, d),
                other => d.untranslated(
                    Some(&s.loc),
                    format!("tls-config: {other} {{ }}"),
                    "no certradius equivalent",
                ),
            },
            Item::Word(w) => {
                d.untranslated(Some(&w.loc), w.name.clone(), "not understood in tls-config")
            }
        }
    }
    crl_scope(check_crl, check_all, &crls, d);
    let ca_locs: Vec<&Loc> = cas.iter().map(|(_, l)| l).collect();
    let ca_paths: Vec<String> = cas
        .iter()
        .map(|(p, _)| p.to_string_lossy().into_owned())
        .collect();
    if ca_paths.is_empty() {
        d.fatal.push(format!(
            "{}: tls-config {} has neither ca_file nor a ca_path with CA certificates: certradius needs the CAs client certificates chain to",
            c.loc,
            c.instance()
        ));
    } else {
        d.tls
            .set("ca_file", draft::strings(&ca_paths), &ca_locs, None);
    }
    if !crls.is_empty() {
        let locs: Vec<&Loc> = crls.iter().map(|(_, l)| l).collect();
        let paths: Vec<String> = crls
            .iter()
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .collect();
        d.tls.set(
            "crl_file",
            draft::strings(&paths),
            &locs,
            Some("the CRLs of ca_path"),
        );
    }
    for key in ["certificate_file", "private_key_file"] {
        if !d.tls.has(key) {
            d.fatal.push(format!(
                "{}: tls-config {} has no {key}",
                c.loc,
                c.instance()
            ));
        }
    }
}

fn other_why(key: &str) -> &'static str {
    match key {
        "cipher_list" | "cipher_server_preference" | "ecdh_curve" | "dh_file" => {
            "rustls's own modern cipher suites and groups apply"
        }
        "random_file" | "make_cert_command" | "pem_file_type" | "private_key_type"
        | "auto_chain" | "include_length" => {
            "not needed: certradius reads PEM chains and keys as they are"
        }
        "disable_tlsv1" | "disable_tlsv1_1" | "disable_tlsv1_2" => {
            "use tls_min_version / tls_max_version"
        }
        _ => "no certradius equivalent",
    }
}

/// The hashed CA directory: its CA certificates join `ca_file`, its CRLs become `crl_file`.
fn ca_path(p: &Pair, cas: &mut Vec<(PathBuf, Loc)>, crls: &mut Vec<(PathBuf, Loc)>, d: &mut Draft) {
    let Ok((found_cas, found_crls)) = super::scan_ca_dir(Path::new(&p.value)) else {
        return d.untranslated(
            Some(&p.loc),
            format!("ca_path = {}", p.value),
            "cannot read the directory",
        );
    };
    if found_cas.is_empty() && found_crls.is_empty() {
        d.note(
            Some(&p.loc),
            format!("ca_path = {}", p.value),
            "holds no PEM CA certificate or CRL: nothing to carry over",
        );
    }
    cas.extend(found_cas.into_iter().map(|f| (f, p.loc.clone())));
    crls.extend(found_crls.into_iter().map(|f| (f, p.loc.clone())));
}

/// check_crl = yes: the leaf only (OpenSSL X509_V_FLAG_CRL_CHECK); check_all_crl = yes: the
/// whole chain (X509_V_FLAG_CRL_CHECK_ALL).
fn crl_scope(
    check_crl: Option<(bool, Loc)>,
    check_all: Option<(bool, Loc)>,
    crls: &[(PathBuf, Loc)],
    d: &mut Draft,
) {
    let scope = match (&check_crl, &check_all) {
        (Some((true, _)), Some((true, l))) | (None, Some((true, l))) => Some(("chain", l)),
        (Some((true, l)), _) => Some(("leaf", l)),
        (Some((false, l)), _) => Some(("none", l)),
        _ => None,
    };
    match scope {
        Some((s, l)) => d.tls.set("check_crl", draft::string(s), &[l], None),
        // FreeRADIUS checks no CRL unless told; certradius would check the chain once
        // crl_file is set.
        None if !crls.is_empty() => d.tls.set(
            "check_crl",
            draft::string("none"),
            &[],
            Some("check_crl was not set: FreeRADIUS checked no CRL"),
        ),
        None => {}
    }
}

fn fragment(p: &Pair, d: &mut Draft) {
    let Ok(n) = p.value.trim().parse::<usize>() else {
        return d.untranslated(Some(&p.loc), "fragment_size", "not a number");
    };
    let range = crate::config::FRAGMENT_SIZE_RANGE;
    let kept = n.clamp(*range.start(), *range.end());
    let why = (kept != n).then_some("clamped to certradius's 64..=3000");
    d.tls.set("fragment_size", kept.to_string(), &[&p.loc], why);
}

/// `check_cert_issuer = "/C=GB/O=Example/CN=Example CA"` (OpenSSL's one-line DN) → the DN as
/// certradius prints it ("C=GB, O=Example, CN=Example CA").
fn issuer(p: &Pair, d: &mut Draft) {
    let dn = p
        .value
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    d.tls.set(
        "allowed_issuers",
        draft::strings(&[dn]),
        &[&p.loc],
        Some("the issuer DN, as certradius prints it"),
    );
}

/// `check_cert_cn = %{User-Name}`: the certificate CN must equal the identity → `[identity]`.
fn cert_cn(p: &Pair, d: &mut Draft) {
    let v = p.value.trim();
    if v == "%{User-Name}" {
        d.identity
            .set("match_fields", draft::strings(&["cn"]), &[&p.loc], None);
    } else {
        d.untranslated(
            Some(&p.loc),
            format!("check_cert_cn = {v}"),
            "only %{User-Name} has an equivalent ([identity] match_fields = [\"cn\"])",
        );
    }
}

fn cache(s: &Section, d: &mut Draft) {
    for item in &s.items {
        match item {
            Item::Pair(p) => match p.name.as_str() {
                "enable" => match yes(&p.value) {
                    Some(v) => d.tls.set("resumption", v.to_string(), &[&p.loc], None),
                    None => d.untranslated(Some(&p.loc), "cache: enable", "not yes or no"),
                },
                "lifetime" => {
                    if let Ok(h) = p.value.trim().parse::<u64>() {
                        let secs = h.saturating_mul(3600).min(u64::from(u32::MAX));
                        d.tls.set("session_lifetime_secs", secs.to_string(), &[&p.loc], Some("hours → seconds"));
                    }
                }
                "max_entries" => number(&mut d.tls, "session_cache_size", p, None),
                "name" => {}
                other => d.untranslated(Some(&p.loc), format!("cache: {other}"), "no certradius equivalent (resumed sessions are verified again instead of stored attributes)"),
            },
            // store { Tunnel-Private-Group-Id }: certradius re-runs the policy on resumption,
            // so the attributes come from it rather than from the cache.
            Item::Section(x) if x.name == "store" => {}
            Item::Section(x) => d.untranslated(Some(&x.loc), format!("cache: {} {{ }}", x.name), "no certradius equivalent"),
            Item::Word(w) => d.untranslated(Some(&w.loc), w.name.clone(), "not understood in cache"),
        }
    }
}

fn ocsp(s: &Section, d: &mut Draft) {
    let enabled = s
        .pair("enable")
        .and_then(|p| yes(&p.value))
        .unwrap_or(false);
    if let Some(p) = s.pair("enable") {
        d.ocsp.set("enable", enabled.to_string(), &[&p.loc], None);
    }
    if !enabled {
        return;
    }
    let override_url = s
        .pair("override_cert_url")
        .and_then(|p| yes(&p.value))
        .unwrap_or(false);
    for item in &s.items {
        let Item::Pair(p) = item else {
            if let Item::Section(x) = item {
                d.untranslated(
                    Some(&x.loc),
                    format!("ocsp: {} {{ }}", x.name),
                    "no certradius equivalent",
                );
            }
            continue;
        };
        match p.name.as_str() {
            "enable" | "override_cert_url" => {}
            "url" if override_url => d.ocsp.set("url", draft::string(&p.value), &[&p.loc], None),
            "url" => {}
            "use_nonce" => match yes(&p.value) {
                Some(v) => d.ocsp.set("use_nonce", v.to_string(), &[&p.loc], None),
                None => d.untranslated(Some(&p.loc), "ocsp: use_nonce", "not yes or no"),
            },
            "softfail" => match yes(&p.value) {
                Some(v) => d.ocsp.set("soft_fail", v.to_string(), &[&p.loc], None),
                None => d.untranslated(Some(&p.loc), "ocsp: softfail", "not yes or no"),
            },
            "timeout" => match p.value.trim().parse::<u64>() {
                Ok(0) => {}
                Ok(n) => d.ocsp.set(
                    "timeout_ms",
                    (n * 1000).to_string(),
                    &[&p.loc],
                    Some("seconds → milliseconds"),
                ),
                Err(_) => d.untranslated(Some(&p.loc), "ocsp: timeout", "not a number"),
            },
            other => d.untranslated(
                Some(&p.loc),
                format!("ocsp: {other}"),
                "no certradius equivalent",
            ),
        }
    }
}

fn verify(s: &Section, d: &mut Draft) {
    if let Some(p) = s.pair("client") {
        d.untranslated(
            Some(&p.loc),
            "verify { client = ... }",
            "an external command checked each certificate: certradius runs no commands; express the check as [[authorize.rule]]s",
        );
    }
}
