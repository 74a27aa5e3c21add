//! The same lookups against a gateway that is already running somewhere (a
//! deployment, a compose stack, a local `serve`) instead of gateways the bench
//! starts itself: set ONSHI_BENCH_TARGET. See deploy/load-test.md.
//!
//! - ONSHI_BENCH_TARGET: the terminals' address, `https://host:50051` (mutual TLS)
//!   or `http://host:50051` (a gateway in development identity mode).
//! - ONSHI_BENCH_CA: the CA that issued the gateway's certificate (PEM);
//!   ONSHI_BENCH_CERT and ONSHI_BENCH_KEY: the facility's certificate and key (PEM);
//!   ONSHI_BENCH_DOMAIN: the name to check the gateway's certificate against, if
//!   not the target's host (e.g. `localhost` through a port-forward).
//! - ONSHI_BENCH_FACILITY: the calling facility's code, as its certificate names
//!   it (sent as metadata over `http://`); required with ONSHI_BENCH_ADMIN.
//! - ONSHI_BENCH_ADMIN (optional): the operators' address; with
//!   ONSHI_BENCH_ADMIN_CERT and ONSHI_BENCH_ADMIN_KEY (an activation-manager's
//!   certificate) the bench opens an activation for the facility alone for the run
//!   and ends it afterwards. Without it, an activation must already cover the facility.
//! - The patients: ONSHI_BENCH_PATIENTS, a CSV file of
//!   `insurer_number,symbol,number,branch` rows (a real upstream's test patients);
//!   by default the valid persons of the built-in simulator's population, made from
//!   ONSHI_BENCH_SEED and ONSHI_BENCH_POPULATION, which must then equal the
//!   gateway's ONSHI_SEED and ONSHI_POPULATION (defaults alike).
//!
//! Every lookup must come back VALID with its access record's id; the bench fails
//! at the first run with a failed call and says which.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use onshi_gateway::proto::activation_admin_service_client::ActivationAdminServiceClient;
use onshi_gateway::proto::*;
use onshi_gateway::simulator::{Population, today_jst};
use onshi_gateway::tls::client::{ClientIdentity, client_tls};
use tonic::transport::Channel;

use super::{Settings, Target, print_table, run};

/// Where the bench finds the gateway and how it authenticates.
pub struct External {
    target: String,
    ca: Option<PathBuf>,
    identity: Option<(PathBuf, PathBuf)>,
    domain: Option<String>,
    facility: Option<String>,
    admin: Option<Admin>,
    patients: Patients,
}

struct Admin {
    url: String,
    cert: PathBuf,
    key: PathBuf,
}

enum Patients {
    File(PathBuf),
    Simulated { seed: u64, population: usize },
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str, why: &str) -> Result<String, String> {
    var(name).ok_or_else(|| format!("{name} is required {why}"))
}

impl External {
    /// The settings if ONSHI_BENCH_TARGET is set; an error names what is missing.
    pub fn from_env() -> Result<Option<External>, String> {
        let Some(target) = var("ONSHI_BENCH_TARGET") else {
            return Ok(None);
        };
        let tls = target.starts_with("https://");
        if !tls && !target.starts_with("http://") {
            return Err(format!(
                "ONSHI_BENCH_TARGET must be https://host:port or http://host:port, not {target:?}"
            ));
        }
        let identity = match (var("ONSHI_BENCH_CERT"), var("ONSHI_BENCH_KEY")) {
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            (None, None) if !tls => None,
            _ => {
                return Err(
                    "ONSHI_BENCH_CERT and ONSHI_BENCH_KEY (the facility's certificate and key) \
                     are required with an https:// target"
                        .to_string(),
                );
            }
        };
        if tls && var("ONSHI_BENCH_CA").is_none() {
            return Err(
                "ONSHI_BENCH_CA (the CA of the gateway's certificate) is required with an https:// target"
                    .to_string(),
            );
        }
        let facility = var("ONSHI_BENCH_FACILITY");
        if !tls && facility.is_none() {
            return Err("ONSHI_BENCH_FACILITY is required with an http:// target".to_string());
        }
        let admin = match var("ONSHI_BENCH_ADMIN") {
            None => None,
            Some(url) => {
                if facility.is_none() {
                    return Err(
                        "ONSHI_BENCH_FACILITY is required with ONSHI_BENCH_ADMIN: the activation covers that facility"
                            .to_string(),
                    );
                }
                let why = "with ONSHI_BENCH_ADMIN (an activation-manager's certificate)";
                Some(Admin {
                    url,
                    cert: required("ONSHI_BENCH_ADMIN_CERT", why)?.into(),
                    key: required("ONSHI_BENCH_ADMIN_KEY", why)?.into(),
                })
            }
        };
        let number = |name: &str, default: u64| -> Result<u64, String> {
            var(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .map_err(|_| format!("{name} must be a number, not {v:?}"))
            })
        };
        let patients = match var("ONSHI_BENCH_PATIENTS") {
            Some(file) => Patients::File(file.into()),
            None => Patients::Simulated {
                seed: number("ONSHI_BENCH_SEED", 2022_0317)?,
                population: number("ONSHI_BENCH_POPULATION", 100_000)? as usize,
            },
        };
        Ok(Some(External {
            ca: var("ONSHI_BENCH_CA").map(PathBuf::from),
            domain: var("ONSHI_BENCH_DOMAIN"),
            target,
            identity,
            facility,
            admin,
            patients,
        }))
    }
}

