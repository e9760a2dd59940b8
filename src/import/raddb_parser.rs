//! The FreeRADIUS 3.x configuration grammar (`man radiusd.conf`, src/main/conffile.c): sections
//! `name [arg] { ... }`, `name = value` pairs, bare statements (module calls such as `eap` or
//! `-sql`, unlang keywords), `$INCLUDE` / `$-INCLUDE` of files and directories relative to the
//! including file (symlinks followed, include loops refused naming the file), and `${var}`,
//! `${section.var}`, `${.var}`, `${..var}`, `${.:name}`, `${.:instance}` expanded while reading,
//! as FreeRADIUS does, so a variable may refer to variables defined before it.
//!
//! Every item keeps the file and line it came from; every error names them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::raddb_lexer::{Kind, LexError, Lexer, Quote, Token};

/// Where an item was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    pub file: Arc<Path>,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug, Clone)]
pub struct Pair {
    pub name: String,
    pub op: String,
    /// The value with escapes resolved and `${...}` expanded.
    pub value: String,
    pub quote: Quote,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    /// What stands between the name and `{`: an instance name (`tls-config tls-common`), a
    /// client name, or an unlang condition, raw.
    pub arg: Option<String>,
    /// Written with a leading `-` (an optional module).
    pub optional: bool,
    pub items: Vec<Item>,
    pub loc: Loc,
}

/// A bare statement: a module call (`eap`, `-sql`), a return code (`ok`), an unlang keyword,
/// or an attribute name listed in a section (`store { Tunnel-Private-Group-Id }`).
#[derive(Debug, Clone)]
pub struct Word {
    pub name: String,
    pub optional: bool,
    pub rest: String,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub enum Item {
    Pair(Pair),
    Section(Section),
    Word(Word),
}

impl Section {
    /// The last pair called `name` directly in this section (FreeRADIUS: a later one wins).
    pub fn pair(&self, name: &str) -> Option<&Pair> {
        self.items.iter().rev().find_map(|i| match i {
            Item::Pair(p) if p.name == name => Some(p),
            _ => None,
        })
    }

    /// Subsections called `name`, in order.
    pub fn sections<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.items.iter().filter_map(move |i| match i {
            Item::Section(s) if s.name == name => Some(s),
            _ => None,
        })
    }

    pub fn section(&self, name: &str) -> Option<&Section> {
        self.items.iter().find_map(|i| match i {
            Item::Section(s) if s.name == name => Some(s),
            _ => None,
        })
    }

    /// The instance name: the argument, else the name (`${.:instance}`).
    pub fn instance(&self) -> &str {
        self.arg.as_deref().unwrap_or(&self.name)
    }
}

/// A parse error naming the file and line.
#[derive(Debug, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct ParseError {
    pub loc: Loc,
    pub message: String,
}

impl Parser {
    /// A parser whose only open section is the (nameless) root, located at `loc`.
    fn with_root(loc: &Loc) -> Parser {
        Parser {
            open: vec![Section {
                name: String::new(),
                arg: None,
                optional: false,
                items: Vec::new(),
                loc: loc.clone(),
            }],
            reading: Vec::new(),
        }
    }
}

/// Reads `file` (normally `radiusd.conf`) and everything it includes into one root section.
pub fn parse_file(file: &Path) -> Result<Section, ParseError> {
    let root_loc = Loc {
        file: Arc::from(file),
        line: 0,
    };
    let mut p = Parser::with_root(&root_loc);
    p.include(file, &root_loc, false)?;
    let mut open = p.open;
    open.pop().ok_or_else(|| ParseError {
        loc: root_loc,
        message: "internal: no root section".into(),
    })
}

/// Reads one text (for tests and for files read on their own), relative includes taken from
/// the directory of `name`.
#[cfg(test)]
pub fn parse_text(name: &Path, text: &str) -> Result<Section, ParseError> {
    let loc = Loc {
        file: Arc::from(name),
        line: 0,
    };
    let mut p = Parser::with_root(&loc);
    p.read(Arc::from(name), text.as_bytes())?;
    p.open.pop().ok_or_else(|| ParseError {
        loc,
        message: "internal: no root section".into(),
    })
}

struct Parser {
    /// The sections being read, the root first.
    open: Vec<Section>,
    /// Files being read (canonical), to refuse include loops.
    reading: Vec<PathBuf>,
}

