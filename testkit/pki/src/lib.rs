//! Test PKI generator: the files `certradius test-pki DIR` writes and that the server creates on first
//! start when its default certificate files are missing.
//!
//! Everything here is for testing and development only; the README written next to the files says so.
//!
//! Standards followed:
//! - RFC 5280 §4.1.2.2 (serial numbers: positive, at most 20 octets; we use 16 random octets),
//!   §4.1.2.5 (validity), §4.2.1.1/§4.2.1.2 (authority/subject key identifiers), §4.2.1.3 (key usage),
//!   §4.2.1.6 (subjectAltName: rfc822Name, dNSName, otherName), §4.2.1.9 (basic constraints and
//!   pathLenConstraint), §4.2.1.12 (extended key usage: id-kp-serverAuth, id-kp-clientAuth,
//!   id-kp-OCSPSigning), §5 (CRLs: version 2 with authorityKeyIdentifier and cRLNumber, §5.3.1 reasonCode).
//! - RFC 6960 §4.2.2.2 (delegated OCSP responder certificate issued by the CA, carrying id-kp-OCSPSigning)
//!   and §4.2.2.2.1 (id-pkix-ocsp-nocheck, so clients need not check the responder's own status).
//! - RFC 5216 §5.3 / RFC 9190 (EAP-TLS peer and server certificates, chains sent leaf first), RFC 8446
//!   §4.4.2 (certificate_list: the sender's certificate first, each following one certifying the one before).
//! - RFC 5958 (PKCS#8 "PRIVATE KEY" for every key file) and RFC 7468 (PEM labels).
//! - The Microsoft UPN otherName (OID 1.3.6.1.4.1.311.20.2.3, UTF8String) used by Windows machine and user
//!   certificates, so the authorization code can be tested against it.

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, RevocationReason, RevokedCertParams, SanType,
    SerialNumber,
};
use rsa::pkcs8::EncodePrivateKey;
use time::{Duration, OffsetDateTime};

/// Organisation (O) of every subject DN in the test PKI.
pub const ORGANIZATION: &str = "certradius test";
/// Common name of the trusted test root.
pub const ROOT_CN: &str = "certradius Test Root CA";
/// Common name of the intermediate that issues the client certificates.
pub const INTERMEDIATE_CN: &str = "certradius Test Intermediate CA";
/// Common name of the CA below the intermediate, used only by `client-longchain`.
pub const SUB_INTERMEDIATE_CN: &str = "certradius Test Sub-Intermediate CA";
/// Common name of the separate, untrusted root.
pub const UNTRUSTED_CN: &str = "certradius Untrusted CA";
/// Common name and DNS subjectAltName of both server certificates.
pub const SERVER_NAME: &str = "radius.certradius.test";
/// Common name of the delegated OCSP responder certificate.
pub const OCSP_CN: &str = "certradius Test OCSP Responder";
/// The UPN carried in `client-upn`'s otherName subjectAltName.
pub const CLIENT_UPN: &str = "carol@certradius.test";
/// Microsoft User Principal Name otherName type (szOID_NT_PRINCIPAL_NAME).
pub const UPN_OID: [u64; 10] = [1, 3, 6, 1, 4, 1, 311, 20, 2, 3];

/// The client certificate names (`client-NAME.pem` / `client-NAME.key`) that `generate` writes.
pub const CLIENT_NAMES: [&str; 11] = [
    "rsa",
    "ecdsa",
    "untrusted",
    "revoked",
    "expired",
    "notyetvalid",
    "noeku",
    "machine",
    "upn",
    "longchain",
    "visitor",
];

/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
const OCSP_NOCHECK_OID: [u64; 10] = [1, 3, 6, 1, 5, 5, 7, 48, 1, 5];
/// Its value is ASN.1 NULL.
const DER_NULL: [u8; 2] = [0x05, 0x00];

/// Lifetimes, in days. CAs outlive the leaves they sign so nothing expires inside a chain.
const ROOT_DAYS: i64 = 3650;
const INTERMEDIATE_DAYS: i64 = 1825;
const LEAF_DAYS: i64 = 825;
const CRL_DAYS: i64 = 30;

/// Where the files of a test PKI live. Every method only builds a path; nothing touches the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiPaths {
    /// The directory holding every file.
    pub dir: PathBuf,
}