fn read(path: &Path, what: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {what} from {}: {e}", path.display()))
}

async fn channel(
    url: &str,
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
    domain: Option<&str>,
) -> Channel {
    let mut endpoint =
        Channel::from_shared(url.to_string()).unwrap_or_else(|e| panic!("{url} is not a URL: {e}"));
    if url.starts_with("https://") {
        // Settings refuse an https target without a CA.
        let ca = ca.unwrap_or_else(|| panic!("{url} needs ONSHI_BENCH_CA"));
        let host = endpoint.uri().host().unwrap_or_default();
        // An IPv6 host comes bracketed in the URL, not in the certificate.
        let name = domain.unwrap_or(host.trim_start_matches('[').trim_end_matches(']'));
        let identity = identity.map(|(cert, key)| ClientIdentity {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
        });
        let tls = client_tls(ca, identity.as_ref(), name)
            .unwrap_or_else(|e| panic!("TLS settings for {url}: {e}"));
        endpoint = endpoint
            .tls_config(tls)
            .unwrap_or_else(|e| panic!("TLS settings for {url}: {e}"));
    }
    endpoint
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot reach {url}: {e}"))
}

fn patients(source: &Patients) -> Vec<InsuredNumber> {
    let patients: Vec<InsuredNumber> = match source {
        Patients::Simulated { seed, population } => {
            Population::generate_at(*seed, *population, today_jst())
                .persons()
                .iter()
                .filter(|p| p.status == QualificationStatus::Valid as i32)
                .map(onshi_gateway::simulator::Person::insured_number)
                .take(5_000)
                .collect()
        }
        Patients::File(path) => {
            let text = String::from_utf8(read(path, "the patients"))
                .unwrap_or_else(|_| panic!("{} is not UTF-8", path.display()));
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with("insurer_number"))
                .map(|(i, line)| {
                    let f: Vec<&str> = line.split(',').map(str::trim).collect();
                    let [insurer_number, symbol, number, branch] = f[..] else {
                        panic!(
                            "{} line {}: expected insurer_number,symbol,number,branch",
                            path.display(),
                            i + 1
                        )
                    };
                    InsuredNumber {
                        insurer_number: insurer_number.into(),
                        symbol: symbol.into(),
                        number: number.into(),
                        branch: branch.into(),
                    }
                })
                .collect()
        }
    };
    assert!(!patients.is_empty(), "no patients to look up");
    patients
}

