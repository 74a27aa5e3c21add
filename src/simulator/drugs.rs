//! Drugs that Japanese pharmacies dispense every day, by the condition they treat.
//!
//! Codes are YJ-like: 4-digit efficacy class, 3-digit ingredient, dosage-form
//! letter (F tablet, M capsule, D granules, S patch), one digit of strength and
//! three more characters: 12 in all, the shape the API documents. Chronic drugs
//! are what matters in a disaster (anticoagulants, insulin, antihypertensives);
//! acute ones make a history look like a real one.

/// What a drug is prescribed for; a person's conditions choose their drugs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    Hypertension,
    Diabetes,
    Dyslipidemia,
    AtrialFibrillation,
    IschemicHeart,
    HeartFailure,
    Gerd,
    Insomnia,
    Hypothyroidism,
    Gout,
    ProstaticHyperplasia,
    Dementia,
    Asthma,
    Constipation,
    /// One-off episodes: colds, pain, infections, allergies.
    Acute,
}

#[derive(Debug, PartialEq)]
pub struct Drug {
    pub name: &'static str,
    /// YJ-like code, 12 characters.
    pub code: &'static str,
    /// 用法.
    pub dose: &'static str,
    /// Quantity per day with its unit.
    pub quantity: &'static str,
    pub condition: Condition,
}

const fn d(
    name: &'static str,
    code: &'static str,
    dose: &'static str,
    quantity: &'static str,
    condition: Condition,
) -> Drug {
    Drug {
        name,
        code,
        dose,
        quantity,
        condition,
    }
}

use Condition::*;

