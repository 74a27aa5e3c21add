//! The console's stylesheet and its one script, embedded in the binary: the closed
//! network has no CDN, and the Content-Security-Policy allows no other source.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;

use super::error::PageError;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

pub async fn file(Path(name): Path<String>) -> Response {
    match name.as_str() {
        "console.css" => ([(CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response(),
        "console.js" => ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], JS).into_response(),
        _ => PageError::BadInput(format!("no asset {name}")).into_response(),
    }
}
