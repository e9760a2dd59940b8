//! The shell's side of MAC Authentication Bypass: reading `[mab] allow_file` (bounded) for the
//! snapshot a reload builds, the file the reload task watches, and `certradius mab-test MAC`.
//! Parsing and the verdict are `crate::mab` (sans IO).

use std::fmt::Write;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::authz::{Method, Policy, RequestInfo};
use crate::config::MabConfig;
use crate::mab::{self, AllowList, Listed, MAX_FILE_BYTES, Mac};
use crate::radius::dictionary::Dictionary;

/// Reads and parses an allow file. Errors name the file (and the line): `mab.allow_file
/// /etc/certradius/mab.csv: line 7: ...`. A file over [`MAX_FILE_BYTES`] is refused without
/// reading more than the limit.
pub fn read_allow_file(path: &Path) -> Result<AllowList, String> {
    let at = |e: &dyn std::fmt::Display| format!("mab.allow_file {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| at(&e))?;
    let mut text = Vec::new();
    // One octet past the limit tells "at the limit" from "over it".
    let limit = u64::try_from(MAX_FILE_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(limit)
        .read_to_end(&mut text)
        .map_err(|e| at(&e))?;
    if text.len() > MAX_FILE_BYTES {
        let size = std::fs::metadata(path).map_or(text.len() as u64, |m| m.len());
        return Err(at(&format!(
            "{size} octets, more than the limit of {MAX_FILE_BYTES} (16 MiB); split the list or list vendor prefixes (aa:bb:cc:*)"
        )));
    }
    AllowList::parse(&text).map_err(|e| at(&e))
}

/// The allow list of a configuration: None when `[mab]` is off.
pub fn load(config: &MabConfig) -> Result<Option<Arc<AllowList>>, String> {
    if !config.enabled {
        return Ok(None);
    }
    read_allow_file(&config.allow_file).map(|l| Some(Arc::new(l)))
}

/// The files whose change reloads the configuration.
pub fn watched_files(config: &MabConfig) -> Vec<PathBuf> {
    if config.enabled {
        vec![config.allow_file.clone()]
    } else {
        Vec::new()
    }
}

/// What `certradius mab-test MAC` prints, and whether the MAC would be accepted. `nas`: the
/// address the request would come from (rules may match `nas_address`). The password check
/// is left out: a switch sends the MAC itself, which passes it.
pub fn test_report(
    list: Option<&AllowList>,
    policy: &dyn Policy,
    dictionary: &Dictionary,
    mac_text: &str,
    nas: Option<IpAddr>,
) -> Result<(bool, String), String> {
    let mac = Mac::parse(mac_text.as_bytes())
        .map_err(|e| format!("{mac_text:?} is not a MAC address: {e}"))?;
    let mut out = String::new();
    let Some(list) = list else {
        let _ = writeln!(
            out,
            "{mac}: reject mab_disabled ([mab] enabled = false: every MAB request is refused)"
        );
        return Ok((false, out));
    };
    let Some(listed) = list.lookup(mac) else {
        let _ = writeln!(
            out,
            "{mac}: reject mab_unknown_device (neither the MAC nor its vendor prefix {} is in the allow file)",
            mac.oui()
        );
        return Ok((false, out));
    };
    let device = listed.device();
    let how = match listed {
        Listed::Mac(_) => "the MAC".to_string(),
        Listed::Oui(oui, _) => format!("vendor prefix {oui}"),
    };
    let vlan = device
        .vlan
        .map_or("no VLAN".to_string(), |v| format!("VLAN {v}"));
    let (user_name, calling) = (mac.bare(), mac.ietf());
    let request = RequestInfo {
        method: Method::Mab,
        nas,
        user_name: Some(user_name.as_bytes()),
        calling_station_id: Some(calling.as_bytes()),
        ..RequestInfo::default()
    };
    let _ = writeln!(
        out,
        "{mac}: listed by {how} on line {} ({vlan}{})",
        device.line,
        if device.description.is_empty() {
            String::new()
        } else {
            format!(", {:?}", device.description)
        }
    );
    match mab::authorize(listed, policy, &request) {
        Ok(grant) => {
            let _ = match &grant.rule {
                Some(rule) => writeln!(out, "accept by rule {rule:?} (method = \"mab\")"),
                None => writeln!(
                    out,
                    "accept: no rule with method = \"mab\" matches, the allow file's VLAN applies"
                ),
            };
            for a in &grant.attributes {
                let name = dictionary.name_of(a.vendor, u32::from(a.typ));
                let _ = writeln!(
                    out,
                    "  {name} = {}",
                    dictionary.display_value(&name, &a.value)
                );
            }
            Ok((true, out))
        }
        Err(refusal) => {
            let _ = writeln!(out, "reject {} ({})", refusal.reason, refusal.detail);
            Ok((false, out))
        }
    }
}

/// `certradius mab-test MAC [--nas ADDR]`: loads the configuration (as `check` does) and prints
/// what a MAB request for the MAC would get. Exit code 0: accepted, 1: refused, 2: the
/// configuration (or the MAC) is wrong.
pub fn command(config: Option<&Path>, mac: &str, nas: Option<IpAddr>) -> ExitCode {
    let loaded = match super::reload::load(config, None) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("certradius: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let report = test_report(
        loaded.mab.as_deref(),
        &loaded.policy,
        &loaded.dictionary,
        mac,
        nas,
    );
    match report {
        Ok((accepted, text)) => {
            print!("{text}");
            if accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("certradius: mab-test: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::rules::RulePolicy;
    use crate::config::{AuthorizeConfig, IdentityConfig};

    #[test]
    fn read_names_the_file_and_line_and_bounds_the_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mab.csv");
        std::fs::write(&path, "00:11:22:33:44:55,10\nbad\n").unwrap();
        let e = read_allow_file(&path).unwrap_err();
        assert!(e.starts_with("mab.allow_file "), "{e}");
        assert!(
            e.contains("mab.csv: line 2: \"bad\" is not a MAC address"),
            "{e}"
        );
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(100 * 1024 * 1024).unwrap();
        let e = read_allow_file(&path).unwrap_err();
        assert!(e.contains("104857600 octets, more than the limit"), "{e}");
        let e = read_allow_file(&dir.path().join("missing.csv")).unwrap_err();
        assert!(e.contains("missing.csv"), "{e}");
        let off = MabConfig::default();
        assert_eq!(load(&off).unwrap(), None);
        assert!(watched_files(&off).is_empty());
    }

    #[test]
    fn mab_test_says_what_a_request_would_get() {
        let dict = Dictionary::embedded();
        let policy = RulePolicy::build(
            &IdentityConfig::default(),
            &AuthorizeConfig::default(),
            &dict,
        )
        .unwrap();
        let list = AllowList::parse(b"00:11:22:33:44:55,100,printer\naa:bb:cc:*\n").unwrap();
        let run =
            |l: Option<&AllowList>, mac: &str| test_report(l, &policy, &dict, mac, None).unwrap();
        let (ok, text) = run(Some(&list), "0011.2233.4455");
        assert!(ok, "{text}");
        assert!(text.contains("line 1 (VLAN 100, \"printer\")"), "{text}");
        assert!(text.contains("Tunnel-Private-Group-Id = \"100\""), "{text}");
        assert!(text.contains("Tunnel-Type = VLAN"), "{text}");
        let (ok, text) = run(Some(&list), "aa-bb-cc-00-00-01");
        assert!(ok && text.contains("vendor prefix aa:bb:cc:*"), "{text}");
        let (ok, text) = run(Some(&list), "001122334456");
        assert!(!ok && text.contains("mab_unknown_device"), "{text}");
        let (ok, text) = run(None, "001122334455");
        assert!(!ok && text.contains("mab_disabled"), "{text}");
        assert!(test_report(Some(&list), &policy, &dict, "00:11", None).is_err());
    }
}
