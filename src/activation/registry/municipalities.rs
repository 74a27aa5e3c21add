//! The synthetic municipality master: real municipalities where the replayed
//! activations and the simulator's places need them, completed per prefecture with
//! synthetic ones up to the real number of cities, towns and villages.
//!
//! Structure follows JIS X 0402: cities are PP2xx, towns and villages PP3xx–PP5xx
//! (grouped by district as real codes are), designated cities PP100 (PP130, PP140,
//! PP150 for a prefecture's second and third). Tokyo's 23 special wards are 131xx.
//! Three designated cities are listed by their wards instead of as one city
//! (横浜市 141xx, 名古屋市 231xx, 福岡市 4013x), so the master also has ordinary
//! designated-city wards; every other designated city is one municipality.
//!
//! The master does not depend on the seed: a municipality's code and name are the
//! same in every synthetic registry, and so are its fixture facilities.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::store::Municipality;

/// Real municipalities (JIS X 0402 code without check digit, name). Complete for
/// Tokyo, Niigata, Toyama, Ishikawa, Fukui and Miyazaki; elsewhere the capital, the
/// places of past activations and of the simulator's addresses.
pub(super) const REAL: &[(&str, &str)] = &[
    // 01 北海道
    ("01100", "札幌市"),
    ("01202", "函館市"),
    ("01203", "小樽市"),
    ("01204", "旭川市"),
    ("01205", "室蘭市"),
    ("01206", "釧路市"),
    ("01207", "帯広市"),
    ("01208", "北見市"),
    // 02 青森県
    ("02201", "青森市"),
    ("02202", "弘前市"),
    ("02203", "八戸市"),
    // 03 岩手県
    ("03201", "盛岡市"),
    ("03202", "宮古市"),
    ("03203", "大船渡市"),
    ("03205", "花巻市"),
    ("03206", "北上市"),
    ("03209", "一関市"),
    ("03210", "陸前高田市"),
    ("03211", "釜石市"),
    // 04 宮城県 (all 14 cities)
    ("04100", "仙台市"),
    ("04202", "石巻市"),
    ("04203", "塩竈市"),
    ("04205", "気仙沼市"),
    ("04206", "白石市"),
    ("04207", "名取市"),
    ("04208", "角田市"),
    ("04209", "多賀城市"),
    ("04211", "岩沼市"),
    ("04212", "登米市"),
    ("04213", "栗原市"),
    ("04214", "東松島市"),
    ("04215", "大崎市"),
    ("04216", "富谷市"),
    // 05 秋田県
    ("05201", "秋田市"),
    ("05202", "能代市"),
    ("05203", "横手市"),
    ("05204", "大館市"),
    // 06 山形県
    ("06201", "山形市"),
    ("06202", "米沢市"),
    ("06203", "鶴岡市"),
    ("06204", "酒田市"),
    // 07 福島県 (all 13 cities)
    ("07201", "福島市"),
    ("07202", "会津若松市"),
    ("07203", "郡山市"),
    ("07204", "いわき市"),
    ("07205", "白河市"),
    ("07207", "須賀川市"),
    ("07208", "喜多方市"),
    ("07209", "相馬市"),
    ("07210", "二本松市"),
    ("07211", "田村市"),
    ("07212", "南相馬市"),
    ("07213", "伊達市"),
    ("07214", "本宮市"),
    // 08 茨城県
    ("08201", "水戸市"),
    ("08202", "日立市"),
    ("08203", "土浦市"),
    ("08220", "つくば市"),
    // 09 栃木県
    ("09201", "宇都宮市"),
    ("09202", "足利市"),
    ("09203", "栃木市"),
    ("09208", "小山市"),
    // 10 群馬県
    ("10201", "前橋市"),
    ("10202", "高崎市"),
    ("10203", "桐生市"),
    ("10204", "伊勢崎市"),
    ("10205", "太田市"),
    // 11 埼玉県
    ("11100", "さいたま市"),
    ("11201", "川越市"),
    ("11202", "熊谷市"),
    ("11203", "川口市"),
    ("11208", "所沢市"),
    // 12 千葉県
    ("12100", "千葉市"),
    ("12202", "銚子市"),
    ("12203", "市川市"),
    ("12204", "船橋市"),
    ("12207", "松戸市"),
    ("12217", "柏市"),
    // 13 東京都 (complete: 23 special wards, 26 cities, 5 towns, 8 villages)
    ("13101", "千代田区"),
    ("13102", "中央区"),
    ("13103", "港区"),
    ("13104", "新宿区"),
    ("13105", "文京区"),
    ("13106", "台東区"),
    ("13107", "墨田区"),
    ("13108", "江東区"),
    ("13109", "品川区"),
    ("13110", "目黒区"),
    ("13111", "大田区"),
    ("13112", "世田谷区"),
    ("13113", "渋谷区"),
    ("13114", "中野区"),
    ("13115", "杉並区"),
    ("13116", "豊島区"),
    ("13117", "北区"),
    ("13118", "荒川区"),
    ("13119", "板橋区"),
    ("13120", "練馬区"),
    ("13121", "足立区"),
    ("13122", "葛飾区"),
    ("13123", "江戸川区"),
    ("13201", "八王子市"),
    ("13202", "立川市"),
    ("13203", "武蔵野市"),
    ("13204", "三鷹市"),
    ("13205", "青梅市"),
    ("13206", "府中市"),
    ("13207", "昭島市"),
    ("13208", "調布市"),
    ("13209", "町田市"),
    ("13210", "小金井市"),
    ("13211", "小平市"),
    ("13212", "日野市"),
    ("13213", "東村山市"),
    ("13214", "国分寺市"),
    ("13215", "国立市"),
    ("13218", "福生市"),
    ("13219", "狛江市"),
    ("13220", "東大和市"),
    ("13221", "清瀬市"),
    ("13222", "東久留米市"),
    ("13223", "武蔵村山市"),
    ("13224", "多摩市"),
    ("13225", "稲城市"),
    ("13227", "羽村市"),
    ("13228", "あきる野市"),
    ("13229", "西東京市"),
    ("13303", "瑞穂町"),
    ("13305", "日の出町"),
    ("13307", "檜原村"),
    ("13308", "奥多摩町"),
    ("13361", "大島町"),
    ("13362", "利島村"),
    ("13363", "新島村"),
    ("13364", "神津島村"),
    ("13381", "三宅村"),
    ("13382", "御蔵島村"),
    ("13401", "八丈町"),
    ("13402", "青ヶ島村"),
    ("13421", "小笠原村"),
    // 14 神奈川県: 横浜市 by its wards
    ("14101", "横浜市鶴見区"),
    ("14102", "横浜市神奈川区"),
    ("14103", "横浜市西区"),
    ("14104", "横浜市中区"),
    ("14105", "横浜市南区"),
    ("14106", "横浜市保土ケ谷区"),
    ("14107", "横浜市磯子区"),
    ("14108", "横浜市金沢区"),
    ("14109", "横浜市港北区"),
    ("14110", "横浜市戸塚区"),
    ("14111", "横浜市港南区"),
    ("14112", "横浜市旭区"),
    ("14113", "横浜市緑区"),
    ("14114", "横浜市瀬谷区"),
    ("14115", "横浜市栄区"),
    ("14116", "横浜市泉区"),
    ("14117", "横浜市青葉区"),
    ("14118", "横浜市都筑区"),
    ("14130", "川崎市"),
    ("14150", "相模原市"),
    ("14201", "横須賀市"),
    ("14203", "平塚市"),
    ("14204", "鎌倉市"),
    ("14205", "藤沢市"),
    // 15 新潟県 (complete)
    ("15100", "新潟市"),
    ("15202", "長岡市"),
    ("15204", "三条市"),
    ("15205", "柏崎市"),
    ("15206", "新発田市"),
    ("15208", "小千谷市"),
    ("15209", "加茂市"),
    ("15210", "十日町市"),
    ("15211", "見附市"),
    ("15212", "村上市"),
    ("15213", "燕市"),
    ("15216", "糸魚川市"),
    ("15217", "妙高市"),
    ("15218", "五泉市"),
    ("15222", "上越市"),
    ("15223", "阿賀野市"),
    ("15224", "佐渡市"),
    ("15225", "魚沼市"),
    ("15226", "南魚沼市"),
    ("15227", "胎内市"),
    ("15307", "聖籠町"),
    ("15342", "弥彦村"),
    ("15361", "田上町"),
    ("15385", "阿賀町"),
    ("15405", "出雲崎町"),
    ("15461", "湯沢町"),
    ("15482", "津南町"),
    ("15504", "刈羽村"),
    ("15581", "関川村"),
    ("15586", "粟島浦村"),
    // 16 富山県 (complete)
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
    ("16321", "舟橋村"),
    ("16322", "上市町"),
    ("16323", "立山町"),
    ("16342", "入善町"),
    ("16343", "朝日町"),
    // 17 石川県 (complete)
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
    // 18 福井県 (complete)
    ("18201", "福井市"),
    ("18202", "敦賀市"),
    ("18204", "小浜市"),
    ("18205", "大野市"),
    ("18206", "勝山市"),
    ("18207", "鯖江市"),
    ("18208", "あわら市"),
    ("18209", "越前市"),
    ("18210", "坂井市"),
    ("18322", "永平寺町"),
    ("18382", "池田町"),
    ("18404", "南越前町"),
    ("18423", "越前町"),
    ("18442", "美浜町"),
    ("18481", "高浜町"),
    ("18483", "おおい町"),
    ("18501", "若狭町"),
    // 19 山梨県
    ("19201", "甲府市"),
    ("19202", "富士吉田市"),
    // 20 長野県
    ("20201", "長野市"),
    ("20202", "松本市"),
    ("20203", "上田市"),
    // 21 岐阜県
    ("21201", "岐阜市"),
    ("21202", "大垣市"),
    ("21203", "高山市"),
    // 22 静岡県
    ("22100", "静岡市"),
    ("22130", "浜松市"),
    ("22203", "沼津市"),
    // 23 愛知県: 名古屋市 by its wards
    ("23101", "名古屋市千種区"),
    ("23102", "名古屋市東区"),
    ("23103", "名古屋市北区"),
    ("23104", "名古屋市西区"),
    ("23105", "名古屋市中村区"),
    ("23106", "名古屋市中区"),
    ("23107", "名古屋市昭和区"),
    ("23108", "名古屋市瑞穂区"),
    ("23109", "名古屋市熱田区"),
    ("23110", "名古屋市中川区"),
    ("23111", "名古屋市港区"),
    ("23112", "名古屋市南区"),
    ("23113", "名古屋市守山区"),
    ("23114", "名古屋市緑区"),
    ("23115", "名古屋市名東区"),
    ("23116", "名古屋市天白区"),
    ("23201", "豊橋市"),
    ("23202", "岡崎市"),
    ("23211", "豊田市"),
    ("23214", "蒲郡市"),
    // 24 三重県
    ("24201", "津市"),
    ("24202", "四日市市"),
    ("24203", "伊勢市"),
    // 25 滋賀県
    ("25201", "大津市"),
    ("25202", "彦根市"),
    ("25206", "草津市"),
    // 26 京都府
    ("26100", "京都市"),
    ("26202", "舞鶴市"),
    ("26204", "宇治市"),
    // 27 大阪府
    ("27100", "大阪市"),
    ("27140", "堺市"),
    ("27203", "豊中市"),
    ("27227", "東大阪市"),
    // 28 兵庫県
    ("28100", "神戸市"),
    ("28201", "姫路市"),
    ("28202", "尼崎市"),
    ("28204", "西宮市"),
    // 29 奈良県
    ("29201", "奈良市"),
    ("29205", "橿原市"),
    ("29209", "生駒市"),
    // 30 和歌山県
    ("30201", "和歌山市"),
    ("30206", "田辺市"),
    // 31 鳥取県 (all 4 cities)
    ("31201", "鳥取市"),
    ("31202", "米子市"),
    ("31203", "倉吉市"),
    ("31204", "境港市"),
    // 32 島根県
    ("32201", "松江市"),
    ("32202", "浜田市"),
    ("32203", "出雲市"),
    ("32204", "益田市"),
    // 33 岡山県
    ("33100", "岡山市"),
    ("33202", "倉敷市"),
    ("33203", "津山市"),
    // 34 広島県
    ("34100", "広島市"),
    ("34202", "呉市"),
    ("34207", "福山市"),
    // 35 山口県
    ("35201", "下関市"),
    ("35202", "宇部市"),
    ("35203", "山口市"),
    // 36 徳島県
    ("36201", "徳島市"),
    ("36204", "阿南市"),
    // 37 香川県
    ("37201", "高松市"),
    ("37202", "丸亀市"),
    // 38 愛媛県
    ("38201", "松山市"),
    ("38202", "今治市"),
    ("38205", "新居浜市"),
    // 39 高知県
    ("39201", "高知市"),
    ("39204", "南国市"),
    // 40 福岡県: 福岡市 by its wards
    ("40100", "北九州市"),
    ("40131", "福岡市東区"),
    ("40132", "福岡市博多区"),
    ("40133", "福岡市中央区"),
    ("40134", "福岡市南区"),
    ("40135", "福岡市西区"),
    ("40136", "福岡市城南区"),
    ("40137", "福岡市早良区"),
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
    // 41 佐賀県
    ("41201", "佐賀市"),
    ("41202", "唐津市"),
    ("41205", "伊万里市"),
    // 42 長崎県
    ("42201", "長崎市"),
    ("42202", "佐世保市"),
    ("42204", "諫早市"),
    // 43 熊本県
    ("43100", "熊本市"),
    ("43202", "八代市"),
    ("43215", "天草市"),
    // 44 大分県
    ("44201", "大分市"),
    ("44202", "別府市"),
    ("44203", "中津市"),
    ("44204", "日田市"),
    // 45 宮崎県 (complete)
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
    // 46 鹿児島県
    ("46201", "鹿児島市"),
    ("46203", "鹿屋市"),
    ("46218", "霧島市"),
    ("46222", "奄美市"),
    // 47 沖縄県
    ("47201", "那覇市"),
    ("47208", "浦添市"),
    ("47211", "沖縄市"),
    ("47214", "宮古島市"),
];

