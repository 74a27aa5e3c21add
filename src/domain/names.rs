//! Japanese text for matching: the same name arrives in kanji or kana, full- or
//! half-width, with or without spaces, and with old or variant kanji (髙橋/高橋).
//! The attribute search must see all of these as one.

use unicode_normalization::UnicodeNormalization;

use super::input::quote;
use super::{Reason, Violation};

/// Variant kanji folded to the form in common use. Kept to well-established pairs
/// from the standard lists so that distinct surnames are never merged (斎/斉 stay
/// apart, and 埼 is not 崎):
/// - 旧字体 listed beside the 常用漢字 in the 常用漢字表: 邊→辺, 濱→浜, 德→徳,
///   櫻→桜, 澤→沢, 廣→広, 國→国, 齋→斎, 齊→斉, 眞→真, 惠→恵, 藏→蔵, 榮→栄, 實→実;
/// - 異体字 common in family registers: 髙→高 (はしごだか), 﨑→崎 (たつさき, U+FA11,
///   which NFKC leaves alone), 嵜→崎, 邉→辺, 濵→浜, 冨→富, 嶋→島, 𠮷→吉 (つちよし).
const VARIANTS: &[(char, char)] = &[
    ('髙', '高'),
    ('\u{FA11}', '崎'),
    ('嵜', '崎'),
    ('邊', '辺'),
    ('邉', '辺'),
    ('濵', '浜'),
    ('濱', '浜'),
    ('德', '徳'),
    ('櫻', '桜'),
    ('澤', '沢'),
    ('廣', '広'),
    ('國', '国'),
    ('冨', '富'),
    ('齋', '斎'),
    ('齊', '斉'),
    ('嶋', '島'),
    ('眞', '真'),
    ('惠', '恵'),
    ('藏', '蔵'),
    ('榮', '栄'),
    ('實', '実'),
    ('\u{20BB7}', '吉'),
];

fn fold_variant(c: char) -> char {
    VARIANTS
        .iter()
        .find(|(from, _)| *from == c)
        .map_or(c, |(_, to)| *to)
}

/// Hiragana to katakana: the two blocks are parallel, 0x60 apart, for ぁ..ゖ
/// (U+3041..U+3096) and the iteration marks ゝゞ (U+309D, U+309E).
fn to_katakana(c: char) -> char {
    match c {
        '\u{3041}'..='\u{3096}' | '\u{309D}' | '\u{309E}' => {
            char::from_u32(c as u32 + 0x60).unwrap_or(c)
        }
        c => c,
    }
}

/// Middle dots used between given and family names (・ U+30FB; NFKC turns the
/// half-width ･ into it; · U+00B7 from Latin keyboards).
fn is_name_separator(c: char) -> bool {
    matches!(c, '\u{30FB}' | '\u{00B7}')
}

/// Per-character folding shared by names and free text: katakana, common kanji
/// forms, Latin upper case.
fn fold_char(c: char) -> char {
    fold_variant(to_katakana(c)).to_ascii_uppercase()
}

/// The form of a name used for comparison: NFKC (half-width katakana, full-width
/// Latin), hiragana to katakana, variant kanji folded, ASCII upper-cased, and all
/// whitespace and middle dots removed. A final NFC joins a voiced-sound mark typed
/// separately (タ゛ → ダ). Idempotent. Kana and kanji forms stay different: reading
/// a kanji name is not something this function can do.
pub fn normalize_name(s: &str) -> String {
    let folded: String = s
        .nfkc()
        .filter(|c| !c.is_whitespace() && !is_name_separator(*c))
        .map(fold_char)
        .collect();
    folded.nfc().collect()
}

