//! `accounting.database_url`: a libpq connection string (the `postgresql://` URL or the
//! `key=value` form) with libpq's TLS parameters, which tokio-postgres does not know:
//! `sslmode=disable|prefer|require|verify-ca|verify-full` (libpq's meanings and its default,
//! `prefer`: PostgreSQL docs, "SSL Support", table "SSL Mode Descriptions") and `sslrootcert=`
//! (in a URL, a percent-encoded path, RFC 3986 §2.1). They are taken out here and the rest is
//! parsed by tokio-postgres; the TLS itself is the shell's (`server/pg_tls.rs`, rustls).

use std::path::PathBuf;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without checking its certificate; plain otherwise.
    Prefer,
    /// TLS or nothing; the certificate is not checked — unless `sslrootcert` is given, which
    /// makes it `verify-ca`, as in libpq.
    Require,
    /// TLS, the certificate chaining to `sslrootcert`; any host name.
    VerifyCa,
    /// TLS, the certificate chaining to `sslrootcert` and naming the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // `allow` (plain first, TLS if refused) makes no sense for a service we run.
            other => {
                return Err(format!(
                    "sslmode={other:?}: expected disable, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A parsed `database_url`: tokio-postgres's part and the TLS part.
#[derive(Debug, Clone)]
pub struct DatabaseTarget {
    pub config: tokio_postgres::Config,
    /// As written (libpq's default `prefer` when absent).
    pub ssl_mode: SslMode,
    pub root_cert: Option<PathBuf>,
}

impl DatabaseTarget {
    /// The mode in force: `require` with a root certificate verifies the chain (libpq).
    pub fn effective_mode(&self) -> SslMode {
        match (self.ssl_mode, &self.root_cert) {
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        }
    }
}

/// Parses a connection string. Errors never quote the string (it may hold a password).
pub fn parse(url: &str) -> Result<DatabaseTarget, String> {
    let mut ssl_mode = SslMode::Prefer;
    let mut root_cert = None;
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "sslmode" => ssl_mode = SslMode::parse(&String::from_utf8_lossy(&decode(v)?))?,
                "sslrootcert" => root_cert = Some(path(decode(v)?)),
                _ => kept.push(pair),
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some(("sslmode", v)) => ssl_mode = SslMode::parse(v.trim_matches('\''))?,
                Some(("sslrootcert", v)) => {
                    root_cert = Some(PathBuf::from(v.trim_matches('\'')));
                }
                _ => kept.push(word),
            }
        }
        kept.join(" ")
    };
    if root_cert
        .as_deref()
        .is_some_and(|p| p.as_os_str() == "system")
    {
        return Err("sslrootcert=system is not supported: name the CA file".into());
    }
    if matches!(ssl_mode, SslMode::VerifyCa | SslMode::VerifyFull) && root_cert.is_none() {
        return Err(format!(
            "sslmode={} needs sslrootcert= (the CA file the database server's certificate chains to)",
            ssl_mode.as_str()
        ));
    }
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| format!("not a PostgreSQL connection URL: {e}"))?;
    config.ssl_mode(match ssl_mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    Ok(DatabaseTarget {
        config,
        ssl_mode,
        root_cert,
    })
}

/// Percent-decoding (RFC 3986 §2.1); a `%` not followed by two hex digits is an error.
fn decode(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a '%' in a parameter is not followed by two hex digits")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

fn path(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_modes_default_and_percent_encoded_root_cert() {
        let t = parse("postgresql://u:pw@db.example/radius").unwrap();
        assert_eq!(t.ssl_mode, SslMode::Prefer);
        assert_eq!(t.effective_mode(), SslMode::Prefer);
        let t = parse(
            "postgresql://u@db.example:5433/radius?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fmy%20ca.pem",
        )
        .unwrap();
        assert_eq!(t.ssl_mode, SslMode::VerifyFull);
        assert_eq!(
            t.root_cert.as_deref(),
            Some(std::path::Path::new("/etc/my ca.pem"))
        );
        assert_eq!(t.config.get_application_name(), Some("x"));
        assert_eq!(t.config.get_ports(), &[5433]);
        let t = parse("postgresql://u@h/d?sslmode=require&sslrootcert=ca.pem").unwrap();
        assert_eq!(t.effective_mode(), SslMode::VerifyCa);
        let t = parse("host=db.example user=u sslmode=disable").unwrap();
        assert_eq!(t.ssl_mode, SslMode::Disable);
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        let t = parse("host=h user=u sslmode=verify-ca sslrootcert=/ca.pem").unwrap();
        assert_eq!(t.effective_mode(), SslMode::VerifyCa);
    }

    #[test]
    fn bad_modes_and_missing_root_certs_are_refused_without_quoting_the_url() {
        let err = parse("postgresql://u:hunter2@h/d?sslmode=allow").unwrap_err();
        assert!(err.contains("sslmode") && !err.contains("hunter2"), "{err}");
        let err = parse("postgresql://u:hunter2@h/d?sslmode=verify-full").unwrap_err();
        assert!(err.contains("sslrootcert"), "{err}");
        assert!(parse("postgresql://u@h/d?sslrootcert=%zz").is_err());
        assert!(parse("postgresql://u@h/d?sslmode=require&sslrootcert=system").is_err());
    }
}