/// Per prefecture (index = code − 1): population in units of 10,000 (2020 census,
/// rounded), and the real numbers of cities, towns and villages. Tokyo's 23 special
/// wards are in addition to its 26 cities.
const SHAPE: [(u32, usize, usize, usize); 47] = [
    (522, 35, 129, 15),
    (124, 10, 22, 8),
    (121, 14, 15, 4),
    (230, 14, 20, 1),
    (96, 13, 9, 3),
    (107, 13, 19, 3),
    (183, 13, 31, 15),
    (287, 32, 10, 2),
    (193, 14, 11, 0),
    (194, 12, 15, 8),
    (734, 40, 22, 1),
    (628, 37, 16, 1),
    (1405, 26, 5, 8),
    (924, 19, 13, 1),
    (220, 20, 6, 4),
    (103, 10, 4, 1),
    (113, 11, 8, 0),
    (77, 9, 8, 0),
    (81, 13, 8, 6),
    (205, 19, 23, 35),
    (198, 21, 19, 2),
    (363, 23, 12, 0),
    (754, 38, 14, 2),
    (177, 14, 15, 0),
    (141, 13, 6, 0),
    (258, 15, 10, 1),
    (884, 33, 9, 1),
    (547, 29, 12, 0),
    (132, 12, 15, 12),
    (92, 9, 20, 1),
    (55, 4, 14, 1),
    (67, 8, 10, 1),
    (189, 15, 10, 2),
    (280, 14, 9, 0),
    (134, 13, 6, 0),
    (72, 8, 15, 1),
    (95, 8, 9, 0),
    (133, 11, 9, 0),
    (69, 11, 17, 6),
    (514, 29, 29, 2),
    (81, 10, 10, 0),
    (131, 13, 8, 0),
    (174, 14, 23, 8),
    (112, 14, 3, 1),
    (107, 9, 14, 3),
    (159, 19, 20, 4),
    (147, 11, 11, 19),
];

