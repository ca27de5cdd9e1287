//! The web inbox: the single-page app built from `web/` (Vite, committed as `web/dist`) and
//! embedded in the binary, served at `/`.
//!
//! - Hashed assets (`/assets/*`, their names change with their content) are cached for a
//!   year (`immutable`); everything else, `index.html` first, is `no-cache`.
//! - Any other non-API path gets `index.html`, so client-side routes survive a reload.
//!   `/api/*` keeps its JSON 404, and `/socket.io` is the Socket.IO layer's.
//! - Every page carries a Content-Security-Policy that allows only this origin (no inline
//!   script, no framing); the headers every response gets (`nosniff`, `X-Frame-Options`,
//!   `Referrer-Policy`) are the router's (`security_headers` in `http/mod.rs`).

use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

use crate::error::ApiError;

#[derive(Embed)]
#[folder = "web/dist/"]
struct Assets;

/// Only this origin: scripts, styles, fonts, connections (HTTP and the Socket.IO websocket);
/// images also as `data:`/`blob:` (the QR code); nothing may frame the inbox.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The fallback of the router: the inbox for browser paths, JSON errors for the API.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return super::unknown_route(method, uri).await.into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return super::method_not_allowed(method, uri).await.into_response();
    }
    let name = path.trim_start_matches('/');
    match Assets::get(name).filter(|_| !name.is_empty()) {
        Some(file) => asset(name, file),
        None if name.starts_with("assets/") => ApiError::not_found("asset").into_response(),
        None => match Assets::get("index.html") {
            Some(index) => asset("index.html", index),
            None => {
                ApiError::internal("web inbox", "web/dist/index.html is missing").into_response()
            }
        },
    }
}

fn asset(name: &str, file: rust_embed::EmbeddedFile) -> Response {
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mime = file.metadata.mimetype().to_owned();
    let content_type = HeaderValue::from_str(&mime)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
        ],
        file.data,
    )
        .into_response()
}
