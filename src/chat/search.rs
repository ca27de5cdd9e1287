//! Full-text search over a tenant's messages and notes: an FTS5 table with the `trigram`
//! tokenizer (`message_fts`, kept in step with `message` by triggers; docs/WORKFLOW.md says
//! why trigram), newest first, keyset-paginated on the message's history position.

use rusqlite::{Connection, Row, named_params};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Message;
use super::store::{MESSAGE_COLUMN_COUNT, escape_like, message_columns_of, message_row};
use crate::error::ApiError;

/// Where a hit's match starts and ends in FTS5's `highlight()` output: private-use
/// characters, which message text does not use (a hit whose text holds them is shown
/// without highlight rather than cut wrongly).
const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// The conversation a hit belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HitConversation {
    pub id: Uuid,
    pub contact_name: Option<String>,
    pub contact_number: String,
}

/// A part of a hit's text: the matching parts have `match: true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SnippetPart {
    pub text: String,
    #[serde(rename = "match")]
    pub matched: bool,
}

/// One message that matches, with its conversation and the text split at the matches.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SearchHit {
    pub message: Message,
    pub conversation: HitConversation,
    pub snippet: Vec<SnippetPart>,
}

/// How a query is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// An FTS5 query on the trigram index.
    Indexed(String),
    /// One word of fewer than 3 characters (too short for trigrams, common in Chinese and
    /// Japanese): a `LIKE` scan of the messages, newest first, until a page is found.
    Short(String),
}

/// Parses `q`: a single short word is [`Query::Short`]; a query that has a shorter word
/// among others is refused (trigram matches nothing for it, silently); anything else goes to
/// FTS5, which may still refuse its syntax ([`search`] maps that to a 400).
pub fn parse_query(field: &str, q: &str) -> Result<Query, ApiError> {
    let q = q.trim();
    if q.is_empty() {
        return Err(ApiError::validation(format!("{field} must not be empty")));
    }
    let words = words(q);
    if let [only] = words.as_slice()
        && only.chars().count() < 3
    {
        return Ok(Query::Short(only.clone()));
    }
    if let Some(short) = words.iter().find(|w| w.chars().count() < 3) {
        return Err(ApiError::validation(format!(
            "{field}: every word of a search needs at least 3 characters when there is more \
             than one ({short:?} is shorter)"
        )));
    }
    Ok(Query::Indexed(q.to_owned()))
}

/// The words of a query: quoted phrases (one word each) and bare words, without FTS5's
/// operators, parentheses, `*` and column filters.
fn words(q: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut phrase = String::new();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            phrase.push('"');
                        } else {
                            break;
                        }
                    } else {
                        phrase.push(c);
                    }
                }
                words.push(phrase);
            }
            c if c.is_whitespace() || "()*+^:".contains(c) => {}
            c => {
                let mut word = String::from(c);
                while let Some(&next) = chars.peek() {
                    if next.is_whitespace() || "()\"*+^:".contains(next) {
                        break;
                    }
                    word.push(next);
                    chars.next();
                }
                if !matches!(word.as_str(), "AND" | "OR" | "NOT" | "NEAR") {
                    words.push(word);
                }
            }
        }
    }
    words
}

/// One page of hits, newest first, before history position `before`; and the position to
/// continue from when more may follow.
pub fn search(
    conn: &Connection,
    field: &str,
    query: &Query,
    before: Option<i64>,
    limit: u32,
) -> Result<(Vec<SearchHit>, Option<i64>), ApiError> {
    let m = message_columns_of("m");
    let hits = match query {
        Query::Indexed(q) => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {m}, c.contact_name, c.contact_number,
                        highlight(message_fts, 0, char(57344), char(57345))
                 FROM message_fts
                 JOIN message m ON m.pos = message_fts.rowid
                 JOIN conversation c ON c.id = m.conversation_id
                 WHERE message_fts MATCH :q AND (:before IS NULL OR message_fts.rowid < :before)
                 ORDER BY message_fts.rowid DESC LIMIT :limit"
            ))?;
            let rows = stmt.query_map(
                named_params! {":q": q, ":before": before, ":limit": limit + 1},
                |row| hit(row, None),
            );
            rows.and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|err| syntax_error(field, err))?
        }
        Query::Short(word) => conn
            .prepare_cached(&format!(
                "SELECT {m}, c.contact_name, c.contact_number, NULL
                 FROM message m JOIN conversation c ON c.id = m.conversation_id
                 WHERE m.content LIKE :pattern ESCAPE '\\' AND (:before IS NULL OR m.pos < :before)
                 ORDER BY m.pos DESC LIMIT :limit"
            ))?
            .query_map(
                named_params! {
                    ":pattern": format!("%{}%", escape_like(word)),
                    ":before": before,
                    ":limit": limit + 1,
                },
                |row| hit(row, Some(word)),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    let mut hits = hits;
    let more = hits.len() > limit as usize;
    hits.truncate(limit as usize);
    let next = hits.last().filter(|_| more).map(|(_, pos)| *pos);
    crate::media::store::attach_all(conn, hits.iter_mut().map(|(hit, _)| &mut hit.message))?;
    Ok((hits.into_iter().map(|(hit, _)| hit).collect(), next))
}

/// FTS5's refusal of a query's syntax is the client's mistake: a 400 naming the field and
/// what FTS5 said. The statement was prepared already, so a plain `SQLITE_ERROR` while it
/// steps can only come from parsing the query ("fts5: syntax error near …", "unterminated
/// string", "no such column: …"); anything else (I/O, corruption, busy) stays internal.
fn syntax_error(field: &str, err: rusqlite::Error) -> ApiError {
    if let rusqlite::Error::SqliteFailure(code, Some(message)) = &err
        && code.extended_code == rusqlite::ffi::SQLITE_ERROR
    {
        return ApiError::bad_request(
            "invalid_search",
            format!(
                "{field} is not a search this inbox understands ({message}); put words in \
                 double quotes to search for them as typed"
            ),
        );
    }
    err.into()
}

