//! Display width of text, and making untrusted text safe to print.
//!
//! A terminal cell holds one narrow character; East Asian wide characters and most emoji take
//! two cells, and combining marks take none (they join the character before them). Widths come
//! from the `unicode-width` crate, character by character, which is how terminals count.

use std::borrow::Cow;

use unicode_width::UnicodeWidthChar;

/// The number of cells `c` takes: 0 (combining marks, controls), 1 or 2.
pub fn char_width(c: char) -> usize {
    c.width().unwrap_or(0)
}

/// The number of cells `text` takes on one line.
pub fn str_width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// Whether `c` would act on the terminal instead of showing: C0 and C1 controls and DEL.
pub fn is_control(c: char) -> bool {
    c.is_control()
}

/// `text` with every control character (ESC, BEL, C1 controls, ...) replaced by U+FFFD, so that
/// text from someone else cannot move the cursor, change colours or retitle the window. Tabs
/// become a space. Line feeds are kept when `keep_newlines` is set.
pub fn sanitize(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| is_control(c) && !(keep_newlines && c == '\n');
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let clean = text
        .chars()
        .map(|c| match c {
            '\t' => ' ',
            c if unsafe_char(c) => '\u{fffd}',
            c => c,
        })
        .collect();
    Cow::Owned(clean)
}

/// The longest prefix of `text` that fits in `width` cells, and its width.
pub fn truncate(text: &str, width: usize) -> (&str, usize) {
    let mut used = 0;
    for (at, c) in text.char_indices() {
        let w = char_width(c);
        if used + w > width {
            return (text.get(..at).unwrap_or_default(), used);
        }
        used += w;
    }
    (text, used)
}

/// Splits one line of `text` into pieces of at most `width` cells, breaking after a space where
/// one is near, inside a word otherwise. Always yields at least one piece (maybe empty).
pub fn wrap(text: &str, width: usize) -> Vec<&str> {
    let width = width.max(1);
    let mut pieces = Vec::new();
    let mut rest = text;
    loop {
        let (fits, _) = truncate(rest, width);
        if fits.len() == rest.len() {
            pieces.push(rest);
            return pieces;
        }
        // A character wider than the whole line still has to go somewhere.
        let cut = if fits.is_empty() {
            rest.chars().next().map_or(rest.len(), char::len_utf8)
        } else {
            match fits.rfind(' ') {
                Some(space) if space > 0 => space + 1,
                _ => fits.len(),
            }
        };
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece.trim_end_matches(' '));
        if tail.is_empty() {
            return pieces;
        }
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wide CJK characters count two cells, combining marks none.
    #[test]
    fn counts_wide_and_combining_characters() {
        assert_eq!(str_width("abc"), 3);
        assert_eq!(str_width("日本"), 4);
        assert_eq!(str_width("e\u{301}"), 1);
        assert_eq!(char_width('\u{1b}'), 0);
    }

    /// Escape sequences in untrusted text are defused; plain text is not copied.
    #[test]
    fn sanitize_replaces_controls_and_borrows_clean_text() {
        assert!(matches!(sanitize("hello", false), Cow::Borrowed("hello")));
        assert_eq!(sanitize("a\x1b[2Jb\u{9b}c\x07", false), "a\u{fffd}[2Jb\u{fffd}c\u{fffd}");
        assert_eq!(sanitize("a\nb\tc", true), "a\nb c");
        assert_eq!(sanitize("a\nb", false), "a\u{fffd}b");
    }

    /// Truncation never splits a wide character across the limit.
    #[test]
    fn truncate_stops_before_a_wide_character_that_does_not_fit() {
        assert_eq!(truncate("ab日本", 3), ("ab", 2));
        assert_eq!(truncate("ab日本", 4), ("ab日", 4));
        assert_eq!(truncate("ab", 10), ("ab", 2));
    }

    /// Wrapping breaks after spaces when it can and inside long words when it must.
    #[test]
    fn wrap_breaks_at_spaces_then_inside_words() {
        assert_eq!(wrap("hello big world", 10), ["hello big", "world"]);
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(wrap("日本語", 1), ["日", "本", "語"]);
    }
}
