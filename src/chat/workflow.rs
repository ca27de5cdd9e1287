//! The team's work on conversations (docs/WORKFLOW.md): status and snoozing, assignment,
//! labels, the contact's name, private notes with their mentions, and what joining or
//! leaving the team does to a tenant's conversations.
//!
//! Each action is one write transaction that records its events, like [`super::inbox`]'s;
//! a refused action (a rule, an unknown id) changes nothing.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::inbox::{existing, existing_for};
use super::library;
use super::mentions;
use super::snooze::Snoozes;
use super::store::{self, Viewer};
use super::{
    Conversation, ConversationStatus, Message, Sender, Status, now, to_millis, uuid_col,
    validate_content,
};
use crate::auth::CurrentUser;
use crate::auth::users;
use crate::db::Db;
use crate::error::ApiError;
use crate::events::{Appended, EventData, EventKind};
use crate::ids::{TenantId, UserId};
use crate::realtime::TenantEvents;
use crate::tenancy::TenantDb;

/// How far ahead a conversation may be snoozed.
pub const MAX_SNOOZE_DAYS: i64 = 366;

/// The workflow's actions, built once at start-up.
#[derive(Clone)]
pub struct Workflow {
    events: TenantEvents,
    master: Db,
    snoozes: Snoozes,
}

impl Workflow {
    pub fn new(events: TenantEvents, master: Db, snoozes: Snoozes) -> Self {
        Self {
            events,
            master,
            snoozes,
        }
    }

    /// Runs `f` in one write on the caller's tenant; `f` gets the conversation `id` (404 if
    /// there is none) and returns whether it changed it, in which case the team is told with
    /// `conversation_updated`. Returns the conversation as the caller sees it.
    async fn change<F>(
        &self,
        db: &TenantDb,
        caller: Viewer,
        id: Uuid,
        f: F,
    ) -> Result<Conversation, ApiError>
    where
        F: FnOnce(&Connection, &Conversation) -> Result<bool, ApiError> + Send + 'static,
    {
        self.events
            .write(db.open().await?, db.tenant(), move |tx, appended| {
                let before = existing(tx, id)?;
                if f(tx, &before)? {
                    announce(tx, appended, id)?;
                }
                existing_for(tx, id, caller)
            })
            .await
    }

    /// Sets a conversation's status; `snoozed` needs `until`, a time within
    /// [`MAX_SNOOZE_DAYS`], and the others refuse one.
    pub async fn set_status(
        &self,
        db: &TenantDb,
        caller: Viewer,
        id: Uuid,
        status: ConversationStatus,
        until: Option<DateTime<Utc>>,
    ) -> Result<Conversation, ApiError> {
        let until = match (status, until) {
            (ConversationStatus::Snoozed, None) => {
                return Err(ApiError::validation(
                    "snoozedUntil is required to snooze a conversation",
                ));
            }
            (ConversationStatus::Snoozed, Some(until)) => {
                let now = now();
                if until <= now {
                    return Err(ApiError::validation("snoozedUntil must be in the future"));
                }
                if until > now + Duration::days(MAX_SNOOZE_DAYS) {
                    return Err(ApiError::validation(format!(
                        "snoozedUntil must be within {MAX_SNOOZE_DAYS} days"
                    )));
                }
                Some(to_millis(until))
            }
            (_, Some(_)) => {
                return Err(ApiError::validation(
                    "snoozedUntil is only for status snoozed",
                ));
            }
            (_, None) => None,
        };
        let conversation = self
            .change(db, caller, id, move |tx, before| {
                if before.status == status && before.snoozed_until.map(to_millis) == until {
                    return Ok(false);
                }
                tx.prepare_cached(
                    "UPDATE conversation SET status = ?2, snoozed_until = ?3 WHERE id = ?1",
                )?
                .execute(params![id.to_string(), status, until])?;
                Ok(true)
            })
            .await?;
        if let Some(until) = until {
            self.snoozes.snoozed(db.tenant(), until).await;
        }
        Ok(conversation)
    }

    /// Assigns a conversation to `assignee` (a member of the caller's team), or unassigns it.
    /// Owners and admins assign anyone; an agent may take a conversation and give up their
    /// own, nothing else (403).
    pub async fn assign(
        &self,
        db: &TenantDb,
        caller: &CurrentUser,
        id: Uuid,
        assignee: Option<UserId>,
    ) -> Result<Conversation, ApiError> {
        let tenant = caller.tenant_id();
        if let Some(user) = assignee {
            let member = self
                .master
                .run(move |conn| Ok(users::find(conn, tenant, user)?.is_some()))
                .await?;
            if !member {
                return Err(ApiError::validation(format!(
                    "userId {user} is not a member of this workspace"
                )));
            }
        }
        let me = caller.user.id;
        let manager = caller.user.role.manages_team();
        self.change(db, Viewer(me.0), id, move |tx, before| {
            let current = before.assignee_id.map(UserId);
            let allowed = manager
                || match assignee {
                    Some(user) => user == me,
                    None => current.is_none() || current == Some(me),
                };
            if !allowed {
                return Err(ApiError::forbidden(
                    "an agent may only assign a conversation to themselves or unassign \
                     themselves; owners and admins assign others",
                ));
            }
            if current == assignee {
                return Ok(false);
            }
            tx.prepare_cached("UPDATE conversation SET assignee_id = ?2 WHERE id = ?1")?
                .execute(params![id.to_string(), assignee])?;
            Ok(true)
        })
        .await
    }

