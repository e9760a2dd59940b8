//! Accounting to PostgreSQL against the real binary and a real PostgreSQL cluster started by the
//! test (initdb + pg_ctl in a tempdir, on a free loopback port, trust auth): Start / Interim /
//! Stop from the testkit NAS make one `radacct` row with the right columns; duplicates are
//! recorded once; with the database stopped the NAS still gets its Accounting-Responses (records
//! queued on disk) and every queued record arrives, once, when the database is back — also after
//! a kill -9 of certradius; a hung (SIGSTOPped) database still lets the NAS get its responses;
//! `certradius db migrate` creates the table.
//!
//! Without PostgreSQL's server binaries the tests print a loud SKIPPED, except under CI (`CI`
//! set), where that is a failure.
#![allow(
    clippy::disallowed_methods,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::pg::{Pg, skip};

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use certradius::radius::attr;
use certradius_testkit::acct;

fn config(dir: &Path, name: &str, pg: &Pg, file: bool) -> PathBuf {
    config_with(dir, name, pg, file, "")
}

fn config_with(dir: &Path, name: &str, pg: &Pg, file: bool, extra: &str) -> PathBuf {
    let pki = common::pki("accounting_db");
    let file = if file {
        format!(
            "file = \"{}\"\n",
            dir.join(format!("{name}.jsonl")).display()
        )
    } else {
        String::new()
    };
    common::write_config(
        dir,
        &pki,
        name,
        "",
        &format!(
            "[accounting]\nlisten = [\"127.0.0.1:0\"]\n{file}database_url = \"{}\"\n\
             auto_migrate = true\nqueue_dir = \"{}\"\n{extra}",
            pg.url(),
            dir.join(format!("{name}-queue")).display()
        ),
    )
}

/// A NAS: sends Accounting-Requests and waits for their responses.
struct Nas {
    sock: UdpSocket,
    to: std::net::SocketAddr,
    id: u8,
}

impl Nas {
    fn new(to: std::net::SocketAddr) -> Nas {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        Nas { sock, to, id: 0 }
    }

    /// Sends (retransmitting like a NAS) until answered; the request sent.
    fn send(&mut self, status: u32, session: &str, extra: &[(u8, &[u8])]) -> Vec<u8> {
        self.id = self.id.wrapping_add(1);
        let st = status.to_be_bytes();
        let mut attrs: Vec<(u8, &[u8])> = vec![
            (attr::ACCT_STATUS_TYPE, &st),
            (attr::ACCT_SESSION_ID, session.as_bytes()),
            (attr::USER_NAME, b"alice"),
            (attr::CALLING_STATION_ID, b"02-00-00-00-00-01"),
            (attr::CALLED_STATION_ID, b"AP-1:corp"),
        ];
        attrs.extend_from_slice(extra);
        let p = acct::request(common::SECRET.as_bytes(), self.id, &attrs);
        assert!(self.exchange(&p), "no Accounting-Response for {session}");
        p
    }

    fn exchange(&self, p: &[u8]) -> bool {
        for _ in 0..30 {
            self.sock.send_to(p, self.to).unwrap();
            let mut buf = [0u8; 4096];
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                assert!(acct::is_response_to(
                    &buf[..n],
                    p,
                    common::SECRET.as_bytes()
                ));
                return true;
            }
        }
        false
    }
}

const ROW: &str = "SELECT acctsessionid, username, host(nasipaddress), callingstationid, \
                   calledstationid, acctstarttime IS NOT NULL, acctupdatetime IS NOT NULL, \
                   acctstoptime IS NOT NULL, acctsessiontime, acctinputoctets, acctoutputoctets, \
                   acctterminatecause, host(framedipaddress), class, length(acctuniqueid) \
                   FROM radacct ORDER BY acctsessionid";

