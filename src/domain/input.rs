//! Shared reading of raw request input: NFKC and trimming, quoting user input in
//! messages without echoing unbounded text back, and wire enum numbers.

use unicode_normalization::UnicodeNormalization;

use super::{Reason, Violation};

/// NFKC then trim. Terminals send full-width digits and letters, half-width kana and
/// ideographic spaces; NFKC folds them into one form so a code typed either way is the
/// same code, and trimming removes the padding fixed-width forms leave behind.
pub fn clean(raw: &str) -> String {
    // ASCII is its own NFKC form: most input is, and skips the tables.
    if raw.is_ascii() {
        return raw.trim().to_owned();
    }
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

/// A wire enum field of a request: proto3 sends 0 when the terminal set nothing, and
/// any other number a terminal may send that this gateway does not know.
pub struct WireEnum<T> {
    /// The dotted request path.
    pub field: &'static str,
    /// The value of a known number; `None` for 0 and unknown numbers.
    pub decode: fn(i32) -> Option<T>,
    /// The refusal when nothing was set.
    pub missing: (Reason, &'static str),
    /// The refusal of a number not known, with a sentence naming the number.
    pub unknown: (Reason, fn(i32) -> String),
}

impl<T> WireEnum<T> {
    /// The value of wire number `n`, or the refusal; an unknown number is also given
    /// back in the metadata `value`.
    pub fn parse(&self, n: i32) -> Result<T, Violation> {
        if n == 0 {
            return Err(Violation::new(self.missing.0, self.field, self.missing.1));
        }
        (self.decode)(n).ok_or_else(|| {
            Violation::new(self.unknown.0, self.field, (self.unknown.1)(n))
                .with("value", n.to_string())
        })
    }
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
        // ASCII input, taken as it is, is trimmed the same way.
        assert_eq!(clean(" 06130488\t"), "06130488");
        assert_eq!(clean("YAMADA"), "YAMADA");
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

    const ODD: WireEnum<i32> = WireEnum {
        field: "access.odd",
        decode: |n| (n % 2 == 1).then_some(n),
        missing: (Reason::PurposeMissing, "say something odd"),
        unknown: (Reason::PurposeNotPermitted, |n| format!("{n} is not odd")),
    };

    #[test]
    fn wire_enum_missing_known_and_unknown() {
        assert_eq!(ODD.parse(3), Ok(3));
        let v = ODD.parse(0).unwrap_err();
        assert_eq!(
            (v.reason, v.field.as_str(), v.description.as_str()),
            (Reason::PurposeMissing, "access.odd", "say something odd")
        );
        assert!(v.metadata.is_empty());
        let v = ODD.parse(-2).unwrap_err();
        assert_eq!(
            (v.reason, v.field.as_str(), v.description.as_str()),
            (Reason::PurposeNotPermitted, "access.odd", "-2 is not odd")
        );
        assert_eq!(v.metadata, [("value".to_owned(), "-2".to_owned())]);
    }
}