/// File names FreeRADIUS reads from an included directory: no dot files, no editor backups,
/// only letters, digits, `-`, `_` and `.`.
fn includable(name: &str) -> bool {
    !name.starts_with('.')
        && !name.ends_with('~')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Parser {
    fn error(loc: &Loc, message: impl Into<String>) -> ParseError {
        ParseError {
            loc: loc.clone(),
            message: message.into(),
        }
    }

    /// `$INCLUDE path` (`optional`: `$-INCLUDE`): a file, or every includable file of a
    /// directory in name order. Symlinks are followed (`mods-enabled/eap -> ../mods-available/eap`).
    fn include(&mut self, path: &Path, at: &Loc, optional: bool) -> Result<(), ParseError> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(_) if optional => return Ok(()),
            Err(e) => {
                return Err(Self::error(
                    at,
                    format!("cannot read {}: {e}", path.display()),
                ));
            }
        };
        if meta.is_dir() {
            let mut names: Vec<String> = std::fs::read_dir(path)
                .map_err(|e| Self::error(at, format!("cannot read {}: {e}", path.display())))?
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| includable(n))
                .collect();
            names.sort();
            for name in names {
                let p = path.join(&name);
                if std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
                    self.include(&p, at, false)?;
                }
            }
            return Ok(());
        }
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if self.reading.contains(&canonical) {
            return Err(Self::error(
                at,
                format!(
                    "include loop: {} is already being read (it includes itself)",
                    path.display()
                ),
            ));
        }
        let text = std::fs::read(path)
            .map_err(|e| Self::error(at, format!("cannot read {}: {e}", path.display())))?;
        self.reading.push(canonical);
        let result = self.read(Arc::from(path), &text);
        self.reading.pop();
        result
    }

    /// Reads one file's statements into the section open at this point; the file must close
    /// every section it opens.
    fn read(&mut self, file: Arc<Path>, src: &[u8]) -> Result<(), ParseError> {
        let base = self.open.len();
        let mut lex = Lexer::new(src);
        let lex_err = |file: &Arc<Path>, e: LexError| ParseError {
            loc: Loc {
                file: file.clone(),
                line: e.line,
            },
            message: e.message,
        };
        loop {
            let mut toks: Vec<Token> = Vec::new();
            let mut value_next = false;
            let end = loop {
                match lex.next(value_next).map_err(|e| lex_err(&file, e))? {
                    None => break None,
                    Some(t) => match t.kind {
                        Kind::Eol | Kind::LBrace | Kind::RBrace => break Some(t),
                        _ => {
                            // Only the token right after the operator is a value.
                            value_next = t.kind == Kind::Op && toks.len() == 1;
                            toks.push(t);
                        }
                    },
                }
            };
            if !toks.is_empty() || matches!(end.as_ref().map(|t| &t.kind), Some(Kind::LBrace)) {
                let line = toks.first().or(end.as_ref()).map_or(0, |t| t.line);
                let loc = Loc {
                    file: file.clone(),
                    line,
                };
                let opens = matches!(end.as_ref().map(|t| &t.kind), Some(Kind::LBrace));
                self.statement(toks, opens, &loc)?;
            }
            match end {
                None => break,
                Some(t) if t.kind == Kind::RBrace => {
                    if self.open.len() <= base {
                        return Err(Self::error(
                            &Loc {
                                file: file.clone(),
                                line: t.line,
                            },
                            "'}' without a section to close",
                        ));
                    }
                    self.close();
                }
                Some(_) => {}
            }
        }
        if self.open.len() > base
            && let Some(s) = self.open.last()
        {
            return Err(Self::error(
                &s.loc,
                format!(
                    "section '{}' is not closed before the end of {}",
                    s.name,
                    file.display()
                ),
            ));
        }
        Ok(())
    }

    fn close(&mut self) {
        if let Some(done) = self.open.pop()
            && let Some(parent) = self.open.last_mut()
        {
            parent.items.push(Item::Section(done));
        }
    }

    fn push(&mut self, item: Item) {
        if let Some(s) = self.open.last_mut() {
            s.items.push(item);
        }
    }

    /// One statement: `$INCLUDE`, a section opening, a pair, or a bare word.
    fn statement(&mut self, toks: Vec<Token>, opens: bool, loc: &Loc) -> Result<(), ParseError> {
        let mut it = toks.into_iter();
        let Some(first) = it.next() else {
            return Err(Self::error(loc, "'{' without a section name"));
        };
        let rest: Vec<Token> = it.collect();
        if !opens && (first.text == "$INCLUDE" || first.text == "$-INCLUDE") {
            let Some(target) = rest.first() else {
                return Err(Self::error(loc, "$INCLUDE without a file name"));
            };
            let expanded = self.expand_token(target, loc)?;
            let mut path = PathBuf::from(&expanded);
            if path.is_relative() {
                path = loc.file.parent().unwrap_or(Path::new(".")).join(path);
            }
            return self.include(&path, loc, first.text == "$-INCLUDE");
        }
        let (name, optional) = match first.text.strip_prefix('-') {
            Some(n) if first.kind == Kind::Text(Quote::Bare) && !n.is_empty() => {
                (n.to_string(), true)
            }
            _ => (first.text.clone(), false),
        };
        if opens {
            let arg = (!rest.is_empty()).then(|| {
                rest.iter()
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            self.open.push(Section {
                name,
                arg,
                optional,
                items: Vec::new(),
                loc: loc.clone(),
            });
            return Ok(());
        }
        if let Some(op) = rest.first().filter(|t| t.kind == Kind::Op) {
            if rest.len() > 2 {
                return Err(Self::error(
                    loc,
                    format!("unexpected text after the value of '{}'", first.text),
                ));
            }
            let (value, quote) = match rest.get(1) {
                Some(v) => (self.expand_token(v, loc)?, quote_of(v)),
                None => (String::new(), Quote::Bare),
            };
            self.push(Item::Pair(Pair {
                name: first.text,
                op: op.text.clone(),
                value,
                quote,
                loc: loc.clone(),
            }));
            return Ok(());
        }
        let rest_text = rest
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        self.push(Item::Word(Word {
            name,
            optional,
            rest: rest_text,
            loc: loc.clone(),
        }));
        Ok(())
    }

    fn expand_token(&self, t: &Token, loc: &Loc) -> Result<String, ParseError> {
        match t.kind {
            Kind::Text(Quote::Bare | Quote::Double) => self.expand(&t.text, loc),
            _ => Ok(t.text.clone()),
        }
    }

    /// Replaces every `${...}` by the value it names (`$ENV{...}` and `%{...}` are left as
    /// they are: run-time expansions).
    fn expand(&self, text: &str, loc: &Loc) -> Result<String, ParseError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(rest.get(..i).unwrap_or_default());
            let after = rest.get(i + 2..).unwrap_or_default();
            let Some(close) = after.find('}') else {
                return Err(Self::error(loc, format!("unterminated ${{ in {text:?}")));
            };
            let name = after.get(..close).unwrap_or_default();
            let value = self.lookup(name).ok_or_else(|| {
                Self::error(
                    loc,
                    format!("${{{name}}} refers to nothing defined before it"),
                )
            })?;
            out.push_str(&value);
            rest = after.get(close + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Resolves a reference: `name` (the open sections from the innermost out, as FreeRADIUS
    /// looks up `${confdir}` from inside a module), `a.b.name` (from the top), `.name` and
    /// `..name` (this section, its parent), `.:name` / `.:instance`.
    fn lookup(&self, reference: &str) -> Option<String> {
        let dots = reference.chars().take_while(|c| *c == '.').count();
        let path = reference.get(dots..)?;
        if dots > 0 {
            let idx = self.open.len().checked_sub(dots)?;
            let here = self.open.get(idx)?;
            return match path {
                ":name" => Some(here.name.clone()),
                ":instance" => Some(here.instance().to_string()),
                _ => self.resolve_from(idx, path),
            };
        }
        if path.contains('.') {
            return self.resolve_from(0, path);
        }
        self.open
            .iter()
            .rev()
            .find_map(|s| s.pair(path).map(|p| p.value.clone()))
    }

    /// `a.b.name` below the open section `idx`: subsections by name (or `name[instance]`),
    /// the open one first (it is the latest), then those already read.
    fn resolve_from(&self, idx: usize, path: &str) -> Option<String> {
        let mut parts: Vec<&str> = path.split('.').collect();
        let last = parts.pop()?;
        let mut open_idx = Some(idx);
        let mut closed: Option<&Section> = None;
        for part in parts {
            let (name, inst) = match part.split_once('[') {
                Some((n, i)) => (n, Some(i.trim_end_matches(']'))),
                None => (part, None),
            };
            let matches = |s: &Section| s.name == name && inst.is_none_or(|i| s.instance() == i);
            let current = match (open_idx, closed) {
                (Some(i), _) => self.open.get(i)?,
                (None, Some(s)) => s,
                (None, None) => return None,
            };
            if let Some(i) = open_idx
                && self.open.get(i + 1).is_some_and(matches)
            {
                open_idx = Some(i + 1);
                continue;
            }
            closed = current.items.iter().rev().find_map(|it| match it {
                Item::Section(s) if matches(s) => Some(s),
                _ => None,
            });
            closed?;
            open_idx = None;
        }
        let section = match (open_idx, closed) {
            (Some(i), _) => self.open.get(i)?,
            (None, Some(s)) => s,
            (None, None) => return None,
        };
        section.pair(last).map(|p| p.value.clone())
    }
}

fn quote_of(t: &Token) -> Quote {
    match t.kind {
        Kind::Text(q) => q,
        _ => Quote::Bare,
    }
}

#[cfg(test)]
#[path = "tests/raddb_parser.rs"]
mod tests;