#[test]
fn start_interim_stop_make_one_row_and_duplicates_are_recorded_once() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = Pg::new(dir.path());
    // The database alone, no file: allowed.
    let s = common::Server::start(
        &config(dir.path(), "one", &pg, false),
        &dir.path().join("one.log"),
    );
    let mut nas = Nas::new(s.acct.unwrap());
    let ip = [10, 0, 0, 7];
    nas.send(
        1,
        "S-1",
        &[(attr::FRAMED_IP_ADDRESS, &ip), (attr::CLASS, b"\x01\x02")],
    );
    pg.wait_for(
        "SELECT acctstoptime IS NULL, acctsessiontime FROM radacct",
        &["t|"],
        5,
    );
    let t60 = 60u32.to_be_bytes();
    let o100 = 100u32.to_be_bytes();
    nas.send(
        3,
        "S-1",
        &[
            (attr::ACCT_SESSION_TIME, &t60),
            (attr::ACCT_INPUT_OCTETS, &o100),
        ],
    );
    let t120 = 120u32.to_be_bytes();
    let o500 = 500u32.to_be_bytes();
    let g1 = 1u32.to_be_bytes();
    let cause = 1u32.to_be_bytes();
    let stop = nas.send(
        2,
        "S-1",
        &[
            (attr::ACCT_SESSION_TIME, &t120),
            (attr::ACCT_INPUT_OCTETS, &o500),
            (attr::ACCT_OUTPUT_OCTETS, &o100),
            (attr::ACCT_OUTPUT_GIGAWORDS, &g1),
            (attr::ACCT_TERMINATE_CAUSE, &cause),
        ],
    );
    // A retransmission (answered from the cache) and the same Stop under a new identifier (a
    // NAS that lost the response): still one row, unchanged.
    assert!(nas.exchange(&stop));
    nas.send(
        2,
        "S-1",
        &[
            (attr::ACCT_SESSION_TIME, &t120),
            (attr::ACCT_INPUT_OCTETS, &o500),
            (attr::ACCT_OUTPUT_OCTETS, &o100),
            (attr::ACCT_OUTPUT_GIGAWORDS, &g1),
            (attr::ACCT_TERMINATE_CAUSE, &cause),
        ],
    );
    // A late Interim-Update does not reopen the session nor move counters back.
    nas.send(3, "S-1", &[(attr::ACCT_SESSION_TIME, &t60)]);
    let want = format!(
        "S-1|alice|127.0.0.1|02-00-00-00-00-01|AP-1:corp|t|t|t|120|500|{}|User-Request|10.0.0.7|0x0102|32",
        (1u64 << 32) + 100
    );
    pg.wait_for(ROW, &[want.as_str()], 5);
    let log = s.log_text();
    assert!(!log.contains("queued on disk"), "{log}");
}

