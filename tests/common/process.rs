//! The real binary as a child process of a test: the command without the caller's
//! ONSHI_* variables, free ports, a guard that kills and reaps the process however
//! the test ends, and a gateway serving on free ports, plain or with the
//! development PKI. Include with `#[path = "common/process.rs"] mod process;`.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use onshi_gateway::domain::jst::today_jst;

/// How long a process may take to listen; the machine may be busy building.
const STARTUP: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(50);

/// The binary, with no ONSHI_* variable of the caller's environment: only what
/// the test passes decides what runs and where its state lives.
pub fn bin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onshi-gateway"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ONSHI_") {
            command.env_remove(name);
        }
    }
    command
}

/// Where handed-out ports begin; they end below the kernel's ephemeral range.
const FIRST_PORT: u16 = 10_000;
/// How many ports this process has handed out, so that no two of its tests get one.
static HANDED_OUT: AtomicU32 = AtomicU32::new(0);

/// An address on 127.0.0.1 that nothing listens on (yet), for a child to bind.
///
/// The port lies below the kernel's ephemeral range. A port from `bind(:0)` is
/// free again once the test lets it go, and in the second before the child binds
/// it an outgoing connection (to PostgreSQL, say) or another `:0` listener may
/// take it; neither ever draws from below that range.
pub fn free_addr() -> SocketAddr {
    let end = ephemeral_start().max(FIRST_PORT + 1_000);
    let span = u32::from(end - FIRST_PORT);
    // Each test process starts at its own place, so that two side by side seldom meet.
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let n = HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        let offset = u16::try_from((start + n) % span).expect("below the range's end");
        let addr = SocketAddr::from(([127, 0, 0, 1], FIRST_PORT + offset));
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free port in {FIRST_PORT}..{end}");
}

/// The first port of the kernel's ephemeral range (Linux's default when unknown).
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

pub fn free_port() -> u16 {
    free_addr().port()
}

/// A process the test started (a gateway, an upstream): killed (SIGKILL) and
/// reaped when dropped, so that a failing test leaves nothing running.
pub struct Spawned {
    pub child: Child,
    /// Where its stderr goes, when kept.
    log: Option<PathBuf>,
}

impl Spawned {
    /// Starts `command` with the standard streams it was given.
    pub fn start(command: &mut Command) -> Spawned {
        Spawned {
            child: command.spawn().expect("the process starts"),
            log: None,
        }
    }

    /// Starts `command` with its stdout discarded and its stderr written to `log`.
    pub fn logged(command: &mut Command, log: &Path) -> Spawned {
        let stderr = std::fs::File::create(log).expect("log file");
        Spawned {
            child: command
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("the process starts"),
            log: Some(log.to_path_buf()),
        }
    }

    /// What it wrote to stderr so far; empty when not kept.
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Blocks until something accepts connections on 127.0.0.1:`port`.
    pub fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + STARTUP;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            self.assert_starting(port, deadline);
            std::thread::sleep(POLL);
        }
    }

    /// `wait_listening` for async tests.
    pub async fn wait_listening_async(&mut self, port: u16) {
        let deadline = Instant::now() + STARTUP;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            self.assert_starting(port, deadline);
            tokio::time::sleep(POLL).await;
        }
    }

    /// Fails with its log if it exited, or if `deadline` passed.
    fn assert_starting(&mut self, port: u16, deadline: Instant) {
        if let Some(status) = self.exited() {
            panic!(
                "exited before listening on {port} ({status}):\n{}",
                self.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "nothing listens on {port} after {} s:\n{}",
            STARTUP.as_secs(),
            self.log()
        );
    }

    /// Sends SIGTERM, as an init system stopping it would.
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM to {}: {sent}", self.id());
    }

    /// Blocks until it exits, for at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILL, then reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A gateway serving on free ports; killed and reaped when dropped.
pub struct Serving {
    pub process: Spawned,
    /// The terminals' listener.
    pub addr: SocketAddr,
    /// The operators' listener.
    pub admin: SocketAddr,
}

