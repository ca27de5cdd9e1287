//! The one rule for text a client sends: trimmed, no control characters, and something
//! visible left once invisible characters (zero-width spaces and joiners, the byte-order
//! mark, bidirectional controls, soft hyphens) are set aside. Invisible characters inside
//! visible text stay (an emoji sequence needs its zero-width joiners); a field made only of
//! them is empty. Errors name the field.

use crate::error::ApiError;

/// Characters that render as nothing.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}')
}

fn has_visible(s: &str) -> bool {
    s.chars().any(|c| !c.is_whitespace() && !is_invisible(c))
}

/// A one-line text (a name): trimmed, 1..=`max_chars` characters, no control characters
/// (line breaks and tabs included), not invisible.
pub fn line(field: &str, raw: &str, max_chars: usize) -> Result<String, ApiError> {
    let text = raw.trim();
    if text.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "{field} must not contain control characters or line breaks"
        )));
    }
    if !has_visible(text) || text.chars().count() > max_chars {
        return Err(ApiError::validation(format!(
            "{field} must be between 1 and {max_chars} characters"
        )));
    }
    Ok(text.to_owned())
}

/// A message body: line breaks and tabs allowed, other control characters not; something
/// visible; at most `max_chars` characters. Kept as written (not trimmed).
pub fn body(field: &str, text: &str, max_chars: usize) -> Result<(), ApiError> {
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::validation(format!(
            "{field} must not contain control characters"
        )));
    }
    if !has_visible(text) {
        return Err(ApiError::validation(format!("{field} must not be empty")));
    }
    if text.chars().count() > max_chars {
        return Err(ApiError::validation(format!(
            "{field} must be at most {max_chars} characters"
        )));
    }
    Ok(())
}

/// A search term: anything printable (control characters, such as a NUL that would cut the
/// term short, are refused).
pub fn search(field: &str, text: &str) -> Result<(), ApiError> {
    if text.chars().any(char::is_control) {
        return Err(ApiError::validation(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_made_only_of_invisible_or_control_characters_are_refused() {
        for bad in [
            "\u{0}",
            "\u{feff}",
            "\u{202e}",
            " \u{200b}\u{200d} ",
            "a\nb",
            "a\u{7}",
        ] {
            assert!(line("name", bad, 100).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(line("name", "  Ana  ", 100).unwrap(), "Ana");
        // An emoji sequence keeps its zero-width joiner.
        assert_eq!(
            line("name", "👩\u{200d}💻 Dev", 100).unwrap(),
            "👩\u{200d}💻 Dev"
        );
        assert!(line("name", &"x".repeat(101), 100).is_err());
    }

    #[test]
    fn a_body_keeps_line_breaks_and_refuses_other_control_characters() {
        assert!(body("content", "one\ntwo\tthree", 20).is_ok());
        assert!(body("content", "\u{0}", 10).is_err());
        assert!(body("content", "\u{feff}", 10).is_err());
        assert!(body("content", "hi\u{1b}[31m", 10).is_err());
        assert!(body("content", "abcdefghijk", 10).is_err());
    }
}
