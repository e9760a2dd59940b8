//! FreeRADIUS `client` blocks (clients.conf, `clients NAME { }` lists, clients inside a virtual
//! server) → `[[client]]` (RFC 2865 §3 shared secrets; `proto = tcp` RFC 6613, `tls` RFC 6614).

use std::collections::HashMap;

use super::draft::{self, Draft, Table};
use super::raddb_parser::{Item, Section};
use crate::config::Cidr;

/// Fields carried over; anything else in a client block is reported.
const KNOWN: [&str; 9] = [
    "ipaddr",
    "ipv4addr",
    "ipv6addr",
    "netmask",
    "secret",
    "shortname",
    "require_message_authenticator",
    "proto",
    "limit",
];

/// Every client block of the configuration, in reading order.
pub fn translate(root: &Section, d: &mut Draft) {
    let mut seen_addr: HashMap<String, String> = HashMap::new();
    let mut seen_name: HashMap<String, usize> = HashMap::new();
    for item in &root.items {
        let Item::Section(s) = item else { continue };
        match s.name.as_str() {
            "client" => one(s, None, d, &mut seen_addr, &mut seen_name),
            "clients" | "server" => {
                for c in s.sections("client") {
                    let scope = (s.name == "server").then(|| s.instance().to_string());
                    one(c, scope.as_deref(), d, &mut seen_addr, &mut seen_name);
                }
            }
            _ => {}
        }
    }
}

/// The client's address as a CIDR text, or why not.
fn address(c: &Section) -> Result<(String, Vec<&super::raddb_parser::Loc>), String> {
    let (raw, loc) = match ["ipaddr", "ipv4addr", "ipv6addr"]
        .iter()
        .find_map(|k| c.pair(k).map(|p| (k, p)))
    {
        Some((k, p)) => {
            let v = p.value.trim();
            let v = match (v, *k) {
                ("*", "ipv6addr") => "::/0".to_string(),
                ("*", _) => "0.0.0.0/0".to_string(),
                _ => v.to_string(),
            };
            (v, &p.loc)
        }
        // `client 192.0.2.0/24 { }`: the name is the address.
        None => (c.arg.clone().unwrap_or_default(), &c.loc),
    };
    let mut locs = vec![loc];
    let with_mask = match c.pair("netmask") {
        Some(m) if !raw.contains('/') => {
            locs.push(&m.loc);
            format!("{raw}/{}", m.value.trim())
        }
        _ => raw,
    };
    match Cidr::parse(&with_mask) {
        Ok(_) => Ok((with_mask, locs)),
        Err(e) => Err(format!(
            "{with_mask:?} is not an IP address or prefix ({e}); certradius does not resolve host names"
        )),
    }
}

fn one(
    c: &Section,
    scope: Option<&str>,
    d: &mut Draft,
    seen_addr: &mut HashMap<String, String>,
    seen_name: &mut HashMap<String, usize>,
) {
    let label = c.arg.clone().unwrap_or_else(|| "(unnamed)".into());
    let what = format!("client {label}");
    let (addr, addr_locs) = match address(c) {
        Ok(a) => a,
        Err(why) => return d.untranslated(Some(&c.loc), what, why),
    };
    let canonical = Cidr::parse(&addr)
        .map(|c| format!("{c:?}"))
        .unwrap_or(addr.clone());
    if let Some(first) = seen_addr.get(&canonical) {
        return d.untranslated(
            Some(&c.loc),
            format!("{what} ({addr})"),
            format!("duplicate of client {first}: FreeRADIUS refuses a second client for one address; the first is kept"),
        );
    }
    seen_addr.insert(canonical, label.clone());
    let mut t = Table::default();
    let (base, name_loc) = match c.pair("shortname") {
        Some(p) if !p.value.is_empty() => (p.value.clone(), &p.loc),
        _ => (label.clone(), &c.loc),
    };
    let n = seen_name.entry(base.clone()).or_insert(0);
    *n += 1;
    let name = if *n == 1 {
        base
    } else {
        d.note(
            Some(name_loc),
            format!("client name {base:?} used again"),
            format!("named {base}-{n} (certradius client names are unique)"),
        );
        format!("{base}-{n}")
    };
    t.set("name", draft::string(&name), &[name_loc], None);
    t.set("address", draft::string(&addr), &addr_locs, None);
    transport_and_secret(c, &what, &mut t, d);
    message_authenticator(c, &what, &mut t, d);
    limit(c, &what, &t, d);
    if let Some(server) = scope {
        d.note(
            Some(&c.loc),
            what.clone(),
            format!(
                "was a client of virtual server {server} only; certradius has one set of clients"
            ),
        );
    }
    for item in &c.items {
        let (name, loc) = match item {
            Item::Pair(p) => (p.name.as_str(), &p.loc),
            Item::Section(s) => (s.name.as_str(), &s.loc),
            Item::Word(w) => (w.name.as_str(), &w.loc),
        };
        if !KNOWN.contains(&name) {
            let why = match name {
                "virtual_server" => {
                    "certradius has no virtual servers: requests from this client get the one policy"
                }
                "coa_server" => {
                    "coa_server pools are not supported: certradius sends Disconnect-Requests to the client's own address (coa_port)"
                }
                "dynamic_clients" | "lifetime" => {
                    "dynamic clients are not supported: list every NAS or prefix"
                }
                "nas_type" => {
                    "only used by checkrad (simultaneous use), which certradius does not do"
                }
                _ => "no certradius equivalent",
            };
            d.untranslated(Some(loc), format!("{what}: {name}"), why);
        }
    }
    d.clients.push(t);
}

