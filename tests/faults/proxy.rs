//! The suite's own TCP fault proxy, between the gateway and what it depends on (the
//! upstream OQS, PostgreSQL): it forwards, or refuses new connections as a stopped
//! server's host does (it stops listening: the kernel answers with a reset, and the
//! client sees "connection refused", which clients treat differently from a reset
//! after connecting), or swallows them as a host gone dark would; it can reset
//! every open connection at once, delay every chunk by a latency (a delay line, so
//! concurrent streams are not serialised), and cut each new connection after it
//! forwarded a number of reply bytes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// What happens to a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forwarded both ways.
    Pass,
    /// Refused: nothing listens, as on a host whose server stopped.
    Refuse,
    /// Accepted and never answered, as a host gone dark would.
    Blackhole,
}

struct Shared {
    target: SocketAddr,
    mode: watch::Sender<Mode>,
    latency_us: AtomicU64,
    /// Reply bytes a new connection forwards before it is cut; 0: never cut.
    cut_after: AtomicUsize,
    /// Bumped to reset every connection open now.
    cuts: watch::Sender<u64>,
}

impl Shared {
    fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }
}

pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// A proxy to `target` on a free loopback port, passing.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            target,
            mode: watch::channel(Mode::Pass).0,
            latency_us: AtomicU64::new(0),
            cut_after: AtomicUsize::new(0),
            cuts: watch::channel(0).0,
        });
        let accept = tokio::spawn(accept_loop(addr, listener, shared.clone()));
        Proxy {
            addr,
            shared,
            accept,
        }
    }

    /// `http://ADDR`, for a gRPC client or `--upstream`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.mode.send_replace(mode);
    }

    /// Every chunk from now on is forwarded this long after it arrived.
    pub fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.shared.latency_us.store(us, Ordering::Relaxed);
    }

    /// Each connection accepted from now on is reset after it forwarded `bytes`
    /// towards the client; None: never.
    pub fn cut_replies_after(&self, bytes: Option<usize>) {
        self.shared
            .cut_after
            .store(bytes.unwrap_or(0), Ordering::Relaxed);
    }

    /// Resets every connection open now (both sides see a reset).
    pub fn cut_all(&self) {
        self.shared.cuts.send_modify(|n| *n += 1);
    }

    /// The server is gone: open connections reset, new ones refused.
    pub fn outage(&self) {
        self.set_mode(Mode::Refuse);
        self.cut_all();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_all();
    }
}

/// Accepts while not refusing; refusing, it closes its listener, and binds the same
/// address again when told to accept.
async fn accept_loop(addr: SocketAddr, listener: TcpListener, shared: Arc<Shared>) {
    let mut modes = shared.mode.subscribe();
    let mut listener = Some(listener);
    loop {
        if *modes.borrow_and_update() == Mode::Refuse {
            listener = None;
            if modes.changed().await.is_err() {
                return;
            }
            continue;
        }
        let open = match listener.take() {
            Some(open) => open,
            None => rebind(addr).await,
        };
        tokio::select! {
            accepted = open.accept() => {
                if let Ok((inbound, _)) = accepted {
                    handle(inbound, &shared);
                }
            }
            changed = modes.changed() => if changed.is_err() {
                return;
            },
        }
        listener = Some(open);
    }
}

async fn rebind(addr: SocketAddr) -> TcpListener {
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

fn handle(inbound: TcpStream, shared: &Arc<Shared>) {
    let cut = shared.cuts.subscribe();
    match *shared.mode.borrow() {
        // Accepted just as the mode changed.
        Mode::Refuse => reset(inbound),
        Mode::Blackhole => {
            tokio::spawn(hold(inbound, cut));
        }
        Mode::Pass => {
            tokio::spawn(forward(inbound, shared.clone(), cut));
        }
    }
}

/// Closes with a reset instead of a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Keeps a connection open without a word until the next cut.
async fn hold(stream: TcpStream, mut cut: watch::Receiver<u64>) {
    let _ = cut.changed().await;
    reset(stream);
}

/// How one direction of a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The sender closed; the close was passed on.
    Eof,
    /// The connection is to be reset: an error, or the reply budget spent.
    Reset,
}

async fn forward(inbound: TcpStream, shared: Arc<Shared>, mut cut: watch::Receiver<u64>) {
    let budget = match shared.cut_after.load(Ordering::Relaxed) {
        0 => None,
        n => Some(n),
    };
    let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(shared.target));
    let Ok(Ok(outbound)) = connect.await else {
        return reset(inbound);
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (mut ir, mut iw) = inbound.into_split();
    let (mut or, mut ow) = outbound.into_split();
    let must_reset = {
        let up = pump(&mut ir, &mut ow, &shared, None);
        let down = pump(&mut or, &mut iw, &shared, budget);
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                end = &mut up, if !up_done => match end {
                    End::Eof => up_done = true,
                    End::Reset => break true,
                },
                end = &mut down, if !down_done => match end {
                    End::Eof => down_done = true,
                    End::Reset => break true,
                },
                _ = cut.changed() => break true,
            }
            if up_done && down_done {
                break false;
            }
        }
    };
    if must_reset {
        if let Ok(s) = ir.reunite(iw) {
            reset(s);
        }
        if let Ok(s) = or.reunite(ow) {
            reset(s);
        }
    }
}

/// Forwards one direction through a delay line of the current latency; with a
/// budget, resets once that many bytes went through.
async fn pump(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    shared: &Shared,
    mut budget: Option<usize>,
) -> End {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) => return End::Eof,
                Ok(n) => {
                    let due = Instant::now() + shared.latency();
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        return End::Reset;
                    }
                }
                Err(_) => return End::Reset,
            }
        }
    };
    let write = async {
        while let Some((due, mut bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            let spent = budget.as_mut().is_some_and(|left| {
                let spent = bytes.len() >= *left;
                bytes.truncate(*left);
                *left -= bytes.len();
                spent
            });
            if to.write_all(&bytes).await.is_err() || spent {
                return End::Reset;
            }
        }
        let _ = to.shutdown().await;
        End::Eof
    };
    tokio::pin!(read, write);
    let mut reading = true;
    loop {
        tokio::select! {
            end = &mut read, if reading => match end {
                // The writer drains what was read, then passes the close on.
                End::Eof => reading = false,
                End::Reset => return End::Reset,
            },
            end = &mut write => return end,
        }
    }
}
