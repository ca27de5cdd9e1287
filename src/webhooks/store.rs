//! Webhook endpoints and their delivery log in the tenant's file (tenant migration V7), and
//! the steps of a delivery: what to send next ([`next_work`]) and what came of it
//! ([`record`]), each in one transaction.

use chrono::Utc;
use rand::Rng;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

use super::{Delivery, EndpointState, Webhook, webhook_id};
use crate::chat::{from_millis, to_millis, uuid_col};
use crate::error::ApiError;
use crate::events::{Event, newest_seq, stored_event};
use crate::ids::TenantId;

/// Delivery log entries kept per endpoint (the oldest go first).
pub const LOG_KEPT: i64 = 1_000;
/// The longest delay between retries (ms).
const LONGEST_RETRY_MS: i64 = 3_600_000;

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The first retry's delay (ms); each later one doubles it, to at most an hour, ±20 %.
    pub first_ms: i64,
    /// How long an endpoint may fail before it is disabled (ms).
    pub window_ms: i64,
}

impl RetryPolicy {
    /// The delay after failed attempt `attempt` (1, 2, …).
    pub fn delay_ms(self, attempt: i64) -> i64 {
        let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let base = self
            .first_ms
            .saturating_mul(1 << doublings)
            .min(LONGEST_RETRY_MS);
        let jitter = rand::rng().random_range(0.8..1.2);
        (base as f64 * jitter) as i64
    }
}

const COLUMNS: &str = "id, url, events, enabled, description, disabled_reason, cursor, attempt, \
     failing_since, next_attempt_at, previous_until, created_at";

fn webhook_row(row: &Row<'_>) -> rusqlite::Result<Webhook> {
    let events: String = row.get(2)?;
    let enabled: bool = row.get(3)?;
    let attempt: i64 = row.get(7)?;
    let now = to_millis(Utc::now());
    Ok(Webhook {
        id: uuid_col(row, 0)?,
        url: row.get(1)?,
        events: events.split(' ').map(str::to_owned).collect(),
        enabled,
        description: row.get(4)?,
        state: match (enabled, attempt) {
            (false, _) => EndpointState::Disabled,
            (true, 0) => EndpointState::Active,
            (true, _) => EndpointState::Failing,
        },
        disabled_reason: row.get(5)?,
        cursor: row.get(6)?,
        failing_since: row.get::<_, Option<i64>>(8)?.map(from_millis),
        next_attempt_at: row.get::<_, Option<i64>>(9)?.map(from_millis),
        previous_secret_expires_at: row
            .get::<_, Option<i64>>(10)?
            .filter(|&until| until > now)
            .map(from_millis),
        created_at: from_millis(row.get(11)?),
    })
}

/// The oldest seq still in the log.
fn oldest_seq(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT min(seq) FROM event")?
        .query_row([], |row| row.get(0))
}

pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT count(*) FROM webhook_endpoint")?
        .query_row([], |row| row.get(0))
}

/// A new endpoint; it receives the events after the newest one now.
pub fn create(
    conn: &Connection,
    url: &str,
    events: &str,
    description: &str,
    enabled: bool,
    secret: &str,
) -> rusqlite::Result<Webhook> {
    let cursor = newest_seq(conn)?;
    conn.prepare_cached(&format!(
        "INSERT INTO webhook_endpoint (id, url, events, description, enabled, secret, cursor,
             created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING {COLUMNS}"
    ))?
    .query_row(
        params![
            Uuid::now_v7().to_string(),
            url,
            events,
            description,
            enabled,
            secret,
            cursor,
            to_millis(Utc::now())
        ],
        webhook_row,
    )
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Webhook>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoint ORDER BY created_at, id"
    ))?
    .query_map([], webhook_row)?
    .collect()
}

pub fn get(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Webhook>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhook_endpoint WHERE id = ?1"
    ))?
    .query_row([id.to_string()], webhook_row)
    .optional()
}

