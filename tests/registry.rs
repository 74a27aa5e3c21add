//! The facility registry: the store's contract on SQLite and PostgreSQL, CSV
//! loading with every bad row reported, the synthetic registry, and the
//! `registry` subcommands.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed, which is what it should do

#[path = "common/databases.rs"]
mod databases;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::process::Command;

use databases::{Backend, open_fresh};
use onshi_gateway::activation::registry::{
    DEMO_FACILITIES, RowError, SYNTHETIC_SEED, fixture_facility, parse_facilities_csv,
    parse_municipalities_csv, seed_if_empty, synthetic,
};
use onshi_gateway::demo;
use onshi_gateway::domain::facility::{FacilityKind, make_facility_code, parse_facility_code};
use onshi_gateway::domain::municipality::parse_municipality_code;
use onshi_gateway::domain::prefecture::Prefecture;
use onshi_gateway::store::{Municipality, RegisteredFacility, RegistryCounts};

/// One `#[tokio::test]` per backend for a contract.
macro_rules! on_both {
    ($contract:ident: $sqlite:ident, $postgres:ident) => {
        #[tokio::test]
        async fn $sqlite() {
            $contract(Backend::Sqlite).await
        }
        #[tokio::test]
        async fn $postgres() {
            $contract(Backend::Postgres).await
        }
    };
}

on_both!(load_and_look_up: sqlite_load_and_look_up, postgres_load_and_look_up);
on_both!(counts_include_empty_municipalities: sqlite_counts_include_empty_municipalities, postgres_counts_include_empty_municipalities);
on_both!(reload_upserts: sqlite_reload_upserts, postgres_reload_upserts);
on_both!(counts_by_kind: sqlite_counts_by_kind, postgres_counts_by_kind);
on_both!(synthetic_seed_loads_once: sqlite_synthetic_seed_loads_once, postgres_synthetic_seed_loads_once);
on_both!(replace_keeps_nothing_of_the_seed: sqlite_replace_keeps_nothing_of_the_seed, postgres_replace_keeps_nothing_of_the_seed);

fn muni(code: &str, name: &str) -> Municipality {
    Municipality {
        code: code.into(),
        name: name.into(),
        prefecture: code[..2].parse().unwrap(),
    }
}

fn facility(
    prefecture: u8,
    kind: FacilityKind,
    number: u16,
    name: &str,
    municipality: &str,
) -> RegisteredFacility {
    let p = Prefecture::new(prefecture).unwrap();
    RegisteredFacility {
        code: make_facility_code(p, kind, 1, number).to_string(),
        name: name.into(),
        kind,
        prefecture,
        municipality: municipality.into(),
        emergency_hospital: false,
    }
}

fn noto() -> Vec<Municipality> {
    vec![
        muni("17201", "金沢市"),
        muni("17204", "輪島市"),
        muni("17205", "珠洲市"),
        muni("17212", "野々市市"),
        muni("04202", "石巻市"),
    ]
}

fn noto_facilities() -> Vec<RegisteredFacility> {
    vec![
        facility(
            17,
            FacilityKind::Medical,
            1001,
            "輪島中央クリニック",
            "17204",
        ),
        facility(17, FacilityKind::Pharmacy, 4001, "輪島さくら薬局", "17204"),
        facility(17, FacilityKind::Dental, 3001, "金沢駅前歯科医院", "17201"),
        facility(
            17,
            FacilityKind::VisitingNursing,
            9001,
            "珠洲訪問看護ステーション",
            "17205",
        ),
        facility(
            4,
            FacilityKind::Medical,
            1001,
            "石巻中央クリニック",
            "04202",
        ),
    ]
}

async fn load_and_look_up(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    assert_eq!(
        store.registry_counts().await.unwrap(),
        RegistryCounts::default()
    );
    let facilities = noto_facilities();
    let counts = store.load_registry(&noto(), &facilities).await.unwrap();
    assert_eq!(
        counts,
        RegistryCounts {
            municipalities: 5,
            facilities: 5
        }
    );
    assert_eq!(store.registry_counts().await.unwrap(), counts);
    for f in &facilities {
        assert_eq!(store.facility(&f.code).await.unwrap().as_ref(), Some(f));
    }
    assert_eq!(
        store.municipality("17204").await.unwrap(),
        Some(muni("17204", "輪島市"))
    );
    assert_eq!(store.municipality("17999").await.unwrap(), None);
    let unknown = make_facility_code(Prefecture::new(17).unwrap(), FacilityKind::Medical, 1, 1999);
    assert_eq!(store.facility(unknown.as_str()).await.unwrap(), None);
}

