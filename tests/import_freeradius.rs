//! `certradius import freeradius` against the real binary: the unmodified Debian FreeRADIUS
//! tree (imports with untranslated parts, and loads), a fixture tree of an EAP-TLS site (imports
//! whole, and `certradius check` accepts it), and the refusals (exit code 2).
//!
//! The Debian tree comes from the `freeradius` package: without it the tests that need it print
//! a loud SKIP — except under CI (`CI` set), where its absence is a failure.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DEBIAN: &str = "/etc/freeradius/3.0";

fn debian_available() -> bool {
    common::require(
        Path::new(DEBIAN).join("radiusd.conf").exists(),
        "the FreeRADIUS configuration /etc/freeradius/3.0",
        "apt-get install freeradius",
    )
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_certradius")
}

fn import(raddb: &Path, out: Option<&Path>) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(["import", "freeradius"]).arg(raddb);
    if let Some(o) = out {
        cmd.arg("-o").arg(o);
    }
    cmd.output().unwrap()
}

fn check(config: &Path) -> Output {
    Command::new(bin())
        .arg("check")
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A copy of the Debian tree (symlinks kept, so mods-enabled still points at mods-available).
fn copy_debian(into: &Path) -> PathBuf {
    let dest = into.join("raddb");
    let st = Command::new("cp")
        .arg("-a")
        .arg(DEBIAN)
        .arg(&dest)
        .status()
        .unwrap();
    assert!(st.success());
    dest
}

#[test]
fn the_debian_tree_imports_with_untranslated_parts_and_loads() {
    if !debian_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let raddb = copy_debian(dir.path());
    let out = dir.path().join("imported.toml");
    let run = import(&raddb, Some(&out));
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(1), "{err}");
    // Non-TLS EAP types and unlang are reported with file:line, what, why.
    let md5 = err
        .lines()
        .find(|l| l.contains("default_eap_type = md5"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(md5.starts_with("mods-enabled/eap:"), "{md5}");
    assert!(err.contains("EAP method peap"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("sites-enabled/default:") && l.contains("unlang `if")),
        "{err}"
    );
    assert!(err.contains("virtual server inner-tunnel"), "{err}");
    // Secrets never on stderr.
    assert!(!err.contains("testing123"), "{err}");
    assert!(!err.contains("whatever"), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(mode(&out), 0o600);
    assert!(
        text.starts_with("# certradius configuration imported"),
        "{text}"
    );
    assert!(text.contains("# NOT TRANSLATED ("), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("secret = \"testing123\"  # from clients.conf:")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with(
            "certificate_file = \"/etc/ssl/certs/ssl-cert-snakeoil.pem\"  # from mods-enabled/eap:"
        )),
        "{text}"
    );
    // private_key_password → a 0600 file beside the output, and the knob pointing at it.
    let pw = dir.path().join("imported.key-password");
    assert_eq!(std::fs::read_to_string(&pw).unwrap(), "whatever\n");
    assert_eq!(mode(&pw), 0o600);
    assert!(
        text.contains(&format!("private_key_password_file = \"{}\"", pw.display())),
        "{text}"
    );
    let c = check(&out);
    assert!(
        matches!(c.status.code(), Some(0 | 1)),
        "check refused the import:\n{}{}",
        String::from_utf8_lossy(&c.stdout),
        stderr(&c)
    );
}

/// An EAP-TLS FreeRADIUS site built on the Debian tree: its radiusd.conf and policies, an
/// EAP-TLS-only eap module whose CAs and CRLs are in a hashed ca_path, two clients, a MAC list.
pub fn fixture(dir: &Path, pki: &Path, auth_port: u16, acct_port: u16) -> PathBuf {
    let raddb = dir.join("raddb");
    for sub in ["mods-enabled", "sites-enabled", "ca", "mods-config"] {
        std::fs::create_dir_all(raddb.join(sub)).unwrap();
    }
    let radiusd = std::fs::read_to_string(Path::new(DEBIAN).join("radiusd.conf"))
        .unwrap()
        .replace(
            "raddbdir = /etc/freeradius/3.0",
            &format!("raddbdir = {}", raddb.display()),
        )
        // FreeRADIUS run by the test keeps the test's user (the files are the test's).
        .replace("\tuser = freerad", "#\tuser = freerad")
        .replace("\tgroup = freerad", "#\tgroup = freerad");
    std::fs::write(raddb.join("radiusd.conf"), radiusd).unwrap();
    for f in ["dictionary", "policy.d"] {
        let st = Command::new("cp")
            .arg("-a")
            .arg(Path::new(DEBIAN).join(f))
            .arg(raddb.join(f))
            .status()
            .unwrap();
        assert!(st.success());
    }
    std::fs::write(
        raddb.join("proxy.conf"),
        "proxy server {\n\tdefault_fallback = no\n}\n",
    )
    .unwrap();
    std::fs::write(
        raddb.join("clients.conf"),
        format!(
            "client switches {{\n\tipaddr = 10.20.0.0\n\tnetmask = 16\n\tsecret = \"sw#itch\\\"es\"\n\
             \tshortname = floor-switches\n\trequire_message_authenticator = yes\n}}\n\
             client loopback {{\n\tipv4addr = 127.0.0.1\n\tsecret = {}\n\trequire_message_authenticator = yes\n}}\n",
            common::SECRET
        ),
    )
    .unwrap();
    for f in [
        "ca.pem",
        "ca.crl.pem",
        "intermediate.crl.pem",
        "sub-intermediate.crl.pem",
    ] {
        std::fs::copy(pki.join(f), raddb.join("ca").join(f)).unwrap();
    }
    // The hashed names OpenSSL (and FreeRADIUS) look CAs and CRLs up by.
    let _ = Command::new("openssl")
        .arg("rehash")
        .arg(raddb.join("ca"))
        .status();
    std::fs::write(
        raddb.join("mods-enabled/eap"),
        format!(
            "eap {{\n\tdefault_eap_type = tls\n\ttimer_expire = 60\n\tmax_sessions = ${{max_requests}}\n\
             \ttls-config tls-common {{\n\t\tprivate_key_file = {pki}/server.key\n\
             \t\tcertificate_file = {pki}/server.pem\n\t\tca_path = ${{confdir}}/ca\n\
             \t\tcheck_crl = yes\n\t\ttls_min_version = \"1.2\"\n\t\ttls_max_version = \"1.3\"\n\
             \t\tfragment_size = 1024\n\t\tcache {{\n\t\t\tenable = yes\n\t\t\tlifetime = 24 # hours\n\
             \t\t\tmax_entries = 255\n\t\t}}\n\t}}\n\ttls {{\n\t\ttls = tls-common\n\t}}\n}}\n",
            pki = pki.display()
        ),
    )
    .unwrap();
    std::fs::write(
        raddb.join("mods-enabled/authorized_macs"),
        "files authorized_macs {\n\tkey = \"%{Calling-Station-ID}\"\n\tusersfile = ${confdir}/authorized_macs\n}\n",
    )
    .unwrap();
    std::fs::write(
        raddb.join("authorized_macs"),
        "# printers\n00:11:22:33:44:55\n\tTunnel-Type = VLAN,\n\tTunnel-Medium-Type = IEEE-802,\n\
         \tTunnel-Private-Group-Id = \"100\"\n\n0011.2233.4466\n",
    )
    .unwrap();
    std::fs::write(
        raddb.join("sites-enabled/default"),
        format!(
            "server default {{\n\tlisten {{\n\t\ttype = auth\n\t\tipaddr = 127.0.0.1\n\t\tport = {auth_port}\n\t}}\n\
             \tlisten {{\n\t\ttype = acct\n\t\tipaddr = 127.0.0.1\n\t\tport = {acct_port}\n\t}}\n\
             \tauthorize {{\n\t\tauthorized_macs\n\t\teap {{\n\t\t\tok = return\n\t\t}}\n\t}}\n\
             \tauthenticate {{\n\t\teap\n\t}}\n}}\n"
        ),
    )
    .unwrap();
    raddb
}

#[test]
fn an_eap_tls_fixture_imports_whole_and_check_accepts_it() {
    if !debian_available() {
        return;
    }
    let pki = common::pki("import_freeradius");
    let dir = tempfile::tempdir().unwrap();
    let raddb = fixture(dir.path(), &pki, 18120, 18130);
    let out = dir.path().join("site.toml");
    let run = import(&raddb, Some(&out));
    let err = stderr(&run);
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert_eq!(run.status.code(), Some(0), "{err}\n{text}");
    assert!(!err.contains("sw#itch"), "{err}");
    assert!(text.contains("# NOT TRANSLATED (0):"), "{text}");
    for expected in [
        "name = \"floor-switches\"  # from clients.conf:5",
        "address = \"10.20.0.0/16\"  # from clients.conf:2, clients.conf:3",
        "secret = \"sw#itch\\\"es\"  # from clients.conf:4",
        "require_message_authenticator = true  # from clients.conf:11",
        "listen = [\"127.0.0.1:18120\"]  # from sites-enabled/default:2",
        "listen = [\"127.0.0.1:18130\"]  # from sites-enabled/default:7",
        "file = \"accounting.jsonl\"",
        "check_crl = \"leaf\"  # from mods-enabled/eap:",
        "tls_max_version = \"1.3\"",
        "session_lifetime_secs = 86400",
        "session_cache_size = 255",
        "max_sessions = 16384",
        "enabled = true",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    assert!(text.contains("intermediate.crl.pem"), "{text}");
    let mab = std::fs::read_to_string(dir.path().join("site-mab.csv")).unwrap();
    assert!(mab.contains("00-11-22-33-44-55,100,"), "{mab}");
    assert!(mab.contains("00-11-22-33-44-66,,"), "{mab}");
    let c = check(&out);
    assert_eq!(
        c.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&c.stdout),
        stderr(&c)
    );
}

#[test]
fn without_output_the_toml_goes_to_stdout_and_refusals_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let raddb = dir.path().join("raddb");
    std::fs::create_dir(&raddb).unwrap();
    // No eap module: certradius would have no server certificate.
    std::fs::write(
        raddb.join("radiusd.conf"),
        "client a {\n\tipaddr = 192.0.2.1\n\tsecret = hush\n}\nmodules {\n}\n",
    )
    .unwrap();
    let run = import(&raddb, None);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains("no eap module"), "{err}");
    assert!(!err.contains("hush"), "{err}");
    // A syntax error names the file and line.
    std::fs::write(raddb.join("radiusd.conf"), "a = 1\n$INCLUDE more.conf\n").unwrap();
    std::fs::write(raddb.join("more.conf"), "b {\n\tc = \"open\n}\n").unwrap();
    let run = import(&raddb, None);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains("more.conf:2: unterminated"), "{err}");
    // With a usable tree and no -o, the configuration is printed.
    let pki = common::pki("import_freeradius");
    std::fs::write(
        raddb.join("radiusd.conf"),
        format!(
            "modules {{\n eap {{\n  default_eap_type = tls\n  tls-config t {{\n   certificate_file = {p}/server.pem\n   \
             private_key_file = {p}/server.key\n   ca_file = {p}/ca.pem\n  }}\n  tls {{\n   tls = t\n  }}\n }}\n}}\n",
            p = pki.display()
        ),
    )
    .unwrap();
    let run = import(&raddb, None);
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    assert!(
        out.contains(&format!(
            "ca_file = [\"{}/ca.pem\"]  # from radiusd.conf:7",
            pki.display()
        )),
        "{out}"
    );
}

