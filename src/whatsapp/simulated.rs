//! The SIMULATED WhatsApp backend: no network, nothing leaves the machine.
//!
//! Every tenant counts as connected until `simulate/unlink` drops its session, and
//! `simulate/scan` brings it back; this state lives in memory only, so a restart reconnects
//! every tenant. Sends succeed with an obviously fake id (`SIMULATED-…`). Incoming messages
//! and receipts are injected by the `simulate/*` endpoints through the same inbound channel
//! the real adapter uses.

use std::collections::HashSet;
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::{BackendKind, Connection, Inbound, InboundEvent, SendError, WhatsApp};
use crate::ids::TenantId;

pub struct Simulated {
    down: Mutex<HashSet<TenantId>>,
    inbound: mpsc::Sender<Inbound>,
    /// Every mark-read call, for tests to check that read state reached "WhatsApp".
    read_log: Mutex<Vec<(TenantId, String, Vec<String>)>>,
}

impl Simulated {
    pub fn new(inbound: mpsc::Sender<Inbound>) -> Self {
        Self {
            down: Mutex::new(HashSet::new()),
            inbound,
            read_log: Mutex::new(Vec::new()),
        }
    }

    /// Injects an inbound event, as the real network would.
    pub async fn inject(&self, tenant: TenantId, event: InboundEvent) {
        // The receiver lives as long as the application; a failed send means it is stopping.
        let _ = self.inbound.send(Inbound { tenant, event }).await;
    }

    /// Drops (`false`) or restores (`true`) a tenant's session and reports the change.
    pub async fn set_connected(&self, tenant: TenantId, connected: bool) {
        {
            let mut down = self
                .down
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if connected {
                down.remove(&tenant);
            } else {
                down.insert(tenant);
            }
        }
        let state = if connected {
            Connection::Connected
        } else {
            Connection::Disconnected
        };
        self.inject(tenant, InboundEvent::Connection(state)).await;
    }

    /// The mark-read calls made so far for `tenant`: `(chat, ids)`.
    pub fn reads(&self, tenant: TenantId) -> Vec<(String, Vec<String>)> {
        self.read_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(t, _, _)| *t == tenant)
            .map(|(_, chat, ids)| (chat.clone(), ids.clone()))
            .collect()
    }
}

impl WhatsApp for Simulated {
    fn send_text<'a>(
        &'a self,
        tenant: TenantId,
        _to: &'a str,
        _text: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        let connected = self.is_connected(tenant);
        async move {
            if connected {
                Ok(format!("SIMULATED-{}", uuid::Uuid::new_v4().simple()))
            } else {
                Err(SendError::NotConnected)
            }
        }
        .boxed()
    }

    fn mark_read<'a>(
        &'a self,
        tenant: TenantId,
        chat: &'a str,
        ids: &'a [String],
    ) -> BoxFuture<'a, Result<(), SendError>> {
        let result = if self.is_connected(tenant) {
            self.read_log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((tenant, chat.to_owned(), ids.to_vec()));
            Ok(())
        } else {
            Err(SendError::NotConnected)
        };
        async move { result }.boxed()
    }

    fn is_connected(&self, tenant: TenantId) -> bool {
        !self
            .down
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&tenant)
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Simulated
    }
}
