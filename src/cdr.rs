//! Transfer records: one JSON object per line for every transfer the engine attempted,
//! appended to the file named by `[cdr] path`.
//!
//! The engine builds a [`TransferRecord`] when a transfer ends and hands it to a
//! [`RecordWriter`], which never blocks the call task: records go through a bounded queue
//! to one writer task that appends and flushes each line. When the queue is full the
//! record is dropped, counted and logged, because a stalled disk must not delay calls.
//!
//! Each milestone of a transfer is a [`Moment`] read from both clocks. The wall clock gives
//! the RFC 3339 timestamps in the record; the monotonic clock gives the latencies, so a
//! clock step during a transfer does not distort them.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, Serializer};
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{error, info, warn};

/// Records that may wait for the writer task before new ones are dropped. At the sizing
/// estimate of 5 transfers per second this covers minutes of a stalled disk.
const QUEUE_CAPACITY: usize = 1024;

/// The event that started a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// A DTMF key sequence from the agent (RFC 4733 events relayed as RTP).
    Dtmf,
    /// A SIP INFO carrying a DTMF key (application/dtmf-relay).
    Info,
    /// A blind REFER from the agent's phone (RFC 3515).
    Refer,
    /// A REFER with a Replaces header (RFC 3891), an attended transfer.
    ReferReplaces,
    /// A request to the control API.
    Http,
}

/// The outcome of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferResult {
    /// The caller was bridged to the destination hotline.
    Bridged,
    /// The destination did not answer or rejected the call, and the caller stayed with the
    /// agent who was still on the line.
    Failed,
    /// The agent or the caller ended the attempt before the destination answered.
    Cancelled,
    /// The attempt failed after the agent had left, so the caller was called back to the
    /// agent's queue.
    Recalled,
}

/// A point in time read from the wall clock and the monotonic clock together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// Wall-clock time, written to the record as RFC 3339 UTC with microseconds.
    pub wall: SystemTime,
    /// Monotonic time from tokio's clock (which tests can pause), used for latencies.
    pub mono: Instant,
}

impl Moment {
    /// Reads both clocks now.
    pub fn now() -> Moment {
        Moment {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }
}

impl Serialize for Moment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        rfc3339::serialize(&self.wall, serializer)
    }
}

/// The milestones of one transfer. Only `trigger` always exists; a transfer that failed
/// early has no later ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Milestones {
    /// The DTMF key, INFO, REFER or HTTP request that started the transfer arrived.
    pub trigger: Moment,
    /// The INVITE to the destination hotline was handed to the transport.
    pub invite_sent: Option<Moment>,
    /// The first response (provisional or final) from the destination arrived.
    pub first_response: Option<Moment>,
    /// The destination's 2xx arrived.
    pub answer: Option<Moment>,
    /// The caller's media was switched to the destination.
    pub bridge: Option<Moment>,
    /// The transfer reached its result.
    pub end: Option<Moment>,
}

impl Milestones {
    /// Creates the milestones of a transfer triggered at `trigger`.
    pub fn new(trigger: Moment) -> Milestones {
        Milestones {
            trigger,
            invite_sent: None,
            first_response: None,
            answer: None,
            bridge: None,
            end: None,
        }
    }

    /// Computes the delays the engine itself added, from the monotonic times.
    pub fn latency(&self) -> Latency {
        Latency {
            invite_us: elapsed_micros(Some(self.trigger), self.invite_sent),
            bridge_us: elapsed_micros(self.answer, self.bridge),
        }
    }
}

/// Setup delays added by the engine, in microseconds. A delay is absent when one of its
/// milestones was not reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    /// From the trigger to sending the INVITE to the destination (`invite_sent - trigger`).
    pub invite_us: Option<u64>,
    /// From the destination's answer to the bridge (`bridge - answer`).
    pub bridge_us: Option<u64>,
}

