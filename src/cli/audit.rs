//! The `audit` subcommands: list, export and verify, reading the store directly
//! (the operator runs them on a host that reaches the database).

use std::io::Write;

use anyhow::Context;

use crate::audit::export::Exporter;
use crate::audit::transparency::saved::{SavedError, check_saved};
use crate::audit::verify::{ChainReport, verify_store};
use crate::cli::{
    AuditExportArgs, AuditFilterArgs, AuditListArgs, AuditVerifyArgs, DataArgs, ExportFormat,
    InvalidInput,
};
use crate::domain::insured::parse_insured_number;
use crate::domain::jst::{parse_instant, to_jst_string};
use crate::store::{self, AccessQuery, Cursor, Decision, Store};

/// Records fetched per round trip while exporting.
const EXPORT_PAGE: u32 = 1000;

pub async fn open_store(data: &DataArgs) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    let config = data.usable_settings()?.gateway_config();
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)?;
    }
    let location = config.store_location();
    store::open(&location)
        .await
        .with_context(|| format!("opening the store {location}"))
}

fn invalid(flag: &str, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InvalidInput {
        flag: flag.to_string(),
        message: message.into(),
    })
}

/// The query the filter flags describe; a malformed flag is bad input naming it
/// (exit 2).
pub fn query_of(f: &AuditFilterArgs) -> anyhow::Result<AccessQuery> {
    let instant = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                parse_instant(flag, s).map_err(|e| {
                    let message = e.strip_prefix(&format!("{flag}: ")).unwrap_or(&e);
                    invalid(flag, message)
                })
            })
            .transpose()
    };
    let decision = f
        .decision
        .as_deref()
        .map(|d| {
            Decision::parse(d).ok_or_else(|| {
                invalid(
                    "--decision",
                    format!("{d:?} is not a decision; use allowed, denied or failed"),
                )
            })
        })
        .transpose()?;
    let patient_key = f.patient.as_deref().map(patient_key_of).transpose()?;
    let query = AccessQuery {
        from: instant("--from", &f.from)?,
        until: instant("--until", &f.until)?,
        facility: f.facility.clone(),
        staff_id: f.staff.clone(),
        patient_key,
        activation_id: f.activation.clone(),
        decision,
        reason: f.reason.clone(),
        consent_basis: f.consent.clone(),
        needs_review: f.needs_review.then_some(true),
        ..AccessQuery::default()
    };
    if let (Some(from), Some(until)) = (query.from, query.until)
        && from >= until
    {
        return Err(invalid("--until", "must be after --from"));
    }
    Ok(query)
}

/// `--patient INSURER|SYMBOL|NUMBER|BRANCH` as the log keys it.
fn patient_key_of(p: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = p.split('|').collect();
    let [insurer, symbol, number, branch] = parts[..] else {
        return Err(invalid(
            "--patient",
            "give INSURER|SYMBOL|NUMBER|BRANCH, e.g. \"01040013|40250311|152|00\"",
        ));
    };
    parse_insured_number("patient", insurer, symbol, number, branch)
        .map(|n| n.key())
        .map_err(|v| invalid("--patient", v.description))
}

pub async fn list(args: AuditListArgs) -> anyhow::Result<()> {
    let query = query_of(&args.filter)?;
    let store = open_store(&args.data).await?;
    for s in store.query(&query, args.limit).await? {
        let r = &s.record;
        println!(
            "{}  {:<20} {:<8} {:<30} facility={}{} staff={} basis={} ident={}{}",
            to_jst_string(r.at),
            r.method,
            r.decision.as_str(),
            r.reason.as_deref().unwrap_or("-"),
            r.facility.as_deref().unwrap_or("-"),
            // A temporary site calls under its sponsor's code: name the site too.
            r.site
                .site_id
                .as_deref()
                .map(|s| format!(" site={s}"))
                .unwrap_or_default(),
            r.staff_id.as_deref().unwrap_or("-"),
            r.consent_basis.as_deref().unwrap_or("-"),
            r.identification.as_deref().unwrap_or("-"),
            if r.needs_review { "  [review]" } else { "" },
        );
    }
    Ok(())
}

