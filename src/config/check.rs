//! Whether the effective settings make a gateway that can start and do what they
//! say: addresses, URLs and their schemes, numbers in range, the TLS files, the
//! audit key. Every problem is returned, each naming its key.

use std::path::Path;
use std::str::FromStr;

use super::mask::mask_url;
use super::{Problem, Settings};
use crate::tls::TlsFiles;

pub fn check(s: &Settings) -> Vec<Problem> {
    let mut p = Problems(Vec::new());
    store_and_upstream(&mut p, s);
    tls_and_limits(&mut p, s);
    audit(&mut p, s);
    // Each of these counts something a gateway needs at least one of.
    for (key, value) in [
        ("activations.refresh_ms", s.activations.refresh_ms),
        ("search.ttl_secs", s.search.ttl_secs),
        ("grpc.max_message_bytes", s.grpc.max_message_bytes as u64),
        (
            "grpc.keepalive_interval_secs",
            s.grpc.keepalive_interval_secs,
        ),
        ("grpc.keepalive_timeout_secs", s.grpc.keepalive_timeout_secs),
        (
            "grpc.max_concurrent_streams",
            u64::from(s.grpc.max_concurrent_streams),
        ),
        ("health.check_interval_ms", s.health.check_interval_ms),
    ] {
        p.at_least(key, value, 1);
    }
    telemetry(&mut p, s);
    notices(&mut p, s);
    if let Err(why) = crate::telemetry::logging::filter(&s.log.level) {
        p.add("log.level", why);
    }
    too_large_for_toml(&mut p, s);
    p.0
}

fn notices(p: &mut Problems, s: &Settings) {
    if s.notices.webhook_url.is_some() && s.notices.spool_dir.is_some() {
        p.add(
            "notices.spool_dir",
            "one sink only: set notices.webhook_url or notices.spool_dir, not both",
        );
    }
    if let Some(url) = &s.notices.webhook_url {
        let config = crate::audit::notices::NoticesConfig {
            sink: crate::audit::notices::NoticeSink::Webhook(url.clone()),
            webhook_ca: s.notices.webhook_ca_file.as_ref().map(Into::into),
            ..crate::audit::notices::NoticesConfig::default()
        };
        if let Err(why) = crate::audit::notices::Sink::of(&config) {
            p.add("notices.webhook_url", why);
        }
    }
    p.at_least("notices.lease_secs", s.notices.lease_secs, 1);
    p.at_least("notices.retry_max_secs", s.notices.retry_max_secs, 1);
    p.at_least("review.overdue_days", s.review.overdue_days, 1);
}

fn store_and_upstream(p: &mut Problems, s: &Settings) {
    if s.store.data_dir.as_os_str().is_empty() {
        p.add("store.data_dir", "must name a directory");
    }
    if let Some(Err(why)) = s.store.database_url.as_deref().map(postgres_url) {
        p.add("store.database_url", why);
    }
    match &s.upstream.url {
        Some(url) => {
            if let Err(why) = http_url(url) {
                p.add("upstream.url", why);
            }
        }
        None => p.at_least("upstream.population", s.upstream.population as u64, 1),
    }
    p.at_least("upstream.timeout_ms", s.upstream.timeout_ms, 1);
    p.at_least("upstream.max_in_flight", s.upstream.max_in_flight as u64, 1);
    upstream_tls(p, &s.upstream);
}

/// An `https://` upstream needs the CA its certificate chains to (the closed network
/// has its own CAs, not the public ones); TLS files without TLS are a mistake.
fn upstream_tls(p: &mut Problems, u: &super::Upstream) {
    let https = u
        .url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"));
    match (&u.ca_file, https) {
        (None, true) => p.add(
            "upstream.ca_file",
            "an https:// upstream needs the CA certificate its certificate chains to",
        ),
        (Some(_), false) => p.add(
            "upstream.ca_file",
            "set, but the upstream is not an https:// URL",
        ),
        _ => {}
    }
    match (&u.cert_file, &u.key_file) {
        (Some(_), None) => p.add("upstream.key_file", "the client certificate needs its key"),
        (None, Some(_)) => p.add("upstream.cert_file", "the key needs its client certificate"),
        (Some(_), Some(_)) if u.ca_file.is_none() => p.add(
            "upstream.cert_file",
            "a client certificate is for an https:// upstream, with upstream.ca_file",
        ),
        _ => {}
    }
}

fn tls_and_limits(p: &mut Problems, s: &Settings) {
    if let Some(dir) = &s.tls.dir {
        tls_dir(p, dir);
        if s.tls.dev_identity_from_metadata {
            p.add(
                "tls.dev_identity_from_metadata",
                "refused with TLS (tls.dir), where facilities are identified by their certificates",
            );
        }
    }
    if s.limits.facility_rate_per_sec > 0 {
        p.at_least(
            "limits.facility_burst",
            u64::from(s.limits.facility_burst),
            1,
        );
    }
}

