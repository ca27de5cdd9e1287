//! `AppState`: the one `Arc` every handler shares. It holds the services, each built once at
//! start-up ([`crate::startup`]) with the narrow handles it needs; nothing here knows HTTP.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::Authenticator;
use crate::auth::password::PasswordHashing;
use crate::auth::rate_limit::AuthLimiter;
use crate::chat::inbox::Inbox;
use crate::chat::outbox::Outbox;
use crate::chat::pages::Pages;
use crate::chat::workflow::Workflow;
use crate::config::Config;
use crate::db::Db;
use crate::ids::UserId;
use crate::media::cache::HotMedia;
use crate::media::fetch::Fetcher;
use crate::metrics::Metrics;
use crate::ops::Operations;
use crate::realtime::{Realtime, TenantEvents};
use crate::tenancy::TenantPools;
use crate::webhooks::deliver::Webhooks;
use crate::whatsapp::WhatsApp;
use crate::whatsapp::sessions::Sessions;
use crate::whatsapp::simulated::Simulated;

/// Everything a handler may reach, behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<App>);

pub struct App {
    pub config: Config,
    pub master: Db,
    pub auth: Arc<Authenticator>,
    pub tenants: TenantPools,
    pub passwords: PasswordHashing,
    pub limiter: AuthLimiter,
    pub metrics: Metrics,
    pub realtime: Realtime,
    pub events: TenantEvents,
    pub whatsapp: Arc<dyn WhatsApp>,
    /// The same backend as `whatsapp` when it is the simulated one (for `simulate/*`).
    pub simulated: Option<Arc<Simulated>>,
    pub outbox: Outbox,
    /// Fetches incoming media from WhatsApp (docs/MEDIA.md).
    pub media: Fetcher,
    /// Small media items recently served, in memory (docs/MEDIA.md).
    pub hot_media: HotMedia,
    /// Kept first pages of the conversation list ([`crate::chat::pages`]).
    pub pages: Pages,
    pub inbox: Inbox,
    /// Status, assignment, labels, notes (docs/WORKFLOW.md).
    pub workflow: Workflow,
    pub sessions: Sessions,
    /// Backup, restore, export, import, delete (the control socket and `/api/tenant/*`).
    pub ops: Operations,
    /// Webhook endpoints' deliveries (docs/WEBHOOKS.md).
    pub webhooks: Webhooks,
}

impl AppState {
    pub fn new(app: App) -> Self {
        Self(Arc::new(app))
    }

    /// A handle that does not keep the application alive (for the Socket.IO handlers: the
    /// application owns the Socket.IO instance, not the other way round).
    pub fn downgrade(&self) -> std::sync::Weak<App> {
        Arc::downgrade(&self.0)
    }

    pub fn upgrade(app: &std::sync::Weak<App>) -> Option<Self> {
        app.upgrade().map(Self)
    }

    /// Cuts off a user's live sockets after their tokens were revoked.
    pub async fn on_user_revoked(&self, user: UserId) {
        self.auth.forget(user);
        self.realtime.disconnect_user(user).await;
    }
}

impl Deref for AppState {
    type Target = App;
    fn deref(&self) -> &App {
        &self.0
    }
}
