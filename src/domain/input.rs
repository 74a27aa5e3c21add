//! Shared clean-up of raw request text: NFKC and trimming, and quoting user input
//! in messages without echoing unbounded text back.

use unicode_normalization::UnicodeNormalization;

/// NFKC then trim. Terminals send full-width digits and letters, half-width kana and
/// ideographic spaces; NFKC folds them into one form so a code typed either way is the
/// same code, and trimming removes the padding fixed-width forms leave behind.
pub fn clean(raw: &str) -> String {
    let normalized: String = raw.nfkc().collect();
    normalized.trim().to_owned()
}

/// `s` quoted for a message, cut to `max` characters with an ellipsis: the user sees
/// what was wrong without a megabyte of input landing in logs and responses.
pub fn quote(s: &str, max: usize) -> String {
    let mut out = String::from("\"");
    let mut chars = s.chars();
    for c in chars.by_ref().take(max) {
        out.extend(c.escape_debug());
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out.push('"');
    out
}

/// Joins a field prefix and a field name into a dotted path; an empty prefix gives the
/// bare name, so callers validating a top-level message do not get a leading dot.
pub fn field_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Whether every byte is an ASCII digit (and there is at least one).
pub fn all_ascii_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_folds_width_and_trims() {
        assert_eq!(clean("　０６１３０４８８ "), "06130488");
        assert_eq!(clean("ﾔﾏﾀﾞ"), "ヤマダ");
        assert_eq!(clean(""), "");
        assert_eq!(clean(" \u{3000}\t"), "");
    }

    #[test]
    fn quote_cuts_and_escapes() {
        assert_eq!(quote("abc", 10), "\"abc\"");
        assert_eq!(quote("abcdef", 3), "\"abc…\"");
        assert_eq!(quote("a\nb", 10), "\"a\\nb\"");
        assert_eq!(quote("", 3), "\"\"");
    }

    #[test]
    fn field_path_joins() {
        assert_eq!(field_path("insured", "number"), "insured.number");
        assert_eq!(field_path("", "number"), "number");
    }

    #[test]
    fn digits() {
        assert!(all_ascii_digits("0123"));
        assert!(!all_ascii_digits(""));
        assert!(!all_ascii_digits("01a"));
        assert!(!all_ascii_digits("０１"));
    }
}
