//! The one place where errors become responses: [`ApiError`] for every client of the API (HTTP
//! status and grpc-gateway body, or a gRPC status), [`WebError`] for the pages people read.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::body::BodyError;
use crate::ingest::IngestError;
use crate::observability::{self, RejectReason};
use crate::report::ProductFamily;
use crate::writer::WriteError;

/// Seconds a client is asked to wait before retrying after a 503.
const RETRY_AFTER_SECS: u64 = 5;

/// What a refused request's response carries to the request counter (`middleware::count_requests`),
/// which knows the route.
#[derive(Clone, Copy, Debug)]
pub(super) struct Refused {
    reason: RejectReason,
    product_family: Option<ProductFamily>,
}

/// The one line an operator sees for each refused request: never the address, never the body.
pub(super) fn log_refusal(route: &str, status: u16, refused: &Refused) {
    tracing::info!(
        route,
        status,
        reason = refused.reason.as_str(),
        product_family = refused.product_family.map(ProductFamily::as_str),
        "request refused"
    );
}

/// Every error a client can see, mapped to a status and a grpc-gateway `google.rpc.Status` body in
/// [`IntoResponse`] below and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request's content is wrong; the family of the product that sent it, where it could be told.
    #[error("{error}")]
    Invalid {
        error: IngestError,
        product_family: Option<ProductFamily>,
    },
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("method not allowed; this endpoint accepts {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("not found")]
    NotFound,
    #[error("too many requests from this client; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the request took too long to arrive")]
    Timeout,
    #[error("the service is busy with other requests' bodies; try again shortly")]
    Busy,
    #[error(
        "unsupported Transfer-Encoding: only chunked is accepted; compress with Content-Encoding: gzip"
    )]
    TransferCoding,
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        Self::Invalid {
            error,
            product_family: None,
        }
    }
}

impl ApiError {
    /// A refusal of what a product of a known family sent.
    pub fn invalid_from(error: IngestError, product_family: Option<ProductFamily>) -> Self {
        Self::Invalid {
            error,
            product_family,
        }
    }

    /// The same error for a gRPC caller: the gRPC code paired with the HTTP status below
    /// (InvalidArgument, Unavailable, ...) and the same message.
    pub fn into_grpc_status(self) -> tonic::Status {
        let (status, code) = self.status_and_code();
        if let Some(refused) = self.refused() {
            observability::reports_rejected(refused.reason, 1);
            log_refusal(super::grpc::REPORT_PATH, status.as_u16(), &refused);
        }
        tonic::Status::new(tonic::Code::from_i32(i32::from(code)), self.to_string())
    }

    /// The error as a gRPC caller (`grpc`) or any other client reads it.
    pub fn into_response_for(self, grpc: bool) -> Response {
        if grpc {
            self.into_grpc_status().into_http()
        } else {
            self.into_response()
        }
    }

    /// How the refusal is counted and logged; `None` for requests that are not reports at all.
    fn refused(&self) -> Option<Refused> {
        let reason = match self {
            Self::Invalid { error, .. } => error.reason(),
            Self::Body(BodyError::TooLarge { .. }) => RejectReason::TooLarge,
            Self::Body(BodyError::InvalidGzip(_)) => RejectReason::InvalidEncoding,
            Self::Body(BodyError::Unreadable(_)) | Self::TransferCoding => {
                RejectReason::UnreadableBody
            }
            Self::Write(WriteError::Overloaded) => RejectReason::Overloaded,
            Self::Write(WriteError::Unavailable | WriteError::ShuttingDown) => {
                RejectReason::Unavailable
            }
            Self::Write(WriteError::Failed) => RejectReason::StoreFailed,
            Self::RateLimited { .. } => RejectReason::RateLimited,
            Self::Timeout => RejectReason::Timeout,
            Self::Busy | Self::Body(BodyError::BudgetSpent(_)) => RejectReason::MemoryBudget,
            Self::MethodNotAllowed { .. } | Self::NotFound => return None,
        };
        let product_family = match self {
            Self::Invalid { product_family, .. } => *product_family,
            _ => None,
        };
        Some(Refused {
            reason,
            product_family,
        })
    }

    /// HTTP status and the gRPC code grpc-gateway pairs with it.
    fn status_and_code(&self) -> (StatusCode, u16) {
        match self {
            Self::Invalid { .. }
            | Self::TransferCoding
            | Self::Body(BodyError::InvalidGzip(_) | BodyError::Unreadable(_)) => {
                (StatusCode::BAD_REQUEST, 3)
            }
            Self::Body(BodyError::TooLarge { .. }) => (StatusCode::PAYLOAD_TOO_LARGE, 8),
            Self::Write(WriteError::Failed) => (StatusCode::INTERNAL_SERVER_ERROR, 13),
            Self::Write(_) | Self::Busy | Self::Body(BodyError::BudgetSpent(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, 14)
            }
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, 12),
            Self::NotFound => (StatusCode::NOT_FOUND, 5),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, 8),
            Self::Timeout => (StatusCode::REQUEST_TIMEOUT, 4),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let refused = self.refused();
        let body = json!({"code": code, "message": self.to_string(), "details": []});
        let mut response = (status, Json(body)).into_response();
        if let Some(refused) = refused {
            observability::reports_rejected(refused.reason, 1);
            response.extensions_mut().insert(refused);
        }
        let headers = response.headers_mut();
        match self {
            Self::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Self::Write(
                WriteError::Overloaded | WriteError::Unavailable | WriteError::ShuttingDown,
            )
            | Self::Busy
            | Self::Body(BodyError::BudgetSpent(_)) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("rendering the {page} page failed: {source}")]
    Render {
        page: &'static str,
        #[source]
        source: askama::Error,
    },
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, "page not rendered");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "The page could not be rendered.",
        )
            .into_response()
    }
}
