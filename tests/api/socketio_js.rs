//! The Socket.IO gateway against the official JavaScript client (`socket.io-client` v4), run
//! by Node from `tests/js/socketio_client.mjs` (see that file for the steps and the lines it
//! prints). Needs Node and `npm ci --prefix tests/js`, so it is `#[ignore]`d for a plain
//! `cargo test`; `.ci/run` installs the client and runs it with `--include-ignored`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::spawn_app;

const CONTACT: &str = "+6281234567890";

/// The JSON after `prefix ` on the first line that has it.
fn json_after(lines: &[String], prefix: &str) -> Value {
    let json = lines
        .iter()
        .find_map(|line| line.strip_prefix(prefix)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{prefix}` line in the client's output: {lines:#?}"));
    serde_json::from_str(json)
        .unwrap_or_else(|err| panic!("`{prefix}` line is not JSON ({err}): {json}"))
}

#[tokio::test]
#[ignore = "needs Node and `npm ci --prefix tests/js`; .ci/run runs it with --include-ignored"]
async fn the_official_javascript_client_is_refused_without_a_token_receives_events_and_sends_with_ack()
 {
    let js_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        js_dir.join("node_modules/socket.io-client").exists(),
        "tests/js/node_modules/socket.io-client is missing: run `npm ci --prefix tests/js` first"
    );

    let app = spawn_app().await;
    let owner = app.register("Toko Socket JS").await;
    let (status, conversation) = app
        .post(
            "/api/conversations",
            Some(&owner.token),
            json!({"contactNumber": CONTACT, "contactName": "Budi"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{conversation}");
    let conversation_id = conversation["id"]
        .as_str()
        .expect("conversation id")
        .to_owned();

    let mut child = Command::new("node")
        .arg(js_dir.join("socketio_client.mjs"))
        .arg(&app.address)
        .arg(&owner.token)
        .arg(&conversation_id)
        .current_dir(&js_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("`node` runs (is Node.js installed?)");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();

    let run = async {
        let mut lines = Vec::new();
        while let Some(line) = stdout.next_line().await.expect("client stdout") {
            eprintln!("socketio_client.mjs: {line}");
            if line == "READY" {
                let (status, body) = app
                    .post(
                        "/api/integrations/whatsapp/simulate/incoming",
                        Some(&owner.token),
                        json!({"from": CONTACT, "pushName": "Budi", "content": "hello from whatsapp"}),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
            }
            lines.push(line);
        }
        let status = child.wait().await.expect("client exit status");
        (lines, status)
    };
    let (lines, status) = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the JavaScript client finished within 60 s");

    assert!(
        status.success(),
        "the JavaScript client failed ({status}; its reason is on stderr above); stdout: {lines:#?}"
    );
    assert!(lines.iter().any(|l| l == "READY"), "{lines:#?}");

    let incoming = json_after(&lines, "INCOMING");
    assert_eq!(incoming["type"], "incoming_message", "{incoming}");
    assert_eq!(
        incoming["message"]["content"], "hello from whatsapp",
        "{incoming}"
    );
    assert_eq!(
        incoming["conversation"]["id"],
        conversation_id.as_str(),
        "{incoming}"
    );

    let ack = json_after(&lines, "ACK");
    let sent_id = ack["id"].as_str().expect("ack id");
    assert_eq!(ack["content"], "sent from socket.io-client", "{ack}");
    assert_eq!(ack["sender"], "agent", "{ack}");

    let ack_error = json_after(&lines, "ACK_ERROR");
    assert_eq!(
        ack_error["error"]["code"], "validation_failed",
        "{ack_error}"
    );

    assert_eq!(lines.last().map(String::as_str), Some("OK"), "{lines:#?}");

    // The acknowledgement is sent only once the message is stored.
    let (status, messages) = app
        .get(
            &format!("/api/conversations/{conversation_id}/messages"),
            &owner.token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{messages}");
    let items = messages["items"].as_array().expect("items");
    assert!(
        items.iter().any(|m| m["id"] == sent_id),
        "acknowledged message {sent_id} not in the conversation: {messages}"
    );
    assert!(
        items.iter().any(|m| m["content"] == "hello from whatsapp"),
        "incoming message not in the conversation: {messages}"
    );
}