/// An activation covering the facility alone, from a minute ago for an hour;
/// returns its id.
async fn open_activation(
    client: &mut ActivationAdminServiceClient<Channel>,
    facility: &str,
) -> String {
    let now = Utc::now();
    let timestamp = |t: chrono::DateTime<Utc>| prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    };
    let request = CreateActivationRequest {
        event: "load test".into(),
        areas: Some(Areas {
            prefectures: vec![],
            municipalities: vec![],
            facilities: vec![facility.to_string()],
        }),
        window: Some(WindowSpec {
            form: Some(window_spec::Form::Instants(Instants {
                start: Some(timestamp(now - TimeDelta::minutes(1))),
                end: Some(timestamp(now + TimeDelta::hours(1))),
            })),
        }),
        change: Some(ChangeContext {
            author: "onshi-gateway load test".into(),
            notice: String::new(),
            expected_revision: 0,
        }),
    };
    let view = client.create_activation(request).await.unwrap_or_else(|s| {
        panic!(
            "opening the load test's activation: {:?}: {}",
            s.code(),
            s.message()
        )
    });
    view.into_inner().id
}

/// Whether the activation was ended; if not, says why.
async fn end_activation(client: &mut ActivationAdminServiceClient<Channel>, id: &str) -> bool {
    let request = EndEarlyRequest {
        activation_id: id.to_string(),
        areas: None,
        at: Some(WindowEnd {
            form: Some(window_end::Form::At(prost_types::Timestamp {
                seconds: Utc::now().timestamp() + 1,
                nanos: 0,
            })),
        }),
        change: Some(ChangeContext {
            author: "onshi-gateway load test".into(),
            notice: String::new(),
            expected_revision: 0,
        }),
    };
    match client.end_early(request).await {
        Ok(_) => true,
        Err(s) => {
            eprintln!(
                "could not end the load test's activation {id}: {:?}: {}",
                s.code(),
                s.message()
            );
            false
        }
    }
}

pub async fn measure(settings: Settings, external: External) {
    let Settings {
        full,
        concurrency,
        requests,
        rounds,
        ..
    } = settings;
    let patients = Arc::new(patients(&external.patients));
    let mut admin = match &external.admin {
        Some(a) => Some(ActivationAdminServiceClient::new(
            channel(
                &a.url,
                external.ca.as_deref(),
                Some((&a.cert, &a.key)),
                external.domain.as_deref(),
            )
            .await,
        )),
        None => None,
    };
    let activation = match (&mut admin, &external.facility) {
        (Some(client), Some(facility)) => Some(open_activation(client, facility).await),
        _ => None,
    };
    let mut target = Target {
        name: "gateway (deployed)",
        channel: channel(
            &external.target,
            external.ca.as_deref(),
            external
                .identity
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path())),
            external.domain.as_deref(),
        )
        .await,
        // Over TLS the certificate says who calls; metadata only without it.
        facility: if external.target.starts_with("http://") {
            external.facility.clone()
        } else {
            None
        },
        audited: true,
        gateway: None,
        durable: false,
        _dir: None,
        sent: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };

    // A task of its own, so that the activation is ended even if a call fails.
    let outcome = tokio::spawn(async move {
        run(&mut target, &patients, concurrency, concurrency * 8, 0).await;
        let per_round = requests.div_ceil(rounds);
        for round in 0..rounds {
            let d = run(
                &mut target,
                &patients,
                concurrency,
                per_round,
                round * per_round,
            )
            .await;
            target.elapsed += d.elapsed;
            target.latencies.extend(d.latencies);
        }
        target.latencies.sort();
        target
    })
    .await;
    let ended = match (&mut admin, &activation) {
        (Some(client), Some(id)) => end_activation(client, id).await,
        _ => false,
    };
    let target = match outcome {
        Ok(target) => target,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the measurement did not finish: {e}"),
        },
    };

    println!(
        "lookup benchmark against {}: concurrency {concurrency}, {} requests in {rounds} round(s), {} patients{}",
        external.target,
        target.latencies.len(),
        patients_len(&external.patients),
        if full { "" } else { " (smoke run)" }
    );
    print_table(std::slice::from_ref(&target));
    println!(
        "every lookup VALID with an access record{}",
        match &activation {
            Some(id) if ended => format!("; activation {id} opened for the run and ended"),
            Some(id) => format!("; activation {id} opened for the run and NOT ended: end it"),
            None => String::new(),
        }
    );
}

fn patients_len(source: &Patients) -> String {
    match source {
        Patients::File(path) => format!("from {}", path.display()),
        Patients::Simulated { seed, population } => {
            format!("simulated (seed {seed}, population {population})")
        }
    }
}
