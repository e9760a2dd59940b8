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

dn: uid=alice@certradius.test,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice@certradius.test
cn: Alice
sn: A

dn: uid=bob@certradius.test,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob@certradius.test
cn: Bob
sn: B
description: disabled

dn: uid=carol@certradius.test,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol@certradius.test
cn: Carol
sn: C

dn: uid=host/laptop42.certradius.test,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: host/laptop42.certradius.test
cn: laptop42
sn: M

dn: cn=wifi-vlan10,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: wifi-vlan10
member: uid=alice@certradius.test,ou=people,dc=example,dc=org
";

impl Slapd {
    /// None (after a loud SKIPPED, or a failure under CI) without slapd.
    fn start() -> Option<Slapd> {
        Self::start_with("")
    }

    /// With `global` added to slapd.conf's global section (e.g. `idletimeout 2`).
    fn start_with(global: &str) -> Option<Slapd> {
        if !common::require_tool(SLAPD, "apt-get install slapd ldap-utils")
            || !common::require_tool("ldapadd", "apt-get install ldap-utils")
        {
            return None;
        }
        // The port is picked free and then handed to slapd, so another test's server can take
        // it in between (slapd then fails to listen, or the probe below reaches the other
        // server); such a start is retried on a new port.
        let mut why = String::new();
        for _attempt in 0..3 {
            match Self::try_start(global) {
                Ok(slapd) => return Some(slapd),
                Err(e) => {
                    eprintln!("slapd start failed, retrying on another port: {e}");
                    why = e;
                }
            }
        }
        panic!("slapd did not start with the test data three times: {why}");
    }

