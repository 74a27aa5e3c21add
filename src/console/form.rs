//! What a handler receives: the caller (refused outright unless an operator), and for
//! a POST the form's fields, accepted only from the console's own origin with a
//! valid CSRF token for this certificate and this form's action.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;

use super::Console;
use super::caller::Caller;
use super::csrf::same_origin;
use super::error::PageError;

/// Largest form accepted: a long notice pasted whole fits.
const MAX_FORM_BYTES: usize = 256 * 1024;

impl FromRequestParts<Console> for Caller {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &Console) -> Result<Caller, PageError> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(|| Caller::from_certificate(None));
        caller.operator().map_err(PageError::Refused)?;
        Ok(caller)
    }
}

/// A submitted form: every value of each field, in order.
pub struct Posted {
    pub caller: Caller,
    pub fields: BTreeMap<String, Vec<String>>,
}

impl Posted {
    /// The field's first value, trimmed; empty if absent.
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .and_then(|v| v.first())
            .map_or("", |s| s.trim())
    }

    pub fn all(&self, name: &str) -> &[String] {
        self.fields.get(name).map_or(&[], Vec::as_slice)
    }
}

impl FromRequest<Console> for Posted {
    type Rejection = PageError;

    async fn from_request(request: Request, console: &Console) -> Result<Posted, PageError> {
        let (mut parts, body) = request.into_parts();
        let caller = Caller::from_request_parts(&mut parts, console).await?;
        same_origin(
            &parts.headers,
            parts.uri.authority().map(http::uri::Authority::as_str),
        )?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|e| PageError::BadInput(format!("the form cannot be read: {e}")))?;
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(&bytes) {
            fields
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
        let token = fields
            .get("csrf")
            .and_then(|v| v.first())
            .map(String::as_str);
        console.csrf.verify(
            token,
            parts.uri.path(),
            &caller.fingerprint,
            console.clock.now(),
        )?;
        Ok(Posted { caller, fields })
    }
}
