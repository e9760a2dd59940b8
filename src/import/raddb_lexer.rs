//! Tokens of the FreeRADIUS 3.x configuration syntax (`man radiusd.conf`, src/main/conffile.c):
//! bare words, `"double"` / `'single'` / `` `back-tick` `` quoted strings with their escapes,
//! operators, braces, `#` comments, `\` line continuations, and unlang conditions in
//! parentheses (kept as one raw token: the importer reports them, it never evaluates them).

/// How a string was written: FreeRADIUS expands `${var}` in bare and double-quoted strings only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    Bare,
    Double,
    Single,
    Back,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A bare word or a quoted string.
    Text(Quote),
    /// `=`, `:=`, `+=`, `-=`, `==`, `!=`, `=~`, `!~`, `<=`, `>=`, `^=`.
    Op,
    /// `( ... )` with everything inside, raw.
    Cond,
    LBrace,
    RBrace,
    /// End of a statement (end of line, or a `;`).
    Eol,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub kind: Kind,
    pub text: String,
    pub line: usize,
}

/// A lexing error: the line and what is wrong.
#[derive(Debug)]
pub struct LexError {
    pub line: usize,
    pub message: String,
}

pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    line: usize,
}

const OPS: [&str; 11] = [
    ":=", "+=", "-=", "==", "!=", "=~", "!~", "<=", ">=", "^=", "=",
];

impl<'a> Lexer<'a> {
    pub fn new(src: &'a [u8]) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<u8> {
        self.src.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn err(&self, message: impl Into<String>) -> LexError {
        LexError {
            line: self.line,
            message: message.into(),
        }
    }

    fn op_here(&self) -> Option<&'static str> {
        let rest = self.src.get(self.pos..)?;
        OPS.into_iter().find(|op| rest.starts_with(op.as_bytes()))
    }

    /// The next token; `value`: a value after an operator is being read, where `=` is text
    /// (`base_dn = dc=example,dc=org`). None at the end of input.
    pub fn next(&mut self, value: bool) -> Result<Option<Token>, LexError> {
        loop {
            match self.peek() {
                None => return Ok(None),
                Some(b' ' | b'\t' | b'\r') => {
                    self.bump();
                }
                Some(b'\\') if matches!(self.peek_at(1), Some(b'\n')) => {
                    self.bump();
                    self.bump();
                }
                Some(b'\\') if self.peek_at(1) == Some(b'\r') && self.peek_at(2) == Some(b'\n') => {
                    self.pos += 2;
                    self.bump();
                }
                Some(b'#') => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.bump();
                    }
                }
                Some(_) => break,
            }
        }
        let line = self.line;
        let tok = |kind, text: String| Ok(Some(Token { kind, text, line }));
        let Some(c) = self.peek() else {
            return Ok(None);
        };
        match c {
            b'\n' | b';' => {
                self.bump();
                tok(Kind::Eol, String::new())
            }
            b'{' => {
                self.bump();
                tok(Kind::LBrace, "{".into())
            }
            b'}' => {
                self.bump();
                tok(Kind::RBrace, "}".into())
            }
            b'"' | b'\'' | b'`' => {
                let (q, text) = self.quoted(c)?;
                tok(Kind::Text(q), text)
            }
            b'(' if !value => tok(Kind::Cond, self.condition()?),
            _ => {
                if !value && let Some(op) = self.op_here() {
                    self.pos += op.len();
                    return tok(Kind::Op, op.to_string());
                }
                tok(Kind::Text(Quote::Bare), self.bare(value)?)
            }
        }
    }

    /// A bare word: up to white space, a brace, a comment, a quote or (outside values) an
    /// operator. `${...}` and `%{...}` are taken whole, braces included.
    fn bare(&mut self, value: bool) -> Result<String, LexError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b'{' | b'}' | b'#' | b'"' | b'\'' | b'`' | b';' => {
                    break;
                }
                b'$' | b'%' if self.peek_at(1) == Some(b'{') => self.braced()?,
                b'=' | b':' | b'+' | b'-' | b'!' | b'<' | b'>' | b'^'
                    if !value && self.pos > start && self.op_here().is_some() =>
                {
                    break;
                }
                _ => {
                    self.bump();
                }
            }
        }
        Ok(String::from_utf8_lossy(self.src.get(start..self.pos).unwrap_or_default()).into_owned())
    }

    /// `${...}` or `%{...}` with nested braces, as part of a bare word.
    fn braced(&mut self) -> Result<(), LexError> {
        let line = self.line;
        self.bump();
        self.bump();
        let mut depth = 1usize;
        while depth > 0 {
            match self.bump() {
                None | Some(b'\n') => {
                    return Err(LexError {
                        line,
                        message: "unterminated ${...} or %{...}".into(),
                    });
                }
                Some(b'{') => depth += 1,
                Some(b'}') => depth -= 1,
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A quoted string, its escapes resolved: in double quotes `\\ \" \n \r \t` and octal
    /// `\101`; in single and back quotes only the quote itself and `\\`. `#` is text here.
    fn quoted(&mut self, q: u8) -> Result<(Quote, String), LexError> {
        let line = self.line;
        self.bump();
        let mut out = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(LexError {
                    line,
                    message: "unterminated quoted string".into(),
                });
            };
            if c == q {
                break;
            }
            if c == b'\n' {
                return Err(LexError {
                    line,
                    message: "unterminated quoted string (end of line)".into(),
                });
            }
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.bump() else { continue };
            match (q, e) {
                (b'"', b'n') => out.push(b'\n'),
                (b'"', b'r') => out.push(b'\r'),
                (b'"', b't') => out.push(b'\t'),
                (b'"', b'0'..=b'7') => out.push(self.octal(e)),
                (_, e) if e == q || e == b'\\' => out.push(e),
                (_, e) => {
                    out.push(b'\\');
                    out.push(e);
                }
            }
        }
        let kind = match q {
            b'"' => Quote::Double,
            b'\'' => Quote::Single,
            _ => Quote::Back,
        };
        Ok((kind, String::from_utf8_lossy(&out).into_owned()))
    }

    /// `\ooo`: the first digit is already read; up to two more.
    fn octal(&mut self, first: u8) -> u8 {
        let mut v = u32::from(first - b'0');
        for _ in 0..2 {
            match self.peek() {
                Some(d @ b'0'..=b'7') => {
                    v = v * 8 + u32::from(d - b'0');
                    self.bump();
                }
                _ => break,
            }
        }
        u8::try_from(v & 0xff).unwrap_or(0)
    }

    /// An unlang condition `( ... )`, possibly over several lines, raw (quotes and nested
    /// parentheses respected, so a `{` inside does not open a section).
    fn condition(&mut self) -> Result<String, LexError> {
        let line = self.line;
        let start = self.pos;
        let mut depth = 0usize;
        loop {
            let Some(c) = self.bump() else {
                return Err(LexError {
                    line,
                    message: "unterminated condition: '(' without ')'".into(),
                });
            };
            match c {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                b'\\' => {
                    self.bump();
                }
                b'"' | b'\'' | b'`' => {
                    self.pos -= 1;
                    self.quoted(c)?;
                }
                _ => {}
            }
        }
        let raw = String::from_utf8_lossy(self.src.get(start..self.pos).unwrap_or_default());
        Ok(raw.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// Used by the parser for an error at the current position.
    pub fn error_here(&self, message: impl Into<String>) -> LexError {
        self.err(message)
    }
}
