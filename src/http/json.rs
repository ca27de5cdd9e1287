//! JSON over HTTP: how an [`ApiError`] is answered, and the extractors and bodies that
//! answer with it (`ApiJson`, `ApiQuery`, `ApiPath`, `JsonBytes`) instead of axum's plain
//! text rejections.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorBody, ErrorDetail};

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.message().to_owned(),
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if caused_by::<tower_http::timeout::TimeoutError>(&rejection) {
            return Self::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time",
            );
        }
        let code = match &rejection {
            JsonRejection::JsonDataError(_) => "invalid_body",
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            _ => "invalid_body",
        };
        Self::new(
            rejection.status(),
            code,
            bounded(&without_type_names(&rejection.body_text())),
        )
    }
}

/// serde names the Rust type a body is read into ("expected struct LoginRequest with 4
/// elements"); a client knows the API, not the code behind it. Each such phrase becomes what
/// the client should have sent; field names and values stay, they are the client's own.
fn without_type_names(message: &str) -> String {
    // Longest first: "tuple struct X" must not be read as "struct X".
    const KINDS: [(&str, &str); 9] = [
        ("internally tagged enum ", "a JSON object"),
        ("adjacently tagged enum ", "a JSON object"),
        ("untagged enum ", "one of the documented forms"),
        ("struct variant ", "a JSON object"),
        ("tuple variant ", "a JSON array"),
        ("tuple struct ", "a value of the documented type"),
        ("unit struct ", "null"),
        ("struct ", "a JSON object"),
        ("enum ", "one of the documented values"),
    ];
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while !rest.is_empty() {
        let at_word_start = out.is_empty() || out.ends_with([' ', '(', ',']);
        let replaced = KINDS.iter().find_map(|(kind, wording)| {
            let after = rest.strip_prefix(kind)?;
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(after.len());
            // A Rust type name: CamelCase, perhaps with a `::Variant`.
            after
                .starts_with(|c: char| c.is_ascii_uppercase())
                .then(|| {
                    let after = &after[name_len..];
                    (*wording, skip_element_count(after))
                })
        });
        match replaced {
            Some((wording, after)) if at_word_start => {
                out.push_str(wording);
                rest = after;
            }
            _ => {
                let next = rest.chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[..next]);
                rest = &rest[next..];
            }
        }
    }
    out
}

/// `" with 4 elements"` (or `" with 1 element"`) after a type name: the type's field count.
fn skip_element_count(text: &str) -> &str {
    let Some(after) = text.strip_prefix(" with ") else {
        return text;
    };
    let digits = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    if digits == 0 {
        return text;
    }
    let after = &after[digits..];
    after
        .strip_prefix(" elements")
        .or_else(|| after.strip_prefix(" element"))
        .unwrap_or(text)
}

/// Whether `err` or anything in its chain of causes is an `E`.
fn caused_by<E: std::error::Error + 'static>(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.is::<E>() {
            return true;
        }
        cause = err.source();
    }
    false
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            bounded(&rejection.body_text()),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            bounded(&rejection.body_text()),
        )
    }
}

/// Most characters of client input an error message echoes.
const MAX_ECHO_CHARS: usize = 200;

/// `text` cut to [`MAX_ECHO_CHARS`] (with `…`): an error names the problem without echoing a
/// 10,000-character id back in full.
pub fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `Json` that answers with [`ApiError`] instead of axum's plain-text rejection, and takes
/// only a JSON object: serde would also read a struct from an array of its fields in order
/// (`["Acme","Ann","a@b.test","password123"]`), a form no client is told about.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Expected request with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(JsonRejection::from)?;
        if !starts_as_object_or_garbage(&bytes) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        let Json(value) = Json::<T>::from_bytes(&bytes)?;
        Ok(Self(value))
    }
}

/// Whether the body is worth handing to serde: it opens an object, or it is not JSON at all
/// (serde then names the syntax error). Any other JSON value (array, string, number, `true`,
/// `false`, `null`) is refused without parsing: one byte decides.
fn starts_as_object_or_garbage(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(body.len());
    let body = &body[start..];
    match body.first() {
        Some(b'[' | b'"' | b'-' | b'0'..=b'9') => false,
        Some(b't' | b'f' | b'n') => ![&b"true"[..], b"false", b"null"]
            .iter()
            .any(|literal| body.starts_with(literal)),
        _ => true,
    }
}

/// `application/json`, or any `application/*+json`, with or without parameters (as axum's
/// `Json` decides).
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype
                .rsplit_once('+')
                .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json")))
}

/// Initial size of a JSON response body. axum's `Json` starts at 128 bytes, and a 50-item
/// page (~15 KiB) then took seven reallocations and copies; one 16 KiB block is cheaper.
pub const JSON_BODY_CAPACITY: usize = 16 * 1024;

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(JSON_BODY_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => JsonBytes(body).into_response(),
            Err(err) => ApiError::internal("serialize response", err).into_response(),
        }
    }
}

/// A JSON response body already written, by a handler that serializes as it reads.
pub struct JsonBytes(pub Vec<u8>);

impl IntoResponse for JsonBytes {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.0,
        )
            .into_response()
    }
}

/// `Query` that answers with [`ApiError`].
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path` that answers with [`ApiError`].
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

pub type ApiResult<T> = Result<T, ApiError>;

/// An integer field that also takes a JSON number with a zero fraction (`86400.0`), as JSON
/// Schema's `integer` does; serde's own integers refuse it. `#[serde(default, deserialize_with
/// = "integer")]` on an `Option<i64>`.
pub fn integer<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let Some(number) =
        <Option<serde_json::Number> as serde::Deserialize>::deserialize(deserializer)?
    else {
        return Ok(None);
    };
    if let Some(n) = number.as_i64() {
        return Ok(Some(n));
    }
    match number.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        _ => Err(D::Error::custom(format!(
            "{number} is not an integer in range"
        ))),
    }
}

/// For a field that may be null but must be there: present (`Some`, null or not) or absent
/// (`None`, with `#[serde(default)]`).
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Whether the client already has the representation tagged `etag` (`If-None-Match`: one of
/// its tags, weak or strong, or `*`), so the answer is 304.
pub fn not_modified(headers: &axum::http::HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

#[cfg(test)]
mod tests {
    use super::{starts_as_object_or_garbage, without_type_names};

    #[test]
    fn messages_name_no_rust_type() {
        assert_eq!(
            without_type_names("invalid length 2, expected struct LoginRequest with 4 elements"),
            "invalid length 2, expected a JSON object"
        );
        assert_eq!(
            without_type_names("role: invalid type: map, expected enum Role at line 1"),
            "role: invalid type: map, expected one of the documented values at line 1"
        );
        assert_eq!(
            without_type_names("expected tuple struct UserId"),
            "expected a value of the documented type"
        );
        // The client's own words stay, even when they look like a type.
        assert_eq!(
            without_type_names("missing field `password` at line 1 column 2"),
            "missing field `password` at line 1 column 2"
        );
        assert_eq!(
            without_type_names("unknown variant `struct Foo`, expected one of `owner`"),
            "unknown variant `struct Foo`, expected one of `owner`"
        );
    }

    #[test]
    fn only_an_object_or_non_json_reaches_serde() {
        for body in ["{}", " \n{\"a\":1}", "", "{not json", "nope", "<xml/>"] {
            assert!(starts_as_object_or_garbage(body.as_bytes()), "{body:?}");
        }
        for body in ["[]", " [1]", "\"s\"", "12", "-1", "true", "false", "null"] {
            assert!(!starts_as_object_or_garbage(body.as_bytes()), "{body:?}");
        }
    }
}
