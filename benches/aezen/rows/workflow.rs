//! Rows 13 and 14, the team workflow's budgets (issue 16), on a server child serving one
//! tenant of `scale.workflow_messages` messages in `scale.workflow_conversations`
//! conversations (1,000,000 in 50,000; 100,000 in 5,000 with `--quick`): full-text search,
//! `GET /api/search?q=<one word>`, for words of different frequencies (row 13), and the
//! conversation list with status + assignee + label filters against the unfiltered list
//! (row 14).
//!
//! The tenant, its five agents and its labels are made through the product (the bench's
//! sign-up, `POST /api/team`, `POST /api/labels`, in process); its conversations and messages
//! are then written straight into its file with rusqlite, [`BATCH`] rows a transaction,
//! before the server child starts. That is faster than the ingest path (each message its own
//! event, triggers and a few messages a transaction), sets the statuses, assignees, labels
//! and read positions the rows need without an HTTP call each, and lets the FTS index's pages
//! be counted on their own. What the ingest path keeps in step is kept here, from the same
//! messages: each conversation's preview, activity,
//! tenant-wide unread count and last incoming position, `tenant_meta.newest_message`
//! (`aezen::bench::note_newest_message`), and the FTS index, which FTS5's `rebuild` makes
//! once the rows are in. The product's three FTS triggers are set aside meanwhile and put
//! back as they were, so the index's pages can be counted on their own (`PRAGMA page_count`
//! before and after the `rebuild`). The event log is left empty: the product prunes it, so
//! a tenant's file is mostly its messages and their indexes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aezen::bench::{FileLock, note_newest_message, open_tenant_file};
use anyhow::{Context, bail};
use chrono::Utc;
use reqwest::StatusCode;
use rusqlite::{Connection, params};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::children::{Proc, bench_config, wait_healthy};
use crate::load::{Load, Side, get_json, interleaved_all, load, percentile_ms, post_json};
use crate::report::{Report, describe_load, log_detail, mib, ms, per_sec, ratio, step};
use crate::seed::{Account, InProcess, contact_number, create_tenants};
use crate::{Options, Scale};

/// Rows written per seeding transaction.
const BATCH: usize = 20_000;
/// Agents of the tenant besides its owner; 30 % of conversations are unassigned, the rest
/// spread evenly over them.
const AGENTS: usize = 5;
/// The tenant's labels: name, colour, and weight among the labels drawn for the 30 % of
/// conversations that have any (one label, or two for a third of them).
const LABELS: [(&str, &str, u32); 6] = [
    ("vip", "#d4a017", 30),
    ("wholesale", "#1e88e5", 25),
    ("complaint", "#e53935", 15),
    ("follow-up", "#8e24aa", 12),
    ("new customer", "#43a047", 10),
    ("refund requested", "#fb8c00", 8),
];
/// Row 14's aim: the filtered list's throughput ≥ this × the unfiltered list's.
const FILTER_AIM: f64 = 0.80;
/// Row 13's budget: p99 of a one-word search, one request at a time (ms).
const SEARCH_P99_MS: f64 = 20.0;
/// Each search phase (one connection, then the load's connections) runs at least this
/// many requests, at most this long.
const MIN_REQUESTS: u64 = 200;
const MAX_PHASE: Duration = Duration::from_secs(15);
/// Results per search page: the product's default.
const SEARCH_LIMIT: u32 = 20;

/// The one-word queries of row 13, quoted as the web inbox quotes what a person types.
const QUERIES: [&str; 7] = [
    "order",
    "refund",
    "warranty",
    "tangerine",
    "доставка",
    "blueberry",
    "订单",
];

