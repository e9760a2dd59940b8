//! RADIUS attribute dictionary: names, numbers, types and value names.
//!
//! The wire protocol only carries numbers: an attribute is a one-octet Type
//! (RFC 2865 §5), or a Vendor-Id plus one-octet Vendor-Type inside
//! Vendor-Specific (RFC 2865 §5.26). People, configuration files and log
//! lines want names. This module reads the FreeRADIUS-style dictionary text
//! that maps one to the other, so an operator can extend or replace the
//! definitions without rebuilding, and so that log lines can name the
//! attributes a NAS sent.
//!
//! The files shipped in `dictionaries/` were written from the specifications
//! that assign the numbers: RFC 2865 (RADIUS), RFC 2866 (accounting),
//! RFC 2868 (tunnel attributes, tagged), RFC 2869 (EAP-Message,
//! Message-Authenticator and other extensions), RFC 3162 (IPv6), RFC 3580
//! (IEEE 802.1X usage: VLAN, Token-Ring, FDDI and 802.1X termination causes),
//! RFC 5176 (Error-Cause) and RFC 2548 (Microsoft vendor 311, including the
//! MS-MPPE keys), checked against the IANA "RADIUS Types" registry. They are
//! compiled in, see [`Dictionary::embedded`].
//!
//! The dictionary is descriptive, not load-bearing: the numbers the protocol
//! code depends on (EAP-Message, Message-Authenticator, State, the MS-MPPE
//! keys, the tunnel attributes…) are also constants in `src/radius/attr.rs`,
//! so a broken or edited dictionary file can never change how a packet is
//! built or verified. A test checks those constants against these files, so
//! the two cannot drift apart silently.
//!
//! Supported syntax, one statement per line, `#` starts a comment:
//!
//! ```text
//! $INCLUDE file                         (relative to the including file)
//! $INCLUDE- file                        (the same, but a missing file is skipped)
//! ATTRIBUTE name number type [flags]    (flags: has_tag, encrypt=N, others ignored)
//! ATTRIBUTE name number type vendor     (older form of a vendor attribute)
//! VALUE attribute value-name number
//! VENDOR name number [format=1,1]
//! BEGIN-VENDOR name
//! END-VENDOR name
//! ```
//!
//! Numbers are decimal or `0x` hexadecimal. Names compare case-insensitively,
//! as in FreeRADIUS. Anything else is a [`DictionaryError::Syntax`] naming the
//! file and line, because a dictionary that is silently half-read would
//! mislabel attributes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How deep `$INCLUDE` may nest; deeper is taken to be an include loop.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// The compiled-in dictionary files, by file name. The top-level file must
/// come first: it is the one parsing starts from.
const EMBEDDED: &[(&str, &str)] = &[
    ("dictionary", include_str!("../../dictionaries/dictionary")),
    (
        "dictionary.rfc2865",
        include_str!("../../dictionaries/dictionary.rfc2865"),
    ),
    (
        "dictionary.rfc2866",
        include_str!("../../dictionaries/dictionary.rfc2866"),
    ),
    (
        "dictionary.rfc2868",
        include_str!("../../dictionaries/dictionary.rfc2868"),
    ),
    (
        "dictionary.rfc2869",
        include_str!("../../dictionaries/dictionary.rfc2869"),
    ),
    (
        "dictionary.rfc3162",
        include_str!("../../dictionaries/dictionary.rfc3162"),
    ),
    (
        "dictionary.rfc3580",
        include_str!("../../dictionaries/dictionary.rfc3580"),
    ),
    (
        "dictionary.rfc5176",
        include_str!("../../dictionaries/dictionary.rfc5176"),
    ),
    (
        "dictionary.microsoft",
        include_str!("../../dictionaries/dictionary.microsoft"),
    ),
];

