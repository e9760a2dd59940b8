//! MAC lists: `files` module instances (`authorized_macs`, `files`) whose users-file entries
//! have the MAB shape — a MAC as the key, no check items, at most a VLAN (RFC 3580 §3.31
//! Tunnel-Private-Group-Id) in the reply — become the `[mab]` allow file (MAC,VLAN,description).
//! Every other entry is reported.

use std::collections::HashSet;
use std::path::Path;

use super::Aux;
use super::draft::{self, Draft};
use super::raddb_parser::{Loc, Section};
use crate::mab::mac::Mac;

/// One users-file entry: the key line and its reply lines.
struct Entry {
    key: String,
    check: String,
    reply: Vec<(String, String)>,
    loc: Loc,
}

/// Reads a users file (`man 5 users`): an entry starts at column 0 with its key and check
/// items; the indented lines after it are its reply items, separated by commas.
fn entries(file: &Path, text: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let shared: std::sync::Arc<Path> = std::sync::Arc::from(file);
    for (i, raw) in text.lines().enumerate() {
        let line = match raw.find('#') {
            Some(at) if !raw.get(..at).unwrap_or_default().contains('"') => {
                raw.get(..at).unwrap_or_default()
            }
            _ => raw,
        };
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            let mut parts = line.trim().splitn(2, char::is_whitespace);
            out.push(Entry {
                key: parts
                    .next()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string(),
                check: parts.next().unwrap_or_default().trim().to_string(),
                reply: Vec::new(),
                loc: Loc {
                    file: shared.clone(),
                    line: i + 1,
                },
            });
            continue;
        }
        let Some(e) = out.last_mut() else { continue };
        for item in line.split(',') {
            if let Some((k, v)) = item.split_once('=') {
                let k = k.trim().trim_end_matches([':', '+']).trim();
                e.reply
                    .push((k.to_string(), v.trim().trim_matches('"').to_string()));
            }
        }
    }
    out
}

/// The VLAN of an entry of the MAB shape, Ok(None) without one; Err: why it is not MAB.
fn vlan(e: &Entry) -> Result<Option<u16>, String> {
    if !e.check.is_empty() && !e.check.eq_ignore_ascii_case("Auth-Type := Accept") {
        return Err("it has check items".into());
    }
    let mut vlan = None;
    for (k, v) in &e.reply {
        match (k.as_str(), v.as_str()) {
            ("Tunnel-Private-Group-Id" | "Tunnel-Private-Group-ID", v) => match v.parse::<u16>() {
                Ok(n @ 1..=4094) => vlan = Some(n),
                _ => return Err(format!("VLAN {v:?} is not a number 1..=4094")),
            },
            ("Tunnel-Type", "VLAN" | "13") | ("Tunnel-Medium-Type", "IEEE-802" | "6") => {}
            ("Reply-Message" | "Fall-Through", _) => {}
            (k, _) => return Err(format!("reply attribute {k}")),
        }
    }
    Ok(vlan)
}

/// All enabled `files` instances. Returns the instance names carried over (their calls in the
/// sites are then translated).
pub fn translate(modules: &Section, raddb: &Path, aux: &Aux, d: &mut Draft) -> HashSet<String> {
    let mut csv = String::from("# MAC,VLAN,description — imported from FreeRADIUS by certradius\n");
    let mut done = HashSet::new();
    let mut seen: HashSet<[u8; 6]> = HashSet::new();
    let mut first: Option<Loc> = None;
    for m in modules.sections("files") {
        let Some(p) = m.pair("usersfile").or_else(|| m.pair("filename")) else {
            continue;
        };
        let path = Path::new(&p.value);
        let Ok(text) = std::fs::read_to_string(path) else {
            d.untranslated(
                Some(&p.loc),
                format!("files {}: {}", m.instance(), p.value),
                "cannot read the users file",
            );
            continue;
        };
        let mut macs = 0;
        let mut others = 0;
        for e in entries(path, &text) {
            let Ok(mac) = Mac::parse(e.key.as_bytes()) else {
                others += 1;
                d.untranslated(
                    Some(&e.loc),
                    format!("users entry {}", e.key),
                    "not a MAC entry: users-file authorization is not translated",
                );
                continue;
            };
            match vlan(&e) {
                Ok(v) if seen.insert(mac.0) => {
                    macs += 1;
                    let file = e.loc.file.strip_prefix(raddb).unwrap_or(&e.loc.file);
                    csv.push_str(&format!(
                        "{},{},from {}:{}\n",
                        mac.ietf(),
                        v.map(|v| v.to_string()).unwrap_or_default(),
                        file.display(),
                        e.loc.line
                    ));
                    first.get_or_insert(e.loc.clone());
                }
                Ok(_) => d.untranslated(
                    Some(&e.loc),
                    format!("MAC {}", e.key),
                    "listed twice: the first entry is kept",
                ),
                Err(why) => {
                    others += 1;
                    d.untranslated(
                        Some(&e.loc),
                        format!("MAC entry {}", e.key),
                        format!("{why}: not the MAB shape (a MAC and a VLAN)"),
                    );
                }
            }
        }
        if macs > 0 && others == 0 {
            done.insert(m.instance().to_string());
        }
    }
    if let Some(loc) = first {
        d.files.push((aux.mab.clone(), csv));
        d.mab.set("enabled", "true".into(), &[&loc], None);
        d.mab.set(
            "allow_file",
            draft::path(&aux.mab),
            &[&loc],
            Some("the MAC entries, written to this file"),
        );
        d.note(
            Some(&loc),
            "MAC entries",
            format!("written to {}", aux.mab.display()),
        );
    }
    done
}