async fn counts_include_empty_municipalities(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    store
        .load_registry(&noto(), &noto_facilities())
        .await
        .unwrap();
    let ishikawa = store.facility_counts(&[17]).await.unwrap();
    let listed: Vec<(&str, &str, u64)> = ishikawa
        .iter()
        .map(|(m, n)| (m.code.as_str(), m.name.as_str(), *n))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("17201", "金沢市", 1),
            ("17204", "輪島市", 2),
            ("17205", "珠洲市", 1),
            ("17212", "野々市市", 0),
        ]
    );
    assert!(ishikawa.iter().all(|(m, _)| m.prefecture == 17));
    let both = store.facility_counts(&[17, 4]).await.unwrap();
    let codes: Vec<&str> = both.iter().map(|(m, _)| m.code.as_str()).collect();
    assert_eq!(codes, ["04202", "17201", "17204", "17205", "17212"]);
    assert_eq!(both[0].1, 1);
    assert!(store.facility_counts(&[13]).await.unwrap().is_empty());
    assert!(store.facility_counts(&[]).await.unwrap().is_empty());
}

async fn counts_by_kind(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    store
        .load_registry(&noto(), &noto_facilities())
        .await
        .unwrap();
    let wanted = ["17204".to_string(), "17205".into(), "17212".into()];
    let counts = store.facility_kind_counts(&wanted).await.unwrap();
    assert_eq!(
        counts,
        vec![
            ("17204".to_string(), FacilityKind::Medical, 1),
            ("17204".to_string(), FacilityKind::Pharmacy, 1),
            ("17205".to_string(), FacilityKind::VisitingNursing, 1),
        ]
    );
    assert!(store.facility_kind_counts(&[]).await.unwrap().is_empty());
}

async fn reload_upserts(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    store
        .load_registry(&noto(), &noto_facilities())
        .await
        .unwrap();
    // The clinic moves from 輪島市 to 珠洲市; a municipality is renamed; one facility
    // and one municipality are new. Given twice in one load, the later entry wins.
    let mut moved = noto_facilities()[0].clone();
    moved.municipality = "17205".into();
    moved.name = "珠洲移転クリニック".into();
    let new = facility(17, FacilityKind::Medical, 1002, "能登町クリニック", "17463");
    let mut first_try = moved.clone();
    first_try.municipality = "17201".into();
    let counts = store
        .load_registry(
            &[
                muni("17463", "能登町"),
                muni("17204", "わじま市"),
                muni("17204", "輪島市"),
            ],
            &[first_try, moved.clone(), new.clone()],
        )
        .await
        .unwrap();
    assert_eq!(
        counts,
        RegistryCounts {
            municipalities: 6,
            facilities: 6
        }
    );
    assert_eq!(store.facility(&moved.code).await.unwrap(), Some(moved));
    assert_eq!(store.facility(&new.code).await.unwrap(), Some(new));
    assert_eq!(
        store.municipality("17204").await.unwrap(),
        Some(muni("17204", "輪島市"))
    );
    let counts: HashMap<String, u64> = store
        .facility_counts(&[17])
        .await
        .unwrap()
        .into_iter()
        .map(|(m, n)| (m.code, n))
        .collect();
    assert_eq!(counts["17204"], 1);
    assert_eq!(counts["17205"], 2);
    assert_eq!(counts["17463"], 1);
}

/// A real registry loaded with `replace` over the synthetic seed keeps none of it.
async fn replace_keeps_nothing_of_the_seed(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    seed_if_empty(store.as_ref()).await.unwrap();
    let seeded = fixture_facility("金沢市", FacilityKind::Medical);
    assert!(store.facility(&seeded).await.unwrap().is_some());
    let counts = store
        .replace_registry(&noto(), &noto_facilities())
        .await
        .unwrap();
    assert_eq!(
        counts,
        RegistryCounts {
            municipalities: 5,
            facilities: 5
        }
    );
    assert_eq!(store.facility(&seeded).await.unwrap(), None);
    assert_eq!(
        store.municipality("01100").await.unwrap(),
        None,
        "札幌市 was only in the seed"
    );
    for f in noto_facilities() {
        assert_eq!(store.facility(&f.code).await.unwrap(), Some(f));
    }
}