/// A hit from its row: the message columns, then the conversation's name and number, then
/// the highlighted text (or NULL, when `word` is to be found in Rust).
fn hit(row: &Row<'_>, word: Option<&str>) -> rusqlite::Result<(SearchHit, i64)> {
    let (message, pos) = message_row(row)?;
    let n = MESSAGE_COLUMN_COUNT;
    let conversation = HitConversation {
        id: message.conversation_id,
        contact_name: row.get(n)?,
        contact_number: row.get(n + 1)?,
    };
    let snippet = match (row.get::<_, Option<String>>(n + 2)?, word) {
        (Some(highlighted), _) => split_highlight(&message.content, &highlighted),
        (None, Some(word)) => split_at_word(&message.content, word),
        (None, None) => vec![plain(&message.content)],
    };
    Ok((
        SearchHit {
            message,
            conversation,
            snippet,
        },
        pos,
    ))
}

fn plain(text: &str) -> SnippetPart {
    SnippetPart {
        text: text.to_owned(),
        matched: false,
    }
}

/// Splits `highlight()`'s output at its markers; the original text if they do not add up.
fn split_highlight(content: &str, highlighted: &str) -> Vec<SnippetPart> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut matched = false;
    for c in highlighted.chars() {
        if c == OPEN || c == CLOSE {
            if !current.is_empty() {
                parts.push(SnippetPart {
                    text: std::mem::take(&mut current),
                    matched,
                });
            }
            matched = c == OPEN;
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        parts.push(SnippetPart {
            text: current,
            matched,
        });
    }
    let joined: String = parts.iter().map(|p| p.text.as_str()).collect();
    if joined == content {
        parts
    } else {
        vec![plain(content)]
    }
}

/// Splits `content` at each occurrence of `word`, as `LIKE` found it (ASCII letters in any
/// case).
fn split_at_word(content: &str, word: &str) -> Vec<SnippetPart> {
    let haystack = content.to_ascii_lowercase();
    let needle = word.to_ascii_lowercase();
    let mut parts = Vec::new();
    let mut at = 0;
    while let Some(found) = haystack[at..].find(&needle).map(|i| i + at) {
        if found > at {
            parts.push(plain(&content[at..found]));
        }
        let end = found + needle.len();
        parts.push(SnippetPart {
            text: content[found..end].to_owned(),
            matched: true,
        });
        at = end;
    }
    if at < content.len() || parts.is_empty() {
        parts.push(plain(&content[at..]));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_parsed_into_words_and_short_ones_are_scanned() {
        assert_eq!(
            parse_query("q", "退款").unwrap(),
            Query::Short("退款".to_owned())
        );
        assert_eq!(
            parse_query("q", "\"ab\"").unwrap(),
            Query::Short("ab".to_owned())
        );
        assert_eq!(
            parse_query("q", "refund OR \"money back\"").unwrap(),
            Query::Indexed("refund OR \"money back\"".to_owned())
        );
        let err = parse_query("q", "refund at once").unwrap_err();
        assert!(err.message().contains("\"at\""), "{}", err.message());
        assert!(parse_query("q", "   ").is_err());
        assert_eq!(
            words("(foo* AND \"a \"\"b\"\"\") NOT baz"),
            ["foo", "a \"b\"", "baz"]
        );
    }

    fn tenant_db() -> Connection {
        let conn = crate::testing::tenant_memory_db();
        conn.execute_batch(
            "INSERT INTO conversation (id, contact_number, activity_at, created_at)
                 VALUES ('00000000-0000-0000-0000-000000000001', '+15550001', 0, 0);
             INSERT INTO message (id, conversation_id, content, sender, status, created_at)
                 VALUES ('00000000-0000-0000-0000-0000000000aa',
                         '00000000-0000-0000-0000-000000000001', 'a refund please', 'user',
                         'delivered', 0);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn what_fts5_cannot_parse_is_the_clients_mistake() {
        let conn = tenant_db();
        let (hits, _) = search(&conn, "q", &parse_query("q", "refund").unwrap(), None, 10).unwrap();
        assert_eq!(hits.len(), 1);
        for bad in [
            "\"refund",
            "*",
            "NEAR(",
            "refund AND",
            "nosuchcolumn:refund",
            "refund)",
        ] {
            let query = parse_query("q", bad).unwrap();
            let err = search(&conn, "q", &query, None, 10).unwrap_err();
            assert_eq!(err.code(), "invalid_search", "{bad}: {err}");
        }
    }

    #[test]
    fn highlights_split_into_parts_and_foreign_markers_fall_back_to_plain_text() {
        let parts = split_highlight("pay the refund", "pay the \u{E000}refund\u{E001}");
        assert_eq!(
            parts,
            vec![
                plain("pay the "),
                SnippetPart {
                    text: "refund".into(),
                    matched: true
                }
            ]
        );
        let odd = "a\u{E000}b";
        assert_eq!(split_highlight(odd, "x"), vec![plain(odd)]);
        let parts = split_at_word("OK ok Ok", "ok");
        assert_eq!(parts.iter().filter(|p| p.matched).count(), 3);
        assert_eq!(
            parts.iter().map(|p| p.text.as_str()).collect::<String>(),
            "OK ok Ok"
        );
    }
}
