//! `[mab]`: MAC Authentication Bypass for wired devices that cannot do 802.1X (the allow file's
//! format is `mab::list`).

use std::path::PathBuf;

use serde::Deserialize;

/// `[mab]`: off by default; when on, a MAB request is accepted only for a device listed in
/// `allow_file` (by MAC or vendor prefix).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MabConfig {
    pub enabled: bool,
    /// One device per line, `MAC[,VLAN[,description]]`; re-read on SIGHUP and within 5 s of a
    /// change on disk. Relative: to the working directory (the operator's file, not state).
    pub allow_file: PathBuf,
}

impl Default for MabConfig {
    fn default() -> Self {
        MabConfig {
            enabled: false,
            allow_file: PathBuf::from("/etc/certradius/mab.csv"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::load_for_test as load;

    #[test]
    fn off_by_default_knobs_and_unknown_keys() {
        let c = load("").unwrap();
        assert!(!c.mab.enabled);
        assert_eq!(
            c.mab.allow_file,
            std::path::Path::new("/etc/certradius/mab.csv")
        );
        let c = load("[mab]\nenabled = true\nallow_file = \"mab.csv\"\n").unwrap();
        assert!(c.mab.enabled);
        assert_eq!(c.mab.allow_file, std::path::Path::new("mab.csv"));
        let err = load("[mab]\nallow = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("allow"), "{err}");
        let err = load("[mab]\nenabled = true\nallow_file = \"\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mab.allow_file"), "{err}");
    }
}