/// Microseconds from `start` to `end`, saturating at zero and at `u64::MAX`.
fn elapsed_micros(start: Option<Moment>, end: Option<Moment>) -> Option<u64> {
    let elapsed = end?.mono.saturating_duration_since(start?.mono);
    Some(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
}

/// One transfer, as written to the records file.
///
/// The serialized line contains every field below, the milestones as `timestamps` and the
/// engine's delays computed from them as `latency_us`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    /// The engine's id of the transfer, as the control API shows it.
    pub transfer: String,
    /// Call-ID of the caller's leg (the A leg).
    pub call_id: String,
    /// The engine's session id of the call.
    pub session: u64,
    /// The caller's number as received from the switch.
    pub caller: String,
    /// Id of this engine's own hotline in the dialplan, such as `tianjin`.
    pub from_hotline: String,
    /// Work id of the agent who started the transfer, when known.
    pub agent: Option<String>,
    /// Dialplan id of the destination hotline, such as `beijing`.
    pub destination: String,
    pub trigger: TriggerKind,
    /// Catalogue code of the matter, when the agent gave one.
    pub matter: Option<String>,
    /// The transferring side's work-order number.
    pub ticket: Option<String>,
    /// Short summary for the receiving operator.
    pub note: Option<String>,
    pub result: TransferResult,
    /// The reason the transfer failed or was cancelled, in words.
    pub cause: Option<String>,
    /// Final SIP status from the destination, when one arrived.
    pub sip_status: Option<u16>,
    /// Trunk or gateway the INVITE went to, as named in the dialplan.
    pub gateway: Option<String>,
    pub milestones: Milestones,
}

impl TransferRecord {
    /// Serializes the record as one JSON line, newline included.
    ///
    /// # Errors
    ///
    /// Only serde_json's own failures, which the record's types do not produce.
    pub fn to_line(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut line = serde_json::to_vec(self)?;
        line.push(b'\n');
        Ok(line)
    }
}

impl Serialize for TransferRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RecordLine {
            transfer: &self.transfer,
            call_id: &self.call_id,
            session: self.session,
            caller: &self.caller,
            from_hotline: &self.from_hotline,
            agent: self.agent.as_deref(),
            destination: &self.destination,
            trigger: self.trigger,
            matter: self.matter.as_deref(),
            ticket: self.ticket.as_deref(),
            note: self.note.as_deref(),
            result: self.result,
            cause: self.cause.as_deref(),
            sip_status: self.sip_status,
            gateway: self.gateway.as_deref(),
            timestamps: &self.milestones,
            latency_us: self.milestones.latency(),
        }
        .serialize(serializer)
    }
}

/// The layout of one line in the records file.
#[derive(Serialize)]
struct RecordLine<'a> {
    transfer: &'a str,
    call_id: &'a str,
    session: u64,
    caller: &'a str,
    from_hotline: &'a str,
    agent: Option<&'a str>,
    destination: &'a str,
    trigger: TriggerKind,
    matter: Option<&'a str>,
    ticket: Option<&'a str>,
    note: Option<&'a str>,
    result: TransferResult,
    cause: Option<&'a str>,
    sip_status: Option<u16>,
    gateway: Option<&'a str>,
    timestamps: &'a Milestones,
    latency_us: Latency,
}

/// Failure to start the records writer or to flush it.
#[derive(Debug, thiserror::Error)]
pub enum CdrError {
    #[error("failed to create the records directory {}: {source}", path.display())]
    CreateDirectory { path: PathBuf, source: io::Error },
    #[error("failed to open the records file {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("the records writer for {} has stopped", path.display())]
    Stopped { path: PathBuf },
}

/// A message to the writer task.
enum Command {
    Write(Box<TransferRecord>),
    /// Answer once every record queued before this one is written.
    Flush(oneshot::Sender<()>),
}

/// Appends transfer records to a JSON-lines file from a background task. Cloning is cheap
/// and every clone feeds the same task, which ends when the last clone is dropped.
#[derive(Clone)]
pub struct RecordWriter {
    inner: Option<Arc<Shared>>,
}

struct Shared {
    path: PathBuf,
    sender: mpsc::Sender<Command>,
    /// Records dropped because the queue was full or the task had stopped.
    dropped: AtomicU64,
    /// Records the task failed to write, shared with the task.
    failed: Arc<AtomicU64>,
}

