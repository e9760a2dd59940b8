//! The `sql` module with the PostgreSQL driver → `[accounting] database_url` (radacct rows,
//! FreeRADIUS's column names). Other drivers are reported.

use std::collections::HashSet;

use super::draft::{self, Draft};
use super::raddb_parser::Section;

/// Percent-encodes a URL user, password or database name (RFC 3986 §2.1: unreserved kept).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Returns the instance names carried over (their accounting calls are then translated).
pub fn translate(modules: &Section, d: &mut Draft) -> HashSet<String> {
    let mut done = HashSet::new();
    for m in modules.sections("sql") {
        let driver = m
            .pair("driver")
            .map(|p| p.value.as_str())
            .unwrap_or_default();
        let dialect = m
            .pair("dialect")
            .map(|p| p.value.as_str())
            .unwrap_or_default();
        if !(driver.ends_with("postgresql") || (driver.is_empty() && dialect == "postgresql")) {
            d.untranslated(
                Some(&m.loc),
                format!("sql {} (driver {driver})", m.instance()),
                "only PostgreSQL accounting is carried over",
            );
            continue;
        }
        if d.accounting.has("database_url") {
            d.untranslated(
                Some(&m.loc),
                format!("sql {}", m.instance()),
                "a second PostgreSQL module: the first is used",
            );
            continue;
        }
        let get = |k: &str| m.pair(k);
        let host = get("server").map_or("localhost", |p| p.value.as_str());
        let mut url = String::from("postgresql://");
        let mut locs = vec![&m.loc];
        if let Some(login) = get("login") {
            url.push_str(&encode(&login.value));
            locs.push(&login.loc);
            if let Some(pw) = get("password").filter(|p| !p.value.is_empty()) {
                url.push(':');
                url.push_str(&encode(&pw.value));
                locs.push(&pw.loc);
                d.note(
                    Some(&pw.loc),
                    "sql password",
                    "included in accounting.database_url (the output file is mode 0600)",
                );
            }
            url.push('@');
        }
        url.push_str(host);
        if let Some(port) = get("port").filter(|p| !p.value.is_empty() && p.value != "0") {
            url.push(':');
            url.push_str(&port.value);
            locs.push(&port.loc);
        }
        url.push('/');
        url.push_str(&encode(
            get("radius_db").map_or("radius", |p| p.value.as_str()),
        ));
        d.accounting.set(
            "database_url",
            draft::string(&url),
            &locs,
            Some("server, login, password, port and radius_db"),
        );
        d.note(
            Some(&m.loc),
            format!("sql {}", m.instance()),
            "accounting goes to the radacct table with FreeRADIUS's columns; the sql queries themselves are not read",
        );
        done.insert(m.instance().to_string());
    }
    done
}
