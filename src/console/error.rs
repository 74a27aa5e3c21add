//! Why a page cannot be shown, as a page: refused (no certificate, a facility's or a
//! site's, or a role the API method does not allow), a form that failed its CSRF
//! check, bad input, or a service's refusal with its reason.

use axum::extract::Request;
use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use tonic_types::StatusExt;

use super::csrf::CsrfError;
use super::page::{bilingual, esc};
use crate::domain::Violation;

#[derive(Debug)]
pub enum PageError {
    Refused(Violation),
    Csrf(CsrfError),
    BadInput(String),
    Service(tonic::Status),
}

impl From<tonic::Status> for PageError {
    fn from(s: tonic::Status) -> Self {
        PageError::Service(s)
    }
}

impl From<CsrfError> for PageError {
    fn from(e: CsrfError) -> Self {
        PageError::Csrf(e)
    }
}

/// The reason and message of a service's refusal.
pub fn describe(status: &tonic::Status) -> String {
    match status.get_details_error_info() {
        Some(info) => format!("{}: {}", info.reason, status.message()),
        None => format!("{:?}: {}", status.code(), status.message()),
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (code, title, detail) = match &self {
            PageError::Refused(v) => (
                StatusCode::FORBIDDEN,
                bilingual("この操作は許可されていません", "Not allowed"),
                format!("{}: {}", v.reason.as_str(), v.description),
            ),
            PageError::Csrf(e) => (
                StatusCode::FORBIDDEN,
                bilingual("フォームを確認できません", "Form refused (CSRF)"),
                e.to_string(),
            ),
            PageError::BadInput(text) => (
                StatusCode::BAD_REQUEST,
                bilingual("入力に誤りがあります", "Bad input"),
                text.clone(),
            ),
            PageError::Service(s) => (
                match s.code() {
                    tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
                        StatusCode::FORBIDDEN
                    }
                    tonic::Code::Unavailable | tonic::Code::Internal => {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    _ => StatusCode::BAD_REQUEST,
                },
                bilingual("処理できませんでした", "The request was refused"),
                describe(s),
            ),
        };
        let body = format!(
            "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{code}</title>\
             <link rel=\"stylesheet\" href=\"/console/assets/console.css\"></head><body><main>\
             <h1>{title}</h1><p class=\"msg error\" id=\"error\">{}</p>\
             <p><a href=\"/console/now\">コンソールへ戻る <span class=\"en\">Back</span></a></p>\
             </main></body></html>",
            esc(&detail)
        );
        (code, Html(body)).into_response()
    }
}

pub async fn not_found(request: Request) -> PageError {
    PageError::BadInput(format!("no console page at {}", request.uri().path()))
}
