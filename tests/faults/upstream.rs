//! The upstream OQS as a process of its own (`onshi-gateway upstream`), so that it
//! can be SIGKILLed and started again on the same port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::process::{Spawned, bin, free_addr};

pub struct Simulator {
    pub process: Spawned,
    pub addr: SocketAddr,
    population: usize,
    logs: PathBuf,
    starts: usize,
}

impl Simulator {
    /// `upstream --listen` a free port with `population` persons; returns once it
    /// listens.
    pub async fn start(logs: &Path, population: usize) -> Simulator {
        let addr = free_addr();
        let mut simulator = Simulator {
            process: spawn(addr, population, &logs.join("upstream-1.log")),
            addr,
            population,
            logs: logs.to_path_buf(),
            starts: 1,
        };
        simulator.process.wait_listening_async(addr.port()).await;
        simulator
    }

    /// SIGKILL, then reaped.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same port; returns once it listens.
    pub async fn restart(&mut self) {
        self.kill();
        self.starts += 1;
        let log = self.logs.join(format!("upstream-{}.log", self.starts));
        self.process = spawn(self.addr, self.population, &log);
        self.process.wait_listening_async(self.addr.port()).await;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn spawn(addr: SocketAddr, population: usize, log: &Path) -> Spawned {
    Spawned::logged(
        bin()
            .args(["upstream", "--listen", &addr.to_string()])
            .args(["--population", &population.to_string()]),
        log,
    )
}
