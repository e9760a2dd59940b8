//! The translation in order: clients, the eap module, MAC lists, SQL accounting, then the
//! virtual servers (whose module calls are judged against what the modules carried over), and
//! proxying (reported: certradius does not proxy).

use std::collections::HashSet;
use std::path::Path;

use super::Aux;
use super::draft::{self, Draft};
use super::raddb_parser::{Item, Section};
use super::{clients, eap, mab, sites, sql};

/// The whole FreeRADIUS tree → a draft configuration and its findings.
pub fn translate(root: &Section, raddb: &Path, aux: &Aux) -> Draft {
    let mut d = Draft::default();
    // Every `modules { }` section, as one (radiusd.conf normally has one).
    let modules = &Section {
        name: "modules".into(),
        arg: None,
        optional: false,
        items: root
            .sections("modules")
            .flat_map(|m| m.items.iter().cloned())
            .collect(),
        loc: root.loc.clone(),
    };
    clients::translate(root, &mut d);
    eap::translate(modules, aux, &mut d);
    let mut translated: HashSet<String> = mab::translate(modules, raddb, aux, &mut d);
    translated.extend(sql::translate(modules, &mut d));
    translated.insert("eap".into());
    let inner = inner_tunnels(modules);
    let policies = policy_names(root);
    let listens = sites::Sites {
        translated: &translated,
        policies: &policies,
        inner: &inner,
        raddb,
    }
    .translate(root, aux, &mut d);
    let accounting = listens.write(&mut d);
    if !d.server.has("listen") {
        d.server.set(
            "listen",
            draft::strings(&["0.0.0.0:1812"]),
            &[],
            Some("no authentication listen section was found: the standard port"),
        );
        d.note(
            None,
            "server.listen",
            "no listen section of type auth: set to 0.0.0.0:1812",
        );
    }
    if accounting && !d.accounting.has("database_url") {
        d.accounting.set(
            "file",
            draft::string("accounting.jsonl"),
            &[],
            Some("relative to $STATE_DIRECTORY (systemd) or the working directory"),
        );
        d.note(
            None,
            "accounting.file = \"accounting.jsonl\"",
            "chosen by the importer: FreeRADIUS's detail files have no equivalent, records go to JSON lines",
        );
    }
    proxying(root, &mut d);
    d
}

/// Virtual servers named by PEAP/TTLS `virtual_server` (and Debian's `inner-tunnel`).
fn inner_tunnels(modules: &Section) -> HashSet<String> {
    let mut out: HashSet<String> = HashSet::from(["inner-tunnel".to_string()]);
    for eap in modules.sections("eap") {
        for m in ["peap", "ttls", "fast"] {
            if let Some(p) = eap.section(m).and_then(|s| s.pair("virtual_server")) {
                out.insert(p.value.clone());
            }
        }
    }
    out
}

/// Names defined in `policy { }` (policy.d).
fn policy_names(root: &Section) -> HashSet<String> {
    root.sections("policy")
        .flat_map(|p| p.items.iter())
        .filter_map(|i| match i {
            Item::Section(s) => Some(s.name.clone()),
            _ => None,
        })
        .collect()
}

/// `home_server`, `home_server_pool` and `realm` sections that send requests elsewhere.
fn proxying(root: &Section, d: &mut Draft) {
    for item in &root.items {
        let Item::Section(s) = item else { continue };
        match s.name.as_str() {
            "home_server" | "home_server_pool" => d.untranslated(
                Some(&s.loc),
                format!("{} {}", s.name, s.instance()),
                "certradius does not proxy",
            ),
            "realm" if !s.items.is_empty() => d.untranslated(
                Some(&s.loc),
                format!("realm {}", s.instance()),
                "certradius does not proxy: requests for this realm are served locally",
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "tests/translate.rs"]
mod tests;
