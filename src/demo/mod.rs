//! A short scenario against a running gateway (mutual TLS, development PKI), printing
//! what a terminal would see: a search, a lookup, drug history, check-ups, an
//! exemption access, denials with their reasons, and an emergency summary viewed
//! outside any disaster by a hospital with an emergency department; then, as an
//! operator, a Noto replay in which a shelter's first-aid post reads a summary.

pub mod audit;
mod care;
mod denials;
mod emergency;
pub mod operator;
mod search;
mod site;
mod terminals;
pub mod tls;

use std::net::SocketAddr;

use chrono::{DateTime, Utc};

use crate::demo::terminals::Terminals;
use crate::demo::tls::DemoPki;
use crate::domain::facility::{FacilityCode, FacilityKind, make_facility_code};
use crate::domain::jst::{Window, to_jst_string, today_jst};
use crate::domain::prefecture::Prefecture;
use crate::store::{Activation, ActivationStore, AreaKey};

const DEMO_EVENT: &str = "デモ: 令和4年福島沖地震の再現";

/// A facility of the given prefecture and kind, with a valid check digit.
pub fn facility(prefecture: u8, kind: FacilityKind, number: u16) -> FacilityCode {
    let p = Prefecture::new(prefecture)
        .unwrap_or_else(|| Prefecture::all().next().expect("47 prefectures"));
    make_facility_code(p, kind, 1, number)
}

/// The demo's activation: Miyagi and Fukushima, one week from today (JST), like the
/// 2022 notice. Reuses one that is active now.
pub async fn ensure_demo_activation(
    store: &dyn ActivationStore,
    now: DateTime<Utc>,
) -> anyhow::Result<Activation> {
    if let Some(a) = store
        .list_activations()
        .await?
        .into_iter()
        .find(|a| a.event == DEMO_EVENT && a.is_open_at(now))
    {
        return Ok(a);
    }
    let new = crate::store::NewActivation {
        event: DEMO_EVENT.into(),
        notice: "デモ用（令和4年3月17日付事務連絡に倣う）".into(),
        areas: vec![AreaKey::Prefecture(4), AreaKey::Prefecture(7)],
        window: Window::one_week_from(today_jst(now)),
        created_by: "demo".into(),
        at: now,
    };
    Ok(store.add_activation(&new).await?)
}

/// How to open the operators' console with the demo operator's certificate.
pub fn console_instructions(addr: SocketAddr, dir: &std::path::Path) {
    let d = dir.display();
    println!(
        "\nThe operators' console: https://localhost:{port}/console/\n  \
         Your browser presents an operator certificate; make one it can import (password: demo):\n    \
         openssl pkcs12 -export -in {d}/operator-activation-manager.pem -inkey {d}/operator-activation-manager.key \
         -certfile {d}/operator-ca.pem -out operator.p12 -passout pass:demo\n  \
         import operator.p12 as your certificate and {d}/server-ca.pem as a trusted authority, then open the URL \
         (operator-auditor / operator-reviewer work the review queue).",
        port = addr.port(),
    );
}

/// Steps 1 to 6: what a terminal sees and what it is refused.
pub async fn run(
    addr: SocketAddr,
    activation: &Activation,
    pki: &DemoPki,
) -> anyhow::Result<search::Found> {
    let mut t = Terminals::connect(addr, pki).await?;
    println!(
        "onshi-gateway demo against {addr}, over mutual TLS: each client presents its facility's certificate ({})",
        pki.dir().display()
    );
    let window = activation
        .span()
        .ok_or_else(|| anyhow::anyhow!("the demo activation has no area"))?;
    println!(
        "activation: {} — prefectures 04 宮城県, 07 福島県 — [{} .. {})\n",
        activation.event,
        to_jst_string(window.start),
        to_jst_string(window.end)
    );
    let found = search::search(&mut t).await?;
    care::qualification(&mut t, &found).await?;
    care::medical_information(&mut t, &found).await?;
    care::exemption(&mut t, &found).await?;
    denials::denials(&mut t, &found).await?;
    emergency::emergency_summary(&mut t, &found).await?;
    println!(
        "\nEvery call above, allowed or denied, is in the access log: `onshi-gateway audit list`."
    );
    Ok(found)
}

/// Steps 7 to 12, on the operators' listener `admin`: the log read by an auditor,
/// a Noto replay opened by an operator, and a shelter's first-aid post in it.
pub async fn operators(
    addr: SocketAddr,
    admin: SocketAddr,
    pki: &DemoPki,
    store: &dyn crate::store::AuditStore,
    now: DateTime<Utc>,
    found: &search::Found,
) -> anyhow::Result<()> {
    audit::show(admin, pki, store).await?;
    let noto = operator::show(admin, pki, now).await?;
    site::first_aid_post(addr, admin, pki, &noto, found).await
}
