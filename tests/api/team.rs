use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, assert_error_naming, spawn_app};

#[tokio::test]
async fn owners_and_admins_manage_the_team() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let admin = app.add_member(&owner, "admin").await;

    let (status, created) = app
        .post(
            "/api/team",
            Some(&admin.token),
            json!({"name": "Bo", "email": "BO@example.com", "password": "password123", "role": "agent"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["email"], "bo@example.com");
    assert_eq!(created["tenantId"], owner.tenant_id);
    let id = created["id"].as_str().unwrap();

    let (status, updated) = app
        .patch(
            &format!("/api/team/{id}"),
            &admin.token,
            json!({"name": "Bo B.", "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Bo B.");
    assert_eq!(updated["role"], "admin");

    let (status, list) = app.get("/api/team", &owner.token).await;
    assert_eq!(status, StatusCode::OK);
    let emails: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [owner.email.as_str(), admin.email.as_str(), "bo@example.com"]
    );

    assert_eq!(
        app.delete(&format!("/api/team/{id}"), &admin.token).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, list) = app.get("/api/team", &owner.token).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_agent_cannot_manage_the_team() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let agent = app.add_member(&owner, "agent").await;
    let other = app.add_member(&owner, "agent").await;

    let (status, list) = app.get("/api/team", &agent.token).await;
    assert_eq!(status, StatusCode::OK, "agents may see who is on the team");
    assert_eq!(list["items"].as_array().unwrap().len(), 3);

    let create = app
        .post(
            "/api/team",
            Some(&agent.token),
            json!({"name": "X", "email": "x@example.com", "password": "password123", "role": "agent"}),
        )
        .await;
    assert_error(create, StatusCode::FORBIDDEN, "forbidden");
    let promote = app
        .patch(
            &format!("/api/team/{}", agent.user_id),
            &agent.token,
            json!({"role": "admin"}),
        )
        .await;
    assert_error(promote, StatusCode::FORBIDDEN, "forbidden");
    let remove = app
        .delete(&format!("/api/team/{}", other.user_id), &agent.token)
        .await;
    assert_error(remove, StatusCode::FORBIDDEN, "forbidden");

    let (_, list) = app.get("/api/team", &owner.token).await;
    let agent_row = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == agent.user_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(agent_row["role"], "agent");
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn only_an_owner_manages_owners() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let admin = app.add_member(&owner, "admin").await;
    let make_owner = app
        .post(
            "/api/team",
            Some(&admin.token),
            json!({"name": "O", "email": "o@example.com", "password": "password123", "role": "owner"}),
        )
        .await;
    assert_error(make_owner, StatusCode::FORBIDDEN, "forbidden");
    let demote = app
        .patch(
            &format!("/api/team/{}", owner.user_id),
            &admin.token,
            json!({"role": "agent"}),
        )
        .await;
    assert_error(demote, StatusCode::FORBIDDEN, "forbidden");
    let remove = app
        .delete(&format!("/api/team/{}", owner.user_id), &admin.token)
        .await;
    assert_error(remove, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn an_admin_cannot_change_any_field_of_an_owner() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let admin = app.add_member(&owner, "admin").await;
    let path = format!("/api/team/{}", owner.user_id);
    for body in [
        json!({"name": "Renamed"}),
        json!({"role": "owner"}),
        json!({"role": "admin"}),
        json!({"name": "Renamed", "role": "owner"}),
    ] {
        let res = app.patch(&path, &admin.token, body.clone()).await;
        assert_error(res, StatusCode::FORBIDDEN, "forbidden");
    }
    let (_, me) = app.get("/api/auth/me", &owner.token).await;
    assert_eq!(me["user"]["name"], "Owner", "{me}");
    assert_eq!(me["user"]["role"], "owner", "{me}");

    // An owner may still rename an owner, and an admin a non-owner.
    let (status, body) = app
        .patch(&path, &owner.token, json!({"name": "Boss"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "Boss");
    let (status, body) = app
        .patch(
            &format!("/api/team/{}", admin.user_id),
            &admin.token,
            json!({"name": "Self"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_last_owner_cannot_be_removed_or_demoted() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let path = format!("/api/team/{}", owner.user_id);
    assert_error(
        app.patch(&path, &owner.token, json!({"role": "admin"}))
            .await,
        StatusCode::CONFLICT,
        "last_owner",
    );
    assert_error(
        app.delete(&path, &owner.token).await,
        StatusCode::CONFLICT,
        "last_owner",
    );
    assert_eq!(
        app.get("/api/auth/me", &owner.token).await.1["user"]["role"],
        "owner"
    );

    // With a second owner, the first may step down.
    let second = app.add_member(&owner, "owner").await;
    let (status, body) = app
        .patch(&path, &owner.token, json!({"role": "admin"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second_path = format!("/api/team/{}", second.user_id);
    assert_error(
        app.delete(&second_path, &second.token).await,
        StatusCode::CONFLICT,
        "last_owner",
    );
}

#[tokio::test]
async fn team_input_is_validated() {
    let app = spawn_app().await;
    let owner = app.register("Acme").await;
    let bad_role = app
        .post(
            "/api/team",
            Some(&owner.token),
            json!({"name": "X", "email": "x@example.com", "password": "password123", "role": "superuser"}),
        )
        .await;
    assert_error_naming(
        bad_role,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        "role",
    );
    let dup = app
        .post(
            "/api/team",
            Some(&owner.token),
            json!({"name": "X", "email": owner.email, "password": "password123", "role": "agent"}),
        )
        .await;
    assert_error(dup, StatusCode::CONFLICT, "email_taken");
    let bad_id = app
        .patch("/api/team/not-a-uuid", &owner.token, json!({"name": "Y"}))
        .await;
    assert_error(bad_id, StatusCode::BAD_REQUEST, "invalid_path");
    let unknown_field = app
        .patch(
            &format!("/api/team/{}", owner.user_id),
            &owner.token,
            json!({"email": "y@z.io"}),
        )
        .await;
    assert_error(
        unknown_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    );
    let empty_name = app
        .patch(
            &format!("/api/team/{}", owner.user_id),
            &owner.token,
            json!({"name": ""}),
        )
        .await;
    assert_error(
        empty_name,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
}

#[tokio::test]
async fn a_user_of_tenant_b_cannot_read_change_or_delete_tenant_a_members() {
    let app = spawn_app().await;
    let a = app.register("Tenant A").await;
    let a_agent = app.add_member(&a, "agent").await;
    let b = app.register("Tenant B").await;

    let (_, b_team) = app.get("/api/team", &b.token).await;
    let ids: Vec<&str> = b_team["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [b.user_id.as_str()], "B's team lists only B's users");

    for victim in [&a.user_id, &a_agent.user_id] {
        let path = format!("/api/team/{victim}");
        assert_error(
            app.patch(&path, &b.token, json!({"name": "pwned"})).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        assert_error(
            app.patch(&path, &b.token, json!({"role": "agent"})).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
        assert_error(
            app.delete(&path, &b.token).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    let (_, a_team) = app.get("/api/team", &a.token).await;
    let a_items = a_team["items"].as_array().unwrap();
    assert_eq!(a_items.len(), 2);
    assert!(a_items.iter().all(|u| u["name"] != "pwned"));
    assert_eq!(
        app.get("/api/auth/me", &a_agent.token).await.0,
        StatusCode::OK
    );
}
