//! `/api/labels` and `/api/canned-responses`: the tenant's labels and quick replies. Every
//! member reads them; owners and admins manage them.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::extract::TenantScope;
use super::json::{ApiJson, ApiPath, ApiResult};
use super::paging::Page;
use crate::chat::library::{self, CannedResponse, Label};
use crate::chat::validate_content;
use crate::error::ErrorBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_labels, create_label))
        .routes(routes!(update_label, delete_label))
        .routes(routes!(list_canned, create_canned))
        .routes(routes!(update_canned, delete_canned))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLabel {
    #[schema(schema_with = fields::label_name)]
    pub name: String,
    #[schema(schema_with = fields::color)]
    pub color: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLabel {
    #[schema(schema_with = fields::label_name_optional)]
    pub name: Option<String>,
    #[schema(schema_with = fields::color_optional)]
    pub color: Option<String>,
}

/// The tenant's labels, by name.
#[utoipa::path(get, path = "/api/labels", tag = "workflow",
    security(("bearer" = []), ("apiKey" = ["conversations:read"])),
    responses(
        (status = 200, body = Page<Label>),
        (status = 401, body = ErrorBody),
    ))]
async fn list_labels(scope: TenantScope) -> ApiResult<ApiJson<Page<Label>>> {
    let labels = scope.db.run(|conn| Ok(library::labels(conn)?)).await?;
    Ok(ApiJson(Page::whole(labels)))
}

/// Creates a label (owner/admin). Names are unique in the tenant, ignoring case.
#[utoipa::path(post, path = "/api/labels", tag = "workflow",
    security(("bearer" = [])),
    request_body = CreateLabel,
    responses(
        (status = 201, body = Label),
        (status = 401, body = ErrorBody),
        (status = 403, description = "caller is an agent", body = ErrorBody),
        (status = 409, description = "a label of that name exists", body = ErrorBody),
        (status = 422, description = "invalid name or colour", body = ErrorBody),
    ))]
async fn create_label(
    scope: TenantScope,
    ApiJson(req): ApiJson<CreateLabel>,
) -> ApiResult<(StatusCode, ApiJson<Label>)> {
    scope.caller.require_manager()?;
    let name = library::label_name("name", &req.name)?;
    let color = library::label_color("color", &req.color)?;
    let label = scope
        .db
        .open()
        .await?
        .write(move |tx| library::create_label(tx, name, color))
        .await?;
    Ok((StatusCode::CREATED, ApiJson(label)))
}

/// Renames or recolours a label (owner/admin).
#[utoipa::path(patch, path = "/api/labels/{id}", tag = "workflow",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "label id")),
    request_body = UpdateLabel,
    responses(
        (status = 200, body = Label),
        (status = 401, body = ErrorBody),
        (status = 403, description = "caller is an agent", body = ErrorBody),
        (status = 404, description = "no such label in the caller's tenant", body = ErrorBody),
        (status = 409, description = "another label has that name", body = ErrorBody),
        (status = 422, description = "invalid name or colour", body = ErrorBody),
    ))]
async fn update_label(
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateLabel>,
) -> ApiResult<ApiJson<Label>> {
    scope.caller.require_manager()?;
    let name = req
        .name
        .as_deref()
        .map(|n| library::label_name("name", n))
        .transpose()?;
    let color = req
        .color
        .as_deref()
        .map(|c| library::label_color("color", c))
        .transpose()?;
    let label = scope
        .db
        .open()
        .await?
        .write(move |tx| library::update_label(tx, id, name, color))
        .await?;
    Ok(ApiJson(label))
}

/// Deletes a label (owner/admin): it leaves every conversation it was on.
#[utoipa::path(delete, path = "/api/labels/{id}", tag = "workflow",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "label id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "caller is an agent", body = ErrorBody),
        (status = 404, description = "no such label in the caller's tenant", body = ErrorBody),
    ))]
async fn delete_label(
    State(state): State<AppState>,
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    scope.caller.require_manager()?;
    state.workflow.delete_label(&scope.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- quick replies -------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCanned {
    #[schema(schema_with = fields::short_code)]
    pub short_code: String,
    /// May hold `{{contact.name}}` and `{{agent.name}}`.
    #[schema(schema_with = super::openapi::fields::content)]
    pub content: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateCanned {
    #[schema(schema_with = fields::short_code_optional)]
    pub short_code: Option<String>,
    #[schema(schema_with = fields::content_optional)]
    pub content: Option<String>,
}

/// The tenant's quick replies, by short code.
#[utoipa::path(get, path = "/api/canned-responses", tag = "workflow",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Page<CannedResponse>),
        (status = 401, body = ErrorBody),
    ))]
