//! The OpenAPI document: assembled from the handlers' annotations, with the bearer scheme
//! and the errors of the shared extractors added where they apply.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "AEZEN",
        description = "Self-hosted, multi-tenant WhatsApp shared inbox. Errors are always \
                       `{\"error\": {\"code\", \"message\"}}`."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody))
)]
pub(super) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("aez_…")
                    .description(Some(
                        "A tenant's API key (`POST /api/api-keys`), sent as `Authorization: \
                         Bearer aez_…`. The roles listed on an operation's `apiKey` \
                         requirement are the one scope it needs; an operation without an \
                         `apiKey` requirement refuses keys (403).",
                    ))
                    .build(),
            ),
        );
    }
}

/// The scope an API key needs for the operation `method path` (an axum route template), as
/// the document's `apiKey` security requirements say; `None`: keys may not use it. Read
/// from the document itself, so the document and the check cannot disagree.
pub fn key_scope(method: &axum::http::Method, path: &str) -> Option<crate::auth::keys::Scope> {
    use std::collections::HashMap;
    use std::sync::LazyLock;

    use crate::auth::keys::Scope;
    static TABLE: LazyLock<HashMap<(String, String), Scope>> = LazyLock::new(|| {
        let doc = openapi();
        let mut table = HashMap::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let scope = required_key_scopes(operation).into_iter().next();
                if let Some(scope) = scope {
                    table.insert((method.to_owned(), path.clone()), scope);
                }
            }
        }
        table
    });
    TABLE
        .get(&(method.as_str().to_owned(), path.to_owned()))
        .copied()
}

/// The scopes an operation's `apiKey` requirement names (serialized, as the document has
/// them: utoipa keeps a requirement's scopes private).
fn required_key_scopes(
    operation: &utoipa::openapi::path::Operation,
) -> Vec<crate::auth::keys::Scope> {
    let Ok(security) = serde_json::to_value(&operation.security) else {
        return Vec::new();
    };
    security
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|requirement| requirement.get("apiKey"))
        .filter_map(|scopes| scopes.as_array())
        .flatten()
        .filter_map(|scope| scope.as_str().and_then(crate::auth::keys::Scope::parse))
        .collect()
}

/// The OpenAPI document of every route, as built from the handlers' annotations, with the
/// errors of the shared extractors added where they apply.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = super::api_routes().split_for_parts().1;
    add_extractor_errors(&mut doc);
    add_request_id_header(&mut doc);
    doc
}

/// Documents on every response the `x-request-id` header that every response carries (see
/// `http::drop_unusable_request_id` for the ids a client may choose itself).
fn add_request_id_header(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{Object, RefOr, Type};

    let header = HeaderBuilder::new()
        .schema(Object::with_type(Type::String))
        .description(Some(
            "The request's id, on every log line written while it was handled: the \
             `x-request-id` the request carried if it was 1–128 letters, digits or `-_.:+/=`, \
             else a new UUID.",
        ))
        .build();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    response
                        .headers
                        .insert(super::REQUEST_ID.to_string(), header.clone());
                }
            }
        }
    }
}

/// The operations whose handler takes `TenantScope` (it opens the caller's tenant file, which
/// answers 503 `tenant_unavailable` when the file is missing or unusable). Listed by path
/// (every method of the path) rather than by tag: a tag groups what a reader looks for, not
/// what a handler touches (the `whatsapp` tag mixes both kinds). A new handler taking
/// `TenantScope` adds its path here.
const OPENS_TENANT_FILE: &[&str] = &[
    "/api/tenant",
    "/api/conversations",
    "/api/conversations/{id}",
    "/api/conversations/{id}/messages",
    "/api/conversations/{id}/send",
    "/api/conversations/{id}/send-media",
    "/api/conversations/{id}/read",
    "/api/conversations/counts",
    "/api/conversations/{id}/status",
    "/api/conversations/{id}/assignee",
    "/api/conversations/{id}/labels",
    "/api/conversations/{id}/notes",
    "/api/media/{id}",
    "/api/media/{id}/links",
    "/api/labels",
    "/api/labels/{id}",
    "/api/canned-responses",
    "/api/canned-responses/{id}",
    "/api/search",
    "/api/notifications",
    "/api/notifications/read",
    "/api/events",
    "/api/webhooks",
    "/api/webhooks/{id}",
    "/api/webhooks/{id}/rotate-secret",
    "/api/webhooks/{id}/deliveries",
    "/api/webhooks/{id}/replay",
    "/api/webhooks/{id}/test",
    "/api/integrations/whatsapp/send",
    "/api/integrations/whatsapp/simulate/incoming",
    "/api/integrations/whatsapp/simulate/receipt",
];

