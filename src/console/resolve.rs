//! A notice's text, resolved against the municipality master: names as notices write
//! them ("石川県輪島市、珠洲市、鳳珠郡能登町"), with or without 市/町/村, in old or
//! variant spellings (髙/高, ヶ/ケ: folded as the name matching folds them), and JIS X
//! 0402 codes with or without their check digit. A prefecture named before names sets
//! where they are looked for; "全域" after it takes the whole prefecture. What cannot
//! be resolved is reported with why, never guessed.

use std::collections::BTreeSet;

use unicode_normalization::UnicodeNormalization;

use crate::domain::municipality::parse_municipality_code;
use crate::domain::names::normalize_name;
use crate::domain::prefecture::Prefecture;
use crate::store::Municipality;

/// What a notice names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Whole prefectures, by code.
    pub prefectures: BTreeSet<u8>,
    /// Municipalities: code, name, and what was written.
    pub municipalities: Vec<(String, String, String)>,
    /// What was written and why it does not name one municipality.
    pub unresolved: Vec<(String, String)>,
}

impl Resolution {
    /// The 5-digit codes, in order, once each.
    pub fn codes(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.municipalities
            .iter()
            .filter(|(c, _, _)| seen.insert(c.clone()))
            .map(|(c, _, _)| c.clone())
            .collect()
    }
}

/// The matching key of a name: folded as names are (width, kana, variant kanji),
/// with the small ヶ/ヵ read as ケ/カ, as notices write either.
fn key(s: &str) -> String {
    normalize_name(s)
        .chars()
        .map(|c| match c {
            'ヶ' => 'ケ',
            'ヵ' => 'カ',
            c => c,
        })
        .collect()
}

const SUFFIXES: [char; 4] = ['市', '町', '村', '区'];
const SEPARATORS: &[char] = &[
    '、', ',', '，', '・', '／', '/', '\n', '\r', '\t', ' ', '　', '。', '；', ';', '（', '）',
    '(', ')', '「', '」', ':', '：', '等',
];

/// Names are at most this long (characters): longer prefixes are not tried.
const LONGEST_NAME: usize = 12;

/// A municipality with its matching keys, computed once per notice.
struct Entry<'m> {
    key: String,
    /// The key without 市/町/村/区, for names written without it.
    short: Option<String>,
    m: &'m Municipality,
}

/// Resolves `text` against `master` (every municipality of the registry).
pub fn resolve(text: &str, master: &[Municipality]) -> Resolution {
    let text: String = text
        .nfkc()
        .collect::<String>()
        .replace("及び", "、")
        .replace("並びに", "、");
    let entries: Vec<Entry> = master
        .iter()
        .map(|m| {
            let key = key(&m.name);
            let short = key
                .strip_suffix(SUFFIXES)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            Entry { key, short, m }
        })
        .collect();
    let mut out = Resolution::default();
    let mut context: Option<u8> = None;
    for token in text.split(SEPARATORS).filter(|t| !t.is_empty()) {
        // Prose before a prefecture's name ("対象地域は石川県…") is not a name.
        let token = Prefecture::all()
            .filter_map(|p| token.find(p.name_ja()))
            .min()
            .map_or(token, |i| &token[i..]);
        resolve_token(token, &entries, &mut context, &mut out);
    }
    out
}

/// Whether an unmatched word looks like a municipality's name (and so is reported).
fn looks_like_a_name(s: &str) -> bool {
    s.ends_with(SUFFIXES) && s.chars().count() <= 8 && !s.contains("市町村") && !s.contains('の')
}

fn resolve_token(token: &str, master: &[Entry], context: &mut Option<u8>, out: &mut Resolution) {
    if token.chars().all(|c| c.is_ascii_digit()) {
        return resolve_code(token, master, out);
    }
    let mut rest = token;
    if let Some((p, after)) = leading_prefecture(rest) {
        *context = Some(p);
        rest = after;
        if rest.starts_with("全域") || rest.starts_with("全体") {
            out.prefectures.insert(p);
            return;
        }
    }
    while !rest.is_empty() {
        match longest_match(rest, master, *context) {
            Ok(Some((m, used))) => {
                out.municipalities
                    .push((m.code.clone(), m.name.clone(), used.to_string()));
                rest = &rest[used.len()..];
            }
            Ok(None) => {
                // A district (郡) before a town or village names no area of its own.
                if let Some(i) = rest.find('郡') {
                    rest = &rest[i + '郡'.len_utf8()..];
                    continue;
                }
                if looks_like_a_name(rest) {
                    out.unresolved.push((rest.to_string(), not_found(*context)));
                }
                return;
            }
            Err(why) => {
                out.unresolved.push((rest.to_string(), why));
                return;
            }
        }
    }
}