impl PkiPaths {
    /// Paths inside `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `ca.pem`: the trusted root certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.file("ca.pem")
    }
    /// `ca.key`: the root's private key (to sign CRLs or more certificates later).
    pub fn ca_key(&self) -> PathBuf {
        self.file("ca.key")
    }
    /// `ca.crl.pem`: the root's (empty) CRL.
    pub fn ca_crl(&self) -> PathBuf {
        self.file("ca.crl.pem")
    }
    /// `intermediate.pem`: the intermediate CA certificate (signed by the root).
    pub fn intermediate_cert(&self) -> PathBuf {
        self.file("intermediate.pem")
    }
    /// `intermediate.key`.
    pub fn intermediate_key(&self) -> PathBuf {
        self.file("intermediate.key")
    }
    /// `ca-revoking-intermediate.crl.pem`: a root CRL that revokes the intermediate itself
    /// (tests put it in place of `ca.crl.pem` to revoke everything the intermediate issued).
    pub fn ca_crl_revoking_intermediate(&self) -> PathBuf {
        self.file("ca-revoking-intermediate.crl.pem")
    }
    /// `intermediate.crl.pem`: the intermediate's CRL, revoking `client-revoked`.
    pub fn crl(&self) -> PathBuf {
        self.file("intermediate.crl.pem")
    }
    /// `sub-intermediate.pem`: the CA below the intermediate.
    pub fn sub_intermediate_cert(&self) -> PathBuf {
        self.file("sub-intermediate.pem")
    }
    /// `sub-intermediate.key`.
    pub fn sub_intermediate_key(&self) -> PathBuf {
        self.file("sub-intermediate.key")
    }
    /// `intermediate-empty.crl.pem`: a newer-looking intermediate CRL that revokes nothing
    /// (tests swap it with `intermediate.crl.pem` to prove a CRL change takes effect live).
    pub fn crl_empty(&self) -> PathBuf {
        self.file("intermediate-empty.crl.pem")
    }

    /// `intermediate-expired.crl.pem`: an intermediate CRL whose nextUpdate has passed.
    pub fn crl_expired(&self) -> PathBuf {
        self.file("intermediate-expired.crl.pem")
    }

    /// `sub-intermediate.crl.pem`: the sub-intermediate's (empty) CRL.
    pub fn sub_intermediate_crl(&self) -> PathBuf {
        self.file("sub-intermediate.crl.pem")
    }
    /// Every CRL, one per issuing CA of the trusted hierarchy, for a whole-chain revocation check.
    pub fn crls(&self) -> Vec<PathBuf> {
        vec![self.ca_crl(), self.crl(), self.sub_intermediate_crl()]
    }
    /// `untrusted-ca.pem`: a root that nothing trusts.
    pub fn untrusted_ca_cert(&self) -> PathBuf {
        self.file("untrusted-ca.pem")
    }
    /// `untrusted-ca.key`.
    pub fn untrusted_ca_key(&self) -> PathBuf {
        self.file("untrusted-ca.key")
    }
    /// `server.pem`: the ECDSA P-256 server certificate (leaf only, signed by the root).
    pub fn server_cert(&self) -> PathBuf {
        self.file("server.pem")
    }
    /// `server.key`.
    pub fn server_key(&self) -> PathBuf {
        self.file("server.key")
    }
    /// `server-rsa.pem`: the RSA-2048 server certificate (leaf only, signed by the root).
    pub fn server_rsa_cert(&self) -> PathBuf {
        self.file("server-rsa.pem")
    }
    /// `server-rsa.key`.
    pub fn server_rsa_key(&self) -> PathBuf {
        self.file("server-rsa.key")
    }
    /// `client-NAME.pem` (leaf then its issuing chain, without the root); NAME is one of [`CLIENT_NAMES`].
    pub fn client_cert(&self, name: &str) -> PathBuf {
        self.file(&format!("client-{name}.pem"))
    }
    /// `client-NAME.key`; NAME is one of [`CLIENT_NAMES`].
    pub fn client_key(&self, name: &str) -> PathBuf {
        self.file(&format!("client-{name}.key"))
    }
    /// `ocsp.pem`: the delegated OCSP responder certificate (leaf then intermediate).
    pub fn ocsp_cert(&self) -> PathBuf {
        self.file("ocsp.pem")
    }
    /// `ocsp.key`.
    pub fn ocsp_key(&self) -> PathBuf {
        self.file("ocsp.key")
    }
    /// `ocsp-index.txt`: `openssl ca` database of what the intermediate issued, for `openssl ocsp -index`.
    pub fn ocsp_index(&self) -> PathBuf {
        self.file("ocsp-index.txt")
    }
    /// `README.md`.
    pub fn readme(&self) -> PathBuf {
        self.file("README.md")
    }
}

/// Why the test PKI could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Creating the directory or writing a file failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The directory or file concerned.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Key generation, certificate or CRL signing failed.
    #[error("cannot generate the test PKI: {0}")]
    Generate(String),
}

/// True when the files the default configuration needs (`ca.pem`, `server.pem`, `server.key`) all exist.
pub fn exists(dir: &Path) -> bool {
    let paths = PkiPaths::new(dir);
    [paths.ca_cert(), paths.server_cert(), paths.server_key()]
        .iter()
        .all(|p| p.is_file())
}

/// Creates `dir` (and parents) and writes the whole test PKI into it, replacing files of the same names.
///
/// Returns the written paths in a fixed order. Everything is built in memory first, so a failure during
/// generation leaves the directory untouched. Private keys are written with mode 0600.
pub fn generate(dir: &Path) -> Result<Vec<PathBuf>, PkiError> {
    // Fail fast (before the slow RSA key generation) if the directory cannot be created.
    fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let files = build(&PkiPaths::new(dir))?;
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        write_file(&file.path, &file.contents, file.secret)?;
        written.push(file.path);
    }
    Ok(written)
}

/// One file to write.
struct OutFile {
    path: PathBuf,
    contents: String,
    /// Private key material: written 0600.
    secret: bool,
}

impl OutFile {
    fn public(path: PathBuf, contents: String) -> Self {
        Self {
            path,
            contents,
            secret: false,
        }
    }

    fn secret(path: PathBuf, contents: String) -> Self {
        Self {
            path,
            contents,
            secret: true,
        }
    }
}

/// When a certificate is valid, relative to generation time.
#[derive(Clone, Copy)]
enum Window {
    /// From a day ago (tolerating clock skew between the machines of a test) for this many days.
    Current(i64),
    /// Entirely in the past.
    Expired,
    /// Entirely in the future.
    NotYetValid,
}

impl Window {
    fn bounds(self, now: OffsetDateTime) -> Result<(OffsetDateTime, OffsetDateTime), PkiError> {
        let (from, to) = match self {
            Self::Current(days) => (-1, days),
            Self::Expired => (-400, -30),
            Self::NotYetValid => (30, 400),
        };
        Ok((days_from(now, from)?, days_from(now, to)?))
    }
}

/// A line of the `openssl ca` database (`index.txt`) that `openssl ocsp -index` answers from.
struct IndexEntry {
    serial: SerialNumber,
    not_after: OffsetDateTime,
    subject: String,
    revoked: Option<OffsetDateTime>,
}

/// A CA: its certificate, key and identity as an issuer.
type Ca = CertifiedIssuer<'static, KeyPair>;

/// A signed end-entity certificate, ready to write.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    entry: IndexEntry,
}

/// What an end-entity certificate contains.
struct LeafSpec {
    cn: &'static str,
    sans: Vec<SanType>,
    ekus: Vec<ExtendedKeyUsagePurpose>,
    window: Window,
    extensions: Vec<CustomExtension>,
}

impl LeafSpec {
    fn new(cn: &'static str, ekus: Vec<ExtendedKeyUsagePurpose>) -> Self {
        Self {
            cn,
            sans: Vec::new(),
            ekus,
            window: Window::Current(LEAF_DAYS),
            extensions: Vec::new(),
        }
    }

