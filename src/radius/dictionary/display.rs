//! A value as an operator reads it: an integer attribute by its VALUE name (RFC 2865 §5.6
//! Service-Type, RFC 2868 §3.1 Tunnel-Type, ...), an address in dotted form, text escaped,
//! anything else in hex. Used by the `--debug` packet dump and `certradius mab-test`.

use super::{AttrType, Dictionary};
use crate::escape::Escaped;

impl Dictionary {
    /// `value` of the attribute called `name`, for a log line or a report.
    pub fn display_value(&self, name: &str, value: &[u8]) -> String {
        match self.attribute(name).map(|d| &d.typ) {
            Some(AttrType::Integer) => match <[u8; 4]>::try_from(value) {
                Ok(b) => {
                    let n = u32::from_be_bytes(b);
                    match self.value_name(name, n) {
                        Some(v) => v.to_string(),
                        None => n.to_string(),
                    }
                }
                Err(_) => format!("0x{}", hex(value)),
            },
            Some(AttrType::IpAddr) => match <[u8; 4]>::try_from(value) {
                Ok(a) => std::net::Ipv4Addr::from(a).to_string(),
                Err(_) => format!("0x{}", hex(value)),
            },
            Some(AttrType::String) => format!("{:?}", Escaped(value)),
            _ => format!("0x{}", hex(value)),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_the_operator_writes_them() {
        let d = Dictionary::embedded();
        // Tunnel-Type with tag 0 (RFC 2868 §3.1): the tag octet is 0, the value 13 (VLAN).
        assert_eq!(d.display_value("Tunnel-Type", &[0, 0, 0, 13]), "VLAN");
        assert_eq!(
            d.display_value("Service-Type", &[0, 0, 0, 10]),
            "Call-Check"
        );
        assert_eq!(
            d.display_value("NAS-IP-Address", &[10, 0, 0, 1]),
            "10.0.0.1"
        );
        assert_eq!(
            d.display_value("Tunnel-Private-Group-Id", b"120"),
            "\"120\""
        );
        assert_eq!(d.display_value("Service-Type", &[1, 2]), "0x0102");
    }
}
