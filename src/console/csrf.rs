//! CSRF protection without a session: every form carries a token that is an HMAC,
//! under a key this process draws at start, of the form's action, the time it was
//! issued and the fingerprint of the certificate the page was served to. A POST is
//! accepted only with a valid, unexpired token for the same certificate and action,
//! and only from the console's own origin (`Sec-Fetch-Site`, `Origin`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use rand::RngCore;
use sha2::Sha256;

/// How long a page's forms may be submitted after it was served.
pub const TOKEN_LIFETIME_SECS: i64 = 8 * 3600;

#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("the form carries no CSRF token")]
    Missing,
    #[error("the CSRF token is not valid for this certificate and form")]
    Invalid,
    #[error("the form has expired: reload the page")]
    Expired,
    #[error("the request does not come from the console's own pages ({0})")]
    CrossSite(String),
}

impl CsrfKey {
    /// The key every replica serving the console under the same certificate derives
    /// alike, so that a form served by one is accepted by another: a hash of the
    /// server's private key, labelled for this use alone (the key is never exposed).
    pub fn derive(secret: &[u8]) -> CsrfKey {
        use sha2::Digest;
        let mut hash = Sha256::new();
        hash.update(b"onshi-gateway console CSRF v1\0");
        hash.update(secret);
        CsrfKey(hash.finalize().into())
    }

    pub fn generate() -> CsrfKey {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        CsrfKey(key)
    }

    fn mac(&self, action: &str, issued: i64, fingerprint: &[u8; 32]) -> Vec<u8> {
        // new_from_slice only fails for key lengths HMAC refuses, never for 32 bytes.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return Vec::new();
        };
        mac.update(action.as_bytes());
        mac.update(&[0]);
        mac.update(&issued.to_be_bytes());
        mac.update(fingerprint);
        mac.finalize().into_bytes().to_vec()
    }

    /// The token for a form posting to `action`, on a page served at `now`.
    pub fn token(&self, action: &str, fingerprint: &[u8; 32], now: DateTime<Utc>) -> String {
        let issued = now.timestamp();
        let mut raw = issued.to_be_bytes().to_vec();
        raw.extend(self.mac(action, issued, fingerprint));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a submitted token (in constant time, through `verify_slice`).
    pub fn verify(
        &self,
        token: Option<&str>,
        action: &str,
        fingerprint: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<(), CsrfError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(CsrfError::Missing)?;
        let raw = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| CsrfError::Invalid)?;
        let (issued, mac) = raw.split_at_checked(8).ok_or(CsrfError::Invalid)?;
        let issued = i64::from_be_bytes(issued.try_into().map_err(|_| CsrfError::Invalid)?);
        let Ok(mut expected) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return Err(CsrfError::Invalid);
        };
        expected.update(action.as_bytes());
        expected.update(&[0]);
        expected.update(&issued.to_be_bytes());
        expected.update(fingerprint);
        expected.verify_slice(mac).map_err(|_| CsrfError::Invalid)?;
        let age = now.timestamp() - issued;
        if !(-60..=TOKEN_LIFETIME_SECS).contains(&age) {
            return Err(CsrfError::Expired);
        }
        Ok(())
    }
}

/// Refuses a request a browser says came from another site, or whose `Origin` is
/// not the host it was sent to: `Host` over HTTP/1.1, the URI's authority over
/// HTTP/2 (`authority`).
pub fn same_origin(headers: &HeaderMap, authority: Option<&str>) -> Result<(), CsrfError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(CsrfError::CrossSite(format!("Sec-Fetch-Site: {site}")));
    }
    if let Some(origin) = header("origin") {
        let host = header("host").or(authority).unwrap_or_default();
        if origin != format!("https://{host}") {
            return Err(CsrfError::CrossSite(format!("Origin: {origin}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_its_certificate_its_form_and_its_time() {
        let key = CsrfKey::generate();
        let now = Utc::now();
        let me = [7u8; 32];
        let t = key.token("/console/activate", &me, now);
        assert_eq!(key.verify(Some(&t), "/console/activate", &me, now), Ok(()));
        assert_eq!(
            key.verify(Some(&t), "/console/activate", &[8u8; 32], now),
            Err(CsrfError::Invalid)
        );
        assert_eq!(
            key.verify(Some(&t), "/console/review", &me, now),
            Err(CsrfError::Invalid)
        );
        let later = now + chrono::TimeDelta::seconds(TOKEN_LIFETIME_SECS + 1);
        assert_eq!(
            key.verify(Some(&t), "/console/activate", &me, later),
            Err(CsrfError::Expired)
        );
        assert_eq!(
            key.verify(None, "/console/activate", &me, now),
            Err(CsrfError::Missing)
        );
        let other = CsrfKey::generate();
        assert_eq!(
            other.verify(Some(&t), "/console/activate", &me, now),
            Err(CsrfError::Invalid)
        );
    }

    #[test]
    fn replicas_with_one_server_key_accept_each_others_forms() {
        let now = Utc::now();
        let me = [7u8; 32];
        let a = CsrfKey::derive(b"server key");
        let b = CsrfKey::derive(b"server key");
        let t = a.token("/console/activate", &me, now);
        assert_eq!(b.verify(Some(&t), "/console/activate", &me, now), Ok(()));
        let other = CsrfKey::derive(b"another server key");
        assert_eq!(
            other.verify(Some(&t), "/console/activate", &me, now),
            Err(CsrfError::Invalid)
        );
    }

    #[test]
    fn another_site_is_refused() {
        let mut h = HeaderMap::new();
        h.insert("host", "127.0.0.1:8443".parse().expect("header"));
        h.insert("origin", "https://127.0.0.1:8443".parse().expect("header"));
        h.insert("sec-fetch-site", "same-origin".parse().expect("header"));
        assert_eq!(same_origin(&h, None), Ok(()));
        h.insert("origin", "https://evil.example".parse().expect("header"));
        assert!(matches!(
            same_origin(&h, None),
            Err(CsrfError::CrossSite(_))
        ));
        h.insert("origin", "https://127.0.0.1:8443".parse().expect("header"));
        h.insert("sec-fetch-site", "cross-site".parse().expect("header"));
        assert!(matches!(
            same_origin(&h, None),
            Err(CsrfError::CrossSite(_))
        ));
        // HTTP/2: no Host header, the authority instead.
        let mut h2 = HeaderMap::new();
        h2.insert("origin", "https://localhost:8443".parse().expect("header"));
        assert_eq!(same_origin(&h2, Some("localhost:8443")), Ok(()));
        assert!(matches!(
            same_origin(&h2, Some("other:8443")),
            Err(CsrfError::CrossSite(_))
        ));
        h2.insert("origin", "null".parse().expect("header"));
        assert!(matches!(
            same_origin(&h2, Some("localhost:8443")),
            Err(CsrfError::CrossSite(_))
        ));
    }
}