fn audit(p: &mut Problems, s: &Settings) {
    if let Some(key) = &s.audit.key {
        audit_key(p, key);
    }
    p.at_least("audit.max_batch", s.audit.max_batch as u64, 1);
    p.at_least("audit.checkpoint_records", s.audit.checkpoint_records, 1);
    p.at_least("audit.checkpoint_secs", s.audit.checkpoint_secs, 1);
    // Zero days would prune every record at the first checkpoint.
    p.at_least("audit.retention_days", s.audit.retention_days, 1);
}

fn telemetry(p: &mut Problems, s: &Settings) {
    if let Some(Err(why)) = s.telemetry.otlp_endpoint.as_deref().map(http_url) {
        p.add("telemetry.otlp_endpoint", why);
    }
    if s.telemetry.service_name.trim().is_empty() {
        p.add("telemetry.service_name", "must not be empty");
    }
    let ratio = s.telemetry.sample_ratio;
    if !(0.0..=1.0).contains(&ratio) {
        p.add(
            "telemetry.sample_ratio",
            format!("{ratio} is not a share of traces between 0.0 and 1.0"),
        );
    }
}

struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(Problem::new(key, message));
    }

    fn at_least(&mut self, key: &str, value: u64, min: u64) {
        if value < min {
            self.add(key, format!("{value} is too small; at least {min}"));
        }
    }
}

/// An `http://` or `https://` URL with a host.
fn http_url(text: &str) -> Result<(), String> {
    let shown = mask_url(text);
    let url = url::Url::parse(text)
        .map_err(|e| format!("{shown:?} is not a URL ({e}); e.g. http://127.0.0.1:4317"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{shown:?} has the scheme {:?}; use http:// or https://",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown:?} names no host"));
    }
    Ok(())
}

/// A PostgreSQL URL the store can connect with. The URL is never shown with its
/// password.
fn postgres_url(text: &str) -> Result<(), String> {
    let shown = mask_url(text);
    let url = url::Url::parse(text).map_err(|e| format!("{shown:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(format!(
            "{shown:?} has the scheme {:?}; the shared store is PostgreSQL: postgres://user@host:5432/db",
            url.scheme()
        ));
    }
    sqlx::postgres::PgConnectOptions::from_str(text)
        .map(|_| ())
        .map_err(|_| format!("{shown:?} is not a PostgreSQL connection URL"))
}

fn tls_dir(p: &mut Problems, dir: &Path) {
    if !dir.is_dir() {
        p.add(
            "tls.dir",
            format!(
                "{} is not a directory (create one with `onshi-gateway certs dev --dir {}` for development)",
                dir.display(),
                dir.display()
            ),
        );
        return;
    }
    let files = TlsFiles::in_dir(dir);
    for file in [
        &files.cert,
        &files.key,
        &files.facility_ca,
        &files.operator_ca,
    ] {
        if let Err(e) = std::fs::File::open(file) {
            p.add("tls.dir", format!("cannot read {}: {e}", file.display()));
        }
    }
}

/// An existing key must be readable and look like one; a missing one is generated at
/// the first start, which needs its directory.
fn audit_key(p: &mut Problems, key: &Path) {
    match std::fs::read_to_string(key) {
        Ok(text) => {
            let text = text.trim();
            if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
                p.add(
                    "audit.key",
                    format!(
                        "{} is not an audit signing key (64 hexadecimal digits)",
                        key.display()
                    ),
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = key
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                p.add(
                    "audit.key",
                    format!(
                        "{} does not exist and cannot be generated: no directory {}",
                        key.display(),
                        dir.display()
                    ),
                );
            }
        }
        Err(e) => p.add("audit.key", format!("cannot read {}: {e}", key.display())),
    }
}

