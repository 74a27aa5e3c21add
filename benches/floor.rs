//! The stack's floor, a target of the side-by-side load benchmark
//! (`deploy/bench/run.sh`, target `floor`): a plain HTTP/2 proxy built from the
//! same parts the gateway carries its calls on (hyper's HTTP/2 server with
//! hyper-util's auto builder on tokio's multi-threaded runtime, hyper-util's
//! pooled HTTP/2 client to the upstream, mimalloc) and nothing else: no gRPC
//! decoding, no rules, no access log. What it costs per call is what any gateway on
//! this stack pays before doing its own work, to be set beside nginx's.
//!
//! `cargo bench --bench floor -- --listen 127.0.0.1:PORT --upstream http://HOST:PORT`
//! serves until killed. Under `cargo test` or `cargo bench` without `--listen` it
//! proxies a few calls to a local echo server and checks they come back whole, and
//! that a call with no upstream to reach gets a 502.

use std::convert::Infallible;
use std::net::SocketAddr;

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Upstream = Client<HttpConnector, Incoming>;

/// HTTP/2 connections to the upstream, taken in turn, as the gateway opens
/// (`pipeline::upstream::CONNECTIONS`): one connection alone runs out of the
/// upstream's concurrent streams at 1,000 calls in flight.
const CONNECTIONS: usize = onshi_gateway::pipeline::upstream::CONNECTIONS;

/// Sends `req` on to `authority` as it came, and its answer back as it came,
/// trailers included (gRPC's status travels in them).
async fn pass(
    client: Upstream,
    authority: http::uri::Authority,
    mut req: Request<Incoming>,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    *req.uri_mut() = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query(path)
        .build()
        .expect("a path taken from a parsed URI is valid");
    client.request(req).await
}

/// A 502 for a failed upstream call, as a proxy answers; the cause goes to stderr.
fn bad_gateway(e: hyper_util::client::legacy::Error) -> Response<String> {
    use std::error::Error as _;
    eprintln!("floor: upstream call failed: {e}: {:?}", e.source());
    let mut resp = Response::new(format!("upstream: {e}"));
    *resp.status_mut() = http::StatusCode::BAD_GATEWAY;
    resp
}

/// The upstream connections, each call taking the next, as the gateway's do.
#[derive(Clone)]
struct Pool {
    clients: std::sync::Arc<[Upstream]>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    authority: http::uri::Authority,
}

impl Pool {
    fn open(authority: http::uri::Authority) -> Pool {
        let mut connector = HttpConnector::new();
        // As the gateway's: without it, a small reply waits for a delayed ACK.
        connector.set_nodelay(true);
        Pool {
            clients: (0..CONNECTIONS)
                .map(|_| {
                    Client::builder(TokioExecutor::new())
                        .http2_only(true)
                        .build(connector.clone())
                })
                .collect(),
            next: std::sync::Arc::default(),
            authority,
        }
    }

    async fn call(self, req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let client = self.clients[turn % self.clients.len()].clone();
        Ok(match pass(client, self.authority, req).await {
            Ok(resp) => resp.map(http_body_util::Either::Left),
            Err(e) => bad_gateway(e).map(http_body_util::Either::Right),
        })
    }
}

type ProxyBody = http_body_util::Either<Incoming, String>;

async fn serve(listener: tokio::net::TcpListener, upstream: Uri) -> std::io::Result<()> {
    let authority = upstream
        .authority()
        .cloned()
        .ok_or_else(|| std::io::Error::other("--upstream needs host:port"))?;
    let pool = Pool::open(authority);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let pool = pool.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| pool.clone().call(req));
            let _ = auto::Builder::new(TokioExecutor::new())
                .http2_only()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An upstream that answers every POST with its own body and a trailer.
async fn echo(listener: tokio::net::TcpListener) {
    use http_body_util::BodyExt;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                let body = req.into_body().collect().await?.to_bytes();
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                let frames = futures_util::stream::iter([
                    Ok::<_, Infallible>(hyper::body::Frame::data(body)),
                    Ok(hyper::body::Frame::trailers(trailers)),
                ]);
                Ok::<_, hyper::Error>(Response::new(http_body_util::StreamBody::new(frames)))
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .http2_only()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A listener on a free local port, and its `http://host:port`.
async fn local_listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

/// Starts a floor proxy to `upstream`; returns where it listens. It is bound
/// before its task starts, so no call can come too early.
async fn start_proxy(upstream: &str) -> String {
    let (listener, base) = local_listener().await;
    tokio::spawn(serve(listener, upstream.parse().expect("uri")));
    base
}

async fn self_test() {
    use http_body_util::{BodyExt, Full};
    let (echo_listener, upstream) = local_listener().await;
    tokio::spawn(echo(echo_listener));
    let proxy = start_proxy(&upstream).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<bytes::Bytes>>();
    let post = |base: &str, body: String| {
        Request::post(format!("{base}/onshi.v1.QualificationService/X"))
            .body(Full::new(bytes::Bytes::from(body)))
            .expect("request")
    };
    for i in 0..3 {
        let body = format!("call {i}");
        let resp = client
            .request(post(&proxy, body.clone()))
            .await
            .expect("proxied call");
        let collected = resp.into_body().collect().await.expect("body");
        let trailers = collected.trailers().cloned().expect("trailers passed on");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(collected.to_bytes(), body.as_bytes());
    }
    // An upstream that is not there: the proxy answers 502, as nginx does.
    let (gone, gone_base) = local_listener().await;
    drop(gone);
    let to_gone = start_proxy(&gone_base).await;
    let resp = client
        .request(post(&to_gone, "call".into()))
        .await
        .expect("an answer from the proxy");
    assert_eq!(resp.status(), http::StatusCode::BAD_GATEWAY);
    println!("floor: 3 calls proxied whole, and a 502 without an upstream");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let (Some(listen), Some(upstream)) = (arg("--listen"), arg("--upstream")) else {
        return self_test().await;
    };
    let listen: SocketAddr = listen.parse().unwrap_or_else(|e| panic!("--listen: {e}"));
    let upstream: Uri = upstream
        .parse()
        .unwrap_or_else(|e| panic!("--upstream: {e}"));
    let served = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => serve(listener, upstream).await,
        Err(e) => Err(e),
    };
    if let Err(e) = served {
        eprintln!("floor: {e}");
        std::process::exit(1);
    }
}
