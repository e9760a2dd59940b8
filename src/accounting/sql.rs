//! Accounting records as rows of FreeRADIUS's `radacct` table, sans IO: the schema, the upsert,
//! and the row a record becomes (also the line of the on-disk queue that holds it while the
//! database is away).
//!
//! - RFC 2866 §5.1: Start, Interim-Update (RFC 2869 §5.4) and Stop of one session
//!   (same NAS, Acct-Session-Id and Calling-Station-Id: [`AcctRecord::unique_id`]) update one
//!   row; Accounting-On/Off (a NAS restart) closes that NAS's open sessions, as FreeRADIUS does.
//! - RFC 2866 §5.2 / §5.5 / RFC 2869 §5.3: the event time is Event-Timestamp when present,
//!   otherwise the arrival time less Acct-Delay-Time.
//! - The upsert is idempotent and tolerant of order (times and counters only move forward, a Stop
//!   is never undone), so a replayed queue, a retransmission recorded twice, or several
//!   certradius instances sharing one database leave the same row.

use serde::{Deserialize, Serialize};

use super::record::{AcctRecord, StatusType, terminate_cause_name};

/// `certradius db migrate`: the table with FreeRADIUS's column names plus the certificate of
/// the session, created if missing, and the certradius columns added to an existing FreeRADIUS
/// table. Run inside one transaction under an advisory lock so instances starting together do
/// not race.
pub const SCHEMA: &str = "
SELECT pg_advisory_xact_lock(7256861402345);
CREATE TABLE IF NOT EXISTS radacct (
    radacctid           bigserial PRIMARY KEY,
    acctsessionid       text NOT NULL,
    acctuniqueid        text NOT NULL UNIQUE,
    username            text,
    nasipaddress        inet NOT NULL,
    callingstationid    text,
    calledstationid     text,
    acctstarttime       timestamp with time zone,
    acctupdatetime      timestamp with time zone,
    acctstoptime        timestamp with time zone,
    acctsessiontime     bigint,
    acctinputoctets     bigint,
    acctoutputoctets    bigint,
    acctterminatecause  text,
    framedipaddress     inet
);
ALTER TABLE radacct ADD COLUMN IF NOT EXISTS certificate_serial text;
ALTER TABLE radacct ADD COLUMN IF NOT EXISTS certificate_issuer text;
ALTER TABLE radacct ADD COLUMN IF NOT EXISTS class text;
ALTER TABLE radacct ADD COLUMN IF NOT EXISTS disconnect_claimed_by text;
ALTER TABLE radacct ADD COLUMN IF NOT EXISTS disconnect_claimed_at timestamp with time zone;
CREATE TABLE IF NOT EXISTS certradius_auth (
    class               text PRIMARY KEY,
    certificate_serial  text NOT NULL,
    certificate_issuer  text NOT NULL,
    certificate_subject text,
    ca_chain            text,
    created             timestamp with time zone NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS certradius_auth_created_idx ON certradius_auth (created);
CREATE INDEX IF NOT EXISTS radacct_active_session_idx ON radacct (nasipaddress)
    WHERE acctstoptime IS NULL;
CREATE INDEX IF NOT EXISTS radacct_start_user_idx ON radacct (acctstarttime, username);
";

/// One session's row: inserted by its first record, then only moved forward.
pub const UPSERT: &str = "
INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, callingstationid,
    calledstationid, acctstarttime, acctupdatetime, acctstoptime, acctsessiontime,
    acctinputoctets, acctoutputoctets, acctterminatecause, framedipaddress,
    certificate_serial, certificate_issuer, class)
VALUES ($1, $2, $3, $4::text::inet, $5, $6, to_timestamp($7::float8), to_timestamp($8::float8),
    to_timestamp($9::float8), $10, $11, $12, $13, $14::text::inet, $15, $16, $17)
ON CONFLICT (acctuniqueid) DO UPDATE SET
    username = COALESCE(EXCLUDED.username, radacct.username),
    calledstationid = COALESCE(EXCLUDED.calledstationid, radacct.calledstationid),
    acctstarttime = CASE WHEN $18::bool THEN EXCLUDED.acctstarttime
                         ELSE COALESCE(radacct.acctstarttime, EXCLUDED.acctstarttime) END,
    acctupdatetime = GREATEST(radacct.acctupdatetime, EXCLUDED.acctupdatetime),
    acctstoptime = COALESCE(radacct.acctstoptime, EXCLUDED.acctstoptime),
    acctsessiontime = GREATEST(radacct.acctsessiontime, EXCLUDED.acctsessiontime),
    acctinputoctets = GREATEST(radacct.acctinputoctets, EXCLUDED.acctinputoctets),
    acctoutputoctets = GREATEST(radacct.acctoutputoctets, EXCLUDED.acctoutputoctets),
    acctterminatecause = COALESCE(radacct.acctterminatecause, EXCLUDED.acctterminatecause),
    framedipaddress = COALESCE(EXCLUDED.framedipaddress, radacct.framedipaddress),
    certificate_serial = COALESCE(EXCLUDED.certificate_serial, radacct.certificate_serial),
    certificate_issuer = COALESCE(EXCLUDED.certificate_issuer, radacct.certificate_issuer),
    class = COALESCE(EXCLUDED.class, radacct.class)