/// Rows 13 and 14.
pub(crate) async fn workflow_rows(
    options: &Options,
    scale: &Scale,
    tmp: &Path,
    http: &reqwest::Client,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (n_msgs, n_conv) = (scale.workflow_messages, scale.workflow_conversations);
    step(&format!(
        "rows 13-14: one tenant of {n_msgs} messages in {n_conv} conversations (written into its file)"
    ));
    let root = tmp.join("workflow");
    let started = Instant::now();
    let team = make_team(&root, http).await?;
    let file = tenant_file(&root)?;
    let seeded = {
        let (file, team) = (file.clone(), team.clone());
        tokio::task::spawn_blocking(move || seed_file(&file, &team, n_msgs, n_conv)).await??
    };
    report.detail(format!(
        "rows 13-14 set-up: tenant, {AGENTS} agents and {} labels through the product in {:.1} s; \
         {n_conv} conversations, {n_msgs} messages ({} of them private notes; {:.0} bytes of \
         text on average) and {} read positions written in transactions of {BATCH} rows in \
         {:.1} s, the FTS index rebuilt in {:.1} s; {:.1} s in all",
        LABELS.len(),
        team.took.as_secs_f64(),
        seeded.notes,
        seeded.text_bytes as f64 / n_msgs as f64,
        seeded.read_positions,
        seeded.rows_took.as_secs_f64(),
        seeded.fts_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ));
    report.line(
        "13",
        format!("set-up: {n_msgs} messages in {n_conv} conversations of one tenant, written into its file"),
        format!("{:.0} s", started.elapsed().as_secs_f64()),
        format!(
            "rows {:.0} s, FTS rebuild {:.0} s",
            seeded.rows_took.as_secs_f64(),
            seeded.fts_took.as_secs_f64()
        ),
        "—",
        "(report)",
        None,
    );

    // Without the server: the index's size, its own lookup time, and the list's plans.
    let lookups = {
        let (file, words, team) = (file.clone(), seeded.hits.clone(), team.clone());
        let phase = scale.measure / 5;
        tokio::task::spawn_blocking(move || bare_lookups(&file, &team, &words, phase)).await??
    };
    let fts = &seeded.size;
    let fts_pages = fts.with_index.saturating_sub(fts.without_index);
    report.line(
        "13",
        "… the FTS index's share of the tenant file (`PRAGMA page_count` before and after FTS5's `rebuild`)",
        format!(
            "{} of {} ({:.1} %)",
            mib(fts_pages * fts.page_size / 1024),
            mib(fts.with_index * fts.page_size / 1024),
            100.0 * fts_pages as f64 / fts.with_index as f64
        ),
        format!(
            "{} without the index",
            mib(fts.without_index * fts.page_size / 1024)
        ),
        format!(
            "+{:.0} %",
            100.0 * fts_pages as f64 / fts.without_index as f64
        ),
        "(report)",
        None,
    );
    report.detail(format!(
        "row 13 file: {} pages of {} bytes with the index ({} free), {} before the rebuild ({} \
         free), {} on disk after a checkpoint; of the index, message_fts_data holds {} in {} \
         blocks and message_fts_docsize {} in {} rows (payload bytes, `length()`); {} of message \
         text in all",
        fts.with_index,
        fts.page_size,
        fts.free_with,
        fts.without_index,
        fts.free_without,
        mib(fts.on_disk / 1024),
        mib(fts.data_bytes / 1024),
        fts.data_blocks,
        mib(fts.docsize_bytes / 1024),
        fts.docsize_rows,
        mib(seeded.text_bytes / 1024)
    ));
    report.detail(format!(
        "row 13 hits (messages written that hold the word / found by the index or `LIKE`): {}",
        seeded
            .hits
            .iter()
            .zip(&lookups.found)
            .map(|((word, written), (_, found))| format!("{word} {written} / {found}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if seeded
        .hits
        .iter()
        .zip(&lookups.found)
        .any(|((_, w), (_, f))| w != f)
    {
        bail!("row 13: the index does not find what was written");
    }
    for (label, plan) in &lookups.plans {
        report.detail(format!("row 14 plan, {label}: {plan}"));
    }

    let server = spawn_server(tmp, &root)?;
    wait_healthy(http, &server.addr, Duration::from_secs(30)).await?;
    let token = Arc::clone(&team.owner.token);

    if options.wants(13) {
        search_row(scale, http, &server, &token, &seeded, &lookups, report).await?;
    }
    if options.wants(14) {
        list_row(scale, http, &server, &token, &team, &seeded, report).await?;
    }
    let (rss, hwm) = server.memory();
    report.detail(format!(
        "rows 13-14 server at the end: RSS {} (peak {}), {} open files, {} threads",
        mib(rss),
        mib(hwm),
        server.open_files(),
        server.threads()
    ));
    let log = server.stop();
    log_detail(report, "rows 13-14 server", &log);
    Ok(())
}

/// Row 13: each query one request at a time, then under `scale.concurrency` connections.
async fn search_row(
    scale: &Scale,
    http: &reqwest::Client,
    server: &Proc,
    token: &Arc<str>,
    seeded: &Seeded,
    lookups: &Lookups,
    report: &mut Report,
) -> anyhow::Result<()> {
    step("row 13: GET /api/search?q=<one word>");
    let phase = scale.measure / 5;
    let mut throughputs = Vec::new();
    for (word, hits) in &seeded.hits {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/search", server.addr),
            &[("q", format!("\"{word}\""))],
        )?;
        let first = http.get(url.clone()).bearer_auth(&**token).send().await?;
        let status = first.status();
        let body: Value = first.json().await?;
        if status != StatusCode::OK {
            bail!("row 13: search for {word}: {status} {body}");
        }
        let served = body["items"].as_array().map_or(0, Vec::len);
        let side = Side {
            expect: StatusCode::OK,
            pid: Some(server.pid),
            make: Arc::new({
                let token = Arc::clone(token);
                move |c: &reqwest::Client, _: u64| c.get(url.clone()).bearer_auth(&*token)
            }),
        };
        load(http, 1, scale.warmup / 4, &side).await;
        let alone = at_least(http, 1, phase, &side).await;
        let loaded = at_least(http, scale.concurrency, phase, &side).await;
        let share = 100.0 * *hits as f64 / seeded.messages as f64;
        let how = if Query::of(word) == Query::Short {
            "fewer than 3 characters: a `LIKE` scan, newest first"
        } else {
            frequency(share)
        };
        let bare = &lookups.latencies[word];
        report.line(
            "13",
            format!(
                "`GET /api/search?q=\"{word}\"` ({how}: {hits} messages, {share:.2} %), one request \
                 at a time: p50 / p99"
            ),
            format!("{} / {}", ms(alone.p(0.5)), ms(alone.p(0.99))),
            format!(
                "{} / {} ({} alone, this process)",
                ms(percentile_ms(bare, 0.5)),
                ms(percentile_ms(bare, 0.99)),
                if Query::of(word) == Query::Short {
                    "the `LIKE` scan"
                } else {
                    "the FTS5 lookup"
                }
            ),
            ratio(alone.p(0.99), percentile_ms(bare, 0.99)),
            format!("≤ {SEARCH_P99_MS:.0} ms"),
            Some(alone.p(0.99) <= SEARCH_P99_MS && alone.errors == 0),
        );
        describe_load(
            report,
            &format!("row 13 \"{word}\" ({served} hits on the first page), one at a time"),
            &alone,
        );
        describe_load(
            report,
            &format!("row 13 \"{word}\", {} connections", scale.concurrency),
            &loaded,
        );
        throughputs.push(format!(
            "{word} {} (p99 {})",
            per_sec(loaded.rate()),
            ms(loaded.p(0.99))
        ));
    }
    report.line(
        "13",
        format!(
            "… throughput with {} connections, per query",
            scale.concurrency
        ),
        throughputs.join("; "),
        "—",
        "—",
        "(report)",
        None,
    );
    Ok(())
}

/// Runs `side` with `concurrency` connections for `phase`, and on until it has
/// [`MIN_REQUESTS`] or [`MAX_PHASE`] has passed.
async fn at_least(
    http: &reqwest::Client,
    concurrency: usize,
    phase: Duration,
    side: &Side,
) -> Load {
    let started = Instant::now();
    let mut total = load(http, concurrency, phase, side).await;
    while total.ok + total.errors < MIN_REQUESTS && started.elapsed() < MAX_PHASE {
        total.absorb(load(http, concurrency, phase / 4, side).await);
    }
    total
}

/// How common a word is, by the share of messages that hold it.
fn frequency(share: f64) -> &'static str {
    match share {
        s if s >= 5.0 => "very common",
        s if s >= 0.5 => "common",
        s if s >= 0.05 => "medium",
        s if s > 0.0 => "rare",
        _ => "absent",
    }
}

/// Row 14: the first page of the list, unfiltered, by default, and filtered, side by side.
async fn list_row(
    scale: &Scale,
    http: &reqwest::Client,
    server: &Proc,
    token: &Arc<str>,
    team: &Team,
    seeded: &Seeded,
    report: &mut Report,
) -> anyhow::Result<()> {
    step("row 14: GET /api/conversations, unfiltered and filtered");
    let (agent, label) = (team.agents[0], team.labels[0]);
    let queries = [
        ("status=all".to_owned(), seeded.conversations),
        (String::new(), seeded.filtered.open_or_pending),
        (
            format!("status=open&assignee={agent}"),
            seeded.filtered.open_assigned,
        ),
        (
            format!("status=open&assignee={agent}&label={label}"),
            seeded.filtered.open_assigned_labelled,
        ),
    ];
    let mut sides = Vec::new();
    for (query, matching) in &queries {
        let url = format!("{}/api/conversations?limit=50&{query}", server.addr);
        let page: Value = http
            .get(&url)
            .bearer_auth(&**token)
            .send()
            .await?
            .json()
            .await?;
        let items = page["items"].as_array().map_or(0, Vec::len);
        if items == 0 {
            bail!("row 14: {url} served no conversation: {page}");
        }
        report.detail(format!(
            "row 14 `{}`: {matching} conversations match, the page has {items} ({} bytes)",
            list_query(query),
            page.to_string().len()
        ));
        let token = Arc::clone(token);
        sides.push(Side {
            expect: StatusCode::OK,
            pid: Some(server.pid),
            make: Arc::new(move |c: &reqwest::Client, _: u64| c.get(&url).bearer_auth(&*token)),
        });
    }
    let loads = interleaved_all(http, scale, &sides).await;
    let [all, default, assigned, filtered] = &loads[..] else {
        bail!("row 14: expected four loads");
    };
    let cpu = Load::server_cpu_per_request;
    let r = filtered.rate() / all.rate();
    report.line(
        "14",
        format!(
            "list of {} conversations, 64 conn., `{}` (labels on 30 %): throughput",
            seeded.conversations,
            list_query(&queries[3].0)
        ),
        per_sec(filtered.rate()),
        format!("{} (`status=all`, unfiltered)", per_sec(all.rate())),
        ratio(filtered.rate(), all.rate()),
        format!("≥ {FILTER_AIM:.2}×"),
        Some(r >= FILTER_AIM && filtered.errors == 0),
    );
    report.line(
        "14",
        "… the same against the default list (`status=open,pending`)",
        per_sec(filtered.rate()),
        format!("{} (default)", per_sec(default.rate())),
        ratio(filtered.rate(), default.rate()),
        format!("≥ {FILTER_AIM:.2}×"),
        Some(filtered.rate() / default.rate() >= FILTER_AIM),
    );
    report.line(
        "14",
        "… `status=open&assignee=<agent>` (no label)",
        per_sec(assigned.rate()),
        format!("{} (`status=all`)", per_sec(all.rate())),
        ratio(assigned.rate(), all.rate()),
        "(info)",
        None,
    );
    report.line(
        "14",
        "… server CPU per request: filtered / `status=all` / default / assignee only",
        format!("{:.0} µs", cpu(filtered)),
        format!(
            "{:.0} / {:.0} / {:.0} µs",
            cpu(all),
            cpu(default),
            cpu(assigned)
        ),
        ratio(cpu(filtered), cpu(all)),
        "—",
        None,
    );
    report.line(
        "14",
        "… p99 latency filtered / `status=all`; errors",
        format!("{}; {}", ms(filtered.p(0.99)), filtered.errors),
        format!("{}; {}", ms(all.p(0.99)), all.errors),
        ratio(filtered.p(0.99), all.p(0.99)),
        "0 errors",
        Some(loads.iter().all(|l| l.errors == 0)),
    );
    for ((query, _), l) in queries.iter().zip(&loads) {
        describe_load(report, &format!("row 14 `{}`", list_query(query)), l);
    }
    Ok(())
}

/// A list query as the table shows it (ids left out).
fn list_query(query: &str) -> String {
    if query.is_empty() {
        return "(default: status=open,pending)".to_owned();
    }
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name @ ("assignee" | "label"), _)) => format!("{name}=<{name}>"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

// ---- set-up ------------------------------------------------------------------------------

/// The tenant's people and labels, made through the product.
#[derive(Clone)]
struct Team {
    owner: Account,
    owner_id: Uuid,
    agents: Vec<Uuid>,
    labels: Vec<Uuid>,
    took: Duration,
}

/// Signs the tenant up in process, then adds its agents (`POST /api/team`) and labels
/// (`POST /api/labels`) over HTTP to that process, and stops it.
async fn make_team(root: &Path, http: &reqwest::Client) -> anyhow::Result<Team> {
    let t = Instant::now();
    let app = InProcess::start(root, 256).await?;
    let owner = create_tenants(&app.state, 1, "workflow").await?.remove(0);
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        let body = json!({"name": format!("Agent {i}"), "email": format!("agent-{i}@bench.example"),
            "password": "bench password 123", "role": "agent"});
        agents.push(created_id(
            post_json(http, &format!("{}/api/team", app.addr), &owner.token, &body).await?,
        )?);
    }
    let mut labels = Vec::new();
    for (name, color, _) in LABELS {
        let body = json!({"name": name, "color": color});
        labels.push(created_id(
            post_json(
                http,
                &format!("{}/api/labels", app.addr),
                &owner.token,
                &body,
            )
            .await?,
        )?);
    }
    let members = get_json(http, &format!("{}/api/team", app.addr), &owner.token).await?;
    let owner_id = members["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["role"] == "owner")
        .and_then(|m| m["id"].as_str())
        .context("the owner in GET /api/team")?
        .parse()?;
    app.stop().await;
    Ok(Team {
        owner,
        owner_id,
        agents,
        labels,
        took: t.elapsed(),
    })
}

fn created_id((status, body): (StatusCode, Value)) -> anyhow::Result<Uuid> {
    if status != StatusCode::CREATED {
        bail!("expected 201: {status} {body}");
    }
    Ok(body["id"].as_str().context("an id")?.parse()?)
}

/// The one tenant file under `root`.
fn tenant_file(root: &Path) -> anyhow::Result<PathBuf> {
    let dir = bench_config(root).tenants_dir();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "db") {
            files.push(path);
        }
    }
    match <[PathBuf; 1]>::try_from(files) {
        Ok([file]) => Ok(file),
        Err(files) => bail!(
            "expected one tenant file in {}, found {files:?}",
            dir.display()
        ),
    }
}