/// The form of free text (addresses, insurer names) used for substring matching:
/// the same folding as [`normalize_name`], but whitespace runs become one space and
/// the ends are trimmed, middle dots are kept, and a ー between two digits (typed for
/// a hyphen in 1ー2ー3) and dash look-alikes become '-'.
pub fn normalize_text(s: &str) -> String {
    let chars: Vec<char> = s.nfkc().map(fold_char).collect();
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for (i, &c) in chars.iter().enumerate() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        let digit_at = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(char::is_ascii_digit)
        };
        let c = match c {
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            'ー' if digit_at(i.checked_sub(1)) && digit_at(i.checked_add(1)) => '-',
            c => c,
        };
        out.push(c);
    }
    out.nfc().collect()
}

/// Whether `s` is written in kana only (after [`normalize_name`], so hiragana,
/// katakana of either width, spaces and middle dots all count as kana). Picks the
/// kana-name comparison over the kanji one. Empty text is not kana.
pub fn is_kana_only(s: &str) -> bool {
    let n = normalize_name(s);
    !n.is_empty()
        && n.chars()
            .all(|c| matches!(c, '\u{30A1}'..='\u{30FA}' | 'ー' | 'ヽ' | 'ヾ'))
}

/// Whether `c` is refused in user text: control characters (they corrupt logs and
/// screens), line and paragraph separators, invisible formatting and bidi controls
/// (they make audit text read differently from what it holds), and private-use
/// characters (外字: their meaning is local to one system, so nothing can match them).
fn refused_char(c: char) -> Option<&'static str> {
    match c {
        c if c.is_control() => Some("a control character"),
        '\u{2028}' | '\u{2029}' => Some("a line or paragraph separator"),
        '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}' => Some("an invisible formatting character"),
        '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}' => {
            Some("a private-use character (外字); use the standard character or kana")
        }
        _ => None,
    }
}

/// Free text that must be given: validated as [`validate_text`] does, then, when
/// empty, refused with the `missing` reason and the message that says what to give.
pub fn required_text(
    field: &str,
    raw: &str,
    max_chars: usize,
    invalid: Reason,
    (missing, what_to_give): (Reason, &str),
) -> Result<String, Violation> {
    let text = validate_text(field, raw, max_chars, invalid)?;
    if text.is_empty() {
        return Err(Violation::new(missing, field, what_to_give));
    }
    Ok(text)
}

