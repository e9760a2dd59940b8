//! The configuration being written: TOML lines, each with the FreeRADIUS file and line it came
//! from, and the findings (what was not translated, and notes worth reading).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::raddb_parser::Loc;

/// One `key = value` of the output, with its sources.
pub struct Line {
    pub key: String,
    /// TOML text of the value (already quoted).
    pub value: String,
    pub from: Vec<Loc>,
    /// Said in the comment after the sources ("FreeRADIUS's default", "hours → seconds").
    pub why: Option<String>,
}

/// A TOML table: `[name]` or, for clients, one `[[client]]`.
#[derive(Default)]
pub struct Table {
    pub lines: Vec<Line>,
}

impl Table {
    pub fn set(&mut self, key: &str, value: String, from: &[&Loc], why: Option<&str>) {
        self.lines.retain(|l| l.key != key);
        self.lines.push(Line {
            key: key.to_string(),
            value,
            from: from.iter().fold(Vec::new(), |mut v: Vec<Loc>, l| {
                if !v.contains(l) {
                    v.push((*l).clone());
                }
                v
            }),
            why: why.map(str::to_string),
        });
    }

    pub fn has(&self, key: &str) -> bool {
        self.lines.iter().any(|l| l.key == key)
    }
}

/// Something said about the import: `file:line: what, why`.
pub struct Finding {
    pub loc: Option<Loc>,
    pub what: String,
    pub why: String,
}

/// Everything the translation produced.
#[derive(Default)]
pub struct Draft {
    pub server: Table,
    pub clients: Vec<Table>,
    pub eap: Table,
    pub tls: Table,
    pub identity: Table,
    pub ocsp: Table,
    pub accounting: Table,
    pub tcp: Table,
    pub radsec: Table,
    pub mab: Table,
    /// Not carried over: exit code 1.
    pub untranslated: Vec<Finding>,
    /// Carried over, but worth knowing (a value chosen, a password written to a file).
    pub notes: Vec<Finding>,
    /// Files to write beside the output, mode 0600: (path, contents). Secrets live here.
    pub files: Vec<(PathBuf, String)>,
    /// Commented-out `[[authorize.rule]]` drafts for simple unlang VLAN assignments.
    pub rule_drafts: Vec<String>,
    /// Why no loadable configuration can be made (exit code 2).
    pub fatal: Vec<String>,
}

impl Draft {
    pub fn untranslated(
        &mut self,
        loc: Option<&Loc>,
        what: impl Into<String>,
        why: impl Into<String>,
    ) {
        self.untranslated.push(Finding {
            loc: loc.cloned(),
            what: what.into(),
            why: why.into(),
        });
    }

    pub fn note(&mut self, loc: Option<&Loc>, what: impl Into<String>, why: impl Into<String>) {
        self.notes.push(Finding {
            loc: loc.cloned(),
            what: what.into(),
            why: why.into(),
        });
    }
}

/// A TOML basic string.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn path(p: &Path) -> String {
    string(&p.to_string_lossy())
}

pub fn strings<S: AsRef<str>>(items: &[S]) -> String {
    let v: Vec<String> = items.iter().map(|s| string(s.as_ref())).collect();
    format!("[{}]", v.join(", "))
}

/// Writes a location relative to the FreeRADIUS directory when it is inside it.
pub fn show(loc: &Loc, raddb: &Path) -> String {
    let file = loc.file.strip_prefix(raddb).unwrap_or(&loc.file);
    format!("{}:{}", file.display(), loc.line)
}

/// `file:line: what, why`; a finding about the output as a whole has no location.
fn finding_text(f: &Finding, raddb: &Path) -> String {
    match &f.loc {
        Some(l) => format!("{}: {}, {}", show(l, raddb), f.what, f.why),
        None => format!("{}, {}", f.what, f.why),
    }
}

impl Draft {
    /// The findings as stderr lines (`file:line: what, why`), untranslated first.
    pub fn stderr_lines(&self, raddb: &Path) -> Vec<String> {
        let mut out: Vec<String> = self
            .untranslated
            .iter()
            .map(|f| finding_text(f, raddb))
            .collect();
        out.extend(
            self.notes
                .iter()
                .map(|f| format!("note: {}", finding_text(f, raddb))),
        );
        out
    }

    /// The whole TOML text: a header with every finding, then the tables.
    pub fn render(&self, raddb: &Path) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# certradius configuration imported from the FreeRADIUS configuration in {}\n\
             # by `certradius import freeradius`. Each value names the FreeRADIUS file and line it\n\
             # came from; knobs not written keep certradius's defaults (config/example.toml).",
            raddb.display()
        );
        let _ = writeln!(o, "#\n# NOT TRANSLATED ({}):", self.untranslated.len());
        for f in &self.untranslated {
            let _ = writeln!(o, "#   {}", finding_text(f, raddb).replace('\n', " "));
        }
        if !self.notes.is_empty() {
            let _ = writeln!(o, "#\n# NOTES:");
            for f in &self.notes {
                let _ = writeln!(o, "#   {}", finding_text(f, raddb).replace('\n', " "));
            }
        }
        let tables: [(&str, &Table); 5] = [
            ("server", &self.server),
            ("eap", &self.eap),
            ("tls", &self.tls),
            ("identity", &self.identity),
            ("ocsp", &self.ocsp),
        ];
        for (name, t) in tables {
            table(&mut o, &format!("[{name}]"), t, raddb);
        }
        for c in &self.clients {
            table(&mut o, "[[client]]", c, raddb);
        }
        for (name, t) in [
            ("accounting", &self.accounting),
            ("tcp", &self.tcp),
            ("radsec", &self.radsec),
            ("mab", &self.mab),
        ] {
            table(&mut o, &format!("[{name}]"), t, raddb);
        }
        if !self.rule_drafts.is_empty() {
            let _ = writeln!(
                o,
                "\n# Rule drafts for unlang VLAN assignments (reported above as not translated). Once\n\
                 # any rule is active, certificates no rule matches are rejected: add [authorize]\n\
                 # default = \"accept\" to keep accepting them as FreeRADIUS did."
            );
        }
        for r in &self.rule_drafts {
            let _ = write!(o, "\n{r}");
        }
        o
    }
}

fn table(o: &mut String, header: &str, t: &Table, raddb: &Path) {
    if t.lines.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n{header}");
    for l in &t.lines {
        let from: Vec<String> = l.from.iter().map(|f| show(f, raddb)).collect();
        let mut comment = if from.is_empty() {
            "set by the importer".to_string()
        } else {
            format!("from {}", from.join(", "))
        };
        if let Some(why) = &l.why {
            comment.push_str(": ");
            comment.push_str(why);
        }
        let _ = writeln!(
            o,
            "{} = {}  # {}",
            l.key,
            l.value,
            comment.replace('\n', " ")
        );
    }
}
