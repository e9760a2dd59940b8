//! Virtual servers (sites-enabled): `listen` sections → `server.listen` (RFC 2865 UDP),
//! `[accounting] listen` (RFC 2866), `[tcp] listen` (RFC 6613) and `[radsec]` (RFC 6614); the
//! processing sections (`authorize`, `post-auth`, ...) are read only to report what they do
//! that is not translated — unlang (`if`, `update`, policies) and module calls — with its
//! location, never guessed.

use std::collections::HashSet;

use super::Aux;
use super::draft::{self, Draft};
use super::raddb_parser::{Item, Loc, Pair, Section};

/// Listening addresses found, by kind, with where each came from.
#[derive(Default)]
pub struct Listens {
    auth: Vec<(String, Loc)>,
    acct: Vec<(String, Loc)>,
    tcp: Vec<(String, Loc)>,
    radsec: Vec<(String, Loc)>,
}

/// Return codes and flow control: statements that do nothing to translate.
const FLOW: [&str; 12] = [
    "ok",
    "noop",
    "reject",
    "fail",
    "handled",
    "invalid",
    "userlock",
    "notfound",
    "updated",
    "return",
    "break",
    "do_not_respond",
];

/// Processing sections whose contents are checked for unlang and module calls.
const PROCESSING: [&str; 12] = [
    "authorize",
    "authenticate",
    "post-auth",
    "preacct",
    "accounting",
    "session",
    "pre-proxy",
    "post-proxy",
    "recv-coa",
    "send-coa",
    "recv",
    "send",
];

pub struct Sites<'a> {
    /// Modules whose calls are carried over (eap, the MAB files instances, sql for accounting).
    pub translated: &'a HashSet<String>,
    /// Policy names (policy.d), to say "policy" rather than "module".
    pub policies: &'a HashSet<String>,
    /// Virtual servers that are the inner tunnel of PEAP/TTLS.
    pub inner: &'a HashSet<String>,
    /// The FreeRADIUS directory, for locations in rule drafts.
    pub raddb: &'a std::path::Path,
}

impl Sites<'_> {
    pub fn translate(&self, root: &Section, aux: &Aux, d: &mut Draft) -> Listens {
        let mut l = Listens::default();
        for item in &root.items {
            let Item::Section(s) = item else { continue };
            match s.name.as_str() {
                "listen" => listen(s, aux, &mut l, d),
                "server" => self.server(s, aux, &mut l, d),
                _ => {}
            }
        }
        l
    }

    fn server(&self, s: &Section, aux: &Aux, l: &mut Listens, d: &mut Draft) {
        let name = s.instance();
        if self.inner.contains(name) {
            return d.untranslated(
                Some(&s.loc),
                format!("virtual server {name}"),
                "the inner tunnel of PEAP/TTLS: not needed, certradius serves EAP-TLS only",
            );
        }
        for item in &s.items {
            match item {
                Item::Section(x) if x.name == "listen" => listen(x, aux, l, d),
                Item::Section(x) if x.name == "client" => {}
                Item::Section(x) if PROCESSING.contains(&x.name.as_str()) => {
                    self.processing(x, &x.name, d);
                }
                Item::Section(x) => d.untranslated(
                    Some(&x.loc),
                    format!("server {name}: {} {{ }}", x.name),
                    "no certradius equivalent",
                ),
                Item::Pair(p) if p.name == "namespace" && p.value != "radius" => d.untranslated(
                    Some(&p.loc),
                    format!("server {name}: namespace = {}", p.value),
                    "only RADIUS is served",
                ),
                Item::Pair(_) => {}
                Item::Word(w) => d.untranslated(
                    Some(&w.loc),
                    format!("server {name}: {}", w.name),
                    "not understood",
                ),
            }
        }
    }

    /// The statements of `authorize { }` and the like.
    fn processing(&self, s: &Section, within: &str, d: &mut Draft) {
        for item in &s.items {
            match item {
                Item::Word(w) => self.call(&w.name, &w.loc, within, d),
                Item::Section(x) => match x.name.as_str() {
                    "Auth-Type" | "Post-Auth-Type" | "Acct-Type" | "Session-Type" | "Autz-Type"
                    | "Post-Proxy-Type" | "Pre-Proxy-Type" => {
                        let inner = format!("{within} {} {}", x.name, x.instance());
                        self.processing(x, &inner, d);
                    }
                    "if"
                    | "elsif"
                    | "else"
                    | "update"
                    | "switch"
                    | "case"
                    | "foreach"
                    | "map"
                    | "redundant"
                    | "load-balance"
                    | "redundant-load-balance"
                    | "parallel"
                    | "group"
                    | "subrequest"
                    | "call" => {
                        if x.name == "if" {
                            super::rule_drafts::offer(x, within, self.raddb, d);
                        }
                        let arg = x
                            .arg
                            .as_deref()
                            .map(|a| format!(" {a}"))
                            .unwrap_or_default();
                        d.untranslated(
                            Some(&x.loc),
                            format!("{within}: unlang `{}{arg}`", x.name),
                            "conditions and attribute edits are not translated: express them as [[authorize.rule]]s ([authorize] in the README)",
                        );
                    }
                    // `eap { ok = return }`: a module call with its return codes overridden.
                    _ => self.call(&x.name, &x.loc, within, d),
                },
                Item::Pair(p) => d.untranslated(
                    Some(&p.loc),
                    // The value is left out: it may be anything, a password included.
                    format!("{within}: {} {} ...", p.name, p.op),
                    "not understood in a processing section",
                ),
            }
        }
    }

    fn call(&self, name: &str, loc: &Loc, within: &str, d: &mut Draft) {
        if FLOW.contains(&name) {
            return;
        }
        // `sql` in authorize reads users from the database: only its accounting is carried.
        let section = within.split(' ').next().unwrap_or(within);
        let module = name.split('.').next().unwrap_or(name);
        if self.translated.contains(module)
            && (module != "sql" || matches!(section, "accounting" | "preacct" | "post-auth"))
        {
            return;
        }
        let why = if self.policies.contains(name) {
            "a policy (unlang from policy.d): not translated, check what it does"
        } else if module == "sql" {
            "reading users or groups from SQL is not translated (only accounting to PostgreSQL is)"
        } else {
            "this module's work is not done by certradius (EAP-TLS, MAB allow list, accounting only)"
        };
        d.untranslated(Some(loc), format!("{within}: calls {name}"), why);
    }
}