/// A child process killed when dropped, a failed assertion included.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An eapol_test network block for one client certificate of the test PKI.
fn supplicant(dir: &Path, pki: &Path, name: &str, cert: &str, tls13: bool) -> PathBuf {
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(
        &path,
        format!(
            "network={{\n\tkey_mgmt=WPA-EAP\n\teap=TLS\n\tidentity=\"{name}@certradius.test\"\n\
             \tca_cert=\"{pki}/ca.pem\"\n\tclient_cert=\"{pki}/{cert}.pem\"\n\tprivate_key=\"{pki}/{cert}.key\"\n\
             \tphase1=\"tls_disable_tlsv1_3={}\"\n}}\n",
            u8::from(!tls13),
            pki = pki.display()
        ),
    )
    .unwrap();
    path
}

/// eapol_test against `port`: (succeeded with MPPE keys, its output).
fn eapol(conf: &Path, port: u16) -> (bool, String) {
    let out = Command::new("eapol_test")
        .arg("-c")
        .arg(conf)
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-s",
            common::SECRET,
        ])
        .args(["-t", "15"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.success() && text.contains("MPPE keys OK: 1  mismatch: 0"),
        text,
    )
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The three outcomes both servers must give: a good certificate over TLS 1.2 and over TLS 1.3
/// accepted, a revoked one refused.
fn outcomes(dir: &Path, pki: &Path, port: u16, who: &str, log: &dyn Fn() -> String) {
    for (name, cert, tls13, accept) in [
        ("alice12", "client-rsa", false, true),
        ("alice13", "client-rsa", true, true),
        ("revoked", "client-revoked", true, false),
    ] {
        let (ok, out) = eapol(&supplicant(dir, pki, name, cert, tls13), port);
        assert_eq!(
            ok,
            accept,
            "{who}: {name} expected {}\n{}\nserver log:\n{}",
            if accept { "accept" } else { "refusal" },
            tail(&out),
            tail(&log())
        );
    }
}

/// The imported fixture authenticates eapol_test as FreeRADIUS itself does with the same
/// tree: a good certificate over TLS 1.2 and 1.3 accepted, a revoked one refused.
#[test]
fn the_imported_fixture_authenticates_as_freeradius_does() {
    if !debian_available()
        || !common::require_tool("eapol_test", "apt-get install eapoltest")
        || !common::require_tool("freeradius", "apt-get install freeradius")
        || !common::require_tool("openssl", "apt-get install openssl")
    {
        return;
    }
    let pki = common::pki("import_freeradius");
    let dir = tempfile::tempdir().unwrap();
    let (auth, acct) = (free_udp_port(), free_udp_port());
    let raddb = fixture(dir.path(), &pki, auth, acct);
    let out = dir.path().join("site.toml");
    let run = import(&raddb, Some(&out));
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));

    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let state_dir = state.to_string_lossy().into_owned();
    let server = common::Server::start_with_env(
        &out,
        &dir.path().join("certradius.log"),
        &[
            ("CERTRADIUS__SERVER__LISTEN", "127.0.0.1:0"),
            ("CERTRADIUS__ACCOUNTING__LISTEN", "127.0.0.1:0"),
            ("STATE_DIRECTORY", &state_dir),
        ],
    );
    outcomes(dir.path(), &pki, server.addr.port(), "certradius", &|| {
        server.log_text()
    });
    let text = server.log_text();
    for needle in [
        "tls_version=TLSv1.2",
        "tls_version=TLSv1.3",
        "reason=cert_revoked",
    ] {
        assert!(text.contains(needle), "{needle} not in the log:\n{text}");
    }
    drop(server);

    let log = dir.path().join("freeradius.log");
    let fr = Killed(
        Command::new("freeradius")
            .arg("-X")
            .arg("-d")
            .arg(&raddb)
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let ready = common::wait_until(std::time::Duration::from_secs(20), || {
        read_log().contains("Ready to process requests")
    });
    assert!(ready, "FreeRADIUS did not start:\n{}", tail(&read_log()));
    outcomes(dir.path(), &pki, auth, "FreeRADIUS", &read_log);
    drop(fr);
    // FreeRADIUS refused the revoked certificate for its revocation, found through the CRLs of
    // the hashed ca_path the import read.
    let text = read_log();
    assert!(text.contains("certificate revoked"), "{}", tail(&text));
    assert!(text.contains("TLSv1.3"), "{}", tail(&text));
}
