//! Operating-system integration files: the systemd unit checked with `systemd-analyze verify`,
//! and the Debian package built with cargo-deb and listed with `dpkg-deb -c`.
//!
//! A missing tool prints a loud SKIPPED, except under CI (`CI` set), where it is a failure.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::Path;
use std::process::Command;

fn available(program: &str, install: &str) -> bool {
    common::require_tool(program, install)
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn systemd_unit_verifies() {
    if !available("systemd-analyze", "apt-get install systemd") {
        return;
    }
    let version: u32 = String::from_utf8_lossy(
        &Command::new("systemd-analyze")
            .arg("--version")
            .output()
            .unwrap()
            .stdout,
    )
    .split_whitespace()
    .nth(1)
    .and_then(|v| v.parse().ok())
    .unwrap_or(0);
    let unit = std::fs::read_to_string(root().join("testbed/systemd/certradius.service")).unwrap();
    for required in [
        "Type=notify-reload",
        "User=certradius",
        "ProtectSystem=strict",
        "StateDirectory=certradius",
        "LogsDirectory=certradius",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "ExecStartPre=/usr/bin/certradius check",
    ] {
        assert!(unit.contains(required), "the unit lacks {required:?}");
    }
    assert!(
        !unit.contains("CAP_NET_BIND_SERVICE"),
        "1812 needs no capability"
    );
    // verify wants the ExecStart binary to exist: point it at the one cargo built.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certradius.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/certradius", env!("CARGO_BIN_EXE_certradius")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify:\n{text}");
    // verify also loads the units ours refers to (network, sysinit, ...) and whatever else the
    // machine has installed; their complaints (e.g. another package's deprecated setting) are
    // not ours. Every finding about our unit names its file.
    let ours = path.display().to_string();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.starts_with('/') || l.starts_with(&ours))
    {
        // systemd before 253 (Debian 12) does not know Type=notify-reload yet and falls back
        // to Type=simple; README says how to run it there. Anything else is a finding.
        let old_systemd_only =
            version < 253 && (line.contains("notify-reload") || line.contains("'ReloadSignal'"));
        assert!(
            old_systemd_only,
            "systemd-analyze verify (systemd {version}): {line}"
        );
    }
    if version < 253 {
        eprintln!(
            "note: systemd {version} < 253 does not know Type=notify-reload; verified the rest"
        );
    }
}

#[test]
fn debian_package_builds_with_its_files() {
    if !available("cargo-deb", "cargo install cargo-deb --locked")
        || !available("dpkg-deb", "apt-get install dpkg")
    {
        return;
    }
    // Package the debug binary cargo already built for this test: no release build here.
    let bin = env!("CARGO_BIN_EXE_certradius");
    let assets = root().join("target/assets");
    std::fs::create_dir_all(&assets).unwrap();
    let ok = Command::new(bin)
        .arg("manpage")
        .arg(&assets)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let ok = Command::new("gzip")
        .args(["-9nf"])
        .arg(assets.join("certradius.1"))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    for (shell, file) in [
        ("bash", "certradius.bash"),
        ("zsh", "_certradius"),
        ("fish", "certradius.fish"),
    ] {
        let out = Command::new(bin)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success() && !out.stdout.is_empty());
        std::fs::write(assets.join(file), out.stdout).unwrap();
    }
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new("cargo")
        .current_dir(root())
        .args([
            "deb",
            "--no-build",
            "--no-strip",
            "--fast",
            "--profile",
            "dev",
            "--output",
        ])
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo deb:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("no .deb written");
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    for path in [
        "./usr/bin/certradius",
        "./usr/lib/systemd/system/certradius.service",
        "./etc/certradius/certradius.toml",
        "./usr/share/certradius/dictionaries/dictionary.rfc2865",
        "./usr/share/man/man1/certradius.1.gz",
        "./usr/share/bash-completion/completions/certradius",
        "./usr/share/zsh/vendor-completions/_certradius",
        "./usr/share/fish/vendor_completions.d/certradius.fish",
    ] {
        assert!(
            listing.contains(path),
            "{path} not in the package:\n{listing}"
        );
    }
    let control = Command::new("dpkg-deb")
        .args(["-I"])
        .arg(&deb)
        .output()
        .unwrap();
    let control = String::from_utf8_lossy(&control.stdout);
    assert!(control.contains("postinst"), "no postinst:\n{control}");
    assert!(control.contains("conffiles"), "no conffiles:\n{control}");
    assert!(
        control.contains("adduser"),
        "postinst needs adduser:\n{control}"
    );
}