pub async fn export(args: AuditExportArgs) -> anyhow::Result<()> {
    let mut query = query_of(&args.filter)?;
    let store = open_store(&args.data).await?;
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut exporter = match args.format {
        ExportFormat::Jsonl => Exporter::jsonl(out),
        ExportFormat::Csv => Exporter::csv(out),
        ExportFormat::Fhir => Exporter::fhir(out),
    };
    let mut written = 0u64;
    loop {
        let page = store.query(&query, EXPORT_PAGE).await?;
        for r in &page {
            exporter.write(r)?;
        }
        written += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == EXPORT_PAGE as usize => {
                query.after = Some(Cursor {
                    at: last.record.at,
                    chain_id: last.chain_id.clone(),
                    seq: last.seq,
                });
            }
            _ => break,
        }
    }
    exporter.finish()?;
    eprintln!("{written} access records exported");
    Ok(())
}

/// Prints one report per chain; returns whether every chain is intact.
pub async fn verify(args: AuditVerifyArgs) -> anyhow::Result<bool> {
    let store = open_store(&args.data).await?;
    let reports = verify_store(store.as_ref(), &args.trusted_keys).await?;
    if reports.is_empty() {
        println!("no access-log chains in {}", args.data.location()?);
    }
    if args.trusted_keys.is_empty() && !reports.is_empty() {
        println!(
            "note: checked against the keys registered in the store; pass --trusted-key for each replica's \
             public key to rule out a chain rewritten and re-signed under a new key"
        );
    }
    for r in &reports {
        print_report(r);
    }
    for key in &args.trusted_keys {
        if !reports
            .iter()
            .any(|r| r.public_key.eq_ignore_ascii_case(key.trim()))
        {
            println!(
                "note: trusted key {} signs no chain in this store",
                key.trim()
            );
        }
    }
    let mut consistent = true;
    for path in &args.checkpoints {
        consistent &= saved_checkpoint(store.as_ref(), path, &args.trusted_keys).await?;
    }
    Ok(consistent && reports.iter().all(ChainReport::is_intact))
}

/// Checks one saved checkpoint against today's log and prints the outcome.
async fn saved_checkpoint(
    store: &dyn Store,
    path: &std::path::Path,
    trusted_keys: &[String],
) -> anyhow::Result<bool> {
    let flag = "--checkpoint";
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(flag, format!("reading {}: {e}", path.display())))?;
    let check = check_saved(store, &text, trusted_keys)
        .await
        .map_err(|e| match e {
            SavedError::Store(e) => anyhow::Error::new(e),
            e => invalid(flag, format!("{}: {e}", path.display())),
        })?;
    let today = check
        .current_size
        .map_or_else(String::new, |n| format!(" (today {n} records)"));
    match &check.problem {
        None => println!(
            "checkpoint {}: chain {} at {} records: consistent with today's log{today}",
            path.display(),
            check.chain_id,
            check.saved_size
        ),
        Some(p) => println!(
            "checkpoint {}: chain {} at {} records: INCONSISTENT{today}: {p}",
            path.display(),
            check.chain_id,
            check.saved_size
        ),
    }
    Ok(check.is_consistent())
}

fn print_report(r: &ChainReport) {
    let range = match (r.first_seq, r.last_seq) {
        (Some(a), Some(b)) => format!(" (records {a} to {b})"),
        _ => String::new(),
    };
    println!(
        "chain {} key {}: {} records verified{range}, {} checkpoints verified, signed through {}, {} records after the last checkpoint",
        r.chain_id,
        r.public_key,
        r.records_verified,
        r.checkpoints_verified,
        r.signed_through
            .map_or_else(|| "none".to_string(), |s| s.to_string()),
        r.unsigned_tail(),
    );
    match &r.first_break {
        None => println!("  intact"),
        Some(b) => println!("  BROKEN at record {}: {:?}: {}", b.seq, b.kind, b.detail),
    }
}
