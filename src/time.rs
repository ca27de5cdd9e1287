//! Timestamps in JSON: RFC 3339 in UTC, byte for byte what chrono's own `Serialize` writes
//! (`2026-11-25T10:31:52.123Z`; no fraction when it is zero, else 3, 6 or 9 digits).
//!
//! chrono writes through `fmt`, and serde_json escapes each piece `fmt` hands it: with two
//! timestamps per conversation that was ~15 % of the server's time on a 50-item page. Here
//! the text is built in a stack buffer and handed over once. Use it on hot response types
//! with `#[serde(serialize_with = "crate::time::rfc3339")]` (or `rfc3339_opt`).

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Serialize, Serializer};

/// The longest form: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const MAX_LEN: usize = 30;

pub fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; MAX_LEN];
    match write(t, &mut buf) {
        Some(text) => s.serialize_str(text),
        // Years outside 0..=9999 and leap seconds: chrono's own form.
        None => t.serialize(s),
    }
}

pub fn rfc3339_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// Writes `t` into `buf`; `None` for what only chrono's general code handles.
fn write<'b>(t: &DateTime<Utc>, buf: &'b mut [u8; MAX_LEN]) -> Option<&'b str> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut out = Digits { buf, len: 0 };
    out.number(year, 4);
    out.byte(b'-');
    out.number(t.month(), 2);
    out.byte(b'-');
    out.number(t.day(), 2);
    out.byte(b'T');
    out.number(t.hour(), 2);
    out.byte(b':');
    out.number(t.minute(), 2);
    out.byte(b':');
    out.number(t.second(), 2);
    if nanos != 0 {
        out.byte(b'.');
        if nanos.is_multiple_of(1_000_000) {
            out.number(nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
            out.number(nanos / 1_000, 6);
        } else {
            out.number(nanos, 9);
        }
    }
    out.byte(b'Z');
    let Digits { buf, len } = out;
    // Only ASCII digits and punctuation were written.
    std::str::from_utf8(&buf[..len]).ok()
}

struct Digits<'b> {
    buf: &'b mut [u8; MAX_LEN],
    len: usize,
}

impl Digits<'_> {
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `value` as exactly `width` decimal digits, zero-padded.
    fn number(&mut self, mut value: u32, width: usize) {
        for slot in self.buf[self.len..self.len + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        self.len += width;
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[derive(Serialize)]
    struct Ours(#[serde(serialize_with = "rfc3339")] DateTime<Utc>);

    fn ours(t: DateTime<Utc>) -> String {
        serde_json::to_string(&Ours(t)).unwrap()
    }

    #[test]
    fn writes_exactly_what_chrono_writes() {
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases = vec![
            Utc.timestamp_opt(0, 0).unwrap(),
            Utc.timestamp_millis_opt(1_764_066_712_000).unwrap(),
            Utc.timestamp_millis_opt(1_764_066_712_123).unwrap(),
            Utc.timestamp_opt(1_764_066_712, 123_456_000).unwrap(),
            Utc.timestamp_opt(1_764_066_712, 123_456_789).unwrap(),
            Utc.timestamp_opt(1_764_066_712, 1).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(-1, 1, 1, 0, 0, 0).unwrap(),
            DateTime::<Utc>::default(),
        ];
        for _ in 0..10_000 {
            let ms = (next() % 400_000_000_000_000) as i64 - 62_000_000_000_000;
            let sub = [
                0,
                0,
                (next() % 1000) as u32 * 1000,
                (next() % 1_000_000) as u32,
            ];
            let t = Utc.timestamp_millis_opt(ms).unwrap();
            cases.push(
                t.with_nanosecond(t.nanosecond() + sub[(next() % 4) as usize])
                    .unwrap(),
            );
        }
        for t in cases {
            assert_eq!(ours(t), serde_json::to_string(&t).unwrap(), "{t:?}");
        }
    }
}
