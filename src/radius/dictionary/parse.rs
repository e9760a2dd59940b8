//! Reading FreeRADIUS-format dictionary files: `ATTRIBUTE`, `VALUE`, `VENDOR`,
//! `BEGIN-VENDOR`/`END-VENDOR` and `$INCLUDE` (bounded depth), with the built-in dictionaries
//! embedded. Numbers are RFC 2865 §5 and IANA RADIUS registry facts.

use super::*;

/// The compiled-in dictionary files, by file name. The top-level file must
/// come first: it is the one parsing starts from.
pub(super) const EMBEDDED: &[(&str, &str)] = &[
    (
        "dictionary",
        include_str!("../../../dictionaries/dictionary"),
    ),
    (
        "dictionary.rfc2865",
        include_str!("../../../dictionaries/dictionary.rfc2865"),
    ),
    (
        "dictionary.rfc2866",
        include_str!("../../../dictionaries/dictionary.rfc2866"),
    ),
    (
        "dictionary.rfc2868",
        include_str!("../../../dictionaries/dictionary.rfc2868"),
    ),
    (
        "dictionary.rfc2869",
        include_str!("../../../dictionaries/dictionary.rfc2869"),
    ),
    (
        "dictionary.rfc3162",
        include_str!("../../../dictionaries/dictionary.rfc3162"),
    ),
    (
        "dictionary.rfc3580",
        include_str!("../../../dictionaries/dictionary.rfc3580"),
    ),
    (
        "dictionary.rfc5176",
        include_str!("../../../dictionaries/dictionary.rfc5176"),
    ),
    (
        "dictionary.microsoft",
        include_str!("../../../dictionaries/dictionary.microsoft"),
    ),
];

/// Flag words FreeRADIUS uses after the type. Only `has_tag` and `encrypt=N`
/// mean anything here; the rest are accepted so that such files still load,
/// and are needed to tell a lone flag from the old-style vendor column.
pub(super) const KNOWN_FLAGS: &[&str] = &[
    "has_tag",
    "array",
    "concat",
    "virtual",
    "internal",
    "extended",
    "long_extended",
    "evs",
    "secret",
];

/// Where a statement came from, for error messages.
#[derive(Clone, Copy)]
pub(super) struct Pos<'a> {
    path: &'a Path,
    line: usize,
}

impl Pos<'_> {
    fn syntax(self, message: impl Into<String>) -> DictionaryError {
        DictionaryError::Syntax {
            path: self.path.to_path_buf(),
            line: self.line,
            message: message.into(),
        }
    }

    fn unknown_vendor(self, name: &str) -> DictionaryError {
        DictionaryError::UnknownVendor {
            path: self.path.to_path_buf(),
            line: self.line,
            name: name.to_owned(),
        }
    }
}

