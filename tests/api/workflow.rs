//! The team workflow (docs/WORKFLOW.md) over HTTP and Socket.IO: status and snooze,
//! assignment, labels, notes and mentions, per-member read state, quick replies, the
//! contact's name, search, and that none of it crosses tenants.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::socket::Socket;
use crate::helpers::{Account, TestApp, assert_error, assert_error_naming, spawn_app};

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("items")
}

/// A contact writes `content`; returns the conversation id.
async fn incoming(app: &TestApp, account: &Account, from: &str, content: &str) -> String {
    let (status, body) = app
        .incoming(account, json!({"from": from, "content": content}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn conversation(app: &TestApp, account: &Account, id: &str) -> Value {
    let (status, body) = app
        .get(&format!("/api/conversations/{id}"), &account.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn set_status(
    app: &TestApp,
    account: &Account,
    id: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.post(
        &format!("/api/conversations/{id}/status"),
        Some(&account.token),
        body,
    )
    .await
}

/// Snoozes a conversation for `ms` milliseconds; returns when it is due.
async fn snooze(
    app: &TestApp,
    account: &Account,
    id: &str,
    ms: i64,
) -> chrono::DateTime<chrono::Utc> {
    let until = chrono::Utc::now() + chrono::Duration::milliseconds(ms);
    let body = json!({"status": "snoozed", "snoozedUntil": until.to_rfc3339()});
    let (status, body) = set_status(app, account, id, body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "snoozed");
    until
}

async fn assign(app: &TestApp, account: &Account, id: &str, user: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/api/conversations/{id}/assignee"),
        Some(&account.token),
        json!({ "userId": user }),
    )
    .await
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.request(Method::PUT, path, Some(token), Some(&body))
        .await
}

/// The ids of the conversations a list query shows.
async fn listed(app: &TestApp, account: &Account, query: &str) -> Vec<String> {
    let (status, body) = app
        .get(&format!("/api/conversations?{query}"), &account.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    items(&body)
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn counts(app: &TestApp, account: &Account, query: &str) -> Value {
    let (status, body) = app
        .get(
            &format!("/api/conversations/counts?{query}"),
            &account.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn resolving_hides_a_conversation_until_the_contact_writes_again() {
    let app = spawn_app().await;
    let owner = app.register("Status Co").await;
    let id = incoming(&app, &owner, "+6281200000001", "hello").await;
    let other = incoming(&app, &owner, "+6281200000002", "hi").await;
    assert_eq!(conversation(&app, &owner, &id).await["status"], "open");

    let (status, body) = set_status(&app, &owner, &id, json!({"status": "resolved"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "resolved");
    // The default list is open + pending; the resolved tab has it.
    assert_eq!(listed(&app, &owner, "").await, [other.as_str()]);
    assert_eq!(listed(&app, &owner, "status=resolved").await, [id.as_str()]);
    assert_eq!(listed(&app, &owner, "status=all").await.len(), 2);
    let (status, body) = set_status(&app, &owner, &other, json!({"status": "pending"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        counts(&app, &owner, "").await["status"],
        json!({"open": 0, "pending": 1, "resolved": 1, "snoozed": 0})
    );

    // The contact writes again: it is open, and the change is in the log.
    incoming(&app, &owner, "+6281200000001", "one more thing").await;
    assert_eq!(conversation(&app, &owner, &id).await["status"], "open");
    assert!(listed(&app, &owner, "").await.contains(&id));
    let (_, events) = app.get("/api/events", &owner.token).await;
    assert!(
        items(&events)
            .iter()
            .any(|e| e["type"] == "conversation_updated"
                && e["conversation"]["id"] == id.as_str()
                && e["conversation"]["status"] == "resolved"),
        "{events}"
    );
}

#[tokio::test]
async fn bad_status_changes_are_refused_naming_the_problem_and_change_nothing() {
    let app = spawn_app().await;
    let owner = app.register("Strict Co").await;
    let id = incoming(&app, &owner, "+6281200000003", "hello").await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let far = (chrono::Utc::now() + chrono::Duration::days(400)).to_rfc3339();
    let answer = set_status(&app, &owner, &id, json!({"status": "closed"})).await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
        "status",
    );
    for (body, named) in [
        (json!({"status": "snoozed"}), "snoozedUntil"),
        (json!({"status": "snoozed", "snoozedUntil": past}), "future"),
        (
            json!({"status": "snoozed", "snoozedUntil": far}),
            "366 days",
        ),
        (
            json!({"status": "open", "snoozedUntil": future}),
            "snoozedUntil",
        ),
    ] {
        let answer = set_status(&app, &owner, &id, body.clone()).await;
        assert_error_naming(
            answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            named,
        );
    }
    assert_eq!(conversation(&app, &owner, &id).await["status"], "open");
    let (status, _) = app
        .get("/api/conversations?status=open,closed", &owner.token)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = uuid::Uuid::now_v7();
    let answer = set_status(
        &app,
        &owner,
        &unknown.to_string(),
        json!({"status": "open"}),
    )
    .await;
    assert_error(answer, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a_snoozed_conversation_reopens_when_its_time_comes_even_across_a_restart() {
    let app = spawn_app().await;
    let owner = app.register("Snooze Co").await;
    let id = incoming(&app, &owner, "+6281200000004", "remind me").await;
    let until = snooze(&app, &owner, &id, 2500).await;
    assert_eq!(listed(&app, &owner, "status=snoozed").await, [id.as_str()]);

    // Stopped before the time and started again: nothing but the registry's hint remembers.
    let app = app.restart().await;
    tokio::time::sleep(Duration::from_millis(
        (until - chrono::Utc::now()).num_milliseconds().max(0) as u64,
    ))
    .await;
    let reopened = app
        .wait_for(&format!("/api/conversations/{id}"), &owner.token, |c| {
            c["status"] == "open"
        })
        .await;
    assert!(reopened["snoozedUntil"].is_null(), "{reopened}");
    let (_, events) = app.get("/api/events", &owner.token).await;
    let last = items(&events).last().unwrap();
    assert_eq!(last["type"], "conversation_updated", "{events}");
    assert_eq!(last["conversation"]["status"], "open");
}

#[tokio::test]
async fn agents_take_and_give_up_their_own_conversations_and_managers_assign_anyone() {
    let app = spawn_app().await;
    let owner = app.register("Assign Co").await;
    let agent = app.add_member(&owner, "agent").await;
    let other_agent = app.add_member(&owner, "agent").await;
    let stranger = app.register("Elsewhere").await;
    let id = incoming(&app, &owner, "+6281200000005", "who helps me?").await;
    let spare = incoming(&app, &owner, "+6281200000006", "me too").await;

    // An agent takes it, and cannot hand it to someone else.
    let (status, body) = assign(&app, &agent, &id, json!(agent.user_id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["assigneeId"], agent.user_id.as_str());
    let answer = assign(&app, &agent, &spare, json!(other_agent.user_id)).await;
    assert_error(answer, StatusCode::FORBIDDEN, "forbidden");
    // Another agent cannot unassign it, but may take it over.
    let answer = assign(&app, &other_agent, &id, Value::Null).await;
    assert_error(answer, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        conversation(&app, &owner, &id).await["assigneeId"],
        agent.user_id.as_str()
    );
    // The owner assigns anyone of the team, never someone of another tenant.
    let (status, body) = assign(&app, &owner, &spare, json!(other_agent.user_id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = assign(&app, &owner, &spare, json!(stranger.user_id)).await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "userId",
    );
    let answer = app
        .post(
            &format!("/api/conversations/{spare}/assignee"),
            Some(&owner.token),
            json!({}),
        )
        .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "userId",
    );
    assert_eq!(
        conversation(&app, &owner, &spare).await["assigneeId"],
        other_agent.user_id.as_str()
    );

    // Filters and counts, from each member's point of view.
    assert_eq!(listed(&app, &agent, "assignee=me").await, [id.as_str()]);
    assert_eq!(
        listed(&app, &other_agent, "assignee=me").await,
        [spare.as_str()]
    );
    assert!(listed(&app, &owner, "assignee=unassigned").await.is_empty());
    assert_eq!(
        listed(&app, &owner, &format!("assignee={}", agent.user_id)).await,
        [id.as_str()]
    );
    assert_eq!(
        counts(&app, &agent, "").await["assignee"],
        json!({"me": 1, "unassigned": 0, "all": 2})
    );
    let (status, _) = app
        .get("/api/conversations?assignee=someone", &owner.token)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The agent gives theirs up; a member removed from the team leaves theirs unassigned.
    let (status, body) = assign(&app, &agent, &id, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["assigneeId"].is_null());
    let (status, _) = app
        .delete(&format!("/api/team/{}", other_agent.user_id), &owner.token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(conversation(&app, &owner, &spare).await["assigneeId"].is_null());
    assert_eq!(listed(&app, &owner, "assignee=unassigned").await.len(), 2);
}

#[tokio::test]
async fn labels_are_managed_by_managers_applied_by_anyone_and_filter_the_list() {
    let app = spawn_app().await;
    let owner = app.register("Label Co").await;
    let agent = app.add_member(&owner, "agent").await;
    let id = incoming(&app, &owner, "+6281200000007", "I want a refund").await;
    let plain = incoming(&app, &owner, "+6281200000008", "just browsing").await;

    let answer = app
        .post(
            "/api/labels",
            Some(&agent.token),
            json!({"name": "VIP", "color": "#e11d48"}),
        )
        .await;
    assert_error(answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, vip) = app
        .post(
            "/api/labels",
            Some(&owner.token),
            json!({"name": "VIP", "color": "#E11D48"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{vip}");
    assert_eq!(vip["color"], "#e11d48");
    let answer = app
        .post(
            "/api/labels",
            Some(&owner.token),
            json!({"name": "vip", "color": "#000000"}),
        )
        .await;
    assert_error(answer, StatusCode::CONFLICT, "duplicate_label");
    let answer = app
        .post(
            "/api/labels",
            Some(&owner.token),
            json!({"name": "Red", "color": "red"}),
        )
        .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "color",
    );
    let (_, refund) = app
        .post(
            "/api/labels",
            Some(&owner.token),
            json!({"name": "Refund", "color": "#0ea5e9"}),
        )
        .await;
    let (vip_id, refund_id) = (vip["id"].as_str().unwrap(), refund["id"].as_str().unwrap());

    // An agent applies them; an unknown id is refused and nothing changes.
    let path = format!("/api/conversations/{id}/labels");
    let (status, body) = put(
        &app,
        &path,
        &agent.token,
        json!({"labels": [vip_id, refund_id]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut expected = vec![vip_id, refund_id];
    expected.sort_unstable();
    assert_eq!(body["labels"], json!(expected));
    let unknown = uuid::Uuid::now_v7().to_string();
    let answer = put(
        &app,
        &path,
        &agent.token,
        json!({"labels": [vip_id, unknown]}),
    )
    .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "labels[1]",
    );
    assert_eq!(
        conversation(&app, &owner, &id).await["labels"],
        json!(expected)
    );

    // The filter, the counts, and what deleting a label does.
    assert_eq!(
        listed(&app, &owner, &format!("label={vip_id}")).await,
        [id.as_str()]
    );
    assert_eq!(
        counts(&app, &owner, &format!("label={refund_id}")).await["status"]["open"],
        1
    );
    assert_eq!(listed(&app, &owner, "").await.len(), 2);
    let (status, _) = app
        .get(&format!("/api/conversations?label={unknown}"), &owner.token)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app
        .delete(&format!("/api/labels/{vip_id}"), &owner.token)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        conversation(&app, &owner, &id).await["labels"],
        json!([refund_id])
    );
    let (_, labels) = app.get("/api/labels", &agent.token).await;
    assert_eq!(items(&labels).len(), 1);
    assert!(
        listed(&app, &owner, &format!("label={refund_id}"))
            .await
            .contains(&id)
    );
    assert!(
        !listed(&app, &owner, &format!("label={refund_id}"))
            .await
            .contains(&plain)
    );
}

/// A label's list is read from its links, which carry copies of their conversation's status,
/// assignee and activity (tenant V6): every change to those shows in the labelled list and
/// its counts, in order, across pages.
#[tokio::test]
async fn a_label_filter_follows_status_assignment_and_new_messages() {
    let app = spawn_app().await;
    let owner = app.register("Follow Co").await;
    let agent = app.add_member(&owner, "agent").await;
    let (_, label) = app
        .post(
            "/api/labels",
            Some(&owner.token),
            json!({"name": "VIP", "color": "#e11d48"}),
        )
        .await;
    let label = label["id"].as_str().unwrap().to_owned();
    let older = incoming(&app, &owner, "+6281200000021", "first").await;
    let newer = incoming(&app, &owner, "+6281200000022", "second").await;
    let unlabelled = incoming(&app, &owner, "+6281200000023", "third").await;
    for id in [&older, &newer] {
        let path = format!("/api/conversations/{id}/labels");
        let (status, body) = put(&app, &path, &owner.token, json!({"labels": [label]})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let agent_id = agent.user_id.clone();
    let labelled = |query: &str| format!("label={label}&{query}");

    assert_eq!(
        listed(&app, &owner, &labelled("")).await,
        [newer.as_str(), older.as_str()]
    );
    assert_eq!(
        listed(&app, &owner, &labelled("status=open&assignee=unassigned")).await,
        [newer.as_str(), older.as_str()]
    );
    // Assignment: the exact index (one status, one assignee) and the walk both follow.
    let (status, body) = assign(&app, &owner, &older, json!(agent_id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        listed(
            &app,
            &owner,
            &labelled(&format!("status=open&assignee={agent_id}"))
        )
        .await,
        [older.as_str()]
    );
    assert_eq!(
        listed(&app, &owner, &labelled("status=open&assignee=unassigned")).await,
        [newer.as_str()]
    );
    assert_eq!(
        listed(&app, &owner, &labelled(&format!("assignee={agent_id}"))).await,
        [older.as_str()]
    );
    // Status: resolving leaves the open tab and enters the resolved one; counts follow.
    let (status, body) = set_status(&app, &owner, &newer, json!({"status": "resolved"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(listed(&app, &owner, &labelled("")).await, [older.as_str()]);
    assert_eq!(
        listed(
            &app,
            &owner,
            &labelled("status=resolved&assignee=unassigned")
        )
        .await,
        [newer.as_str()]
    );
    let tabs = counts(&app, &owner, &format!("label={label}")).await;
    assert_eq!(tabs["status"]["open"], 1, "{tabs}");
    assert_eq!(tabs["status"]["resolved"], 1, "{tabs}");
    // A new message reopens and moves to the top; pages of one follow the new order.
    incoming(&app, &owner, "+6281200000022", "back again").await;
    assert_eq!(
        listed(&app, &owner, &labelled("")).await,
        [newer.as_str(), older.as_str()]
    );
    let (status, first) = app
        .get(
            &format!("/api/conversations?{}", labelled("limit=1")),
            &owner.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(items(&first)[0]["id"], json!(newer));
    let cursor = first["nextCursor"].as_str().expect("a second page");
    incoming(&app, &owner, "+6281200000021", "moved after the first page").await;
    let (status, second) = app
        .get(
            &format!("/api/conversations?{}&cursor={cursor}", labelled("limit=1")),
            &owner.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(items(&second).len(), 1, "{second}");
    assert_eq!(items(&second)[0]["id"], json!(older), "{second}");
    assert!(
        !listed(&app, &owner, &labelled("status=all"))
            .await
            .contains(&unlabelled)
    );
}

#[tokio::test]
async fn a_note_stays_inside_the_team_and_a_mention_reaches_only_the_mentioned() {
    let app = spawn_app().await;
    let owner = app.register("Notes Co").await;
    app.link(&owner).await;
    let agent = app.add_member(&owner, "agent").await;
    let bystander = app.add_member(&owner, "admin").await;
    // Names the mention is written with ("agent" and "admin" are the helper's).
    let (status, body) = app
        .patch(
            &format!("/api/team/{}", agent.user_id),
            &owner.token,
            json!({"name": "Ayu Lestari"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = incoming(&app, &owner, "+6281200000009", "my parcel is late").await;
    let mut agent_socket = Socket::connected(&app, &agent).await;
    let mut bystander_socket = Socket::connected(&app, &bystander).await;

    let note = "Courier says Friday. @ayu lestari can you call them?";
    let (status, stored) = app
        .post(
            &format!("/api/conversations/{id}/notes"),
            Some(&owner.token),
            json!({"content": note}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    assert_eq!(stored["private"], true);
    assert_eq!(stored["authorId"], owner.user_id.as_str());

    // The mentioned agent gets the note and the mention; the bystander only the note.
    let (name, event) = agent_socket.next_app_event().await;
    assert_eq!(name, "note_added", "{event}");
    let mention = agent_socket.next("mention").await;
    assert_eq!(mention["message"]["id"], stored["id"]);
    assert_eq!(mention["notification"]["kind"], "mention");
    let (name, _) = bystander_socket.next_app_event().await;
    assert_eq!(name, "note_added");
    // A later team event is the bystander's next: no mention came in between.
    app.send_text(&owner, &id, "We are on it!").await;
    let (name, event) = bystander_socket.next_app_event().await;
    assert_eq!(name, "message_sent", "{event}");

    // The note is in the timeline, not in the preview, and never reached WhatsApp.
    let (_, history) = app
        .get(&format!("/api/conversations/{id}/messages"), &owner.token)
        .await;
    assert!(
        items(&history)
            .iter()
            .any(|m| m["id"] == stored["id"] && m["private"] == true)
    );
    let tenant = owner.tenant_id.parse().unwrap();
    app.wait_until(|| async { app.simulated().sent(tenant).len() == 1 })
        .await;
    let sent = app.simulated().sent(tenant);
    assert_eq!(sent[0].1, "We are on it!");
    assert!(sent.iter().all(|(_, text)| text != note), "{sent:?}");
    assert_eq!(
        conversation(&app, &owner, &id).await["lastMessage"],
        "We are on it!"
    );

    // Notifications and the event log are per member.
    let (_, mine) = app.get("/api/notifications", &agent.token).await;
    assert_eq!(mine["unread"], 1, "{mine}");
    assert_eq!(items(&mine)[0]["messageId"], stored["id"]);
    assert_eq!(items(&mine)[0]["excerpt"], note);
    assert_eq!(items(&mine)[0]["contactNumber"], "+6281200000009");
    assert_eq!(mention["notification"]["excerpt"], note);
    let (_, theirs) = app.get("/api/notifications", &bystander.token).await;
    assert_eq!(items(&theirs).len(), 0);
    for (account, sees) in [(&agent, true), (&bystander, false), (&owner, false)] {
        let (_, events) = app.get("/api/events", &account.token).await;
        let has = items(&events).iter().any(|e| e["type"] == "mention");
        assert_eq!(has, sees, "{events}");
    }
    let (status, read) = app
        .post("/api/notifications/read", Some(&agent.token), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["unread"], 0);

    let answer = app
        .post(
            &format!("/api/conversations/{id}/notes"),
            Some(&owner.token),
            json!({"content": "   "}),
        )
        .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "content",
    );
}

#[tokio::test]
async fn each_member_has_their_own_unread_count() {
    let app = spawn_app().await;
    let owner = app.register("Unread Co").await;
    let agent = app.add_member(&owner, "agent").await;
    let id = incoming(&app, &owner, "+6281200000010", "first").await;
    incoming(&app, &owner, "+6281200000010", "second").await;
    for account in [&owner, &agent] {
        let c = conversation(&app, account, &id).await;
        assert_eq!(c["unreadCount"], 2, "{c}");
        assert_eq!(c["contactUnreadCount"], 2, "{c}");
    }
    let (status, read) = app
        .post(
            &format!("/api/conversations/{id}/read"),
            Some(&agent.token),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["unreadCount"], 0);
    let theirs = conversation(&app, &owner, &id).await;
    assert_eq!(
        theirs["unreadCount"], 2,
        "the owner has not read it: {theirs}"
    );
    assert_eq!(
        theirs["contactUnreadCount"], 0,
        "the contact sees it read: {theirs}"
    );
    assert_eq!(listed(&app, &owner, "unread=true").await, [id.as_str()]);
    assert!(listed(&app, &agent, "unread=true").await.is_empty());
    incoming(&app, &owner, "+6281200000010", "third").await;
    assert_eq!(conversation(&app, &agent, &id).await["unreadCount"], 1);
    assert_eq!(conversation(&app, &owner, &id).await["unreadCount"], 3);

    // A member who joins later does not find the history unread.
    let late = app.add_member(&owner, "agent").await;
    assert_eq!(conversation(&app, &late, &id).await["unreadCount"], 0);
    incoming(&app, &owner, "+6281200000010", "fourth").await;
    assert_eq!(conversation(&app, &late, &id).await["unreadCount"], 1);
}

#[tokio::test]
async fn quick_replies_have_unique_short_codes() {
    let app = spawn_app().await;
    let owner = app.register("Replies Co").await;
    let agent = app.add_member(&owner, "agent").await;
    let body =
        json!({"shortCode": "Thanks", "content": "Thank you {{contact.name}}! — {{agent.name}}"});
    let (status, created) = app
        .post("/api/canned-responses", Some(&owner.token), body.clone())
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["shortCode"], "thanks");
    let answer = app
        .post("/api/canned-responses", Some(&owner.token), body)
        .await;
    assert_error(answer, StatusCode::CONFLICT, "duplicate_short_code");
    let answer = app
        .post(
            "/api/canned-responses",
            Some(&owner.token),
            json!({"shortCode": "two words", "content": "x"}),
        )
        .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "shortCode",
    );
    let answer = app
        .post(
            "/api/canned-responses",
            Some(&agent.token),
            json!({"shortCode": "mine", "content": "x"}),
        )
        .await;
    assert_error(answer, StatusCode::FORBIDDEN, "forbidden");
    let path = format!("/api/canned-responses/{}", created["id"].as_str().unwrap());
    let (status, changed) = app
        .patch(&path, &owner.token, json!({"content": "Thanks a lot!"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let (_, list) = app.get("/api/canned-responses", &agent.token).await;
    assert_eq!(items(&list)[0]["content"], "Thanks a lot!");
    let (status, _) = app.delete(&path, &owner.token).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete(&path, &owner.token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_name_the_team_gives_a_contact_is_kept_over_whatsapps_push_name() {
    let app = spawn_app().await;
    let owner = app.register("Names Co").await;
    let push = |name: &str| json!({"from": "+6281200000011", "pushName": name, "content": "hi"});
    let (_, first) = app.incoming(&owner, push("Budi")).await;
    let id = first["message"]["conversationId"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = conversation(&app, &owner, &id).await;
    assert_eq!(
        (c["contactName"].clone(), c["pushName"].clone()),
        (json!("Budi"), json!("Budi"))
    );
    app.incoming(&owner, push("Budi S")).await;
    assert_eq!(
        conversation(&app, &owner, &id).await["contactName"],
        "Budi S"
    );

    let path = format!("/api/conversations/{id}");
    let (status, renamed) = app
        .patch(
            &path,
            &owner.token,
            json!({"contactName": "Pak Budi (Jakarta)"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["nameEdited"], true);
    app.incoming(&owner, push("B.")).await;
    let c = conversation(&app, &owner, &id).await;
    assert_eq!(c["contactName"], "Pak Budi (Jakarta)");
    assert_eq!(c["pushName"], "B.");
    let (status, back) = app
        .patch(&path, &owner.token, json!({"contactName": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(
        (back["contactName"].clone(), back["nameEdited"].clone()),
        (json!("B."), json!(false))
    );
    let answer = app.patch(&path, &owner.token, json!({})).await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "contactName",
    );
    let answer = app
        .patch(&path, &owner.token, json!({"contactName": "\u{7}"}))
        .await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "contactName",
    );
}

#[tokio::test]
async fn search_finds_words_in_any_script_newest_first_and_refuses_what_fts5_cannot_parse() {
    let app = spawn_app().await;
    let owner = app.register("Search Co").await;
    let texts = [
        ("+6281200000012", "Where is my refund for order 1234?"),
        ("+6281200000013", "Здравствуйте, где мой заказ?"),
        ("+6281200000014", "مرحبا، أين طلبي؟"),
        ("+6281200000015", "我的订单在哪里？我想退款"),
        ("+6281200000012", "The refunded amount was wrong"),
    ];
    for (from, content) in texts {
        incoming(&app, &owner, from, content).await;
    }
    let search = |q: &str| {
        let q = urlencoding(q);
        let token = owner.token.clone();
        let app = &app;
        async move { app.get(&format!("/api/search?q={q}"), &token).await }
    };
    for (q, expected) in [
        ("заказ", "Здравствуйте, где мой заказ?"),
        ("طلبي", "مرحبا، أين طلبي؟"),
        ("订单在", "我的订单在哪里？我想退款"),
        ("退款", "我的订单在哪里？我想退款"),
    ] {
        let (status, body) = search(q).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        let hits = items(&body);
        assert_eq!(hits.len(), 1, "{q}: {body}");
        assert_eq!(hits[0]["message"]["content"], expected);
        let matched: Vec<&str> = hits[0]["snippet"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["match"] == true)
            .map(|p| p["text"].as_str().unwrap())
            .collect();
        assert_eq!(matched, [q], "{body}");
    }
    // Substrings match inside words; newest first; pages continue by cursor.
    let (_, body) = search("REFUND").await;
    let hits = items(&body);
    assert_eq!(hits.len(), 2, "{body}");
    assert_eq!(
        hits[0]["message"]["content"],
        "The refunded amount was wrong"
    );
    assert_eq!(hits[0]["conversation"]["contactNumber"], "+6281200000012");
    let (_, first) = app.get("/api/search?q=refund&limit=1", &owner.token).await;
    let cursor = first["nextCursor"].as_str().unwrap();
    let (_, second) = app
        .get(
            &format!("/api/search?q=refund&limit=1&cursor={cursor}"),
            &owner.token,
        )
        .await;
    assert_eq!(items(&second)[0]["message"]["content"], texts[0].1);
    assert!(second["nextCursor"].is_null());

    for bad in [
        "\"refund",
        "*",
        "NEAR(",
        "refund AND",
        "nosuchcolumn:refund",
    ] {
        let answer = search(bad).await;
        assert_error_naming(answer, StatusCode::BAD_REQUEST, "invalid_search", "q");
    }
    let answer = search("refund at once").await;
    assert_error_naming(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        "q",
    );
    let (status, _) = app.get("/api/search", &owner.token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "q is required");
}

/// Percent-encodes a query value.
fn urlencoding(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn another_tenants_labels_notes_and_messages_are_never_visible() {
    let app = spawn_app().await;
    let a = app.register("Tenant A").await;
    let b = app.register("Tenant B").await;
    let a_chat = incoming(&app, &a, "+6281200000016", "secret shipment details").await;
    let b_chat = incoming(&app, &b, "+6281200000017", "hello from b").await;
    let (_, label) = app
        .post(
            "/api/labels",
            Some(&a.token),
            json!({"name": "A only", "color": "#111111"}),
        )
        .await;
    let label = label["id"].as_str().unwrap();
    app.post(
        &format!("/api/conversations/{a_chat}/notes"),
        Some(&a.token),
        json!({"content": "internal: shipment delayed"}),
    )
    .await;

    let (_, labels) = app.get("/api/labels", &b.token).await;
    assert!(items(&labels).is_empty());
    let answer = put(
        &app,
        &format!("/api/conversations/{b_chat}/labels"),
        &b.token,
        json!({"labels": [label]}),
    )
    .await;
    assert_error(
        answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    );
    for path in [
        format!("/api/labels/{label}"),
        format!("/api/conversations/{a_chat}/labels"),
    ] {
        let (status, _) = put(&app, &path, &b.token, json!({"labels": []})).await;
        assert!(
            matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            ),
            "{path}"
        );
    }
    let answer = app
        .post(
            &format!("/api/conversations/{a_chat}/notes"),
            Some(&b.token),
            json!({"content": "peek"}),
        )
        .await;
    assert_error(answer, StatusCode::NOT_FOUND, "not_found");
    let (_, found) = app.get("/api/search?q=shipment", &b.token).await;
    assert!(items(&found).is_empty(), "{found}");
    let (_, found) = app.get("/api/search?q=shipment", &a.token).await;
    assert_eq!(
        items(&found).len(),
        2,
        "A finds its message and its note: {found}"
    );
}

#[tokio::test]
async fn a_snooze_without_its_registry_hint_still_wakes_once_the_tenant_is_opened() {
    let app = spawn_app().await;
    let owner = app.register("Restored Co").await;
    let id = incoming(&app, &owner, "+6281200000018", "back from a backup").await;
    snooze(&app, &owner, &id, 1500).await;
    // As a restored or imported file would be: snoozed inside, no hint in the registry.
    let (root, config) = app.stop().await;
    let master = rusqlite::Connection::open(config.master_db_path()).unwrap();
    let hinted = "UPDATE tenant SET wake_at = NULL WHERE wake_at IS NOT NULL";
    assert_eq!(
        master.execute(hinted, []).unwrap(),
        1,
        "the snooze left a hint"
    );
    drop(master);
    let app = TestApp::start_on(root, config).await;
    let reopened = app
        .wait_for(&format!("/api/conversations/{id}"), &owner.token, |c| {
            c["status"] == "open"
        })
        .await;
    assert!(reopened["snoozedUntil"].is_null(), "{reopened}");
}
