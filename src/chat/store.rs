//! SQL for conversations and messages, one function per query, each on the tenant's own
//! connection. Writers run inside the caller's `BEGIN IMMEDIATE` transaction.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, named_params, params};
use serde::Serialize;
use uuid::Uuid;

use utoipa::ToSchema;

use super::{
    Conversation, ConversationStatus, Message, Sender, Status, from_millis, parse_uuid, to_millis,
    uuid_col,
};
use crate::error::ApiError;
use crate::media;

/// A conversation's columns, from `conversation` joined with the viewer's read position
/// ([`CONVERSATION_FROM`]); [`conversation_row`] and [`ConversationRow::read`] read them.
/// Column 13 is the label ids, in the order of `conversation_label`'s primary key (which the
/// lookup walks: sorted, with no sort per row); column 14 the viewer's unread count (NULL
/// without a viewer), counted on `message_incoming` only when there is something unread.
const CONVERSATION_COLUMNS: &str = "conversation.id, contact_name, contact_number, platform, \
     last_message, last_message_at, unread_count, conversation.created_at, push_name, name_edited, \
     conversation.status, snoozed_until, conversation.assignee_id, \
     (SELECT group_concat(label_id, ',') FROM conversation_label cl \
      WHERE cl.conversation_id = conversation.id), \
     CASE WHEN :viewer IS NULL THEN NULL \
          WHEN last_incoming_pos <= coalesce(rp.read_pos, (SELECT read_from FROM default_read)) THEN 0 \
          ELSE (SELECT count(*) FROM message m WHERE m.conversation_id = conversation.id \
                AND m.sender = 'user' AND m.pos > coalesce(rp.read_pos, (SELECT read_from FROM default_read))) \
     END";
/// How many columns [`CONVERSATION_COLUMNS`] names: the index of a column selected after them.
const CONVERSATION_COLUMN_COUNT: usize = 15;

/// Where the viewer's read positions come from (`:viewer`, a user id or NULL).
const CONVERSATION_FROM: &str = "conversation LEFT JOIN read_position rp \
     ON rp.conversation_id = conversation.id AND rp.user_id = :viewer";

/// A list filtered by a label is read from the label's links (`cl`), which carry their
/// conversation's status, assignee and activity (tenant migration V6), in list order; each
/// link's conversation is then looked up by its key.
const LABELLED_FROM: &str = "conversation_label cl \
     CROSS JOIN conversation ON conversation.id = cl.conversation_id \
     LEFT JOIN read_position rp ON rp.conversation_id = conversation.id AND rp.user_id = :viewer";

/// `default_read(read_from)`: where the viewer's position is in a conversation they have not
/// read yet — the newest message when they joined, else the tenant's upgrade point
/// (docs/WORKFLOW.md). Prefix of every statement that reads [`CONVERSATION_COLUMNS`].
const DEFAULT_READ: &str = "WITH default_read(read_from) AS (SELECT coalesce(
     (SELECT read_from FROM member WHERE user_id = :viewer),
     (SELECT CAST(value AS INTEGER) FROM tenant_meta WHERE key = 'read_since'), 0))";

/// Messages that may arrive between a conversation list's first page and a later one before
/// its cursor is refused as too old (each later page reads them to find what moved).
pub const MAX_MESSAGES_SINCE_SNAPSHOT: i64 = 50_000;

/// The rowid of the newest message: a conversation list's snapshot. Read from tenant_meta,
/// whose one page every open has read already (reading the message table instead cost each
/// cached connection two more pages: ~10 MiB of RSS with 10,000 tenants); the table itself
/// only if the row is missing.
const NEWEST_MESSAGE: &str = "coalesce(
    (SELECT CAST(value AS INTEGER) FROM tenant_meta WHERE key = 'newest_message'),
    (SELECT coalesce(max(rowid), 0) FROM message))";

/// The list's `q` and `unread` filters, on the current values of a row.
const LIST_FILTERS: &str =
    "AND (:name_like IS NULL OR contact_name LIKE :name_like ESCAPE '\\' OR contact_number LIKE :digits_like)
     AND (:unread = 0 OR last_incoming_pos > coalesce(rp.read_pos, (SELECT read_from FROM default_read)))";

/// A text column, borrowed from the row.
fn text<'a>(row: &'a Row<'_>, idx: usize) -> rusqlite::Result<&'a str> {
    Ok(row.get_ref(idx)?.as_str()?)
}

/// A text column that may be NULL, borrowed from the row.
fn text_opt<'a>(row: &'a Row<'_>, idx: usize) -> rusqlite::Result<Option<&'a str>> {
    Ok(row.get_ref(idx)?.as_str_or_null()?)
}

/// A conversation row, of [`CONVERSATION_COLUMNS`].
fn conversation_row(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    let assignee: Option<&str> = text_opt(row, 12)?;
    Ok(Conversation {
        id: uuid_col(row, 0)?,
        contact_name: row.get(1)?,
        contact_number: row.get(2)?,
        push_name: row.get(8)?,
        name_edited: row.get(9)?,
        platform: row.get(3)?,
        last_message: row.get(4)?,
        last_message_at: row.get::<_, Option<i64>>(5)?.map(from_millis),
        unread_count: row.get(14)?,
        contact_unread_count: row.get(6)?,
        status: row.get(10)?,
        snoozed_until: row.get::<_, Option<i64>>(11)?.map(from_millis),
        assignee_id: assignee.map(|a| parse_uuid(12, a)).transpose()?,
        labels: text_opt(row, 13)?
            .map(|labels| labels.split(',').map(|l| parse_uuid(13, l)).collect())
            .transpose()?
            .unwrap_or_default(),
        created_at: from_millis(row.get(7)?),
    })
}