/// Flag words FreeRADIUS uses after the type. Only `has_tag` and `encrypt=N`
/// mean anything here; the rest are accepted so that such files still load,
/// and are needed to tell a lone flag from the old-style vendor column.
const KNOWN_FLAGS: &[&str] = &[
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

/// The data type of an attribute's value, as written in the dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttrType {
    /// Text (RFC 2865 §5 "text"/"string").
    String,
    /// Opaque bytes.
    Octets,
    /// 32-bit unsigned integer, network order.
    Integer,
    /// IPv4 address, 4 octets.
    IpAddr,
    /// IPv6 address, 16 octets (RFC 3162).
    Ipv6Addr,
    /// IPv6 prefix: reserved octet, prefix length, prefix (RFC 3162 §2.3).
    Ipv6Prefix,
    /// Seconds since the Unix epoch, 32 bits (RFC 2869 §5.3).
    Date,
    /// IPv6 interface identifier, 8 octets (RFC 3162 §2.2).
    Ifid,
    /// 64-bit unsigned integer.
    Integer64,
    /// One-octet unsigned integer.
    Byte,
    /// Two-octet unsigned integer.
    Short,
    /// Any other type word (e.g. `vsa`, `ether`, `tlv`), kept lower-cased.
    Other(String),
}

impl AttrType {
    /// Parses a type word. FreeRADIUS allows a length suffix such as
    /// `octets[16]`; the length is not needed to name attributes, so it is
    /// dropped.
    fn parse(word: &str) -> Self {
        let base = word.split('[').next().unwrap_or(word).to_ascii_lowercase();
        match base.as_str() {
            "string" => Self::String,
            "octets" => Self::Octets,
            "integer" => Self::Integer,
            "ipaddr" => Self::IpAddr,
            "ipv6addr" => Self::Ipv6Addr,
            "ipv6prefix" => Self::Ipv6Prefix,
            "date" => Self::Date,
            "ifid" => Self::Ifid,
            "integer64" => Self::Integer64,
            "byte" => Self::Byte,
            "short" => Self::Short,
            _ => Self::Other(base),
        }
    }

    /// The largest value a VALUE line may give, or `None` when the type has
    /// no named values at all.
    fn max_value(&self) -> Option<u32> {
        match self {
            Self::Integer | Self::Integer64 => Some(u32::MAX),
            Self::Short => Some(u32::from(u16::MAX)),
            Self::Byte => Some(u32::from(u8::MAX)),
            _ => None,
        }
    }
}

/// One ATTRIBUTE definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDef {
    /// The name as written in the dictionary.
    pub name: String,
    /// `Some(vendor id)` for a vendor-specific attribute, `None` for a
    /// standard one.
    pub vendor: Option<u32>,
    /// Type (or Vendor-Type) number on the wire, 1 to 255.
    pub number: u32,
    /// Value type.
    pub typ: AttrType,
    /// The value starts with an RFC 2868 tag octet.
    pub has_tag: bool,
    /// Hiding method: 0 none, 1 User-Password style (RFC 2865 §5.2),
    /// 2 salted Tunnel-Password style (RFC 2868 §3.5, RFC 2548 §2.4.2),
    /// 3 Ascend secret.
    pub encrypt: u8,
}

/// Named values of one integer attribute.
#[derive(Debug, Clone, Default)]
struct ValueTable {
    /// Lower-cased value name to number.
    by_name: HashMap<String, u32>,
    /// Number to the first name defined for it (later ones are aliases).
    by_number: HashMap<u32, String>,
}

/// A set of attribute, value and vendor definitions.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    /// Lower-cased attribute name to definition.
    attributes: HashMap<String, AttributeDef>,
    /// (vendor, number) to the lower-cased name of the latest definition.
    by_number: HashMap<(Option<u32>, u32), String>,
    /// Lower-cased attribute name to its named values.
    values: HashMap<String, ValueTable>,
    /// Lower-cased vendor name to vendor id.
    vendors: HashMap<String, u32>,
}