async fn synthetic_seed_loads_once(backend: Backend) {
    let (store, _keep) = open_fresh(backend).await;
    let (municipalities, facilities) = synthetic(SYNTHETIC_SEED);
    let counts = seed_if_empty(store.as_ref()).await.unwrap();
    assert_eq!(
        counts,
        RegistryCounts {
            municipalities: municipalities.len() as u64,
            facilities: facilities.len() as u64
        }
    );
    // Every municipality of Ishikawa is there with a few facilities.
    let ishikawa = store.facility_counts(&[17]).await.unwrap();
    assert_eq!(ishikawa.len(), 19);
    assert!(ishikawa.iter().all(|(_, n)| *n >= 4), "{ishikawa:?}");
    let wajima = fixture_facility("輪島市", FacilityKind::Medical);
    let f = store.facility(&wajima).await.unwrap().expect("registered");
    assert_eq!(f.municipality, "17204");

    // An operator's registry is never replaced by the seed.
    let mut changed = f.clone();
    changed.municipality = "17205".into();
    store.load_registry(&[], &[changed.clone()]).await.unwrap();
    assert_eq!(seed_if_empty(store.as_ref()).await.unwrap(), counts);
    assert_eq!(store.facility(&wajima).await.unwrap(), Some(changed));
}

// ---- CSV ----

const HEADER: &str = "code,name,kind,prefecture,municipality\n";

fn code(prefecture: u8, kind: FacilityKind, number: u16) -> String {
    make_facility_code(Prefecture::new(prefecture).unwrap(), kind, 1, number).to_string()
}

/// `code` with its check digit changed.
fn wrong_check(code: &str) -> String {
    let last = code.as_bytes()[9] - b'0';
    format!("{}{}", &code[..9], (last + 1) % 10)
}

#[test]
fn good_facilities_file() {
    let clinic = code(17, FacilityKind::Medical, 1001);
    let pharmacy = code(17, FacilityKind::Pharmacy, 4001);
    let nursing = code(4, FacilityKind::VisitingNursing, 9001);
    let csv = format!(
        "{HEADER}{clinic},輪島中央クリニック,medical,17,17204\n\
         \n\
         {pharmacy},\"輪島さくら薬局, 本町店\", Pharmacy ,17,172049\n\
         {nursing},石巻訪問看護ステーション,visiting_nursing,4,04202\n"
    );
    let parsed = parse_facilities_csv(csv.as_bytes()).unwrap();
    assert_eq!(
        parsed,
        vec![
            RegisteredFacility {
                code: clinic,
                name: "輪島中央クリニック".into(),
                kind: FacilityKind::Medical,
                prefecture: 17,
                municipality: "17204".into(),
                emergency_hospital: false,
            },
            RegisteredFacility {
                code: pharmacy,
                name: "輪島さくら薬局, 本町店".into(),
                kind: FacilityKind::Pharmacy,
                prefecture: 17,
                municipality: "17204".into(),
                emergency_hospital: false,
            },
            RegisteredFacility {
                code: nursing,
                name: "石巻訪問看護ステーション".into(),
                kind: FacilityKind::VisitingNursing,
                prefecture: 4,
                municipality: "04202".into(),
                emergency_hospital: false,
            },
        ]
    );
}

fn has(errors: &[RowError], line: u64, field: &str, words: &str) {
    assert!(
        errors
            .iter()
            .any(|e| e.line == line && e.field == field && e.reason.contains(words)),
        "no error at line {line}, {field} containing {words:?}: {errors:#?}"
    );
}

