//! The operation log writer: calls hand rows to a bounded queue and go on; a writer thread
//! writes them in batches, one transaction each. When the database is slow or down the queue
//! fills and further rows are dropped and counted (the calls never wait); a stop flushes what is
//! queued. A retention pass prunes old rows every minute.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use vmcp_domain::LogEntry;
use vmcp_store::{NewLog, Store, StoreError};

use crate::GatewayEvent;

/// Settings of the operation log.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Rows the queue holds before it drops.
    pub queue: usize,
    /// Most rows per transaction.
    pub batch: usize,
    /// Delete rows older than this.
    pub max_age: Option<Duration>,
    /// Keep at most this many rows.
    pub max_rows: Option<u64>,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            queue: 10_000,
            batch: 500,
            max_age: Some(Duration::from_secs(30 * 24 * 3600)),
            max_rows: None,
        }
    }
}

#[derive(Default)]
struct Counters {
    queued: AtomicUsize,
    dropped: AtomicU64,
    written: AtomicU64,
}

/// See the module documentation.
pub struct OpLog {
    tx: Mutex<Option<SyncSender<LogEntry>>>,
    counters: Arc<Counters>,
    writer: Mutex<Option<JoinHandle<()>>>,
    events: broadcast::Sender<GatewayEvent>,
}

impl OpLog {
    pub fn start(
        store: Store,
        events: broadcast::Sender<GatewayEvent>,
        options: LogOptions,
    ) -> Self {
        let (tx, rx) = sync_channel(options.queue);
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let writer = std::thread::Builder::new()
            .name("vmcp-oplog".into())
            .spawn(move || write_loop(store, rx, c, options))
            .expect("start the log writer thread");
        Self {
            tx: Mutex::new(Some(tx)),
            counters,
            writer: Mutex::new(Some(writer)),
            events,
        }
    }

    /// Queues a row (never waits) and tells the gateway's listeners.
    pub fn record(&self, entry: LogEntry) {
        let _ = self
            .events
            .send(GatewayEvent::Operation(Box::new(entry.clone())));
        let tx = self.tx.lock().expect("log queue lock").clone();
        let Some(tx) = tx else {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match tx.try_send(entry) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(dropped, "the operation log cannot keep up: rows dropped");
                }
            }
        }
    }

    /// Rows dropped since start.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Rows waiting to be written.
    pub fn depth(&self) -> usize {
        self.counters.queued.load(Ordering::Relaxed)
    }

    /// Rows written since start.
    pub fn written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Stops taking rows and writes every queued one (waits at most `patience`).
    pub fn flush_and_stop(&self, patience: Duration) {
        self.tx.lock().expect("log queue lock").take();
        let writer = self.writer.lock().expect("writer lock").take();
        if let Some(w) = writer {
            let deadline = Instant::now() + patience;
            while !w.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if w.is_finished() {
                let _ = w.join();
            } else {
                tracing::warn!(
                    left = self.depth(),
                    "the operation log did not flush in time"
                );
            }
        }
    }
}

fn write_loop(store: Store, rx: Receiver<LogEntry>, counters: Arc<Counters>, options: LogOptions) {
    let mut last_prune = Instant::now() - Duration::from_secs(3600);
    let mut batch: Vec<NewLog> = Vec::with_capacity(options.batch);
    loop {
        let first = rx.recv_timeout(Duration::from_secs(1));
        let closed = matches!(first, Err(RecvTimeoutError::Disconnected));
        if let Ok(entry) = first {
            batch.push(NewLog::from_entry(&entry));
            while batch.len() < options.batch {
                match rx.try_recv() {
                    Ok(e) => batch.push(NewLog::from_entry(&e)),
                    Err(_) => break,
                }
            }
        }
        if !batch.is_empty() {
            let n = batch.len();
            write_batch(&store, &batch, closed, &counters);
            counters.queued.fetch_sub(n, Ordering::Relaxed);
            batch.clear();
        }
        if closed {
            return;
        }
        if last_prune.elapsed() > Duration::from_secs(60)
            && (options.max_age.is_some() || options.max_rows.is_some())
        {
            last_prune = Instant::now();
            let before = options
                .max_age
                .and_then(|age| chrono::Duration::from_std(age).ok())
                .map(|age| (chrono::Utc::now() - age).naive_utc());
            match store.prune_logs(before, options.max_rows) {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "pruned old operation log rows"),
                Err(e) => tracing::warn!(error = %e, "pruning the operation log failed"),
            }
        }
    }
}

/// Writes a batch. When the database is unavailable the batch is retried a few times, then
/// dropped. When the database refuses the rows themselves, the batch is split in halves until
/// each row that still fails stands alone: that row is dropped (counted and logged with its id),
/// every other row is written. A lone row refused as a duplicate is already stored (an attempt
/// whose answer was lost wrote it): it counts as written, not dropped.
fn write_batch(store: &Store, rows: &[NewLog], closed: bool, counters: &Counters) {
    let n = rows.len();
    let mut attempt = 0;
    loop {
        match store.insert_logs(rows) {
            Ok(_) => {
                counters.written.fetch_add(n as u64, Ordering::Relaxed);
                return;
            }
            Err(e @ StoreError::Unavailable(_)) if attempt < 3 && !closed => {
                attempt += 1;
                tracing::warn!(error = %e, rows = n, attempt, "writing the operation log failed; retrying");
                std::thread::sleep(Duration::from_millis(200 * attempt));
            }
            Err(e @ StoreError::Unavailable(_)) => {
                tracing::error!(error = %e, rows = n, "writing the operation log failed: rows dropped");
                counters.dropped.fetch_add(n as u64, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                if n > 1 {
                    tracing::warn!(error = %e, rows = n, "the database refused a batch of the operation log; splitting it to find the rows it refuses");
                }
                bisect(store, rows, e, counters);
                return;
            }
        }
    }
}

/// Writes `rows`, which failed together with `error`, by halves.
fn bisect(store: &Store, rows: &[NewLog], error: StoreError, counters: &Counters) {
    if rows.len() == 1 {
        if error.is_unique_violation() {
            // Log ids are random: this row is the one stored by an earlier attempt whose answer
            // was lost (a connection cut after the commit).
            tracing::debug!(log_id = %rows[0].id, "operation log row already written");
            counters.written.fetch_add(1, Ordering::Relaxed);
            return;
        }
        tracing::error!(error = %error, log_id = %rows[0].id, "the database refused an operation log row: row dropped");
        counters.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let (left, right) = rows.split_at(rows.len() / 2);
    for half in [left, right] {
        match store.insert_logs(half) {
            Ok(_) => {
                counters
                    .written
                    .fetch_add(half.len() as u64, Ordering::Relaxed);
            }
            Err(e @ StoreError::Unavailable(_)) => {
                tracing::error!(error = %e, rows = half.len(), "writing the operation log failed: rows dropped");
                counters
                    .dropped
                    .fetch_add(half.len() as u64, Ordering::Relaxed);
            }
            Err(e) => bisect(store, half, e, counters),
        }
    }
}
