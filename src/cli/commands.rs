//! What each CLI subcommand does.

use std::sync::Arc;

use anyhow::Context;

use crate::cli::{CertsDevArgs, CertsIssueArgs, InvalidInput, UpstreamArgs};
use crate::clock::{Clock, SharedClock};
use crate::config::GatewayConfig;
use crate::config::Settings;
use crate::domain::facility::parse_facility_code;
use crate::server::{self, RunningGateway};
use crate::simulator::Population;
use crate::tls::dev_ca::{BadName, DevPki};
use crate::tls::identity::IdentitySource;
use crate::tls::issue::{self, IssueError, Subject};
use crate::tls::pki_dir::{self, Ca};

/// Resolves on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn serve_until_stopped(gateway: RunningGateway) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        // SIGHUP re-reads the certificates without a restart.
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let stop = stop_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = hangups.recv() => match gateway.reload_tls() {
                    Ok(()) => tracing::info!("TLS certificates reloaded"),
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "TLS certificates NOT reloaded; the previous ones stay in use"),
                },
            }
        }
    }
    #[cfg(not(unix))]
    stop_signal().await;
    tracing::info!("stopping: draining calls and flushing the access log");
    gateway.shutdown().await
}

pub async fn serve(config: GatewayConfig, clock: SharedClock) -> anyhow::Result<()> {
    let gateway = server::start(config, clock).await?;
    println!("onshi-gateway listening on {}", gateway.addr);
    serve_until_stopped(gateway).await
}

/// The demo with the gateway `settings` describe; `exit`: stop after the scenario.
pub async fn demo(settings: &Settings, exit: bool, clock: SharedClock) -> anyhow::Result<()> {
    let mut config = settings.gateway_config();
    // Real mutual TLS with a development PKI: each demo client is the facility or
    // operator its certificate names.
    let facilities: Vec<_> = crate::activation::registry::DEMO_FACILITIES
        .iter()
        .map(|(p, kind, n, _)| crate::demo::facility(*p, *kind, *n))
        .chain(
            crate::activation::registry::DEMO_HOSPITALS
                .iter()
                .map(|(p, n, _, _)| {
                    crate::demo::facility(*p, crate::domain::facility::FacilityKind::Medical, *n)
                }),
        )
        .collect();
    let pki = crate::demo::tls::DemoPki::create(&config.data_dir.join("demo-certs"), &facilities)?;
    config.tls = Some(pki.files());
    config.identity = IdentitySource::Certificate;
    // The operators' console, on its default demo port unless one was given.
    config
        .console_listen
        .get_or_insert(std::net::SocketAddr::from(([127, 0, 0, 1], 50063)));
    let gateway = server::start(config, clock.clone()).await?;
    let activation =
        crate::demo::ensure_demo_activation(gateway.store.as_ref(), clock.now()).await?;
    gateway.activations.invalidate();
    let mut outcome = crate::demo::run(gateway.addr, &activation, &pki)
        .await
        .map(Some);
    if let (Ok(Some(found)), Some(admin)) = (&outcome, gateway.admin_addr) {
        // The writer commits before each response: every call above is already readable.
        let store = gateway.store.as_ref();
        outcome = crate::demo::operators(gateway.addr, admin, &pki, store, clock.now(), found)
            .await
            .map(|()| None);
    }
    let outcome = outcome.map(|_| ());
    if let Err(e) = &outcome {
        eprintln!("demo failed: {e:#}");
    }
    if let Some(console) = gateway.console_addr {
        crate::demo::console_instructions(console, pki.dir());
    }
    if exit || outcome.is_err() {
        gateway.shutdown().await?;
        return outcome;
    }
    println!(
        "\nThe gateway keeps serving on {addr} with mutual TLS. Try, with the demo's certificates:\n  \
         grpcurl -cacert {d}/server-ca.pem -cert {d}/facility-0410110019.pem -key {d}/facility-0410110019.key \
         -authority localhost {addr} list\nCtrl-C stops it.",
        addr = gateway.addr,
        d = pki.dir().display(),
    );
    serve_until_stopped(gateway).await
}