/// Adds to every operation the errors that the extractors it uses answer (see `error.rs`),
/// unless its annotation already describes that status: a JSON body (`ApiJson`) can be
/// malformed (400), arrive too slowly (408), be too large (413), not JSON (415) or of the
/// wrong shape (422); a path or query parameter can be malformed (400); a bearer token can be
/// missing or revoked (401); the caller's tenant file can be unusable (503, the operations in
/// [`OPENS_TENANT_FILE`]); and anything can fail inside (500, logged, never detailed).
fn add_extractor_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

    let error = |description: String| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let opens_tenant_file = OPENS_TENANT_FILE.contains(&path.as_str());
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let takes = |place: ParameterIn| {
                operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| p.parameter_in == place)
            };
            let mut bad_request = Vec::new();
            let mut errors = Vec::new();
            if operation.request_body.is_some() {
                bad_request.push("the body is not valid JSON");
                errors.extend([
                    (
                        "408",
                        "the body did not arrive within the body-read timeout",
                    ),
                    ("413", "the body is larger than the configured limit"),
                    ("415", "the body is not `application/json`"),
                    ("422", "a field is missing, of the wrong type or invalid"),
                ]);
            }
            if takes(ParameterIn::Path) {
                bad_request.push("a path parameter is malformed");
            }
            if takes(ParameterIn::Query) {
                bad_request.push("a query parameter is malformed");
            }
            if operation.security.is_some() {
                errors.push(("401", "missing, invalid, expired or revoked token"));
                errors.push(if required_key_scopes(operation).is_empty() {
                    ("403", "`forbidden`: API keys cannot use this operation")
                } else {
                    (
                        "403",
                        "`missing_scope`: the API key lacks the scope this operation needs",
                    )
                });
            }
            if opens_tenant_file {
                errors.push((
                    "503",
                    "`tenant_unavailable`: the tenant's database file is missing or unusable",
                ));
            }
            errors.push(("500", "internal error (logged; no detail is given)"));
            let bad_request = bad_request.join("; ");
            if !bad_request.is_empty() {
                errors.push(("400", &bad_request));
            }
            for (status, description) in errors {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description.to_owned()).into());
            }
        }
    }
}

/// The schemas of the text fields a client sends, with the limits the server checks
/// (`schema_with` on the request structs), so that a generated client or a fuzzer knows them.
///
/// The patterns are the server's text rule ([`crate::text`]) in ECMA-262/Python `re` syntax:
/// no control characters and at least one character that is neither white space nor
/// invisible. One gap, kept for portability: the invisible "tag" characters U+E0000–E007F are
/// astral, which a pattern without the `u` flag cannot name, so a name made only of them
/// passes the pattern and is refused (422).
pub(super) mod fields {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{Object, schema::SchemaType};

    /// A one-line text ([`crate::text::line`]): no control characters, something visible.
    /// Surrounding white space is allowed (it is trimmed), so the length counts it.
    pub const LINE: &str = concat!(
        r"^[^\x00-\x1f\x7f-\x9f]*",
        r"[^\x00-\x20\x7f-\xa0\xad\u034f\u061c\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f",
        r"\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0]",
        r"[^\x00-\x1f\x7f-\x9f]*$",
    );

    /// A message body ([`crate::text::body`]): line breaks and tabs allowed.
    const BODY: &str = concat!(
        r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*",
        r"[^\x00-\x20\x7f-\xa0\xad\u034f\u061c\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f",
        r"\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0]",
        r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$",
    );

    /// A phone number with its country code ([`crate::chat::normalize_phone`]): a leading `+`
    /// or `00` (or neither), then 8 to 15 digits not starting with 0, with spaces, dashes, dots
    /// and parentheses anywhere between them.
    const PHONE: &str = concat!(
        r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*",
        r"(?:\+|[ ().-]*0[ ().-]*0)?[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}[ ().-]*",
        r"[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$",
    );

    pub fn string(nullable: bool) -> ObjectBuilder {
        ObjectBuilder::new().schema_type(if nullable {
            SchemaType::from_iter([Type::String, Type::Null])
        } else {
            SchemaType::new(Type::String)
        })
    }

    fn line(nullable: bool) -> Object {
        string(nullable)
            .min_length(Some(1))
            .max_length(Some(100))
            .pattern(Some(LINE))
            .description(Some("1 to 100 characters, trimmed; no control characters"))
            .build()
    }

    /// A display name (of a person, a workspace or a contact).
    pub fn name() -> Object {
        line(false)
    }

    /// A display name that may be left out or null.
    pub fn optional_name() -> Object {
        line(true)
    }

    pub fn email() -> Object {
        string(false)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
            .max_length(Some(254))
            .build()
    }

    /// A new password.
    pub fn password() -> Object {
        string(false)
            .min_length(Some(crate::auth::password::MIN_LEN))
            .max_length(Some(crate::auth::password::MAX_LEN))
            .description(Some("8 to 256 characters"))
            .build()
    }

    /// A message's text.
    pub fn content() -> Object {
        string(false)
            .min_length(Some(1))
            .max_length(Some(crate::chat::MAX_CONTENT_CHARS))
            .pattern(Some(BODY))
            .description(Some(
                "1 to 4096 characters, something visible; no control characters but line \
                 breaks and tabs",
            ))
            .build()
    }

    /// A phone number in international form.
    pub fn phone() -> Object {
        string(false)
            .pattern(Some(PHONE))
            .description(Some(
                "International format with its country code (`+` or `00`, or digits that \
                 start with it): 8 to 15 digits; spaces, dashes, dots and parentheses are \
                 ignored",
            ))
            .examples(["+62 812 3456 7890"])
            .build()
    }
}
