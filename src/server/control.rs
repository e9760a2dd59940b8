//! The local control socket: `certradius sessions`, `certradius disconnect --session ID` and
//! `certradius why KEY` ask the running server through a unix stream socket (`[coa] control_socket`, mode 0600, so only
//! its owner — the service account or root — can list sessions or end one).
//!
//! One request line per connection (`sessions`, `disconnect ID` or `why KEY`, at most 1 KiB, read within
//! 5 s), one text answer, then the server closes. At most 8 connections are served at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tracing::{info, warn};

use super::coa::Coa;
use crate::core::attempts::Attempts;
use crate::escape::{Escaped, or_dash};
use crate::live::LiveSession;

const MAX_LINE: u64 = 1024;
const MAX_CONNECTIONS: usize = 8;

/// Where the control socket is: `[coa] control_socket`, or `certradius.sock` next to the state
/// file. Both were resolved at load (`config::paths`), so the server and `certradius sessions`
/// run from any working directory name the same socket.
pub fn path(config: &crate::config::Config) -> PathBuf {
    match &config.coa.control_socket {
        Some(p) => p.clone(),
        None => config.server.state_file.with_file_name("certradius.sock"),
    }
}

/// Binds the control socket (replacing a stale one, refusing when a server answers on it) and
/// serves it until `shutdown` turns true.
pub fn start(
    coa: Arc<Coa>,
    attempts: Arc<Attempts>,
    path: &Path,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another certradius is serving this control socket",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    info!(path = %path.display(), "control socket (certradius sessions / disconnect)");
    let owned = path.to_path_buf();
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        warn!("control socket: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                continue;
            };
            let coa = coa.clone();
            let attempts = attempts.clone();
            tokio::spawn(async move {
                serve(coa, &attempts, stream).await;
                drop(permit);
            });
        }
        let _ = std::fs::remove_file(&owned);
    });
    Ok(())
}

async fn serve(coa: Arc<Coa>, attempts: &Attempts, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_LINE));
    let got = tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await;
    let answer = match got {
        Ok(Ok(_)) => match line.trim().strip_prefix("why ") {
            Some(key) => super::why::answer(attempts, key),
            None => answer(&coa, line.trim()).await,
        },
        _ => "error: no request line\n".to_string(),
    };
    let _ = write.write_all(answer.as_bytes()).await;
    let _ = write.shutdown().await;
}

async fn answer(coa: &Arc<Coa>, request: &str) -> String {
    if request == "sessions" {
        return render(&coa.sessions());
    }
    if let Some(id) = request.strip_prefix("disconnect ") {
        let id = id.trim();
        let picked = coa.pick(|s| Escaped(&s.acct_session_id).to_string() == id);
        if picked.is_empty() {
            return format!("error: no live session {id:?}\n");
        }
        let mut out = String::new();
        for s in picked {
            let nas = s.nas_name.clone();
            let outcome = coa.disconnect(s, "operator request").await;
            out.push_str(&format!("{id} on {nas}: {outcome}\n"));
        }
        return out;
    }
    "error: expected \"sessions\", \"disconnect ID\" or \"why KEY\"\n".to_string()
}

/// One line per session: tab-separated, peer-supplied fields escaped.
pub fn render(sessions: &[LiveSession]) -> String {
    let mut out = String::from(
        "acct_session_id\tnas\tuser_name\tcalling_station_id\tcertificate_serial\tcertificate_subject\n",
    );
    for s in sessions {
        let (serial, subject) = s
            .link
            .as_ref()
            .and_then(|l| l.certificate.as_ref())
            .map_or(("-".to_string(), "-".to_string()), |c| {
                (c.serial.clone(), Escaped::str(&c.subject).to_string())
            });
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{serial}\t{subject}\n",
            Escaped(&s.acct_session_id),
            s.nas_name,
            or_dash(s.user_name.as_deref()),
            or_dash(s.calling_station_id.as_deref()),
        ));
    }
    out
}

/// The client half (`certradius sessions` / `disconnect`): sends one request, returns the answer.
pub fn ask(path: &Path, request: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(request.as_bytes())?;
    s.write_all(b"\n")?;
    let mut out = String::new();
    s.take(16 << 20).read_to_string(&mut out)?;
    Ok(out)
}

/// `sessions` / `disconnect`: one request to the running server's control socket.
pub fn command(config: Option<&std::path::Path>, request: String) -> std::process::ExitCode {
    let config = match crate::config::Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("certradius: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let path = path(&config);
    match ask(&path, &request) {
        Ok(answer) => {
            print!("{answer}");
            if answer.starts_with("error:") {
                std::process::ExitCode::from(1)
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!(
                "certradius: control socket {}: {e} (is the server running?)",
                path.display()
            );
            std::process::ExitCode::from(1)
        }
    }
}
