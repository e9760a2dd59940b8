//! `certradius import freeradius RADDB_DIR [-o FILE]`: a FreeRADIUS 3.x configuration tree
//! (`radiusd.conf` and what it includes) → a commented certradius TOML configuration.
//!
//! Each value of the output names the FreeRADIUS file and line it came from. What is not
//! carried over is listed on stderr as `file:line: what, why` and in a block comment at the top
//! of the output. Secrets (shared secrets, the key password, a database password) go only into
//! files created with mode 0600: the output, and the key password file beside it.
//!
//! Exit codes: 0 the result loads as `certradius check` loads it, 1 it loads but parts were not
//! translated, 2 no loadable configuration (the reason on stderr).

mod clients;
mod draft;
mod eap;
mod mab;
pub mod raddb_lexer;
pub mod raddb_parser;
mod rule_drafts;
mod sites;
mod sql;
mod translate;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Files written beside the output.
pub struct Aux {
    /// `private_key_password` of the eap tls-config, first line.
    pub key_password: PathBuf,
    /// `private_key_password` of a RadSec listener.
    pub radsec_key_password: PathBuf,
    /// The MAB allow file.
    pub mab: PathBuf,
}

impl Aux {
    /// `<dir>/<stem>.key-password`, `<stem>.radsec-key-password`, `<stem>-mab.csv` beside
    /// `output` (absolute, since certradius resolves relative paths against its working
    /// directory, not the configuration's); without an output, in the working directory.
    fn beside(output: Option<&Path>) -> std::io::Result<Aux> {
        let (dir, stem) = match output {
            Some(o) => {
                let abs = std::path::absolute(o)?;
                let stem = abs
                    .file_stem()
                    .map_or_else(|| "certradius".into(), |s| s.to_string_lossy().into_owned());
                (
                    abs.parent().map(Path::to_path_buf).unwrap_or_default(),
                    stem,
                )
            }
            None => (std::env::current_dir()?, "certradius".to_string()),
        };
        Ok(Aux {
            key_password: dir.join(format!("{stem}.key-password")),
            radsec_key_password: dir.join(format!("{stem}.radsec-key-password")),
            mab: dir.join(format!("{stem}-mab.csv")),
        })
    }
}

/// Writes a file readable by its owner only: created with mode 0600 (never widened first and
/// narrowed after); an existing file is replaced.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Loads a configuration file the way `certradius check` does (every file it names is read).
fn loads(path: &Path) -> Result<(), String> {
    let loaded = crate::server::reload::load(Some(path), None)?;
    crate::server::radsec::describe(&loaded.config).map_err(|e| e.to_string())?;
    Ok(())
}

/// `certradius import freeradius`: returns the exit code.
pub fn freeradius(raddb: &Path, output: Option<&Path>) -> u8 {
    let fail = |why: String| {
        eprintln!("certradius: import: {why}");
        eprintln!("certradius: import: no loadable configuration could be produced");
        2
    };
    let top = raddb.join("radiusd.conf");
    let root = match raddb_parser::parse_file(&top) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let aux = match Aux::beside(output) {
        Ok(a) => a,
        Err(e) => return fail(format!("where to write: {e}")),
    };
    let d = translate::translate(&root, raddb, &aux);
    for line in d.stderr_lines(raddb) {
        eprintln!("{line}");
    }
    if let Some(first) = d.fatal.first() {
        for f in d.fatal.iter().skip(1) {
            eprintln!("certradius: import: {f}");
        }
        return fail(first.clone());
    }
    let text = d.render(raddb);
    for (path, contents) in &d.files {
        if let Err(e) = write_private(path, contents) {
            return fail(format!("{}: {e}", path.display()));
        }
    }
    let target = match output {
        Some(o) => o.to_path_buf(),
        None => std::env::temp_dir().join(format!("certradius-import-{}.toml", std::process::id())),
    };
    if let Err(e) = write_private(&target, &text) {
        return fail(format!("{}: {e}", target.display()));
    }
    let verdict = loads(&target);
    if output.is_none() {
        let _ = std::fs::remove_file(&target);
        print!("{text}");
    }
    match verdict {
        Err(e) => fail(format!("the imported configuration does not load: {e}")),
        Ok(()) if d.untranslated.is_empty() => {
            eprintln!("certradius: import: everything was translated; the configuration loads");
            0
        }
        Ok(()) => {
            eprintln!(
                "certradius: import: the configuration loads; {} item(s) above were not translated",
                d.untranslated.len()
            );
            1
        }
    }
}

/// A hashed CA directory (`ca_path`, `c_rehash`): its PEM CA certificates and its CRLs, each
/// file once (the hash names are symlinks to them).
pub(crate) fn scan_ca_dir(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::canonicalize(e.path()).ok())
        .filter(|f| f.is_file())
        .collect();
    files.sort();
    files.dedup();
    let (mut cas, mut crls) = (Vec::new(), Vec::new());
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        if text.contains("-----BEGIN X509 CRL-----") {
            crls.push(f);
        } else if text.contains("-----BEGIN CERTIFICATE-----") && !text.contains("PRIVATE KEY-----")
        {
            cas.push(f);
        }
    }
    Ok((cas, crls))
}