/// Prefectural capitals that are not designated cities: more facilities.
const CAPITALS: [&str; 32] = [
    "02201", "03201", "05201", "06201", "07201", "08201", "09201", "10201", "16201", "17201",
    "18201", "19201", "20201", "21201", "24201", "25201", "29201", "30201", "31201", "32201",
    "35203", "36201", "37201", "38201", "39201", "41201", "42201", "44201", "45201", "46201",
    "47201", "13104",
];

/// Population in units of 10,000 of prefecture `code` (1..=47).
pub(super) fn prefecture_population(code: u8) -> u32 {
    SHAPE
        .get(usize::from(code).wrapping_sub(1))
        .map_or(0, |s| s.0)
}

/// What kind of municipality: decides how many facilities it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    DesignatedCity,
    Ward,
    Capital,
    City,
    Town,
    Village,
}

impl Class {
    pub(super) fn of(code: &str, name: &str) -> Class {
        let n3: u32 = code.get(2..5).and_then(|s| s.parse().ok()).unwrap_or(0);
        if CAPITALS.contains(&code) {
            Class::Capital
        } else if name.ends_with('区') {
            Class::Ward
        } else if n3 < 200 {
            Class::DesignatedCity
        } else if name.ends_with('市') {
            Class::City
        } else if name.ends_with('村') {
            Class::Village
        } else {
            Class::Town
        }
    }

