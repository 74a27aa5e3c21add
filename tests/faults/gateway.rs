//! The gateway under test: the real binary, on ports chosen once so that it can be
//! killed and started again where its terminals expect it, with its data directory
//! and its log kept apart (a full data directory must not stop the log).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{Serving, Spawned, bin, free_addr};
use crate::rss::rss_kib;
use crate::size::Size;

/// The warning every gateway of the suite logs at start, by design.
const DEV_IDENTITY: &str = "DEVELOPMENT IDENTITY MODE";

/// The metrics an operator watches through a fault (docs/observability.md).
const METRICS: [&str; 5] = [
    "onshi_component_healthy",
    "onshi_audit_writer_healthy",
    "onshi_audit_commit_failures_total",
    "onshi_upstream_errors_total",
    "onshi_requests_total",
];

pub struct Gateway {
    pub serving: Serving,
    pub metrics: SocketAddr,
    pub data: PathBuf,
    logs: PathBuf,
    args: Vec<String>,
    starts: usize,
}

impl Gateway {
    /// `serve` with development identities, no per-facility rate (one facility
    /// calls at the rate of many), health probed every 200 ms, its state in `data`,
    /// its logs in `logs`, then `extra`; returns once it listens.
    pub async fn start(data: &Path, logs: &Path, size: &Size, extra: &[&str]) -> Gateway {
        let mut args: Vec<String> = [
            "serve",
            "--dev-identity-from-metadata",
            "--facility-rate-per-sec",
            "0",
            "--health-check-interval-ms",
            "200",
            "--population",
            &size.population.to_string(),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        args.extend(extra.iter().map(ToString::to_string));
        let (addr, admin, metrics) = (free_addr(), free_addr(), free_addr());
        let ports = Ports {
            addr,
            admin,
            metrics,
        };
        let process = spawn(&args, data, &ports, &logs.join("gateway-1.log"));
        let mut gateway = Gateway {
            serving: Serving {
                process,
                addr,
                admin,
            },
            metrics,
            data: data.to_path_buf(),
            logs: logs.to_path_buf(),
            args,
            starts: 1,
        };
        gateway.wait_listening().await;
        gateway
    }

    /// Starts the process again, on the same ports and data (after a kill, say).
    pub async fn restart(&mut self) {
        self.kill();
        self.starts += 1;
        let ports = Ports {
            addr: self.serving.addr,
            admin: self.serving.admin,
            metrics: self.metrics,
        };
        let log = self.logs.join(format!("gateway-{}.log", self.starts));
        self.serving.process = spawn(&self.args, &self.data, &ports, &log);
        self.wait_listening().await;
    }

    async fn wait_listening(&mut self) {
        let (addr, admin) = (self.serving.addr.port(), self.serving.admin.port());
        self.serving.process.wait_listening_async(addr).await;
        self.serving.process.wait_listening_async(admin).await;
    }

    /// Activates Miyagi (04), the prefecture of the load's facility, around now.
    pub fn activate(&self) {
        self.serving.activate_around_now("04", "fault suite");
    }

    pub fn addr(&self) -> SocketAddr {
        self.serving.addr
    }

    pub fn pid(&self) -> u32 {
        self.serving.process.id()
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid()).unwrap_or(0)
    }

    /// SIGKILL, then reaped.
    pub fn kill(&mut self) {
        self.serving.process.kill();
    }

    /// What an operator reading its logs (every start) would have seen: each
    /// distinct warning or error once, with how often it came, in order of first
    /// appearance. Printed after the summary line.
    pub fn print_warnings(&self) {
        let mut seen: Vec<(String, usize)> = Vec::new();
        for start in 1..=self.starts {
            let path = self.logs.join(format!("gateway-{start}.log"));
            let log = std::fs::read_to_string(path).unwrap_or_default();
            for line in log
                .lines()
                .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                .filter(|l| !l.contains(DEV_IDENTITY))
            {
                let key = gist(line);
                match seen.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => *n += 1,
                    None => seen.push((key, 1)),
                }
            }
        }
        for (line, n) in seen {
            println!("    log ({n}x): {line}");
        }
    }

    /// What `/metrics` says now of the parts' health, the access-log writer, the
    /// upstream and refusals (the gauges, and the counters that are not zero), as a
    /// line to print after the summary.
    pub async fn metrics_now(&self, when: &str) -> String {
        let Some(text) = scrape(self.metrics).await else {
            return format!("    metrics {when}: no answer");
        };
        let wanted: Vec<&str> = text
            .lines()
            .filter(|l| METRICS.iter().any(|m| l.starts_with(m)))
            .filter(|l| l.contains("healthy") || !l.ends_with(" 0"))
            .filter(|l| !l.contains("decision=\"allowed\""))
            .collect();
        format!("    metrics {when}: {}", wanted.join("; "))
    }

    /// What the running process wrote to stderr so far.
    pub fn log(&self) -> String {
        self.serving.process.log()
    }
}

struct Ports {
    addr: SocketAddr,
    admin: SocketAddr,
    metrics: SocketAddr,
}

fn spawn(args: &[String], data: &Path, ports: &Ports, log: &Path) -> Spawned {
    Spawned::logged(
        bin()
            .args(args)
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", &ports.addr.to_string()])
            .args(["--admin-listen", &ports.admin.to_string()])
            .args(["--metrics-listen", &ports.metrics.to_string()]),
        log,
    )
}

/// A log line without its timestamp and span, its fields cut short, so that
/// repeats of one event look alike.
fn gist(line: &str) -> String {
    let mut rest = line.split_once(' ').map_or(line, |(_, rest)| rest).trim();
    let level = rest.split(' ').next().unwrap_or_default();
    rest = rest[level.len()..].trim_start();
    // Spans: `grpc{otel.name="…"}:rule{…}: target: message`.
    while let Some(end) = rest.find("}: ").filter(|&end| rest[..end].contains('{')) {
        if rest[..end].contains(": ") {
            break;
        }
        rest = &rest[end + 3..];
    }
    let gist: String = rest.chars().take(160).collect();
    format!("{level} {gist}")
}

/// The `/metrics` text, or None if the gateway does not answer within a second.
async fn scrape(addr: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let get = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = b"GET /metrics HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n";
        stream.write_all(request).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        Some(response)
    };
    tokio::time::timeout(Duration::from_secs(1), get)
        .await
        .ok()
        .flatten()
}