    /// One start of slapd on a free port, loaded with `DATA`.
    fn try_start(global: &str) -> Result<Slapd, String> {
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
                 pidfile {d}/slapd.pid\n{global}\n\
                 database mdb\nmaxsize 10485760\nsuffix \"dc=example,dc=org\"\n\
                 rootdn \"{ADMIN}\"\nrootpw {PASSWORD}\ndirectory {db}\n\
                 overlay memberof\n",
                d = dir.path().display(),
                db = db.display()
            ),
        )
        .unwrap();
        let port = free_port();
        // `-d stats`: one line per connection and operation (BIND, SRCH) on stderr, kept in
        // slapd.log for the tests that count binds and searches.
        let log = std::fs::File::create(dir.path().join("slapd.log")).unwrap();
        let child = Command::new(SLAPD)
            .args(["-f", conf.to_str().unwrap(), "-h"])
            .arg(format!("ldap://127.0.0.1:{port}/"))
            .args(["-d", "stats"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let mut slapd = Slapd {
            child,
            port,
            _dir: dir,
        };
        if !common::wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }) {
            return Err(format!(
                "slapd did not listen within 20 s{}",
                slapd.log_tail()
            ));
        }
        if let Ok(Some(status)) = slapd.child.try_wait() {
            return Err(format!("slapd exited: {status}{}", slapd.log_tail()));
        }
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
        if !add.wait().unwrap().success() {
            return Err(format!("ldapadd failed{}", slapd.log_tail()));
        }
        Ok(slapd)
    }

    /// The last lines slapd logged, for a start that failed.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "; slapd.log ends: {:?}",
            &lines[lines.len().saturating_sub(3)..]
        )
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Applies an LDIF change (ldapmodify as the admin).
    fn modify(&self, ldif: &str) {
        let mut m = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url(), "-D", ADMIN, "-w", PASSWORD])
            .args(["-o", "nettimeout=10"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        m.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        assert!(m.wait().unwrap().success(), "ldapmodify failed");
    }

    /// slapd's `-d stats` log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("slapd.log")).unwrap_or_default()
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

// ---------------------------------------------------------------------------------------------
// The lookup in the authentication path: the real server, eapol_test as the supplicant.
// ---------------------------------------------------------------------------------------------

/// The VLAN rule on the directory group, the Reply-Message, the audit log and `/metrics`.
const AUTHORIZE: &str = "[authorize]\ndefault = \"accept\"\nreply_message = true\n\
    [[authorize.rule]]\nname = \"vlan10-by-group\"\n\
    [authorize.rule.match]\ndirectory_group = \"CN=wifi-vlan10, OU=Groups, DC=example, DC=org\"\n\
    [authorize.rule.reply]\nTunnel-Type = \"VLAN\"\nTunnel-Medium-Type = \"IEEE-802\"\n\
    Tunnel-Private-Group-Id = \"10\"\n";

fn eapol_available() -> bool {
    common::require_tool("eapol_test", "apt-get install eapoltest")
}

/// A server whose `[directory]` is `urls` (filter `(uid={subject_cn})`), with `extra` in the
/// section, the VLAN rule, an audit log and `/metrics`.
fn directory_server(dir: &Path, urls: &[String], extra: &str) -> common::Server {
    let cfg = config(dir, urls, PASSWORD, extra);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    if extra.contains("timeout_ms") {
        text = text.replace("timeout_ms = 1000\n", "");
    }
    text.push_str(&format!(
        "\n[audit]\nfile = \"{}\"\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n{AUTHORIZE}",
        dir.join("audit.jsonl").display()
    ));
    std::fs::write(&cfg, text).unwrap();
    common::Server::start(&cfg, &dir.join("server.log"))
}

/// eapol_test with the test PKI's `client-KEY` certificate; `reauth`: once more, resumed.
fn eapol(server: &common::Server, dir: &Path, key: &str, identity: &str, reauth: bool) -> String {
    eapol_to(server.addr.port(), dir, key, identity, reauth)
}

fn eapol_to(port: u16, dir: &Path, key: &str, identity: &str, reauth: bool) -> String {
    let pki = common::pki("directory");
    eapol_files(
        port,
        dir,
        &pki.join(format!("client-{key}.pem")),
        &pki.join(format!("client-{key}.key")),
        identity,
        reauth,
    )
}

/// eapol_test with the certificate and key files given (the test PKI's CA).
fn eapol_files(
    port: u16,
    dir: &Path,
    cert: &Path,
    key: &Path,
    identity: &str,
    reauth: bool,
) -> String {
    let pki = common::pki("directory");
    let conf = dir.join(format!("eapol-{}.conf", hex(&common::random16())));
    std::fs::write(
        &conf,
        format!(
            "network={{\n key_mgmt=WPA-EAP\n eap=TLS\n identity=\"{identity}\"\n \
             ca_cert=\"{p}/ca.pem\"\n client_cert=\"{c}\"\n \
             private_key=\"{k}\"\n phase1=\"tls_disable_tlsv1_3=1\"\n}}\n",
            p = pki.display(),
            c = cert.display(),
            k = key.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("eapol_test");
    cmd.arg("-c")
        .arg(&conf)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .args(["-s", common::SECRET, "-t", "40"]);
    if reauth {
        cmd.args(["-r", "1"]);
    }
    let out = cmd.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn accepted(out: &str) -> bool {
    out.contains("MPPE keys OK: 1") && out.contains("SUCCESS")
}

/// The log lines of finished authentications that name `identity`.
fn auth_lines(server: &common::Server, identity: &str) -> Vec<String> {
    server
        .log_text()
        .lines()
        .filter(|l| l.contains("authentication finished") && l.contains(identity))
        .map(str::to_string)
        .collect()
}

fn wait_auth_line(server: &common::Server, identity: &str, n: usize) -> String {
    assert!(
        common::wait_until(Duration::from_secs(10), || auth_lines(server, identity)
            .len()
            >= n),
        "no authentication line for {identity}:\n{}",
        server.log_text()
    );
    auth_lines(server, identity)[n - 1].clone()
}

fn audit_records(dir: &Path) -> Vec<serde_json::Value> {
    common::json_lines(&dir.join("audit.jsonl"))
}

fn audit_for(dir: &Path, identity: &str) -> serde_json::Value {
    let mut found = None;
    assert!(
        common::wait_until(Duration::from_secs(10), || {
            found = audit_records(dir)
                .into_iter()
                .rev()
                .find(|r| r["identity"] == identity);
            found.is_some()
        }),
        "no audit record for {identity}"
    );
    found.unwrap()
}

fn lookups(server: &common::Server, result: &str) -> f64 {
    let body = common::metrics::scrape(common::metrics::metrics_addr(server));
    common::metrics::sample(
        &body,
        &format!("certradius_directory_lookups_total{{result=\"{result}\"}}"),
    )
}

/// Found and enabled with the VLAN group: Access-Accept with VLAN 10 (the rule on
/// `directory_group`, a DN compared ignoring case and spaces), `directory_groups` in the audit.
/// Disabled: `directory_account_disabled`; no entry: `directory_user_not_found`; each in the
/// log, the audit record, the reject metrics and the Reply-Message.
#[test]
fn authentication_found_disabled_unknown() {
    if !eapol_available() {
        return;
    }
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = directory_server(dir.path(), &[slapd.url()], "");

    let out = eapol(&server, dir.path(), "rsa", "alice@certradius.test", false);
    assert!(accepted(&out), "alice: {out}\n{}", server.log_text());
    let line = wait_auth_line(&server, "alice@certradius.test", 1);
    assert!(
        line.contains("outcome=accept") && line.contains("rule=vlan10-by-group"),
        "{line}"
    );
    let record = audit_for(dir.path(), "alice@certradius.test");
    assert_eq!(record["rule"], "vlan10-by-group", "{record}");
    assert_eq!(
        record["directory_groups"],
        serde_json::json!(["cn=wifi-vlan10,ou=groups,dc=example,dc=org"]),
        "{record}"
    );
    assert!(
        record["granted"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "Tunnel-Private-Group-Id" && a["value"] == "10"),
        "{record}"
    );

    let out = eapol(&server, dir.path(), "ecdsa", "bob@certradius.test", false);
    assert!(!accepted(&out), "bob (disabled) was accepted: {out}");
    assert!(
        out.contains("Access rejected: directory_account_disabled"),
        "no Reply-Message: {out}"
    );
    let line = wait_auth_line(&server, "bob@certradius.test", 1);
    assert!(
        line.contains("outcome=reject") && line.contains("reason=directory_account_disabled"),
        "{line}"
    );
    assert_eq!(
        audit_for(dir.path(), "bob@certradius.test")["reason"],
        "directory_account_disabled"
    );

    let out = eapol(
        &server,
        dir.path(),
        "visitor",
        "visitor@partner.example",
        false,
    );
    assert!(!accepted(&out), "an unknown account was accepted: {out}");
    let line = wait_auth_line(&server, "visitor@partner.example", 1);
    assert!(line.contains("reason=directory_user_not_found"), "{line}");

    let body = common::metrics::scrape(common::metrics::metrics_addr(&server));
    for reason in ["directory_account_disabled", "directory_user_not_found"] {
        assert_eq!(
            common::metrics::sample(
                &body,
                &format!(
                    "certradius_authentications_total{{outcome=\"reject\",reason=\"{reason}\",method=\"eap-tls\"}}"
                )
            ),
            1.0,
            "{reason}:\n{body}"
        );
    }
    // The bind password appears in no log line and no audit record.
    assert!(!server.log_text().contains(PASSWORD));
    assert!(
        !std::fs::read_to_string(dir.path().join("audit.jsonl"))
            .unwrap()
            .contains(PASSWORD)
    );
    for (result, n) in [("found", 1.0), ("disabled", 1.0), ("not_found", 1.0)] {
        assert_eq!(
            common::metrics::sample(
                &body,
                &format!("certradius_directory_lookups_total{{result=\"{result}\"}}")
            ),
            n,
            "{result}:\n{body}"
        );
    }
}

/// A resumed session is looked up again (through the cache): `-r 1` re-authenticates with
/// TLS resumption, and the second authentication counts a cache hit.
#[test]
fn resumption_is_looked_up_again() {
    if !eapol_available() {
        return;
    }
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = directory_server(dir.path(), &[slapd.url()], "");
    let out = eapol(&server, dir.path(), "rsa", "alice@certradius.test", true);
    assert!(
        out.contains("MPPE keys OK: 2"),
        "{out}\n{}",
        server.log_text()
    );
    let second = wait_auth_line(&server, "alice@certradius.test", 2);
    assert!(second.contains("resumed=true"), "{second}");

    assert_eq!(lookups(&server, "found"), 1.0);
    assert_eq!(
        lookups(&server, "cache_hit"),
        1.0,
        "the resumed session was not looked up"
    );
}

/// The directory stops answering (slapd stopped with SIGSTOP: the kernel still accepts TCP,
/// nothing answers). An account in the cache goes on while an uncached one waits; the waiting
/// one ends in `directory_unavailable` after timeout_ms per URL. Ordering, not timing: with a
/// long timeout, the cached account is accepted before the waiting one is refused.
#[test]
fn silent_directory_rejects_the_waiting_one_while_cached_users_go_on() {
    if !eapol_available() {
        return;
    }
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = directory_server(dir.path(), &[slapd.url()], "timeout_ms = 10000\n");
    // Alice into the cache.
    assert!(accepted(&eapol(
        &server,
        dir.path(),
        "rsa",
        "alice@certradius.test",
        false
    )));
    let stopped = Command::new("kill")
        .args(["-STOP", &slapd.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let waiting = {
        let (port, dir) = (server.addr.port(), dir.path().to_path_buf());
        std::thread::spawn(move || eapol_to(port, &dir, "upn", "carol@certradius.test", false))
    };
    // Carol's lookup is now waiting on the silent directory (or about to): Alice goes on, and
    // is done while Carol still waits (timeout_ms is far longer than an authentication).
    std::thread::sleep(Duration::from_millis(500));
    let out = eapol(&server, dir.path(), "rsa", "alice@certradius.test", false);
    assert!(accepted(&out), "the cached account waited: {out}");
    assert!(wait_auth_line(&server, "alice@certradius.test", 2).contains("outcome=accept"));
    assert!(
        auth_lines(&server, "carol@certradius.test").is_empty(),
        "carol was decided before alice went on:\n{}",
        server.log_text()
    );
    let out = waiting.join().unwrap();
    let _ = Command::new("kill")
        .args(["-CONT", &slapd.child.id().to_string()])
        .status();
    assert!(!accepted(&out), "carol was accepted: {out}");
    let line = wait_auth_line(&server, "carol@certradius.test", 1);
    assert!(line.contains("reason=directory_unavailable"), "{line}");
    assert_eq!(lookups(&server, "error"), 1.0);
}

/// The health address the server logged.
fn health_addr(server: &common::Server) -> std::net::SocketAddr {
    let mut addr = None;
    assert!(
        common::wait_until(Duration::from_secs(10), || {
            addr = server
                .log_text()
                .lines()
                .find_map(|l| l.split("health: serving http://").nth(1))
                .and_then(|r| r.split('/').next())
                .map(|a| a.parse().unwrap());
            addr.is_some()
        }),
        "no health line in the log"
    );
    addr.unwrap()
}

/// `/readyz`: (status code, body).
fn readyz(addr: std::net::SocketAddr) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

fn wait_readyz(addr: std::net::SocketAddr, server: &common::Server, code: u16) -> String {
    let mut last = (0, String::new());
    assert!(
        common::wait_until(Duration::from_secs(30), || {
            last = readyz(addr);
            last.0 == code
        }),
        "/readyz did not answer {code}: {last:?}\n{}",
        server.log_text()
    );
    last.1
}

/// Issue 21 with issue 18: `/readyz` names the directory while it does not answer (slapd
/// stopped: connections are accepted, nothing answers, the probe's bind times out), and is
/// ready again once it answers.
#[test]
fn readyz_names_the_directory_while_it_is_down() {
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[slapd.url()], PASSWORD, "");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[health]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&cfg, text).unwrap();
    let server = common::Server::start(&cfg, &dir.path().join("server.log"));
    let health = health_addr(&server);
    wait_readyz(health, &server, 200);
    let pid = slapd.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let body = wait_readyz(health, &server, 503);
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let failing = v["failing"].as_array().unwrap();
    assert!(
        failing
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("directory: ")),
        "{body}"
    );
    assert!(!body.contains(PASSWORD), "{body}");
    wait_readyz(health, &server, 200);
}

/// Down at start (nothing listens on the URL): not ready from the first probe on, named.
#[test]
fn readyz_names_a_directory_down_at_start() {
    if !common::require_tool(SLAPD, "apt-get install slapd ldap-utils") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("ldap://127.0.0.1:{}", free_port());
    let cfg = config(dir.path(), &[dead], PASSWORD, "");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[health]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&cfg, text).unwrap();
    let server = common::Server::start(&cfg, &dir.path().join("server.log"));
    let body = wait_readyz(health_addr(&server), &server, 503);
    assert!(body.contains("directory: "), "{body}");
}

/// SIGHUP re-reads `[directory]` through the one reload: a server started on a dead URL
/// refuses with `directory_unavailable`; pointed at slapd and signalled, it looks up and
/// accepts (and the previous section's cache is not consulted).
#[test]
fn sighup_reloads_the_directory_section() {
    if !eapol_available() {
        return;
    }
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("ldap://127.0.0.1:{}", free_port());
    let server = directory_server(dir.path(), std::slice::from_ref(&dead), "");
    let out = eapol(&server, dir.path(), "rsa", "alice@certradius.test", false);
    assert!(!accepted(&out), "accepted with the directory down: {out}");
    let line = wait_auth_line(&server, "alice@certradius.test", 1);
    assert!(line.contains("reason=directory_unavailable"), "{line}");

    let cfg = dir.path().join("directory.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(&dead, &slapd.url());
    std::fs::write(&cfg, text).unwrap();
    server.signal("HUP");
    server.wait_for_log("configuration reloaded", Duration::from_secs(10));
    let out = eapol(&server, dir.path(), "rsa", "alice@certradius.test", false);
    assert!(accepted(&out), "{out}\n{}", server.log_text());
    let line = wait_auth_line(&server, "alice@certradius.test", 2);
    assert!(line.contains("rule=vlan10-by-group"), "{line}");
}

/// `on_unavailable = "accept_cached"`: an expired positive answer stands in when every URL
/// fails; an account never found is still refused (`directory_unavailable`).
#[test]
fn accept_cached_serves_an_expired_answer_when_the_directory_is_down() {
    if !eapol_available() {
        return;
    }
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = directory_server(
        dir.path(),
        &[slapd.url()],
        "cache_secs = 1\non_unavailable = \"accept_cached\"\n",
    );
    assert!(accepted(&eapol(
        &server,
        dir.path(),
        "rsa",
        "alice@certradius.test",
        false
    )));
    drop(slapd);
    // Past cache_secs: the entry is expired, the directory gone.
    std::thread::sleep(Duration::from_millis(1500));
    let out = eapol(&server, dir.path(), "rsa", "alice@certradius.test", false);
    assert!(accepted(&out), "{out}\n{}", server.log_text());
    let out = eapol(&server, dir.path(), "upn", "carol@certradius.test", false);
    assert!(!accepted(&out), "{out}");
    let line = wait_auth_line(&server, "carol@certradius.test", 1);
    assert!(line.contains("reason=directory_unavailable"), "{line}");
    assert_eq!(lookups(&server, "cache_hit"), 1.0);
}

/// The connections on which slapd ran a search under `base`, each with its number of binds.
fn search_connections(log: &str, base: &str) -> Vec<(String, usize)> {
    let conn_of = |l: &str| {
        l.split_whitespace()
            .find(|w| w.starts_with("conn="))
            .map(str::to_string)
    };
    let mut conns: Vec<String> = Vec::new();
    for l in log.lines() {
        if l.contains(&format!("SRCH base=\"{base}\""))
            && let Some(c) = conn_of(l)
            && !conns.contains(&c)
        {
            conns.push(c);
        }
    }
    conns
        .into_iter()
        .map(|c| {
            let binds = log
                .lines()
                .filter(|l| {
                    conn_of(l).as_deref() == Some(c.as_str())
                        && l.contains(" BIND dn=")
                        && l.contains("method=128")
                })
                .count();
            (c, binds)
        })
        .collect()
}

/// The service account binds once per pooled connection: several lookups (distinct accounts,
/// so each is a search) share one connection and one bind. When the directory closes it
/// (slapd's idletimeout), the next lookup connects and binds again instead of failing.
#[test]
fn one_bind_per_pooled_connection_and_rebind_after_close() {
    if !eapol_available() {
        return;
    }
    let Some(slapd) = Slapd::start_with("idletimeout 2") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = directory_server(dir.path(), &[slapd.url()], "");
    let people = "ou=people,dc=example,dc=org";
    assert!(accepted(&eapol(
        &server,
        dir.path(),
        "rsa",
        "alice@certradius.test",
        false
    )));
    let _ = eapol(&server, dir.path(), "ecdsa", "bob@certradius.test", false);
    let _ = eapol(
        &server,
        dir.path(),
        "visitor",
        "visitor@partner.example",
        false,
    );
    let conns = search_connections(&slapd.log(), people);
    assert_eq!(conns.len(), 1, "three lookups, one connection: {conns:?}");
    assert_eq!(conns[0].1, 1, "one bind on it: {conns:?}");
    assert!(
        slapd
            .log()
            .matches(&format!("SRCH base=\"{people}\""))
            .count()
            >= 3,
        "{}",
        slapd.log()
    );
    // slapd closes the idle connection after 2 s.
    let closed = format!("{} fd=", conns[0].0);
    assert!(
        common::wait_until(Duration::from_secs(20), || slapd
            .log()
            .lines()
            .any(|l| l.contains(&closed) && l.contains("closed"))),
        "slapd did not close the idle connection:\n{}",
        slapd.log()
    );
    let out = eapol(&server, dir.path(), "upn", "carol@certradius.test", false);
    assert!(accepted(&out), "{out}\n{}", server.log_text());
    let conns = search_connections(&slapd.log(), people);
    assert_eq!(
        conns.len(),
        2,
        "a new connection after the close: {conns:?}"
    );
    assert_eq!(conns[1].1, 1, "bound again: {conns:?}");
}

/// One EAP-TLS authentication by the in-process supplicant (`client-KEY`, `identity`) through
/// `nas` (which is also the NAS's CoA port); the Class of the Access-Accept, None on reject.
fn authenticate_via(
    nas: &std::net::UdpSocket,
    server: std::net::SocketAddr,
    key: &str,
    identity: &str,
) -> Option<Vec<u8>> {
    use certradius_testkit::peer::{self, Conversation, Nas, Next, Outcome, Supplicant};
    let pki = common::pki("directory");
    let cfg = peer::client_config(
        &pki.join("ca.pem"),
        &pki.join(format!("client-{key}.pem")),
        &pki.join(format!("client-{key}.key")),
        &[&rustls::version::TLS13],
    )
    .unwrap();
    let sup = Supplicant::new(cfg, "radius.certradius.test", identity.as_bytes(), 1400).unwrap();
    let mut conv = Conversation::new(sup, Nas::new(common::SECRET.as_bytes()));
    let mut packet = conv.start(common::random16());
    let mut buf = vec![0u8; 4096];
    for _ in 0..50 {
        let reply = (0..5)
            .find_map(|_| {
                nas.send_to(&packet, server).unwrap();
                nas.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
            })
            .expect("no reply after 5 tries");
        match conv.on_reply(&reply, common::random16()).unwrap() {
            Next::Send(p) => packet = p,
            Next::Done(o) => {
                let Outcome::Accepted { reply, .. } = *o else {
                    return None;
                };
                return reply
                    .attributes
                    .iter()
                    .find(|(t, _)| *t == certradius::radius::attr::CLASS)
                    .map(|(_, v)| v.clone());
            }
        }
    }
    panic!("no end")
}

/// Accounting Start of session `sid` carrying `class`, through `nas`.
fn accounting_start_via(
    nas: &std::net::UdpSocket,
    acct: std::net::SocketAddr,
    sid: &[u8],
    calling: &[u8],
    user: &[u8],
    class: &[u8],
) {
    use certradius::radius::attr;
    let req = certradius_testkit::acct::request(
        common::SECRET.as_bytes(),
        sid[sid.len() - 1],
        &[
            (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
            (attr::ACCT_SESSION_ID, sid),
            (attr::USER_NAME, user),
            (attr::CALLING_STATION_ID, calling),
            (attr::NAS_IP_ADDRESS, &[127, 0, 0, 1]),
            (attr::ACCT_INTERIM_INTERVAL, &600u32.to_be_bytes()),
            (attr::CLASS, class),
        ],
    );
    let mut buf = vec![0u8; 4096];
    let ok = (0..5).any(|_| {
        nas.send_to(&req, acct).unwrap();
        nas.recv_from(&mut buf).ok().is_some_and(|(n, _)| {
            certradius_testkit::acct::is_response_to(&buf[..n], &req, common::SECRET.as_bytes())
        })
    });
    assert!(ok, "no Accounting-Response");
}

/// `revalidate_secs`: live sessions are looked up again. Alice disabled in the directory and
/// Carol put into the VLAN group (her groups now lead to another rule) each get a
/// Disconnect-Request at the NAS, logged like a Disconnect on revocation; the machine account
/// (unchanged) keeps its session through later rounds.
#[test]
fn revalidation_disconnects_disabled_accounts_and_changed_groups() {
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let nas = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    nas.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let coa_port = nas.local_addr().unwrap().port();
    let pki = common::pki("directory");
    let pw = dir.path().join("ldap.password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[[client]]\nname = \"nas\"\naddress = \"127.0.0.1\"\n\
         secret = \"{secret}\"\ncoa_port = {coa_port}\n\n[tls]\ncertificate_file = \"{p}/server.pem\"\n\
         private_key_file = \"{p}/server.key\"\nca_file = \"{p}/ca.pem\"\n\n\
         [accounting]\nlisten = [\"127.0.0.1:0\"]\nfile = \"{d}/acct.jsonl\"\n\n\
         [coa]\ncontrol_socket = \"{d}/ctl.sock\"\n\n\
         [directory]\nurl = \"{url}\"\nbind_dn = \"{ADMIN}\"\nbind_password_file = \"{pw}\"\n\
         base_dn = \"ou=people,dc=example,dc=org\"\nuser_filter = \"(uid={{subject_cn}})\"\n\
         enabled_filter = \"(!(description=disabled))\"\nrevalidate_secs = 1\n\n{AUTHORIZE}",
        secret = common::SECRET,
        p = pki.display(),
        d = dir.path().display(),
        url = slapd.url(),
        pw = pw.display(),
    );
    let cfg = dir.path().join("revalidate.toml");
    std::fs::write(&cfg, text).unwrap();
    let server = common::Server::start(&cfg, &dir.path().join("server.log"));
    let acct = server.acct.expect("accounting listener");
    let mut sessions = Vec::new();
    for (key, who, sid, mac) in [
        (
            "rsa",
            "alice@certradius.test",
            &b"sess-a1"[..],
            &b"02-00-00-00-00-0a"[..],
        ),
        (
            "upn",
            "carol@certradius.test",
            b"sess-c2",
            b"02-00-00-00-00-0c",
        ),
        (
            "machine",
            "host/laptop42.certradius.test",
            b"sess-m3",
            b"02-00-00-00-00-0d",
        ),
    ] {
        let class = authenticate_via(&nas, server.addr, key, who)
            .unwrap_or_else(|| panic!("{who} rejected:\n{}", server.log_text()));
        accounting_start_via(&nas, acct, sid, mac, who.as_bytes(), &class);
        sessions.push(sid);
    }
    slapd.modify(
        "dn: uid=alice@certradius.test,ou=people,dc=example,dc=org\nchangetype: modify\n\
         add: description\ndescription: disabled\n\n\
         dn: cn=wifi-vlan10,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\n\
         member: uid=carol@certradius.test,ou=people,dc=example,dc=org\n",
    );
    let mut disconnected = Vec::new();
    let mut buf = vec![0u8; 4096];
    assert!(
        common::wait_until(Duration::from_secs(30), || {
            if let Ok((n, from)) = nas.recv_from(&mut buf) {
                let req = buf[..n].to_vec();
                let p = certradius::radius::Packet::decode(&req).unwrap();
                assert_eq!(
                    u8::from(p.code()),
                    certradius::radius::coa::DISCONNECT_REQUEST
                );
                let sid = p
                    .first(certradius::radius::attr::ACCT_SESSION_ID)
                    .unwrap()
                    .to_vec();
                let ack = certradius::radius::coa::answer(
                    &req,
                    &certradius::radius::SharedSecret::new(common::SECRET.as_bytes().to_vec()),
                    None,
                )
                .unwrap();
                nas.send_to(&ack, from).unwrap();
                if !disconnected.contains(&sid) {
                    disconnected.push(sid);
                }
            }
            disconnected.len() >= 2
        }),
        "Disconnect-Requests for {:?} only:\n{}",
        disconnected,
        server.log_text()
    );
    disconnected.sort();
    assert_eq!(disconnected, vec![b"sess-a1".to_vec(), b"sess-c2".to_vec()]);
    server.wait_for_log(
        "account disabled in the directory: sending Disconnect-Request",
        Duration::from_secs(10),
    );
    server.wait_for_log(
        "directory groups now lead to another rule: sending Disconnect-Request",
        Duration::from_secs(10),
    );
    assert!(
        common::wait_until(Duration::from_secs(10), || server
            .log_text()
            .matches("Disconnect-ACK")
            .count()
            == 2),
        "{}",
        server.log_text()
    );
    assert_eq!(sessions.len(), 3);
    // Three more rounds of revalidation: the unchanged account is left alone.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        !server.log_text().contains("acct_session_id=sess-m3"),
        "{}",
        server.log_text()
    );
    while let Ok((n, _)) = nas.recv_from(&mut buf) {
        let p = certradius::radius::Packet::decode(&buf[..n]).ok();
        assert!(
            p.and_then(|p| p
                .first(certradius::radius::attr::ACCT_SESSION_ID)
                .map(<[u8]>::to_vec))
                != Some(b"sess-m3".to_vec()),
            "the unchanged account was disconnected"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Active Directory preset against slapd with an AD test schema (userAccountControl, objectSid,
// userPrincipalName, dNSHostName, servicePrincipalName under Microsoft's OIDs). OpenLDAP knows
// LDAP_MATCHING_RULE_BIT_AND (1.2.840.113556.1.4.803, integerBitAndMatch), so the preset's
// enabled filter runs as on AD; it does not know LDAP_MATCHING_RULE_IN_CHAIN, so the nested-group
// search is sent and its refusal leaves the direct groups (memberOf overlay).
// ---------------------------------------------------------------------------------------------

const AD_SCHEMA: &str = "\
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.146 NAME 'objectSid' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.619 NAME 'dNSHostName' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
attributetype ( 1.2.840.113556.1.4.771 NAME 'servicePrincipalName' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )
objectclass ( 1.3.6.1.4.1.99999.18.1 NAME 'adTestAccount' AUXILIARY MAY ( userAccountControl $ objectSid $ userPrincipalName $ dNSHostName $ servicePrincipalName ) )
";

/// S-1-5-21-1-2-3-1105 as AD stores it (MS-DTYP §2.4.2).
fn binary_sid(subs: &[u32]) -> Vec<u8> {
    let mut b = vec![1u8, subs.len() as u8, 0, 0, 0, 0, 0, 5];
    for s in subs {
        b.extend(s.to_le_bytes());
    }
    b
}

fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, content.len() as u8];
    out.extend_from_slice(content);
    out
}

/// A client certificate from the test PKI's intermediate with a UPN and optionally the
/// KB5014754 SID extension or a SID URI; (chain file, key file).
fn ad_certificate(
    dir: &Path,
    name: &str,
    upn: &str,
    sid_extension: Option<&str>,
    sid_uri: Option<&str>,
) -> (PathBuf, PathBuf) {
    let pki = common::pki("directory");
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(pki.join("intermediate.key")).unwrap())
            .unwrap();
    let intermediate = std::fs::read_to_string(pki.join("intermediate.pem")).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&intermediate, ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, upn);
    params.subject_alt_names.push(rcgen::SanType::OtherName((
        vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
        upn.into(),
    )));
    if let Some(sid) = sid_uri {
        params.subject_alt_names.push(rcgen::SanType::URI(
            format!("tag:microsoft.com,2022-09-14:sid:{sid}")
                .try_into()
                .unwrap(),
        ));
    }
    if let Some(sid) = sid_extension {
        let oid = [
            0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x19, 0x02, 0x01,
        ];
        let value = der(0xa0, &der(0x04, sid.as_bytes()));
        let ext = der(0x30, &der(0xa0, &[&oid[..], &value].concat()));
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 311, 25, 2],
                ext,
            ));
    }
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, format!("{}{intermediate}", cert.pem())).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// `preset = "active_directory"` with `sid_binding = "required"`: the user found by
/// userPrincipalName with the SID extension matching objectSid is accepted with the group's
/// VLAN; a SID URI naming another SID is `directory_sid_mismatch`; a certificate without SID is
/// `directory_sid_mismatch` (required); userAccountControl with the disabled bit is
/// `directory_account_disabled`.
#[test]
fn active_directory_preset_with_sid_binding() {
    if !eapol_available() {
        return;
    }
    let schema_dir = tempfile::tempdir().unwrap();
    let schema = schema_dir.path().join("ad.schema");
    std::fs::write(&schema, AD_SCHEMA).unwrap();
    let Some(slapd) = Slapd::start_with(&format!("include {}", schema.display())) else {
        return;
    };
    let sid = binary_sid(&[21, 1, 2, 3, 1105]);
    let mut add = Command::new("ldapadd")
        .args(["-x", "-H", &slapd.url(), "-D", ADMIN, "-w", PASSWORD])
        .args(["-o", "nettimeout=10"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(
            format!(
                "dn: ou=ad,dc=example,dc=org\nobjectClass: organizationalUnit\nou: ad\n\n\
                 dn: cn=dave,ou=ad,dc=example,dc=org\nobjectClass: inetOrgPerson\n\
                 objectClass: adTestAccount\ncn: dave\nsn: D\n\
                 userPrincipalName: dave@certradius.test\nuserAccountControl: 512\n\
                 objectSid:: {}\n\n\
                 dn: cn=erin,ou=ad,dc=example,dc=org\nobjectClass: inetOrgPerson\n\
                 objectClass: adTestAccount\ncn: erin\nsn: E\n\
                 userPrincipalName: erin@certradius.test\nuserAccountControl: 514\n\n\
                 dn: cn=ad-wifi,ou=ad,dc=example,dc=org\nobjectClass: groupOfNames\n\
                 cn: ad-wifi\nmember: cn=dave,ou=ad,dc=example,dc=org\n",
                base64(&sid)
            )
            .as_bytes(),
        )
        .unwrap();
    assert!(add.wait().unwrap().success(), "ldapadd failed");

    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("ldap.password");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let pki = common::pki("directory");
    let cfg = common::write_config(
        dir.path(),
        &pki,
        "ad",
        "",
        &format!(
            "[directory]\nurl = \"{}\"\nbind_dn = \"{ADMIN}\"\nbind_password_file = \"{}\"\n\
             base_dn = \"ou=ad,dc=example,dc=org\"\npreset = \"active_directory\"\n\
             sid_binding = \"required\"\n\n\
             [authorize]\ndefault = \"accept\"\n[[authorize.rule]]\nname = \"ad-wifi\"\n\
             [authorize.rule.match]\ndirectory_group = \"CN=ad-wifi,OU=ad,DC=example,DC=org\"\n\
             [authorize.rule.reply]\nTunnel-Private-Group-Id = \"20\"\n",
            slapd.url(),
            pw.display()
        ),
    );
    let server = common::Server::start(&cfg, &dir.path().join("server.log"));
    let port = server.addr.port();
    let good_sid = "S-1-5-21-1-2-3-1105";

    let (c, k) = ad_certificate(
        dir.path(),
        "dave",
        "dave@certradius.test",
        Some(good_sid),
        None,
    );
    let out = eapol_files(port, dir.path(), &c, &k, "dave@certradius.test", false);
    assert!(accepted(&out), "{out}\n{}", server.log_text());
    let line = wait_auth_line(&server, "dave@certradius.test", 1);
    assert!(line.contains("rule=ad-wifi"), "{line}");

    let (c, k) = ad_certificate(
        dir.path(),
        "dave-uri",
        "dave@certradius.test",
        None,
        Some("S-1-5-21-1-2-3-9999"),
    );
    let out = eapol_files(port, dir.path(), &c, &k, "dave@certradius.test", false);
    assert!(!accepted(&out), "{out}");
    let line = wait_auth_line(&server, "dave@certradius.test", 2);
    assert!(line.contains("reason=directory_sid_mismatch"), "{line}");

    let (c, k) = ad_certificate(dir.path(), "dave-nosid", "dave@certradius.test", None, None);
    let out = eapol_files(port, dir.path(), &c, &k, "dave@certradius.test", false);
    assert!(!accepted(&out), "{out}");
    let line = wait_auth_line(&server, "dave@certradius.test", 3);
    assert!(line.contains("reason=directory_sid_mismatch"), "{line}");

    let (c, k) = ad_certificate(
        dir.path(),
        "erin",
        "erin@certradius.test",
        Some(good_sid),
        None,
    );
    let out = eapol_files(port, dir.path(), &c, &k, "erin@certradius.test", false);
    assert!(!accepted(&out), "{out}");
    let line = wait_auth_line(&server, "erin@certradius.test", 1);
    assert!(line.contains("reason=directory_account_disabled"), "{line}");
    // The nested-group search was sent after the enabled check; OpenLDAP does not know
    // LDAP_MATCHING_RULE_IN_CHAIN and logs the filter as undefined (no entries): the direct
    // groups stood, as the accepted VLAN shows.
    assert!(
        slapd.log().contains("filter=\"(?=undefined)\""),
        "no LDAP_MATCHING_RULE_IN_CHAIN search:\n{}",
        slapd.log()
    );
}

/// A wrong bind password: the server says so clearly soon after start (the readiness probe's
/// bind: `not ready: directory: ... invalid credentials`, also on `/readyz`), never printing
/// either password.
#[test]
fn wrong_bind_password_is_a_clear_error_at_start() {
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[slapd.url()], "wrong-pw-xyz", "");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[health]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&cfg, text).unwrap();
    let server = common::Server::start(&cfg, &dir.path().join("server.log"));
    server.wait_for_log("invalid credentials", Duration::from_secs(20));
    let body = wait_readyz(health_addr(&server), &server, 503);
    assert!(body.contains("invalid credentials"), "{body}");
    let log = server.log_text();
    assert!(log.contains("not ready: directory: "), "{log}");
    assert!(
        !log.contains("wrong-pw-xyz") && !log.contains(PASSWORD),
        "{log}"
    );
    assert!(!body.contains("wrong-pw-xyz"), "{body}");
}

