//! Rules for text that people read and databases store.
//!
//! - **Storable text.** Postgres cannot store the NUL character in a text column (SQLite can).
//!   Text that vMCP records from the outside world (client names, tool names, URIs, upstream
//!   error messages in the operation log) goes through [`storable`], which replaces each NUL with
//!   U+FFFD (the Unicode replacement character, `�`). The change is lossy on purpose: a reader of
//!   the log sees that something unprintable was there, and nothing can be confused with a
//!   literal escape sequence that a client really sent. Management input is not escaped but
//!   refused (see [`check_name`] and [`check_text`]), so what is stored is what was sent, on
//!   both databases.
//! - **Names** (vMCP names, tool renames) must not contain control characters, bidirectional
//!   overrides or isolates, or invisible characters: with them, one vMCP can be made to look like
//!   another in a list.
//! - **Descriptions** may hold line breaks and tabs but no other control characters.

use std::borrow::Cow;

use crate::ValidationError;

/// What [`storable`] puts in place of a NUL.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// `s` with every NUL replaced by U+FFFD, borrowed when there is none.
pub fn storable(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// [`storable`] for an owned string.
pub fn into_storable(s: String) -> String {
    match storable(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(o) => o,
    }
}

/// Bidirectional formatting characters: embeddings and overrides (U+202A..U+202E), isolates
/// (U+2066..U+2069), and the marks U+200E, U+200F and U+061C.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that render as nothing (or as blank space that is not a space): zero-width space,
/// joiners, word joiner and the other invisible operators, the byte order mark, the soft hyphen,
/// the combining grapheme joiner, the Hangul and Khmer fillers, Mongolian vowel separator,
/// variation selectors, tag characters, and the interlinear annotation and other format
/// characters of the General Punctuation and Specials blocks.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200D}'
        | '\u{2028}' | '\u{2029}'
        | '\u{2060}'..='\u{2064}'
        | '\u{206A}'..='\u{206F}'
        | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}'
        | '\u{E0100}'..='\u{E01EF}')
}

/// Checks a name that people read in lists: no control, bidirectional or invisible characters.
pub fn check_name(field: &str, s: &str) -> Result<(), ValidationError> {
    if let Some(c) = s
        .chars()
        .find(|&c| c.is_control() || is_bidi_control(c) || is_invisible(c))
    {
        return Err(ValidationError::new(
            field,
            format!(
                "must not contain control, bidirectional-override or invisible characters (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

/// Checks free text (a description): line breaks (`\n`, `\r`) and tabs are allowed, other control
/// characters (NUL among them) are not.
pub fn check_text(field: &str, s: &str) -> Result<(), ValidationError> {
    if let Some(c) = s
        .chars()
        .find(|&c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ValidationError::new(
            field,
            format!(
                "must not contain control characters other than tabs and line breaks (found U+{:04X})",
                u32::from(c)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_becomes_the_replacement_character() {
        assert_eq!(storable("evil\0client"), "evil\u{FFFD}client");
        assert!(matches!(storable("fine"), Cow::Borrowed("fine")));
        assert_eq!(into_storable("\0\0".into()), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn names_refuse_what_hides_or_reorders_text() {
        for bad in [
            "a\u{202E}b",
            "a\u{2066}b",
            "a\u{200F}",
            "\u{061C}a",
            "a\u{200B}b",
            "a\u{200D}b",
            "\u{FEFF}a",
            "a\u{00AD}b",
            "a\u{2060}b",
            "a\0b",
            "a\nb",
            "a\u{7F}b",
            "a\u{E0041}",
        ] {
            let err = check_name("name", bad).unwrap_err();
            assert_eq!(err.field, "name", "{bad:?}");
        }
        for good in [
            "My vMCP",
            "Développement",
            "日本語の名前",
            "مرحبا",
            "a-b_c.d",
            "emoji 🚀",
        ] {
            check_name("name", good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        }
    }

    #[test]
    fn text_keeps_line_breaks_and_tabs_only() {
        check_text("description", "line one\r\nline two\tand a tab").unwrap();
        check_text("description", "right-to-left \u{202E} is allowed in prose").unwrap();
        for bad in ["a\0b", "a\u{1B}[31mred", "a\u{7F}", "a\u{85}b"] {
            assert_eq!(
                check_text("description", bad).unwrap_err().field,
                "description"
            );
        }
    }
}