#[test]
fn every_bad_facility_row_is_reported_with_its_line() {
    let good = code(17, FacilityKind::Medical, 1001);
    let pharmacy = code(17, FacilityKind::Pharmacy, 4002);
    let rows = [
        format!("{good},輪島中央クリニック,medical,17,17204"), // 2: good
        format!(
            "{},誤りクリニック,medical,17,17204",
            wrong_check(&code(17, FacilityKind::Medical, 1003))
        ), // 3
        format!("{pharmacy},種別違い,medical,17,17204"),       // 4: kind vs code
        format!(
            "{},県違い,medical,4,17204",
            code(17, FacilityKind::Medical, 1004)
        ), // 5
        format!(
            "{},他県の市町村,medical,17,04202",
            code(17, FacilityKind::Medical, 1005)
        ), // 6
        format!(
            "{},検査数字違い,medical,17,172048",
            code(17, FacilityKind::Medical, 1006)
        ), // 7
        format!(
            "{},種別不明,clinic,17,17204",
            code(17, FacilityKind::Medical, 1007)
        ), // 8
        format!("{},列不足,medical", code(17, FacilityKind::Medical, 1008)), // 9
        format!("{good},重複,medical,17,17204"),               // 10: duplicate code
    ];
    let csv = format!("{HEADER}{}\n", rows.join("\n"));
    let errors = parse_facilities_csv(csv.as_bytes()).unwrap_err();
    has(&errors, 3, "code", "check digit");
    has(&errors, 4, "kind", "pharmacy");
    has(&errors, 5, "prefecture", "04 (宮城県)");
    has(
        &errors,
        6,
        "municipality",
        "04202 is a municipality of prefecture 04",
    );
    has(&errors, 7, "municipality", "does not match its check digit");
    has(&errors, 8, "kind", "\"clinic\"");
    has(&errors, 9, "prefecture", "missing");
    has(&errors, 10, "code", "already on line 2");
    assert!(errors.iter().all(|e| e.line != 2), "{errors:#?}");
    assert_eq!(
        errors.iter().map(|e| e.line).collect::<BTreeSet<_>>().len(),
        8,
        "{errors:#?}"
    );
}

#[test]
fn a_missing_column_is_reported_on_the_header() {
    let csv = format!(
        "code,name,kind,municipality\n{},輪島中央クリニック,medical,17204\n",
        code(17, FacilityKind::Medical, 1001)
    );
    let errors = parse_facilities_csv(csv.as_bytes()).unwrap_err();
    assert_eq!(
        errors,
        vec![RowError {
            line: 1,
            field: "prefecture".into(),
            reason: "missing column (the header must name code,name,kind,prefecture,municipality)"
                .into()
        }]
    );
    assert_eq!(
        errors[0].to_string(),
        "line 1, prefecture: missing column (the header must name code,name,kind,prefecture,municipality)"
    );
}

#[test]
fn municipalities_file() {
    let good = "code,name\n17201,金沢市\n172049,輪島市\n";
    assert_eq!(
        parse_municipalities_csv(good.as_bytes()).unwrap(),
        vec![muni("17201", "金沢市"), muni("17204", "輪島市")]
    );
    let bad = "code,name\n17201,金沢市\n172048,輪島市\n1720,短い\n48201,県外\n17205,\n17201,金沢\n";
    let errors = parse_municipalities_csv(bad.as_bytes()).unwrap_err();
    has(&errors, 3, "code", "does not match its check digit");
    has(&errors, 4, "code", "5 digits");
    has(&errors, 5, "code", "01-47");
    has(&errors, 6, "name", "empty");
    has(&errors, 7, "code", "already on line 2");
    assert_eq!(errors.len(), 5, "{errors:#?}");
}

// ---- the synthetic registry ----

