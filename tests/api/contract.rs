use reqwest::StatusCode;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn health_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = app
        .request(reqwest::Method::GET, "/api/healthz", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn unknown_routes_answer_a_json_404() {
    let app = spawn_app().await;
    let res = app
        .request(reqwest::Method::GET, "/api/nothing-here", None, None)
        .await;
    assert!(
        res.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/nothing-here")
    );
    assert_error(res, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_openapi_document_lists_every_endpoint_with_its_schemas() {
    let app = spawn_app().await;
    let (status, doc) = app
        .request(reqwest::Method::GET, "/api/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let expected = [
        ("/api/auth/register", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/me", "get"),
        ("/api/auth/password", "post"),
        ("/api/team", "get"),
        ("/api/team", "post"),
        ("/api/team/{id}", "patch"),
        ("/api/team/{id}", "delete"),
        ("/api/tenant", "get"),
        ("/api/conversations", "get"),
        ("/api/conversations", "post"),
        ("/api/conversations/{id}", "get"),
        ("/api/conversations/{id}/messages", "get"),
        ("/api/conversations/{id}/send", "post"),
        ("/api/conversations/{id}/read", "post"),
        ("/api/integrations/whatsapp/send", "post"),
        ("/api/integrations/whatsapp/simulate/incoming", "post"),
        ("/api/integrations/whatsapp/simulate/receipt", "post"),
        ("/api/integrations/whatsapp/simulate/scan", "post"),
        ("/api/integrations/whatsapp/simulate/unlink", "post"),
        ("/api/events", "get"),
        ("/api/healthz", "get"),
        ("/api/metrics", "get"),
        ("/api/openapi.json", "get"),
    ];
    for (path, method) in expected {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "ErrorBody",
        "User",
        "Tenant",
        "RegisterRequest",
        "LoginResponse",
        "Role",
    ] {
        assert!(schemas[schema].is_object(), "schema {schema} missing");
    }
    assert_eq!(
        doc["paths"]["/api/auth/register"]["post"]["responses"]["409"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/ErrorBody"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