/// Validates free text from a request and returns it NFKC-normalised and trimmed
/// (not folded: folding is for matching, the text itself is kept for display and
/// upstream). Leading and trailing whitespace, line breaks included, is trimmed
/// first; what remains must hold no refused character and at most `max_chars`
/// characters. Empty text is returned as empty: whether it is required is the
/// caller's rule.
pub fn validate_text(
    field: &str,
    raw: &str,
    max_chars: usize,
    reason: Reason,
) -> Result<String, Violation> {
    let normalized: String = raw.nfkc().collect();
    let text = normalized.trim();
    if let Some((pos, c, what)) = text
        .chars()
        .enumerate()
        .find_map(|(i, c)| refused_char(c).map(|what| (i + 1, c, what)))
    {
        return Err(Violation::new(
            reason,
            field,
            format!(
                "character {pos} (U+{:04X}) is {what}; it is not allowed here",
                c as u32
            ),
        )
        .with("rule", "character"));
    }
    let len = text.chars().count();
    if len > max_chars {
        return Err(Violation::new(
            reason,
            field,
            format!(
                "{} is {len} characters long; the limit is {max_chars}",
                quote(text, 20)
            ),
        )
        .with("rule", "length")
        .with("max_chars", max_chars.to_string()));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spacing_and_width_variants_of_a_name_are_equal() {
        let a = normalize_name("山田 太郎");
        assert_eq!(a, "山田太郎");
        assert_eq!(normalize_name("山田　太郎"), a);
        assert_eq!(normalize_name(" 山田\t太郎 "), a);
        assert_eq!(normalize_name("山田・太郎"), a);
    }

    #[test]
    fn kana_forms_are_equal_to_each_other_not_to_kanji() {
        let k = normalize_name("ヤマダタロウ");
        assert_eq!(normalize_name("やまだ たろう"), k);
        assert_eq!(normalize_name("ﾔﾏﾀﾞ ﾀﾛｳ"), k);
        assert_eq!(normalize_name("ﾔﾏﾀﾞ･ﾀﾛｳ"), k);
        assert_eq!(normalize_name("やまだ　タロウ"), k);
        assert_ne!(normalize_name("山田太郎"), k);
    }

    #[test]
    fn hiragana_block_edges() {
        assert_eq!(normalize_name("ぁ"), "ァ");
        assert_eq!(normalize_name("ゖ"), "ヶ");
        assert_eq!(normalize_name("ゔ"), "ヴ");
        assert_eq!(normalize_name("ゝゞ"), "ヽヾ");
        // ゟ (U+309F) has no katakana twin; NFKC turns it into より, which folds.
        assert_eq!(normalize_name("\u{309F}"), "ヨリ");
        assert_eq!(normalize_name("ー"), "ー");
    }

    #[test]
    fn separate_voiced_marks_are_joined() {
        assert_eq!(normalize_name("タ゛ン"), normalize_name("ダン"));
        assert_eq!(normalize_name("ハ゜"), "パ");
    }

    #[test]
    fn variant_kanji_are_folded() {
        assert_eq!(normalize_name("髙橋"), normalize_name("高橋"));
        assert_eq!(normalize_name("山﨑"), "山崎");
        assert_eq!(normalize_name("山嵜"), "山崎");
        assert_eq!(normalize_name("渡邊"), "渡辺");
        assert_eq!(normalize_name("渡邉"), "渡辺");
        assert_eq!(normalize_name("濵田"), "浜田");
        assert_eq!(normalize_name("濱田"), "浜田");
        assert_eq!(normalize_name("德川"), "徳川");
        assert_eq!(normalize_name("櫻井"), "桜井");
        assert_eq!(normalize_name("澤田"), "沢田");
        assert_eq!(normalize_name("廣田"), "広田");
        assert_eq!(normalize_name("國分"), "国分");
        assert_eq!(normalize_name("冨田"), "富田");
        assert_eq!(normalize_name("齋藤"), "斎藤");
        assert_eq!(normalize_name("齊藤"), "斉藤");
        assert_eq!(normalize_name("小嶋"), "小島");
        assert_eq!(normalize_name("\u{20BB7}田"), "吉田");
        // Distinct characters stay distinct.
        assert_ne!(normalize_name("斎藤"), normalize_name("斉藤"));
        assert_ne!(normalize_name("埼"), normalize_name("崎"));
    }

    #[test]
    fn compatibility_ideographs_fold_through_nfkc() {
        // U+FA10 is a compatibility form of 塚 with a canonical mapping.
        assert_eq!(normalize_name("\u{FA10}本"), "塚本");
    }

    #[test]
    fn latin_names() {
        assert_eq!(
            normalize_name("Yamada Taro"),
            normalize_name("ＹＡＭＡＤＡ　ＴＡＲＯ")
        );
        assert_eq!(normalize_name("Anne·Marie"), "ANNEMARIE");
    }

    #[test]
    fn normalize_name_is_idempotent() {
        for s in ["ﾔﾏﾀﾞ ﾀﾛｳ", "髙橋　はなこ", "タ゛ン", "Ａｂ・ｃ"] {
            let once = normalize_name(s);
            assert_eq!(normalize_name(&once), once, "{s}");
        }
        assert_eq!(normalize_name(""), "");
        assert_eq!(normalize_name("　 "), "");
    }

    #[test]
    fn free_text_keeps_single_spaces() {
        assert_eq!(
            normalize_text("  石川県　輪島市   河井町 "),
            "石川県 輪島市 河井町"
        );
        assert_eq!(normalize_text("ぜんこく けんこう"), "ゼンコク ケンコウ");
        assert_eq!(
            normalize_text("全国健康保険協会 東京支部"),
            "全国健康保険協会 東京支部"
        );
        assert_eq!(normalize_text("髙岡市"), "高岡市");
        assert_eq!(normalize_text("ｾﾝﾀｰ"), "センター");
        assert_eq!(normalize_text("\t\n"), "");
        assert_eq!(normalize_text(""), "");
    }

    #[test]
    fn free_text_folds_address_dashes() {
        let want = "河井町1-2-3";
        assert_eq!(normalize_text("河井町１－２－３"), want);
        assert_eq!(normalize_text("河井町1ー2ー3"), want);
        assert_eq!(normalize_text("河井町1\u{2212}2\u{2010}3"), want);
        // A prolonged sound mark in a word is a letter.
        assert_eq!(normalize_text("センター1"), "センター1");
        assert!(normalize_text("全国健康保険協会東京支部").contains(&normalize_text("東京 ")));
    }

    #[test]
    fn kana_only() {
        assert!(is_kana_only("ヤマダ タロウ"));
        assert!(is_kana_only("やまだ・たろう"));
        assert!(is_kana_only("ﾔﾏﾀﾞ ﾀﾛｳ"));
        assert!(is_kana_only("ヴァージニア"));
        assert!(!is_kana_only("山田たろう"));
        assert!(!is_kana_only("YAMADA"));
        assert!(!is_kana_only(""));
        assert!(!is_kana_only(" 　"));
        assert!(!is_kana_only("ヤマダ1"));
    }

    #[test]
    fn validate_text_accepts_and_normalises() {
        let f = "name";
        assert_eq!(
            validate_text(f, " ﾔﾏﾀﾞ　ﾀﾛｳ\n", 50, Reason::NameInvalid),
            Ok("ヤマダ タロウ".to_owned())
        );
        assert_eq!(
            validate_text(f, "", 50, Reason::NameInvalid),
            Ok(String::new())
        );
        assert_eq!(
            validate_text(f, &"あ".repeat(50), 50, Reason::NameInvalid).map(|s| s.chars().count()),
            Ok(50)
        );
        // Counted after NFKC: ﾀﾞ is one character.
        assert!(validate_text(f, &"ﾀﾞ".repeat(50), 50, Reason::NameInvalid).is_ok());
    }

    #[test]
    fn validate_text_refuses_long_text() {
        let v = validate_text(
            "address_fragment",
            &"あ".repeat(101),
            100,
            Reason::AddressFragmentInvalid,
        )
        .unwrap_err();
        assert_eq!(v.reason, Reason::AddressFragmentInvalid);
        assert_eq!(v.field, "address_fragment");
        assert!(
            v.description.contains("101 characters") && v.description.contains("limit is 100"),
            "{}",
            v.description
        );
        assert!(
            v.metadata
                .contains(&("rule".to_owned(), "length".to_owned()))
        );
        assert!(v.description.chars().count() < 120);
    }

    #[test]
    fn validate_text_refuses_hidden_characters() {
        for (raw, what) in [
            ("山田\n太郎", "control"),
            ("山田\t太郎", "control"),
            ("山田\u{7}", "control"),
            ("山田\u{85}太郎", "control"),
            ("山田\u{2028}太郎", "separator"),
            ("山田\u{200B}太郎", "invisible"),
            ("山田\u{202E}太郎", "invisible"),
            ("\u{FEFF}山田", "invisible"),
            ("山\u{E000}", "private-use"),
            ("山\u{10FFFD}", "private-use"),
        ] {
            let v = validate_text("name", raw, 50, Reason::NameInvalid).expect_err(raw);
            assert_eq!(v.reason, Reason::NameInvalid, "{raw:?}");
            assert!(v.description.contains(what), "{raw:?}: {}", v.description);
            assert!(
                v.metadata
                    .contains(&("rule".to_owned(), "character".to_owned()))
            );
        }
        let v = validate_text("name", "山田\n太郎", 50, Reason::NameInvalid).unwrap_err();
        assert!(
            v.description.contains("character 3 (U+000A)"),
            "{}",
            v.description
        );
    }
}
