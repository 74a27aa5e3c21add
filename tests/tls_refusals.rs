//! Refused TLS handshakes can be diagnosed at the gateway (the real binary, serving
//! a `certs dev` PKI): each is logged at warn with the peer's address and the
//! reason, and counted in `onshi_tls_handshake_refused_total{listener,reason}` on
//! `/metrics`; nothing else moves.

mod common;
#[path = "common/process.rs"]
mod process;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use onshi_gateway::domain::facility::FacilityKind;
use onshi_gateway::proto::ListActivationsRequest;
use onshi_gateway::proto::activation_admin_service_client::ActivationAdminServiceClient;
use onshi_gateway::proto::qualification_service_client::QualificationServiceClient;
use onshi_gateway::simulator::fixtures::DEMO_PATIENT;
use onshi_gateway::tls::OperatorRole;
use onshi_gateway::tls::dev_ca::{DevCa, Issued};
use process::{Spawned, bin, dev_certs, free_addr};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Gateway {
    process: Spawned,
    terminal: SocketAddr,
    operators: SocketAddr,
    metrics: SocketAddr,
    certs: PathBuf,
    _dir: tempfile::TempDir,
}

impl Gateway {
    fn start() -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = dev_certs(dir.path(), &[]);
        let (terminal, operators, metrics) = (free_addr(), free_addr(), free_addr());
        let mut process = Spawned::logged(
            bin()
                .arg("serve")
                .arg("--tls-dir")
                .arg(&certs)
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .args(["--listen", &terminal.to_string()])
                .args(["--admin-listen", &operators.to_string()])
                .args(["--metrics-listen", &metrics.to_string()])
                .args(["--population", "2000"]),
            &dir.path().join("gateway.log"),
        );
        for port in [terminal.port(), operators.port(), metrics.port()] {
            process.wait_listening(port);
        }
        Gateway {
            process,
            terminal,
            operators,
            metrics,
            certs,
            _dir: dir,
        }
    }

    fn ca(&self, name: &str) -> DevCa {
        let read = |file: String| {
            std::fs::read_to_string(self.certs.join(file)).expect("a file certs dev wrote")
        };
        DevCa::load(
            &read(format!("{name}-ca.pem")),
            &read(format!("{name}-ca.key")),
        )
        .expect("the CA")
    }

    /// Every `onshi_tls_handshake_refused_total` sample, by its labels.
    async fn refusals(&self) -> BTreeMap<String, f64> {
        let response = common::scrape_metrics(self.metrics).await;
        response
            .lines()
            .filter_map(|l| l.strip_prefix("onshi_tls_handshake_refused_total"))
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(labels, v)| (labels.to_string(), v.parse().expect("a number")))
            .collect()
    }
}

fn labels(listener: &str, reason: &str) -> String {
    format!("{{listener=\"{listener}\",reason=\"{reason}\"}}")
}

/// How a test client connects.
enum Client {
    /// Mutual TLS, trusting the CA in `trusts`, presenting `presents`.
    Tls {
        trusts: PathBuf,
        presents: Option<Issued>,
    },
    /// HTTP/2 without TLS.
    Plaintext,
    /// Says hello, reads the gateway's answer and hangs up: what grpcio and
    /// grpc-js do when they do not trust the gateway's certificate.
    HangsUpAfterHello,
}

impl Client {
    fn tls(trusts: &Path, presents: Option<Issued>) -> Client {
        Client::Tls {
            trusts: trusts.to_path_buf(),
            presents,
        }
    }

    async fn channel(&self, addr: SocketAddr) -> Result<Channel, String> {
        let (trusts, presents) = match self {
            Client::Tls { trusts, presents } => (trusts, presents),
            Client::Plaintext => {
                return Channel::from_shared(format!("http://{addr}"))
                    .expect("uri")
                    .connect()
                    .await
                    .map_err(|e| e.to_string());
            }
            Client::HangsUpAfterHello => return Err(hang_up_after_hello(addr)),
        };
        let ca = std::fs::read(trusts).expect("a CA file");
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name("localhost");
        if let Some(c) = presents {
            tls = tls.identity(Identity::from_pem(&c.cert_pem, &c.key_pem));
        }
        Channel::from_shared(format!("https://{addr}"))
            .expect("uri")
            .tls_config(tls)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| e.to_string())
    }
}

fn hang_up_after_hello(addr: SocketAddr) -> String {
    use std::io::Read;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let mut tls = rustls::ClientConnection::new(Arc::new(config), name).expect("a connection");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connects");
    tls.write_tls(&mut tcp).expect("hello sent");
    let mut answer = [0; 1];
    let read = tcp.read(&mut answer).expect("the gateway answers");
    assert_eq!(read, 1, "the gateway answers the hello");
    "hung up".into()
}