/// The ids of the endpoints that deliver.
pub fn enabled(conn: &Connection) -> rusqlite::Result<Vec<Uuid>> {
    conn.prepare_cached("SELECT id FROM webhook_endpoint WHERE enabled ORDER BY id")?
        .query_map([], |row| uuid_col(row, 0))?
        .collect()
}

/// A change to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Patch {
    pub url: Option<String>,
    pub events: Option<String>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

/// Applies `patch`; enabling a disabled endpoint starts its retries afresh from its cursor.
pub fn update(conn: &Connection, id: Uuid, patch: &Patch) -> rusqlite::Result<Option<Webhook>> {
    conn.prepare_cached(&format!(
        "UPDATE webhook_endpoint SET
             url = coalesce(?2, url), events = coalesce(?3, events),
             description = coalesce(?5, description),
             attempt = CASE WHEN ?4 = 1 AND NOT enabled THEN 0 ELSE attempt END,
             failing_since = CASE WHEN ?4 = 1 AND NOT enabled THEN NULL ELSE failing_since END,
             next_attempt_at = CASE WHEN ?4 = 1 AND NOT enabled THEN NULL ELSE next_attempt_at END,
             disabled_reason = CASE WHEN ?4 = 1 THEN NULL ELSE disabled_reason END,
             enabled = coalesce(?4, enabled)
         WHERE id = ?1 RETURNING {COLUMNS}"
    ))?
    .query_row(
        params![
            id.to_string(),
            patch.url,
            patch.events,
            patch.enabled,
            patch.description
        ],
        webhook_row,
    )
    .optional()
}

pub fn delete(conn: &Connection, id: Uuid) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM webhook_endpoint WHERE id = ?1")?
        .execute([id.to_string()])?
        > 0)
}

/// A new secret; the current one keeps signing until `overlap_until` (Unix ms).
pub fn rotate(
    conn: &Connection,
    id: Uuid,
    secret: &str,
    overlap_until: i64,
) -> rusqlite::Result<Option<Webhook>> {
    conn.prepare_cached(&format!(
        "UPDATE webhook_endpoint SET previous_secret = secret, previous_until = ?3, secret = ?2
         WHERE id = ?1 RETURNING {COLUMNS}"
    ))?
    .query_row(params![id.to_string(), secret, overlap_until], webhook_row)
    .optional()
}

/// The secrets that sign a delivery now: the current one, and the previous one during its
/// overlap.
#[derive(Debug, Clone)]
pub struct Secrets {
    pub current: String,
    pub previous: Option<String>,
}

pub fn secrets(conn: &Connection, id: Uuid) -> rusqlite::Result<Option<Secrets>> {
    conn.prepare_cached(
        "SELECT secret, CASE WHEN previous_until > ?2 THEN previous_secret END
         FROM webhook_endpoint WHERE id = ?1",
    )?
    .query_row(params![id.to_string(), to_millis(Utc::now())], |row| {
        Ok(Secrets {
            current: row.get(0)?,
            previous: row.get(1)?,
        })
    })
    .optional()
}

/// The endpoint's delivery log, newest first, before entry `before`; `limit + 1` rows (the
/// caller pages them).
pub fn deliveries(
    conn: &Connection,
    id: Uuid,
    before: Option<i64>,
    limit: u32,
) -> rusqlite::Result<Vec<Delivery>> {
    conn.prepare_cached(
        "SELECT id, seq, event_type, webhook_id, attempt, status_code, latency_ms,
                response_excerpt, error, replay, created_at
         FROM webhook_delivery WHERE endpoint_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    )?
    .query_map(
        params![id.to_string(), before.unwrap_or(i64::MAX), limit + 1],
        |row| {
            Ok(Delivery {
                id: row.get(0)?,
                seq: row.get(1)?,
                event_type: row.get(2)?,
                webhook_id: row.get(3)?,
                attempt: row.get(4)?,
                status_code: row.get(5)?,
                latency_ms: row.get(6)?,
                response_excerpt: row.get(7)?,
                error: row.get(8)?,
                replay: row.get(9)?,
                created_at: from_millis(row.get(10)?),
            })
        },
    )?
    .collect()
}