const MESSAGE_COLUMNS: &str = "id, conversation_id, content, sender, type, status, is_read, wa_id, author_id, created_at, rowid, error, private";
/// How many columns [`MESSAGE_COLUMNS`] names: the index of a column selected after them.
pub const MESSAGE_COLUMN_COUNT: usize = 13;

/// [`MESSAGE_COLUMNS`] of the table `alias`, for a query that joins `message` with others.
pub fn message_columns_of(alias: &str) -> String {
    MESSAGE_COLUMNS
        .split(", ")
        .map(|column| format!("{alias}.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A message row plus its rowid (its history position).
pub fn message_row(row: &Row<'_>) -> rusqlite::Result<(Message, i64)> {
    let author: Option<String> = row.get(8)?;
    Ok((
        Message {
            id: uuid_col(row, 0)?,
            conversation_id: uuid_col(row, 1)?,
            content: row.get(2)?,
            sender: row.get(3)?,
            kind: row.get(4)?,
            status: row.get(5)?,
            is_read: row.get(6)?,
            whatsapp_id: row.get(7)?,
            author_id: author.and_then(|a| Uuid::parse_str(&a).ok()),
            created_at: from_millis(row.get(9)?),
            failure_reason: row.get(11)?,
            media: None,
            private: row.get(12)?,
        },
        row.get(10)?,
    ))
}

// ---- cursors -------------------------------------------------------------------------------

/// Position in the conversation list: `(activity_at, id)` of the last item served, and the
/// snapshot the listing started from (the newest message rowid its first page saw).
///
/// Later pages keep the first page's order: a conversation that gets a message while the
/// client pages stays where it was in the snapshot, so it is neither served twice (when it
/// was above the cursor) nor skipped (when it was below). Its row shows its current data;
/// the `conversation_updated` event tells the client that it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationCursor {
    pub activity_at: i64,
    pub id: Uuid,
    pub snapshot: i64,
}

/// Position in a message history: the rowid of the oldest message served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCursor(pub i64);

// ---- conversations -------------------------------------------------------------------------

/// Whose view of a conversation is read: their own unread count (docs/WORKFLOW.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer(pub Uuid);

impl Viewer {
    fn param(viewer: Option<Viewer>) -> Option<String> {
        viewer.map(|v| v.0.to_string())
    }
}

/// Which assignees the list shows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    #[default]
    All,
    Unassigned,
    User(Uuid),
}

/// Filters of the conversation list.
#[derive(Debug, Default)]
pub struct ListFilter {
    /// Matches name (case-insensitive, ASCII) or, when phone-like, number (its digits).
    pub q: Option<String>,
    /// Only conversations the viewer has not read.
    pub unread_only: bool,
    /// The statuses shown; empty: all of them.
    pub statuses: Vec<ConversationStatus>,
    pub assignee: AssigneeFilter,
    pub label: Option<Uuid>,
}

impl ListFilter {
    /// Where the list's rows are read from, and its order's two columns: the label's links
    /// with a label filter, else the conversations.
    fn source(&self) -> (&'static str, &'static str, &'static str) {
        if self.label.is_some() {
            (LABELLED_FROM, "cl.activity_at", "cl.conversation_id")
        } else {
            (
                CONVERSATION_FROM,
                "conversation.activity_at",
                "conversation.id",
            )
        }
    }

    /// The status, assignee and label conditions as SQL. Status values are written into the
    /// text (they are the enum's own words), each filter shape its own cached statement.
    /// Without a label:
    /// - one status: `conversation_by_status` (or `conversation_by_assignee` with an
    ///   assignee) holds exactly the rows in list order, and the page is its first rows;
    /// - several statuses (the default `open,pending`): no index holds those in list order
    ///   (an `IN` over an index is a sort of every matching row, 40,000 of them in a big
    ///   inbox), so the terms are kept off the indexes (`+`) and `conversation_by_activity`
    ///   is walked in order, skipping what does not match, until the page is full.
    ///
    /// With a label, on the copies its links carry: one status with an assignee (a user or
    /// nobody) is exactly `conversation_label_exact`'s rows; any other shape walks
    /// `conversation_label_by_activity`, whose entries hold the status and assignee to skip.
    fn structural_sql(&self) -> String {
        let mut sql = String::new();
        let statuses = &self.statuses;
        let all = statuses.is_empty() || statuses.len() == ConversationStatus::ALL.len();
        let (table, walk) = if self.label.is_some() {
            sql.push_str(" AND cl.label_id = :label");
            let exact = statuses.len() == 1 && !matches!(self.assignee, AssigneeFilter::All);
            ("cl", if exact { "" } else { "+" })
        } else {
            ("conversation", if statuses.len() > 1 { "+" } else { "" })
        };
        if !all {
            let words: Vec<String> = statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            sql.push_str(&format!(
                " AND {walk}{table}.status IN ({})",
                words.join(", ")
            ));
        }
        match self.assignee {
            AssigneeFilter::All => {}
            AssigneeFilter::Unassigned => {
                sql.push_str(&format!(" AND {walk}{table}.assignee_id IS NULL"))
            }
            AssigneeFilter::User(_) => {
                sql.push_str(&format!(" AND {walk}{table}.assignee_id = :assignee"))
            }
        }
        sql
    }

    /// The `LIKE` patterns of `q`: for the name, and for the number when `q` is phone-like.
    fn patterns(&self) -> (Option<String>, Option<String>) {
        match self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) => {
                // The number is searched only for a phone-like `q`: "Nike 2" is a name.
                let phone_like = q
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-().".contains(c));
                let digits: String = q.chars().filter(char::is_ascii_digit).collect();
                (
                    Some(format!("%{}%", escape_like(q))),
                    (phone_like && !digits.is_empty()).then(|| format!("%{digits}%")),
                )
            }
            None => (None, None),
        }
    }
}

