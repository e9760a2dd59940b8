//! The MAB allow list (`[mab] allow_file`): one device per line, `MAC[,VLAN[,description]]`.
//!
//! - The MAC in any spelling of [`super::mac`]; `aa:bb:cc:*` (or `AA-BB-CC-*`, `aabbcc*`) lists a
//!   whole vendor prefix (OUI). A listed MAC wins over its vendor's prefix.
//! - VLAN: an IEEE 802.1Q VLAN ID, 1..=4094 (0 and 4095 are reserved), sent as RFC 3580 §3.31
//!   tunnel attributes; empty or absent: no VLAN (the switch's port VLAN applies).
//! - Description: the rest of the line (it may contain commas), for the operator only.
//! - `#` starts a comment (to the end of the line); blank lines are ignored; CRLF is fine.
//! - A MAC (or prefix) listed twice, in whatever spelling, refuses the file: with two VLANs for
//!   one device, neither "first wins" nor "last wins" is what the operator meant.
//! - At most [`MAX_FILE_BYTES`] octets (about 400,000 lines of `MAC,VLAN,description`): the file
//!   is read whole at every reload, so its size is bounded like every other input.
//!
//! Parsing takes bytes and never panics (a fuzz target drives it); the first line that does not
//! parse refuses the whole file with its line number. Lookups are two hash probes (the MAC, then
//! its prefix), whatever the size of the list.

use std::collections::HashMap;

use super::mac::{Mac, Oui};

/// The largest allow file accepted (16 MiB).
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// What a line says about a device (or a vendor prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The VLAN ID to put the device in; None: no tunnel attributes.
    pub vlan: Option<u16>,
    pub description: String,
    /// Where it is listed (1-based), for the operator.
    pub line: usize,
}

/// How a MAC is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed<'a> {
    /// The MAC itself.
    Mac(&'a Device),
    /// Its vendor prefix.
    Oui(Oui, &'a Device),
}

impl<'a> Listed<'a> {
    pub fn device(&self) -> &'a Device {
        match self {
            Listed::Mac(d) | Listed::Oui(_, d) => d,
        }
    }
}

/// Why an allow file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    #[error(
        "{bytes} octets, more than the limit of {MAX_FILE_BYTES} (16 MiB); split the list or list vendor prefixes (aa:bb:cc:*)"
    )]
    TooLarge { bytes: usize },
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
}

/// The allow list: MACs and vendor prefixes, each with its line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    macs: HashMap<Mac, Device>,
    ouis: HashMap<Oui, Device>,
}

/// What one line lists.
enum Key {
    Mac(Mac),
    Oui(Oui),
}

impl AllowList {
    /// Parses a whole file (see the module doc); the first bad line refuses it.
    pub fn parse(text: &[u8]) -> Result<AllowList, ListError> {
        if text.len() > MAX_FILE_BYTES {
            return Err(ListError::TooLarge { bytes: text.len() });
        }
        let mut list = AllowList::default();
        for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = i + 1;
            let fail = |message: String| ListError::Line { line, message };
            let Ok(raw) = std::str::from_utf8(raw) else {
                return Err(fail("not UTF-8 text".into()));
            };
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let (key, device) = parse_line(content, line).map_err(fail)?;
            let earlier = match key {
                Key::Mac(m) => insert(&mut list.macs, m, device),
                Key::Oui(o) => insert(&mut list.ouis, o, device),
            };
            if let Some((what, first)) = earlier {
                return Err(fail(format!(
                    "{what} is already listed on line {first}: each device once (which VLAN would be meant?)"
                )));
            }
        }
        Ok(list)
    }

    /// The MAC's own line, else its vendor prefix's line.
    pub fn lookup(&self, mac: Mac) -> Option<Listed<'_>> {
        if let Some(d) = self.macs.get(&mac) {
            return Some(Listed::Mac(d));
        }
        let oui = mac.oui();
        self.ouis.get(&oui).map(|d| Listed::Oui(oui, d))
    }

    /// MACs listed one by one.
    pub fn macs(&self) -> usize {
        self.macs.len()
    }

    /// Vendor prefixes listed.
    pub fn ouis(&self) -> usize {
        self.ouis.len()
    }
}

