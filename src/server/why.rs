//! `certradius why KEY`: the last attempts of one supplicant (a MAC in any spelling, or an
//! identity), asked of the running server over its control socket (`control.rs`, request line
//! `why KEY`) and answered from `core::attempts`, the bounded in-memory record every finished
//! authentication feeds.
//!
//! The socket answers one JSON object (`WhyAnswer`): `--json` prints it as it came, for
//! scripts; without it the command prints a table.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use crate::core::attempts::{AttemptView, Attempts, Key, WhyAnswer};
use crate::core::events::{AuthEvent, AuthObserver};

/// Feeds the attempts record with the time the shell reads.
pub struct WhyObserver(pub Arc<Attempts>);

impl AuthObserver for WhyObserver {
    fn finished(&self, event: &AuthEvent<'_>) {
        let secs = super::wall_clock()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.0.record(event, secs);
    }
}

/// The control socket's answer to `why KEY`: one JSON line.
pub fn answer(attempts: &Attempts, key: &str) -> String {
    let key = key.trim();
    if key.is_empty() {
        return "error: expected \"why MAC\" or \"why IDENTITY\"\n".into();
    }
    let answer = attempts.why(&Key::parse(key));
    match serde_json::to_string(&answer) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => format!("error: {e}\n"),
    }
}

/// The table `certradius why` prints.
pub fn render(key: &str, answer: &WhyAnswer) -> String {
    // Identities and details come from supplicants: a control character must not reach the
    // operator's terminal as one.
    let mut out = format!(
        "supplicant {}: mac {}, identity {}\n",
        printable(key),
        printable(answer.mac.as_deref().unwrap_or("-")),
        printable(answer.identity.as_deref().unwrap_or("-")),
    );
    if answer.attempts.is_empty() {
        out.push_str("no attempts recorded since the server started (or evicted since)\n");
        return out;
    }
    let header = [
        "time", "nas", "method", "outcome", "reason", "tls", "rtt", "rule", "detail",
    ];
    let rows: Vec<[String; 9]> = answer
        .attempts
        .iter()
        .map(|a| row(a).map(|cell| printable(&cell)))
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.zip(widths.iter()).enumerate() {
            if i + 1 == widths.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for r in &rows {
        line(&mut r.iter().map(String::as_str));
    }
    out
}

/// The text with every control character written as `\u{..}`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn row(a: &AttemptView) -> [String; 9] {
    // Seconds are enough to tell attempts apart; the JSON keeps the exact form.
    let time = a.time.get(..19).unwrap_or(&a.time).replace('T', " ");
    [
        time,
        format!("{} ({})", a.nas, a.nas_address),
        a.method.clone(),
        a.outcome.clone(),
        a.reason.clone().unwrap_or_else(|| "-".into()),
        a.tls_version.clone(),
        a.round_trips.to_string(),
        a.rule.clone().unwrap_or_else(|| "-".into()),
        if a.detail.is_empty() {
            "-".into()
        } else {
            a.detail.clone()
        },
    ]
}

/// `certradius why KEY [--json]`: exit 0 with attempts, 1 when none or the server cannot be
/// asked, 2 for a configuration error.
pub fn command(config: Option<&Path>, key: &str, json: bool) -> ExitCode {
    let config = match crate::config::Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("certradius: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let path = super::control::path(&config);
    // One line on the socket: a key with a line break would be two requests.
    let key = key.replace(['\n', '\r'], " ");
    let reply = match super::control::ask(&path, &format!("why {key}")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "certradius: control socket {}: {e} (is the server running?)",
                path.display()
            );
            return ExitCode::from(1);
        }
    };
    if reply.starts_with("error:") {
        eprint!("certradius: {reply}");
        return ExitCode::from(1);
    }
    let answer: WhyAnswer = match serde_json::from_str(&reply) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("certradius: unexpected answer from the server: {e}");
            return ExitCode::from(1);
        }
    };
    if json {
        print!("{reply}");
    } else {
        print!("{}", render(&key, &answer));
    }
    if answer.attempts.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(outcome: &str, reason: Option<&str>) -> AttemptView {
        AttemptView {
            time: "2026-12-05T06:20:00.000Z".into(),
            unix_time: 1_796_451_600,
            nas: "ap-lobby".into(),
            nas_address: "10.0.0.7".into(),
            method: "eap-tls".into(),
            outcome: outcome.into(),
            reason: reason.map(Into::into),
            detail: reason.map_or(String::new(), |_| "certificate expired".into()),
            tls_version: "TLSv1.3".into(),
            round_trips: 5,
            rule: None,
        }
    }

    #[test]
    fn a_table_with_one_line_per_attempt() {
        let answer = WhyAnswer {
            mac: Some("02-00-00-00-00-01".into()),
            identity: Some("anne".into()),
            attempts: vec![
                attempt("reject", Some("cert_expired")),
                attempt("accept", None),
            ],
        };
        let text = render("02:00:00:00:00:01", &answer);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "supplicant 02:00:00:00:00:01: mac 02-00-00-00-00-01, identity anne"
        );
        assert!(lines[1].starts_with("time "), "{text}");
        assert!(
            lines[2].starts_with("2026-12-05 06:20:00  ap-lobby (10.0.0.7)  eap-tls  reject"),
            "{text}"
        );
        assert!(lines[2].ends_with("certificate expired"), "{text}");
        assert!(lines[3].contains("accept"), "{text}");
        // The JSON round-trips into the same answer.
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(serde_json::from_str::<WhyAnswer>(&json).unwrap(), answer);
    }

    #[test]
    fn control_characters_from_a_supplicant_are_escaped_in_the_table() {
        let answer = WhyAnswer {
            mac: None,
            identity: Some("evil\u{1b}[2Jname".into()),
            attempts: vec![attempt("reject", Some("cert_untrusted"))],
        };
        let text = render("evil", &answer);
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("evil\\u{1b}[2Jname"), "{text}");
    }

    #[test]
    fn nothing_recorded_says_so() {
        let text = render("bob", &WhyAnswer::default());
        assert!(text.contains("no attempts recorded"), "{text}");
    }
}
