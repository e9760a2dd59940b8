//! Translation tests on configurations read from text: what each FreeRADIUS construct becomes,
//! and what is reported instead.

use std::path::{Path, PathBuf};

use super::super::draft::{Draft, Table};
use super::super::raddb_parser::parse_text;
use super::*;

fn aux() -> Aux {
    Aux {
        key_password: PathBuf::from("/out/c.key-password"),
        radsec_key_password: PathBuf::from("/out/c.radsec-key-password"),
        mab: PathBuf::from("/out/c-mab.csv"),
    }
}

fn run(src: &str) -> Draft {
    let root = parse_text(Path::new("/raddb/radiusd.conf"), src).unwrap();
    translate(&root, Path::new("/raddb"), &aux())
}

fn get<'a>(t: &'a Table, key: &str) -> Option<&'a str> {
    t.lines
        .iter()
        .find(|l| l.key == key)
        .map(|l| l.value.as_str())
}

fn reported(d: &Draft) -> String {
    d.stderr_lines(Path::new("/raddb")).join("\n")
}

const EAP: &str = "modules {\n eap {\n  default_eap_type = tls\n  tls-config t {\n   certificate_file = /c.pem\n   private_key_file = /c.key\n   ca_file = /ca.pem\n  }\n  tls {\n   tls = t\n  }\n }\n}\n";

#[test]
fn clients_addresses_transports_duplicates_and_unsupported_fields() {
    let d = run(&format!(
        "{EAP}client a {{\n ipv6addr = *\n secret = s1\n}}\n\
         client 192.0.2.0/24 {{\n secret = s2\n proto = tcp\n limit {{\n  max_connections = 40\n }}\n}}\n\
         client b {{\n ipaddr = 192.0.2.0\n netmask = 24\n secret = s3\n}}\n\
         client c {{\n ipaddr = nas.example.org\n secret = s4\n}}\n\
         client d {{\n ipaddr = 198.51.100.1\n shortname = a\n proto = tls\n virtual_server = x\n}}\n\
         clients radsec {{\n client e {{\n  ipaddr = 203.0.113.9\n  secret = s5\n  dynamic_clients = y\n }}\n}}\n"
    ));
    assert_eq!(d.clients.len(), 4, "{}", reported(&d));
    assert_eq!(get(&d.clients[0], "address"), Some("\"::/0\""));
    assert_eq!(get(&d.clients[1], "transport"), Some("\"tcp\""));
    assert_eq!(get(&d.clients[1], "name"), Some("\"192.0.2.0/24\""));
    assert_eq!(get(&d.radsec, "max_connections_per_client"), Some("40"));
    // A TLS client needs no secret; its name collided with client a's.
    assert_eq!(get(&d.clients[2], "name"), Some("\"a-2\""));
    assert_eq!(get(&d.clients[2], "secret"), None);
    let r = reported(&d);
    assert!(
        r.contains("radiusd.conf:25: client b (192.0.2.0/24), duplicate of client 192.0.2.0/24"),
        "{r}"
    );
    assert!(
        r.contains("client c, \"nas.example.org\" is not an IP address"),
        "{r}"
    );
    assert!(r.contains("client d: virtual_server"), "{r}");
    assert!(r.contains("client e: dynamic_clients"), "{r}");
    for secret in ["s1", "s2", "s3", "s4", "s5"] {
        assert!(!r.contains(&format!("= {secret}")), "{r}");
    }
}

#[test]
fn eap_crl_scope_issuer_identity_and_ocsp() {
    let src = EAP.replace(
        "   ca_file = /ca.pem\n",
        "   ca_file = /ca.pem\n   check_crl = yes\n   check_all_crl = yes\n   check_cert_issuer = \"/C=GB/O=Example/CN=Example CA\"\n   check_cert_cn = %{User-Name}\n   fragment_size = 9000\n   ocsp {\n    enable = yes\n    override_cert_url = yes\n    url = \"http://ocsp.example/\"\n    softfail = yes\n    timeout = 3\n   }\n   verify {\n    client = \"/bin/check %{TLS-Client-Cert-Filename}\"\n   }\n",
    );
    let d = run(&src);
    assert_eq!(get(&d.tls, "check_crl"), Some("\"chain\""));
    assert_eq!(
        get(&d.tls, "allowed_issuers"),
        Some("[\"C=GB, O=Example, CN=Example CA\"]")
    );
    assert_eq!(get(&d.identity, "match_fields"), Some("[\"cn\"]"));
    assert_eq!(get(&d.tls, "fragment_size"), Some("3000"));
    assert_eq!(get(&d.ocsp, "url"), Some("\"http://ocsp.example/\""));
    assert_eq!(get(&d.ocsp, "soft_fail"), Some("true"));
    assert_eq!(get(&d.ocsp, "timeout_ms"), Some("3000"));
    assert!(
        reported(&d).contains("verify { client = ... }"),
        "{}",
        reported(&d)
    );
    assert!(d.fatal.is_empty());
}