/// The labels column (`group_concat` of ids) as a JSON array of strings.
struct LabelIds<'a>(Option<&'a str>);

impl Serialize for LabelIds<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ids = self.0.into_iter().flat_map(|ids| ids.split(','));
        serializer.collect_seq(ids)
    }
}

/// A conversation borrowed from its row, serialized exactly as [`Conversation`] is: the
/// list writes its page from these without building a `Conversation` (several `String`s)
/// per row (tested below).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConversationRow<'a> {
    /// As stored: the hyphenated lowercase text `Uuid` serializes to.
    id: &'a str,
    contact_name: Option<&'a str>,
    contact_number: &'a str,
    push_name: Option<&'a str>,
    name_edited: bool,
    platform: &'a str,
    last_message: Option<&'a str>,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    last_message_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unread_count: Option<i64>,
    contact_unread_count: i64,
    status: ConversationStatus,
    #[serde(serialize_with = "crate::time::rfc3339_opt")]
    snoozed_until: Option<DateTime<Utc>>,
    assignee_id: Option<&'a str>,
    labels: LabelIds<'a>,
    #[serde(serialize_with = "crate::time::rfc3339")]
    created_at: DateTime<Utc>,
}

impl<'a> ConversationRow<'a> {
    /// The row, of [`CONVERSATION_COLUMNS`].
    fn read(row: &'a Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: text(row, 0)?,
            contact_name: text_opt(row, 1)?,
            contact_number: text(row, 2)?,
            push_name: text_opt(row, 8)?,
            name_edited: row.get(9)?,
            platform: text(row, 3)?,
            last_message: text_opt(row, 4)?,
            last_message_at: row.get::<_, Option<i64>>(5)?.map(from_millis),
            unread_count: row.get(14)?,
            contact_unread_count: row.get(6)?,
            status: row.get(10)?,
            snoozed_until: row.get::<_, Option<i64>>(11)?.map(from_millis),
            assignee_id: text_opt(row, 12)?,
            labels: LabelIds(text_opt(row, 13)?),
            created_at: from_millis(row.get(7)?),
        })
    }
}