";

/// [`UPSERT`] that also takes the certificate from `certradius_auth` when this instance did not
/// authenticate the session (another instance of the pool wrote the link at Access-Accept).
/// Used when the table exists (`certradius db migrate` run); else [`UPSERT`].
pub const UPSERT_LINKED: &str = "
INSERT INTO radacct (acctsessionid, acctuniqueid, username, nasipaddress, callingstationid,
    calledstationid, acctstarttime, acctupdatetime, acctstoptime, acctsessiontime,
    acctinputoctets, acctoutputoctets, acctterminatecause, framedipaddress,
    certificate_serial, certificate_issuer, class)
VALUES ($1, $2, $3, $4::text::inet, $5, $6, to_timestamp($7::float8), to_timestamp($8::float8),
    to_timestamp($9::float8), $10, $11, $12, $13, $14::text::inet,
    COALESCE($15, (SELECT certificate_serial FROM certradius_auth WHERE class = $17)),
    COALESCE($16, (SELECT certificate_issuer FROM certradius_auth WHERE class = $17)), $17)
ON CONFLICT (acctuniqueid) DO UPDATE SET
    username = COALESCE(EXCLUDED.username, radacct.username),
    calledstationid = COALESCE(EXCLUDED.calledstationid, radacct.calledstationid),
    acctstarttime = CASE WHEN $18::bool THEN EXCLUDED.acctstarttime
                         ELSE COALESCE(radacct.acctstarttime, EXCLUDED.acctstarttime) END,
    acctupdatetime = GREATEST(radacct.acctupdatetime, EXCLUDED.acctupdatetime),
    acctstoptime = COALESCE(radacct.acctstoptime, EXCLUDED.acctstoptime),
    acctsessiontime = GREATEST(radacct.acctsessiontime, EXCLUDED.acctsessiontime),
    acctinputoctets = GREATEST(radacct.acctinputoctets, EXCLUDED.acctinputoctets),
    acctoutputoctets = GREATEST(radacct.acctoutputoctets, EXCLUDED.acctoutputoctets),
    acctterminatecause = COALESCE(radacct.acctterminatecause, EXCLUDED.acctterminatecause),
    framedipaddress = COALESCE(EXCLUDED.framedipaddress, radacct.framedipaddress),
    certificate_serial = COALESCE(EXCLUDED.certificate_serial, radacct.certificate_serial),
    certificate_issuer = COALESCE(EXCLUDED.certificate_issuer, radacct.certificate_issuer),
    class = COALESCE(EXCLUDED.class, radacct.class)
";

/// Accounting-On/Off: the NAS restarted, its sessions that began before are over.
pub const CLOSE_NAS: &str = "
UPDATE radacct SET acctstoptime = to_timestamp($2::float8),
    acctupdatetime = to_timestamp($2::float8),
    acctterminatecause = COALESCE(acctterminatecause, 'NAS-Reboot')
WHERE nasipaddress = $1::text::inet AND acctstoptime IS NULL
    AND (acctstarttime IS NULL OR acctstarttime <= to_timestamp($2::float8))
";

/// What a row does to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Start,
    Interim,
    Stop,
    /// Accounting-On / Accounting-Off.
    CloseNas,
}

/// A record as `radacct` values. Times are Unix seconds. Serialized, it is a queue line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub action: Action,
    pub acctsessionid: String,
    pub acctuniqueid: String,
    pub username: Option<String>,
    pub nasipaddress: String,
    pub callingstationid: Option<String>,
    pub calledstationid: Option<String>,
    pub acctstarttime: Option<f64>,
    pub acctupdatetime: Option<f64>,
    pub acctstoptime: Option<f64>,
    pub acctsessiontime: Option<i64>,
    pub acctinputoctets: Option<i64>,
    pub acctoutputoctets: Option<i64>,
    pub acctterminatecause: Option<String>,
    pub framedipaddress: Option<String>,
    pub certificate_serial: Option<String>,
    pub certificate_issuer: Option<String>,
    pub class: Option<String>,
    /// The event time (Unix seconds), for [`Action::CloseNas`].
    pub event_time: f64,
}

/// Peer bytes as PostgreSQL text: UTF-8 kept, other bytes and NUL (which `text` cannot hold) as
/// `\xNN`.
pub(crate) fn db_text(bytes: &[u8]) -> String {
    crate::escape::json_text(bytes).replace('\0', "\\x00")
}