/// Huge group lists stay bounded: an entry with 20,000 values of `group_attribute` keeps the
/// first 16,384 (`directory::client::MAX_GROUPS`); one with 10,000 authenticates, its last group
/// granting the VLAN.
#[test]
fn huge_group_lists_are_bounded() {
    if !eapol_available() {
        return;
    }
    let Some(slapd) = Slapd::start() else { return };
    let values = |n: usize| -> String {
        (0..n)
            .map(|i| format!("seeAlso: cn=g{i},ou=groups,dc=example,dc=org\n"))
            .collect()
    };
    slapd.modify(&format!(
        "dn: uid=many,ou=people,dc=example,dc=org\nchangetype: add\nobjectClass: inetOrgPerson\n\
         uid: many\ncn: many\nsn: M\n{}\n\
         dn: uid=carol@certradius.test,ou=people,dc=example,dc=org\nchangetype: modify\n\
         add: seeAlso\n{}",
        values(20_000),
        values(10_000)
    ));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &[slapd.url()],
        PASSWORD,
        "group_attribute = \"seeAlso\"\n",
    );
    let t = text(&directory_test(&cfg, "many"));
    assert!(t.contains("groups (16384):"), "{}", &t[..t.len().min(2000)]);

    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(&format!(
        "\n[audit]\nfile = \"{}\"\n\n[authorize]\ndefault = \"reject\"\n[[authorize.rule]]\n\
         name = \"last-group\"\n[authorize.rule.match]\n\
         directory_group = \"cn=g9999,ou=groups,dc=example,dc=org\"\n",
        dir.path().join("audit.jsonl").display()
    ));
    std::fs::write(&cfg, text).unwrap();
    let server = common::Server::start(&cfg, &dir.path().join("server.log"));
    let out = eapol(&server, dir.path(), "upn", "carol@certradius.test", false);
    assert!(accepted(&out), "{out}\n{}", server.log_text());
    let record = audit_for(dir.path(), "carol@certradius.test");
    assert_eq!(record["rule"], "last-group");
    assert_eq!(record["directory_groups"].as_array().unwrap().len(), 10_000);
}

