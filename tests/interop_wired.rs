//! The interop matrix's real-authenticator row (`testbed/interop/README.md`): hostapd as a wired
//! 802.1X switch port (`driver=wired`, `ieee8021x=1`) and wpa_supplicant (`-D wired`) on the two
//! ends of a veth pair, the supplicant's end in a network namespace this test creates and
//! removes. hostapd relays EAPOL to certradius over loopback RADIUS, as a switch would. The port
//! must end authorized for a good certificate and stay unauthorized for a revoked one.
//!
//! Needs root (network namespaces), iproute2, hostapd and wpa_supplicant: a loud SKIP locally,
//! a failure under CI (`.ci/run` installs them and runs as root).
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{SECRET, Server};

/// The namespace, the veth pair and the two daemons of one run, removed on drop.
struct WiredPort {
    netns: String,
    auth_if: String,
    sup_if: String,
    hostapd: Child,
    supplicant: Option<Child>,
    dir: PathBuf,
}

impl Drop for WiredPort {
    fn drop(&mut self) {
        if let Some(s) = &mut self.supplicant {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = self.hostapd.kill();
        let _ = self.hostapd.wait();
        let _ = ip(&["link", "del", &self.auth_if]);
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether this process may create network namespaces (root, and a kernel that allows it).
fn can_make_namespaces() -> bool {
    let name = format!("crt-probe-{}", std::process::id());
    let ok = ip(&["netns", "add", &name]).is_ok();
    let _ = ip(&["netns", "del", &name]);
    ok
}

fn tools_present() -> bool {
    common::require_tool("ip", "apt-get install iproute2")
        && common::require_tool("hostapd", "apt-get install hostapd")
        && common::require_tool("hostapd_cli", "apt-get install hostapd")
        && common::require_tool("wpa_supplicant", "apt-get install wpasupplicant")
        && common::require_tool("wpa_cli", "apt-get install wpasupplicant")
        && common::require(
            can_make_namespaces(),
            "network namespaces (root)",
            "run the tests as root",
        )
}

/// Brings up the veth pair and hostapd on the authenticator end, pointed at `server`.
fn port(dir: &Path, tag: &str, server: &Server) -> WiredPort {
    let id = std::process::id() % 100_000;
    let netns = format!("crt-{tag}-{id}");
    let auth_if = format!("cra{tag}{id}");
    let sup_if = format!("crs{tag}{id}");
    ip(&["netns", "add", &netns]).unwrap();
    ip(&[
        "link", "add", &auth_if, "type", "veth", "peer", "name", &sup_if,
    ])
    .unwrap();
    ip(&["link", "set", &sup_if, "netns", &netns]).unwrap();
    ip(&["link", "set", &auth_if, "up"]).unwrap();
    ip(&["netns", "exec", &netns, "ip", "link", "set", &sup_if, "up"]).unwrap();
    let conf = dir.join(format!("hostapd-{tag}.conf"));
    std::fs::write(
        &conf,
        format!(
            "interface={auth_if}\ndriver=wired\nieee8021x=1\neapol_version=2\n\
             eap_reauth_period=0\nuse_pae_group_addr=1\nown_ip_addr=127.0.0.1\n\
             auth_server_addr=127.0.0.1\nauth_server_port={port}\n\
             auth_server_shared_secret={SECRET}\nctrl_interface={ctrl}\n\
             logger_stdout=-1\nlogger_stdout_level=1\n",
            port = server.addr.port(),
            ctrl = dir.join(format!("hostapd-{tag}")).display(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join(format!("hostapd-{tag}.log"))).unwrap();
    let hostapd = Command::new("hostapd")
        .arg(&conf)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    WiredPort {
        netns,
        auth_if,
        sup_if,
        hostapd,
        supplicant: None,
        dir: dir.to_path_buf(),
    }
}

impl WiredPort {
    /// Starts wpa_supplicant in the namespace with the test PKI's `client-NAME` certificate.
    fn connect(&mut self, pki: &Path, client: &str, identity: &str) {
        let conf = self.dir.join(format!("sup-{}.conf", self.sup_if));
        let p = pki.display();
        std::fs::write(
            &conf,
            format!(
                "ctrl_interface={ctrl}\nap_scan=0\nnetwork={{\n key_mgmt=IEEE8021X\n eap=TLS\n \
                 eapol_flags=0\n identity=\"{identity}\"\n ca_cert=\"{p}/ca.pem\"\n \
                 client_cert=\"{p}/client-{client}.pem\"\n private_key=\"{p}/client-{client}.key\"\n \
                 phase1=\"tls_disable_tlsv1_3=0\"\n}}\n",
                ctrl = self.sup_ctrl().display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(self.dir.join(format!("sup-{}.log", self.sup_if))).unwrap();
        // hostapd needs a moment to open its EAPOL socket before the first EAPOL-Start.
        std::thread::sleep(Duration::from_millis(500));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns,
                "wpa_supplicant",
                "-D",
                "wired",
                "-i",
            ])
            .arg(&self.sup_if)
            .arg("-c")
            .arg(&conf)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        self.supplicant = Some(child);
    }

    fn sup_ctrl(&self) -> PathBuf {
        self.dir.join(format!("sup-{}", self.sup_if))
    }

    /// `hostapd_cli all_sta`: the switch's view of the port.
    fn authenticator_view(&self) -> String {
        let out = Command::new("hostapd_cli")
            .arg("-p")
            .arg(self.dir.join(format!("hostapd-{}", tag_of(&self.auth_if))))
            .args(["-i", &self.auth_if, "all_sta"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `wpa_cli status` in the namespace: the supplicant's view.
    fn supplicant_view(&self) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns, "wpa_cli", "-p"])
            .arg(self.sup_ctrl())
            .args(["-i", &self.sup_if, "status"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The tag in an interface name `cra<tag><id>` (the hostapd control directory's suffix).
fn tag_of(auth_if: &str) -> String {
    auth_if
        .trim_start_matches("cra")
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect()
}

fn audit_reason(audit: &Path, identity: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(audit).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .rfind(|v| v["identity"] == identity)
        .map(|v| {
            (
                v["outcome"].as_str().unwrap_or("?").to_string(),
                v["reason"].as_str().unwrap_or("-").to_string(),
            )
        })
}

#[test]
fn hostapd_wired_port_is_authorized_for_a_good_certificate_and_not_for_a_revoked_one() {
    if !tools_present() {
        return;
    }
    let pki = common::pki("interop_wired");
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let p = pki.display();
    let cfg = common::write_config(
        dir.path(),
        &pki,
        "wired",
        &format!(
            "crl_file = [\"{p}/ca.crl.pem\", \"{p}/intermediate.crl.pem\", \"{p}/sub-intermediate.crl.pem\"]"
        ),
        &format!("[audit]\nfile = \"{}\"", audit.display()),
    );
    let server = Server::start(&cfg, &dir.path().join("server.log"));

    // A good certificate: both ends report the port authorized, the audit line an accept.
    let mut good = port(dir.path(), "g", &server);
    good.connect(&pki, "ecdsa", "wired-good@certradius.test");
    let authorized = common::wait_until(Duration::from_secs(20), || {
        good.authenticator_view().contains("[AUTHORIZED]")
            && good.supplicant_view().contains("suppPortStatus=Authorized")
    });
    assert!(
        authorized,
        "the wired port did not become authorized\nhostapd: {}\nwpa_supplicant: {}\nserver log:\n{}",
        good.authenticator_view(),
        good.supplicant_view(),
        server.log_text()
    );
    assert_eq!(
        audit_reason(&audit, "wired-good@certradius.test"),
        Some(("accept".into(), "-".into()))
    );
    drop(good);

    // A revoked certificate: refused by the server, the port stays unauthorized.
    let mut revoked = port(dir.path(), "r", &server);
    revoked.connect(&pki, "revoked", "wired-revoked@certradius.test");
    let refused = common::wait_until(Duration::from_secs(20), || {
        audit_reason(&audit, "wired-revoked@certradius.test").is_some()
    });
    assert!(
        refused,
        "no audit record for the revoked certificate:\n{}",
        server.log_text()
    );
    assert_eq!(
        audit_reason(&audit, "wired-revoked@certradius.test"),
        Some(("reject".into(), "cert_revoked".into()))
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !revoked.authenticator_view().contains("[AUTHORIZED]"),
        "hostapd authorized a revoked certificate: {}",
        revoked.authenticator_view()
    );
    assert!(
        !revoked
            .supplicant_view()
            .contains("suppPortStatus=Authorized"),
        "{}",
        revoked.supplicant_view()
    );
}