fn not_found(context: Option<u8>) -> String {
    match context.and_then(Prefecture::new) {
        Some(p) => format!(
            "{}に該当する市区町村がありません / no such municipality in {}",
            p.name_ja(),
            p.name_en()
        ),
        None => "該当する市区町村がありません / no such municipality".into(),
    }
}

fn resolve_code(digits: &str, master: &[Entry], out: &mut Resolution) {
    if !(digits.len() == 5 || digits.len() == 6) {
        return;
    }
    match parse_municipality_code("notice", digits) {
        Ok(code) => match master.iter().map(|e| e.m).find(|m| m.code == code.as_str()) {
            Some(m) => {
                out.municipalities
                    .push((m.code.clone(), m.name.clone(), digits.to_string()));
            }
            None => out.unresolved.push((
                digits.to_string(),
                "市区町村マスタにないコード / not in the municipality master".into(),
            )),
        },
        Err(v) => out.unresolved.push((digits.to_string(), v.description)),
    }
}

/// A prefecture's name at the start of `s` (with or without 都/道/府/県).
fn leading_prefecture(s: &str) -> Option<(u8, &str)> {
    Prefecture::all().find_map(|p| {
        let full = p.name_ja();
        if let Some(rest) = s.strip_prefix(full) {
            return Some((p.code(), rest));
        }
        let short = full.trim_end_matches(['都', '道', '府', '県']);
        let rest = s.strip_prefix(short)?;
        // "石川郡" is a district, not 石川県: take the short form only alone.
        rest.is_empty().then_some((p.code(), rest))
    })
}

/// The longest prefix of `s` naming a municipality (in `context` if set), and the
/// prefix; an error when it names several in different prefectures.
fn longest_match<'m, 's>(
    s: &'s str,
    master: &[Entry<'m>],
    context: Option<u8>,
) -> Result<Option<(&'m Municipality, &'s str)>, String> {
    let ends: Vec<usize> = s
        .char_indices()
        .map(|(i, c)| i + c.len_utf8())
        .take(LONGEST_NAME)
        .collect();
    for end in ends.into_iter().rev() {
        let written = &s[..end];
        let k = key(written);
        let found: Vec<&Municipality> = master
            .iter()
            .filter(|e| context.is_none_or(|p| e.m.prefecture == p))
            .filter(|e| e.key == k || e.short.as_deref() == Some(k.as_str()))
            .map(|e| e.m)
            .collect();
        match found[..] {
            [] => continue,
            [m] => return Ok(Some((m, written))),
            [..] => {
                let places: Vec<String> = found.iter().map(|m| m.code.clone()).collect();
                return Err(format!(
                    "複数の都道府県にあります。都道府県名を前に書いてください / in several prefectures ({}): name the prefecture first",
                    places.join(", ")
                ));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(code: &str, name: &str) -> Municipality {
        Municipality {
            code: code.into(),
            name: name.into(),
            prefecture: code[..2].parse().expect("prefecture"),
        }
    }

    fn master() -> Vec<Municipality> {
        vec![
            m("17201", "金沢市"),
            m("17204", "輪島市"),
            m("17205", "珠洲市"),
            m("17463", "能登町"),
            m("17324", "川北町"),
            m("04206", "府中市"),
            m("34208", "府中市"),
            m("04406", "七ヶ宿町"),
            m("16202", "高岡市"),
        ]
    }

    #[test]
    fn names_with_and_without_suffix_district_and_prefecture() {
        let r = resolve("石川県輪島市、珠洲、鳳珠郡能登町\n川北町", &master());
        assert_eq!(r.codes(), ["17204", "17205", "17463", "17324"]);
        assert!(r.unresolved.is_empty(), "{:?}", r.unresolved);
    }

    #[test]
    fn codes_with_and_without_the_check_digit_and_a_wrong_one() {
        // 17201 → check 4 (DOMAIN.md).
        let r = resolve("172014 １７２０４ 172015 99999", &master());
        assert_eq!(r.codes(), ["17201", "17204"]);
        assert_eq!(r.unresolved.len(), 2, "{:?}", r.unresolved);
        assert_eq!(r.unresolved[0].0, "172015");
    }

    #[test]
    fn variant_spellings_and_ambiguity_and_unknown_names() {
        let r = resolve("七ケ宿町、髙岡市、府中市、架空市", &master());
        assert_eq!(r.codes(), ["04406", "16202"]);
        let unresolved: Vec<&str> = r.unresolved.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(unresolved, ["府中市", "架空市"]);
        let r = resolve("広島県府中市", &master());
        assert_eq!(r.codes(), ["34208"]);
    }

    #[test]
    fn a_whole_prefecture_and_prose_around_names() {
        let r = resolve("対象地域：宮城県全域及び石川県輪島市", &master());
        assert!(r.prefectures.contains(&4));
        assert_eq!(r.codes(), ["17204"]);
        assert!(r.unresolved.is_empty(), "{:?}", r.unresolved);
    }
}