    /// Relative share of its prefecture's facilities.
    pub(super) fn weight(self) -> u32 {
        match self {
            Class::DesignatedCity => 120,
            Class::Capital => 60,
            Class::Ward => 30,
            Class::City => 12,
            Class::Town => 3,
            Class::Village => 1,
        }
    }
}

/// The name without its 市/町/村/区 ending, as facilities are named after it: the
/// ward for a designated city's ward (横浜市鶴見区 → 鶴見), 野々市市 → 野々市.
pub(super) fn short_name(name: &str) -> &str {
    let after_city = match name.find('市') {
        Some(i) if name.ends_with('区') && i + '市'.len_utf8() < name.len() => {
            &name[i + '市'.len_utf8()..]
        }
        _ => name,
    };
    after_city
        .strip_suffix(['市', '区', '町', '村'])
        .filter(|s| !s.is_empty())
        .unwrap_or(after_city)
}

const FIRST: [&str; 48] = [
    "北", "南", "東", "西", "上", "下", "中", "大", "小", "高", "新", "本", "若", "松", "竹", "梅",
    "桜", "青", "白", "黒", "赤", "金", "川", "山", "野", "岡", "森", "宮", "富", "福", "長", "広",
    "平", "安", "美", "豊", "栄", "朝", "日", "花", "石", "岩", "鶴", "鷹", "藤", "柳", "杉", "吉",
];
const SECOND: [&str; 36] = [
    "川", "山", "田", "野", "原", "島", "浜", "岡", "沢", "谷", "宮", "城", "津", "崎", "瀬", "井",
    "江", "浦", "根", "倉", "木", "橋", "里", "坂", "尾", "部", "見", "和", "台", "丘", "生", "内",
    "森", "戸", "賀", "郷",
];
const DIRECTION: [&str; 8] = ["東", "西", "南", "北", "上", "下", "新", "大"];

