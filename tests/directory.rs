//! `[directory]` (issue 18) against a real OpenLDAP `slapd` started by the test: a plain
//! process on a free loopback port with its own slapd.conf, an mdb database and the memberof
//! overlay, killed on drop. Driven through `certradius check --directory-test IDENTITY` (one
//! bind and one search, exactly the lookup the server makes): found with groups, disabled,
//! unknown, filter injection, failover to the second URL, directory down, a listener that never
//! answers (bounded by timeout_ms × URLs), a wrong bind password (clear error, password never
//! printed).
//!
//! Without slapd the tests print a loud SKIPPED, except under CI (`CI` set), a failure.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SLAPD: &str = "/usr/sbin/slapd";
const ADMIN: &str = "cn=admin,dc=example,dc=org";
const PASSWORD: &str = "s3cret-bind-pw";

/// A throwaway slapd, killed on drop.
struct Slapd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const DATA: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: alice
sn: A

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: bob
sn: B
description: disabled

dn: uid=twin1,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: twin1
cn: twin
sn: T

dn: uid=twin2,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: twin2
cn: twin
sn: T

dn: cn=wifi-staff,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: wifi-staff
member: uid=alice,ou=people,dc=example,dc=org
";

impl Slapd {
    /// None (after a loud SKIPPED, or a failure under CI) without slapd.
    fn start() -> Option<Slapd> {
        if !common::require_tool(SLAPD, "apt-get install slapd ldap-utils")
            || !common::require_tool("ldapadd", "apt-get install ldap-utils")
        {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload memberof\n\
                 pidfile {d}/slapd.pid\n\
                 database mdb\nmaxsize 10485760\nsuffix \"dc=example,dc=org\"\n\
                 rootdn \"{ADMIN}\"\nrootpw {PASSWORD}\ndirectory {db}\n\
                 overlay memberof\n",
                d = dir.path().display(),
                db = db.display()
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new(SLAPD)
            .args(["-f", conf.to_str().unwrap(), "-h"])
            .arg(format!("ldap://127.0.0.1:{port}/"))
            .args(["-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let slapd = Slapd {
            child,
            port,
            _dir: dir,
        };
        assert!(
            common::wait_until(Duration::from_secs(20), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            }),
            "slapd did not start"
        );
        let mut add = Command::new("ldapadd")
            .args([
                "-x",
                "-H",
                &slapd.url(),
                "-D",
                ADMIN,
                "-w",
                PASSWORD,
                "-o",
                "nettimeout=10",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        add.stdin
            .take()
            .unwrap()
            .write_all(DATA.as_bytes())
            .unwrap();
        assert!(add.wait().unwrap().success(), "ldapadd failed");
        Some(slapd)
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }
}

/// A config with `[directory]` over `urls`, bind password `password`.
fn config(dir: &Path, urls: &[String], password: &str, extra: &str) -> PathBuf {
    let pki = common::pki("directory");
    let pw = dir.join("ldap.password");
    std::fs::write(&pw, format!("{password}\nsecond line ignored\n")).unwrap();
    let list: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    common::write_config(
        dir,
        &pki,
        "directory",
        "",
        &format!(
            "[directory]\nurl = [{}]\nbind_dn = \"{ADMIN}\"\nbind_password_file = \"{}\"\n\
             base_dn = \"ou=people,dc=example,dc=org\"\nuser_filter = \"(uid={{subject_cn}})\"\n\
             enabled_filter = \"(!(description=disabled))\"\ntimeout_ms = 1000\n{extra}",
            list.join(", "),
            pw.display()
        ),
    )
}

fn directory_test(config: &Path, identity: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args([
            "-c",
            config.to_str().unwrap(),
            "check",
            "--directory-test",
            identity,
        ])
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn found_disabled_unknown_and_injection() {
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[slapd.url()], PASSWORD, "");
    let out = directory_test(&cfg, "alice");
    let t = text(&out);
    assert!(
        t.contains("dn: uid=alice,ou=people,dc=example,dc=org"),
        "{t}"
    );
    assert!(t.contains("enabled: yes"), "{t}");
    assert!(
        t.contains("cn=wifi-staff,ou=groups,dc=example,dc=org"),
        "{t}"
    );
    assert!(!t.contains(PASSWORD), "the bind password was printed: {t}");

    let t = text(&directory_test(&cfg, "bob"));
    assert!(
        t.contains("enabled: no (directory_account_disabled)"),
        "{t}"
    );

    let t = text(&directory_test(&cfg, "nobody"));
    assert!(t.contains("not found: 0 entries"), "{t}");

    // RFC 4515 escaping: the classic injection matches nothing (unescaped it would match all).
    let t = text(&directory_test(&cfg, "*)(uid=*"));
    assert!(t.contains("not found: 0 entries"), "{t}");
    let t = text(&directory_test(&cfg, "*"));
    assert!(t.contains("not found: 0 entries"), "{t}");

    // Two entries match: not found (the count said), never the first of them.
    let cfg = config(dir.path(), &[slapd.url()], PASSWORD, "");
    let text_cfg = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("(uid={subject_cn})", "(cn={subject_cn})");
    std::fs::write(&cfg, text_cfg).unwrap();
    let t = text(&directory_test(&cfg, "twin"));
    assert!(t.contains("not found: 2 entries"), "{t}");
}

#[test]
fn failover_down_and_wrong_password() {
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the first URL: the second answers.
    let dead = format!("ldap://127.0.0.1:{}", free_port());
    let cfg = config(dir.path(), &[dead.clone(), slapd.url()], PASSWORD, "");
    let t = text(&directory_test(&cfg, "alice"));
    assert!(t.contains("enabled: yes"), "{t}");

    // Every URL down: unavailable, exit code 2.
    let cfg = config(dir.path(), &[dead], PASSWORD, "");
    let out = directory_test(&cfg, "alice");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("directory unavailable"),
        "{}",
        text(&out)
    );

    // A wrong bind password: a clear error, neither password printed.
    let cfg = config(dir.path(), &[slapd.url()], "wrong-pw-xyz", "");
    let out = directory_test(&cfg, "alice");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("invalid credentials"), "{t}");
    assert!(!t.contains("wrong-pw-xyz") && !t.contains(PASSWORD), "{t}");
}

/// A directory that accepts TCP and never answers: the lookup ends (unavailable) after about
/// timeout_ms per URL instead of hanging. Bounded, not timed: the generous limit only catches a
/// hang.
#[test]
fn silent_directory_ends_unavailable() {
    if !common::require_tool(SLAPD, "apt-get install slapd ldap-utils") {
        return;
    }
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ldap://{}", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[url.clone(), url], PASSWORD, "");
    let started = Instant::now();
    let out = directory_test(&cfg, "alice");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("directory unavailable"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(60), "lookup hung");
    drop(silent);
}

#[test]
fn plaintext_to_remote_host_is_refused_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &["ldap://ldap.example.org".to_string()],
        PASSWORD,
        "",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(["-c", cfg.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("directory.url") && t.contains("in clear"), "{t}");
}

/// One EAP-TLS authentication with `client-{key}` over UDP: accepted or not.
fn accepted(server: &common::Server, key: &str) -> bool {
    use certradius_testkit::peer::{Next, Outcome};
    let pki = common::pki("directory");
    let mut conv = common::conversation(&pki, key, common::SECRET);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut packet = conv.start(common::random16());
    let mut buf = vec![0u8; 4096];
    for _ in 0..50 {
        let reply = (0..5)
            .find_map(|_| {
                s.send_to(&packet, server.addr).unwrap();
                s.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
            })
            .expect("no reply");
        match conv.on_reply(&reply, common::random16()) {
            Ok(Next::Send(p)) => packet = p,
            Ok(Next::Done(o)) => {
                return matches!(
                    *o,
                    Outcome::Accepted {
                        keys_match: true,
                        ..
                    }
                );
            }
            // A fatal alert from the server, then its Access-Reject.
            Err(_) => return false,
        }
    }
    panic!("no end")
}

/// The LDIF value of a PEM CRL: its base64 body is the DER, base64-encoded, as LDIF's `::` wants.
fn ldif_value(pem: &Path) -> String {
    std::fs::read_to_string(pem)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

fn ldap_tool(slapd: &Slapd, tool: &str, ldif: &str) {
    let mut child = Command::new(tool)
        .args(["-x", "-H", &slapd.url(), "-D", ADMIN, "-w", PASSWORD])
        .args(["-o", "nettimeout=10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ldif.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "{tool} failed");
}

/// A CRL published in the directory (the Active Directory Certificate Services way: an
/// `ldap:///DN?certificateRevocationList` distribution point with no host, meaning "the
/// directory's servers") is read through the `[directory]` connection settings, verified
/// against its issuer and put in force; a new CRL published there is picked up at the next
/// refresh.
#[test]
fn crl_published_in_the_directory_is_fetched_through_it() {
    let Some(slapd) = Slapd::start() else { return };
    let pki = common::pki("directory");
    // The root's empty CRL, published on a cRLDistributionPoint entry.
    ldap_tool(
        &slapd,
        "ldapadd",
        &format!(
            "dn: cn=Test Root,dc=example,dc=org\nobjectClass: cRLDistributionPoint\n\
             cn: Test Root\ncertificateRevocationList;binary:: {}\n",
            ldif_value(&pki.join("ca.crl.pem"))
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let cfg = config(dir.path(), &[slapd.url()], PASSWORD, "");
    // The intermediate's CRL from a file, the root's from the directory: the chain is checked.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "[tls]\n",
        &format!(
            "[tls]\ncrl_file = \"{}\"\n\
             crl_url = [\"ldap:///cn=Test%20Root,dc=example,dc=org?certificateRevocationList?base?objectClass=cRLDistributionPoint\"]\n\
             crl_refresh_secs = 1\n",
            pki.join("intermediate-empty.crl.pem").display()
        ),
    )
    // Every supplicant is the one entry under the base (the lookup is not what this tests).
    .replace("base_dn = \"ou=people,dc=example,dc=org\"", "base_dn = \"dc=example,dc=org\"")
    .replace("user_filter = \"(uid={subject_cn})\"", "user_filter = \"(|(dc=example)(uid={subject_cn}))\"");
    std::fs::write(&cfg, text).unwrap();
    let server = common::Server::start_with_env(
        &cfg,
        &dir.path().join("server.log"),
        &[("STATE_DIRECTORY", state.to_str().unwrap())],
    );
    server.wait_for_log("CRL fetched and verified", Duration::from_secs(20));
    assert!(
        common::wait_until(Duration::from_secs(10), || accepted(&server, "ecdsa")),
        "accepted once the directory's CRL is in force:\n{}",
        server.log_text()
    );
    // The root revokes the intermediate: published in the directory, in force within seconds.
    ldap_tool(
        &slapd,
        "ldapmodify",
        &format!(
            "dn: cn=Test Root,dc=example,dc=org\nchangetype: modify\n\
             replace: certificateRevocationList;binary\ncertificateRevocationList;binary:: {}\n",
            ldif_value(&pki.join("ca-revoking-intermediate.crl.pem"))
        ),
    );
    assert!(
        common::wait_until(Duration::from_secs(20), || !accepted(&server, "ecdsa")),
        "refused once the directory publishes the revocation:\n{}",
        server.log_text()
    );
    assert!(
        server.log_text().contains("reason=cert_revoked "),
        "{}",
        server.log_text()
    );
    // The cache keeps it for a restart during a directory outage.
    assert!(
        std::fs::read_dir(state.join("crl-cache")).unwrap().count() > 0,
        "cached"
    );
}
