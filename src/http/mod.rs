//! Everything HTTP: the axum router, one module per API area, the extractors, JSON bodies
//! and errors, paging, the OpenAPI document, and the Socket.IO gateway beside them. The
//! handlers parse and answer; what they do is in the services ([`crate::state::App`]).

pub mod auth;
pub mod chat;
pub mod events;
pub mod extract;
pub mod json;
pub mod openapi;
pub mod ops;
pub mod paging;
pub mod serve;
pub mod socket;
pub mod team;
pub mod web;
pub mod whatsapp;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(auth::router())
        .merge(team::router())
        .merge(chat::router())
        .merge(events::router())
        .merge(whatsapp::router())
        .merge(ops::router())
}

/// The whole HTTP surface (the Socket.IO layer is added by start-up).
pub fn router(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    api.fallback(web::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_declared_oversize,
        ))
        .layer(axum::middleware::map_response(nosniff))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(state.config.body_read_timeout_secs),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// A body declared larger than the limit is refused from its `Content-Length` alone. The
/// body limit by itself only trips once that many bytes have arrived, so a client that
/// declares a gigabyte and sends two bytes would hold the request open instead.
async fn refuse_declared_oversize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config.max_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body may be at most {limit} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

/// No response is to be read as anything but its declared `Content-Type`.
async fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

pub(super) async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}