/// One call on each listener's own service; an error however it comes.
async fn call(gateway: &Gateway, operators: bool, client: &Client) -> Result<(), String> {
    let addr = if operators {
        gateway.operators
    } else {
        gateway.terminal
    };
    let channel = client.channel(addr).await?;
    let result = if operators {
        ActivationAdminServiceClient::new(channel)
            .list_activations(ListActivationsRequest {})
            .await
            .map(|_| ())
    } else {
        let request = onshi_gateway::proto::LookupQualificationRequest {
            insured: Some(DEMO_PATIENT.insured()),
            ..Default::default()
        };
        QualificationServiceClient::new(channel)
            .lookup_qualification(request)
            .await
            .map(|_| ())
    };
    // A call the gateway answered got past the handshake, even if it was refused;
    // a failed connection shows as one of these codes.
    use tonic::Code::{Cancelled, Internal, Unavailable, Unknown};
    match result {
        Err(s) if [Unavailable, Unknown, Internal, Cancelled].contains(&s.code()) => {
            Err(s.to_string())
        }
        _ => Ok(()),
    }
}

/// Waits until `series` rose above `before`; returns every sample then.
async fn counted(
    gateway: &Gateway,
    before: &BTreeMap<String, f64>,
    series: &str,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = gateway.refusals().await;
        if now.get(series) > before.get(series) || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn each_refused_handshake_is_logged_and_counted_by_reason() {
    let gateway = Gateway::start();
    let server_ca = gateway.certs.join("server-ca.pem");
    let (facility_ca, operator_ca) = (gateway.ca("facility"), gateway.ca("operator"));
    let clinic = onshi_gateway::demo::facility(4, FacilityKind::Medical, 1001).to_string();
    let wrong_digit = format!("{}{}", &clinic[..9], (clinic.as_bytes()[9] - b'0' + 1) % 10);
    let stranger = DevCa::new("a CA the gateway does not know").expect("ca");
    let cases: Vec<(&str, bool, Client, &str)> = vec![
        (
            "expired",
            false,
            Client::tls(
                &server_ca,
                Some(
                    facility_ca
                        .facility_until(&clinic, rcgen::date_time_ymd(2021, 3, 31))
                        .expect("cert"),
                ),
            ),
            "expired",
        ),
        (
            "another CA's",
            false,
            Client::tls(&server_ca, Some(stranger.facility(&clinic).expect("cert"))),
            "unknown_ca",
        ),
        (
            "none",
            false,
            Client::tls(&server_ca, None),
            "no_client_certificate",
        ),
        (
            "a wrong check digit",
            false,
            Client::tls(
                &server_ca,
                Some(facility_ca.facility(&wrong_digit).expect("cert")),
            ),
            "bad_identity",
        ),
        (
            "no identity",
            false,
            Client::tls(
                &server_ca,
                Some(
                    facility_ca
                        .client_with_uris(&["https://example.invalid/"])
                        .expect("cert"),
                ),
            ),
            "bad_identity",
        ),
        (
            "the gateway's CA not trusted",
            false,
            Client::tls(
                &gateway.certs.join("facility-ca.pem"),
                Some(facility_ca.facility(&clinic).expect("cert")),
            ),
            "gateway_not_trusted",
        ),
        (
            "a client hanging up on the gateway's certificate",
            false,
            Client::HangsUpAfterHello,
            "gateway_not_trusted",
        ),
        ("plaintext", false, Client::Plaintext, "not_tls"),
        (
            "a facility's on the operators' listener",
            true,
            Client::tls(
                &server_ca,
                Some(facility_ca.facility(&clinic).expect("cert")),
            ),
            "unknown_ca",
        ),
        (
            "a facility named by the operator CA",
            true,
            Client::tls(
                &server_ca,
                Some(operator_ca.facility(&clinic).expect("cert")),
            ),
            "bad_identity",
        ),
    ];
    for (what, operators, client, reason) in &cases {
        let listener = if *operators { "operators" } else { "terminal" };
        let series = labels(listener, reason);
        let before = gateway.refusals().await;
        assert!(
            before.contains_key(&series),
            "{series} is shown from the start"
        );
        let result = call(&gateway, *operators, client).await;
        assert!(result.is_err(), "{what}: the call went through");
        let after = counted(&gateway, &before, &series).await;
        for (labels, count) in &after {
            let rose = count - before.get(labels).copied().unwrap_or_default();
            if *labels == series {
                assert!(rose >= 1.0, "{what}: {series} did not rise: {after:?}");
            } else {
                assert_eq!(rose, 0.0, "{what}: {labels} rose as well");
            }
        }
        let log = gateway.process.log();
        let line = log
            .lines()
            .filter(|l| l.contains("TLS handshake refused") && l.contains(reason))
            .find(|l| l.contains(listener))
            .unwrap_or_else(|| panic!("{what}: no log line for {reason} in:\n{log}"));
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
    }
    // The precise cause is in the line, e.g. the failing check digit.
    let log = gateway.process.log();
    assert!(
        log.lines()
            .any(|l| l.contains("bad_identity") && l.contains("FACILITY_CODE_CHECK_DIGIT")),
        "{log}"
    );

    // A port probe (connect, close) and the gateway's own certificates count as
    // nothing.
    let before = gateway.refusals().await;
    drop(std::net::TcpStream::connect(gateway.terminal).expect("connects"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let good = Client::tls(
        &server_ca,
        Some(facility_ca.facility(&clinic).expect("cert")),
    );
    call(&gateway, false, &good).await.expect("served");
    let auditor = Client::tls(
        &server_ca,
        Some(
            operator_ca
                .operator(OperatorRole::Auditor, "a")
                .expect("cert"),
        ),
    );
    call(&gateway, true, &auditor).await.expect("served");
    assert_eq!(gateway.refusals().await, before);
}