/// The server for rows 14 and 15, with its kept first pages (`--page-cache-bytes`) off: with
/// them on, both of row 14's sides are answered from memory after their first request and
/// the row no longer compares the indexes that serve the filters.
fn spawn_server(tmp: &Path, root: &Path) -> anyhow::Result<Proc> {
    let sessions = root.join("sessions");
    Proc::spawn_with_env(
        &[
            "--serve",
            root.to_str().context("utf-8 path")?,
            "256",
            sessions.to_str().context("utf-8 path")?,
        ],
        &[("AEZEN_PAGE_CACHE_BYTES", "0")],
        tmp,
        "workflow-server",
    )
}

/// What [`seed_file`] wrote.
struct Seeded {
    conversations: usize,
    messages: usize,
    notes: usize,
    read_positions: usize,
    text_bytes: u64,
    /// Messages whose text holds each of [`QUERIES`] (case-insensitively), counted as they
    /// were written.
    hits: Vec<(&'static str, u64)>,
    filtered: Matching,
    size: FileSize,
    rows_took: Duration,
    fts_took: Duration,
}

/// Conversations that row 14's filters match (agent 0, label 0).
#[derive(Default)]
struct Matching {
    open_or_pending: usize,
    open_assigned: usize,
    open_assigned_labelled: usize,
}

/// The file's pages without and with the FTS index.
struct FileSize {
    page_size: u64,
    without_index: u64,
    free_without: u64,
    with_index: u64,
    free_with: u64,
    on_disk: u64,
    data_bytes: u64,
    data_blocks: u64,
    docsize_bytes: u64,
    docsize_rows: u64,
}

/// One conversation's bookkeeping, from its messages (what `store::touch_conversation`
/// keeps): the indexes of its first message, its last one that is not a note, its last
/// incoming one and its last reply, and the contact's messages since that reply (unread).
#[derive(Clone, Default)]
struct Thread {
    first: usize,
    last: usize,
    last_incoming: Option<usize>,
    last_reply: Option<usize>,
    unread: i64,
}

/// Writes the conversations, messages and read positions into the tenant's `file` (the
/// server not running), then the FTS index.
fn seed_file(file: &Path, team: &Team, n_msgs: usize, n_conv: usize) -> anyhow::Result<Seeded> {
    let t = Instant::now();
    let chat = Chat::new(n_msgs, n_conv);
    let mut threads = vec![Thread::default(); n_conv];
    for i in 0..n_msgs {
        let m = chat.plan(i);
        let thread = &mut threads[m.conversation];
        if i == m.conversation * chat.stride {
            thread.first = i;
        }
        if m.private {
            continue;
        }
        thread.last = i;
        if m.incoming {
            thread.last_incoming = Some(i);
            thread.unread += 1;
        } else {
            thread.last_reply = Some(i);
            thread.unread = 0;
        }
    }
    let mut conn = open_tenant_file(file, FileLock::Exclusive)?;
    // A larger page cache for the writing only (the server's connections keep theirs).
    conn.execute_batch("PRAGMA cache_size = -262144")?;
    let triggers: Vec<String> = conn
        .prepare(
            "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name LIKE 'message_fts_%'",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if triggers.len() != 3 {
        bail!(
            "expected the three FTS triggers of V5, found {}",
            triggers.len()
        );
    }
    conn.execute_batch(
        "DROP TRIGGER message_fts_insert; DROP TRIGGER message_fts_delete; \
         DROP TRIGGER message_fts_update;",
    )?;

    let owner = team.owner_id;
    let mut filtered = Matching::default();
    let tx = conn.transaction()?;
    let mut ids = Vec::with_capacity(n_conv);
    {
        let mut insert = tx.prepare(
            "INSERT INTO conversation (id, contact_number, contact_name, push_name, name_edited,
                 last_message, last_message_at, unread_count, activity_at, created_at, status,
                 snoozed_until, assignee_id, last_incoming_pos)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        let mut label = tx.prepare(
            "INSERT INTO conversation_label (conversation_id, label_id) VALUES (?1, ?2)",
        )?;
        let now = Utc::now().timestamp_millis();
        for (c, thread) in threads.iter().enumerate() {
            let id = Uuid::now_v7();
            let look = Look::of(c, team);
            let name =
                (c % 10 < 6).then(|| format!("{} {}", FIRST_NAMES[c % 23], SURNAMES[c % 19]));
            let push = (c % 10 < 8).then(|| FIRST_NAMES[(c / 3) % 23].to_owned());
            insert.execute(params![
                id.to_string(),
                contact_number(0, c),
                name.as_deref().or(push.as_deref()),
                push,
                name.is_some(),
                chat.text(thread.last),
                chat.at(thread.last),
                thread.unread,
                chat.at(thread.last),
                chat.at(thread.first),
                look.status,
                (look.status == "snoozed").then_some(now + 86_400_000 * (1 + c as i64 % 7)),
                look.assignee.map(|a| a.to_string()),
                thread.last_incoming.map_or(0, |i| i as i64 + 1),
            ])?;
            for &l in &look.labels {
                label.execute(params![id.to_string(), team.labels[l].to_string()])?;
            }
            if matches!(look.status, "open" | "pending") {
                filtered.open_or_pending += 1;
            }
            if look.status == "open" && look.assignee == Some(team.agents[0]) {
                filtered.open_assigned += 1;
                if look.labels.contains(&0) {
                    filtered.open_assigned_labelled += 1;
                }
            }
            ids.push(id.to_string());
        }
    }
    tx.commit()?;

    let mut hits: Vec<(&'static str, u64)> = QUERIES.iter().map(|&q| (q, 0)).collect();
    let (mut notes, mut text_bytes) = (0, 0u64);
    for start in (0..n_msgs).step_by(BATCH) {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO message (pos, id, conversation_id, content, sender, type, is_read,
                     status, wa_id, author_id, created_at, private)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'text', ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for i in start..(start + BATCH).min(n_msgs) {
                let m = chat.plan(i);
                let text = chat.text(i);
                let lower = text.to_lowercase();
                for (word, n) in &mut hits {
                    *n += u64::from(lower.contains(*word));
                }
                text_bytes += text.len() as u64;
                notes += usize::from(m.private);
                let thread = &threads[m.conversation];
                let author = (!m.incoming).then(|| {
                    let look = Look::of(m.conversation, team);
                    look.assignee.unwrap_or(owner).to_string()
                });
                insert.execute(params![
                    i as i64 + 1,
                    Uuid::now_v7().to_string(),
                    ids[m.conversation],
                    text,
                    if m.incoming { "user" } else { "agent" },
                    // Incoming messages after the conversation's last reply are unread.
                    !m.incoming || thread.last_reply.is_some_and(|r| r > i),
                    match (m.incoming, m.private) {
                        (true, _) => "delivered",
                        (false, true) => "sent",
                        (false, false) => "read",
                    },
                    (!m.private).then(|| format!("WF-{i}")),
                    author,
                    chat.at(i),
                    m.private,
                ])?;
            }
            if start + BATCH >= n_msgs {
                note_newest_message(&tx)?;
            }
        }
        tx.commit()?;
    }

    // Every member's position where they last read: the owner in 90 % of conversations,
    // each agent in theirs; up to the conversation's last reply when the contact wrote
    // after it (those messages are unread), else to its last message.
    let tx = conn.transaction()?;
    let mut read_positions = 0;
    {
        let mut insert = tx.prepare(
            "INSERT INTO read_position (conversation_id, user_id, read_pos) VALUES (?1, ?2, ?3)",
        )?;
        for (c, thread) in threads.iter().enumerate() {
            // Positions are message index + 1.
            let read = match (thread.last_reply, thread.last_incoming) {
                (Some(reply), Some(incoming)) if incoming > reply => reply as i64 + 1,
                (None, Some(_)) => thread.first as i64,
                _ => thread.last as i64 + 1,
            };
            let assignee = Look::of(c, team).assignee;
            for user in [(c % 10 != 9).then_some(owner), assignee]
                .into_iter()
                .flatten()
            {
                insert.execute(params![ids[c], user.to_string(), read])?;
                read_positions += 1;
            }
        }
    }
    tx.commit()?;
    let rows_took = t.elapsed();

    let pages = |conn: &Connection| -> rusqlite::Result<(u64, u64)> {
        Ok((
            number(conn, "PRAGMA page_count", None)?,
            number(conn, "PRAGMA freelist_count", None)?,
        ))
    };
    let (without_index, free_without) = pages(&conn)?;
    let t = Instant::now();
    conn.execute_batch("INSERT INTO message_fts (message_fts) VALUES ('rebuild')")?;
    for sql in &triggers {
        conn.execute_batch(sql)?;
    }
    let fts_took = t.elapsed();
    let (with_index, free_with) = pages(&conn)?;
    let data_bytes = number(
        &conn,
        "SELECT coalesce(sum(length(block)), 0) FROM message_fts_data",
        None,
    )?;
    let data_blocks = number(&conn, "SELECT count(*) FROM message_fts_data", None)?;
    let docsize_bytes = number(
        &conn,
        "SELECT coalesce(sum(length(sz)), 0) FROM message_fts_docsize",
        None,
    )?;
    let docsize_rows = number(&conn, "SELECT count(*) FROM message_fts_docsize", None)?;
    let page_size = number(&conn, "PRAGMA page_size", None)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    Ok(Seeded {
        conversations: n_conv,
        messages: n_msgs,
        notes,
        read_positions,
        text_bytes,
        hits,
        filtered,
        size: FileSize {
            page_size,
            without_index,
            free_without,
            with_index,
            free_with,
            on_disk: std::fs::metadata(file)?.len(),
            data_bytes,
            data_blocks,
            docsize_bytes,
            docsize_rows,
        },
        rows_took,
        fts_took,
    })
}

/// A count or size that SQLite answers in one row (never negative), with at most one parameter.
fn number(conn: &Connection, sql: &str, param: Option<&str>) -> rusqlite::Result<u64> {
    let value: i64 = match param {
        Some(p) => conn.query_row(sql, [p], |r| r.get(0))?,
        None => conn.query_row(sql, [], |r| r.get(0))?,
    };
    Ok(value.max(0).unsigned_abs())
}

/// What the bench measures without the server: the time of each query's lookup alone, and
/// the list statements' query plans.
struct Lookups {
    latencies: std::collections::HashMap<&'static str, Vec<u32>>,
    /// Messages the index (or the `LIKE` scan) finds for each query: checked against
    /// what was written.
    found: Vec<(&'static str, u64)>,
    plans: Vec<(String, String)>,
}

/// Each of [`QUERIES`], one at a time on one connection opened as the server opens the file:
/// FTS5's lookup alone (the rowids of a page, without the join, highlight and JSON of
/// `chat::search`), or for a short word its `LIKE` scan.
fn bare_lookups(
    file: &Path,
    team: &Team,
    words: &[(&'static str, u64)],
    phase: Duration,
) -> anyhow::Result<Lookups> {
    let conn = open_tenant_file(file, FileLock::Exclusive)?;
    let mut latencies = std::collections::HashMap::new();
    let mut found = Vec::new();
    for &(word, _) in words {
        let (sql, count, param) = if Query::of(word) == Query::Short {
            (
                "SELECT pos FROM message WHERE content LIKE ?1 ESCAPE '\\' ORDER BY pos DESC LIMIT ?2",
                "SELECT count(*) FROM message WHERE content LIKE ?1 ESCAPE '\\'",
                format!("%{word}%"),
            )
        } else {
            (
                "SELECT rowid FROM message_fts WHERE message_fts MATCH ?1 ORDER BY rowid DESC LIMIT ?2",
                "SELECT count(*) FROM message_fts WHERE message_fts MATCH ?1",
                format!("\"{word}\""),
            )
        };
        found.push((word, number(&conn, count, Some(&param))?));
        let mut stmt = conn.prepare(sql)?;
        let mut times = Vec::new();
        let started = Instant::now();
        while (started.elapsed() < phase || times.len() < MIN_REQUESTS as usize)
            && started.elapsed() < MAX_PHASE
        {
            let t = Instant::now();
            let n = stmt
                .query_map(params![param, SEARCH_LIMIT + 1], |r| r.get::<_, i64>(0))?
                .count();
            std::hint::black_box(n);
            times.push(crate::load::micros(t));
        }
        latencies.insert(word, times);
    }
    let plans = list_plans(&conn, team)?;
    Ok(Lookups {
        latencies,
        found,
        plans,
    })
}

/// The query plans of the list's first page under row 14's filters: the product's own
/// statement (`aezen::bench::list_plan`), EXPLAINed on the seeded file; the product's own
/// test of these plans is `every_tab_is_read_in_list_order_from_an_index_without_sorting`.
fn list_plans(conn: &Connection, team: &Team) -> anyhow::Result<Vec<(String, String)>> {
    let (agent, label) = (Some(team.agents[0]), Some(team.labels[0]));
    let mut plans = Vec::new();
    for (name, statuses, assignee, label) in [
        ("status=all", &[][..], None, None),
        ("default", &["open", "pending"][..], None, None),
        ("status=open&assignee", &["open"][..], agent, None),
        ("status=open&assignee&label", &["open"][..], agent, label),
    ] {
        let plan = aezen::bench::list_plan(conn, statuses, assignee, label)?;
        plans.push((name.to_owned(), plan.replace('\n', "; ")));
    }
    Ok(plans)
}

/// How a query word is run by `chat::search`.
#[derive(PartialEq, Eq)]
enum Query {
    Indexed,
    /// Fewer than 3 characters: no trigram, a `LIKE` scan.
    Short,
}

impl Query {
    fn of(word: &str) -> Self {
        if word.chars().count() < 3 {
            Self::Short
        } else {
            Self::Indexed
        }
    }
}

// ---- the generated chat ------------------------------------------------------------------

/// A conversation's status, assignee and labels, from its index.
struct Look {
    status: &'static str,
    assignee: Option<Uuid>,
    labels: Vec<usize>,
}

impl Look {
    /// 60 % open, 15 % pending, 20 % resolved, 5 % snoozed; 30 % unassigned, the rest spread
    /// evenly over the agents; labels on 30 % (a second one on a third of those).
    fn of(c: usize, team: &Team) -> Self {
        let mut rng = Rng::new(0x5eed_0000 ^ c as u64);
        let status = match rng.below(100) {
            0..60 => "open",
            60..75 => "pending",
            75..95 => "resolved",
            _ => "snoozed",
        };
        let assignee =
            (rng.below(100) >= 30).then(|| team.agents[rng.below(AGENTS as u64) as usize]);
        let mut labels = Vec::new();
        if rng.below(100) < 30 {
            let count = if rng.below(3) == 0 { 2 } else { 1 };
            while labels.len() < count {
                let l = weighted_label(&mut rng);
                if !labels.contains(&l) {
                    labels.push(l);
                }
            }
        }
        Self {
            status,
            assignee,
            labels,
        }
    }
}

fn weighted_label(rng: &mut Rng) -> usize {
    let total: u32 = LABELS.iter().map(|l| l.2).sum();
    let mut draw = rng.below(u64::from(total)) as u32;
    for (i, (_, _, weight)) in LABELS.iter().enumerate() {
        if draw < *weight {
            return i;
        }
        draw -= weight;
    }
    LABELS.len() - 1
}

/// One message's place: its conversation, who wrote it, whether it is a private note.
struct Planned {
    conversation: usize,
    incoming: bool,
    private: bool,
}

/// The generated chat: which conversation each message goes to, when, and its text. Every
/// `stride`-th message opens the next conversation (the contact writes first); the others go
/// to a conversation already open, mostly a recent one (a chat is busiest when it starts),
/// sometimes any; 60 % are the contact's, 2 % of the rest private notes. A year of messages,
/// evenly spaced, ending now.
struct Chat {
    conversations: usize,
    stride: usize,
    start_ms: i64,
    step_ms: f64,
    languages: Vec<Language>,
}

impl Chat {
    fn new(messages: usize, conversations: usize) -> Self {
        let year = 365 * 86_400_000_i64;
        Self {
            conversations,
            stride: (messages / conversations).max(1),
            start_ms: Utc::now().timestamp_millis() - year,
            step_ms: year as f64 / messages as f64,
            languages: Language::all(),
        }
    }

    fn plan(&self, i: usize) -> Planned {
        let opened = (i / self.stride + 1).min(self.conversations);
        if i.is_multiple_of(self.stride) && i / self.stride < self.conversations {
            return Planned {
                conversation: i / self.stride,
                incoming: true,
                private: false,
            };
        }
        let mut rng = Rng::new(0xc0ff_ee00 ^ i as u64);
        let back = if rng.below(10) < 7 {
            // u² leans to 0: the newest conversations.
            let u = rng.unit();
            (u * u * opened as f64) as usize
        } else {
            rng.below(opened as u64) as usize
        };
        let incoming = rng.below(100) < 60;
        Planned {
            conversation: opened - 1 - back.min(opened - 1),
            incoming,
            private: !incoming && rng.below(100) < 2,
        }
    }

    fn at(&self, i: usize) -> i64 {
        self.start_ms + (i as f64 * self.step_ms) as i64
    }

    /// Message `i`'s text: 2–15 words of one language, drawn by rank (Zipf), sometimes with a
    /// product or person's name of random syllables, an order number, or one of the marked
    /// words at a fixed rate ("warranty" 0.3 %, "tangerine" 0.01 %).
    fn text(&self, i: usize) -> String {
        let mut rng = Rng::new(0x7e47_0000 ^ i as u64);
        let language = {
            let mut draw = rng.below(100) as u32;
            let mut chosen = &self.languages[0];
            for l in &self.languages {
                if draw < l.share {
                    chosen = l;
                    break;
                }
                draw -= l.share;
            }
            chosen
        };
        let words = 2 + rng.below(14) as usize;
        let mut parts: Vec<String> = (0..words)
            .map(|_| language.draw(&mut rng).to_owned())
            .collect();
        if rng.below(100) < 25 {
            let at = rng.below(parts.len() as u64) as usize;
            parts.insert(at, pseudo_word(&mut rng));
        }
        if rng.below(100) < 10 {
            parts.push(format!("#A{:05}", rng.below(100_000)));
        }
        if language.spaced {
            if rng.below(1000) < 3 {
                parts.push("warranty".to_owned());
            }
            if rng.below(10_000) < 1 {
                parts.push("tangerine".to_owned());
            }
        }
        let mut text = parts.join(if language.spaced { " " } else { "" });
        if language.spaced && rng.below(3) == 0 {
            text.push(['?', '!', '.'][rng.below(3) as usize]);
        }
        text
    }
}

/// A made-up name of 2–4 syllables, capitalised.
fn pseudo_word(rng: &mut Rng) -> String {
    const SYLLABLES: [&str; 32] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "do", "pa", "ble", "chi", "fo", "gu", "ha",
        "je", "ko", "li", "mo", "nu", "pre", "qui", "ro", "se", "tu", "va", "we", "xi", "yo", "za",
        "bri", "sto",
    ];
    let mut word = String::new();
    for _ in 0..2 + rng.below(3) {
        word.push_str(SYLLABLES[rng.below(32) as usize]);
    }
    let mut chars = word.chars();
    chars.next().map_or(String::new(), |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

const FIRST_NAMES: [&str; 23] = [
    "Budi", "Siti", "Ahmad", "Dewi", "Rizky", "Putri", "Andi", "Maria", "John", "Fatima", "Omar",
    "Olga", "Ivan", "Somchai", "Nok", "Wei", "Li", "Sarah", "David", "Aisha", "Yusuf", "Nina",
    "Agus",
];
const SURNAMES: [&str; 19] = [
    "Santoso", "Wijaya", "Rahman", "Smith", "Haddad", "Petrova", "Ivanov", "Chen", "Wang",
    "Suzuki", "Kusuma", "Lestari", "Nguyen", "Garcia", "Ali", "Hassan", "Brown", "Tan", "Lim",
];

/// One language of the generated chat: its words, most frequent first, and its share of
/// the messages.
struct Language {
    words: &'static [&'static str],
    /// Cumulative weights, rank r weighing 1/(r+1).
    cumulative: Vec<f64>,
    share: u32,
    /// Words are separated by spaces (not in Thai and Chinese).
    spaced: bool,
}

impl Language {
    fn all() -> Vec<Self> {
        [
            (ENGLISH, 70, true),
            (INDONESIAN, 12, true),
            (RUSSIAN, 8, true),
            (ARABIC, 5, true),
            (THAI, 3, false),
            (CHINESE, 2, false),
        ]
        .into_iter()
        .map(|(words, share, spaced)| {
            let mut sum = 0.0;
            let cumulative = (0..words.len())
                .map(|r| {
                    sum += 1.0 / (r as f64 + 1.0);
                    sum
                })
                .collect();
            Self {
                words,
                cumulative,
                share,
                spaced,
            }
        })
        .collect()
    }

    fn draw(&self, rng: &mut Rng) -> &'static str {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.unit() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        self.words[i.min(self.words.len() - 1)]
    }
}

const ENGLISH: &[&str] = &[
    "the",
    "you",
    "i",
    "my",
    "is",
    "please",
    "order",
    "thanks",
    "hi",
    "and",
    "for",
    "it",
    "can",
    "when",
    "delivery",
    "to",
    "a",
    "price",
    "hello",
    "ok",
    "what",
    "size",
    "payment",
    "not",
    "yet",
    "still",
    "how",
    "much",
    "send",
    "today",
    "tomorrow",
    "address",
    "available",
    "color",
    "stock",
    "shipping",
    "tracking",
    "number",
    "arrived",
    "waiting",
    "sorry",
    "problem",
    "wrong",
    "item",
    "product",
    "refund",
    "invoice",
    "receipt",
    "discount",
    "total",
    "transfer",
    "bank",
    "confirm",
    "cancel",
    "change",
    "exchange",
    "return",
    "package",
    "courier",
    "photo",
    "quality",
    "great",
    "good",
    "morning",
    "evening",
    "customer",
    "service",
    "help",
    "need",
    "want",
    "buy",
    "pay",
    "cash",
    "card",
    "week",
    "days",
    "store",
    "branch",
    "open",
    "hours",
    "promo",
    "voucher",
    "code",
    "free",
    "broken",
    "damaged",
    "replacement",
    "paid",
    "already",
    "cod",
    "express",
    "weight",
    "small",
    "large",
    "medium",
    "black",
    "white",
    "red",
    "blue",
    "green",
    "cotton",
    "leather",
    "shoes",
    "shirt",
    "dress",
    "bag",
    "phone",
    "case",
    "charger",
    "cable",
    "again",
    "soon",
    "asap",
    "refunded",
    "receive",
    "received",
    "checking",
    "confirmed",
    "shipped",
    "pickup",
    "location",
    "map",
    "weekend",
    "monday",
    "friday",
];
const INDONESIAN: &[&str] = &[
    "kak", "ya", "sudah", "pesanan", "belum", "kirim", "ongkir", "terima", "kasih", "mau", "tanya",
    "harga", "berapa", "ready", "stok", "bisa", "dong", "min", "alamat", "resi", "paket", "sampai",
    "barang", "ukuran", "warna", "besok", "hari", "ini", "order", "transfer",
];
const RUSSIAN: &[&str] = &[
    "здравствуйте",
    "заказ",
    "когда",
    "спасибо",
    "доставка",
    "оплата",
    "цена",
    "сколько",
    "есть",
    "размер",
    "можно",
    "пожалуйста",
    "номер",
    "адрес",
    "возврат",
    "товар",
    "получил",
    "ещё",
    "нет",
    "да",
    "жду",
    "курьер",
];
const ARABIC: &[&str] = &[
    "مرحبا",
    "طلب",
    "التوصيل",
    "شكرا",
    "السعر",
    "كم",
    "متى",
    "الدفع",
    "العنوان",
    "المقاس",
    "متوفر",
    "نعم",
    "لا",
    "استرجاع",
    "المنتج",
    "اليوم",
    "بكرة",
    "ممكن",
];
const THAI: &[&str] = &[
    "ครับ",
    "ค่ะ",
    "สวัสดี",
    "สั่งซื้อ",
    "ราคา",
    "เท่าไหร่",
    "ส่ง",
    "ของ",
    "ขอบคุณ",
    "โอนเงิน",
    "ที่อยู่",
    "พรุ่งนี้",
    "ได้",
    "ไหม",
];
const CHINESE: &[&str] = &[
    "你好",
    "的",
    "了",
    "订单",
    "发货",
    "什么时候",
    "谢谢",
    "价格",
    "多少钱",
    "退款",
    "地址",
    "尺码",
    "有货",
    "付款",
    "快递",
    "单号",
    "可以",
    "吗",
];

/// splitmix64-seeded xorshift64: the same draws for the same seed in every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