/// Schedules a replay of `from..=to` (`to` defaulting to the newest event), which must lie
/// inside the log as it is now; answers the range.
pub fn replay(
    conn: &Connection,
    id: Uuid,
    from: i64,
    to: Option<i64>,
) -> Result<Option<(i64, i64)>, ApiError> {
    if get(conn, id)?.is_none() {
        return Ok(None);
    }
    let newest = newest_seq(conn)?;
    let oldest = oldest_seq(conn)?;
    let to = to.unwrap_or(newest);
    let Some(oldest) = oldest else {
        return Err(ApiError::validation(
            "fromSeq: the event log is empty; there is nothing to replay",
        ));
    };
    if from < oldest || from > newest {
        return Err(ApiError::validation(format!(
            "fromSeq must be within the log, {oldest}..={newest}"
        )));
    }
    if to < from || to > newest {
        return Err(ApiError::validation(format!(
            "toSeq must be within fromSeq..={newest}"
        )));
    }
    conn.prepare_cached(
        "UPDATE webhook_endpoint SET replay_next = ?2, replay_to = ?3,
             attempt = 0, failing_since = NULL, next_attempt_at = NULL
         WHERE id = ?1",
    )?
    .execute(params![id.to_string(), from, to])?;
    Ok(Some((from, to)))
}

/// What an endpoint's delivery task does next.
#[derive(Debug)]
pub enum Work {
    /// The endpoint was deleted or disabled: the task ends.
    Stop,
    /// Retrying: not before this time (Unix ms).
    WaitUntil(i64),
    /// Nothing to send until the next commit.
    Idle,
    Send(Pending),
}

/// An event to POST to an endpoint.
#[derive(Debug, Clone)]
pub struct Pending {
    pub endpoint: Uuid,
    pub url: String,
    pub seq: i64,
    pub event_type: String,
    pub webhook_id: String,
    /// The request body.
    pub body: Vec<u8>,
    /// 1 for the first try.
    pub attempt: i64,
    pub replay: bool,
    pub secrets: Secrets,
}

/// The endpoint's next step, inside the caller's write transaction: records a gap if the
/// events after its cursor were pruned, skips what it does not want, and picks the replay's
/// next event before new ones.
pub fn next_work(conn: &Connection, tenant: TenantId, id: Uuid) -> Result<Work, ApiError> {
    let endpoint = conn
        .prepare_cached(
            "SELECT enabled, cursor, events, url, attempt, next_attempt_at, replay_next,
                    replay_to
             FROM webhook_endpoint WHERE id = ?1",
        )?
        .query_row([id.to_string()], |row| {
            Ok((
                row.get::<_, bool>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, Option<i64>>(5)?,
                row.get::<_, Option<i64>>(6)?,
                row.get::<_, Option<i64>>(7)?,
            ))
        })
        .optional()?;
    let Some((enabled, cursor, events, url, attempt, next_attempt, replay_next, replay_to)) =
        endpoint
    else {
        return Ok(Work::Stop);
    };
    if !enabled {
        return Ok(Work::Stop);
    }
    let now = to_millis(Utc::now());
    if let Some(at) = next_attempt.filter(|&at| at > now) {
        return Ok(Work::WaitUntil(at));
    }
    let newest = newest_seq(conn)?;
    let oldest = oldest_seq(conn)?;
    // Events after the cursor that the log no longer has (past the backlog cap).
    let kept_from = oldest.unwrap_or(newest + 1);
    if cursor < newest && kept_from > cursor + 1 {
        let (from, to) = (cursor + 1, kept_from - 1);
        log(
            conn,
            id,
            None,
            "gap",
            &format!("gap_{}_{from}_{to}", id.simple()),
            0,
            &Outcome {
                error: Some(format!(
                    "events {from}–{to} were pruned before delivery (the backlog cap)"
                )),
                ..Outcome::default()
            },
            false,
        )?;
        conn.prepare_cached("UPDATE webhook_endpoint SET cursor = ?2 WHERE id = ?1")?
            .execute(params![id.to_string(), to])?;
        return next_work(conn, tenant, id);
    }
    if let (Some(next), Some(to)) = (replay_next, replay_to) {
        if let Some(event) = next_event(conn, &events, next - 1, to)? {
            return pending(conn, tenant, id, url, event, attempt, true);
        }
        conn.prepare_cached(
            "UPDATE webhook_endpoint SET replay_next = NULL, replay_to = NULL WHERE id = ?1",
        )?
        .execute([id.to_string()])?;
    }
    match next_event(conn, &events, cursor, newest)? {
        Some(event) => pending(conn, tenant, id, url, event, attempt, false),
        None => {
            if newest > cursor {
                // Nothing it wants until the newest: skip past it at once.
                conn.prepare_cached("UPDATE webhook_endpoint SET cursor = ?2 WHERE id = ?1")?
                    .execute(params![id.to_string(), newest])?;
            }
            Ok(Work::Idle)
        }
    }
}

