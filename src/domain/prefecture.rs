//! Prefectures by their JIS X 0401 code (01 Hokkaido .. 47 Okinawa): the 2022
//! activations were by whole prefecture, and both insurer numbers and facility codes
//! carry the code.

use std::fmt;

/// A prefecture, always one of the 47 JIS X 0401 codes (the field is private so an
/// out-of-range value cannot be built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefecture(u8);

/// (Japanese name, English name), indexed by code - 1.
const TABLE: [(&str, &str); 47] = [
    ("北海道", "Hokkaido"),
    ("青森県", "Aomori"),
    ("岩手県", "Iwate"),
    ("宮城県", "Miyagi"),
    ("秋田県", "Akita"),
    ("山形県", "Yamagata"),
    ("福島県", "Fukushima"),
    ("茨城県", "Ibaraki"),
    ("栃木県", "Tochigi"),
    ("群馬県", "Gunma"),
    ("埼玉県", "Saitama"),
    ("千葉県", "Chiba"),
    ("東京都", "Tokyo"),
    ("神奈川県", "Kanagawa"),
    ("新潟県", "Niigata"),
    ("富山県", "Toyama"),
    ("石川県", "Ishikawa"),
    ("福井県", "Fukui"),
    ("山梨県", "Yamanashi"),
    ("長野県", "Nagano"),
    ("岐阜県", "Gifu"),
    ("静岡県", "Shizuoka"),
    ("愛知県", "Aichi"),
    ("三重県", "Mie"),
    ("滋賀県", "Shiga"),
    ("京都府", "Kyoto"),
    ("大阪府", "Osaka"),
    ("兵庫県", "Hyogo"),
    ("奈良県", "Nara"),
    ("和歌山県", "Wakayama"),
    ("鳥取県", "Tottori"),
    ("島根県", "Shimane"),
    ("岡山県", "Okayama"),
    ("広島県", "Hiroshima"),
    ("山口県", "Yamaguchi"),
    ("徳島県", "Tokushima"),
    ("香川県", "Kagawa"),
    ("愛媛県", "Ehime"),
    ("高知県", "Kochi"),
    ("福岡県", "Fukuoka"),
    ("佐賀県", "Saga"),
    ("長崎県", "Nagasaki"),
    ("熊本県", "Kumamoto"),
    ("大分県", "Oita"),
    ("宮崎県", "Miyazaki"),
    ("鹿児島県", "Kagoshima"),
    ("沖縄県", "Okinawa"),
];

impl Prefecture {
    /// The prefecture with JIS code `code`, `None` outside 1..=47.
    pub fn new(code: u8) -> Option<Prefecture> {
        (1..=47).contains(&code).then_some(Prefecture(code))
    }

    /// Parses "4" or "04" (surrounding whitespace ignored); anything else is `None`.
    pub fn parse(s: &str) -> Option<Prefecture> {
        let s = s.trim();
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u8>().ok().and_then(Prefecture::new)
    }

    pub fn code(self) -> u8 {
        self.0
    }

    /// The two-digit form used in codes and stored keys ("04").
    pub fn code_str(self) -> String {
        format!("{:02}", self.0)
    }

    pub fn name_ja(self) -> &'static str {
        self.entry().0
    }

    pub fn name_en(self) -> &'static str {
        self.entry().1
    }

    /// All 47 in code order.
    pub fn all() -> impl Iterator<Item = Prefecture> {
        (1..=47u8).map(Prefecture)
    }

    fn entry(self) -> (&'static str, &'static str) {
        // The constructor keeps 1..=47; the fallback only guards the invariant.
        TABLE
            .get(usize::from(self.0).wrapping_sub(1))
            .copied()
            .unwrap_or(("", ""))
    }
}

impl fmt::Display for Prefecture {
    /// The two-digit code, as it appears inside identifiers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(Prefecture::new(0).is_none());
        assert_eq!(
            Prefecture::new(1).map(Prefecture::name_en),
            Some("Hokkaido")
        );
        assert_eq!(Prefecture::new(47).map(Prefecture::name_ja), Some("沖縄県"));
        assert!(Prefecture::new(48).is_none());
        assert!(Prefecture::new(255).is_none());
    }

    #[test]
    fn parse_forms() {
        assert_eq!(Prefecture::parse("4"), Prefecture::new(4));
        assert_eq!(Prefecture::parse("04"), Prefecture::new(4));
        assert_eq!(Prefecture::parse(" 47 "), Prefecture::new(47));
        for bad in ["", "0", "00", "48", "004", "4a", "-4", "+4", "４", "999"] {
            assert_eq!(Prefecture::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_from_the_domain() {
        let name = |c| Prefecture::new(c).map(|p| (p.name_ja(), p.name_en()));
        assert_eq!(name(4), Some(("宮城県", "Miyagi")));
        assert_eq!(name(7), Some(("福島県", "Fukushima")));
        assert_eq!(name(13), Some(("東京都", "Tokyo")));
        assert_eq!(name(15), Some(("新潟県", "Niigata")));
        assert_eq!(name(16), Some(("富山県", "Toyama")));
        assert_eq!(name(17), Some(("石川県", "Ishikawa")));
        assert_eq!(name(18), Some(("福井県", "Fukui")));
        assert_eq!(name(23), Some(("愛知県", "Aichi")));
        assert_eq!(name(32), Some(("島根県", "Shimane")));
        assert_eq!(name(40), Some(("福岡県", "Fukuoka")));
        assert_eq!(name(41), Some(("佐賀県", "Saga")));
        assert_eq!(name(44), Some(("大分県", "Oita")));
        assert_eq!(name(45), Some(("宮崎県", "Miyazaki")));
        assert_eq!(name(46), Some(("鹿児島県", "Kagoshima")));
    }

    #[test]
    fn all_is_complete_and_distinct() {
        let all: Vec<_> = Prefecture::all().collect();
        assert_eq!(all.len(), 47);
        assert_eq!(all.first().map(|p| p.code()), Some(1));
        assert_eq!(all.last().map(|p| p.code()), Some(47));
        let mut ja: Vec<_> = all.iter().map(|p| p.name_ja()).collect();
        ja.sort_unstable();
        ja.dedup();
        assert_eq!(ja.len(), 47);
        assert!(
            all.iter()
                .all(|p| p.name_ja().ends_with(['都', '道', '府', '県']))
        );
        assert!(all.iter().all(|p| !p.name_en().is_empty()));
    }

    #[test]
    fn code_str_pads() {
        assert_eq!(
            Prefecture::new(4).map(Prefecture::code_str).as_deref(),
            Some("04")
        );
        assert_eq!(
            Prefecture::new(46).map(|p| p.to_string()).as_deref(),
            Some("46")
        );
    }
}