impl Listens {
    /// Puts the addresses into the draft; `true` when there is an accounting listener.
    pub fn write(self, d: &mut Draft) -> bool {
        let put = |t: &mut draft::Table, key: &str, list: Vec<(String, Loc)>| {
            let mut addrs: Vec<String> = Vec::new();
            let mut locs: Vec<Loc> = Vec::new();
            for (a, l) in list {
                if !addrs.contains(&a) {
                    addrs.push(a);
                    locs.push(l);
                }
            }
            if !addrs.is_empty() {
                let refs: Vec<&Loc> = locs.iter().collect();
                t.set(key, draft::strings(&addrs), &refs, None);
            }
        };
        let acct = !self.acct.is_empty();
        put(&mut d.server, "listen", self.auth);
        put(&mut d.accounting, "listen", self.acct);
        put(&mut d.tcp, "listen", self.tcp);
        put(&mut d.radsec, "listen", self.radsec);
        acct
    }
}

/// `ipaddr = *` and `port = 0` (the services file: 1812, 1813, 2083) as a socket address.
fn address(s: &Section, default_port: u16) -> Result<String, String> {
    let (key, p) = match ["ipaddr", "ipv4addr", "ipv6addr"]
        .iter()
        .find_map(|k| s.pair(k).map(|p| (*k, p)))
    {
        Some(x) => x,
        None => return Err("no ipaddr: certradius needs an address to listen on".into()),
    };
    let ip: std::net::IpAddr = match (p.value.trim(), key) {
        ("*", "ipv6addr") => std::net::Ipv6Addr::UNSPECIFIED.into(),
        ("*", _) => std::net::Ipv4Addr::UNSPECIFIED.into(),
        (v, _) => v
            .parse()
            .map_err(|_| format!("{v:?} is not an IP address (host names are not resolved)"))?,
    };
    let port = match s.pair("port").map(|p| p.value.trim().parse::<u16>()) {
        None | Some(Ok(0)) => default_port,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err("port is not a number".into()),
    };
    Ok(std::net::SocketAddr::new(ip, port).to_string())
}

fn listen(s: &Section, aux: &Aux, l: &mut Listens, d: &mut Draft) {
    let kind = s.pair("type").map_or("auth", |p| p.value.as_str());
    let proto = s.pair("proto").map_or("udp", |p| p.value.as_str());
    let tls = s.section("tls");
    let (list, default_port, what) = match (kind, proto, tls.is_some()) {
        ("auth" | "auth+acct", "tcp", true) => (&mut l.radsec, 2083, "RadSec listener"),
        ("auth", "tcp", false) => (&mut l.tcp, 1812, "RADIUS/TCP listener"),
        ("auth", "udp", _) => (&mut l.auth, 1812, "listener"),
        ("acct", "udp", _) => (&mut l.acct, 1813, "accounting listener"),
        _ => {
            return d.untranslated(
                Some(&s.loc),
                format!("listen type = {kind}, proto = {proto}"),
                "certradius listens for authentication (UDP, TCP, RadSec) and UDP accounting only",
            );
        }
    };
    match address(s, default_port) {
        Ok(a) => list.push((a, s.loc.clone())),
        Err(why) => return d.untranslated(Some(&s.loc), what, why),
    }
    for item in &s.items {
        match item {
            Item::Pair(p) => match p.name.as_str() {
                "type" | "proto" | "ipaddr" | "ipv4addr" | "ipv6addr" | "port" | "clients" => {}
                "virtual_server" => {}
                other => d.untranslated(
                    Some(&p.loc),
                    format!("listen: {other}"),
                    "no certradius equivalent",
                ),
            },
            Item::Section(x) if x.name == "tls" => radsec_tls(x, aux, d),
            Item::Section(x) if x.name == "limit" => listen_limit(x, proto, d),
            Item::Section(x) => d.untranslated(
                Some(&x.loc),
                format!("listen: {} {{ }}", x.name),
                "no certradius equivalent",
            ),
            Item::Word(w) => d.untranslated(
                Some(&w.loc),
                format!("listen: {}", w.name),
                "not understood",
            ),
        }
    }
}

