//! Log output: lines go to stderr, `RUST_LOG` chooses which (else [`crate::DEFAULT_LOG`]),
//! and `--log-format` how they read: `text` for a person, `json` (one object per line) for a
//! log collector.
//!
//! Every line logged while a request is handled carries that request's id: the router opens a
//! `request` span with `request_id` (see `http::request_span`), which text lines show as
//! `request{request_id=…}:` and JSON lines as `"span": {"request_id": …}` (and in `"spans"`).
//! The process-wide subscriber is installed once, by the binary; this module holds no state.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Installs the process's subscriber (and the bridge for crates that log through `log`, as
/// whatsapp-rust does). Call it once, first thing in `main`.
pub fn init(format: LogFormat) {
    let colour = std::io::stderr().is_terminal();
    subscriber(format, filter(), std::io::stderr, colour).init();
}

/// The lines to keep: `RUST_LOG` if it is set and valid, else [`crate::DEFAULT_LOG`].
pub fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(crate::DEFAULT_LOG))
}

/// The subscriber [`init`] installs, writing to `writer` (tests capture lines with it);
/// `colour` is for a terminal only.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    colour: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(colour).finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Lines written into memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `format` writes for one line logged inside a `request` span. The callsites are
    /// this function's own, so no other test's subscriber (or lack of one) has seen them.
    fn line_in_a_request(format: LogFormat) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = subscriber(
            format,
            EnvFilter::new(crate::DEFAULT_LOG),
            move || writer.clone(),
            false,
        );
        tracing::subscriber::with_default(subscriber, || {
            let _span =
                tracing::info_span!("request", request_id = %"r-1", route = %"/api/x").entered();
            tracing::info!(tenant = "t-1", "inside");
            tracing::debug!("below the default level");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        text
    }

    #[test]
    fn a_json_line_is_one_object_with_its_request_span() {
        let text = line_in_a_request(LogFormat::Json);
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "INFO", "{text}");
        assert_eq!(line["fields"]["message"], "inside", "{text}");
        assert_eq!(line["fields"]["tenant"], "t-1", "{text}");
        assert_eq!(line["span"]["request_id"], "r-1", "{text}");
        assert_eq!(line["spans"][0]["route"], "/api/x", "{text}");
    }

    #[test]
    fn a_text_line_names_its_request_span_without_colours() {
        let text = line_in_a_request(LogFormat::Text);
        assert!(
            text.contains(" INFO request{request_id=r-1 route=/api/x}: "),
            "{text}"
        );
        assert!(text.contains("inside tenant=\"t-1\""), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}
