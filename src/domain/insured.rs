//! The insured-person identity (被保険者等記号・番号・枝番): insurer number, symbol,
//! number and 2-digit branch. OQS keys every qualification query on it, and the
//! gateway hashes its canonical key to tie a later view to an earlier search.

use super::input::{clean, field_path, quote};
use super::insurer::{InsurerNumber, parse_insurer_number};
use super::{Gather, Reason, Violation};

pub const SYMBOL_MAX_CHARS: usize = 20;
pub const NUMBER_MAX_CHARS: usize = 20;

/// A validated insured-person identity in canonical form (NFKC, trimmed, dash
/// variants folded to '-', ASCII letters upper-cased).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InsuredNumber {
    pub insurer: InsurerNumber,
    /// 記号: optional (some cards have none); letters of any script, digits and '-'.
    pub symbol: String,
    /// 番号: required; ASCII letters, digits and '-'.
    pub number: String,
    /// 枝番: exactly two ASCII digits.
    pub branch: String,
}

impl InsuredNumber {
    /// `insurer|symbol|number|branch`, for hashing and audit. Validated parts never
    /// contain '|' or '\'; both are escaped anyway so that values assembled by hand
    /// cannot make two different identities share a key.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            escape(self.insurer.as_str()),
            escape(&self.symbol),
            escape(&self.number),
            escape(&self.branch)
        )
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '|' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Hyphen and dash look-alikes that NFKC leaves alone but terminals and IMEs produce
/// where a card prints a hyphen (U+2010..U+2015 hyphens and dashes, U+2212 minus).
/// The katakana prolonged sound mark ー is not among them: it is a letter.
fn fold_dashes(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Validates the four parts, each on its own, so that one refusal names every part
/// at fault (the insurer number's reason first). Each violation names
/// `{prefix}.insurer_number`, `{prefix}.symbol`, `{prefix}.number` or
/// `{prefix}.branch` (the bare name when `prefix` is empty). ASCII letters are
/// upper-cased: cards print them in capitals, and the key must not depend on how
/// they were typed.
pub fn parse_insured_number(
    prefix: &str,
    insurer: &str,
    symbol: &str,
    number: &str,
    branch: &str,
) -> Result<InsuredNumber, Violation> {
    let (((insurer, symbol), number), branch) =
        parse_insurer_number(&field_path(prefix, "insurer_number"), insurer)
            .gather(parse_symbol(&field_path(prefix, "symbol"), symbol))
            .gather(parse_number(&field_path(prefix, "number"), number))
            .gather(parse_branch(&field_path(prefix, "branch"), branch))?;
    Ok(InsuredNumber {
        insurer,
        symbol,
        number,
        branch,
    })
}

/// 記号: optional; at most [`SYMBOL_MAX_CHARS`] letters of any script, digits and '-'.
fn parse_symbol(field: &str, raw: &str) -> Result<String, Violation> {
    let symbol = fold_dashes(&clean(raw));
    let len = symbol.chars().count();
    if len > SYMBOL_MAX_CHARS {
        return Err(Violation::new(
            Reason::SymbolInvalid,
            field,
            format!("the symbol (記号) is {len} characters long; the limit is {SYMBOL_MAX_CHARS}"),
        )
        .with("max_chars", SYMBOL_MAX_CHARS.to_string()));
    }
    if let Some(bad) = symbol.chars().find(|c| !(c.is_alphanumeric() || *c == '-')) {
        return Err(Violation::new(
            Reason::SymbolInvalid,
            field,
            format!(
                "the symbol (記号) may hold only letters, digits and '-'; {} contains {bad:?}",
                quote(&symbol, 24)
            ),
        ));
    }
    Ok(symbol)
}

/// 番号: required; at most [`NUMBER_MAX_CHARS`] ASCII letters, digits and '-'.
fn parse_number(field: &str, raw: &str) -> Result<String, Violation> {
    let number = fold_dashes(&clean(raw));
    if number.is_empty() {
        return Err(Violation::new(
            Reason::NumberMissing,
            field,
            "the number (番号) on the card is required",
        ));
    }
    let len = number.chars().count();
    if len > NUMBER_MAX_CHARS {
        return Err(Violation::new(
            Reason::NumberInvalid,
            field,
            format!("the number (番号) is {len} characters long; the limit is {NUMBER_MAX_CHARS}"),
        )
        .with("max_chars", NUMBER_MAX_CHARS.to_string()));
    }
    if let Some(bad) = number
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(Violation::new(
            Reason::NumberInvalid,
            field,
            format!(
                "the number (番号) may hold only digits, Latin letters and '-'; {} contains {bad:?}",
                quote(&number, 24)
            ),
        ));
    }
    Ok(number)
}