#[test]
fn synthetic_registry_is_deterministic_and_realistic() {
    let (municipalities, facilities) = synthetic(7);
    assert_eq!(synthetic(7), (municipalities.clone(), facilities.clone()));
    let (other_m, other_f) = synthetic(8);
    assert_eq!(
        other_m, municipalities,
        "the master does not depend on the seed"
    );
    assert_ne!(other_f, facilities);

    // About 1,700 municipalities over all 47 prefectures, in code order.
    assert!(
        (1_650..=1_850).contains(&municipalities.len()),
        "{} municipalities",
        municipalities.len()
    );
    let prefectures: BTreeSet<u8> = municipalities.iter().map(|m| m.prefecture).collect();
    assert_eq!(prefectures, (1..=47).collect());
    assert!(municipalities.windows(2).all(|w| w[0].code < w[1].code));
    let mut names = HashSet::new();
    for m in &municipalities {
        let parsed = parse_municipality_code("code", &m.code).unwrap();
        assert_eq!(parsed.as_str(), m.code);
        assert_eq!(parsed.prefecture().code(), m.prefecture, "{m:?}");
        let n: u32 = m.code[2..].parse().unwrap();
        assert!((100..600).contains(&n), "{m:?}");
        assert!(
            ["市", "町", "村", "区"].iter().any(|s| m.name.ends_with(s)),
            "{m:?}"
        );
        if (200..300).contains(&n) {
            assert!(m.name.ends_with('市'), "{m:?}");
        }
        if n >= 300 {
            assert!(m.name.ends_with('町') || m.name.ends_with('村'), "{m:?}");
        }
        assert!(names.insert((m.prefecture, m.name.clone())), "{m:?} twice");
    }
    assert!(
        municipalities
            .iter()
            .any(|m| m.name == "横浜市鶴見区" && m.code == "14101")
    );

    // Tens of thousands of facilities, every code valid and unique, each in a
    // municipality of its own prefecture, spread by population.
    assert!(
        (30_000..=60_000).contains(&facilities.len()),
        "{} facilities",
        facilities.len()
    );
    let master: HashMap<&str, &Municipality> = municipalities
        .iter()
        .map(|m| (m.code.as_str(), m))
        .collect();
    let mut codes = HashSet::new();
    let mut per_prefecture: HashMap<u8, usize> = HashMap::new();
    let mut per_municipality: HashMap<&str, usize> = HashMap::new();
    let mut kinds: HashMap<FacilityKind, usize> = HashMap::new();
    for f in &facilities {
        let parsed = parse_facility_code("code", &f.code).unwrap();
        assert_eq!(parsed.prefecture().code(), f.prefecture, "{f:?}");
        assert_eq!(parsed.kind(), f.kind, "{f:?}");
        assert!(codes.insert(f.code.as_str()), "{} twice", f.code);
        let m = master
            .get(f.municipality.as_str())
            .unwrap_or_else(|| panic!("{f:?}: municipality not in the master"));
        assert_eq!(m.prefecture, f.prefecture, "{f:?}");
        assert!(!f.name.is_empty());
        *per_prefecture.entry(f.prefecture).or_default() += 1;
        *per_municipality.entry(f.municipality.as_str()).or_default() += 1;
        *kinds.entry(f.kind).or_default() += 1;
    }
    assert_eq!(per_prefecture.len(), 47);
    for m in &municipalities {
        assert!(
            per_municipality.get(m.code.as_str()).copied().unwrap_or(0) >= 4,
            "{m:?} has too few facilities"
        );
    }
    // Tokyo has far more than Tottori; Ishikawa more than Fukui.
    assert!(per_prefecture[&13] > 10 * per_prefecture[&31]);
    assert!(kinds[&FacilityKind::Medical] > kinds[&FacilityKind::Pharmacy]);
    assert!(kinds[&FacilityKind::Pharmacy] > kinds[&FacilityKind::VisitingNursing]);
    assert!(
        facilities
            .iter()
            .any(|f| f.name.ends_with("薬局") || f.name.contains("薬局 "))
    );
}