impl RecordWriter {
    /// Creates the directory of `path` if missing, opens the file for appending and starts
    /// the writer task. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`CdrError::CreateDirectory`] or [`CdrError::Open`] with the OS error.
    pub async fn start(path: &Path) -> Result<RecordWriter, CdrError> {
        if let Some(directory) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(directory)
                .await
                .map_err(|source| CdrError::CreateDirectory {
                    path: directory.to_owned(),
                    source,
                })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|source| CdrError::Open {
                path: path.to_owned(),
                source,
            })?;

        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let failed = Arc::new(AtomicU64::new(0));
        tokio::spawn(write_records(
            file,
            path.to_owned(),
            receiver,
            Arc::clone(&failed),
        ));
        info!(path = %path.display(), "writing transfer records");
        Ok(RecordWriter {
            inner: Some(Arc::new(Shared {
                path: path.to_owned(),
                sender,
                dropped: AtomicU64::new(0),
                failed,
            })),
        })
    }

    /// A writer that discards every record, for `[cdr] enabled = false`.
    pub fn disabled() -> RecordWriter {
        RecordWriter { inner: None }
    }

    /// Whether records are written at all.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `record` for writing without waiting. When the queue is full or the task has
    /// stopped, the record is dropped, counted and logged at warn.
    pub fn write(&self, record: TransferRecord) {
        let Some(shared) = &self.inner else {
            return;
        };
        let transfer = record.transfer.clone();
        let Err(error) = shared.sender.try_send(Command::Write(Box::new(record))) else {
            return;
        };

        let dropped = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // Power-of-two counts keep a long stall from flooding the log.
        if dropped.is_power_of_two() {
            let reason = match error {
                mpsc::error::TrySendError::Full(_) => "queue full",
                mpsc::error::TrySendError::Closed(_) => "writer stopped",
            };
            warn!(
                %transfer,
                reason,
                dropped,
                path = %shared.path.display(),
                "transfer record dropped"
            );
        }
    }

    /// Waits until every record queued before this call is written and flushed.
    ///
    /// # Errors
    ///
    /// [`CdrError::Stopped`] when the writer task has ended.
    pub async fn flush(&self) -> Result<(), CdrError> {
        let Some(shared) = &self.inner else {
            return Ok(());
        };
        let stopped = || CdrError::Stopped {
            path: shared.path.clone(),
        };
        let (done, wait) = oneshot::channel();
        shared
            .sender
            .send(Command::Flush(done))
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())
    }

    /// Records dropped because the queue was full or the writer had stopped.
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |shared| shared.dropped.load(Ordering::Relaxed))
    }

    /// Records the writer task failed to serialize or write.
    pub fn failed(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |shared| shared.failed.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for RecordWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Some(shared) => f
                .debug_struct("RecordWriter")
                .field("path", &shared.path)
                .finish_non_exhaustive(),
            None => f.write_str("RecordWriter(disabled)"),
        }
    }
}