/// Writes one page of conversations, newest activity first, into `body` as the JSON of a
/// `ConversationPage`: `{"items":[…],"nextCursor":…}`, the cursor null on the last page.
///
/// Each row is serialized straight from SQLite's buffer while the statement steps: this is
/// the inbox's hot path, and building the page as values first (then serializing them) cost
/// a quarter of its CPU in allocating, copying and freeing strings.
pub fn write_conversation_page(
    conn: &Connection,
    viewer: Viewer,
    filter: &ListFilter,
    after: Option<&ConversationCursor>,
    limit: u32,
    encode_cursor: impl Fn(&ConversationCursor) -> String,
    body: &mut Vec<u8>,
) -> Result<(), ApiError> {
    let (name_like, digits_like) = filter.patterns();
    if let Some(cursor) = after {
        let newest: i64 = conn
            .prepare_cached(&format!("SELECT {NEWEST_MESSAGE}"))?
            .query_row([], |row| row.get(0))?;
        // A later page reads every message since its snapshot: bound that work.
        if newest.saturating_sub(cursor.snapshot) > MAX_MESSAGES_SINCE_SNAPSHOT {
            return Err(ApiError::bad_request(
                "invalid_cursor",
                format!(
                    "cursor is too old: more than {MAX_MESSAGES_SINCE_SNAPSHOT} messages \
                     arrived since its first page; list again from the first page"
                ),
            ));
        }
    }
    let filters = format!("{LIST_FILTERS}{}", filter.structural_sql());
    let pos = CONVERSATION_COLUMN_COUNT;
    let (from, at, id) = filter.source();
    // Column `pos` is the row's list position; on a first page, the next is the snapshot.
    let mut stmt = match after {
        None => conn.prepare_cached(&first_page_sql(filter))?,
        // Conversations with no message after the snapshot are where they were; those with
        // one are placed by their activity as of the snapshot (their last message before
        // it, else their creation). One merge of two ordered arms: the first walks the
        // activity index, the second is the few that moved.
        Some(_) => conn.prepare_cached(&format!(
            "{DEFAULT_READ}, moved(id) AS MATERIALIZED (SELECT conversation_id FROM message WHERE rowid > :snapshot)
             SELECT {CONVERSATION_COLUMNS}, {at} AS pos FROM {from}
             WHERE ({at}, {id}) < (:at, :id) AND {id} NOT IN moved {filters}
             UNION ALL
             SELECT * FROM (
                 SELECT {CONVERSATION_COLUMNS},
                        max(conversation.created_at, coalesce((SELECT max(m.created_at) FROM message m
                            WHERE m.conversation_id = conversation.id AND m.rowid <= :snapshot),
                            conversation.created_at)) AS pos
                 FROM {from} WHERE {id} IN moved {filters})
             WHERE (pos, id) < (:at, :id)
             ORDER BY pos DESC, id DESC
             LIMIT :limit"
        ))?,
    };
    let assignee = match filter.assignee {
        AssigneeFilter::User(user) => Some(user.to_string()),
        _ => None,
    };
    let params = ListParams {
        viewer: Viewer::param(Some(viewer)),
        name_like,
        digits_like,
        unread: filter.unread_only,
        limit: limit + 1,
        assignee,
        label: filter.label.map(|l| l.to_string()),
        after: after.map(|c| (c.activity_at, c.id.to_string(), c.snapshot)),
    };
    let mut rows = params.bind(&mut stmt)?;
    let json = |e| ApiError::internal("serialize conversation page", e);
    body.extend_from_slice(br#"{"items":["#);
    // The cursor is read from the page's last row only, and served only if a row follows it.
    let (mut served, mut last, mut next) = (0, None, None);
    while let Some(row) = rows.next()? {
        if served == limit {
            next = last.take();
            break;
        }
        if served > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut *body, &ConversationRow::read(row)?).map_err(json)?;
        served += 1;
        if served == limit {
            last = Some(ConversationCursor {
                activity_at: row.get(pos)?,
                id: uuid_col(row, 0)?,
                snapshot: match after {
                    Some(cursor) => cursor.snapshot,
                    None => row.get(pos + 1)?,
                },
            });
        }
    }
    body.extend_from_slice(br#"],"nextCursor":"#);
    match next {
        Some(cursor) => serde_json::to_writer(&mut *body, &encode_cursor(&cursor)).map_err(json)?,
        None => body.extend_from_slice(b"null"),
    }
    body.push(b'}');
    Ok(())
}

/// The statement of a list's first page with these filters (its snapshot is column
/// `CONVERSATION_COLUMN_COUNT + 1`).
fn first_page_sql(filter: &ListFilter) -> String {
    let (from, at, id) = filter.source();
    format!(
        "{DEFAULT_READ}
         SELECT {CONVERSATION_COLUMNS}, {at}, {NEWEST_MESSAGE}
         FROM {from}
         WHERE true {LIST_FILTERS}{}
         ORDER BY {at} DESC, {id} DESC
         LIMIT :limit",
        filter.structural_sql()
    )
}

/// The query plan of a list's first page with these filters, its lines joined: what the
/// plan test and the benchmark's report read.
pub fn first_page_plan(conn: &Connection, filter: &ListFilter) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", first_page_sql(filter)))?;
    for i in 1..=stmt.parameter_count() {
        stmt.raw_bind_parameter(i, rusqlite::types::Null)?;
    }
    let mut rows = stmt.raw_query();
    let mut lines = Vec::new();
    while let Some(row) = rows.next()? {
        lines.push(row.get::<_, String>(3)?);
    }
    Ok(lines.join("\n"))
}

/// The bound values of a list statement (each bound only if the statement names it).
struct ListParams {
    viewer: Option<String>,
    name_like: Option<String>,
    digits_like: Option<String>,
    unread: bool,
    limit: u32,
    assignee: Option<String>,
    label: Option<String>,
    after: Option<(i64, String, i64)>,
}

impl ListParams {
    fn bind<'s>(
        &self,
        stmt: &'s mut rusqlite::Statement<'_>,
    ) -> rusqlite::Result<rusqlite::Rows<'s>> {
        let (at, id, snapshot) = match &self.after {
            Some((at, id, snapshot)) => (Some(*at), Some(id.as_str()), Some(*snapshot)),
            None => (None, None, None),
        };
        let all: [(&str, &dyn rusqlite::ToSql); 10] = [
            (":viewer", &self.viewer),
            (":name_like", &self.name_like),
            (":digits_like", &self.digits_like),
            (":unread", &self.unread),
            (":limit", &self.limit),
            (":assignee", &self.assignee),
            (":label", &self.label),
            (":at", &at),
            (":id", &id),
            (":snapshot", &snapshot),
        ];
        let present: Vec<(&str, &dyn rusqlite::ToSql)> = all
            .into_iter()
            .filter(|(name, _)| matches!(stmt.parameter_index(name), Ok(Some(_))))
            .collect();
        stmt.query(present.as_slice())
    }
}