fn listen_limit(s: &Section, proto: &str, d: &mut Draft) {
    for p in s.items.iter().filter_map(|i| match i {
        Item::Pair(p) => Some(p),
        _ => None,
    }) {
        match (p.name.as_str(), proto) {
            ("max_connections", "tcp") => {
                if let Ok(n) = p.value.trim().parse::<u64>()
                    && n > 0
                {
                    d.radsec
                        .set("max_connections", n.to_string(), &[&p.loc], None);
                }
            }
            ("idle_timeout", "tcp") => {
                if let Ok(n) = p.value.trim().parse::<u64>()
                    && n > 0
                {
                    d.radsec
                        .set("idle_timeout_secs", n.to_string(), &[&p.loc], None);
                }
            }
            (_, _) if p.value.trim() == "0" => {}
            ("max_connections" | "lifetime" | "idle_timeout", "udp") => {
                // Connection limits of a UDP listener bind nothing.
            }
            (name, _) => d.untranslated(
                Some(&p.loc),
                format!("listen limit: {name}"),
                "no certradius equivalent (server.max_in_flight bounds the work in progress)",
            ),
        }
    }
}

/// The `tls { }` of a RadSec listener → `[radsec]` certificate, key, CAs, CRLs.
fn radsec_tls(s: &Section, aux: &Aux, d: &mut Draft) {
    let mut cas: Vec<(String, Loc)> = Vec::new();
    let mut crls: Vec<(String, Loc)> = Vec::new();
    for item in &s.items {
        let Item::Pair(p) = item else {
            if let Item::Section(x) = item {
                d.untranslated(
                    Some(&x.loc),
                    format!("radsec tls: {} {{ }}", x.name),
                    "no certradius equivalent",
                );
            }
            continue;
        };
        match p.name.as_str() {
            "certificate_file" | "private_key_file" => {
                d.radsec
                    .set(&p.name, draft::string(&p.value), &[&p.loc], None)
            }
            "private_key_password" => password(p, aux, d),
            "ca_file" => cas.push((p.value.clone(), p.loc.clone())),
            "ca_path" => hashed_dir(p, &mut cas, &mut crls),
            "tls_min_version" => match p.value.trim() {
                v @ ("1.2" | "1.3") => {
                    d.radsec
                        .set("tls_min_version", draft::string(v), &[&p.loc], None)
                }
                v => d.note(
                    Some(&p.loc),
                    format!("radsec tls_min_version = {v}"),
                    "certradius's minimum is 1.2",
                ),
            },
            "require_client_cert" if p.value == "yes" => {}
            "check_crl" | "tls_max_version" | "fragment_size" => {}
            other => d.untranslated(
                Some(&p.loc),
                format!("radsec tls: {other}"),
                "no certradius equivalent",
            ),
        }
    }
    for (key, list) in [("ca_file", cas), ("crl_file", crls)] {
        if !list.is_empty() {
            let paths: Vec<&str> = list.iter().map(|(p, _)| p.as_str()).collect();
            let locs: Vec<&Loc> = list.iter().map(|(_, l)| l).collect();
            d.radsec.set(key, draft::strings(&paths), &locs, None);
        }
    }
}

fn password(p: &Pair, aux: &Aux, d: &mut Draft) {
    d.files
        .push((aux.radsec_key_password.clone(), format!("{}\n", p.value)));
    d.radsec.set(
        "private_key_password_file",
        draft::path(&aux.radsec_key_password),
        &[&p.loc],
        Some("the password, written to this file (mode 0600)"),
    );
    d.note(
        Some(&p.loc),
        "radsec private_key_password",
        format!(
            "written to {} (mode 0600)",
            aux.radsec_key_password.display()
        ),
    );
}

/// A hashed CA directory: PEM certificates and CRLs, each file once.
fn hashed_dir(p: &Pair, cas: &mut Vec<(String, Loc)>, crls: &mut Vec<(String, Loc)>) {
    let Ok((found_cas, found_crls)) = super::scan_ca_dir(std::path::Path::new(&p.value)) else {
        return;
    };
    let entry = |f: std::path::PathBuf| (f.to_string_lossy().into_owned(), p.loc.clone());
    cas.extend(found_cas.into_iter().map(entry));
    crls.extend(found_crls.into_iter().map(entry));
}
