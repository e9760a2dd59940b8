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

mod display;
mod parse;
use parse::describe_number;

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
pub(super) struct ValueTable {
    /// Lower-cased value name to number.
    pub(super) by_name: HashMap<String, u32>,
    /// Number to the first name defined for it (later ones are aliases).
    pub(super) by_number: HashMap<u32, String>,
}

/// A set of attribute, value and vendor definitions.
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    /// Lower-cased attribute name to definition.
    pub(super) attributes: HashMap<String, AttributeDef>,
    /// (vendor, number) to the lower-cased name of the latest definition.
    pub(super) by_number: HashMap<(Option<u32>, u32), String>,
    /// Lower-cased attribute name to its named values.
    pub(super) values: HashMap<String, ValueTable>,
    /// Lower-cased vendor name to vendor id.
    pub(super) vendors: HashMap<String, u32>,
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

/// A dictionary name to a map key: FreeRADIUS compares names without case.
pub(super) fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Dictionary {
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
