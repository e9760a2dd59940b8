//! `[[client]]`: the NAS devices allowed to talk to us (RFC 2865 §3 shared secrets).

use serde::Deserialize;

use super::values::{Cidr, Secret, SignatureSchemeName, TlsVersion};

/// `require_message_authenticator = true | false | "auto"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequireMessageAuthenticator {
    #[default]
    Yes,
    No,
    Auto,
}

impl<'de> Deserialize<'de> for RequireMessageAuthenticator {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Self::Yes),
            Raw::Bool(false) => Ok(Self::No),
            Raw::Text(t) => match t.to_ascii_lowercase().as_str() {
                "auto" => Ok(Self::Auto),
                "true" | "yes" => Ok(Self::Yes),
                "false" | "no" => Ok(Self::No),
                other => Err(serde::de::Error::custom(format!(
                    "expected true, false or \"auto\", found {other:?}"
                ))),
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// A name for logs ("ap-floor3").
    pub name: String,
    /// An IP address or a CIDR prefix ("10.1.0.0/16", "::1").
    pub address: Cidr,
    /// Required for `udp` and `tcp`; for `tls` it defaults to "radsec" (RFC 6614 §2.3).
    #[serde(default = "unset_secret")]
    pub secret: Secret,
    /// How this NAS reaches us: `"udp"` (default), `"tcp"` (RFC 6613) or `"tls"` (RFC 6614).
    #[serde(default)]
    pub transport: Transport,
    /// For `tls`: a SAN DNS name or the CN the NAS certificate must carry.
    #[serde(default)]
    pub certificate_name: Option<String>,
    #[serde(default)]
    pub require_message_authenticator: RequireMessageAuthenticator,
    /// Conversations in progress from this NAS at once (0: only the global `eap.max_sessions`).
    #[serde(default = "default_client_max_sessions")]
    pub max_sessions: usize,
    /// UDP port where this NAS takes Disconnect-Requests (RFC 5176 §3.1; 3799 is the IANA port).
    #[serde(default = "default_coa_port")]
    pub coa_port: u16,
    /// EAP-TLS versions for supplicants behind this NAS, overriding `[tls]` (e.g. "1.2" as the
    /// maximum for a building whose access points or supplicants break on TLS 1.3).
    #[serde(default)]
    pub tls_min_version: Option<TlsVersion>,
    #[serde(default)]
    pub tls_max_version: Option<TlsVersion>,
    /// The client signature schemes for supplicants behind this NAS, overriding
    /// `tls.client_signature_schemes` (e.g. `["rsa_pkcs1_sha256"]` with `tls_max_version =
    /// "1.2"` for TPM-held keys that cannot make TLS 1.3's RSA-PSS signatures).
    #[serde(default)]
    pub client_signature_schemes: Option<Vec<SignatureSchemeName>>,
}

impl ClientConfig {
    /// This NAS's (minimum, maximum) EAP-TLS versions when they differ from `[tls]`'s.
    pub fn tls_versions(
        &self,
        tls_min: TlsVersion,
        tls_max: TlsVersion,
    ) -> Option<(TlsVersion, TlsVersion)> {
        let range = (
            self.tls_min_version.unwrap_or(tls_min),
            self.tls_max_version.unwrap_or(tls_max),
        );
        (range != (tls_min, tls_max)).then_some(range)
    }
}

fn default_coa_port() -> u16 {
    3799
}

/// `[[client]] transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

/// An empty secret stands for "not configured": validation fills in "radsec" for `tls` clients
/// and refuses it for the others.
fn unset_secret() -> Secret {
    Secret::new("")
}

fn default_client_max_sessions() -> usize {
    16384
}