fn transport_and_secret(c: &Section, what: &str, t: &mut Table, d: &mut Draft) {
    let mut tls = false;
    if let Some(p) = c.pair("proto") {
        match p.value.as_str() {
            "udp" => {}
            "tcp" => t.set("transport", draft::string("tcp"), &[&p.loc], None),
            "tls" => {
                tls = true;
                t.set("transport", draft::string("tls"), &[&p.loc], None);
            }
            other => d.untranslated(
                Some(&p.loc),
                format!("{what}: proto = {other}"),
                "carried over as UDP only: a certradius client has one transport (add a second [[client]] with transport = \"tcp\" if the NAS also uses TCP)",
            ),
        }
    }
    match c.pair("secret") {
        Some(p) if !p.value.is_empty() => t.set("secret", draft::string(&p.value), &[&p.loc], None),
        _ if tls => {}
        _ => {
            d.untranslated(
                Some(&c.loc),
                what.to_string(),
                "has no secret: FreeRADIUS refuses it too",
            );
            t.set("secret", draft::string(""), &[], None);
        }
    }
}

fn message_authenticator(c: &Section, what: &str, t: &mut Table, d: &mut Draft) {
    let Some(p) = c.pair("require_message_authenticator") else {
        // FreeRADIUS 3.2.5+ (BlastRADIUS) defaults to "auto"; "auto" also never refuses an
        // older NAS that does not send it.
        t.set(
            "require_message_authenticator",
            draft::string("auto"),
            &[&c.loc],
            Some("not set there: FreeRADIUS's default, \"auto\""),
        );
        return;
    };
    let v = match p.value.to_ascii_lowercase().as_str() {
        "yes" | "true" => "true".to_string(),
        "no" | "false" => "false".to_string(),
        "auto" => draft::string("auto"),
        other => {
            return d.untranslated(
                Some(&p.loc),
                format!("{what}: require_message_authenticator = {other}"),
                "not yes, no or auto; certradius's default (true) applies",
            );
        }
    };
    t.set("require_message_authenticator", v, &[&p.loc], None);
}

/// `limit { max_connections }` applies to RADIUS/TCP and RadSec connections; certradius bounds
/// them per client with one global knob, `radsec.max_connections_per_client`.
fn limit(c: &Section, what: &str, t: &Table, d: &mut Draft) {
    let Some(l) = c.section("limit") else { return };
    let stream = t.has("transport");
    for item in &l.items {
        let Item::Pair(p) = item else { continue };
        if p.name == "max_connections" && stream {
            let n: usize = p.value.parse().unwrap_or(0);
            let current = d
                .radsec
                .lines
                .iter()
                .find(|l| l.key == "max_connections_per_client")
                .and_then(|l| l.value.parse::<usize>().ok());
            if n > 0 && current.is_none_or(|c| n > c) {
                d.radsec.set(
                    "max_connections_per_client",
                    n.to_string(),
                    &[&p.loc],
                    Some("the largest client limit: certradius has one for all clients"),
                );
            }
        } else if (p.name == "lifetime" || p.name == "idle_timeout") && p.value == "0" {
            // 0: no limit, certradius's behaviour for connection lifetime.
        } else {
            let why = if stream {
                "no per-client equivalent (radsec.idle_timeout_secs is global)"
            } else {
                "connection limits apply to TCP; this client is carried over as UDP"
            };
            d.untranslated(Some(&p.loc), format!("{what}: limit {{ {} }}", p.name), why);
        }
    }
}