    fn client(cn: &'static str) -> Self {
        Self::new(cn, vec![ExtendedKeyUsagePurpose::ClientAuth])
    }

    fn san(mut self, san: SanType) -> Self {
        self.sans.push(san);
        self
    }

    fn email(self, address: &str) -> Result<Self, PkiError> {
        let name = address.try_into().map_err(generate_error("rfc822Name"))?;
        Ok(self.san(SanType::Rfc822Name(name)))
    }

    fn dns(self, host: &str) -> Result<Self, PkiError> {
        let name = host.try_into().map_err(generate_error("dNSName"))?;
        Ok(self.san(SanType::DnsName(name)))
    }

    fn window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }
}

fn generate_error<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> PkiError + '_ {
    move |e| PkiError::Generate(format!("{what}: {e}"))
}

/// `now` moved by `days`, refusing to overflow.
fn days_from(now: OffsetDateTime, days: i64) -> Result<OffsetDateTime, PkiError> {
    now.checked_add(Duration::days(days))
        .ok_or_else(|| PkiError::Generate(format!("date overflow adding {days} days")))
}

/// A positive 16-octet random serial (RFC 5280 §4.1.2.2). The top bit is cleared so the INTEGER is
/// positive, the next one set so its DER encoding is exactly 16 octets with no leading zero.
fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(generate_error("random serial number"))?;
    if let Some(first) = bytes.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

fn ecdsa_key() -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generate_error("ECDSA P-256 key"))
}

/// ring cannot generate RSA keys, so the `rsa` crate does and ring loads the PKCS#8 result; rcgen then
/// signs with sha256WithRSAEncryption.
fn rsa_key() -> Result<KeyPair, PkiError> {
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048)
        .map_err(generate_error("RSA-2048 key"))?;
    let pkcs8 = key
        .to_pkcs8_der()
        .map_err(generate_error("RSA PKCS#8 encoding"))?;
    KeyPair::try_from(pkcs8.as_bytes()).map_err(generate_error("RSA key import"))
}

/// Subject DN: O then CN, and its `openssl x509 -subject` one-line form for the index.
fn subject(cn: &str) -> (DistinguishedName, String) {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, cn);
    (dn, format!("/O={ORGANIZATION}/CN={cn}"))
}

/// A CA certificate: self-signed when `issuer` is `None`. `path_len` limits how many CAs may follow it
/// (RFC 5280 §4.2.1.9); CAs sign certificates and CRLs only.
fn ca(
    cn: &str,
    path_len: Option<u8>,
    days: i64,
    now: OffsetDateTime,
    issuer: Option<&Ca>,
) -> Result<(Ca, IndexEntry), PkiError> {
    let (dn, line) = subject(cn);
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    let serial = random_serial()?;
    params.serial_number = Some(serial.clone());
    (params.not_before, params.not_after) = Window::Current(days).bounds(now)?;
    params.is_ca = IsCa::Ca(path_len.map_or(
        BasicConstraints::Unconstrained,
        BasicConstraints::Constrained,
    ));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // A self-signed root is its own authority; RFC 5280 §4.2.1.1 lets it omit the AKI.
    params.use_authority_key_identifier_extension = issuer.is_some();
    let entry = IndexEntry {
        serial,
        not_after: params.not_after,
        subject: line,
        revoked: None,
    };
    let key = ecdsa_key()?;
    let ca = match issuer {
        None => CertifiedIssuer::self_signed(params, key),
        Some(issuer) => CertifiedIssuer::signed_by(params, key, issuer),
    }
    .map_err(generate_error(cn))?;
    Ok((ca, entry))
}

/// An end-entity certificate for `key`, signed by `issuer`.
fn leaf(spec: LeafSpec, key: KeyPair, issuer: &Ca, now: OffsetDateTime) -> Result<Leaf, PkiError> {
    let (dn, line) = subject(spec.cn);
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    let serial = random_serial()?;
    params.serial_number = Some(serial.clone());
    (params.not_before, params.not_after) = spec.window.bounds(now)?;
    params.subject_alt_names = spec.sans;
    params.is_ca = IsCa::ExplicitNoCa;
    // RSA keys may also be used for TLS 1.2 RSA key transport; ECDSA keys only sign.
    params.key_usages = if key.is_compatible(&rcgen::PKCS_RSA_SHA256) {
        vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    params.extended_key_usages = spec.ekus;
    params.custom_extensions = spec.extensions;
    params.use_authority_key_identifier_extension = true;
    let entry = IndexEntry {
        serial,
        not_after: params.not_after,
        subject: line,
        revoked: None,
    };
    let cert = params
        .signed_by(&key, issuer)
        .map_err(generate_error(spec.cn))?;
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        entry,
    })
}

/// A version 2 CRL from `issuer` revoking `revoked` (key compromise), valid for [`CRL_DAYS`].
fn crl(issuer: &Ca, revoked: &[&IndexEntry], now: OffsetDateTime) -> Result<String, PkiError> {
    crl_between(issuer, revoked, now, days_from(now, CRL_DAYS)?)
}