/// TOML integers are signed 64-bit: a larger value (given by flag or environment)
/// could not be written to a file.
fn too_large_for_toml(p: &mut Problems, s: &Settings) {
    let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(s) else {
        return;
    };
    for (section, keys) in &sections {
        let serde_json::Value::Object(keys) = keys else {
            continue;
        };
        for (key, value) in keys {
            if value.as_u64().is_some_and(|n| i64::try_from(n).is_err()) {
                p.add(
                    &format!("{section}.{key}"),
                    format!("{value} is too large; at most {}", i64::MAX),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(s: &Settings) -> Vec<String> {
        check(s).into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn the_defaults_pass() {
        assert_eq!(check(&Settings::default()), []);
    }

    #[test]
    fn one_usable_notice_sink_at_most() {
        let mut s = Settings::default();
        s.notices.webhook_url = Some("http://127.0.0.1:8080/notices".into());
        assert_eq!(keys(&s), Vec::<String>::new());
        s.notices.spool_dir = Some("/var/spool/onshi".into());
        assert_eq!(keys(&s), ["notices.spool_dir"]);
        s.notices.spool_dir = None;
        for bad in ["https://portal.example/notices", "ftp://x/", "not a url"] {
            // https:// without the CA to verify the receiver by.
            s.notices.webhook_url = Some(bad.into());
            assert_eq!(keys(&s), ["notices.webhook_url"], "{bad}");
        }
        let mut s = Settings::default();
        s.notices.lease_secs = 0;
        s.review.overdue_days = 0;
        assert_eq!(keys(&s), ["notices.lease_secs", "review.overdue_days"]);
    }

    #[test]
    fn an_https_upstream_needs_its_ca_and_a_certificate_its_key() {
        let mut s = Settings::default();
        s.upstream.url = Some("https://oqs.example:443".into());
        assert_eq!(keys(&s), ["upstream.ca_file"]);
        s.upstream.ca_file = Some("/etc/onshi/oqs-ca.pem".into());
        assert_eq!(keys(&s), Vec::<String>::new());
        s.upstream.cert_file = Some("/etc/onshi/gateway.pem".into());
        assert_eq!(keys(&s), ["upstream.key_file"]);
        s.upstream.key_file = Some("/etc/onshi/gateway.key".into());
        assert_eq!(keys(&s), Vec::<String>::new());
        s.upstream.url = Some("http://10.0.0.5:50052".into());
        assert_eq!(keys(&s), ["upstream.ca_file"]);
        s.upstream.ca_file = None;
        assert_eq!(keys(&s), ["upstream.cert_file"]);
    }

    #[test]
    fn urls_need_their_scheme() {
        let mut s = Settings::default();
        s.upstream.url = Some("ftp://10.0.0.5".into());
        s.store.database_url = Some("mysql://u:secret@db/onshi".into());
        s.telemetry.otlp_endpoint = Some("127.0.0.1:4317".into());
        let problems = check(&s);
        assert_eq!(
            keys(&s),
            [
                "store.database_url",
                "upstream.url",
                "telemetry.otlp_endpoint"
            ]
        );
        assert!(
            problems.iter().all(|p| !p.message.contains("secret")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_postgres_url_passes() {
        let mut s = Settings::default();
        s.store.database_url = Some("postgres://onshi:pw@db.internal:5432/onshi".into());
        s.upstream.url = Some("https://oqs.example:443".into());
        s.upstream.ca_file = Some("/etc/onshi/oqs-ca.pem".into());
        s.telemetry.otlp_endpoint = Some("http://127.0.0.1:4317".into());
        assert_eq!(check(&s), []);
    }

    #[test]
    fn numbers_out_of_range_are_named() {
        let mut s = Settings::default();
        s.telemetry.sample_ratio = 1.5;
        s.limits.facility_burst = 0;
        s.activations.refresh_ms = 0;
        s.upstream.seed = u64::MAX;
        assert_eq!(
            keys(&s),
            [
                "limits.facility_burst",
                "activations.refresh_ms",
                "telemetry.sample_ratio",
                "upstream.seed"
            ]
        );
        s.telemetry.sample_ratio = f64::NAN;
        assert!(keys(&s).contains(&"telemetry.sample_ratio".to_string()));
    }

    #[test]
    fn no_burst_is_needed_without_a_rate() {
        let mut s = Settings::default();
        s.limits.facility_rate_per_sec = 0;
        s.limits.facility_burst = 0;
        assert_eq!(check(&s), []);
    }

    #[test]
    fn tls_needs_its_four_files_and_refuses_the_development_identity() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("server.pem"), "x").expect("write");
        let mut s = Settings::default();
        s.tls.dir = Some(dir.path().to_path_buf());
        s.tls.dev_identity_from_metadata = true;
        let problems = check(&s);
        let messages: Vec<_> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            keys(&s),
            [
                "tls.dir",
                "tls.dir",
                "tls.dir",
                "tls.dev_identity_from_metadata"
            ],
            "{messages:?}"
        );
        for missing in ["server.key", "facility-ca.pem", "operator-ca.pem"] {
            assert!(
                messages.iter().any(|m| m.contains(missing)),
                "{missing}: {messages:?}"
            );
        }
    }

    #[test]
    fn an_audit_key_must_be_a_key_or_be_creatable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = Settings::default();
        s.audit.key = Some(dir.path().join("replica-1.key"));
        assert_eq!(check(&s), [], "generated at first start");
        s.audit.key = Some(dir.path().join("no-such-dir/replica-1.key"));
        assert_eq!(keys(&s), ["audit.key"]);
        let garbled = dir.path().join("garbled.key");
        std::fs::write(&garbled, "not a key").expect("write");
        s.audit.key = Some(garbled);
        assert_eq!(keys(&s), ["audit.key"]);
        let good = dir.path().join("good.key");
        std::fs::write(&good, format!("{}\n", "ab".repeat(32))).expect("write");
        s.audit.key = Some(good);
        assert_eq!(check(&s), []);
    }

    #[test]
    fn a_log_filter_must_parse() {
        let mut s = Settings::default();
        s.log.level = "info,=[".into();
        assert_eq!(keys(&s), ["log.level"]);
    }
}
