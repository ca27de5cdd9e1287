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
    }
}

/// The OpenAPI document of every route, as built from the handlers' annotations, with the
/// errors of the shared extractors added where they apply.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = super::api_routes().split_for_parts().1;
    add_extractor_errors(&mut doc);
    doc
}

/// Adds to every operation the errors that the extractors it uses answer (see `error.rs`),
/// unless its annotation already describes that status: a JSON body (`ApiJson`) can be
/// malformed (400), too large (413), not JSON (415) or of the wrong shape (422); a path or
/// query parameter can be malformed (400); a bearer token can be missing or revoked (401);
/// and anything can fail inside (500, logged, never detailed).
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
    for item in doc.paths.paths.values_mut() {
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
