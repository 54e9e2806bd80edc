//! The gRPC method PMM 2.4–2.24 call, `percona.platform.telemetry.reporter.v1.ReporterAPI/Report`,
//! served by the same listener as the JSON API: the server speaks HTTP/2 (cleartext with prior
//! knowledge, or TLS with ALPN `h2`) next to HTTP/1.1, and the router sends this one path here.
//! tonic frames and decodes the length-prefixed binary protobuf; the messages are the hand-written
//! ones in [`crate::legacy::proto`], so no code generation is involved.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{ConnectInfo, Request};
use axum::response::{IntoResponse, Response};
use tonic::Code;
use tonic::server::Grpc;
use tonic_prost::ProstCodec;

use super::error::ApiError;
use super::state::AppState;
use crate::body::BodyError;
use crate::legacy;
use crate::legacy::proto::{ReportRequest, ReportResponse};
use crate::report::ProductFamily;

/// The HTTP/2 path gRPC clients post the method to.
pub const REPORT_PATH: &str = "/percona.platform.telemetry.reporter.v1.ReporterAPI/Report";

/// Answers one gRPC call. Errors travel as gRPC statuses (HTTP 200 with `grpc-status`), as gRPC
/// clients expect: InvalidArgument for a bad report or a message that does not decode,
/// ResourceExhausted for a message over `max_message_bytes`, Unavailable when the reports could not
/// be committed right now.
pub async fn report(state: Arc<AppState>, request: Request) -> Response {
    let max_message_bytes = state.max_body_bytes;
    // tonic calls the method only with a decoded message; a status from before that is about the
    // message the client sent, whatever code tonic gave it.
    let decoded = Arc::new(AtomicBool::new(false));
    let method = {
        let decoded = decoded.clone();
        tower::service_fn(move |request| {
            decoded.store(true, Ordering::Relaxed);
            handle(state.clone(), request)
        })
    };
    let mut grpc = Grpc::new(ProstCodec::<ReportResponse, ReportRequest>::default())
        .max_decoding_message_size(max_message_bytes);
    let response = grpc.unary(method, request).await.into_response();
    if decoded.load(Ordering::Relaxed) {
        return response;
    }
    match tonic::Status::from_header_map(response.headers()) {
        Some(status) => match refused_message(&status, max_message_bytes) {
            Some(error) => error.into_grpc_status().into_http(),
            None => response,
        },
        None => response,
    }
}

/// What tonic's refusal of a request message means for the client: tonic answers Internal for a
/// message that does not decode (bad varint, invalid UTF-8, truncated, missing) and OutOfRange for
/// one over the size limit, where the client is at fault.
fn refused_message(status: &tonic::Status, max_message_bytes: usize) -> Option<ApiError> {
    match status.code() {
        Code::Internal => Some(ApiError::Body(BodyError::Unreadable(
            status.message().to_owned(),
        ))),
        Code::OutOfRange | Code::ResourceExhausted => Some(ApiError::Body(BodyError::TooLarge {
            max_bytes: max_message_bytes,
        })),
        _ => None,
    }
}

async fn handle(
    state: Arc<AppState>,
    request: tonic::Request<ReportRequest>,
) -> Result<tonic::Response<ReportResponse>, tonic::Status> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let (metadata, _, message) = request.into_parts();
    let reports = legacy::grpc_reports(message).map_err(|error| {
        ApiError::invalid_from(error, Some(ProductFamily::Pmm)).into_grpc_status()
    })?;
    state
        .intake
        .accept(peer, &metadata.into_headers(), reports)
        .await
        .map_err(|error| ApiError::Write(error).into_grpc_status())?;
    Ok(tonic::Response::new(ReportResponse {}))
}
