//! A real Socket.IO client (rust_socketio) for the tests: connect with a handshake payload,
//! wait for named events, emit with an acknowledgement.

use std::time::Duration;

use futures::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Account, TestApp};

/// A connected (or refused) socket and what it has received: `(event name, payload)`.
pub struct Socket {
    client: Option<Client>,
    received: mpsc::UnboundedReceiver<(String, Value)>,
    sender: mpsc::UnboundedSender<(String, Value)>,
    /// Events received while waiting for another one, in arrival order.
    backlog: Vec<(String, Value)>,
}

fn first_value(payload: Payload) -> Value {
    match payload {
        Payload::Text(mut values) if !values.is_empty() => values.swap_remove(0),
        #[allow(deprecated)]
        Payload::String(s) => Value::String(s),
        _ => Value::Null,
    }
}

/// Connects with `auth` as the handshake payload (without waiting for the outcome).
pub async fn connect(app: &TestApp, auth: Value) -> Socket {
    let (sender, received) = mpsc::unbounded_channel();
    let forward = |name: &'static str, tx: mpsc::UnboundedSender<(String, Value)>| {
        move |payload: Payload, _: Client| {
            let _ = tx.send((name.to_owned(), first_value(payload)));
            async {}.boxed()
        }
    };
    let any = {
        let tx = sender.clone();
        move |event: Event, payload: Payload, _: Client| {
            let _ = tx.send((event.to_string(), first_value(payload)));
            async {}.boxed()
        }
    };
    let client = ClientBuilder::new(app.address.clone())
        .namespace("/")
        .auth(auth)
        .reconnect(false)
        .on(Event::Connect, forward("connect", sender.clone()))
        .on(Event::Error, forward("error", sender.clone()))
        .on(Event::Close, forward("close", sender.clone()))
        .on_any(any)
        .connect()
        .await
        .ok();
    Socket {
        client,
        received,
        sender,
        backlog: Vec::new(),
    }
}

impl Socket {
    /// The next event (in arrival order) that `wanted` accepts; others are kept for later.
    async fn next_where(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> (String, Value) {
        if let Some(i) = self.backlog.iter().position(|(event, _)| wanted(event)) {
            return self.backlog.remove(i);
        }
        let wait = async {
            loop {
                let (event, payload) = self.received.recv().await.expect("socket channel open");
                if wanted(&event) {
                    return (event, payload);
                }
                self.backlog.push((event, payload));
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("no {what} within 10 s"))
    }

    /// The next event named `name`.
    pub async fn next(&mut self, name: &str) -> Value {
        self.next_where(name, |event| event == name).await.1
    }

    /// The next application event (not connect/error/close).
    pub async fn next_app_event(&mut self) -> (String, Value) {
        self.next_where("application event", |event| {
            !["connect", "error", "close", "message", "ack"].contains(&event)
        })
        .await
    }

    pub async fn connected(app: &TestApp, account: &Account) -> Socket {
        let mut socket = connect(app, json!({"token": account.token})).await;
        socket.next("connect").await;
        socket
    }

    /// Closes the connection from the client's side.
    pub async fn disconnect(&mut self) {
        let client = self.client.take().expect("connected");
        client.disconnect().await.unwrap();
    }

    /// Emits `send_message` and waits for its acknowledgement.
    /// Emits `event` without waiting for anything.
    pub async fn emit(&mut self, event: &str, body: Value) {
        let client = self.client.as_ref().expect("connected");
        client.emit(event, body).await.expect("emit");
    }

    /// Waits until the connection is closed or fails (`close` or `error`).
    pub async fn ended(&mut self) -> (String, Value) {
        self.next_where("close or error", |event| {
            event == "close" || event == "error"
        })
        .await
    }

    pub async fn send_message(&mut self, body: Value) -> Value {
        let tx = self.sender.clone();
        let client = self.client.as_ref().expect("connected");
        client
            .emit_with_ack(
                "send_message",
                body,
                Duration::from_secs(10),
                move |payload: Payload, _| {
                    // rust_socketio hands over the ack's argument list as one array.
                    let ack = match first_value(payload) {
                        Value::Array(mut args) if args.len() == 1 => args.swap_remove(0),
                        other => other,
                    };
                    let _ = tx.send(("ack".to_owned(), ack));
                    async {}.boxed()
                },
            )
            .await
            .expect("emit");
        self.next("ack").await
    }
}
