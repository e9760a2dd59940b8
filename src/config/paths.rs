//! Where the server's own files go, decided once at load so that `serve`, a reload, `check`,
//! `sessions` and `disconnect` all name the same files.
//!
//! The rule: every relative path the server *writes* — `server.state_file`,
//! `coa.control_socket`, `accounting.file`, `accounting.queue_dir`, `audit.file` — is taken
//! relative to the state directory:
//! - `$STATE_DIRECTORY` when it is set (systemd's `StateDirectory=`; it may list several
//!   directories separated by ':', the first is ours). Under systemd the unit has no
//!   `WorkingDirectory` and `ProtectSystem=strict` leaves only that directory writable.
//! - otherwise, with the embedded default configuration, `testbed/state/` (git-ignored), so that
//!   `cargo run` does not litter the repository root;
//! - otherwise the working directory, as before.
//!
//! Files the server only reads (certificates, keys, CAs, CRLs, the dictionary, the ticket key
//! file) stay relative to the working directory: they are the operator's, not the server's state.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::Config;

/// The state directory of the embedded default configuration (relative to the working
/// directory, like its test PKI under `testbed/pki/`).
pub const EMBEDDED_STATE_DIR: &str = "testbed/state";

/// The directory relative state paths are resolved against: the first entry of
/// `$STATE_DIRECTORY` (`state_env`), else [`EMBEDDED_STATE_DIR`] for the embedded default, else
/// none (the working directory).
pub fn state_directory(state_env: Option<&OsStr>, embedded: bool) -> Option<PathBuf> {
    let from_env = state_env
        .map(|v| {
            v.to_string_lossy()
                .split(':')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .filter(|first| !first.is_empty());
    match from_env {
        Some(dir) => Some(PathBuf::from(dir)),
        None if embedded => Some(PathBuf::from(EMBEDDED_STATE_DIR)),
        None => None,
    }
}

fn under(base: &Path, path: &mut PathBuf) {
    if path.is_relative() {
        *path = base.join(&*path);
    }
}

impl Config {
    /// Applies the module's rule: each relative path the server writes becomes `base`-relative,
    /// and `base` is remembered as [`Config::state_directory`]. Idempotent for an absolute
    /// `base`.
    pub fn resolve_state_paths(&mut self, base: &Path) {
        under(base, &mut self.server.state_file);
        for p in [
            self.coa.control_socket.as_mut(),
            self.accounting.file.as_mut(),
            self.accounting.queue_dir.as_mut(),
            self.audit.file.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            under(base, p);
        }
        self.state_directory = Some(base.to_path_buf());
    }

    /// Creates the state directory (when relative paths were resolved against one) so that the
    /// first start of the embedded default, or a `$STATE_DIRECTORY` not made by systemd, works.
    pub fn create_state_directory(&self) -> std::io::Result<()> {
        match &self.state_directory {
            Some(dir) => std::fs::create_dir_all(dir)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_entry_of_state_directory_wins_over_the_embedded_directory() {
        let env = |s: &str| Some(OsStr::new(s).to_os_string());
        assert_eq!(
            state_directory(env("/var/lib/a:/var/lib/b").as_deref(), true),
            Some(PathBuf::from("/var/lib/a"))
        );
        assert_eq!(
            state_directory(env("/var/lib/a").as_deref(), false),
            Some(PathBuf::from("/var/lib/a"))
        );
        // Set but empty counts as unset.
        assert_eq!(
            state_directory(env("").as_deref(), true),
            Some(PathBuf::from(EMBEDDED_STATE_DIR))
        );
        assert_eq!(state_directory(None, false), None);
    }

    #[test]
    fn relative_written_paths_move_and_absolute_and_read_paths_stay() {
        let mut c = super::super::load_for_test(
            "[coa]\ncontrol_socket = \"run/c.sock\"\n\
             [accounting]\nfile = \"/var/log/acct.jsonl\"\nqueue_dir = \"q\"\n\
             [audit]\nfile = \"audit.jsonl\"\n\
             [tls]\ncertificate_file = \"pki/server.pem\"\n",
        )
        .unwrap();
        c.resolve_state_paths(Path::new("/var/lib/certradius"));
        assert_eq!(
            c.server.state_file,
            Path::new("/var/lib/certradius/certradius.state")
        );
        assert_eq!(
            c.coa.control_socket.as_deref(),
            Some(Path::new("/var/lib/certradius/run/c.sock"))
        );
        assert_eq!(
            c.accounting.file.as_deref(),
            Some(Path::new("/var/log/acct.jsonl"))
        );
        assert_eq!(
            c.accounting.queue_dir.as_deref(),
            Some(Path::new("/var/lib/certradius/q"))
        );
        assert_eq!(
            c.audit.file.as_deref(),
            Some(Path::new("/var/lib/certradius/audit.jsonl"))
        );
        // Inputs are the operator's files, not state.
        assert_eq!(c.tls.certificate_file, Path::new("pki/server.pem"));
        assert_eq!(
            c.state_directory.as_deref(),
            Some(Path::new("/var/lib/certradius"))
        );
        // Resolving again (as a second load would) changes nothing.
        let once = c.clone();
        c.resolve_state_paths(Path::new("/var/lib/certradius"));
        assert_eq!(c, once);
    }
}
