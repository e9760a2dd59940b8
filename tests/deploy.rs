//! The deployment recipes of `testbed/deploy/` (README "Running a pool"): the Kubernetes
//! manifests validate against the Kubernetes API schema (`kubernetes-validate --strict`, from
//! PyPI; a loud SKIP locally without it, a failure under CI, where `.ci/run` installs it), they
//! keep what a RADIUS pool needs (the NAS source address, probes on `/readyz` and `/healthz`, a
//! preStop that lets the drain finish, a disruption budget), and the configuration each recipe
//! ships loads with `certradius check` once its files are in place.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/deploy")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy_dir().join(name)).unwrap()
}

#[test]
fn kubernetes_manifests_validate_against_the_api_schema() {
    if !common::require_tool("kubernetes-validate", "pip install kubernetes-validate") {
        return;
    }
    let files = manifests();
    assert!(files.len() >= 5, "manifests: {files:?}");
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate:\n{text}");
    for kind in [
        "statefulset/certradius",
        "service/certradius",
        "poddisruptionbudget/certradius",
        "configmap/certradius-public",
        "secret/certradius",
    ] {
        assert!(
            text.contains(&format!("passed for resource {kind} ")),
            "{kind} not validated:\n{text}"
        );
    }
}

#[test]
fn the_kubernetes_recipe_keeps_what_a_radius_pool_needs() {
    let service = read("kubernetes/service.yaml");
    // Clients are matched by source address: SNAT would make every NAS a node.
    assert!(service.contains("externalTrafficPolicy: Local"));
    assert!(service.contains("protocol: UDP"));
    // One NAS's conversation stays on the pod that holds its EAP state.
    assert!(service.contains("sessionAffinity: ClientIP"));
    let sts = read("kubernetes/statefulset.yaml");
    assert!(sts.contains("path: /readyz"), "readiness on /readyz");
    assert!(sts.contains("path: /healthz"), "liveness on /healthz");
    assert!(sts.contains("preStop:"), "a preStop for the drain");
    // The grace period outlasts the preStop sleep plus the drain (shutdown_grace_secs = 5).
    let grace: u64 = field(&sts, "terminationGracePeriodSeconds:");
    let sleep: u64 = field(&sts, "seconds:");
    assert!(
        grace > sleep + 5,
        "grace {grace} vs preStop {sleep} + drain 5"
    );
    assert!(read("kubernetes/poddisruptionbudget.yaml").contains("maxUnavailable: 1"));
}

fn field(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} missing"))
        .trim()
        .parse()
        .unwrap()
}

/// The files a recipe's configuration names, made from the test PKI under `dir`.
fn install_files(dir: &Path) -> PathBuf {
    let pki = common::pki("deploy");
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    for (from, to) in [
        ("server.pem", "server.pem"),
        ("server.key", "server.key"),
        ("ca.pem", "ca.pem"),
        ("ca.crl.pem", "ca.crl"),
        ("ca.pem", "db-ca.pem"),
    ] {
        std::fs::copy(pki.join(from), etc.join(to)).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .arg("ticket-key")
        .arg(etc.join("ticket.key"))
        .output()
        .unwrap();
    assert!(out.status.success(), "ticket-key: {out:?}");
    for sub in ["var", "log"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    etc
}

/// `certradius check` on `config` with the recipe's absolute paths moved under `dir`.
fn check(dir: &Path, config: &str, env: &[(&str, String)]) -> String {
    let etc = install_files(dir);
    let etc_text = format!("{}/", etc.display());
    let encoded = etc_text.replace('/', "%2F");
    let text = config
        .replace("/etc/certradius/public/", &etc_text)
        .replace("/etc/certradius/secret/", &etc_text)
        .replace("/etc/certradius/", &etc_text)
        .replace("%2Fetc%2Fcertradius%2Fpublic%2F", &encoded)
        .replace("%2Fetc%2Fcertradius%2F", &encoded)
        .replace(
            "/var/lib/certradius",
            &dir.join("var").display().to_string(),
        )
        .replace(
            "/var/log/certradius",
            &dir.join("log").display().to_string(),
        );
    let path = dir.join("certradius.toml");
    std::fs::write(&path, text).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certradius"));
    cmd.arg("check")
        .arg("--config")
        .arg(&path)
        .env("STATE_DIRECTORY", dir.join("var"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "check refused the recipe's configuration:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_several_hosts_recipe_configuration_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(dir.path(), &read("systemd-hosts/certradius.toml"), &[]);
    assert!(out.contains("sslmode=verify-full"), "{out}");
    assert!(out.contains("when unready: Silent"), "{out}");
}

#[test]
fn the_kubernetes_recipe_configuration_loads() {
    // certradius.toml is the block under `certradius.toml: |` in the Secret.
    let secret = read("kubernetes/secret.yaml");
    let mut lines = secret
        .lines()
        .skip_while(|l| !l.contains("certradius.toml: |"));
    lines.next();
    let config: String = lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert!(config.contains("[server]"), "{config}");
    // The database URL comes from the Secret through the environment, as in the StatefulSet.
    let url = secret
        .lines()
        .find_map(|l| l.trim().strip_prefix("database-url: "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc/").display().to_string();
    let url = url.replace("%2Fetc%2Fcertradius%2Fpublic%2F", &etc.replace('/', "%2F"));
    let out = check(
        dir.path(),
        &config,
        &[("CERTRADIUS__ACCOUNTING__DATABASE_URL", url)],
    );
    assert!(out.contains("sslmode=verify-full"), "{out}");
    assert!(out.contains("udp 0.0.0.0:1812"), "{out}");
    assert!(out.contains("health http://0.0.0.0:9813/healthz"), "{out}");
}