/// The first event after `after`, up to `to`, that an endpoint wanting `events` receives:
/// the team's (and mentions), never the QR code.
fn next_event(
    conn: &Connection,
    events: &str,
    after: i64,
    to: i64,
) -> rusqlite::Result<Option<Event>> {
    conn.prepare_cached(
        "SELECT seq, type, payload, created_at, audience FROM event
         WHERE seq > ?1 AND seq <= ?2 AND type <> 'qr'
           AND (audience IS NULL OR type = 'mention')
           AND (?3 = '*' OR instr(' ' || ?3 || ' ', ' ' || type || ' ') > 0)
         ORDER BY seq LIMIT 1",
    )?
    .query_row(params![after, to, events], stored_event)
    .optional()
}

fn pending(
    conn: &Connection,
    tenant: TenantId,
    id: Uuid,
    url: String,
    event: Event,
    attempt: i64,
    replay: bool,
) -> Result<Work, ApiError> {
    let secrets = secrets(conn, id)?.ok_or_else(|| ApiError::not_found("webhook"))?;
    let body = serde_json::to_vec(&serde_json::json!({
        "type": event.kind.as_str(),
        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "tenantId": tenant,
        "data": event,
    }))
    .map_err(|e| ApiError::internal("serialize webhook event", e))?;
    Ok(Work::Send(Pending {
        endpoint: id,
        url,
        seq: event.seq,
        event_type: event.kind.as_str().to_owned(),
        webhook_id: webhook_id(id, event.seq),
        body,
        attempt: attempt + 1,
        replay,
        secrets,
    }))
}

/// How one POST went.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub excerpt: Option<String>,
    pub error: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Records an attempt, inside the caller's write transaction: on success the cursor (or the
