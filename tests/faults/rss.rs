//! The gateway's resident memory, as the kernel counts it (`VmRSS` in
//! /proc/PID/status), sampled through a fault so that its peak is known.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Resident memory of process `pid` in KiB; None once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The highest resident memory seen since started, sampled every 50 ms.
pub struct PeakRss {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    pub fn start(pid: u32) -> PeakRss {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let seen = peak.clone();
        let task = tokio::spawn(async move {
            while let Some(kib) = rss_kib(pid) {
                seen.fetch_max(kib, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        PeakRss { peak, task }
    }

    pub fn peak_kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.task.abort();
    }
}
