//! Attribute type numbers and size limits used by the server.
//!
//! Types are from RFC 2865 §5 (1-33), RFC 2865 §5.41-5.42 (61), RFC 2868 §3.1-3.6
//! (64, 65, 81), RFC 2869 §5.11 (77), RFC 3579 §3.1-3.2 (79, 80) and RFC 3162 §2.1
//! (95). Microsoft vendor attributes are from RFC 2548 §2.4.2-2.4.3. The limits are
//! from RFC 2865 §3 (packet Length 20..=4096) and §5 (the Length octet of an
//! attribute counts its two header octets, so a value holds at most 253 octets).

/// User-Name (RFC 2865 §5.1).
pub const USER_NAME: u8 = 1;
/// User-Password (RFC 2865 §5.2).
pub const USER_PASSWORD: u8 = 2;
/// CHAP-Password (RFC 2865 §5.3).
pub const CHAP_PASSWORD: u8 = 3;
/// NAS-IP-Address (RFC 2865 §5.4).
pub const NAS_IP_ADDRESS: u8 = 4;
/// NAS-Port (RFC 2865 §5.5).
pub const NAS_PORT: u8 = 5;
/// Service-Type (RFC 2865 §5.6).
pub const SERVICE_TYPE: u8 = 6;
/// Filter-Id (RFC 2865 §5.11).
pub const FILTER_ID: u8 = 11;
/// RFC 2865 §5.8.
pub const FRAMED_IP_ADDRESS: u8 = 8;
/// Framed-MTU (RFC 2865 §5.12).
pub const FRAMED_MTU: u8 = 12;
/// Reply-Message (RFC 2865 §5.18).
pub const REPLY_MESSAGE: u8 = 18;
/// State (RFC 2865 §5.24).
pub const STATE: u8 = 24;
/// Class (RFC 2865 §5.25).
pub const CLASS: u8 = 25;
/// Vendor-Specific (RFC 2865 §5.26).
pub const VENDOR_SPECIFIC: u8 = 26;
/// Session-Timeout (RFC 2865 §5.27).
pub const SESSION_TIMEOUT: u8 = 27;
/// Called-Station-Id (RFC 2865 §5.30).
pub const CALLED_STATION_ID: u8 = 30;
/// Calling-Station-Id (RFC 2865 §5.31).
pub const CALLING_STATION_ID: u8 = 31;
/// NAS-Identifier (RFC 2865 §5.32).
pub const NAS_IDENTIFIER: u8 = 32;
/// Proxy-State (RFC 2865 §5.33).
pub const PROXY_STATE: u8 = 33;
/// NAS-Port-Type (RFC 2865 §5.41).
pub const NAS_PORT_TYPE: u8 = 61;
/// CHAP-Challenge (RFC 2865 §5.40).
pub const CHAP_CHALLENGE: u8 = 60;
/// RFC 2866 §5: accounting attributes.
pub const ACCT_STATUS_TYPE: u8 = 40;
pub const ACCT_DELAY_TIME: u8 = 41;
pub const ACCT_INPUT_OCTETS: u8 = 42;
pub const ACCT_OUTPUT_OCTETS: u8 = 43;
pub const ACCT_SESSION_ID: u8 = 44;
pub const ACCT_SESSION_TIME: u8 = 46;
pub const ACCT_INPUT_PACKETS: u8 = 47;
pub const ACCT_OUTPUT_PACKETS: u8 = 48;
pub const ACCT_TERMINATE_CAUSE: u8 = 49;
pub const ACCT_MULTI_SESSION_ID: u8 = 50;
/// RFC 2869 §5.1, §5.2, §5.3, §5.16.
pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
pub const EVENT_TIMESTAMP: u8 = 55;
pub const ACCT_INTERIM_INTERVAL: u8 = 85;
/// Tunnel-Type (RFC 2868 §3.1).
pub const TUNNEL_TYPE: u8 = 64;
/// Tunnel-Medium-Type (RFC 2868 §3.2).
pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
/// Connect-Info (RFC 2869 §5.11).
pub const CONNECT_INFO: u8 = 77;
/// EAP-Message (RFC 3579 §3.1).
pub const EAP_MESSAGE: u8 = 79;
/// Message-Authenticator (RFC 3579 §3.2).
pub const MESSAGE_AUTHENTICATOR: u8 = 80;
/// Tunnel-Private-Group-ID (RFC 2868 §3.6).
pub const TUNNEL_PRIVATE_GROUP_ID: u8 = 81;
/// NAS-IPv6-Address (RFC 3162 §2.1).
pub const NAS_IPV6_ADDRESS: u8 = 95;

/// Microsoft's SMI Network Management Private Enterprise Code (RFC 2548 §2).
pub const VENDOR_MICROSOFT: u32 = 311;
/// MS-MPPE-Send-Key vendor type (RFC 2548 §2.4.2).
pub const MS_MPPE_SEND_KEY: u8 = 16;
/// MS-MPPE-Recv-Key vendor type (RFC 2548 §2.4.3).
pub const MS_MPPE_RECV_KEY: u8 = 17;

/// Largest packet Length allowed (RFC 2865 §3).
pub const MAX_PACKET_LEN: usize = 4096;
/// Code, Identifier, Length and Authenticator (RFC 2865 §3); also the minimum Length.
pub const HEADER_LEN: usize = 20;
/// Largest attribute value: the Length octet (max 255) counts Type and Length too.
pub const MAX_ATTR_VALUE_LEN: usize = 253;
/// Length of the Message-Authenticator value (RFC 3579 §3.2).
pub const MESSAGE_AUTHENTICATOR_LEN: usize = 16;
