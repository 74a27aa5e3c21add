//! A private PostgreSQL cluster in a temporary directory, so that a fault can stop
//! and start a real server without touching the shared one: `initdb` and `pg_ctl`
//! run as the `postgres` user (the suite runs as root, which PostgreSQL refuses).
//! None, said loudly, where the tools are missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::free_port;

pub struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    /// A new cluster, trusting local connections, started.
    pub fn start() -> Option<Cluster> {
        let dir = tempfile::tempdir().expect("temp dir");
        let owned = Command::new("chown")
            .arg("postgres:")
            .arg(dir.path())
            .status();
        if !owned.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: no `postgres` user to own a private cluster");
            return None;
        }
        let data = dir.path().join("data");
        let init = as_postgres("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output();
        match init {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                eprintln!(
                    "SKIPPED: initdb failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                return None;
            }
            Err(e) => {
                eprintln!("SKIPPED: initdb cannot run: {e}");
                return None;
            }
        }
        let cluster = Cluster {
            dir,
            port: free_port(),
        };
        cluster.pg_start();
        Some(cluster)
    }

    /// The cluster's own database, as `--database-url` takes it.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    pub fn pg_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        self.pg_ctl(&["start", "-w", "-o", &options, "-l"], Some(&self.log()));
    }

    /// `pg_ctl stop -m fast`: clients are disconnected, as an operator's restart would.
    pub fn pg_stop(&self) {
        self.pg_ctl(&["stop", "-w", "-m", "fast"], None);
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, args: &[&str], then: Option<&Path>) {
        let out = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(args)
            .args(then)
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["stop", "-m", "immediate"])
            .output();
    }
}

fn as_postgres(tool: &str) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--", tool]);
    command
}