/// The real municipalities of the activations we replay, with their real codes.
const REQUIRED: &[(&str, &str)] = &[
    ("17201", "金沢市"),
    ("17202", "七尾市"),
    ("17203", "小松市"),
    ("17204", "輪島市"),
    ("17205", "珠洲市"),
    ("17206", "加賀市"),
    ("17207", "羽咋市"),
    ("17209", "かほく市"),
    ("17210", "白山市"),
    ("17211", "能美市"),
    ("17212", "野々市市"),
    ("17324", "川北町"),
    ("17361", "津幡町"),
    ("17365", "内灘町"),
    ("17384", "志賀町"),
    ("17386", "宝達志水町"),
    ("17407", "中能登町"),
    ("17461", "穴水町"),
    ("17463", "能登町"),
    ("15100", "新潟市"),
    ("15202", "長岡市"),
    ("15222", "上越市"),
    ("15223", "阿賀野市"),
    ("15224", "佐渡市"),
    ("16201", "富山市"),
    ("16202", "高岡市"),
    ("16204", "魚津市"),
    ("16205", "氷見市"),
    ("16206", "滑川市"),
    ("16207", "黒部市"),
    ("16208", "砺波市"),
    ("16209", "小矢部市"),
    ("16210", "南砺市"),
    ("16211", "射水市"),
    ("18201", "福井市"),
    ("18202", "敦賀市"),
    ("18204", "小浜市"),
    ("18205", "大野市"),
    ("18206", "勝山市"),
    ("18207", "鯖江市"),
    ("18208", "あわら市"),
    ("18209", "越前市"),
    ("18210", "坂井市"),
    ("32203", "出雲市"),
    ("40202", "大牟田市"),
    ("40203", "久留米市"),
    ("40207", "柳川市"),
    ("40210", "八女市"),
    ("40211", "筑後市"),
    ("40212", "大川市"),
    ("40216", "小郡市"),
    ("40225", "うきは市"),
    ("40228", "朝倉市"),
    ("40229", "みやま市"),
    ("41201", "佐賀市"),
    ("41202", "唐津市"),
    ("41205", "伊万里市"),
    ("44203", "中津市"),
    ("44204", "日田市"),
    ("23214", "蒲郡市"),
    ("45201", "宮崎市"),
    ("45202", "都城市"),
    ("45203", "延岡市"),
    ("45204", "日南市"),
    ("45205", "小林市"),
    ("45206", "日向市"),
    ("45207", "串間市"),
    ("45208", "西都市"),
    ("45209", "えびの市"),
    ("45341", "三股町"),
    ("45361", "高原町"),
    ("45382", "国富町"),
    ("45383", "綾町"),
    ("45401", "高鍋町"),
    ("45402", "新富町"),
    ("45403", "西米良村"),
    ("45404", "木城町"),
    ("45405", "川南町"),
    ("45406", "都農町"),
    ("45421", "門川町"),
    ("45429", "諸塚村"),
    ("45430", "椎葉村"),
    ("45431", "美郷町"),
    ("45441", "高千穂町"),
    ("45442", "日之影町"),
    ("45443", "五ヶ瀬町"),
    ("04100", "仙台市"),
    ("04202", "石巻市"),
    ("07201", "福島市"),
    ("46201", "鹿児島市"),
    ("01100", "札幌市"),
];

#[test]
fn synthetic_master_holds_the_real_municipalities_of_past_activations() {
    let (municipalities, _) = synthetic(SYNTHETIC_SEED);
    let by_code: HashMap<&str, &str> = municipalities
        .iter()
        .map(|m| (m.code.as_str(), m.name.as_str()))
        .collect();
    for (code, name) in REQUIRED {
        assert_eq!(by_code.get(code), Some(name), "{code}");
    }
    // Whole prefectures whose real lists are complete: Ishikawa's 19 (the Noto
    // extensions), Miyazaki's 26 (typhoon No. 10).
    assert_eq!(
        municipalities.iter().filter(|m| m.prefecture == 17).count(),
        19
    );
    assert_eq!(
        municipalities.iter().filter(|m| m.prefecture == 45).count(),
        26
    );
    // No synthetic name sits on a real code, and real names are not reused.
    let real_names: HashSet<&str> = REQUIRED.iter().map(|(_, n)| *n).collect();
    for m in &municipalities {
        if real_names.contains(m.name.as_str()) {
            assert!(
                REQUIRED.contains(&(m.code.as_str(), m.name.as_str())),
                "{m:?}"
            );
        }
    }
}

