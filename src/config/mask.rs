//! Secrets hidden for display: the password of a URL (and the whole user part of an
//! HTTP URL, where it is a credential), and query parameters that carry one. The
//! rest of the URL is kept exactly as written.

use super::Settings;

const MASK: &str = "****";

/// Query parameters whose value is a secret (libpq's `password`, tokens of collectors).
const SECRET_PARAMETERS: &[&str] = &[
    "password",
    "passwd",
    "sslpassword",
    "secret",
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
];

/// The settings as they may be shown.
pub fn masked(s: &Settings) -> Settings {
    let mut s = s.clone();
    let mask = |v: &mut Option<String>| {
        if let Some(url) = v {
            *url = mask_url(url);
        }
    };
    mask(&mut s.store.database_url);
    mask(&mut s.upstream.url);
    mask(&mut s.telemetry.otlp_endpoint);
    s
}

/// `text` with its credentials replaced by `****`.
pub fn mask_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let scheme = text[..scheme_end].to_ascii_lowercase();
    let rest_start = scheme_end + 3;
    let rest = &text[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);

    let mut out = text[..rest_start].to_string();
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push(':');
                    out.push_str(MASK);
                }
                // A database user name alone is no secret; in an HTTP URL it is
                // usually a token.
                None if scheme.starts_with("postgres") => out.push_str(userinfo),
                None => out.push_str(MASK),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(&mask_query(tail));
    out
}

/// The path, query and fragment, with secret query parameters masked.
fn mask_query(tail: &str) -> String {
    let (before_fragment, fragment) = match tail.find('#') {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    let Some((path, query)) = before_fragment.split_once('?') else {
        return tail.to_string();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMETERS.contains(&name.to_ascii_lowercase().as_str()) => {
                format!("{name}={MASK}")
            }
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}{fragment}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_is_masked_and_the_rest_kept() {
        assert_eq!(
            mask_url("postgres://onshi:s3cr%40t@db.internal:5432/onshi?sslmode=require"),
            "postgres://onshi:****@db.internal:5432/onshi?sslmode=require"
        );
        assert_eq!(
            mask_url("postgres://onshi@db/onshi"),
            "postgres://onshi@db/onshi"
        );
        assert_eq!(
            mask_url("postgresql://db/onshi?user=onshi&password=hunter2"),
            "postgresql://db/onshi?user=onshi&password=****"
        );
    }

    #[test]
    fn userinfo_of_an_http_endpoint_is_masked_whole() {
        assert_eq!(
            mask_url("https://abcdef123@collector.example:4317/v1"),
            "https://****@collector.example:4317/v1"
        );
        assert_eq!(
            mask_url("https://user:pw@collector.example"),
            "https://user:****@collector.example"
        );
        assert_eq!(
            mask_url("http://collector:4317/?token=t0k#x"),
            "http://collector:4317/?token=****#x"
        );
    }

    #[test]
    fn text_without_credentials_is_unchanged() {
        for text in ["http://127.0.0.1:4317", "not a url", "", "http://a/b?c=d"] {
            assert_eq!(mask_url(text), text);
        }
    }

    #[test]
    fn masked_settings_hide_every_url_secret() {
        let mut s = Settings::default();
        s.store.database_url = Some("postgres://u:p1@db/x".into());
        s.upstream.url = Some("https://u:p2@oqs".into());
        s.telemetry.otlp_endpoint = Some("https://p3@otel".into());
        let shown = masked(&s).to_toml().expect("serializes");
        for secret in ["p1", "p2", "p3"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
