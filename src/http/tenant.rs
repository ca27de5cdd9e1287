//! The tenant's own way out: its whole archive (`GET /api/tenant/export`) and its erasure
//! (`DELETE /api/tenant`), both for the owner only.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::json::{ApiJson, ApiResult};
use crate::auth::CurrentUser;
use crate::auth::users::{self, Role};
use crate::error::{ApiError, ErrorBody};
use crate::ops::{Progress, Request};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export_tenant))
}

/// The `DELETE /api/tenant` route, merged with `GET /api/tenant` in `ops`.
pub fn delete_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(delete_tenant))
}

fn require_owner(caller: &CurrentUser) -> Result<(), ApiError> {
    if caller.user.role == Role::Owner {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the workspace's owner may do this",
        ))
    }
}

/// The media type of a tenant archive (a zstd-compressed tar stream).
const ARCHIVE: &str = "application/zstd";
/// Pieces of the archive in flight between the writer thread and the response.
const PIECES_IN_FLIGHT: usize = 8;
const PIECE: usize = 64 * 1024;

/// The caller's whole workspace as one archive (`.tar.zst`): its database (a consistent
/// copy), its registry row and users (password hashes included), its WhatsApp session — the
/// same archive as `aezen tenant export`, which `aezen tenant import` reads on another AEZEN
/// server. Streamed as it is written, never held in memory. Owner only.
#[utoipa::path(get, path = "/api/tenant/export", tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, content_type = ARCHIVE, body = Vec<u8>, description = "the archive, streamed",
            headers(("Content-Disposition" = String, description = "attachment; filename=\"aezen-<tenant-id>.tar.zst\""))),
        (status = 401, description = "missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "the caller is not the owner", body = ErrorBody),
        (status = 503, description = "the tenant's database file is unavailable or under maintenance", body = ErrorBody),
    ))]
async fn export_tenant(State(state): State<AppState>, caller: CurrentUser) -> ApiResult<Response> {
    require_owner(&caller)?;
    let tenant = caller.tenant_id();
    // Opens the file now, so a tenant that cannot be served is an error status, not a
    // broken stream.
    state.tenants.get(tenant).await?;
    let (pieces, mut incoming) =
        tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(PIECES_IN_FLIGHT);
    let writer = PieceWriter {
        pieces: pieces.clone(),
        buf: Vec::with_capacity(PIECE),
    };
    tokio::spawn(async move {
        if let Err(err) = state.ops.export(tenant, writer).await {
            tracing::error!(tenant = %tenant, error = format!("{err:#}"), "tenant export failed");
            let _ = pieces
                .send(Err(std::io::Error::other("export failed")))
                .await;
        }
    });
    let stream = futures::stream::poll_fn(move |cx| incoming.poll_recv(cx));
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ARCHIVE));
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"aezen-{tenant}.tar.zst\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A blocking `Write` that hands 64 KiB pieces to the response body.
struct PieceWriter {
    pieces: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl PieceWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE)));
        self.pieces.blocking_send(Ok(piece)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for PieceWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = PIECE - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIECE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

impl Drop for PieceWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteTenantRequest {
    /// The owner's password, re-entered.
    #[schema(min_length = 1, max_length = 256)]
    pub password: String,
}

/// Erases the caller's workspace and everything of it — its database file, every user, its
/// WhatsApp session — at once and for good. Owner only, with the password re-entered.
#[utoipa::path(delete, path = "/api/tenant", tag = "ops",
    security(("bearer" = [])),
    request_body = DeleteTenantRequest,
    responses(
        (status = 204, description = "the workspace is gone; every token of it stops working"),
        (status = 401, description = "missing, invalid, expired or revoked token", body = ErrorBody),
        (status = 403, description = "the caller is not the owner, or the password is wrong", body = ErrorBody),
        (status = 422, description = "the body is not `{password}`", body = ErrorBody),
        (status = 429, description = "too many attempts", body = ErrorBody),
        (status = 503, description = "the tenant's database file is under maintenance", body = ErrorBody),
    ))]
async fn delete_tenant(
    State(state): State<AppState>,
    caller: CurrentUser,
    ApiJson(req): ApiJson<DeleteTenantRequest>,
) -> ApiResult<StatusCode> {
    require_owner(&caller)?;
    state.limiter.check_account(&caller.user.email)?;
    let (tenant, id) = (caller.tenant_id(), caller.user.id);
    super::auth::check_own_password(&state, &caller, req.password, "password").await?;
    let team = state
        .master
        .run(move |conn| Ok(users::list(conn, tenant)?))
        .await?;
    let progress: Progress = std::sync::Arc::new(|_| {});
    state
        .ops
        .execute(Request::Delete { tenant }, &progress)
        .await
        .map_err(|e| match e.downcast_ref::<ApiError>() {
            // The tenant is held by another operation (503 `tenant_busy`).
            Some(refused) => refused.clone(),
            None => ApiError::internal("tenant delete", format!("{e:#}")),
        })?;
    for user in team {
        state.on_user_revoked(user.id).await;
    }
    tracing::info!(tenant = %tenant, by = %id, "workspace deleted by its owner");
    Ok(StatusCode::NO_CONTENT)
}