#[test]
fn demo_and_fixture_facilities_are_registered() {
    let (_, facilities) = synthetic(SYNTHETIC_SEED);
    let by_code: HashMap<&str, &RegisteredFacility> =
        facilities.iter().map(|f| (f.code.as_str(), f)).collect();
    for (prefecture, kind, number, municipality) in DEMO_FACILITIES {
        let code = demo::facility(prefecture, kind, number).to_string();
        let f = by_code
            .get(code.as_str())
            .unwrap_or_else(|| panic!("{code}"));
        assert_eq!(f.municipality, municipality);
        assert_eq!(f.kind, kind);
    }
    let miyagi = demo::facility(4, FacilityKind::Medical, 1001).to_string();
    assert_eq!(by_code[miyagi.as_str()].municipality, "04202");
    let fukushima = demo::facility(7, FacilityKind::Pharmacy, 4001).to_string();
    assert_eq!(by_code[fukushima.as_str()].municipality, "07201");
    let tokyo = demo::facility(13, FacilityKind::Medical, 1001).to_string();
    assert_eq!(&by_code[tokyo.as_str()].municipality[..2], "13");

    for (municipality, code) in [("輪島市", "17204"), ("金沢市", "17201"), ("17324", "17324")]
    {
        for kind in FacilityKind::ALL {
            let f = fixture_facility(municipality, kind);
            let registered = by_code.get(f.as_str()).unwrap_or_else(|| panic!("{f}"));
            assert_eq!(registered.municipality, code);
            assert_eq!(registered.kind, kind);
        }
    }
    // The same in every seed's registry.
    let (_, other) = synthetic(99);
    let wajima = fixture_facility("17204", FacilityKind::Pharmacy);
    assert!(
        other
            .iter()
            .any(|f| f.code == wajima && f.municipality == "17204")
    );
}

// ---- the command line ----

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_onshi-gateway"))
}

#[test]
fn registry_load_and_show_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let clinic = code(17, FacilityKind::Medical, 1001);
    let facilities = dir.path().join("facilities.csv");
    std::fs::write(
        &facilities,
        format!("{HEADER}{clinic},輪島中央クリニック,medical,17,172049\n"),
    )
    .unwrap();
    let municipalities = dir.path().join("municipalities.csv");
    std::fs::write(&municipalities, "code,name\n17204,輪島市\n").unwrap();

    let out = bin()
        .args(["registry", "load", "--data-dir"])
        .arg(&data)
        .arg("--facilities")
        .arg(&facilities)
        .arg("--municipalities")
        .arg(&municipalities)
        .env_remove("ONSHI_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("loaded 1 municipalities and 1 facilities"),
        "{stdout}"
    );

    let out = bin()
        .args(["registry", "show", "--data-dir"])
        .arg(&data)
        .arg(&clinic)
        .env_remove("ONSHI_DATABASE_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("輪島中央クリニック"), "{stdout}");
    assert!(stdout.contains("17204 輪島市 (172049)"), "{stdout}");
    assert!(stdout.contains("17 石川県"), "{stdout}");

    // A bad file: every row error printed, exit 2, nothing loaded.
    let bad = dir.path().join("bad.csv");
    let moved = code(17, FacilityKind::Medical, 1002);
    std::fs::write(
        &bad,
        format!(
            "{HEADER}{moved},新しいクリニック,medical,17,17204\n{},誤り,medical,17,17204\n{clinic},移転,medical,17,04202\n",
            wrong_check(&code(17, FacilityKind::Medical, 1003))
        ),
    )
    .unwrap();
    let out = bin()
        .args(["registry", "load", "--data-dir"])
        .arg(&data)
        .arg("--facilities")
        .arg(&bad)
        .env_remove("ONSHI_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 3, code:"), "{stderr}");
    assert!(stderr.contains("line 4, municipality:"), "{stderr}");
    assert!(stderr.contains("nothing was loaded"), "{stderr}");

    // A municipality missing from the master is refused the same way.
    let unknown = dir.path().join("unknown.csv");
    std::fs::write(
        &unknown,
        format!("{HEADER}{moved},金沢のクリニック,medical,17,17201\n"),
    )
    .unwrap();
    let out = bin()
        .args(["registry", "load", "--data-dir"])
        .arg(&data)
        .arg("--facilities")
        .arg(&unknown)
        .env_remove("ONSHI_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 2, municipality: 17201 is not in the municipality master"),
        "{stderr}"
    );

    let out = bin()
        .args(["registry", "show", "--data-dir"])
        .arg(&data)
        .arg(&moved)
        .env_remove("ONSHI_DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "nothing of the bad files was loaded"
    );
    let out = bin()
        .args(["registry", "show", "--data-dir"])
        .arg(&data)
        .arg(&clinic)
        .env_remove("ONSHI_DATABASE_URL")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("17204 輪島市"));
}
