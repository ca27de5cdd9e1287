//! Everything HTTP: the axum router, one module per API area, the extractors, JSON bodies
//! and errors, paging, the OpenAPI document, and the Socket.IO gateway beside them. The
//! handlers parse and answer; what they do is in the services ([`crate::state::App`]).

pub mod api_keys;
pub mod auth;
pub mod chat;
pub mod events;
pub mod extract;
pub mod json;
pub mod library;
pub mod media;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod paging;
pub mod search;
pub mod serve;
pub mod socket;
pub mod team;
pub mod tenant;
pub mod web;
pub mod webhooks;
pub mod whatsapp;
pub mod workflow;

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ApiError;
use crate::state::AppState;

/// The header that carries a request's id, both ways: a client (or a proxy in front) may
/// send one, and every response carries the id its request was logged under.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest `x-request-id` a client may choose; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(auth::router())
        .merge(team::router())
        .merge(chat::router())
        .merge(media::router())
        .merge(workflow::router())
        .merge(library::router())
        .merge(search::router())
        .merge(notifications::router())
        .merge(events::router())
        .merge(whatsapp::router())
        .merge(ops::router())
        .merge(tenant::router())
        .merge(tenant::delete_router())
        .merge(api_keys::router())
        .merge(webhooks::router())
}

/// The whole HTTP surface (the Socket.IO layer is added by start-up).
///
/// The layers run after routing (so they see the matched route), outermost last: a request
/// first gets its id, then its `request` span, then is counted and timed, and only then meets
/// CORS, the timeouts and limits, whose refusals are counted and logged like any answer.
pub fn router(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    api.fallback(web::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_declared_oversize,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(state.config.body_read_timeout_secs),
        ))
        .layer(tower::util::option_layer(cors(
            &state.config.cors_allow_origins,
        )))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_request,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(tower::util::MapRequestLayer::new(
            drop_unusable_request_id::<Body>,
        ))
        .with_state(state)
}

/// Removes an `x-request-id` the server will not log under: more than one, empty, longer
/// than [`MAX_REQUEST_ID`], or with anything but letters, digits and `-_.:+/=` (so an id
/// never breaks a log line or smuggles text into one). The request then gets a fresh one.
fn drop_unusable_request_id<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let usable = {
        let mut ids = request.headers().get_all(&REQUEST_ID).iter();
        match (ids.next(), ids.next()) {
            (None, _) => return request,
            (Some(id), None) => usable_request_id(id.as_bytes()),
            (Some(_), Some(_)) => false,
        }
    };
    if !usable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    request
}

fn usable_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(b))
}

/// The span every line logged while handling a request is written in: its id (the one in the
/// `x-request-id` response header), its method and the route template it matched — never
/// its path or query, which can hold a phone number.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(crate::metrics::UNMATCHED, MatchedPath::as_str);
    tracing::info_span!("request", request_id = %request_id, method = %request.method(), route = %route)
}

/// Counts every answered request by method, route template and status, and times it (until
/// its response head is ready; a streamed body's transfer is not included).
async fn count_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    state
        .metrics
        .http_request(&method, route, response.status(), started.elapsed());
    response
}

/// A body declared larger than the limit is refused from its `Content-Length` alone. The
/// body limit by itself only trips once that many bytes have arrived, so a client that
/// declares a gigabyte and sends two bytes would hold the request open instead.
async fn refuse_declared_oversize(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // An upload's own limit is the media cap (it counts its bytes as they arrive, too).
    let upload = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|path| path.as_str() == media::SEND_MEDIA_ROUTE);
    let limit = if upload {
        usize::try_from(
            state
                .config
                .media_max_bytes
                .saturating_add(media::FORM_OVERHEAD),
        )
        .unwrap_or(usize::MAX)
    } else {
        state.config.max_body_bytes
    };
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

/// The headers every response carries: no response is read as anything but its declared
/// `Content-Type`, none is framed by another site, none leaks the URL it came from. A
/// response without a policy of its own (everything but the inbox's pages, which set theirs
/// in `web.rs`) gets one that allows nothing.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    response
}

/// CORS for the configured origins only; `None` (no CORS headers at all) by default.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};

    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(
            |origin| match HeaderValue::from_str(origin.trim_end_matches('/')) {
                Ok(value) => Some(value),
                Err(_) => {
                    tracing::warn!(
                        origin,
                        "ignoring a --cors-allow-origin that is not an origin"
                    );
                    None
                }
            },
        )
        .collect();
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
            .expose_headers([REQUEST_ID])
            .max_age(std::time::Duration::from_secs(600))
    })
}

pub(super) async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {method} {}", json::bounded(uri.path())),
    )
}

pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", json::bounded(uri.path())),
    )
}