fn counter(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Row {
    /// The row for `record`, received at `arrival` (Unix seconds); `certificate` is (serial,
    /// issuer) of the session's certificate when the session is linked to an authentication.
    /// `None` for status types that are not about a session (RFC 2866 §5.1 values 9–15).
    pub fn from_record(
        record: &AcctRecord,
        arrival: f64,
        certificate: Option<(&str, &str)>,
    ) -> Option<Row> {
        let event = match record.event_timestamp {
            Some(t) => f64::from(t),
            None => arrival - f64::from(record.delay_time.unwrap_or(0)),
        };
        let action = match record.status {
            StatusType::Start => Action::Start,
            StatusType::InterimUpdate => Action::Interim,
            StatusType::Stop => Action::Stop,
            StatusType::AccountingOn | StatusType::AccountingOff => Action::CloseNas,
            StatusType::Other(_) => return None,
        };
        let session_time = record.session_time.map(i64::from);
        // Start: now. Interim/Stop that come first (the Start was lost): estimated from
        // Acct-Session-Time, as FreeRADIUS does.
        let start = match action {
            Action::Start => Some(event),
            _ => Some(event - session_time.unwrap_or(0) as f64),
        };
        let text = |v: &Option<Vec<u8>>| v.as_deref().map(db_text);
        Some(Row {
            action,
            acctsessionid: db_text(&record.acct_session_id),
            acctuniqueid: record.unique_id(),
            username: text(&record.user_name),
            nasipaddress: record.nas_addr.to_string(),
            callingstationid: text(&record.calling_station_id),
            calledstationid: text(&record.called_station_id),
            acctstarttime: start,
            acctupdatetime: Some(event),
            acctstoptime: (action == Action::Stop).then_some(event),
            acctsessiontime: session_time,
            acctinputoctets: record.input_octets.map(counter),
            acctoutputoctets: record.output_octets.map(counter),
            acctterminatecause: record.terminate_cause.map(terminate_cause_name),
            framedipaddress: record.framed_ip.map(|ip| ip.to_string()),
            certificate_serial: certificate.map(|c| db_text(c.0.as_bytes())),
            certificate_issuer: certificate.map(|c| db_text(c.1.as_bytes())),
            // FreeRADIUS prints an octets attribute as 0x-prefixed hex.
            class: record
                .class
                .first()
                .map(|c| format!("0x{}", crate::hex::lower(c))),
            event_time: event,
        })
    }

    /// The queue line (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A queue line back; `None` for a damaged one.
    pub fn from_line(line: &str) -> Option<Row> {
        serde_json::from_str(line).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn record(status: StatusType) -> AcctRecord {
        AcctRecord {
            nas_name: "ap".into(),
            nas_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            status,
            acct_session_id: b"S-1\0".to_vec(),
            user_name: Some(b"alice\xff".to_vec()),
            calling_station_id: Some(b"02-00-00-00-00-01".to_vec()),
            called_station_id: None,
            nas_identifier: None,
            framed_ip: Some(Ipv4Addr::new(10, 0, 0, 7)),
            input_octets: Some(u64::MAX),
            output_octets: Some(9),
            input_packets: None,
            output_packets: None,
            session_time: Some(60),
            terminate_cause: Some(1),
            event_timestamp: None,
            delay_time: Some(2),
            interim_interval: None,
            class: vec![vec![0xab, 0x01]],
        }
    }

    #[test]
    fn stop_row_values_and_queue_line_round_trip() {
        let row =
            Row::from_record(&record(StatusType::Stop), 1000.0, Some(("0A", "CN=CA"))).unwrap();
        assert_eq!(row.action, Action::Stop);
        assert_eq!(row.acctsessionid, "S-1\\x00");
        assert_eq!(row.username.as_deref(), Some("alice\\xFF"));
        assert_eq!(row.acctstoptime, Some(998.0));
        assert_eq!(row.acctstarttime, Some(938.0));
        assert_eq!(row.acctinputoctets, Some(i64::MAX));
        assert_eq!(row.acctterminatecause.as_deref(), Some("User-Request"));
        assert_eq!(row.framedipaddress.as_deref(), Some("10.0.0.7"));
        assert_eq!(row.class.as_deref(), Some("0xab01"));
        assert_eq!(row.certificate_serial.as_deref(), Some("0A"));
        assert_eq!(Row::from_line(&row.to_line()), Some(row));
        assert_eq!(Row::from_line("{\"action\":\"st"), None);
    }

    #[test]
    fn start_uses_event_timestamp_and_others_are_not_rows() {
        let mut r = record(StatusType::Start);
        r.event_timestamp = Some(500);
        let row = Row::from_record(&r, 1000.0, None).unwrap();
        assert_eq!((row.acctstarttime, row.acctstoptime), (Some(500.0), None));
        assert_eq!(
            Row::from_record(&record(StatusType::AccountingOn), 1.0, None)
                .unwrap()
                .action,
            Action::CloseNas
        );
        assert!(Row::from_record(&record(StatusType::Other(9)), 1.0, None).is_none());
    }
}