#[test]
fn a_radsec_listener_becomes_radsec_with_its_key_password_in_a_file() {
    let d = run(&format!(
        "{EAP}server tls {{\n listen {{\n  type = auth\n  proto = tcp\n  ipaddr = *\n  port = 2083\n  clients = radsec\n  \
         tls {{\n   certificate_file = /r.pem\n   private_key_file = /r.key\n   private_key_password = hunter2\n   ca_file = /nas-ca.pem\n  }}\n }}\n}}\n"
    ));
    assert_eq!(get(&d.radsec, "listen"), Some("[\"0.0.0.0:2083\"]"));
    assert_eq!(get(&d.radsec, "ca_file"), Some("[\"/nas-ca.pem\"]"));
    assert_eq!(
        get(&d.radsec, "private_key_password_file"),
        Some("\"/out/c.radsec-key-password\"")
    );
    assert!(
        d.files
            .iter()
            .any(|(p, c)| p == Path::new("/out/c.radsec-key-password") && c == "hunter2\n")
    );
    assert!(!reported(&d).contains("hunter2"));
    // No auth listener over UDP: the standard port, said as a note.
    assert_eq!(get(&d.server, "listen"), Some("[\"0.0.0.0:1812\"]"));
}

#[test]
fn postgresql_accounting_url_is_encoded_and_other_drivers_reported() {
    let d = run(&format!(
        "{EAP}modules {{\n sql {{\n  dialect = \"postgresql\"\n  driver = \"rlm_sql_${{dialect}}\"\n  server = \"db.example\"\n  port = 5433\n  login = \"radius\"\n  password = \"p@ss word\"\n  radius_db = \"radius\"\n }}\n sql other {{\n  driver = \"rlm_sql_mysql\"\n }}\n}}\n"
    ));
    assert_eq!(
        get(&d.accounting, "database_url"),
        Some("\"postgresql://radius:p%40ss%20word@db.example:5433/radius\"")
    );
    let r = reported(&d);
    assert!(r.contains("sql other (driver rlm_sql_mysql)"), "{r}");
    assert!(!r.contains("p@ss"), "{r}");
}

#[test]
fn unlang_and_module_calls_are_reported_where_they_are() {
    let d = run(&format!(
        "{EAP}policy {{\n my_policy {{\n  ok\n }}\n}}\nserver default {{\n authorize {{\n  my_policy\n  eap {{\n   ok = return\n  }}\n  -ldap\n  if (&User-Name == \"x\") {{\n   reject\n  }}\n  else {{\n   ok\n  }}\n }}\n post-auth {{\n  Post-Auth-Type REJECT {{\n   update reply {{\n    Reply-Message := \"no\"\n   }}\n  }}\n }}\n}}\n"
    ));
    let r = reported(&d);
    assert!(
        r.contains("radiusd.conf:21: authorize: calls my_policy, a policy"),
        "{r}"
    );
    assert!(r.contains("radiusd.conf:25: authorize: calls ldap"), "{r}");
    assert!(
        r.contains("radiusd.conf:26: authorize: unlang `if (&User-Name == \"x\")`"),
        "{r}"
    );
    assert!(
        r.contains("radiusd.conf:29: authorize: unlang `else`"),
        "{r}"
    );
    assert!(
        r.contains("radiusd.conf:35: post-auth Post-Auth-Type REJECT: unlang `update reply`"),
        "{r}"
    );
    assert!(!r.contains("calls eap"), "{r}");
}

#[test]
fn no_eap_module_is_fatal() {
    let d = run("client a {\n ipaddr = 192.0.2.1\n secret = s\n}\n");
    assert!(
        d.fatal.iter().any(|f| f.contains("no eap module")),
        "{:?}",
        d.fatal
    );
}

#[test]
fn a_simple_vlan_assignment_is_offered_as_a_commented_out_rule_draft() {
    let d = run(&format!(
        "{EAP}server default {{\n post-auth {{\n  if (&TLS-Client-Cert-Common-Name =~ /^host\\//) {{\n   update reply {{\n    &Tunnel-Type := VLAN\n    &Tunnel-Private-Group-Id := 200\n   }}\n  }}\n  if (&User-Name =~ /x/) {{\n   update reply {{\n    Tunnel-Private-Group-Id := 9\n   }}\n  }}\n }}\n}}\n"
    ));
    assert_eq!(d.rule_drafts.len(), 1, "{:?}", d.rule_drafts);
    let text = d.render(Path::new("/raddb"));
    assert!(text.contains("# [[authorize.rule]]\n# name = \"imported radiusd.conf:16\"\n# [authorize.rule.match]\n# subject_cn = \"host/*\"\n# [authorize.rule.reply]\n# Tunnel-Type = \"VLAN\"\n# Tunnel-Private-Group-Id = \"200\"\n"), "{text}");
    // Still reported: the operator decides.
    assert!(
        reported(&d).contains("radiusd.conf:16: post-auth: unlang `if"),
        "{}",
        reported(&d)
    );
}