/// A referral object under `base_dn` (slapd answers a continuation reference): not followed,
/// and the account that is not there is not found.
#[test]
fn referrals_are_not_followed() {
    let Some(slapd) = Slapd::start() else { return };
    slapd.modify(
        "dn: ou=elsewhere,ou=people,dc=example,dc=org\nchangetype: add\n\
         objectClass: referral\nobjectClass: extensibleObject\nou: elsewhere\n\
         ref: ldap://127.0.0.1:1/ou=elsewhere,dc=example,dc=org\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[slapd.url()], PASSWORD, "");
    let t = text(&directory_test(&cfg, "ghost"));
    assert!(t.contains("not found: 0 entries"), "{t}");
    let t = text(&directory_test(&cfg, "alice"));
    assert!(t.contains("enabled: yes"), "{t}");
}

/// A small storm with a cold cache: 8 supplicants of one account at once make at most one
/// search (identical lookups in flight are coalesced, then cached), and all are accepted.
#[test]
fn concurrent_lookups_of_one_account_make_one_search() {
    if !eapol_available() {
        return;
    }
    let Some(slapd) = Slapd::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = directory_server(dir.path(), &[slapd.url()], "");
    let port = server.addr.port();
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let dir = dir.path().to_path_buf();
            std::thread::spawn(move || eapol_to(port, &dir, "rsa", "alice@certradius.test", false))
        })
        .collect();
    for r in runs {
        let out = r.join().unwrap();
        assert!(accepted(&out), "{out}\n{}", server.log_text());
    }
    let searches = slapd
        .log()
        .matches("SRCH base=\"ou=people,dc=example,dc=org\"")
        .count();
    assert_eq!(searches, 1, "{}", slapd.log());
    assert_eq!(
        lookups(&server, "found") + lookups(&server, "cache_hit"),
        8.0
    );
}