/// Inserts unless the key is there: then (the key as text, the line of the first listing).
fn insert<K: Copy + Eq + std::hash::Hash + std::fmt::Display>(
    map: &mut HashMap<K, Device>,
    key: K,
    device: Device,
) -> Option<(String, usize)> {
    if let Some(first) = map.get(&key) {
        return Some((key.to_string(), first.line));
    }
    map.insert(key, device);
    None
}

fn parse_line(content: &str, line: usize) -> Result<(Key, Device), String> {
    let mut fields = content.splitn(3, ',');
    let address = fields.next().unwrap_or("").trim();
    let vlan = fields.next().map(str::trim).unwrap_or("");
    let description = fields.next().map(str::trim).unwrap_or("").to_string();
    let key = match address.strip_suffix('*') {
        Some(prefix) => {
            let prefix = prefix.trim_end_matches([':', '-', '.']);
            Oui::parse(prefix.as_bytes())
                .map(Key::Oui)
                .map_err(|e| format!("{address:?} is not a vendor prefix: {e}"))?
        }
        None => Mac::parse(address.as_bytes())
            .map(Key::Mac)
            .map_err(|e| format!("{address:?} is not a MAC address: {e}"))?,
    };
    let vlan = parse_vlan(vlan)?;
    Ok((
        key,
        Device {
            vlan,
            description,
            line,
        },
    ))
}