/// `GET /metrics` from the server's metrics listener (its address is in the log).
fn scrape(s: &common::Server) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr: std::net::SocketAddr = loop {
        if let Some(a) = s
            .log_text()
            .lines()
            .find_map(|l| l.split("serving http://").nth(1))
            .and_then(|r| r.strip_suffix("/metrics"))
        {
            break a.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "no metrics line in the log");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn database_outage_queues_on_disk_and_everything_arrives_once() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = Pg::new(dir.path());
    let cfg = config_with(
        dir.path(),
        "out",
        &pg,
        true,
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    let s = common::Server::start(&cfg, &dir.path().join("out.log"));
    let mut nas = Nas::new(s.acct.unwrap());
    for i in 1..=3 {
        nas.send(1, &format!("S-{i}"), &[]);
    }
    pg.wait_for("SELECT count(*) FROM radacct", &["3"], 5);

    // Outage with certradius running: every request is still answered.
    pg.stop();
    let t = 30u32.to_be_bytes();
    nas.send(2, "S-1", &[(attr::ACCT_SESSION_TIME, &t)]);
    for i in 4..=8 {
        nas.send(1, &format!("S-{i}"), &[]);
    }
    let queue = dir.path().join("out-queue/certradius-accounting.queue");
    let queued = std::fs::read_to_string(&queue).unwrap();
    assert_eq!(queued.lines().count(), 6, "{queued}");
    pg.start();
    pg.wait_for(
        "SELECT count(*), count(DISTINCT acctuniqueid), count(acctstoptime) FROM radacct",
        &["8|8|1"],
        60,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(&queue).unwrap().len() > 0 {
        assert!(Instant::now() < deadline, "queue not emptied after replay");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(s.log_text().contains("records are queued on disk"));
    let metrics = scrape(&s);
    let value = |result: &str| -> u64 {
        let series = format!("certradius_accounting_db_records_total{{result=\"{result}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .unwrap_or_else(|| panic!("no {series}in\n{metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    // Records that came before the first connection was up are queued too.
    let (written, queued, replayed) = (value("written"), value("queued"), value("replayed"));
    assert!(queued >= 6 && replayed == queued, "{metrics}");
    assert_eq!(written + replayed, 9, "{metrics}");
    // The file has every record too (both stores configured: acknowledged after both).
    let lines = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 9);

    // Outage, then certradius killed (-9) with records queued: a new process replays them.
    pg.stop();
    nas.send(2, "S-2", &[(attr::ACCT_SESSION_TIME, &t)]);
    nas.send(1, "S-9", &[]);
    drop(s);
    pg.start();
    let s = common::Server::start(&cfg, &dir.path().join("out2.log"));
    pg.wait_for(
        "SELECT count(*), count(DISTINCT acctuniqueid), count(acctstoptime) FROM radacct",
        &["9|9|2"],
        60,
    );
    pg.wait_for(
        "SELECT acctsessionid, acctsessiontime FROM radacct WHERE acctstoptime IS NOT NULL \
         ORDER BY 1",
        &["S-1|30", "S-2|30"],
        5,
    );
    assert!(s.log_text().contains("queued by a previous run"));
}

#[test]
fn a_hung_database_still_gets_the_nas_its_responses() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = Pg::new(dir.path());
    let s = common::Server::start(
        &config(dir.path(), "hung", &pg, false),
        &dir.path().join("hung.log"),
    );
    let mut nas = Nas::new(s.acct.unwrap());
    nas.send(1, "S-1", &[]);
    pg.wait_for("SELECT count(*) FROM radacct", &["1"], 5);
    pg.freeze(true);
    let t = Instant::now();
    // The write gives up after 5 s and the record is queued: answered within the NAS's retries.
    nas.send(1, "S-2", &[]);
    nas.send(1, "S-3", &[]);
    let waited = t.elapsed();
    pg.freeze(false);
    assert!(waited >= Duration::from_secs(4), "{waited:?}");
    pg.wait_for(
        "SELECT acctsessionid FROM radacct ORDER BY 1",
        &["S-1", "S-2", "S-3"],
        60,
    );
}

#[test]
fn db_migrate_creates_the_table_and_can_run_again() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = Pg::new(dir.path());
    let cfg = config(dir.path(), "mig", &pg, false);
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_certradius"))
            .args(["db", "migrate", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let cols = pg.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'radacct' \
         ORDER BY column_name",
    );
    for c in [
        "radacctid",
        "acctsessionid",
        "acctuniqueid",
        "username",
        "nasipaddress",
        "callingstationid",
        "calledstationid",
        "acctstarttime",
        "acctupdatetime",
        "acctstoptime",
        "acctsessiontime",
        "acctinputoctets",
        "acctoutputoctets",
        "acctterminatecause",
        "framedipaddress",
        "certificate_serial",
        "certificate_issuer",
        "class",
    ] {
        assert!(cols.iter().any(|x| x == c), "{c} missing: {cols:?}");
    }
    // A database that cannot be reached: an error, not a hang.
    pg.stop();
    let out = Command::new(env!("CARGO_BIN_EXE_certradius"))
        .args(["db", "migrate", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