/// `check` warns about a rule on `directory_group` without `[directory]` (it would never match).
#[test]
fn check_warns_about_directory_group_without_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::pki("directory");
    let cfg = common::write_config(
        dir.path(),
        &pki,
        "nodir",
        "",
        "[authorize]\ndefault = \"accept\"\n[[authorize.rule]]\nname = \"staff\"\n\
         [authorize.rule.match]\ndirectory_group = \"cn=staff,dc=example,dc=org\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(["-c", cfg.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    let t = text(&out);
    assert!(
        t.contains("\"staff\" matches directory_group, but there is no [directory]"),
        "{t}"
    );
}

/// One EAP-TLS authentication with `client-{key}` over UDP: accepted or not.
fn accepted_udp(server: &common::Server, key: &str) -> bool {
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
    // Every supplicant is the one entry under the base, enabled (the lookup is not what this
    // tests).
    .replace("base_dn = \"ou=people,dc=example,dc=org\"", "base_dn = \"dc=example,dc=org\"")
    .replace("user_filter = \"(uid={subject_cn})\"", "user_filter = \"(dc=example)\"");
    std::fs::write(&cfg, text).unwrap();
    let server = common::Server::start_with_env(
        &cfg,
        &dir.path().join("server.log"),
        &[("STATE_DIRECTORY", state.to_str().unwrap())],
    );
    server.wait_for_log("CRL fetched and verified", Duration::from_secs(20));
    assert!(
        common::wait_until(Duration::from_secs(10), || accepted_udp(&server, "ecdsa")),
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
        common::wait_until(Duration::from_secs(20), || !accepted_udp(&server, "ecdsa")),
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
