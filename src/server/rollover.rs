//! Server certificate rollover, seen from the shell (see `x509::rollover` for what supplicants
//! pin): a reload that brings a server certificate from another CA or with other names warns
//! loudly, and the certificate in service is recorded in the state directory
//! (`served-certificate.pem`, beside `server.state_file`) so that `certradius check` can
//! compare a new configuration with it before it is loaded.

use std::path::PathBuf;

use tracing::warn;

use crate::config::Config;
use crate::tls::TlsSetup;
use crate::x509::rollover::{ServedIdentity, changes};

/// Where the certificate in service is recorded: beside the state file, when that is in a
/// state directory (`$STATE_DIRECTORY`, the embedded default's, or an absolute
/// `server.state_file`). With state paths relative to the working directory there is no
/// record: unrelated servers started from one directory (tests, a shell) would overwrite each
/// other's and `check` would compare with the wrong one.
pub fn served_path(config: &Config) -> Option<PathBuf> {
    let state = &config.server.state_file;
    state
        .is_absolute()
        .then(|| state.with_file_name("served-certificate.pem"))
}

/// Records the certificate now in service (PEM, written beside and renamed over the old one).
/// A failure costs only `check`'s comparison: it is logged, not fatal.
pub fn record(config: &Config, tls: &TlsSetup) {
    let Some(path) = served_path(config) else {
        return;
    };
    let pem =
        pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, &tls.served_der)
            .map_err(|e| std::io::Error::other(e.to_string()));
    let tmp = path.with_extension(format!("pem.{}.tmp", std::process::id()));
    let written = pem
        .and_then(|pem| std::fs::write(&tmp, pem))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        warn!(file = %path.display(), "cannot record the server certificate in service (certradius check compares with it): {e}");
    }
}

/// Warns once per difference between the certificate in service and the one a reload brings.
pub fn warn_on_reload(old: &TlsSetup, new: &TlsSetup) {
    if let (Some(old), Some(new)) = (&old.served, &new.served) {
        for change in changes(old, new) {
            warn!("server certificate rollover: {change}");
        }
    }
}

/// `check`: the new configuration's server certificate against the one in service.
pub fn check_lines(config: &Config, tls: &TlsSetup) -> (String, Vec<String>) {
    let Some(new) = &tls.served else {
        return (String::new(), Vec::new());
    };
    let Some(path) = served_path(config) else {
        return (
            "  rollover: not compared (state paths are relative to the working directory: set \
             $STATE_DIRECTORY or an absolute server.state_file to record the certificate in \
             service)\n"
                .to_string(),
            Vec::new(),
        );
    };
    match ServedIdentity::of_file(&path) {
        None => (
            format!(
                "  rollover: no certificate in service recorded ({}): nothing to compare with\n",
                path.display()
            ),
            Vec::new(),
        ),
        Some(old) => {
            let warnings: Vec<String> = changes(&old, new)
                .into_iter()
                .map(|w| format!("server certificate rollover: {w}"))
                .collect();
            let verdict = if warnings.is_empty() {
                "same issuing CA, subject and DNS names as the certificate in service"
            } else {
                "DIFFERS from the certificate in service (see the warnings)"
            };
            (
                format!("  rollover: {verdict} ({})\n", path.display()),
                warnings,
            )
        }
    }
}