/// 枝番: exactly two ASCII digits.
fn parse_branch(field: &str, raw: &str) -> Result<String, Violation> {
    let branch = clean(raw);
    if branch.len() == 2 && branch.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(branch);
    }
    let found = if branch.is_empty() {
        "nothing".to_owned()
    } else {
        quote(&branch, 10)
    };
    Err(Violation::new(
        Reason::BranchInvalid,
        field,
        format!("the branch number (枝番) must be two digits, e.g. 00; found {found}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(symbol: &str, number: &str, branch: &str) -> InsuredNumber {
        parse_insured_number("insured", "06130488", symbol, number, branch).expect("valid")
    }

    fn err(symbol: &str, number: &str, branch: &str) -> Violation {
        parse_insured_number("insured", "06130488", symbol, number, branch).expect_err("invalid")
    }

    #[test]
    fn typical_card() {
        let n = ok("12345", "678", "00");
        assert_eq!(n.insurer.as_str(), "06130488");
        assert_eq!(n.key(), "06130488|12345|678|00");
    }

    #[test]
    fn symbol_in_any_script_and_optional() {
        assert_eq!(ok("都営１２", "1", "01").symbol, "都営12");
        assert_eq!(ok("アイウ-1", "1", "01").symbol, "アイウ-1");
        assert_eq!(ok("", "1", "01").symbol, "");
        assert_eq!(ok("ab", "1", "01").symbol, "AB");
        assert_eq!(ok(&"あ".repeat(20), "1", "01").symbol.chars().count(), 20);
    }

    #[test]
    fn symbol_refusals() {
        let v = err(&"あ".repeat(21), "1", "01");
        assert_eq!(v.reason, Reason::SymbolInvalid);
        assert_eq!(v.field, "insured.symbol");
        assert!(v.description.contains("limit is 20"), "{}", v.description);
        for bad in ["12 34", "12/34", "記号・1", "1\u{0}", "12_3", "1.2"] {
            let v = err(bad, "1", "01");
            assert_eq!(v.reason, Reason::SymbolInvalid, "{bad}");
        }
    }

    #[test]
    fn dash_variants_and_full_width_are_folded() {
        assert_eq!(ok("12－34", "5\u{2212}6", "００").symbol, "12-34");
        assert_eq!(ok("12\u{2010}34", "5\u{2015}6", "00").number, "5-6");
        assert_eq!(ok("", "ａｂ１", "00").number, "AB1");
    }

    #[test]
    fn number_rules() {
        let v = err("1", "", "00");
        assert_eq!(v.reason, Reason::NumberMissing);
        assert_eq!(v.field, "insured.number");
        assert_eq!(err("1", "　", "00").reason, Reason::NumberMissing);
        assert_eq!(ok("1", &"9".repeat(20), "00").number.len(), 20);
        let v = err("1", &"9".repeat(21), "00");
        assert_eq!(v.reason, Reason::NumberInvalid);
        assert!(v.description.contains("limit is 20"), "{}", v.description);
        for bad in ["12 3", "番号1", "ヤマ", "1|2", "1\n2"] {
            assert_eq!(err("1", bad, "00").reason, Reason::NumberInvalid, "{bad}");
        }
    }

    #[test]
    fn branch_rules() {
        assert_eq!(ok("1", "1", "01").branch, "01");
        assert_eq!(ok("1", "1", " ０２ ").branch, "02");
        let v = err("1", "1", "");
        assert_eq!(v.reason, Reason::BranchInvalid);
        assert_eq!(v.field, "insured.branch");
        assert!(
            v.description.contains("two digits, e.g. 00"),
            "{}",
            v.description
        );
        for bad in ["0", "001", "1a", "-1", "٠١"] {
            assert_eq!(err("1", "1", bad).reason, Reason::BranchInvalid, "{bad}");
        }
    }

    #[test]
    fn insurer_errors_carry_prefixed_field() {
        let v = parse_insured_number("insured", "01234567", "1", "1", "00").unwrap_err();
        assert_eq!(v.reason, Reason::InsurerNumberCheckDigit);
        assert_eq!(v.field, "insured.insurer_number");
        let v = parse_insured_number("insured", "", "1", "1", "00").unwrap_err();
        assert_eq!(v.reason, Reason::InsuredNumberMissing);
        let v = parse_insured_number("", "06130488", "1", "", "00").unwrap_err();
        assert_eq!(v.field, "number");
    }

    fn fields(v: &Violation) -> Vec<(Reason, &str)> {
        v.all().map(|v| (v.reason, v.field.as_str())).collect()
    }

    #[test]
    fn every_part_at_fault_is_named_insurer_first() {
        let v = parse_insured_number("insured", "01234567", "1", "1", "1a").unwrap_err();
        assert_eq!(
            fields(&v),
            [
                (Reason::InsurerNumberCheckDigit, "insured.insurer_number"),
                (Reason::BranchInvalid, "insured.branch"),
            ]
        );
        let v = parse_insured_number("insured", "", "記号 1", "", "").unwrap_err();
        assert_eq!(
            fields(&v),
            [
                (Reason::InsuredNumberMissing, "insured.insurer_number"),
                (Reason::SymbolInvalid, "insured.symbol"),
                (Reason::NumberMissing, "insured.number"),
                (Reason::BranchInvalid, "insured.branch"),
            ]
        );
        // A fault in one part alone is named alone.
        let v = parse_insured_number("insured", "06130488", "1", "ヤマ", "00").unwrap_err();
        assert_eq!(fields(&v), [(Reason::NumberInvalid, "insured.number")]);
        let v = parse_insured_number("insured", "06130488", "1", "1", "0").unwrap_err();
        assert_eq!(fields(&v), [(Reason::BranchInvalid, "insured.branch")]);
    }

    #[test]
    fn key_is_canonical_and_unambiguous() {
        let a = parse_insured_number("p", "０６１３０４８８", " ab ", "12", "00").unwrap();
        let b = parse_insured_number("p", "06130488", "AB", "１２", "００").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.key(), b.key());
        assert_ne!(ok("1", "23", "00").key(), ok("12", "3", "00").key());
        assert_ne!(ok("", "123", "00").key(), ok("1", "23", "00").key());
        let mut hand = ok("1", "2", "00");
        hand.symbol = "1|2".into();
        let mut other = ok("1", "2", "00");
        other.symbol = "1".into();
        other.number = "2|2".into();
        assert_ne!(hand.key(), other.key());
    }
}