impl Serving {
    /// Starts `command` (the binary, `serve` and its other flags) with both
    /// listeners on free ports and the metrics on any, its stderr in `log`.
    fn start(command: &mut Command, log: &Path) -> Serving {
        let (addr, admin) = (free_addr(), free_addr());
        let process = Spawned::logged(
            command
                .args(["--listen", &addr.to_string()])
                .args(["--admin-listen", &admin.to_string()])
                .args(["--metrics-listen", "127.0.0.1:0"]),
            log,
        );
        Serving {
            process,
            addr,
            admin,
        }
    }

    /// `start`, then blocks until both listeners accept connections.
    pub fn serve(command: &mut Command, log: &Path) -> Serving {
        let mut serving = Serving::start(command, log);
        serving.process.wait_listening(serving.addr.port());
        serving.process.wait_listening(serving.admin.port());
        serving
    }

    /// `serve` for async tests.
    pub async fn serve_async(command: &mut Command, log: &Path) -> Serving {
        let mut serving = Serving::start(command, log);
        serving
            .process
            .wait_listening_async(serving.addr.port())
            .await;
        serving
            .process
            .wait_listening_async(serving.admin.port())
            .await;
        serving
    }

    /// The operators' address for `--admin`, without TLS.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// Activates `prefecture` from yesterday to the day after tomorrow, Japan time,
    /// so that "now" is covered whatever the hour: `activation create` at the
    /// operators' listener, as an operator would.
    pub fn activate_around_now(&self, prefecture: &str, event: &str) {
        let today = today_jst(chrono::Utc::now());
        let from = (today - chrono::Days::new(1)).to_string();
        let until = (today + chrono::Days::new(2)).to_string();
        let added = bin()
            .args(["activation", "create", "--event", event, "--by", "test"])
            .args([
                "--prefecture",
                prefecture,
                "--from",
                &from,
                "--until",
                &until,
            ])
            .args(["--admin", &self.admin_url()])
            .output()
            .expect("activation create runs");
        assert!(
            added.status.success(),
            "activation create: {}{}\ngateway:\n{}",
            String::from_utf8_lossy(&added.stdout),
            String::from_utf8_lossy(&added.stderr),
            self.process.log()
        );
    }
}

/// `certs dev --dir DIR/certs ARGS`: a development PKI, as an operator makes one.
pub fn dev_certs(dir: &Path, args: &[&str]) -> PathBuf {
    let certs = dir.join("certs");
    let out = bin()
        .args(["certs", "dev", "--dir"])
        .arg(&certs)
        .args(args)
        .output()
        .expect("certs dev runs");
    assert!(
        out.status.success(),
        "certs dev: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    certs
}

/// A gateway serving with mutual TLS on free ports, with the development PKI, in
/// a temporary directory of its own; killed when dropped.
pub struct TlsGateway {
    pub serving: Serving,
    /// The PKI `certs dev` wrote.
    pub certs: PathBuf,
    /// The gateway's state.
    pub data: PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsGateway {
    /// `certs dev CERTS_ARGS`, then `serve --tls-dir` with it and `SERVE_ARGS`.
    pub fn start(certs_args: &[&str], serve_args: &[&str]) -> TlsGateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = dev_certs(dir.path(), certs_args);
        let data = dir.path().join("data");
        let serving = Serving::serve(
            bin()
                .arg("serve")
                .arg("--tls-dir")
                .arg(&certs)
                .arg("--data-dir")
                .arg(&data)
                .args(serve_args),
            &dir.path().join("gateway.log"),
        );
        TlsGateway {
            serving,
            certs,
            data,
            _dir: dir,
        }
    }

    /// A file of the PKI, for a flag.
    pub fn file(&self, name: &str) -> String {
        self.certs.join(name).display().to_string()
    }

    /// `--ca`, `--cert` and `--key` for the activation commands: the gateway's CA
    /// and the development certificate of `operator` (`activation-manager`,
    /// `auditor`).
    pub fn operator_flags(&self, operator: &str) -> [String; 6] {
        [
            "--ca".into(),
            self.file("server-ca.pem"),
            "--cert".into(),
            self.file(&format!("operator-{operator}.pem")),
            "--key".into(),
            self.file(&format!("operator-{operator}.key")),
        ]
    }
}