/// The tabs' numbers: conversations per status (with the assignee and label filters) and
/// per assignee filter (with the status and label filters).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ConversationCounts {
    pub status: StatusCounts,
    pub assignee: AssigneeCounts,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusCounts {
    pub open: i64,
    pub pending: i64,
    pub resolved: i64,
    pub snoozed: i64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AssigneeCounts {
    pub me: i64,
    pub unassigned: i64,
    pub all: i64,
}

/// Counts for the tabs: one pass over the assignee index (or the label's links).
pub fn conversation_counts(
    conn: &Connection,
    me: Uuid,
    filter: &ListFilter,
) -> rusqlite::Result<ConversationCounts> {
    // The label's links carry their conversation's status and assignee (tenant V6).
    let source = if filter.label.is_some() {
        "conversation_label WHERE label_id = :label"
    } else {
        "conversation"
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT status, count(*), count(*) FILTER (WHERE assignee_id = :me),
                count(*) FILTER (WHERE assignee_id IS NULL),
                count(*) FILTER (WHERE assignee_id = :assignee)
         FROM {source} GROUP BY status"
    ))?;
    let me_text = me.to_string();
    let assignee = match filter.assignee {
        AssigneeFilter::User(user) => Some(user.to_string()),
        _ => None,
    };
    let label = filter.label.map(|l| l.to_string());
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> =
        vec![(":me", &me_text), (":assignee", &assignee)];
    if filter.label.is_some() {
        params.push((":label", &label));
    }
    let rows = stmt
        .query_map(params.as_slice(), |row| {
            Ok((
                row.get::<_, ConversationStatus>(0)?,
                [row.get::<_, i64>(1)?, row.get(2)?, row.get(3)?, row.get(4)?],
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut counts = ConversationCounts::default();
    let shown = |status: ConversationStatus| {
        filter.statuses.is_empty() || filter.statuses.contains(&status)
    };
    for (status, [all, mine, unassigned, of_user]) in rows {
        let in_assignee_filter = match filter.assignee {
            AssigneeFilter::All => all,
            AssigneeFilter::Unassigned => unassigned,
            AssigneeFilter::User(user) if user == me => mine,
            AssigneeFilter::User(_) => of_user,
        };
        *match status {
            ConversationStatus::Open => &mut counts.status.open,
            ConversationStatus::Pending => &mut counts.status.pending,
            ConversationStatus::Resolved => &mut counts.status.resolved,
            ConversationStatus::Snoozed => &mut counts.status.snoozed,
        } = in_assignee_filter;
        if shown(status) {
            counts.assignee.all += all;
            counts.assignee.me += mine;
            counts.assignee.unassigned += unassigned;
        }
    }
    Ok(counts)
}

/// Splits `limit + 1` rows into a page and the cursor after its last item.
fn page<T, C>(
    mut rows: Vec<(T, i64)>,
    limit: u32,
    cursor: impl Fn(&(T, i64)) -> C,
) -> (Vec<T>, Option<C>) {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(cursor) } else { None };
    (rows.into_iter().map(|(item, _)| item).collect(), next)
}

pub fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The conversation `id`, as `viewer` sees it (with their unread count), or as the whole
/// team does (`None`: no unread count, for events).
pub fn find_conversation(
    conn: &Connection,
    id: Uuid,
    viewer: Option<Viewer>,
) -> rusqlite::Result<Option<Conversation>> {
    conn.prepare_cached(&format!(
        "{DEFAULT_READ} SELECT {CONVERSATION_COLUMNS} FROM {CONVERSATION_FROM}
         WHERE conversation.id = :id"
    ))?
    .query_row(
        named_params! {":viewer": Viewer::param(viewer), ":id": id.to_string()},
        conversation_row,
    )
    .optional()
}

pub fn find_conversation_by_number(
    conn: &Connection,
    number: &str,
) -> rusqlite::Result<Option<Conversation>> {
    conn.prepare_cached(&format!(
        "{DEFAULT_READ} SELECT {CONVERSATION_COLUMNS} FROM {CONVERSATION_FROM}
         WHERE contact_number = :number"
    ))?
    .query_row(
        named_params! {":viewer": None::<String>, ":number": number},
        conversation_row,
    )
    .optional()
}

/// Where a conversation's contact name comes from.
#[derive(Debug, Clone, Copy)]
pub enum ContactName<'a> {
    /// Nothing known.
    Unknown,
    /// WhatsApp's push name: kept as `push_name`, and shown unless the team named the contact.
    Push(&'a str),
    /// Typed by the team when opening the conversation: shown, if it has no name yet.
    Team(&'a str),
}

/// The conversation for `number`, created if there is none; `true` when created.
pub fn upsert_conversation(
    conn: &Connection,
    number: &str,
    name: ContactName<'_>,
    now_ms: i64,
) -> rusqlite::Result<(Conversation, bool)> {
    if let Some(existing) = find_conversation_by_number(conn, number)? {
        let changed = match name {
            ContactName::Push(push) if existing.push_name.as_deref() != Some(push) => conn
                .prepare_cached(
                    "UPDATE conversation SET push_name = ?2,
                         contact_name = CASE WHEN name_edited THEN contact_name ELSE ?2 END
                     WHERE id = ?1",
                )?
                .execute(params![existing.id.to_string(), push])?,
            ContactName::Team(team) if existing.contact_name.is_none() => conn
                .prepare_cached(
                    "UPDATE conversation SET contact_name = ?2, name_edited = 1 WHERE id = ?1",
                )?
                .execute(params![existing.id.to_string(), team])?,
            _ => 0,
        };
        if changed == 0 {
            return Ok((existing, false));
        }
        let updated = find_conversation(conn, existing.id, None)?
            .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
        return Ok((updated, false));
    }
    let id = Uuid::now_v7();
    let (shown, push, edited) = match name {
        ContactName::Unknown => (None, None, false),
        ContactName::Push(push) => (Some(push), Some(push), false),
        ContactName::Team(team) => (Some(team), None, true),
    };
    conn.prepare_cached(
        "INSERT INTO conversation (id, contact_number, contact_name, push_name, name_edited,
             activity_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![id.to_string(), number, shown, push, edited, now_ms])?;
    let created = find_conversation(conn, id, None)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    Ok((created, true))
}

/// Records `message` (just inserted at history position `pos`) as the conversation's
/// latest: preview, time, activity; an incoming one also counts as unread for the tenant and
/// reopens a resolved or snoozed conversation. A private note changes none of this.
/// Returns the conversation as the whole team sees it.
pub fn touch_conversation(
    conn: &Connection,
    message: &Message,
    pos: i64,
) -> rusqlite::Result<Conversation> {
    let id = message.conversation_id;
    if !message.private {
        let at = to_millis(message.created_at);
        let incoming = message.sender == Sender::User;
        let unread = i64::from(incoming && !message.is_read);
        conn.prepare_cached(
            "UPDATE conversation
             SET last_message = ?2, last_message_at = ?3, activity_at = max(activity_at, ?3),
                 unread_count = unread_count + ?4,
                 last_incoming_pos = CASE WHEN ?5 THEN ?6 ELSE last_incoming_pos END,
                 status = CASE WHEN ?5 AND status IN ('resolved', 'snoozed') THEN 'open' ELSE status END,
                 snoozed_until = CASE WHEN ?5 THEN NULL ELSE snoozed_until END
             WHERE id = ?1",
        )?
        .execute(params![
            id.to_string(),
            message.preview(),
            at,
            unread,
            incoming,
            pos
        ])?;
    }
    find_conversation(conn, id, None)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
}

/// Marks every unread incoming message of a conversation read for the tenant (zeroing its
/// contact unread count) and moves `viewer`'s own read position to its newest message.
/// Returns the WhatsApp ids of the messages it marked.
pub fn mark_read(
    conn: &Connection,
    conversation: Uuid,
    viewer: Viewer,
) -> rusqlite::Result<Vec<String>> {
    let id = conversation.to_string();
    let ids = conn
        .prepare_cached(
            "UPDATE message SET is_read = 1
             WHERE conversation_id = ?1 AND sender = 'user' AND is_read = 0
             RETURNING wa_id",
        )?
        .query_map([&id], |row| row.get::<_, Option<String>>(0))?
        .filter_map(Result::transpose)
        .collect::<rusqlite::Result<Vec<_>>>()?;
    conn.prepare_cached("UPDATE conversation SET unread_count = 0 WHERE id = ?1")?
        .execute([&id])?;
    conn.prepare_cached(
        "INSERT INTO read_position (conversation_id, user_id, read_pos)
         SELECT ?1, ?2, coalesce(max(pos), 0) FROM message WHERE conversation_id = ?1
         ON CONFLICT (conversation_id, user_id) DO UPDATE SET read_pos = max(read_pos, excluded.read_pos)",
    )?
    .execute(params![id, viewer.0.to_string()])?;
    Ok(ids)
}

/// Records where a new member's read state starts (the newest message now); a member
/// already known keeps theirs.
pub fn add_member(conn: &Connection, user: Uuid) -> rusqlite::Result<()> {
    conn.prepare_cached(&format!(
        "INSERT INTO member (user_id, read_from) VALUES (?1, {NEWEST_MESSAGE})
         ON CONFLICT (user_id) DO NOTHING"
    ))?
    .execute([user.to_string()])?;
    Ok(())
}

// ---- messages ------------------------------------------------------------------------------

/// Inserts a message; returns its history position (rowid).
pub fn insert_message(conn: &Connection, m: &Message) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO message (id, conversation_id, content, sender, type, status, is_read, wa_id, author_id, created_at, private)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        m.id.to_string(),
        m.conversation_id.to_string(),
        m.content,
        m.sender,
        m.kind,
        m.status,
        m.is_read,
        m.whatsapp_id,
        m.author_id.map(|a| a.to_string()),
        to_millis(m.created_at),
        m.private,
    ])?;
    let pos = conn.last_insert_rowid();
    note_newest_message(conn)?;
    Ok(pos)
}

/// Records the message just inserted on `conn` as the newest (the conversation list's
/// snapshot, `tenant_meta.newest_message`): part of every message insert.
pub fn note_newest_message(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE tenant_meta SET value = ?1 WHERE key = 'newest_message'")?
        .execute([conn.last_insert_rowid()])?;
    Ok(())
}

pub fn wa_id_exists(conn: &Connection, wa_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM message WHERE wa_id = ?1")?
        .exists([wa_id])
}

pub fn find_message(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Message>> {
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM message WHERE id = ?1"
    ))?
    .query_row([id.to_string()], message_row)
    .optional()?
    .map(|(m, _)| with_media(conn, m))
    .transpose()
}