/// replay) moves past the event; on failure the next attempt is scheduled, and an endpoint
/// failing for longer than the policy's window is disabled. Answers whether it was disabled.
pub fn record(
    conn: &Connection,
    pending: &Pending,
    outcome: &Outcome,
    retry: RetryPolicy,
) -> rusqlite::Result<bool> {
    let retry_window_ms = retry.window_ms;
    let id = pending.endpoint.to_string();
    let failing_since: Option<Option<i64>> = conn
        .prepare_cached("SELECT failing_since FROM webhook_endpoint WHERE id = ?1")?
        .query_row([&id], |row| row.get(0))
        .optional()?;
    let Some(failing_since) = failing_since else {
        return Ok(false); // deleted meanwhile
    };
    log(
        conn,
        pending.endpoint,
        Some(pending.seq),
        &pending.event_type,
        &pending.webhook_id,
        pending.attempt,
        outcome,
        pending.replay,
    )?;
    let now = to_millis(Utc::now());
    if outcome.ok() {
        let sql = if pending.replay {
            "UPDATE webhook_endpoint SET
                 replay_next = CASE WHEN ?2 + 1 > replay_to THEN NULL ELSE ?2 + 1 END,
                 replay_to = CASE WHEN ?2 + 1 > replay_to THEN NULL ELSE replay_to END,
                 attempt = 0, failing_since = NULL, next_attempt_at = NULL
             WHERE id = ?1"
        } else {
            "UPDATE webhook_endpoint SET cursor = max(cursor, ?2),
                 attempt = 0, failing_since = NULL, next_attempt_at = NULL
             WHERE id = ?1"
        };
        conn.prepare_cached(sql)?
            .execute(params![id, pending.seq])?;
        return Ok(false);
    }
    let since = failing_since.unwrap_or(now);
    if now - since >= retry_window_ms {
        let reason = format!(
            "disabled after failing for {} h; last error: {}",
            retry_window_ms / 3_600_000,
            outcome.describe()
        );
        conn.prepare_cached(
            "UPDATE webhook_endpoint SET enabled = 0, disabled_reason = ?2,
                 attempt = attempt + 1, failing_since = ?3, next_attempt_at = NULL
             WHERE id = ?1",
        )?
        .execute(params![id, reason, since])?;
        return Ok(true);
    }
    let delay = retry.delay_ms(pending.attempt);
    conn.prepare_cached(
        "UPDATE webhook_endpoint SET attempt = ?2, failing_since = ?3, next_attempt_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![id, pending.attempt, since, now + delay])?;
    Ok(false)
}

impl Outcome {
    fn describe(&self) -> String {
        match (&self.error, self.status_code) {
            (Some(error), _) => error.clone(),
            (None, Some(status)) => format!("answered {status}"),
            (None, None) => "no answer".to_owned(),
        }
    }
}

/// Records a test delivery (not in the event log).
pub fn record_test(
    conn: &Connection,
    id: Uuid,
    webhook_id: &str,
    outcome: &Outcome,
) -> rusqlite::Result<Option<Delivery>> {
    if get(conn, id)?.is_none() {
        return Ok(None);
    }
    let entry = log(
        conn,
        id,
        None,
        "webhook.test",
        webhook_id,
        1,
        outcome,
        false,
    )?;
    Ok(deliveries(conn, id, Some(entry + 1), 0)?.into_iter().next())
}

/// Appends a delivery log entry and keeps the endpoint's newest [`LOG_KEPT`]; its id.
#[allow(clippy::too_many_arguments)]
fn log(
    conn: &Connection,
    endpoint: Uuid,
    seq: Option<i64>,
    event_type: &str,
    webhook_id: &str,
    attempt: i64,
    outcome: &Outcome,
    replay: bool,
) -> rusqlite::Result<i64> {
    let endpoint = endpoint.to_string();
    let entry: i64 = conn
        .prepare_cached(
            "INSERT INTO webhook_delivery (endpoint_id, seq, event_type, webhook_id, attempt,
                 status_code, latency_ms, response_excerpt, error, replay, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING id",
        )?
        .query_row(
            params![
                endpoint,
                seq,
                event_type,
                webhook_id,
                attempt,
                outcome.status_code,
                outcome.latency_ms,
                outcome.excerpt,
                outcome.error,
                replay,
                to_millis(Utc::now())
            ],
            |row| row.get(0),
        )?;
    conn.prepare_cached(
        "DELETE FROM webhook_delivery WHERE endpoint_id = ?1 AND id <= coalesce(
             (SELECT id FROM webhook_delivery WHERE endpoint_id = ?1
              ORDER BY id DESC LIMIT 1 OFFSET ?2), -1)",
    )?
    .execute(params![endpoint, LOG_KEPT])?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_5_s_doubling_to_an_hour_with_jitter() {
        let policy = RetryPolicy {
            first_ms: 5_000,
            window_ms: 86_400_000,
        };
        for (attempt, base) in [(1, 5_000), (2, 10_000), (3, 20_000), (12, 3_600_000)] {
            for _ in 0..20 {
                let delay = policy.delay_ms(attempt);
                assert!(
                    (base * 8 / 10..=base * 12 / 10).contains(&delay),
                    "attempt {attempt}: {delay}"
                );
            }
        }
        assert!(policy.delay_ms(1_000) <= 3_600_000 * 12 / 10);
    }
}