/// Why a dictionary could not be read. Every variant names the file, and
/// those about a statement also name the line.
#[derive(Debug, thiserror::Error)]
pub enum DictionaryError {
    /// A file could not be read.
    #[error("{}: cannot read dictionary file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A statement is malformed or contradicts an earlier one.
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// Including `path` would nest `$INCLUDE` deeper than
    /// [`MAX_INCLUDE_DEPTH`], which usually means a file includes itself.
    #[error(
        "{}: not loaded: $INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} levels (include loop?)",
        path.display()
    )]
    IncludeDepth { path: PathBuf },
    /// A statement names a vendor that no VENDOR line defined.
    #[error("{}:{line}: unknown vendor {name:?} (define it with VENDOR first)", path.display())]
    UnknownVendor {
        path: PathBuf,
        line: usize,
        name: String,
    },
}

/// Where a statement came from, for error messages.
#[derive(Clone, Copy)]
struct Pos<'a> {
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

/// A dictionary name to a map key: FreeRADIUS compares names without case.
fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Parses a decimal or `0x` hexadecimal number. Signs and spaces are not
/// accepted (Rust's parsers would take a leading `+`).
fn parse_number(text: &str) -> Option<u32> {
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
fn include_target(including: &Path, target: &str) -> PathBuf {
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
fn looks_like_flags(word: &str) -> bool {
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

    fn parse_embedded(&mut self) -> Result<(), DictionaryError> {
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
    fn parse_file(
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

    fn include(
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

    fn add_attribute(
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

    fn add_value(&mut self, pos: Pos<'_>, args: &[&str]) -> Result<(), DictionaryError> {
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

    fn add_vendor(&mut self, pos: Pos<'_>, args: &[&str]) -> Result<(), DictionaryError> {
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

    /// The attribute called `name` (any case).
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes.get(&key(name))
    }

    /// The attribute with this number; `vendor` is `None` for standard
    /// attributes and the Vendor-Id for vendor-specific ones.
    pub fn attribute_by_number(&self, vendor: Option<u32>, number: u32) -> Option<&AttributeDef> {
        self.by_number
            .get(&(vendor, number))
            .and_then(|name| self.attributes.get(name))
    }

    /// The attribute's dictionary name, or a numeric stand-in such as
    /// `Attr-200` or `Attr-26.311.99` (Vendor-Specific, vendor, type) when
    /// it is not defined, so a log line can always name it.
    pub fn name_of(&self, vendor: Option<u32>, number: u32) -> String {
        self.attribute_by_number(vendor, number)
            .map_or_else(|| describe_number(vendor, number), |def| def.name.clone())
    }

    /// The number of the named value of an integer attribute (any case).
    pub fn value(&self, attribute: &str, value_name: &str) -> Option<u32> {
        self.values
            .get(&key(attribute))
            .and_then(|table| table.by_name.get(&key(value_name)))
            .copied()
    }

    /// The name of a value of an integer attribute; when several names
    /// share the value, the first one defined.
    pub fn value_name(&self, attribute: &str, value: u32) -> Option<&str> {
        self.values
            .get(&key(attribute))
            .and_then(|table| table.by_number.get(&value))
            .map(String::as_str)
    }

    /// The Vendor-Id of the named vendor (any case).
    pub fn vendor(&self, name: &str) -> Option<u32> {
        self.vendors.get(&key(name)).copied()
    }

    /// How many attribute names are defined.
    pub fn len(&self) -> usize {
        self.attributes.len()
    }

    /// No attribute is defined.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }
}

/// Applies a comma-separated flag column to `def`.
fn apply_flags(pos: Pos<'_>, def: &mut AttributeDef, column: &str) -> Result<(), DictionaryError> {
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
fn describe_number(vendor: Option<u32>, number: u32) -> String {
    match vendor {
        Some(vendor) => format!("Attr-26.{vendor}.{number}"),
        None => format!("Attr-{number}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// Parses `files[0]` with the others reachable by `$INCLUDE`.
    fn parse(files: &[(&str, &str)]) -> Result<Dictionary, DictionaryError> {
        let mut resolver = |path: &str| {
            files
                .iter()
                .find(|(name, _)| *name == path)
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| DictionaryError::Io {
                    path: PathBuf::from(path),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                })
        };
        let (name, text) = files[0];
        let mut dictionary = Dictionary::default();
        dictionary.parse_str(name, text, &mut resolver)?;
        Ok(dictionary)
    }

    fn parse_one(text: &str) -> Result<Dictionary, DictionaryError> {
        parse(&[("test.dict", text)])
    }

    #[test]
    fn embedded_set_parses_without_error() {
        let strict = Dictionary::try_embedded().unwrap();
        let lenient = Dictionary::embedded();
        assert_eq!(strict.len(), lenient.len());
        assert!(strict.len() > 100, "only {} attributes", strict.len());
        assert!(!strict.is_empty());
    }

    #[test]
    fn embedded_standard_attributes() {
        let d = Dictionary::embedded();
        let number = |name: &str| d.attribute(name).map(|a| (a.vendor, a.number));
        assert_eq!(number("User-Name"), Some((None, 1)));
        assert_eq!(number("State"), Some((None, 24)));
        assert_eq!(number("EAP-Message"), Some((None, 79)));
        assert_eq!(number("Message-Authenticator"), Some((None, 80)));
        assert_eq!(number("NAS-IPv6-Address"), Some((None, 95)));
        assert_eq!(number("Error-Cause"), Some((None, 101)));

        let user_password = d.attribute("User-Password").unwrap();
        assert_eq!(user_password.encrypt, 1);
        assert!(!user_password.has_tag);
        assert_eq!(d.attribute("EAP-Message").unwrap().typ, AttrType::Octets);
        assert_eq!(d.attribute("Event-Timestamp").unwrap().typ, AttrType::Date);
        assert_eq!(
            d.attribute("Framed-IPv6-Prefix").unwrap().typ,
            AttrType::Ipv6Prefix
        );
        assert_eq!(
            d.attribute("Vendor-Specific").unwrap().typ,
            AttrType::Other("vsa".into())
        );

        // Case-insensitive, and by number.
        assert_eq!(d.attribute("user-name").unwrap().name, "User-Name");
        assert_eq!(
            d.attribute_by_number(None, 80).unwrap().name,
            "Message-Authenticator"
        );
        assert_eq!(d.name_of(None, 24), "State");
    }

    #[test]
    fn embedded_tunnel_attributes() {
        let d = Dictionary::embedded();
        let tunnel_type = d.attribute("Tunnel-Type").unwrap();
        assert_eq!((tunnel_type.number, tunnel_type.has_tag), (64, true));
        assert_eq!(tunnel_type.typ, AttrType::Integer);
        let group = d.attribute("Tunnel-Private-Group-Id").unwrap();
        assert_eq!((group.number, group.has_tag), (81, true));
        assert_eq!(d.attribute("TUNNEL-PRIVATE-GROUP-ID").unwrap().number, 81);
        let medium = d.attribute("Tunnel-Medium-Type").unwrap();
        assert_eq!((medium.number, medium.has_tag), (65, true));
        let password = d.attribute("Tunnel-Password").unwrap();
        assert_eq!(
            (password.number, password.has_tag, password.encrypt),
            (69, true, 2)
        );
    }

    #[test]
    fn embedded_microsoft_attributes() {
        let d = Dictionary::embedded();
        assert_eq!(d.vendor("Microsoft"), Some(311));
        assert_eq!(d.vendor("microsoft"), Some(311));
        let send = d.attribute("MS-MPPE-Send-Key").unwrap();
        assert_eq!((send.vendor, send.number, send.encrypt), (Some(311), 16, 2));
        assert_eq!(send.typ, AttrType::Octets);
        let recv = d.attribute("MS-MPPE-Recv-Key").unwrap();
        assert_eq!((recv.vendor, recv.number, recv.encrypt), (Some(311), 17, 2));
        assert_eq!(d.attribute("MS-MPPE-Encryption-Policy").unwrap().number, 7);
        assert_eq!(d.attribute("MS-MPPE-Encryption-Types").unwrap().number, 8);
        assert_eq!(d.attribute("MS-CHAP-MPPE-Keys").unwrap().encrypt, 1);
        assert_eq!(d.name_of(Some(311), 17), "MS-MPPE-Recv-Key");
        // Vendor attribute 16 is not standard attribute 16.
        assert_eq!(d.name_of(None, 16), "Login-TCP-Port");
    }

    #[test]
    fn embedded_values() {
        let d = Dictionary::embedded();
        assert_eq!(d.value("Tunnel-Type", "VLAN"), Some(13));
        assert_eq!(d.value("tunnel-type", "vlan"), Some(13));
        assert_eq!(d.value("Tunnel-Medium-Type", "IEEE-802"), Some(6));
        assert_eq!(d.value("NAS-Port-Type", "Wireless-802.11"), Some(19));
        assert_eq!(d.value("NAS-Port-Type", "Ethernet"), Some(15));
        assert_eq!(d.value("NAS-Port-Type", "FDDI"), Some(21));
        assert_eq!(d.value("Termination-Action", "RADIUS-Request"), Some(1));
        assert_eq!(d.value("Acct-Status-Type", "Interim-Update"), Some(3));
        assert_eq!(d.value("Acct-Authentic", "RADIUS"), Some(1));
        assert_eq!(
            d.value("Acct-Terminate-Cause", "Port-Administratively-Disabled"),
            Some(22)
        );
        assert_eq!(d.value("Service-Type", "Framed-User"), Some(2));
        assert_eq!(d.value("Service-Type", "Framed"), Some(2));
        assert_eq!(d.value("Service-Type", "Authorize-Only"), Some(17));
        assert_eq!(
            d.value("MS-MPPE-Encryption-Policy", "Encryption-Required"),
            Some(2)
        );
        assert_eq!(d.value("Tunnel-Type", "No-Such-Value"), None);
        assert_eq!(d.value("No-Such-Attribute", "VLAN"), None);

        assert_eq!(d.value_name("NAS-Port-Type", 19), Some("Wireless-802.11"));
        // The first name defined wins over later aliases.
        assert_eq!(d.value_name("Service-Type", 2), Some("Framed-User"));
        assert_eq!(
            d.value_name("Acct-Terminate-Cause", 19),
            Some("Supplicant-Restart")
        );
        assert_eq!(d.value_name("Tunnel-Type", 9999), None);
    }

    #[test]
    fn name_of_unknown_attributes() {
        let d = Dictionary::embedded();
        assert_eq!(d.name_of(None, 200), "Attr-200");
        assert_eq!(d.name_of(Some(311), 99), "Attr-26.311.99");
        assert_eq!(d.name_of(Some(9), 1), "Attr-26.9.1");
        assert!(d.attribute_by_number(None, 200).is_none());
        assert_eq!(Dictionary::default().name_of(None, 1), "Attr-1");
    }

    #[test]
    fn load_follows_includes_relative_to_the_including_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("vendors");
        fs::create_dir(&sub).unwrap();
        fs::write(
            dir.path().join("dictionary"),
            "# top\n$INCLUDE base\n$INCLUDE vendors/dictionary.acme\n$INCLUDE- not-there\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("base"),
            "ATTRIBUTE Foo 0x10 integer\nVALUE Foo Bar 7\n",
        )
        .unwrap();
        // Included from vendors/, so "acme.values" means vendors/acme.values.
        fs::write(
            sub.join("dictionary.acme"),
            "VENDOR Acme 99999 format=1,1\nBEGIN-VENDOR Acme\n\
             ATTRIBUTE Acme-Key 1 octets encrypt=2\nEND-VENDOR Acme\n\
             ATTRIBUTE Acme-Old 2 string Acme\n$INCLUDE acme.values\n",
        )
        .unwrap();
        fs::write(sub.join("acme.values"), "VALUE Foo Baz 8\n").unwrap();

        let d = Dictionary::load(&dir.path().join("dictionary")).unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.attribute("Foo").unwrap().number, 16);
        assert_eq!(d.value("Foo", "Bar"), Some(7));
        assert_eq!(d.value("Foo", "Baz"), Some(8));
        let key = d.attribute("Acme-Key").unwrap();
        assert_eq!((key.vendor, key.number, key.encrypt), (Some(99999), 1, 2));
        let old = d.attribute("Acme-Old").unwrap();
        assert_eq!((old.vendor, old.number), (Some(99999), 2));
        assert_eq!(d.name_of(Some(99999), 2), "Acme-Old");
    }

    #[test]
    fn load_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let error = Dictionary::load(&missing).unwrap_err();
        assert!(matches!(&error, DictionaryError::Io { path, .. } if *path == missing));

        fs::write(dir.path().join("dictionary"), "$INCLUDE absent\n").unwrap();
        let error = Dictionary::load(&dir.path().join("dictionary")).unwrap_err();
        assert!(
            matches!(&error, DictionaryError::Io { path, .. } if path.ends_with("absent")),
            "{error}"
        );
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dictionary.bad");
        fs::write(
            &path,
            "ATTRIBUTE Ok 1 string\n\n# comment\nATTRIBUTE Broken one string\n",
        )
        .unwrap();
        let error = Dictionary::load(&path).unwrap_err();
        match &error {
            DictionaryError::Syntax { path: p, line, .. } => {
                assert_eq!(p, &path);
                assert_eq!(*line, 4);
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = error.to_string();
        assert!(text.contains("dictionary.bad:4:"), "{text}");
        assert!(text.contains("Broken"), "{text}");

        // The error inside an included file names that file.
        let error = parse(&[
            ("dir/top", "ATTRIBUTE A 1 string\n$INCLUDE inner\n"),
            ("dir/inner", "\nFROBNICATE x\n"),
        ])
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "dir/inner:2: unknown keyword \"FROBNICATE\""
        );
    }

    #[test]
    fn include_loop_stops_at_depth_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loop");
        fs::write(&path, "ATTRIBUTE A 1 string\n$INCLUDE loop\n").unwrap();
        let error = Dictionary::load(&path).unwrap_err();
        assert!(
            matches!(&error, DictionaryError::IncludeDepth { path: p } if *p == path),
            "{error:?}"
        );

        // Exactly MAX_INCLUDE_DEPTH levels of nesting are fine.
        let names: Vec<String> = (0..=MAX_INCLUDE_DEPTH).map(|i| format!("f{i}")).collect();
        let texts: Vec<String> = (0..=MAX_INCLUDE_DEPTH)
            .map(|i| {
                if i < MAX_INCLUDE_DEPTH {
                    format!("$INCLUDE f{}\n", i + 1)
                } else {
                    "ATTRIBUTE Deep 1 string\n".to_owned()
                }
            })
            .collect();
        let files: Vec<(&str, &str)> = names
            .iter()
            .zip(&texts)
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        assert_eq!(parse(&files).unwrap().attribute("Deep").unwrap().number, 1);
    }

    #[test]
    fn vendor_errors() {
        let error = parse_one("BEGIN-VENDOR Nobody\n").unwrap_err();
        assert!(
            matches!(&error, DictionaryError::UnknownVendor { line: 1, name, .. } if name == "Nobody")
        );
        assert_eq!(
            error.to_string(),
            "test.dict:1: unknown vendor \"Nobody\" (define it with VENDOR first)"
        );
        // Old-style vendor column naming an undefined vendor.
        assert!(matches!(
            parse_one("ATTRIBUTE X 1 string Nobody\n").unwrap_err(),
            DictionaryError::UnknownVendor { line: 1, .. }
        ));
        let syntax_line = |text: &str| match parse_one(text) {
            Err(DictionaryError::Syntax { line, .. }) => line,
            other => panic!("expected a syntax error for {text:?}, got {other:?}"),
        };
        assert_eq!(syntax_line("VENDOR V 5\nBEGIN-VENDOR V\n"), 2);
        assert_eq!(syntax_line("VENDOR V 5\nEND-VENDOR V\n"), 2);
        assert_eq!(
            syntax_line("VENDOR V 5\nVENDOR W 6\nBEGIN-VENDOR V\nEND-VENDOR W\n"),
            4
        );
        assert_eq!(syntax_line("VENDOR V 5 format=2,1\n"), 1);
        assert_eq!(syntax_line("VENDOR V 5\nVENDOR v 6\n"), 2);
        assert_eq!(syntax_line("VENDOR V 0\n"), 1);
        // A BEGIN-VENDOR block does not reach into a file it includes.
        let d = parse(&[
            (
                "top",
                "VENDOR V 5\nBEGIN-VENDOR V\n$INCLUDE std\nATTRIBUTE V-A 1 integer\nEND-VENDOR V\n",
            ),
            ("std", "ATTRIBUTE Std 1 string\n"),
        ])
        .unwrap();
        assert_eq!(d.attribute("Std").unwrap().vendor, None);
        assert_eq!(d.attribute("V-A").unwrap().vendor, Some(5));
    }

    #[test]
    fn statement_errors() {
        let syntax_line = |text: &str| match parse_one(text) {
            Err(DictionaryError::Syntax { line, .. }) => line,
            other => panic!("expected a syntax error for {text:?}, got {other:?}"),
        };
        assert_eq!(syntax_line("ATTRIBUTE A 1\n"), 1);
        assert_eq!(syntax_line("ATTRIBUTE A 0 string\n"), 1);
        assert_eq!(syntax_line("ATTRIBUTE A 256 string\n"), 1);
        assert_eq!(syntax_line("ATTRIBUTE A +1 string\n"), 1);
        assert_eq!(syntax_line("ATTRIBUTE A 0x string\n"), 1);
        assert_eq!(syntax_line("ATTRIBUTE A 1 string encrypt=9\n"), 1);
        assert_eq!(
            syntax_line("ATTRIBUTE A 1 string\nATTRIBUTE a 2 string\n"),
            2
        );
        assert_eq!(syntax_line("VALUE A B 1\n"), 1);
        assert_eq!(syntax_line("ATTRIBUTE A 1 string\nVALUE A B 1\n"), 2);
        assert_eq!(syntax_line("ATTRIBUTE A 1 byte\nVALUE A B 256\n"), 2);
        assert_eq!(
            syntax_line("ATTRIBUTE A 1 integer\nVALUE A B 1\nVALUE A b 2\n"),
            3
        );
        assert_eq!(syntax_line("$INCLUDE\n"), 1);
        assert_eq!(syntax_line("\n\nattribut A 1 string\n"), 3);
    }

    #[test]
    fn accepted_forms() {
        let d = parse_one(
            "  attribute\tA  1  integer  # trailing comment\n\
             ATTRIBUTE A 1 integer\n\
             ATTRIBUTE A-Alias 1 integer\n\
             ATTRIBUTE T 0x40 integer has_tag,array\n\
             ATTRIBUTE F 2 octets[16] virtual\n\
             ATTRIBUTE E 3 ether\n\
             VALUE A One 1\nVALUE A one 1\nVALUE A Uno 1\nVALUE A Big 0xFFFFFFFF\n",
        )
        .unwrap();
        assert_eq!(d.len(), 5);
        // The later alias names the number; both names resolve.
        assert_eq!(d.name_of(None, 1), "A-Alias");
        assert_eq!(d.attribute("A").unwrap().number, 1);
        let t = d.attribute("T").unwrap();
        assert_eq!((t.number, t.has_tag, t.encrypt), (64, true, 0));
        assert_eq!(d.attribute("F").unwrap().typ, AttrType::Octets);
        assert_eq!(
            d.attribute("E").unwrap().typ,
            AttrType::Other("ether".into())
        );
        assert_eq!(d.value("A", "UNO"), Some(1));
        assert_eq!(d.value_name("A", 1), Some("One"));
        assert_eq!(d.value("A", "Big"), Some(u32::MAX));
    }
}
