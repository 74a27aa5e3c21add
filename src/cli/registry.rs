//! The `registry` subcommands: load the facility registry from CSV files, and show
//! one facility with its municipality.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context;

use crate::activation::registry::{RowError, parse_facilities_csv_lines, parse_municipalities_csv};
use crate::cli::InvalidInput;
use crate::cli::audit::open_store;
use crate::cli::{RegistryLoadArgs, RegistryShowArgs};
use crate::domain::facility::parse_facility_code;
use crate::domain::municipality::municipality_check_digit;
use crate::domain::prefecture::Prefecture;
use crate::store::{Municipality, RegisteredFacility};

fn open(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))
}

/// Prints every row error of `path` to standard error.
fn report(path: &Path, errors: &[RowError]) {
    for e in errors {
        eprintln!("{}: {e}", path.display());
    }
}

/// Bad input: exit 2, after the rows' errors have been printed.
fn refused(bad_rows: usize) -> anyhow::Error {
    InvalidInput {
        flag: "registry load".into(),
        message: format!("{bad_rows} error(s) in the input; nothing was loaded"),
    }
    .into()
}

pub async fn load(args: RegistryLoadArgs) -> anyhow::Result<()> {
    let mut bad_rows = 0;
    let mut municipalities: Vec<Municipality> = Vec::new();
    if let Some(path) = &args.municipalities {
        match parse_municipalities_csv(open(path)?) {
            Ok(m) => municipalities = m,
            Err(errors) => {
                report(path, &errors);
                bad_rows += errors.len();
            }
        }
    }
    let mut facilities: Vec<(u64, RegisteredFacility)> = Vec::new();
    if let Some(path) = &args.facilities {
        match parse_facilities_csv_lines(open(path)?) {
            Ok(f) => facilities = f,
            Err(errors) => {
                report(path, &errors);
                bad_rows += errors.len();
            }
        }
    }
    if bad_rows > 0 {
        return Err(refused(bad_rows));
    }

    let store = open_store(&args.data).await?;
    // Each facility's municipality must be in the master: loaded now or before.
    let mut known: HashSet<String> = municipalities.iter().map(|m| m.code.clone()).collect();
    let prefectures: Vec<u8> = facilities
        .iter()
        .map(|(_, f)| f.prefecture)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // Replacing keeps nothing of the store's master.
    if !args.replace {
        for (m, _) in store.facility_counts(&prefectures).await? {
            known.insert(m.code);
        }
    }
    let unknown: Vec<RowError> = facilities
        .iter()
        .filter(|(_, f)| !known.contains(&f.municipality))
        .map(|(line, f)| RowError {
            line: *line,
            field: "municipality".into(),
            reason: format!(
                "{} is not in the municipality master; load it with --municipalities",
                f.municipality
            ),
        })
        .collect();
    if !unknown.is_empty() {
        if let Some(path) = &args.facilities {
            report(path, &unknown);
        }
        return Err(refused(unknown.len()));
    }

    let facilities: Vec<RegisteredFacility> = facilities.into_iter().map(|(_, f)| f).collect();
    let counts = if args.replace {
        store.replace_registry(&municipalities, &facilities).await?
    } else {
        store.load_registry(&municipalities, &facilities).await?
    };
    println!(
        "loaded {} municipalities and {} facilities; the registry holds {} municipalities and {} facilities",
        municipalities.len(),
        facilities.len(),
        counts.municipalities,
        counts.facilities
    );
    Ok(())
}

fn prefecture_label(code: u8) -> String {
    match Prefecture::new(code) {
        Some(p) => format!("{:02} {}", p.code(), p.name_ja()),
        None => format!("{code:02}"),
    }
}

pub async fn show(args: RegistryShowArgs) -> anyhow::Result<()> {
    let code = parse_facility_code("facility", &args.facility).map_err(|v| InvalidInput {
        flag: "FACILITY".into(),
        message: v.description,
    })?;
    let store = open_store(&args.data).await?;
    let Some(f) = store.facility(code.as_str()).await? else {
        anyhow::bail!("facility {code} is not in the registry");
    };
    let municipality = match store.municipality(&f.municipality).await? {
        Some(m) => format!(
            "{} {} ({}{})",
            m.code,
            m.name,
            m.code,
            municipality_check_digit(&m.code).unwrap_or(0)
        ),
        None => format!("{} (not in the municipality master)", f.municipality),
    };
    println!("facility      {}", f.code);
    println!("name          {}", f.name);
    println!("kind          {}", f.kind.as_str());
    println!("prefecture    {}", prefecture_label(f.prefecture));
    println!("municipality  {municipality}");
    // The temporary sites it sponsors: their calls are recorded under it.
    for site in store
        .list_sites()
        .await?
        .iter()
        .filter(|s| s.sponsor == f.code)
    {
        println!(
            "sponsors      site {} {} ({}, municipality {}, activation {}{})",
            site.id,
            site.name,
            site.kind.as_str(),
            site.municipality,
            site.activation_id,
            if site.is_closed() { ", closed" } else { "" }
        );
    }
    Ok(())
}