/// A synthetic place name not yet in `taken` (without its ending).
fn place_name(rng: &mut ChaCha8Rng, taken: &HashSet<String>, ending: &str) -> String {
    loop {
        let first = FIRST[rng.gen_range(0..FIRST.len())];
        let second = SECOND[rng.gen_range(0..SECOND.len())];
        if first == second {
            continue;
        }
        let stem = if rng.gen_bool(0.25) {
            let d = DIRECTION[rng.gen_range(0..DIRECTION.len())];
            if d == first {
                continue;
            }
            format!("{d}{first}{second}")
        } else {
            format!("{first}{second}")
        };
        let name = format!("{stem}{ending}");
        if !taken.contains(&name) && !taken.contains(&stem) {
            return name;
        }
    }
}

/// Codes for `n` synthetic towns and villages in PP3xx–PP5xx, grouped by district
/// as real codes are: a district's towns have consecutive codes, and districts
/// start at x01, x21, x41, … spread over the range.
fn town_codes(used: &BTreeSet<u32>, n: usize) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let groups = n.div_ceil(4).clamp(1, 14) as u32;
    let stride = (280 / groups / 20 * 20).max(20);
    let per_group = n.div_ceil(groups as usize);
    for g in 0..groups {
        let start = 301 + g * stride;
        let mut here = 0;
        for code in start..(start + 19).min(600) {
            if here == per_group || out.len() == n {
                break;
            }
            if !used.contains(&code) {
                out.push(code);
                here += 1;
            }
        }
    }
    // Whatever did not fit in the districts takes the first free codes.
    for code in 301..600 {
        if out.len() == n {
            break;
        }
        if !used.contains(&code) && !out.contains(&code) {
            out.push(code);
        }
    }
    out.sort_unstable();
    out
}

