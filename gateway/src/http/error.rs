//! The one place the HTTP fronts turn errors into status codes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::Code;

use crate::GatewayError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// A range that does not overlap the content; the size goes in `Content-Range`.
    #[error("{message}")]
    RangeNotSatisfiable { message: String, size: u64 },
    /// No token was sent.
    #[error("{0}")]
    Unauthorized(String),
    /// A wrong token was sent.
    #[error("{0}")]
    Forbidden(String),
    /// The request contradicts what exists (qBittorrent's answer to an unknown category).
    #[error("{0}")]
    Conflict(String),
    /// An upload that is not what the endpoint takes (qBittorrent's answer to a bad .torrent).
    #[error("{0}")]
    UnsupportedMediaType(String),
}

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::NotFound(_) => StatusCode::NOT_FOUND,
            HttpError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            HttpError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            HttpError::Forbidden(_) => StatusCode::FORBIDDEN,
            HttpError::Conflict(_) => StatusCode::CONFLICT,
            HttpError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            // The API's mapping, so both edges agree on what each error is.
            HttpError::Gateway(e) => match crate::api::status_code(e) {
                Code::InvalidArgument => StatusCode::BAD_REQUEST,
                Code::NotFound => StatusCode::NOT_FOUND,
                Code::FailedPrecondition => StatusCode::CONFLICT,
                Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
                Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "HTTP request failed");
        }
        let mut resp = (status, format!("{self}\n")).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        match &self {
            HttpError::Unauthorized(_) => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            HttpError::RangeNotSatisfiable { size, .. } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
            }
            HttpError::Gateway(GatewayError::Unavailable(_)) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        resp
    }
}