async fn list_canned(scope: TenantScope) -> ApiResult<ApiJson<Page<CannedResponse>>> {
    let replies = scope
        .db
        .run(|conn| Ok(library::canned_responses(conn)?))
        .await?;
    Ok(ApiJson(Page::whole(replies)))
}

/// Creates a quick reply (owner/admin). Short codes are unique in the tenant.
#[utoipa::path(post, path = "/api/canned-responses", tag = "workflow",
    security(("bearer" = [])),
    request_body = CreateCanned,
    responses(
        (status = 201, body = CannedResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "caller is an agent", body = ErrorBody),
        (status = 409, description = "the short code is taken", body = ErrorBody),
        (status = 422, description = "invalid short code or content", body = ErrorBody),
    ))]
async fn create_canned(
    scope: TenantScope,
    ApiJson(req): ApiJson<CreateCanned>,
) -> ApiResult<(StatusCode, ApiJson<CannedResponse>)> {
    scope.caller.require_manager()?;
    let code = library::short_code("shortCode", &req.short_code)?;
    validate_content("content", &req.content)?;
    let canned = scope
        .db
        .open()
        .await?
        .write(move |tx| library::create_canned(tx, code, req.content))
        .await?;
    Ok((StatusCode::CREATED, ApiJson(canned)))
}

/// Changes a quick reply (owner/admin).
#[utoipa::path(patch, path = "/api/canned-responses/{id}", tag = "workflow",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "quick reply id")),
    request_body = UpdateCanned,
    responses(
        (status = 200, body = CannedResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "caller is an agent", body = ErrorBody),
        (status = 404, description = "no such quick reply in the caller's tenant", body = ErrorBody),
        (status = 409, description = "the short code is taken", body = ErrorBody),
        (status = 422, description = "invalid short code or content", body = ErrorBody),
    ))]
async fn update_canned(
    scope: TenantScope,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<UpdateCanned>,
) -> ApiResult<ApiJson<CannedResponse>> {
    scope.caller.require_manager()?;
    let code = req
        .short_code
        .as_deref()
        .map(|c| library::short_code("shortCode", c))
        .transpose()?;
    if let Some(content) = &req.content {
        validate_content("content", content)?;
    }
    let canned = scope
        .db
        .open()
        .await?
        .write(move |tx| library::update_canned(tx, id, code, req.content))
        .await?;
    Ok(ApiJson(canned))
}

/// Deletes a quick reply (owner/admin).
#[utoipa::path(delete, path = "/api/canned-responses/{id}", tag = "workflow",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "quick reply id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "caller is an agent", body = ErrorBody),
        (status = 404, description = "no such quick reply in the caller's tenant", body = ErrorBody),
    ))]
async fn delete_canned(scope: TenantScope, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    scope.caller.require_manager()?;
    scope
        .db
        .open()
        .await?
        .write(move |tx| library::delete_canned(tx, id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The schemas of the library's fields.
mod fields {
    use utoipa::openapi::Object;
    use utoipa::openapi::schema::{SchemaType, Type};

    use crate::chat::library::{MAX_LABEL_CHARS, MAX_SHORT_CODE};
    use crate::http::openapi::fields::{LINE, content, string};

    fn label(nullable: bool) -> Object {
        string(nullable)
            .min_length(Some(1))
            .max_length(Some(MAX_LABEL_CHARS))
            .pattern(Some(LINE))
            .description(Some("1 to 40 characters, trimmed; no control characters"))
            .build()
    }

    pub fn label_name() -> Object {
        label(false)
    }

    pub fn label_name_optional() -> Object {
        label(true)
    }

    fn hex(nullable: bool) -> Object {
        string(nullable)
            .pattern(Some(r"^\s*#[0-9A-Fa-f]{6}\s*$"))
            .description(Some("`#rrggbb`"))
            .examples(["#e11d48"])
            .build()
    }

    pub fn color() -> Object {
        hex(false)
    }

    pub fn color_optional() -> Object {
        hex(true)
    }

    fn code(nullable: bool) -> Object {
        string(nullable)
            .pattern(Some(r"^[A-Za-z0-9_-]{1,32}$"))
            .max_length(Some(MAX_SHORT_CODE))
            .description(Some("1 to 32 of a-z, 0-9, `_` and `-` (lowercased)"))
            .examples(["thanks"])
            .build()
    }

    pub fn short_code() -> Object {
        code(false)
    }

    pub fn short_code_optional() -> Object {
        code(true)
    }

    pub fn content_optional() -> Object {
        let mut content = content();
        content.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
        content
    }
}