/// A message with its media filled in (see [`media::store::attach`]).
fn with_media(conn: &Connection, mut message: Message) -> rusqlite::Result<Message> {
    media::store::attach(conn, &mut message)?;
    Ok(message)
}

/// One page of a conversation's history, newest first, and the cursor of the next (older) page.
pub fn list_messages(
    conn: &Connection,
    conversation: Uuid,
    before: Option<&MessageCursor>,
    limit: u32,
) -> rusqlite::Result<(Vec<Message>, Option<MessageCursor>)> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM message
             WHERE conversation_id = ?1 AND (?2 IS NULL OR rowid < ?2)
             ORDER BY rowid DESC LIMIT ?3"
        ))?
        .query_map(
            params![conversation.to_string(), before.map(|c| c.0), limit + 1],
            message_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let (mut messages, next) = page(rows, limit, |(_, rowid)| MessageCursor(*rowid));
    media::store::attach_all(conn, &mut messages)?;
    Ok((messages, next))
}

/// A message waiting in the outbox, with the number it goes to.
pub struct Pending {
    pub message: Message,
    pub to: String,
}

/// The oldest pending messages, in the order they were accepted.
pub fn pending(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<Pending>> {
    let mut pending = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS},
                (SELECT contact_number FROM conversation c WHERE c.id = message.conversation_id)
         FROM message WHERE status = 'pending' ORDER BY rowid LIMIT ?1"
        ))?
        .query_map([limit], |row| {
            Ok(Pending {
                message: message_row(row)?.0,
                to: row.get(MESSAGE_COLUMN_COUNT)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    media::store::attach_all(conn, pending.iter_mut().map(|p| &mut p.message))?;
    Ok(pending)
}

/// How many messages are pending (the outbox's depth; read from the partial index of
/// pending messages, so it costs what the queue holds, not what the file holds).
pub fn pending_count(conn: &Connection) -> rusqlite::Result<u64> {
    let count: i64 = conn
        .prepare_cached("SELECT count(*) FROM message WHERE status = 'pending'")?
        .query_row([], |row| row.get(0))?;
    Ok(count.unsigned_abs())
}

/// Moves a pending message to `sent` (with its WhatsApp id) or `failed` (with the reason).
/// Returns the updated message, or `None` if it was no longer pending.
pub fn settle(
    conn: &Connection,
    id: Uuid,
    outcome: Result<&str, &str>,
) -> rusqlite::Result<Option<Message>> {
    let (status, wa_id, error) = match outcome {
        Ok(wa_id) => (Status::Sent, Some(wa_id), None),
        Err(reason) => (Status::Failed, None, Some(reason)),
    };
    conn.prepare_cached(&format!(
        "UPDATE message SET status = ?2, wa_id = ?3, error = ?4
         WHERE id = ?1 AND status = 'pending'
         RETURNING {MESSAGE_COLUMNS}"
    ))?
    .query_row(params![id.to_string(), status, wa_id, error], message_row)
    .optional()?
    .map(|(m, _)| with_media(conn, m))
    .transpose()
}

/// Applies a receipt: moves an outgoing message forward to `delivered` or `read` (never back).
/// Returns the updated message, or `None` if nothing changed.
pub fn apply_receipt(
    conn: &Connection,
    wa_id: &str,
    status: Status,
) -> rusqlite::Result<Option<Message>> {
    let from: &[&str] = match status {
        Status::Delivered => &["sent"],
        Status::Read => &["sent", "delivered"],
        _ => return Ok(None),
    };
    conn.prepare_cached(&format!(
        "UPDATE message SET status = ?2
         WHERE wa_id = ?1 AND sender = 'agent' AND status IN (?3, ?4)
         RETURNING {MESSAGE_COLUMNS}"
    ))?
    .query_row(
        params![
            wa_id,
            status,
            from[0],
            from.get(1).copied().unwrap_or(from[0])
        ],
        message_row,
    )
    .optional()?
    .map(|(m, _)| with_media(conn, m))
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's JSON shape (the API's `Page<Conversation>`).
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ConversationPage {
        items: Vec<Conversation>,
        next_cursor: Option<String>,
    }

    /// A readable cursor text for these tests (the API's codec is `http::paging`'s).
    fn encode(c: &ConversationCursor) -> String {
        format!("{}:{}:{}", c.activity_at, c.id, c.snapshot)
    }

    fn decode(s: &str) -> ConversationCursor {
        let mut parts = s.split(':');
        ConversationCursor {
            activity_at: parts.next().unwrap().parse().unwrap(),
            id: parts.next().unwrap().parse().unwrap(),
            snapshot: parts.next().unwrap().parse().unwrap(),
        }
    }

    /// The page as values, serialized: what `write_conversation_page` must write byte for byte.
    fn page_as_values(
        conn: &Connection,
        viewer: Viewer,
        after: Option<&ConversationCursor>,
        limit: u32,
    ) -> Vec<u8> {
        let mut rows = conn
            .prepare(&format!(
                "{DEFAULT_READ} SELECT {CONVERSATION_COLUMNS}, activity_at FROM {CONVERSATION_FROM}
                 WHERE :at IS NULL OR (activity_at, conversation.id) < (:at, :id)
                 ORDER BY activity_at DESC, conversation.id DESC"
            ))
            .unwrap()
            .query_map(
                named_params! {
                    ":viewer": viewer.0.to_string(),
                    ":at": after.map(|c| c.activity_at),
                    ":id": after.map(|c| c.id.to_string()),
                },
                |row| {
                    Ok((
                        conversation_row(row)?,
                        row.get::<_, i64>(CONVERSATION_COLUMN_COUNT)?,
                    ))
                },
            )
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap();
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = rows.last().filter(|_| more).map(|(c, at)| {
            encode(&ConversationCursor {
                activity_at: *at,
                id: c.id,
                // No message table rows: every snapshot is 0.
                snapshot: 0,
            })
        });
        let items = rows.into_iter().map(|(c, _)| c).collect();
        serde_json::to_vec(&ConversationPage { items, next_cursor }).unwrap()
    }

    fn plan(conn: &Connection, filter: &ListFilter) -> String {
        first_page_plan(conn, filter).unwrap()
    }

    #[test]
    fn every_tab_is_read_in_list_order_from_an_index_without_sorting() {
        let conn = crate::testing::tenant_memory_db();
        let me = Uuid::now_v7();
        for (filter, index) in [
            (ListFilter::default(), "conversation_by_activity"),
            (
                ListFilter {
                    statuses: vec![ConversationStatus::Open, ConversationStatus::Pending],
                    ..ListFilter::default()
                },
                "conversation_by_activity",
            ),
            (
                ListFilter {
                    statuses: vec![ConversationStatus::Open, ConversationStatus::Pending],
                    assignee: AssigneeFilter::User(me),
                    ..ListFilter::default()
                },
                "conversation_by_activity",
            ),
            (
                ListFilter {
                    statuses: vec![ConversationStatus::Resolved],
                    ..ListFilter::default()
                },
                "conversation_by_status",
            ),
            (
                ListFilter {
                    statuses: vec![ConversationStatus::Open],
                    assignee: AssigneeFilter::Unassigned,
                    ..ListFilter::default()
                },
                "conversation_by_assignee",
            ),
            (
                ListFilter {
                    statuses: vec![ConversationStatus::Snoozed],
                    assignee: AssigneeFilter::User(me),
                    ..ListFilter::default()
                },
                "conversation_by_assignee",
            ),
            (
                ListFilter {
                    statuses: vec![ConversationStatus::Open],
                    assignee: AssigneeFilter::User(me),
                    label: Some(Uuid::now_v7()),
                    ..ListFilter::default()
                },
                "conversation_label_exact",
            ),
            (
                ListFilter {
                    statuses: vec![ConversationStatus::Resolved],
                    assignee: AssigneeFilter::Unassigned,
                    label: Some(Uuid::now_v7()),
                    ..ListFilter::default()
                },
                "conversation_label_exact",
            ),
            (
                ListFilter {
                    statuses: vec![ConversationStatus::Open],
                    label: Some(Uuid::now_v7()),
                    ..ListFilter::default()
                },
                "conversation_label_by_activity",
            ),
            (
                ListFilter {
                    statuses: vec![ConversationStatus::Open, ConversationStatus::Pending],
                    assignee: AssigneeFilter::User(me),
                    label: Some(Uuid::now_v7()),
                    ..ListFilter::default()
                },
                "conversation_label_by_activity",
            ),
            (
                ListFilter {
                    label: Some(Uuid::now_v7()),
                    ..ListFilter::default()
                },
                "conversation_label_by_activity",
            ),
        ] {
            let plan = plan(&conn, &filter);
            assert!(plan.contains(index), "{filter:?}: {plan}");
            assert!(
                !plan.contains("TEMP B-TREE FOR ORDER BY"),
                "{filter:?}: {plan}"
            );
            assert!(
                !plan.contains("group_concat(ORDER BY)"),
                "{filter:?}: {plan}"
            );
            assert!(
                plan.contains("USING COVERING INDEX message_incoming"),
                "{plan}"
            );
        }
    }

    #[test]
    fn a_page_written_from_rows_is_the_page_serialized_from_values() {
        let conn = crate::testing::tenant_memory_db();
        let names = [
            None,
            Some("Ana \"Quoted\" \\ back"),
            Some("Łódź 🚀 </script>"),
            Some(""),
        ];
        let previews = [None, Some("line\nbreak\ttab \u{1}"), Some("plain")];
        for i in 0..23_i64 {
            conn.execute(
                "INSERT INTO conversation (id, contact_number, contact_name, last_message,
                     last_message_at, unread_count, activity_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    Uuid::now_v7().to_string(),
                    format!("+62812000{i:04}"),
                    names[i as usize % names.len()],
                    previews[i as usize % previews.len()],
                    (i % 2 == 0).then_some(1_700_000_000_123 + i * 7_919),
                    i % 5,
                    1_700_000_000_000 + (i % 7) * 1000, // ties: ordered by id
                    1_600_000_000_000 - i * 86_400_123,
                ],
            )
            .unwrap();
        }
        // Statuses, assignees, push names, labels and read positions, on some rows.
        conn.execute_batch(
            "INSERT INTO label (id, name, color, created_at) VALUES
                 ('00000000-0000-0000-0000-00000000000a', 'vip', '#ff0000', 0),
                 ('00000000-0000-0000-0000-00000000000b', 'late', '#00ff00', 0);
             UPDATE conversation SET status = 'snoozed', snoozed_until = 1700000009999,
                 assignee_id = '00000000-0000-0000-0000-000000000001', push_name = 'Pu \"sh'
                 WHERE rowid % 3 = 0;
             UPDATE conversation SET last_incoming_pos = 5 WHERE rowid % 4 = 0;
             INSERT INTO conversation_label (conversation_id, label_id) SELECT id, '00000000-0000-0000-0000-00000000000b'
                 FROM conversation WHERE rowid % 2 = 0;
             INSERT INTO conversation_label (conversation_id, label_id) SELECT id, '00000000-0000-0000-0000-00000000000a'
                 FROM conversation WHERE rowid % 5 = 0;",
        )
        .unwrap();
        let viewer = Viewer(Uuid::now_v7());
        for limit in [1, 5, 22, 23, 50] {
            let mut after: Option<ConversationCursor> = None;
            loop {
                let mut written = Vec::new();
                write_conversation_page(
                    &conn,
                    viewer,
                    &ListFilter::default(),
                    after.as_ref(),
                    limit,
                    encode,
                    &mut written,
                )
                .unwrap();
                assert_eq!(
                    String::from_utf8(written.clone()).unwrap(),
                    String::from_utf8(page_as_values(&conn, viewer, after.as_ref(), limit))
                        .unwrap(),
                    "limit {limit}"
                );
                let page: serde_json::Value = serde_json::from_slice(&written).unwrap();
                match page["nextCursor"].as_str() {
                    Some(next) => after = Some(decode(next)),
                    None => break,
                }
            }
        }
    }
}