/// Parses a decimal or `0x` hexadecimal number. Signs and spaces are not
/// accepted (Rust's parsers would take a leading `+`).
pub(super) fn parse_number(text: &str) -> Option<u32> {
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// The file an `$INCLUDE` names: relative paths are taken from the including
/// file's directory, as FreeRADIUS does.
pub(super) fn include_target(including: &Path, target: &str) -> PathBuf {
    let target = Path::new(target);
    if target.is_absolute() {
        target.to_path_buf()
    } else {
        including
            .parent()
            .map_or_else(|| target.to_path_buf(), |dir| dir.join(target))
    }
}

/// Does an ATTRIBUTE column after the type hold flags (rather than the old
/// vendor-name column)?
pub(super) fn looks_like_flags(word: &str) -> bool {
    word.contains(',')
        || word.contains('=')
        || KNOWN_FLAGS
            .iter()
            .any(|flag| flag.eq_ignore_ascii_case(word))
}

impl Dictionary {
    /// Reads the dictionary file at `path` and everything it `$INCLUDE`s.
    pub fn load(path: &Path) -> Result<Self, DictionaryError> {
        let mut resolver = |file: &Path| {
            std::fs::read_to_string(file).map_err(|source| DictionaryError::Io {
                path: file.to_path_buf(),
                source,
            })
        };
        let text = resolver(path)?;
        let mut dictionary = Self::default();
        dictionary.parse_file(path, &text, 0, &mut resolver)?;
        Ok(dictionary)
    }

    /// The dictionary files shipped in `dictionaries/`, compiled in. They are
    /// known to parse (a unit test checks it); should one ever not, whatever
    /// parsed before the error is returned, since names are only used for
    /// display and lookups of configured names.
    pub fn embedded() -> Self {
        let mut dictionary = Self::default();
        // Ignoring the error is deliberate: see above.
        let _ = dictionary.parse_embedded();
        dictionary
    }

    /// Like [`Dictionary::embedded`], but reports a parse error.
    pub fn try_embedded() -> Result<Self, DictionaryError> {
        let mut dictionary = Self::default();
        dictionary.parse_embedded()?;
        Ok(dictionary)
    }

    pub(super) fn parse_embedded(&mut self) -> Result<(), DictionaryError> {
        let mut resolver = |file: &str| {
            let name = Path::new(file)
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or(file);
            EMBEDDED
                .iter()
                .find(|(embedded, _)| *embedded == name)
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| DictionaryError::Io {
                    path: PathBuf::from(file),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "not among the compiled-in dictionary files",
                    ),
                })
        };
        let (top_name, top_text) = EMBEDDED.first().copied().unwrap_or(("dictionary", ""));
        self.parse_str(top_name, top_text, &mut resolver)
    }

    /// Adds the definitions in `text` (read from the file called `name`) to
    /// this dictionary. For each `$INCLUDE`, `resolver` is called with the
    /// included path, already joined to the directory of `name`, and returns
    /// that file's text. On error, the definitions read before it are kept.
    pub fn parse_str(
        &mut self,
        name: &str,
        text: &str,
        resolver: &mut dyn FnMut(&str) -> Result<String, DictionaryError>,
    ) -> Result<(), DictionaryError> {
        let mut by_path = |path: &Path| resolver(&path.to_string_lossy());
        self.parse_file(Path::new(name), text, 0, &mut by_path)
    }

    /// The shared parser. `depth` is how many `$INCLUDE`s led here.
    pub(super) fn parse_file(
        &mut self,
        path: &Path,
        text: &str,
        depth: usize,
        resolver: &mut dyn FnMut(&Path) -> Result<String, DictionaryError>,
    ) -> Result<(), DictionaryError> {
        // A BEGIN-VENDOR block is local to its file, as in FreeRADIUS.
        let mut block: Option<(String, u32)> = None;
        let mut last_line = 0;
        for (index, raw) in text.lines().enumerate() {
            let pos = Pos {
                path,
                line: index.saturating_add(1),
            };
            last_line = pos.line;
            let content = raw.split('#').next().unwrap_or_default();
            let mut words = content.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let args: Vec<&str> = words.collect();
            match keyword.to_ascii_uppercase().as_str() {
                "$INCLUDE" => self.include(pos, &args, false, depth, resolver)?,
                "$INCLUDE-" => self.include(pos, &args, true, depth, resolver)?,
                "ATTRIBUTE" => {
                    let vendor = block.as_ref().map(|(_, id)| *id);
                    self.add_attribute(pos, &args, vendor)?;
                }
                "VALUE" => self.add_value(pos, &args)?,
                "VENDOR" => self.add_vendor(pos, &args)?,
                "BEGIN-VENDOR" => {
                    let [name] = args.as_slice() else {
                        return Err(pos.syntax("expected: BEGIN-VENDOR vendor-name"));
                    };
                    if let Some((open, _)) = &block {
                        return Err(pos.syntax(format!(
                            "BEGIN-VENDOR {name} inside the block of vendor {open}; \
                             END-VENDOR {open} first"
                        )));
                    }
                    let id = self.vendor(name).ok_or_else(|| pos.unknown_vendor(name))?;
                    block = Some(((*name).to_owned(), id));
                }
                "END-VENDOR" => {
                    let [name] = args.as_slice() else {
                        return Err(pos.syntax("expected: END-VENDOR vendor-name"));
                    };
                    match &block {
                        Some((open, _)) if open.eq_ignore_ascii_case(name) => block = None,
                        Some((open, _)) => {
                            return Err(pos.syntax(format!(
                                "END-VENDOR {name} does not match BEGIN-VENDOR {open}"
                            )));
                        }
                        None => {
                            return Err(
                                pos.syntax(format!("END-VENDOR {name} without BEGIN-VENDOR"))
                            );
                        }
                    }
                }
                _ => return Err(pos.syntax(format!("unknown keyword {keyword:?}"))),
            }
        }
        if let Some((open, _)) = block {
            return Err(Pos {
                path,
                line: last_line,
            }
            .syntax(format!(
                "end of file inside BEGIN-VENDOR {open} (missing END-VENDOR)"
            )));
        }
        Ok(())
    }

    pub(super) fn include(
        &mut self,
        pos: Pos<'_>,
        args: &[&str],
        optional: bool,
        depth: usize,
        resolver: &mut dyn FnMut(&Path) -> Result<String, DictionaryError>,
    ) -> Result<(), DictionaryError> {
        let [target] = args else {
            return Err(pos.syntax("expected: $INCLUDE file"));
        };
        let child = include_target(pos.path, target);
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(DictionaryError::IncludeDepth { path: child });
        }
        let text = match resolver(&child) {
            Ok(text) => text,
            Err(DictionaryError::Io { source, .. })
                if optional && source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        self.parse_file(&child, &text, depth.saturating_add(1), resolver)
    }

    pub(super) fn add_attribute(
        &mut self,
        pos: Pos<'_>,
        args: &[&str],
        block_vendor: Option<u32>,
    ) -> Result<(), DictionaryError> {
        let (name, number, typ, extra) = match args {
            [name, number, typ, extra @ ..] if extra.len() <= 2 => (*name, *number, *typ, extra),
            _ => {
                return Err(
                    pos.syntax("expected: ATTRIBUTE name number type [flags] (or ... type vendor)")
                );
            }
        };
        let number = parse_number(number)
            .ok_or_else(|| pos.syntax(format!("attribute {name}: bad number {number:?}")))?;
        // Type and Vendor-Type are one octet on the wire (RFC 2865 §5, and
        // the 1,1 vendor format of RFC 2865 §5.26); 0 is not a valid type.
        if !(1..=255).contains(&number) {
            return Err(pos.syntax(format!(
                "attribute {name}: number {number} is outside 1..=255"
            )));
        }
        let mut def = AttributeDef {
            name: name.to_owned(),
            vendor: block_vendor,
            number,
            typ: AttrType::parse(typ),
            has_tag: false,
            encrypt: 0,
        };
        let mut old_style_vendor = None;
        for word in extra {
            if looks_like_flags(word) {
                apply_flags(pos, &mut def, word)?;
            } else if old_style_vendor.is_none() {
                let id = self.vendor(word).ok_or_else(|| pos.unknown_vendor(word))?;
                old_style_vendor = Some(id);
            } else {
                return Err(pos.syntax(format!("attribute {name}: two vendor columns")));
            }
        }
        if let Some(id) = old_style_vendor {
            if block_vendor.is_some_and(|block| block != id) {
                return Err(pos.syntax(format!(
                    "attribute {name}: vendor column disagrees with the BEGIN-VENDOR block"
                )));
            }
            def.vendor = Some(id);
        }

        let name_key = key(name);
        if let Some(existing) = self.attributes.get(&name_key) {
            // Repeating an identical definition is harmless (FreeRADIUS
            // trees do it); changing one would make names ambiguous.
            if existing.vendor == def.vendor
                && existing.number == def.number
                && existing.typ == def.typ
                && existing.has_tag == def.has_tag
                && existing.encrypt == def.encrypt
            {
                return Ok(());
            }
            return Err(pos.syntax(format!(
                "attribute {name} is already defined differently (as {})",
                describe_number(existing.vendor, existing.number)
            )));
        }
        // Several names may share a number (aliases); the latest one is used
        // when printing.
        self.by_number
            .insert((def.vendor, def.number), name_key.clone());
        self.attributes.insert(name_key, def);
        Ok(())
    }

    pub(super) fn add_value(&mut self, pos: Pos<'_>, args: &[&str]) -> Result<(), DictionaryError> {
        let [attribute, value_name, number] = args else {
            return Err(pos.syntax("expected: VALUE attribute-name value-name number"));
        };
        let attr_key = key(attribute);
        let def = self.attributes.get(&attr_key).ok_or_else(|| {
            pos.syntax(format!(
                "VALUE {value_name} for attribute {attribute}, which is not defined (yet)"
            ))
        })?;
        let max = def.typ.max_value().ok_or_else(|| {
            pos.syntax(format!(
                "VALUE {value_name}: attribute {attribute} is not an integer type"
            ))
        })?;
        let number = parse_number(number).filter(|n| *n <= max).ok_or_else(|| {
            pos.syntax(format!(
                "VALUE {attribute} {value_name}: bad number {number:?}"
            ))
        })?;
        let table = self.values.entry(attr_key).or_default();
        let value_key = key(value_name);
        match table.by_name.get(&value_key) {
            Some(existing) if *existing == number => return Ok(()),
            Some(existing) => {
                return Err(pos.syntax(format!(
                    "VALUE {attribute} {value_name} is already defined as {existing}"
                )));
            }
            None => {}
        }
        table.by_name.insert(value_key, number);
        table
            .by_number
            .entry(number)
            .or_insert_with(|| (*value_name).to_owned());
        Ok(())
    }

    pub(super) fn add_vendor(
        &mut self,
        pos: Pos<'_>,
        args: &[&str],
    ) -> Result<(), DictionaryError> {
        let (name, number, options) = match args {
            [name, number, options @ ..] if options.len() <= 1 => (*name, *number, options),
            _ => return Err(pos.syntax("expected: VENDOR name number [format=1,1]")),
        };
        let id = parse_number(number)
            .filter(|id| *id != 0)
            .ok_or_else(|| pos.syntax(format!("vendor {name}: bad number {number:?}")))?;
        if let Some(option) = options.first() {
            // Only the one-octet type, one-octet length layout of RFC 2865
            // §5.26 is decoded; accepting another would mis-split the VSAs.
            let format = option
                .strip_prefix("format=")
                .ok_or_else(|| pos.syntax(format!("vendor {name}: unknown option {option:?}")))?;
            if format != "1,1" {
                return Err(pos.syntax(format!(
                    "vendor {name}: format={format} is not supported (only 1,1)"
                )));
            }
        }
        let vendor_key = key(name);
        match self.vendors.get(&vendor_key) {
            Some(existing) if *existing != id => {
                Err(pos.syntax(format!("vendor {name} is already defined as {existing}")))
            }
            _ => {
                self.vendors.insert(vendor_key, id);
                Ok(())
            }
        }
    }
}

/// Applies a comma-separated flag column to `def`.
pub(super) fn apply_flags(
    pos: Pos<'_>,
    def: &mut AttributeDef,
    column: &str,
) -> Result<(), DictionaryError> {
    for flag in column.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        if flag.eq_ignore_ascii_case("has_tag") {
            def.has_tag = true;
        } else if let Some(method) = flag.strip_prefix("encrypt=") {
            // 1 User-Password, 2 Tunnel-Password, 3 Ascend secret: an
            // unknown method would leave a secret unprotected, so refuse it.
            def.encrypt = method
                .parse::<u8>()
                .ok()
                .filter(|m| *m <= 3)
                .ok_or_else(|| {
                    pos.syntax(format!(
                        "attribute {}: unknown encrypt method {method:?} (0 to 3)",
                        def.name
                    ))
                })?;
        }
        // Other flags (array, concat, ...) change nothing we use.
    }
    Ok(())
}

/// The numeric name of an attribute: `Attr-N` or `Attr-26.VENDOR.N`.
pub(super) fn describe_number(vendor: Option<u32>, number: u32) -> String {
    match vendor {
        Some(vendor) => format!("Attr-26.{vendor}.{number}"),
        None => format!("Attr-{number}"),
    }
}