    /// Sets a conversation's labels (ids of the tenant's labels; 422 naming an unknown one).
    pub async fn set_labels(
        &self,
        db: &TenantDb,
        caller: Viewer,
        id: Uuid,
        labels: Vec<Uuid>,
    ) -> Result<Conversation, ApiError> {
        self.change(db, caller, id, move |tx, _| {
            library::set_conversation_labels(tx, id, &labels)
        })
        .await
    }

    /// Names the contact (`Some`: the team's name, kept from then on) or gives the name back
    /// to WhatsApp's push name (`None`).
    pub async fn rename_contact(
        &self,
        db: &TenantDb,
        caller: Viewer,
        id: Uuid,
        name: Option<String>,
    ) -> Result<Conversation, ApiError> {
        self.change(db, caller, id, move |tx, before| {
            let edited = name.is_some();
            let shown = name.or_else(|| before.push_name.clone());
            if before.name_edited == edited && before.contact_name == shown {
                return Ok(false);
            }
            tx.prepare_cached(
                "UPDATE conversation SET contact_name = ?2, name_edited = ?3 WHERE id = ?1",
            )?
            .execute(params![id.to_string(), shown, edited])?;
            Ok(true)
        })
        .await
    }

    /// Deletes a label; every conversation it was on is announced without it.
    pub async fn delete_label(&self, db: &TenantDb, label: Uuid) -> Result<(), ApiError> {
        self.events
            .write(db.open().await?, db.tenant(), move |tx, appended| {
                for conversation in library::delete_label(tx, label)? {
                    announce(tx, appended, conversation)?;
                }
                Ok(())
            })
            .await
    }

    /// Stores a private note by `author` in the conversation's timeline (never sent to
    /// WhatsApp). Every teammate it mentions (`@Name`, see [`mentions::mentioned`]) gets a
    /// notification and a `mention` event of their own.
    pub async fn add_note(
        &self,
        db: &TenantDb,
        author: &CurrentUser,
        id: Uuid,
        content: String,
    ) -> Result<Message, ApiError> {
        validate_content("content", &content)?;
        let tenant = author.tenant_id();
        let me = author.user.id;
        let team: Vec<(Uuid, String)> = self
            .master
            .run(move |conn| Ok(users::list(conn, tenant)?))
            .await?
            .into_iter()
            .filter(|user| user.id != me)
            .map(|user| (user.id.0, user.name))
            .collect();
        let mentioned = mentions::mentioned(&content, &team);
        self.events
            .write(db.open().await?, tenant, move |tx, appended| {
                existing(tx, id)?;
                let message = Message {
                    id: Uuid::now_v7(),
                    conversation_id: id,
                    content,
                    sender: Sender::Agent,
                    kind: "text".to_owned(),
                    status: Status::Sent,
                    is_read: true,
                    whatsapp_id: None,
                    author_id: Some(me.0),
                    created_at: now(),
                    failure_reason: None,
                    media: None,
                    private: true,
                };
                let pos = store::insert_message(tx, &message)?;
                let conversation = store::touch_conversation(tx, &message, pos)?;
                let data = EventData::chat(Some(message.clone()), Some(conversation.clone()));
                appended.push(tx, EventKind::NoteAdded, data)?;
                for user in mentioned {
                    let notification = mentions::insert_mention(tx, user, &conversation, &message)?;
                    let data = EventData {
                        notification: Some(notification),
                        ..EventData::chat(Some(message.clone()), Some(conversation.clone()))
                    };
                    appended.push_to(tx, UserId(user), EventKind::Mention, data)?;
                }
                Ok(message)
            })
            .await
    }

    /// A member joined `tenant`'s team: their read state starts at the newest message.
    pub async fn member_added(&self, tenant: TenantId, user: UserId) -> Result<(), ApiError> {
        let db = self.events.tenants.get(tenant).await?;
        db.write(move |tx| Ok(store::add_member(tx, user.0)?)).await
    }

    /// A member left `tenant`'s team: their conversations become unassigned (each announced),
    /// and their read positions and notifications go.
    pub async fn member_removed(&self, tenant: TenantId, user: UserId) -> Result<(), ApiError> {
        let db = self.events.tenants.get(tenant).await?;
        self.events
            .write(&db, tenant, move |tx, appended| {
                let unassigned = tx
                    .prepare_cached(
                        "UPDATE conversation SET assignee_id = NULL WHERE assignee_id = ?1
                         RETURNING id",
                    )?
                    .query_map([user], |row| uuid_col(row, 0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                for id in unassigned {
                    announce(tx, appended, id)?;
                }
                for sql in [
                    "DELETE FROM read_position WHERE user_id = ?1",
                    "DELETE FROM member WHERE user_id = ?1",
                    "DELETE FROM notification WHERE user_id = ?1",
                ] {
                    tx.prepare_cached(sql)?.execute([user])?;
                }
                Ok(())
            })
            .await
    }
}

/// Appends `conversation_updated` for the conversation as the team sees it now.
fn announce(conn: &Connection, appended: &mut Appended, id: Uuid) -> Result<(), ApiError> {
    let data = EventData::chat(None, Some(existing(conn, id)?));
    appended.push(conn, EventKind::ConversationUpdated, data)?;
    Ok(())
}