/// A CRL with explicit thisUpdate and nextUpdate.
fn crl_between(
    issuer: &Ca,
    revoked: &[&IndexEntry],
    now: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Result<String, PkiError> {
    let revoked_certs = revoked
        .iter()
        .map(|entry| RevokedCertParams {
            serial_number: entry.serial.clone(),
            revocation_time: entry.revoked.unwrap_or(now),
            reason_code: Some(RevocationReason::KeyCompromise),
            invalidity_date: None,
        })
        .collect();
    let params = CertificateRevocationListParams {
        this_update: now.min(next_update - time::Duration::days(1)),
        next_update,
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs,
        // Must match how rcgen derived the issuer's subject key identifier, so AKI and SKI agree.
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(issuer)
        .and_then(|crl| crl.pem())
        .map_err(generate_error("CRL"))
}

/// `openssl ca` database time: UTCTime form (YYMMDDHHMMSSZ) before 2050, GeneralizedTime after,
/// as in RFC 5280 §4.1.2.5.
fn index_time(t: OffsetDateTime) -> String {
    let year = t.year();
    let year = if (1950..2050).contains(&year) {
        format!("{:02}", year.rem_euclid(100))
    } else {
        format!("{year:04}")
    };
    format!(
        "{year}{:02}{:02}{:02}{:02}{:02}Z",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The `openssl ca` index: tab-separated status, expiry, revocation time[,reason], serial in upper-case
/// hex, file name (`unknown`) and subject.
fn ocsp_index(entries: &[&IndexEntry]) -> String {
    entries
        .iter()
        .map(|entry| {
            let serial: String = entry
                .serial
                .as_ref()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect();
            let (status, revoked) = match entry.revoked {
                Some(at) => ("R", format!("{},keyCompromise", index_time(at))),
                None => ("V", String::new()),
            };
            format!(
                "{status}\t{}\t{revoked}\t{serial}\tunknown\t{}\n",
                index_time(entry.not_after),
                entry.subject
            )
        })
        .collect()
}

/// Which CA signs a client certificate, and so which chain its file carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientIssuer {
    Intermediate,
    SubIntermediate,
    Untrusted,
}

/// Builds every file in memory, in the order `generate` reports them.
fn build(paths: &PkiPaths) -> Result<Vec<OutFile>, PkiError> {
    use ClientIssuer::{Intermediate, SubIntermediate, Untrusted};
    use ExtendedKeyUsagePurpose::{OcspSigning, ServerAuth};

    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .map_err(generate_error("current time"))?;

    // The hierarchy. The intermediate allows one more CA below it so the sub-intermediate of
    // client-longchain is a valid path (RFC 5280 §6.1.4 (l), (m)); the sub-intermediate allows none.
    let (root, _) = ca(ROOT_CN, None, ROOT_DAYS, now, None)?;
    let (intermediate, intermediate_entry) = ca(
        INTERMEDIATE_CN,
        Some(1),
        INTERMEDIATE_DAYS,
        now,
        Some(&root),
    )?;
    let (sub, sub_entry) = ca(
        SUB_INTERMEDIATE_CN,
        Some(0),
        INTERMEDIATE_DAYS,
        now,
        Some(&intermediate),
    )?;
    let (untrusted, _) = ca(UNTRUSTED_CN, None, ROOT_DAYS, now, None)?;
    let issuer_of = |which: ClientIssuer| match which {
        Intermediate => &intermediate,
        SubIntermediate => &sub,
        Untrusted => &untrusted,
    };
    // A peer presents its leaf then the CAs above it, excluding the trust anchor (RFC 8446 §4.4.2).
    let chain_of = |which: ClientIssuer| match which {
        Intermediate => intermediate.pem(),
        SubIntermediate => format!("{}{}", sub.pem(), intermediate.pem()),
        Untrusted => String::new(),
    };

    // Servers are signed by the root itself so a supplicant configured with only ca.pem needs no chain.
    let server_spec = || LeafSpec::new(SERVER_NAME, vec![ServerAuth]).dns(SERVER_NAME);
    let server = leaf(server_spec()?, ecdsa_key()?, &root, now)?;
    let server_rsa = leaf(server_spec()?, rsa_key()?, &root, now)?;

    // Clients, in CLIENT_NAMES order. Only client-rsa has an RSA key.
    let upn = SanType::OtherName((UPN_OID.to_vec(), CLIENT_UPN.into()));
    let specs = [
        (
            "rsa",
            Intermediate,
            LeafSpec::client("alice@certradius.test").email("alice@certradius.test")?,
        ),
        (
            "ecdsa",
            Intermediate,
            LeafSpec::client("bob@certradius.test").email("bob@certradius.test")?,
        ),
        (
            "untrusted",
            Untrusted,
            LeafSpec::client("mallory@certradius.test"),
        ),
        (
            "revoked",
            Intermediate,
            LeafSpec::client("revoked@certradius.test"),
        ),
        (
            "expired",
            Intermediate,
            LeafSpec::client("expired@certradius.test").window(Window::Expired),
        ),
        (
            "notyetvalid",
            Intermediate,
            LeafSpec::client("notyetvalid@certradius.test").window(Window::NotYetValid),
        ),
        (
            "noeku",
            Intermediate,
            LeafSpec::new("noeku@certradius.test", vec![ServerAuth]),
        ),
        (
            "machine",
            Intermediate,
            LeafSpec::client("host/laptop42.certradius.test").dns("laptop42.certradius.test")?,
        ),
        ("upn", Intermediate, LeafSpec::client(CLIENT_UPN).san(upn)),
        (
            "longchain",
            SubIntermediate,
            LeafSpec::client("longchain@certradius.test"),
        ),
        (
            "visitor",
            Intermediate,
            LeafSpec::client("visitor@partner.example"),
        ),
    ];
    let mut rsa = Some(rsa_key()?);
    let mut clients = Vec::with_capacity(specs.len());
    for (name, which, spec) in specs {
        let key = match rsa.take_if(|_| name == "rsa") {
            Some(key) => key,
            None => ecdsa_key()?,
        };
        let mut client = leaf(spec, key, issuer_of(which), now)?;
        if name == "revoked" {
            client.entry.revoked = Some(now);
        }
        clients.push((name, which, client));
    }

    // Delegated OCSP responder for the intermediate (RFC 6960 §4.2.2.2), exempt from status checks.
    let ocsp = leaf(
        LeafSpec {
            extensions: vec![CustomExtension::from_oid_content(
                &OCSP_NOCHECK_OID,
                DER_NULL.to_vec(),
            )],
            ..LeafSpec::new(OCSP_CN, vec![OcspSigning])
        },
        ecdsa_key()?,
        &intermediate,
        now,
    )?;

    // Everything the intermediate issued, for its CRL and its OCSP database.
    let by_intermediate: Vec<&IndexEntry> = std::iter::once(&sub_entry)
        .chain(
            clients
                .iter()
                .filter(|(_, which, _)| *which == Intermediate)
                .map(|(_, _, client)| &client.entry),
        )
        .chain(std::iter::once(&ocsp.entry))
        .collect();
    let revoked: Vec<&IndexEntry> = by_intermediate
        .iter()
        .copied()
        .filter(|entry| entry.revoked.is_some())
        .collect();
    let intermediate_crl = crl(&intermediate, &revoked, now)?;
    let index = ocsp_index(&by_intermediate);

    let mut out = vec![
        OutFile::public(paths.ca_cert(), root.pem()),
        OutFile::secret(paths.ca_key(), root.key().serialize_pem()),
        OutFile::public(paths.ca_crl(), crl(&root, &[], now)?),
        OutFile::public(
            paths.ca_crl_revoking_intermediate(),
            crl(&root, &[&intermediate_entry], now)?,
        ),
        OutFile::public(paths.intermediate_cert(), intermediate.pem()),
        OutFile::secret(paths.intermediate_key(), intermediate.key().serialize_pem()),
        OutFile::public(paths.crl(), intermediate_crl),
        OutFile::public(paths.crl_empty(), crl(&intermediate, &[], now)?),
        OutFile::public(
            paths.crl_expired(),
            crl_between(&intermediate, &revoked, now, days_from(now, -1)?)?,
        ),
        OutFile::public(paths.sub_intermediate_cert(), sub.pem()),
        OutFile::secret(paths.sub_intermediate_key(), sub.key().serialize_pem()),
        OutFile::public(paths.sub_intermediate_crl(), crl(&sub, &[], now)?),
        OutFile::public(paths.untrusted_ca_cert(), untrusted.pem()),
        OutFile::secret(paths.untrusted_ca_key(), untrusted.key().serialize_pem()),
        OutFile::public(paths.server_cert(), server.cert_pem),
        OutFile::secret(paths.server_key(), server.key_pem),
        OutFile::public(paths.server_rsa_cert(), server_rsa.cert_pem),
        OutFile::secret(paths.server_rsa_key(), server_rsa.key_pem),
    ];
    for (name, which, client) in clients {
        out.push(OutFile::public(
            paths.client_cert(name),
            format!("{}{}", client.cert_pem, chain_of(which)),
        ));
        out.push(OutFile::secret(paths.client_key(name), client.key_pem));
    }
    out.push(OutFile::public(
        paths.ocsp_cert(),
        format!("{}{}", ocsp.cert_pem, chain_of(Intermediate)),
    ));
    out.push(OutFile::secret(paths.ocsp_key(), ocsp.key_pem));
    out.push(OutFile::public(paths.ocsp_index(), index));
    out.push(OutFile::public(paths.readme(), README.to_owned()));
    Ok(out)
}

/// Writes one file, replacing any old one. Keys get mode 0600 at creation, and again explicitly in case
/// the file already existed with a wider mode (`mode` only applies to newly created files); both happen
/// before any key material is written.
fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), PkiError> {
    let io_error = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error)?;
    if secret {
        file.set_permissions(Permissions::from_mode(0o600))
            .map_err(io_error)?;
    }
    file.write_all(contents.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

const README: &str = "\
# certradius test PKI

**This is a TEST PKI. Never use it in production.** Every private key is in this directory, and anyone
who has a copy of it can impersonate the server or any client.

Regenerate it (new keys, new serial numbers, same structure) with:

    certradius test-pki DIR

The server also creates it in its default location on first start when `ca.pem`, `server.pem` or
`server.key` is missing. Private keys (`*.key`, PKCS#8 PEM) are written with mode 0600. Certificates
are PEM; a client or OCSP certificate file holds the leaf followed by the intermediate CA(s) that
issued it (never the root), which is the chain a peer presents in TLS.

Unless noted, keys are ECDSA P-256 and subjects are `O=certradius test, CN=...`.

## Certificate authorities

| File | What |
| --- | --- |
| `ca.pem`, `ca.key` | Root CA \"certradius Test Root CA\", 10 years. The trust anchor for servers and supplicants. |
| `ca.crl.pem` | CRL of the root (revokes nothing), valid 30 days. |
| `intermediate.pem`, `intermediate.key` | \"certradius Test Intermediate CA\", signed by the root, pathlen 1. Issues the clients. |
| `intermediate.crl.pem` | CRL of the intermediate, revoking `client-revoked`, valid 30 days. |
| `sub-intermediate.pem`, `sub-intermediate.key` | \"certradius Test Sub-Intermediate CA\", signed by the intermediate, pathlen 0. |
| `intermediate-empty.crl.pem` | CRL of the intermediate revoking nothing (for live-reload tests). |
| `intermediate-expired.crl.pem` | CRL of the intermediate whose nextUpdate was yesterday. |
| `sub-intermediate.crl.pem` | CRL of the sub-intermediate (revokes nothing), valid 30 days. |
| `untrusted-ca.pem`, `untrusted-ca.key` | \"certradius Untrusted CA\", a separate root nothing trusts. |

With `ca.crl.pem`, `intermediate.crl.pem` and `sub-intermediate.crl.pem` every issuer in the trusted
hierarchy has a CRL, so a whole-chain revocation check can succeed.

## Server

| File | What |
| --- | --- |
| `server.pem`, `server.key` | CN and DNS name `radius.certradius.test`, serverAuth, signed directly by the root (leaf only). |
| `server-rsa.pem`, `server-rsa.key` | The same with an RSA-2048 key, for benchmarks. |

## Clients (all clientAuth unless noted)

| File | Issuer | What |
| --- | --- | --- |
| `client-rsa.pem`, `.key` | intermediate | RSA-2048, CN and email `alice@certradius.test`. |
| `client-ecdsa.pem`, `.key` | intermediate | CN and email `bob@certradius.test`. |
| `client-untrusted.pem`, `.key` | untrusted CA | CN `mallory@certradius.test`; must be rejected. |
| `client-revoked.pem`, `.key` | intermediate | CN `revoked@certradius.test`; revoked in `intermediate.crl.pem` and `ocsp-index.txt`. |
| `client-expired.pem`, `.key` | intermediate | Validity entirely in the past. |
| `client-notyetvalid.pem`, `.key` | intermediate | Validity entirely in the future. |
| `client-noeku.pem`, `.key` | intermediate | EKU serverAuth only (no clientAuth); must be rejected. |
| `client-machine.pem`, `.key` | intermediate | CN `host/laptop42.certradius.test`, DNS name `laptop42.certradius.test`. |
| `client-visitor.pem`, `.key` | intermediate | CN `visitor@partner.example`: valid, but outside the example's `*@certradius.test` rules. |
| `client-upn.pem`, `.key` | intermediate | CN and UPN otherName (1.3.6.1.4.1.311.20.2.3) `carol@certradius.test`. |
| `client-longchain.pem`, `.key` | sub-intermediate | Root, intermediate, sub-intermediate, leaf; the file holds leaf, sub-intermediate, intermediate. |

## OCSP

| File | What |
| --- | --- |
| `ocsp.pem`, `ocsp.key` | Delegated responder \"certradius Test OCSP Responder\" for the intermediate: OCSPSigning, ocsp-nocheck. |
| `ocsp-index.txt` | `openssl ca` database of everything the intermediate issued (the revoked client marked `R`). |

Serve OCSP for the intermediate's certificates with, for example:

    openssl ocsp -index ocsp-index.txt -port 127.0.0.1:8888 -rsigner ocsp.pem -rkey ocsp.key -CA intermediate.pem

Check a chain by hand with:

    openssl verify -CAfile ca.pem -untrusted intermediate.pem client-ecdsa.pem
";

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests may read the clock
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use rcgen::PublicKeyData;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{
        CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
    };
    use rustls::{CertificateError, RootCertStore};
    use x509_parser::certificate::X509Certificate;
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::FromDer;
    use x509_parser::revocation_list::CertificateRevocationList;

    use super::*;

    fn read(path: &Path) -> Vec<u8> {
        fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Every certificate in a PEM file, in file order.
    fn chain(path: &Path) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(&read(path))
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn parse<'a>(der: &'a CertificateDer<'_>) -> X509Certificate<'a> {
        let (rest, cert) = X509Certificate::from_der(der).unwrap();
        assert!(rest.is_empty());
        cert
    }

    fn cn(name: &x509_parser::x509::X509Name<'_>) -> String {
        name.iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn org(name: &x509_parser::x509::X509Name<'_>) -> String {
        name.iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
        let Some(ext) = cert.subject_alternative_name().unwrap() else {
            return Vec::new();
        };
        ext.value
            .general_names
            .iter()
            .map(|name| match name {
                GeneralName::RFC822Name(v) => format!("email:{v}"),
                GeneralName::DNSName(v) => format!("dns:{v}"),
                GeneralName::OtherName(oid, value) => format!("other:{oid}:{}", hex(value)),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn ekus(cert: &X509Certificate<'_>) -> (bool, bool, bool) {
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        (eku.server_auth, eku.client_auth, eku.ocsp_signing)
    }

    fn ca_path_len(cert: &X509Certificate<'_>) -> Option<Option<u32>> {
        let bc = cert.basic_constraints().unwrap().unwrap().value;
        bc.ca.then_some(bc.path_len_constraint)
    }

    fn crl_der(path: &Path) -> CertificateRevocationListDer<'static> {
        CertificateRevocationListDer::from_pem_slice(&read(path)).unwrap()
    }

    /// Checks that `path` holds a PKCS#8 key matching the first certificate of `cert_path`, mode 0600.
    fn check_key(key_path: &Path, cert_path: &Path) {
        let mode = fs::metadata(key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key_path.display());
        let pem = String::from_utf8(read(key_path)).unwrap();
        assert!(
            pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{}",
            key_path.display()
        );
        let PrivateKeyDer::Pkcs8(der) = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
        else {
            panic!("{} is not PKCS#8", key_path.display());
        };
        let key = KeyPair::try_from(der.secret_pkcs8_der()).unwrap();
        let certs = chain(cert_path);
        let leaf = parse(&certs[0]);
        assert_eq!(
            key.subject_public_key_info(),
            leaf.public_key().raw,
            "{} does not match {}",
            key_path.display(),
            cert_path.display()
        );
    }

    fn generate_in_temp() -> (tempfile::TempDir, PkiPaths) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested").join("pki");
        let written = generate(&dir).unwrap();
        let paths = PkiPaths::new(&dir);
        // Every reported file exists, nothing is reported twice, and nothing unreported was written.
        let reported: HashSet<PathBuf> = written.iter().cloned().collect();
        assert_eq!(reported.len(), written.len());
        let on_disk: HashSet<PathBuf> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(reported, on_disk);
        (tmp, paths)
    }

    #[test]
    fn writes_every_documented_file_with_keys_0600() {
        let (_tmp, p) = generate_in_temp();
        let mut expected = vec![
            p.ca_cert(),
            p.ca_key(),
            p.ca_crl(),
            p.intermediate_cert(),
            p.intermediate_key(),
            p.crl(),
            p.sub_intermediate_cert(),
            p.sub_intermediate_key(),
            p.sub_intermediate_crl(),
            p.untrusted_ca_cert(),
            p.untrusted_ca_key(),
            p.server_cert(),
            p.server_key(),
            p.server_rsa_cert(),
            p.server_rsa_key(),
        ];
        for name in CLIENT_NAMES {
            expected.push(p.client_cert(name));
            expected.push(p.client_key(name));
        }
        expected.extend([p.ocsp_cert(), p.ocsp_key(), p.ocsp_index(), p.readme()]);
        for path in &expected {
            assert!(path.is_file(), "{}", path.display());
        }
        assert!(exists(&p.dir));

        for (key, cert) in [
            (p.ca_key(), p.ca_cert()),
            (p.intermediate_key(), p.intermediate_cert()),
            (p.sub_intermediate_key(), p.sub_intermediate_cert()),
            (p.untrusted_ca_key(), p.untrusted_ca_cert()),
            (p.server_key(), p.server_cert()),
            (p.server_rsa_key(), p.server_rsa_cert()),
            (p.ocsp_key(), p.ocsp_cert()),
        ] {
            check_key(&key, &cert);
        }
        for name in CLIENT_NAMES {
            check_key(&p.client_key(name), &p.client_cert(name));
        }
        // Certificates and CRLs are public.
        let mode = fs::metadata(p.ca_cert()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o044, 0o044);

        let readme = String::from_utf8(read(&p.readme())).unwrap();
        for needle in [
            "TEST PKI",
            "certradius test-pki DIR",
            "0600",
            "client-longchain.pem",
        ] {
            assert!(readme.contains(needle), "README lacks {needle}");
        }
    }

    #[test]
    fn hierarchy_subjects_chains_and_extensions() {
        let (_tmp, p) = generate_in_temp();
        let root_der = chain(&p.ca_cert());
        let root = parse(&root_der[0]);
        assert_eq!(cn(root.subject()), ROOT_CN);
        assert_eq!(org(root.subject()), ORGANIZATION);
        assert_eq!(root.subject(), root.issuer());
        assert_eq!(ca_path_len(&root), Some(None));
        let ku = root.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        let ten_years =
            root.validity().not_after.timestamp() - root.validity().not_before.timestamp();
        assert!(ten_years >= 3650 * 86_400, "{ten_years}");

        let inter_der = chain(&p.intermediate_cert());
        let inter = parse(&inter_der[0]);
        assert_eq!(cn(inter.subject()), INTERMEDIATE_CN);
        assert_eq!(inter.issuer(), root.subject());
        assert_eq!(ca_path_len(&inter), Some(Some(1)));

        let sub_der = chain(&p.sub_intermediate_cert());
        let sub = parse(&sub_der[0]);
        assert_eq!(cn(sub.subject()), SUB_INTERMEDIATE_CN);
        assert_eq!(sub.issuer(), inter.subject());
        assert_eq!(ca_path_len(&sub), Some(Some(0)));

        let untrusted_der = chain(&p.untrusted_ca_cert());
        let untrusted = parse(&untrusted_der[0]);
        assert_eq!(cn(untrusted.subject()), UNTRUSTED_CN);
        assert_eq!(untrusted.subject(), untrusted.issuer());

        // Servers: the leaf alone, issued by the root.
        for path in [p.server_cert(), p.server_rsa_cert()] {
            let certs = chain(&path);
            assert_eq!(certs.len(), 1, "{}", path.display());
            let server = parse(&certs[0]);
            assert_eq!(cn(server.subject()), SERVER_NAME);
            assert_eq!(server.issuer(), root.subject());
            assert_eq!(sans(&server), [format!("dns:{SERVER_NAME}")]);
            assert_eq!(ekus(&server), (true, false, false));
            assert_eq!(ca_path_len(&server), None);
        }

        // Clients: (name, CN, SANs); issuer, chain and EKUs follow from the name.
        let upn_value = format!("a0170c15{}", hex(CLIENT_UPN.as_bytes()));
        let cases: [(&str, &str, Vec<String>); 11] = [
            (
                "rsa",
                "alice@certradius.test",
                vec!["email:alice@certradius.test".into()],
            ),
            (
                "ecdsa",
                "bob@certradius.test",
                vec!["email:bob@certradius.test".into()],
            ),
            ("untrusted", "mallory@certradius.test", vec![]),
            ("revoked", "revoked@certradius.test", vec![]),
            ("expired", "expired@certradius.test", vec![]),
            ("notyetvalid", "notyetvalid@certradius.test", vec![]),
            ("noeku", "noeku@certradius.test", vec![]),
            (
                "machine",
                "host/laptop42.certradius.test",
                vec!["dns:laptop42.certradius.test".into()],
            ),
            (
                "upn",
                CLIENT_UPN,
                vec![format!("other:1.3.6.1.4.1.311.20.2.3:{upn_value}")],
            ),
            ("longchain", "longchain@certradius.test", vec![]),
            ("visitor", "visitor@partner.example", vec![]),
        ];
        let now = OffsetDateTime::now_utc().unix_timestamp();
        for (name, subject_cn, expected_sans) in cases {
            let (issuer_cn, chain_cns): (&str, &[&str]) = match name {
                "untrusted" => (UNTRUSTED_CN, &[]),
                "longchain" => (SUB_INTERMEDIATE_CN, &[SUB_INTERMEDIATE_CN, INTERMEDIATE_CN]),
                _ => (INTERMEDIATE_CN, &[INTERMEDIATE_CN]),
            };
            let expected_ekus = if name == "noeku" {
                (true, false, false)
            } else {
                (false, true, false)
            };
            let certs = chain(&p.client_cert(name));
            let parsed: Vec<_> = certs.iter().map(|c| parse(c)).collect();
            let leaf = &parsed[0];
            assert_eq!(cn(leaf.subject()), subject_cn, "{name}");
            assert_eq!(org(leaf.subject()), ORGANIZATION, "{name}");
            assert_eq!(cn(leaf.issuer()), issuer_cn, "{name}");
            let cns: Vec<String> = parsed[1..].iter().map(|c| cn(c.subject())).collect();
            assert_eq!(cns, chain_cns, "{name}");
            // Each certificate in the file is issued by the next one.
            for pair in parsed.windows(2) {
                assert_eq!(pair[0].issuer(), pair[1].subject(), "{name}");
            }
            assert_eq!(sans(leaf), expected_sans, "{name}");
            assert_eq!(ekus(leaf), expected_ekus, "{name}");
            assert_eq!(ca_path_len(leaf), None, "{name}");
            let (from, to) = (
                leaf.validity().not_before.timestamp(),
                leaf.validity().not_after.timestamp(),
            );
            match name {
                "expired" => assert!(to < now, "{name}"),
                "notyetvalid" => assert!(from > now, "{name}"),
                _ => assert!(from <= now && now < to, "{name}"),
            }
        }

        // OCSP responder: issued by the intermediate, OCSPSigning, id-pkix-ocsp-nocheck.
        let ocsp_der = chain(&p.ocsp_cert());
        let ocsp = parse(&ocsp_der[0]);
        assert_eq!(cn(ocsp.subject()), OCSP_CN);
        assert_eq!(ocsp.issuer(), inter.subject());
        assert_eq!(ekus(&ocsp), (false, false, true));
        assert!(
            ocsp.extensions()
                .iter()
                .any(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.48.1.5")
        );
    }

    #[test]
    fn serials_crls_and_ocsp_index() {
        let (_tmp, p) = generate_in_temp();
        let mut all = vec![
            p.ca_cert(),
            p.intermediate_cert(),
            p.sub_intermediate_cert(),
            p.untrusted_ca_cert(),
            p.server_cert(),
            p.server_rsa_cert(),
            p.ocsp_cert(),
        ];
        all.extend(CLIENT_NAMES.iter().map(|n| p.client_cert(n)));
        let mut serials = HashSet::new();
        for path in &all {
            let certs = chain(path);
            let serial = parse(&certs[0]).raw_serial().to_vec();
            assert_eq!(serial.len(), 16, "{}", path.display());
            assert!(
                serial[0] & 0x80 == 0,
                "negative serial in {}",
                path.display()
            );
            assert!(
                serials.insert(serial),
                "duplicate serial in {}",
                path.display()
            );
        }

        let revoked_der = chain(&p.client_cert("revoked"));
        let revoked_serial = parse(&revoked_der[0]).raw_serial().to_vec();
        let inter_der = chain(&p.intermediate_cert());
        let inter = parse(&inter_der[0]);
        let root_der = chain(&p.ca_cert());
        let root = parse(&root_der[0]);

        let crl_bytes = crl_der(&p.crl());
        let (_, crl) = CertificateRevocationList::from_der(&crl_bytes).unwrap();
        assert_eq!(crl.issuer(), inter.subject());
        let listed: Vec<&[u8]> = crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial())
            .collect();
        assert_eq!(listed, [revoked_serial.as_slice()]);
        let this_update = crl.last_update().timestamp();
        let next_update = crl.next_update().unwrap().timestamp();
        assert_eq!(next_update - this_update, 30 * 86_400);

        let root_crl_bytes = crl_der(&p.ca_crl());
        let (_, root_crl) = CertificateRevocationList::from_der(&root_crl_bytes).unwrap();
        assert_eq!(root_crl.issuer(), root.subject());
        assert_eq!(root_crl.iter_revoked_certificates().count(), 0);

        // One line per certificate the intermediate issued: the sub-intermediate, its nine clients and
        // the OCSP responder; only client-revoked is R.
        let index = String::from_utf8(read(&p.ocsp_index())).unwrap();
        let lines: Vec<Vec<&str>> = index.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(lines.len(), 11);
        let revoked_hex = hex(&revoked_serial).to_uppercase();
        for fields in &lines {
            assert_eq!(fields.len(), 6, "{fields:?}");
            assert_eq!(fields[1].len(), 13, "{fields:?}");
            if fields[3] == revoked_hex {
                assert_eq!(fields[0], "R");
                assert!(fields[2].ends_with("Z,keyCompromise"), "{fields:?}");
                assert_eq!(fields[5], "/O=certradius test/CN=revoked@certradius.test");
            } else {
                assert_eq!((fields[0], fields[2]), ("V", ""), "{fields:?}");
            }
        }
        let ecdsa_der = chain(&p.client_cert("ecdsa"));
        let ecdsa_hex = hex(parse(&ecdsa_der[0]).raw_serial()).to_uppercase();
        assert!(lines.iter().any(|f| f[3] == ecdsa_hex));
        assert_eq!(lines.iter().filter(|f| f[0] == "R").count(), 1);
    }

    /// End-to-end path validation with rustls-webpki, as the TLS stack will do it.
    #[test]
    fn webpki_accepts_good_and_rejects_bad_certificates() {
        let (_tmp, p) = generate_in_temp();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for root in chain(&p.ca_cert()) {
            roots.add(root).unwrap();
        }
        let roots = Arc::new(roots);
        let crls: Vec<_> = p.crls().iter().map(|path| crl_der(path)).collect();
        // Default policy: revocation checked for the whole chain; unknown status is an error.
        let clients = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .with_crls(crls)
        .build()
        .unwrap();
        let verify = |name: &str| {
            let certs = chain(&p.client_cert(name));
            clients.verify_client_cert(&certs[0], &certs[1..], UnixTime::now())
        };
        for name in ["rsa", "ecdsa", "machine", "upn", "longchain"] {
            verify(name).unwrap_or_else(|e| panic!("client-{name}: {e}"));
        }
        let rejected = |name: &str| match verify(name) {
            Err(rustls::Error::InvalidCertificate(e)) => e,
            other => panic!("client-{name}: {other:?}"),
        };
        assert_eq!(rejected("revoked"), CertificateError::Revoked);
        assert!(matches!(
            rejected("expired"),
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ));
        assert!(matches!(
            rejected("notyetvalid"),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
        ));
        assert_eq!(rejected("untrusted"), CertificateError::UnknownIssuer);
        assert!(matches!(
            rejected("noeku"),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. }
        ));

        let servers = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .unwrap();
        let name = ServerName::try_from(SERVER_NAME).unwrap();
        for path in [p.server_cert(), p.server_rsa_cert()] {
            let certs = chain(&path);
            servers
                .verify_server_cert(&certs[0], &[], &name, &[], UnixTime::now())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }

    #[test]
    fn regenerating_replaces_files_and_tightens_key_modes() {
        let (_tmp, p) = generate_in_temp();
        let old_ca = read(&p.ca_cert());
        fs::set_permissions(p.server_key(), Permissions::from_mode(0o644)).unwrap();
        generate(&p.dir).unwrap();
        assert_ne!(read(&p.ca_cert()), old_ca);
        let mode = fs::metadata(p.server_key()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        check_key(&p.server_key(), &p.server_cert());
    }

    #[test]
    fn exists_needs_ca_and_server_files() {
        let tmp = tempfile::tempdir().unwrap();
        let p = PkiPaths::new(tmp.path());
        assert!(!exists(tmp.path()));
        assert!(!exists(&tmp.path().join("missing")));
        fs::write(p.ca_cert(), "x").unwrap();
        fs::write(p.server_cert(), "x").unwrap();
        assert!(!exists(tmp.path()));
        fs::write(p.server_key(), "x").unwrap();
        assert!(exists(tmp.path()));
    }

    #[test]
    fn unwritable_directory_is_an_io_error_naming_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        fs::write(&file, "x").unwrap();
        let dir = file.join("pki");
        match generate(&dir) {
            Err(PkiError::Io { path, .. }) => assert_eq!(path, dir),
            other => panic!("{other:?}"),
        }
    }
}