/// IEEE 802.1Q: VLAN IDs 0 (priority tag) and 4095 are reserved; 1..=4094 name a VLAN.
fn parse_vlan(text: &str) -> Result<Option<u16>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let id: u16 = text
        .parse()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("VLAN {text:?} is not a number (1..=4094)"))?;
    if id == 0 || id >= 4095 {
        return Err(format!(
            "VLAN {id} cannot be assigned (IEEE 802.1Q: 1..=4094; 0 and 4095 are reserved)"
        ));
    }
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> Mac {
        Mac::parse(s.as_bytes()).unwrap()
    }

    fn err(text: &str) -> ListError {
        AllowList::parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn lines_vlans_descriptions_comments_and_prefixes() {
        let text = "# printers\r\n\
                    00:11:22:33:44:55,100,HP LaserJet, 2nd floor\r\n\
                    \n\
                    0011.2233.4466   # no VLAN\n\
                    AA-BB-CC-*,200,badge readers\n\
                    001122334477,,camera\n\
                    dd:ee:ff:*\n";
        let list = AllowList::parse(text.as_bytes()).unwrap();
        assert_eq!((list.macs(), list.ouis()), (3, 2));
        let d = list.lookup(mac("00-11-22-33-44-55")).unwrap().device();
        assert_eq!(d.vlan, Some(100));
        assert_eq!(d.description, "HP LaserJet, 2nd floor");
        assert_eq!(d.line, 2);
        assert_eq!(
            list.lookup(mac("001122334466")).unwrap().device().vlan,
            None
        );
        assert_eq!(
            list.lookup(mac("001122334477")).unwrap().device().vlan,
            None
        );
        match list.lookup(mac("aa:bb:cc:00:00:01")) {
            Some(Listed::Oui(oui, d)) => {
                assert_eq!(oui.to_string(), "aa:bb:cc:*");
                assert_eq!(d.vlan, Some(200));
            }
            other => panic!("{other:?}"),
        }
        assert!(list.lookup(mac("dd:ee:ff:12:34:56")).is_some());
        assert_eq!(list.lookup(mac("00:11:22:33:44:56")), None);
    }

    #[test]
    fn a_listed_mac_wins_over_its_vendor_prefix() {
        let list = AllowList::parse(b"aa:bb:cc:*,200\naa:bb:cc:00:00:01,300\n").unwrap();
        assert_eq!(
            list.lookup(mac("aabbcc000001")).unwrap().device().vlan,
            Some(300)
        );
        assert_eq!(
            list.lookup(mac("aabbcc000002")).unwrap().device().vlan,
            Some(200)
        );
    }

    #[test]
    fn oui_prefixes_in_any_spelling() {
        for p in [
            "aa:bb:cc:*",
            "AA-BB-CC-*",
            "aabbcc*",
            "AABBCC*",
            "aa:bb:cc*",
        ] {
            let list = AllowList::parse(p.as_bytes()).unwrap();
            assert_eq!(list.ouis(), 1, "{p}");
            assert!(list.lookup(mac("aa:bb:cc:01:02:03")).is_some(), "{p}");
        }
        assert!(matches!(err("aa:bb:*"), ListError::Line { line: 1, .. }));
    }

    #[test]
    fn errors_name_the_line() {
        let e = err("00:11:22:33:44:55\n# fine\n00:11:22:33:44:5G,10\n");
        assert_eq!(
            e.to_string(),
            "line 3: \"00:11:22:33:44:5G\" is not a MAC address: 'G' is not a hex digit"
        );
        assert!(matches!(
            err("\n\nnot-a-mac\n"),
            ListError::Line { line: 3, .. }
        ));
        assert!(
            err("00:11:22:33:44:55,ten")
                .to_string()
                .contains("not a number")
        );
        assert!(
            err("00:11:22:33:44:55,-1")
                .to_string()
                .contains("not a number")
        );
        assert!(
            err("00:11:22:33:44:55,99999")
                .to_string()
                .contains("not a number")
        );
        assert!(matches!(
            AllowList::parse(b"00:11:22:33:44:55\n\xff\xfe\n").unwrap_err(),
            ListError::Line { line: 2, .. }
        ));
    }

    #[test]
    fn vlan_0_and_4095_are_refused_1_and_4094_accepted() {
        for v in ["0", "4095", "4096"] {
            let e = err(&format!("00:11:22:33:44:55,{v}"));
            assert!(e.to_string().starts_with("line 1: VLAN"), "{v}: {e}");
        }
        for v in [1u16, 4094] {
            let list = AllowList::parse(format!("00:11:22:33:44:55,{v}").as_bytes()).unwrap();
            assert_eq!(
                list.lookup(mac("001122334455")).unwrap().device().vlan,
                Some(v)
            );
        }
    }

    #[test]
    fn a_duplicate_in_any_spelling_refuses_the_file() {
        let e = err("00:11:22:33:44:55,10\n\n0011.2233.4455,20\n");
        assert_eq!(
            e,
            ListError::Line {
                line: 3,
                message: "00:11:22:33:44:55 is already listed on line 1: each device once (which VLAN would be meant?)".into()
            }
        );
        assert!(matches!(
            err("aa:bb:cc:*\naabbcc*\n"),
            ListError::Line { line: 2, .. }
        ));
    }

    #[test]
    fn over_the_size_limit_is_refused_before_parsing() {
        let big = vec![b'#'; MAX_FILE_BYTES + 1];
        let e = AllowList::parse(&big).unwrap_err();
        assert_eq!(
            e,
            ListError::TooLarge {
                bytes: MAX_FILE_BYTES + 1
            }
        );
        assert!(e.to_string().contains("16 MiB"), "{e}");
        // At the limit exactly: accepted (all comment).
        let at = vec![b'#'; MAX_FILE_BYTES];
        assert_eq!(AllowList::parse(&at).unwrap().macs(), 0);
    }

    /// 100,000 devices: every one is found by hash (one probe for a MAC, two for a prefix),
    /// so a lookup costs the same whatever the list holds.
    #[test]
    fn a_hundred_thousand_lines_are_hashed() {
        let mut text = String::new();
        for i in 0u32..100_000 {
            let [_, a, b, c] = i.to_be_bytes();
            text.push_str(&format!(
                "02:00:00:{a:02x}:{b:02x}:{c:02x},{},dev {i}\n",
                i % 4094 + 1
            ));
        }
        let list = AllowList::parse(text.as_bytes()).unwrap();
        assert_eq!(list.macs(), 100_000);
        // The structure is a hash map keyed by the MAC itself: a lookup is a probe, not a walk.
        let _: &HashMap<Mac, Device> = &list.macs;
        for i in [0u32, 54_321, 99_999] {
            let [_, a, b, c] = i.to_be_bytes();
            let d = list.lookup(Mac([2, 0, 0, a, b, c])).unwrap().device();
            assert_eq!(d.line, i as usize + 1);
        }
        assert_eq!(list.lookup(Mac([2, 0, 1, 0, 0, 0])), None);
    }

    /// Whatever the bytes, parsing returns (the fuzz target's property, on a few shapes).
    #[test]
    fn arbitrary_bytes_never_panic() {
        for input in [
            &b"\xff"[..],
            b",,,,,",
            b"*",
            b":*",
            b"00:11:22:33:44:55,,",
            b"00:11:22:33:44:55,4094,\xc3",
            b"#\n#\n\n\r\n",
            b"\x00\x00",
            b"00:11:22:33:44:55:66:77:88",
        ] {
            let _ = AllowList::parse(input);
        }
    }
}
