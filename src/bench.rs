//! What the benchmark (`benches/aezen/`) needs from inside the crate, exposed on purpose and
//! nowhere else: the product's own sign-up (with a precomputed hash, since 10,000 argon2
//! hashes would dominate the set-up), tenant schema and message bookkeeping, so the bare
//! rusqlite baseline does the same SQL on the same file shape instead of copying them.
//!
//! Not a stable API: it changes with the benchmark.

use std::path::Path;

use rusqlite::Connection;

pub use crate::auth::signup::{SignUp, SignedUp, sign_up_hashed};
pub use crate::chat::store::note_newest_message;
pub use crate::config::FileLock;
pub use crate::error::ApiError;
pub use crate::ids::{TenantId, UserId};
pub use crate::whatsapp::{Ingested, SessionState};

use crate::db::{self, Durability};

/// The conversation table's own columns, as the bare baseline's `RETURNING` reads them (the
/// product's list also joins the reader's read position and the labels).
pub const CONVERSATION_COLUMNS: &str = "id, contact_name, contact_number, platform, last_message, \
     last_message_at, unread_count, created_at, activity_at";

/// Creates a tenant-shaped file at `path` (it must not exist) and applies this binary's
/// tenant migrations, opened exactly as the server opens a tenant file: its pragmas,
/// `synchronous=NORMAL`, and `lock`.
pub fn create_tenant_file(path: &Path, lock: FileLock) -> anyhow::Result<Connection> {
    let mut conn = db::open_connection(path, Durability::Normal, lock, true)?;
    db::migrate(&mut conn, &crate::tenancy::tenant_schema())?;
    Ok(conn)
}

/// Opens an existing tenant file as the server does.
pub fn open_tenant_file(path: &Path, lock: FileLock) -> anyhow::Result<Connection> {
    Ok(db::open_connection(path, Durability::Normal, lock, false)?)
}

/// The query plan of the conversation list's first page with these filters (the product's
/// own statement, `chat::store::first_page_plan`): `statuses` by name (empty: all),
/// `assignee` a user, `label` a label's id.
pub fn list_plan(
    conn: &Connection,
    statuses: &[&str],
    assignee: Option<uuid::Uuid>,
    label: Option<uuid::Uuid>,
) -> anyhow::Result<String> {
    use crate::chat::ConversationStatus;
    use crate::chat::store::{AssigneeFilter, ListFilter};
    let filter = ListFilter {
        statuses: statuses
            .iter()
            .map(|s| ConversationStatus::parse(s).ok_or_else(|| anyhow::anyhow!("status {s}")))
            .collect::<anyhow::Result<_>>()?,
        assignee: assignee.map_or(AssigneeFilter::All, AssigneeFilter::User),
        label,
        ..ListFilter::default()
    };
    Ok(crate::chat::store::first_page_plan(conn, &filter)?)
}
