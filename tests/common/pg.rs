//! A throwaway PostgreSQL cluster for the tests that need a real database: initdb + pg_ctl in a
//! tempdir on a free loopback port, trust auth, run as `postgres` when the tests run as root.
#![allow(dead_code)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The newest installed PostgreSQL's bin directory.
pub fn pg_bin() -> Option<PathBuf> {
    let mut bins: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    bins.sort();
    bins.pop().map(|b| b.1)
}

pub fn skip() -> bool {
    !super::require(
        pg_bin().is_some(),
        "PostgreSQL's server binaries",
        "apt-get install postgresql",
    )
}

/// A throwaway cluster; stopped when dropped.
pub struct Pg {
    bin: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    port: u16,
    root: bool,
    /// Extra `postgres` options (`-c ssl=on ...`).
    options: String,
}

pub fn id_of(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

impl Pg {
    pub fn new(dir: &Path) -> Pg {
        Self::with_tls(dir, None)
    }

    /// A cluster with `ssl=on`, serving `cert` (PEM chain) and `key` (the test PKI's server
    /// certificate, for instance): TCP connections may then be TLS, as `sslmode` asks.
    pub fn with_tls(dir: &Path, tls: Option<(&Path, &Path)>) -> Pg {
        let bin = pg_bin().unwrap();
        // PostgreSQL refuses to run as root: then the cluster belongs to the postgres user.
        let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
        let base = dir.join("pg");
        std::fs::create_dir_all(&base).unwrap();
        let (data, sock) = (base.join("data"), base.join("sock"));
        std::fs::create_dir(&data).unwrap();
        std::fs::create_dir(&sock).unwrap();
        if root {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            for p in [&base, &data, &sock] {
                std::os::unix::fs::chown(p, Some(id_of("-u")), Some(id_of("-g"))).unwrap();
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut pg = Pg {
            bin,
            log: base.join("postgres.log"),
            data,
            sock,
            port,
            root,
            options: String::new(),
        };
        let out = pg
            .command("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&pg.data)
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        if let Some((cert, key)) = tls {
            // PostgreSQL insists the key is the server user's and not readable by others.
            let (c, k) = (base.join("server.crt"), base.join("server.key"));
            std::fs::copy(cert, &c).unwrap();
            std::fs::copy(key, &k).unwrap();
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
            if root {
                for p in [&c, &k] {
                    std::os::unix::fs::chown(p, Some(id_of("-u")), Some(id_of("-g"))).unwrap();
                }
            }
            pg.options = format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                c.display(),
                k.display()
            );
        }
        pg.start();
        pg
    }

    pub fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    pub fn start(&self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .arg("-o")
            .arg(format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off{}",
                self.port,
                self.sock.display(),
                self.options
            ))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {out:?}\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn stop(&self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }

    /// SIGSTOP / SIGCONT the postmaster and its children (a database that hangs, not refuses).
    pub fn freeze(&self, on: bool) {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        let pid = pid.lines().next().unwrap().trim().to_string();
        let children = Command::new("ps")
            .args(["-o", "pid=", "--ppid", &pid])
            .output()
            .unwrap();
        let pids: Vec<String> = String::from_utf8(children.stdout)
            .unwrap()
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let sig = if on { "-STOP" } else { "-CONT" };
        // A child may have exited between `ps` and `kill` (a backend whose client left): only
        // the postmaster itself must be signalled.
        for child in &pids {
            let _ = Command::new("kill").arg(sig).arg(child).status();
        }
        let st = Command::new("kill").arg(sig).arg(&pid).status().unwrap();
        assert!(st.success(), "kill {sig} {pid} (the postmaster)");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// One query's rows, `|`-separated columns.
    pub fn query(&self, sql: &str) -> Vec<String> {
        self.try_query(sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
    }

    pub fn try_query(&self, sql: &str) -> Result<Vec<String>, String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-At"])
            .args(["-p", &self.port.to_string(), "-c", sql])
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect())
    }

    /// Waits until `sql` answers `want`.
    pub fn wait_for(&self, sql: &str, want: &[&str], secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            // An error (the table not created yet by auto_migrate) counts as "not yet".
            let got = self.try_query(sql);
            if got.as_deref()
                == Ok(want
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .as_slice())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{sql}: {got:?}, expected {want:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        // A test that failed with the cluster frozen must not leave it stopped for good.
        if let Ok(pid) = std::fs::read_to_string(self.data.join("postmaster.pid"))
            && let Some(pid) = pid.lines().next()
        {
            let _ = Command::new("pkill")
                .args(["-CONT", "-P", pid.trim()])
                .status();
            let _ = Command::new("kill").args(["-CONT", pid.trim()]).status();
        }
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