pub static DRUGS: [Drug; 36] = [
    d(
        "アムロジピン錠5mg",
        "2171022F2010",
        "1日1回朝食後",
        "1錠",
        Hypertension,
    ),
    d(
        "カンデサルタン錠8mg",
        "2149040F2020",
        "1日1回朝食後",
        "1錠",
        Hypertension,
    ),
    d(
        "テルミサルタン錠40mg",
        "2149042F2030",
        "1日1回朝食後",
        "1錠",
        Hypertension,
    ),
    d(
        "オルメサルタン錠20mg",
        "2149044F2040",
        "1日1回朝食後",
        "1錠",
        Hypertension,
    ),
    d(
        "メトホルミン塩酸塩錠250mg",
        "3962002F1050",
        "1日2回朝夕食後",
        "2錠",
        Diabetes,
    ),
    d(
        "シタグリプチン錠50mg",
        "3969010F1060",
        "1日1回朝食後",
        "1錠",
        Diabetes,
    ),
    d(
        "エンパグリフロジン錠10mg",
        "3969019F1070",
        "1日1回朝食後",
        "1錠",
        Diabetes,
    ),
    d(
        "インスリングラルギンBS注ミリオペン",
        "2492415G1080",
        "1日1回朝 皮下注射 10単位",
        "1キット",
        Diabetes,
    ),
    d(
        "ロスバスタチン錠2.5mg",
        "2189017F1090",
        "1日1回夕食後",
        "1錠",
        Dyslipidemia,
    ),
    d(
        "アトルバスタチン錠10mg",
        "2189015F2100",
        "1日1回夕食後",
        "1錠",
        Dyslipidemia,
    ),
    d(
        "エゼチミブ錠10mg",
        "2189018F1110",
        "1日1回朝食後",
        "1錠",
        Dyslipidemia,
    ),
    d(
        "ワルファリンカリウム錠1mg",
        "3332001F1120",
        "1日1回朝食後",
        "3錠",
        AtrialFibrillation,
    ),
    d(
        "アピキサバン錠5mg",
        "3339004F2130",
        "1日2回朝夕食後",
        "2錠",
        AtrialFibrillation,
    ),
    d(
        "エドキサバン錠30mg",
        "3339002F2140",
        "1日1回朝食後",
        "1錠",
        AtrialFibrillation,
    ),
    d(
        "アスピリン腸溶錠100mg",
        "3399007H1150",
        "1日1回朝食後",
        "1錠",
        IschemicHeart,
    ),
    d(
        "クロピドグレル錠75mg",
        "3399008F1160",
        "1日1回朝食後",
        "1錠",
        IschemicHeart,
    ),
    d(
        "フロセミド錠20mg",
        "2139005F1170",
        "1日1回朝食後",
        "1錠",
        HeartFailure,
    ),
    d(
        "ビソプロロールフマル酸塩錠2.5mg",
        "2123016F2180",
        "1日1回朝食後",
        "1錠",
        HeartFailure,
    ),
    d(
        "ランソプラゾールOD錠15mg",
        "2329023F2190",
        "1日1回朝食後",
        "1錠",
        Gerd,
    ),
    d(
        "ファモチジン錠20mg",
        "2325003F2200",
        "1日2回朝夕食後",
        "2錠",
        Gerd,
    ),
    d(
        "ゾルピデム酒石酸塩錠5mg",
        "1129009F1210",
        "1日1回就寝前",
        "1錠",
        Insomnia,
    ),
    d(
        "レンボレキサント錠5mg",
        "1190026F1220",
        "1日1回就寝前",
        "1錠",
        Insomnia,
    ),
    d(
        "レボチロキシンナトリウム錠50μg",
        "2431004F1230",
        "1日1回朝食後",
        "1錠",
        Hypothyroidism,
    ),
    d(
        "フェブキソスタット錠20mg",
        "3949003F2240",
        "1日1回朝食後",
        "1錠",
        Gout,
    ),
    d(
        "タムスロシン塩酸塩OD錠0.2mg",
        "2590008F1250",
        "1日1回朝食後",
        "1錠",
        ProstaticHyperplasia,
    ),
    d(
        "ドネペジル塩酸塩錠5mg",
        "1190012F1260",
        "1日1回朝食後",
        "1錠",
        Dementia,
    ),
    d(
        "モンテルカスト錠10mg",
        "4490026F1270",
        "1日1回就寝前",
        "1錠",
        Asthma,
    ),
    d(
        "酸化マグネシウム錠330mg",
        "2344009F1280",
        "1日3回毎食後",
        "3錠",
        Constipation,
    ),
    d(
        "ロキソプロフェンナトリウム錠60mg",
        "1149019F1290",
        "1日3回毎食後",
        "3錠",
        Acute,
    ),
    d(
        "アセトアミノフェン錠200mg",
        "1141007F1300",
        "1日3回毎食後",
        "3錠",
        Acute,
    ),
    d(
        "アモキシシリンカプセル250mg",
        "6131001M1310",
        "1日3回毎食後",
        "3カプセル",
        Acute,
    ),
    d(
        "クラリスロマイシン錠200mg",
        "6149003F2320",
        "1日2回朝夕食後",
        "2錠",
        Acute,
    ),
    d(
        "カルボシステイン錠500mg",
        "2239001F2330",
        "1日3回毎食後",
        "3錠",
        Acute,
    ),
    d(
        "フェキソフェナジン塩酸塩錠60mg",
        "4490023F1340",
        "1日2回朝夕食後",
        "2錠",
        Acute,
    ),
    d(
        "ロキソプロフェンNaテープ100mg",
        "2649734S1350",
        "1日1回患部に貼付",
        "1枚",
        Acute,
    ),
    d(
        "ツムラ葛根湯エキス顆粒(医療用)",
        "5200013D1360",
        "1日3回毎食前",
        "7.5g",
        Acute,
    ),
];

/// A brand product of one of the drugs above: same ingredient, dosage form and
/// strength, so the same first 9 characters of the YJ code (therapeutic class 4,
/// route and ingredient 3, dosage form 1, strength 1); only the brand number (2)
/// and the check character differ.
#[derive(Debug, PartialEq)]
pub struct Brand {
    pub name: &'static str,
    pub code: &'static str,
}

const fn b(name: &'static str, code: &'static str) -> Brand {
    Brand { name, code }
}

