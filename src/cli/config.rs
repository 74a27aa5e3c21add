//! The `config` subcommands: check the effective configuration, or print it.

use crate::config::mask::{mask_url, masked};
use crate::config::{Problems, Settings, check::check};

/// A one-line summary of what would run, for settings that passed the checks (the
/// problems of others are reported before: bad input, exit 2).
pub fn check_command(settings: &Settings, file: Option<String>) -> anyhow::Result<()> {
    println!(
        "ok: {}: {}",
        file.as_deref().unwrap_or("no configuration file"),
        summary(settings)
    );
    Ok(())
}

/// The effective configuration as TOML, credentials masked (for a file without
/// problems); then, if `config check` would fail, its problems (exit 2).
pub fn print_command(settings: &Settings, file: Option<String>) -> anyhow::Result<()> {
    let problems = check(settings);
    match masked(settings).to_toml() {
        Ok(text) => {
            let source = match &file {
                Some(file) => format!("the defaults, then {file}, then"),
                None => "the defaults, then".to_string(),
            };
            println!(
                "# onshi-gateway's effective configuration: {source} environment variables and flags.\n\
                 # Passwords and other credentials are masked.\n"
            );
            print!("{text}");
        }
        // A value TOML cannot hold is among the problems reported below.
        Err(e) if problems.is_empty() => return Err(e),
        Err(_) => {}
    }
    if !problems.is_empty() {
        return Err(Problems { file, problems }.into());
    }
    Ok(())
}

fn summary(s: &Settings) -> String {
    let store = match &s.store.database_url {
        Some(url) => format!("PostgreSQL {}", mask_url(url)),
        None => format!("SQLite in {}", s.store.data_dir.display()),
    };
    let upstream = match &s.upstream.url {
        Some(url) => mask_url(url),
        None => format!(
            "the built-in simulator ({} insured persons, seed {})",
            s.upstream.population, s.upstream.seed
        ),
    };
    let identity = match (&s.tls.dir, s.tls.dev_identity_from_metadata) {
        (Some(dir), _) => format!("mutual TLS ({})", dir.display()),
        (None, true) => "DEVELOPMENT metadata".to_string(),
        (None, false) => "none (patient-data calls refused)".to_string(),
    };
    let traces = match &s.telemetry.otlp_endpoint {
        Some(url) => format!("to {}", mask_url(url)),
        None => "not exported".to_string(),
    };
    format!(
        "terminals on {}, operators on {}, metrics on {}; store {store}; upstream {upstream}; \
         facility identity {identity}; traces {traces}; log {} as {}",
        s.listen.terminals,
        s.listen.admin,
        s.listen.metrics,
        s.log.level,
        s.log.format.as_str()
    )
}