/// Builds the master: every real entry, and synthetic cities, towns and villages up
/// to each prefecture's real numbers. Sorted by code.
pub(super) fn master() -> Vec<Municipality> {
    let mut by_pref: BTreeMap<u8, Vec<Municipality>> = BTreeMap::new();
    let mut taken: HashSet<String> = HashSet::new();
    for (code, name) in REAL {
        let pref: u8 = code[..2].parse().expect("real codes are digits");
        by_pref.entry(pref).or_default().push(Municipality {
            code: (*code).to_string(),
            name: (*name).to_string(),
            prefecture: pref,
        });
        taken.insert((*name).to_string());
        taken.insert(short_name(name).to_string());
    }
    // Names are drawn from a fixed stream: the master is the same for every seed.
    let mut rng = ChaCha8Rng::seed_from_u64(0x4A49_5358_0402);
    let mut out = Vec::new();
    for pref in 1..=47u8 {
        let (_, cities, towns, villages) = SHAPE[usize::from(pref) - 1];
        let mut entries = by_pref.remove(&pref).unwrap_or_default();
        let used: BTreeSet<u32> = entries
            .iter()
            .filter_map(|m| m.code[2..].parse().ok())
            .collect();
        // A city listed by its wards counts once.
        let split_cities: BTreeSet<&str> = entries
            .iter()
            .filter_map(|m| {
                let i = m.name.find('市')?;
                (m.name.ends_with('区') && i + '市'.len_utf8() < m.name.len()).then(|| &m.name[..i])
            })
            .collect();
        let real_cities =
            entries.iter().filter(|m| m.name.ends_with('市')).count() + split_cities.len();
        let real_towns = entries.iter().filter(|m| m.name.ends_with('町')).count();
        let real_villages = entries.iter().filter(|m| m.name.ends_with('村')).count();
        let new_cities = cities.saturating_sub(real_cities);
        let new_towns = towns.saturating_sub(real_towns);
        let new_villages = villages.saturating_sub(real_villages);

        let mut synthetic = Vec::new();
        let mut next_city = 201u32;
        for _ in 0..new_cities {
            while used.contains(&next_city) {
                next_city += 1;
            }
            let name = place_name(&mut rng, &taken, "市");
            taken.insert(name.clone());
            synthetic.push((next_city, name));
            next_city += 1;
        }
        let small = new_towns + new_villages;
        for (i, code) in town_codes(&used, small).into_iter().enumerate() {
            // Villages spread through the districts, as in mountain areas.
            let village = (i + 1) * new_villages / small.max(1) > i * new_villages / small.max(1);
            let name = place_name(&mut rng, &taken, if village { "村" } else { "町" });
            taken.insert(name.clone());
            synthetic.push((code, name));
        }
        entries.extend(synthetic.into_iter().map(|(code, name)| Municipality {
            code: format!("{pref:02}{code:03}"),
            name,
            prefecture: pref,
        }));
        entries.sort_by(|a, b| a.code.cmp(&b.code));
        out.extend(entries);
    }
    out
}
