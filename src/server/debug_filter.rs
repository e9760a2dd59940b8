//! `--debug-filter KEY=VALUE`: limits `--debug` packet dumps to the conversations of one
//! supplicant or NAS, so an operator can watch one laptop on a busy server.
//!
//! Keys: `calling_station_id` (RFC 2865 §5.31, compared ignoring case and the separators `-`,
//! `:` and `.`, so `AA-BB-CC-DD-EE-FF` matches `aabb.ccdd.eeff`), `user_name` (RFC 2865 §5.1,
//! exact), `nas` (the `[[client]]` name or the packet's source address). Several filters: a
//! packet is dumped when any matches. Every Access-Request of a conversation carries the same
//! User-Name and Calling-Station-Id and comes from the same NAS, so matching per packet follows
//! whole conversations. The shell runs a matching packet inside a span `debug_dump{dump=true}`
//! and the log filter enables debug events only inside it.

use std::net::SocketAddr;

use crate::radius::{attr, peek};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DebugFilter {
    CallingStationId(String),
    UserName(Vec<u8>),
    Nas(String),
}

impl std::str::FromStr for DebugFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))?;
        match key {
            "calling_station_id" => Ok(DebugFilter::CallingStationId(normalise_mac(
                value.as_bytes(),
            ))),
            "user_name" => Ok(DebugFilter::UserName(value.as_bytes().to_vec())),
            "nas" => Ok(DebugFilter::Nas(value.to_string())),
            other => Err(format!(
                "unknown key {other:?} (calling_station_id, user_name or nas)"
            )),
        }
    }
}

fn normalise_mac(v: &[u8]) -> String {
    v.iter()
        .filter(|b| !matches!(b, b'-' | b':' | b'.'))
        .map(|b| char::from(b.to_ascii_lowercase()))
        .collect()
}

/// True when any filter matches the datagram from `from` (sent by the client named `nas_name`).
pub fn matches(
    filters: &[DebugFilter],
    from: SocketAddr,
    nas_name: Option<&str>,
    datagram: &[u8],
) -> bool {
    filters.iter().any(|f| match f {
        DebugFilter::CallingStationId(mac) => peek::first(datagram, attr::CALLING_STATION_ID)
            .is_some_and(|v| normalise_mac(v) == *mac),
        DebugFilter::UserName(name) => {
            peek::first(datagram, attr::USER_NAME).is_some_and(|v| v == name.as_slice())
        }
        DebugFilter::Nas(nas) => nas_name == Some(nas.as_str()) || from.ip().to_string() == *nas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(attrs: &[u8]) -> Vec<u8> {
        let mut p = vec![1, 1, 0, 0];
        p.extend_from_slice(&[0; 16]);
        p.extend_from_slice(attrs);
        let len = u16::try_from(p.len()).unwrap().to_be_bytes();
        p[2] = len[0];
        p[3] = len[1];
        p
    }

    #[test]
    fn filters_match_attributes_and_nas() {
        let from: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut attrs = vec![1, 5, b'b', b'o', b'b', 31, 19];
        attrs.extend_from_slice(b"AA-BB-CC-DD-EE-FF");
        let p = packet(&attrs);
        let f = |s: &str| vec![s.parse::<DebugFilter>().unwrap()];
        assert!(matches(&f("user_name=bob"), from, None, &p));
        assert!(!matches(&f("user_name=alice"), from, None, &p));
        assert!(matches(
            &f("calling_station_id=aa:bb:cc:dd:ee:ff"),
            from,
            None,
            &p
        ));
        assert!(matches(&f("nas=127.0.0.1"), from, None, &p));
        assert!(matches(&f("nas=ap1"), from, Some("ap1"), &p));
        assert!(!matches(&f("nas=ap2"), from, Some("ap1"), &p));
        assert!("colour=blue".parse::<DebugFilter>().is_err());
        assert!(!matches(&f("user_name=bob"), from, None, &[1, 1, 0]));
        // A User-Name behind an attribute that does not fit is not looked at (the core
        // discards the packet as malformed).
        assert!(!matches(
            &f("user_name=bob"),
            from,
            None,
            &packet(&[31, 1, 1, 5, b'b', b'o', b'b'])
        ));
    }
}