/// The writer task: appends and flushes one line per record until every sender is gone.
// NOTE: the file stays open for the life of the task, so log rotation by renaming keeps
// writing to the renamed file; rotate with copy-and-truncate instead.
async fn write_records(
    mut file: File,
    path: PathBuf,
    mut receiver: mpsc::Receiver<Command>,
    failed: Arc<AtomicU64>,
) {
    while let Some(command) = receiver.recv().await {
        let record = match command {
            Command::Write(record) => record,
            Command::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        if let Err(reason) = append(&mut file, &record).await {
            let failures = failed.fetch_add(1, Ordering::Relaxed) + 1;
            if failures.is_power_of_two() {
                error!(
                    transfer = %record.transfer,
                    path = %path.display(),
                    %reason,
                    failures,
                    "failed to write transfer record"
                );
            }
        }
    }
}

async fn append(file: &mut File, record: &TransferRecord) -> io::Result<()> {
    let line = record.to_line().map_err(io::Error::other)?;
    file.write_all(&line).await?;
    file.flush().await
}

/// Serde helpers for `SystemTime` as RFC 3339 UTC text with microseconds, such as
/// `2024-05-01T08:30:00.123456Z`. Times before 1970 or after 9999 are written as the
/// nearest representable time, because RFC 3339 has four-digit years.
pub mod rfc3339 {
    use super::*;

    /// Last microsecond of the year 9999, in seconds and microseconds since 1970.
    const MAX_SECS: u64 = 253_402_300_799;
    const MAX_MICROS: u32 = 999_999;

    /// Formats `time` as RFC 3339 UTC with six fractional digits.
    pub fn format(time: SystemTime) -> String {
        let max = UNIX_EPOCH + Duration::new(MAX_SECS, MAX_MICROS * 1000);
        let clamped = time.clamp(UNIX_EPOCH, max);
        humantime::format_rfc3339_micros(clamped).to_string()
    }

    pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*time))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<SystemTime>`, with `None` as `null`.
    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(
            time: &Option<SystemTime>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match time {
                Some(time) => serializer.serialize_some(&format(*time)),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: serde::Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            let Some(text) = Option::<String>::deserialize(deserializer)? else {
                return Ok(None);
            };
            let time = humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)?;
            Ok(Some(time))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

    /// A fresh directory under the system temporary directory, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let unique = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "hotline-cdr-{}-{name}-{unique}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A bridged transfer with milestones 1.5 ms, 40 ms, 2 s and 2.0003 s after the trigger.
    fn bridged_record() -> TransferRecord {
        let trigger = Moment {
            wall: UNIX_EPOCH + Duration::new(1_714_552_200, 123_456_789),
            mono: Instant::now(),
        };
        let after = |micros: u64| Moment {
            wall: trigger.wall + Duration::from_micros(micros),
            mono: trigger.mono + Duration::from_micros(micros),
        };
        let mut milestones = Milestones::new(trigger);
        milestones.invite_sent = Some(after(1_500));
        milestones.first_response = Some(after(40_000));
        milestones.answer = Some(after(2_000_000));
        milestones.bridge = Some(after(2_000_300));
        milestones.end = Some(after(2_000_300));
        TransferRecord {
            transfer: "t-7".to_owned(),
            call_id: "a84b4c76e66710@switch".to_owned(),
            session: 42,
            caller: "+8613800138000".to_owned(),
            from_hotline: "tianjin".to_owned(),
            agent: Some("1001".to_owned()),
            destination: "beijing".to_owned(),
            trigger: TriggerKind::Http,
            matter: Some("SB01".to_owned()),
            ticket: Some("TJ20240501000123".to_owned()),
            note: Some("医保异地报销".to_owned()),
            result: TransferResult::Bridged,
            cause: None,
            sip_status: Some(200),
            gateway: Some("bj-trunk-1".to_owned()),
            milestones,
        }
    }

    fn parse_line(line: &[u8]) -> Value {
        serde_json::from_slice(line).expect("line is JSON")
    }

    #[test]
    fn record_serializes_every_field() {
        let line = bridged_record().to_line().expect("serialize");
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&byte| byte == b'\n').count(), 1);

        let expected = json!({
            "transfer": "t-7",
            "call_id": "a84b4c76e66710@switch",
            "session": 42,
            "caller": "+8613800138000",
            "from_hotline": "tianjin",
            "agent": "1001",
            "destination": "beijing",
            "trigger": "http",
            "matter": "SB01",
            "ticket": "TJ20240501000123",
            "note": "医保异地报销",
            "result": "bridged",
            "cause": null,
            "sip_status": 200,
            "gateway": "bj-trunk-1",
            "timestamps": {
                "trigger": "2024-05-01T08:30:00.123456Z",
                "invite_sent": "2024-05-01T08:30:00.124956Z",
                "first_response": "2024-05-01T08:30:00.163456Z",
                "answer": "2024-05-01T08:30:02.123456Z",
                "bridge": "2024-05-01T08:30:02.123756Z",
                "end": "2024-05-01T08:30:02.123756Z",
            },
            "latency_us": { "invite_us": 1500, "bridge_us": 300 },
        });
        assert_eq!(parse_line(&line), expected);
    }

    #[test]
    fn failed_record_has_nulls() {
        let mut record = bridged_record();
        record.result = TransferResult::Failed;
        record.cause = Some("destination busy".to_owned());
        record.sip_status = Some(486);
        record.milestones.answer = None;
        record.milestones.bridge = None;

        let value = parse_line(&record.to_line().expect("serialize"));
        assert_eq!(value["result"], "failed");
        assert_eq!(value["cause"], "destination busy");
        assert_eq!(value["sip_status"], 486);
        assert_eq!(value["timestamps"]["answer"], Value::Null);
        assert_eq!(value["timestamps"]["bridge"], Value::Null);
        assert_eq!(value["latency_us"]["invite_us"], 1500);
        assert_eq!(value["latency_us"]["bridge_us"], Value::Null);
    }

    #[test]
    fn latency_uses_monotonic_clock() {
        let mut record = bridged_record();
        // A wall-clock step backwards during the transfer leaves the latency alone.
        let invite = record.milestones.invite_sent.as_mut().expect("set");
        invite.wall = record.milestones.trigger.wall - Duration::from_secs(3600);

        let latency = record.milestones.latency();
        assert_eq!(latency.invite_us, Some(1500));
        assert_eq!(latency.bridge_us, Some(300));
    }

    #[test]
    fn latency_saturates_at_zero() {
        let trigger = Moment::now();
        let mut milestones = Milestones::new(trigger);
        milestones.invite_sent = Some(Moment {
            wall: trigger.wall,
            mono: trigger.mono - Duration::from_millis(1),
        });
        assert_eq!(milestones.latency().invite_us, Some(0));
    }

    #[test]
    fn rfc3339_clamps_out_of_range() {
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(rfc3339::format(before_epoch), "1970-01-01T00:00:00.000000Z");
        let far_future = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(rfc3339::format(far_future), "9999-12-31T23:59:59.999999Z");
    }

    #[tokio::test]
    async fn writer_creates_directory_and_appends() {
        let dir = TempDir::new("append");
        let path = dir.0.join("records").join("transfers.jsonl");
        let writer = RecordWriter::start(&path).await.expect("start");
        assert!(writer.is_enabled());

        let first = bridged_record();
        let mut second = bridged_record();
        second.transfer = "t-8".to_owned();
        second.result = TransferResult::Cancelled;
        writer.write(first);
        writer.write(second);
        writer.flush().await.expect("flush");

        let text = std::fs::read_to_string(&path).expect("read records");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let first = parse_line(lines[0].as_bytes());
        let second = parse_line(lines[1].as_bytes());
        assert_eq!(first["transfer"], "t-7");
        assert_eq!(second["transfer"], "t-8");
        assert_eq!(second["result"], "cancelled");
        assert_eq!(writer.dropped(), 0);
        assert_eq!(writer.failed(), 0);
    }

    #[tokio::test]
    async fn writer_appends_to_existing_file() {
        let dir = TempDir::new("existing");
        std::fs::create_dir_all(&dir.0).expect("create dir");
        let path = dir.0.join("transfers.jsonl");
        std::fs::write(&path, "{\"old\":true}\n").expect("write old line");

        let writer = RecordWriter::start(&path).await.expect("start");
        writer.write(bridged_record());
        writer.flush().await.expect("flush");

        let text = std::fs::read_to_string(&path).expect("read records");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "{\"old\":true}");
        assert_eq!(parse_line(lines[1].as_bytes())["transfer"], "t-7");
    }

    #[tokio::test]
    async fn writer_drops_when_queue_full() {
        let dir = TempDir::new("full");
        let path = dir.0.join("transfers.jsonl");
        // A current-thread runtime does not run the writer task until this test yields, so
        // the queue fills up.
        let writer = RecordWriter::start(&path).await.expect("start");
        for _ in 0..QUEUE_CAPACITY + 3 {
            writer.write(bridged_record());
        }
        assert_eq!(writer.dropped(), 3);

        writer.flush().await.expect("flush");
        let text = std::fs::read_to_string(&path).expect("read records");
        assert_eq!(text.lines().count(), QUEUE_CAPACITY);
    }

    #[tokio::test]
    async fn writer_reports_unwritable_path() {
        let dir = TempDir::new("unwritable");
        std::fs::create_dir_all(&dir.0).expect("create dir");
        // A directory where the file should be cannot be opened for appending.
        let path = dir.0.join("transfers.jsonl");
        std::fs::create_dir_all(&path).expect("create blocking dir");

        let error = RecordWriter::start(&path).await.unwrap_err();
        assert!(matches!(error, CdrError::Open { .. }), "{error}");
    }

    #[tokio::test]
    async fn disabled_writer_discards() {
        let writer = RecordWriter::disabled();
        assert!(!writer.is_enabled());
        writer.write(bridged_record());
        writer.flush().await.expect("flush");
        assert_eq!(writer.dropped(), 0);
    }
}