/// Brands of common drugs, as a patient's home clinic prescribes them and a
/// pharmacy elsewhere may only have the generic of.
pub static BRANDS: [Brand; 18] = [
    b("ノルバスク錠5mg", "2171022F2025"),
    b("アムロジン錠5mg", "2171022F2041"),
    b("ブロプレス錠8mg", "2149040F2036"),
    b("ミカルディス錠40mg", "2149042F2046"),
    b("オルメテック錠20mg", "2149044F2052"),
    b("メトグルコ錠250mg", "3962002F1066"),
    b("ジャヌビア錠50mg", "3969010F1075"),
    b("クレストール錠2.5mg", "2189017F1103"),
    b("リピトール錠10mg", "2189015F2115"),
    b("ワーファリン錠1mg", "3332001F1131"),
    b("エリキュース錠5mg", "3339004F2144"),
    b("リクシアナ錠30mg", "3339002F2155"),
    b("プラビックス錠75mg", "3399008F1172"),
    b("ラシックス錠20mg", "2139005F1185"),
    b("タケプロンOD錠15mg", "2329023F2205"),
    b("ガスター錠20mg", "2325003F2214"),
    b("ロキソニン錠60mg", "1149019F1304"),
    b("カロナール錠200mg", "1141007F1317"),
];

/// The ingredient group of a YJ code: its first 9 characters (ingredient, dosage
/// form and strength). Brand and generic products of one group replace each other.
pub fn ingredient_group(code: &str) -> &str {
    code.get(..9).unwrap_or(code)
}

/// The brands sharing `drug`'s ingredient group.
pub fn brands_of(drug: &Drug) -> impl Iterator<Item = &'static Brand> {
    let group = ingredient_group(drug.code);
    BRANDS
        .iter()
        .filter(move |b| ingredient_group(b.code) == group)
}

/// The generic name of the group of `code`: the drugs above are named by it.
pub fn generic_name(code: &str) -> &'static str {
    let group = ingredient_group(code);
    DRUGS
        .iter()
        .find(|d| ingredient_group(d.code) == group)
        .map_or("", |d| d.name)
}

/// The drugs for one condition (never empty for a condition listed in `DRUGS`).
pub fn for_condition(condition: Condition) -> impl Iterator<Item = &'static Drug> {
    DRUGS.iter().filter(move |d| d.condition == condition)
}

/// The one-off drugs, which the table keeps last (a slice: no allocation per person).
pub fn acute() -> &'static [Drug] {
    let start = DRUGS
        .iter()
        .position(|d| d.condition == Condition::Acute)
        .unwrap_or(DRUGS.len());
    &DRUGS[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_yj_shaped_and_unique() {
        let mut seen = HashSet::new();
        for drug in &DRUGS {
            let c = drug.code.as_bytes();
            assert_eq!(c.len(), 12, "{}", drug.name);
            assert!(c[..7].iter().all(u8::is_ascii_digit), "{}", drug.code);
            assert!(c[7].is_ascii_uppercase(), "{}", drug.code);
            assert!(seen.insert(drug.code));
        }
        assert!(for_condition(Condition::Hypertension).count() >= 2);
        assert!(acute().len() >= 3);
        assert!(acute().iter().all(|d| d.condition == Condition::Acute));
    }

    #[test]
    fn every_brand_shares_the_first_nine_characters_of_one_drug() {
        let mut seen = HashSet::new();
        for brand in &BRANDS {
            assert_eq!(brand.code.len(), 12, "{}", brand.name);
            assert!(seen.insert(brand.code), "{}", brand.code);
            assert!(DRUGS.iter().all(|d| d.code != brand.code));
            let generic = generic_name(brand.code);
            assert!(!generic.is_empty(), "{} has no generic", brand.name);
            let drug = DRUGS.iter().find(|d| d.name == generic).unwrap();
            assert!(brands_of(drug).any(|b| b == brand));
        }
        assert_eq!(ingredient_group("2171022F2025"), "2171022F2");
        assert_eq!(generic_name("2171022F2041"), "アムロジピン錠5mg");
        // Another strength is another group.
        assert_eq!(generic_name("2171022F1029"), "");
    }
}