pub async fn upstream(args: UpstreamArgs) -> anyhow::Result<()> {
    let mut settings = crate::config::Upstream::default();
    args.population.overlay(&mut settings);
    let population = Arc::new(Population::generate(settings.seed, settings.population));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!(
        "upstream OQS simulator listening on {}",
        listener.local_addr()?
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = server::spawn_simulator(listener, population, rx);
    stop_signal().await;
    let _ = tx.send(());
    handle.await??;
    Ok(())
}

/// The facility codes `certs dev` issues for: those given, validated (each bad one
/// named with what is wrong), or the demo's.
fn dev_facilities(given: &[String]) -> Result<Vec<String>, InvalidInput> {
    if given.is_empty() {
        return Ok(crate::activation::registry::DEMO_FACILITIES
            .iter()
            .map(|(p, kind, n, _)| crate::demo::facility(*p, *kind, *n).to_string())
            .collect());
    }
    let mut codes = Vec::new();
    let mut problems = Vec::new();
    for raw in given {
        match parse_facility_code("", raw) {
            Ok(code) if codes.contains(&code.to_string()) => {}
            Ok(code) => codes.push(code.to_string()),
            Err(v) => problems.push(facility_problem(raw, &v)),
        }
    }
    match &problems[..] {
        [] => Ok(codes),
        [one] => Err(InvalidInput {
            flag: "--facility".into(),
            message: one.clone(),
        }),
        all => Err(InvalidInput {
            flag: "--facility".into(),
            message: format!(
                "{} codes are not facility codes:\n  {}",
                all.len(),
                all.join("\n  ")
            ),
        }),
    }
}

/// What is wrong with `raw` as a facility code, naming it.
fn facility_problem(raw: &str, v: &crate::domain::Violation) -> String {
    if v.description.contains(raw.trim()) {
        v.description.clone()
    } else {
        format!("{raw:?}: {}", v.description)
    }
}

pub fn certs_dev(args: CertsDevArgs) -> anyhow::Result<()> {
    let facilities = dev_facilities(&args.facility)?;
    let pki = DevPki::generate_for(&args.name).map_err(|e| match e {
        BadName::NotAHost(_) => anyhow::Error::new(InvalidInput {
            flag: "--name".into(),
            message: e.to_string(),
        }),
        BadName::Certificate(e) => e.into(),
    })?;
    let existing = pki_dir::existing(&args.dir)?;
    if !existing.is_empty() && !args.force {
        return Err(InvalidInput {
            flag: "--dir".into(),
            message: format!(
                "{} already holds a PKI ({} files, e.g. {}); `certs dev --force` replaces all of it \
                 with new CAs (certificates from the old ones are then refused), \
                 `certs issue` adds a certificate to it",
                args.dir.display(),
                existing.len(),
                existing[0].display(),
            ),
        }
        .into());
    }
    for path in pki.write(&args.dir, &facilities)? {
        println!("wrote {}", path.display());
    }
    println!(
        "DEVELOPMENT certificates, never for production: the facility and operator CA keys \
         ({}, {}) are kept, readable by you only, so that `certs issue` can add certificates.\n\
         Serve with them: onshi-gateway serve --tls-dir {}",
        Ca::Facility.key_file(),
        Ca::Operator.key_file(),
        args.dir.display()
    );
    Ok(())
}

pub fn certs_issue(args: &CertsIssueArgs, clock: &dyn Clock) -> anyhow::Result<()> {
    let invalid = |flag: &str, message: String| InvalidInput {
        flag: flag.into(),
        message,
    };
    let subject = match (&args.facility, &args.operator) {
        (Some(code), _) => parse_facility_code("", code)
            .map(Subject::Facility)
            .map_err(|v| invalid("--facility", facility_problem(code, &v)))?,
        (None, Some(spec)) => Subject::operator(spec).map_err(|e| invalid("--operator", e))?,
        (None, None) => return Err(invalid("--facility", "or --operator is needed".into()).into()),
    };
    let now = time::OffsetDateTime::from_unix_timestamp(clock.now().timestamp())?;
    let written =
        issue::issue(&args.ca_dir, &subject, args.days, args.force, now).map_err(|e| {
            if e.is_input() {
                let flag = match e {
                    IssueError::OutlivesCa { .. } => "--days",
                    _ => "--ca-dir",
                };
                anyhow::Error::new(invalid(flag, e.to_string()))
            } else {
                e.into()
            }
        })?;
    println!("wrote {}", written.cert.display());
    println!("wrote {}", written.key.display());
    println!(
        "valid until {} (UTC); DEVELOPMENT only, like the CA in {}",
        written.not_after.date(),
        args.ca_dir.display()
    );
    Ok(())
}
