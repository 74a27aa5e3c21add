//! The synthetic insured population: deterministic generation and indexes.
//!
//! Households are drawn per prefecture (weighted by real population), with a
//! head whose age follows Japan's adult age structure, a spouse and children.
//! The head's age decides the insurance: employee insurance with dependants,
//! national health insurance (every member insured, branches on one number), or
//! the late-elderly scheme from 75. A small share of records carry the unusual
//! statuses OQS returns (lost, replaced by a newer one, not yet registered), and a
//! few persons share a name and birth date with someone under another insurer.

use std::collections::HashMap;

use chrono::{Datelike, Months, NaiveDate, TimeDelta, Utc};
use rand::Rng;
use rand::SeedableRng;
use rand::distributions::{Distribution, WeightedIndex};
use rand_chacha::ChaCha8Rng;

use super::facilities::{Facilities, PHARMACIES_PER_MUNICIPALITY, SITES_PER_PREFECTURE};
use super::fixtures;
use super::insurers::{InsurerKind, Registry};
use super::medical::{self, Conditions};
use super::names::{self, NamePart};
use super::person::{Person, age_on, insured_key};
use super::places::{CHOME, PREFECTURES, TOWNS};
use crate::proto::{InsuredNumber, Sex};

/// Today's date in Japan (UTC+9, no daylight saving).
pub fn today_jst() -> NaiveDate {
    (Utc::now() + TimeDelta::hours(9)).date_naive()
}

/// The last day of `month` on or after `today` (this year's if not yet past,
/// else next year's): cards of national health insurance and the late-elderly
/// scheme expire at such month ends.
pub fn next_month_end(today: NaiveDate, month: u32) -> Option<NaiveDate> {
    let end_in = |year: i32| {
        NaiveDate::from_ymd_opt(year, month, 1)
            .and_then(|first| first.checked_add_months(Months::new(1)))
            .and_then(|next| next.pred_opt())
    };
    end_in(today.year())
        .filter(|d| *d >= today)
        .or_else(|| end_in(today.year() + 1))
}

/// Every insured person, indexed by insured number and by (birth date, sex).
#[derive(Debug)]
pub struct Population {
    persons: Vec<Person>,
    by_key: HashMap<String, u32>,
    /// Indices into `persons`, sorted by (birth date, sex, index).
    by_birth_and_sex: Vec<u32>,
    facilities: Facilities,
    today: NaiveDate,
    /// The seed the population was generated from: clinical records and
    /// e-prescriptions are derived from it per person, when asked for.
    seed: u64,
}

impl Population {
    /// The size the simulator serves by default: big enough for realistic
    /// crowds of namesakes, small enough to build in well under a second.
    pub const DEFAULT_SIZE: usize = 100_000;

    /// A population as of today in Japan.
    pub fn generate(seed: u64, size: usize) -> Population {
        Self::generate_at(seed, size, today_jst())
    }

    /// A population as of `today`: the same seed, size and day always give the
    /// same persons. The fixtures come first and are always present, so the
    /// result has at least the fixtures even when `size` is smaller.
    pub fn generate_at(seed: u64, size: usize, today: NaiveDate) -> Population {
        let facilities = Facilities::new();
        let mut persons = fixtures::persons(today, &facilities);
        let target = size.max(persons.len());
        persons.reserve_exact(target - persons.len());
        let mut generator = Generator::new(seed, today, &facilities);
        while persons.len() < target {
            generator.household(&mut persons, target);
        }
        Self::index(persons, facilities, today, seed)
    }

    fn index(
        persons: Vec<Person>,
        facilities: Facilities,
        today: NaiveDate,
        seed: u64,
    ) -> Population {
        let mut by_key = HashMap::with_capacity(persons.len());
        for (i, p) in persons.iter().enumerate() {
            // The first record wins; generation never produces duplicates.
            by_key.entry(p.key()).or_insert(i as u32);
        }
        let mut by_birth_and_sex: Vec<u32> = (0..persons.len() as u32).collect();
        by_birth_and_sex.sort_unstable_by_key(|&i| {
            let p = &persons[i as usize];
            (p.birth_date, p.sex as i32, i)
        });
        Population {
            persons,
            by_key,
            by_birth_and_sex,
            facilities,
            today,
            seed,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The reference day the records were generated for.
    pub fn today(&self) -> NaiveDate {
        self.today
    }

    pub fn len(&self) -> usize {
        self.persons.len()
    }

    pub fn is_empty(&self) -> bool {
        self.persons.is_empty()
    }

    /// All records, fixtures first.
    pub fn persons(&self) -> &[Person] {
        &self.persons
    }

    /// The record with exactly this insured number (parts compared trimmed).
    pub fn find(
        &self,
        insurer_number: &str,
        symbol: &str,
        number: &str,
        branch: &str,
    ) -> Option<&Person> {
        let key = insured_key(insurer_number, symbol, number, branch);
        self.by_key.get(&key).map(|&i| &self.persons[i as usize])
    }

    pub fn find_insured(&self, insured: &InsuredNumber) -> Option<&Person> {
        self.find(
            &insured.insurer_number,
            &insured.symbol,
            &insured.number,
            &insured.branch,
        )
    }

    /// Records born on `birth_date` with sex `sex`, in generation order.
    pub fn born_on(&self, birth_date: NaiveDate, sex: Sex) -> impl Iterator<Item = &Person> {
        let wanted = (birth_date, sex as i32);
        let of = |i: u32| {
            let p = &self.persons[i as usize];
            (p.birth_date, p.sex as i32)
        };
        let start = self.by_birth_and_sex.partition_point(|&i| of(i) < wanted);
        let end = self.by_birth_and_sex.partition_point(|&i| of(i) <= wanted);
        self.by_birth_and_sex[start..end]
            .iter()
            .map(|&i| &self.persons[i as usize])
    }

    /// Name of the pharmacy a [`medical::Dispensing`] refers to.
    pub fn pharmacy_name(&self, id: u32) -> &str {
        self.facilities.pharmacy_name(id)
    }

    /// Name of the site a [`medical::Checkup`] refers to.
    pub fn checkup_site_name(&self, id: u32) -> &str {
        self.facilities.site_name(id)
    }
}

/// Adults by 5-year band from 20-24 to 95-99, in units of 100,000 (2020 census),
/// for the age of household heads.
const ADULT_BANDS: [u32; 16] = [
    63, 64, 67, 74, 82, 97, 93, 80, 74, 77, 92, 70, 56, 37, 18, 5,
];

/// Shares of unusual records, per household.
const LOST_SHARE: f64 = 0.02;
const CHANGED_SHARE: f64 = 0.005;
const UNREGISTERED_SHARE: f64 = 0.003;
/// Share of heads who get a namesake (same name, birth date, sex) elsewhere.
const NAMESAKE_SHARE: f64 = 0.004;

struct Generator<'a> {
    rng: ChaCha8Rng,
    today: NaiveDate,
    registry: Registry,
    facilities: &'a Facilities,
    prefectures: WeightedIndex<u32>,
    municipalities: Vec<WeightedIndex<u32>>,
    family_names: WeightedIndex<f32>,
    bands: WeightedIndex<u32>,
}

/// Where a household lives.
#[derive(Clone)]
struct Home {
    pref_idx: usize,
    muni: usize,
    address: String,
    postcode: String,
}

/// The card a household's members share.
struct Card {
    insurer: usize,
    symbol: String,
    number: String,
}

/// What makes one member: everything but the generated details.
struct Member<'c> {
    card: &'c Card,
    branch: u8,
    dependant: bool,
    family: NamePart,
    sex: Sex,
    birth: NaiveDate,
    start: NaiveDate,
    end: Option<NaiveDate>,
    status: i32,
}

fn date_between(rng: &mut impl Rng, lo: NaiveDate, hi: NaiveDate) -> NaiveDate {
    let span = (hi - lo).num_days();
    if span <= 0 {
        return lo;
    }
    lo + TimeDelta::days(rng.gen_range(0..=span))
}

fn years_after(date: NaiveDate, years: u32) -> NaiveDate {
    date.checked_add_months(Months::new(12 * years))
        .unwrap_or(date)
}

impl<'a> Generator<'a> {
    fn new(seed: u64, today: NaiveDate, facilities: &'a Facilities) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let registry = Registry::new(&mut rng);
        // Static tables with positive weights (checked by the places tests).
        let weighted = |w: Vec<u32>| WeightedIndex::new(w).expect("static weights are positive");
        let prefectures = weighted(PREFECTURES.iter().map(|p| p.weight).collect());
        let municipalities = PREFECTURES
            .iter()
            .map(|p| weighted(p.municipalities.iter().map(|m| m.weight).collect()))
            .collect();
        let family_names = WeightedIndex::new(
            (0..names::FAMILY_NAMES.len()).map(|rank| 1.0 / (rank as f32 + 8.0)),
        )
        .expect("family name weights are positive");
        let bands = weighted(ADULT_BANDS.to_vec());
        Generator {
            rng,
            today,
            registry,
            facilities,
            prefectures,
            municipalities,
            family_names,
            bands,
        }
    }

    fn home(&mut self, pref_idx: usize) -> Home {
        let rng = &mut self.rng;
        let muni = self.municipalities[pref_idx].sample(rng);
        let places = &PREFECTURES[pref_idx];
        let m = &places.municipalities[muni];
        let town = TOWNS[rng.gen_range(0..TOWNS.len())];
        let address = if rng.gen_bool(0.75) {
            format!(
                "{}{}{}{}丁目{}番{}号",
                places.name,
                m.name,
                town,
                CHOME[rng.gen_range(0..5)],
                rng.gen_range(1..=30),
                rng.gen_range(1..=20)
            )
        } else {
            format!(
                "{}{}{}{}番地{}",
                places.name,
                m.name,
                town,
                rng.gen_range(1..=999),
                rng.gen_range(1..=9)
            )
        };
        let postcode = format!("{}-{:04}", m.postcode_prefix, rng.gen_range(0..10_000));
        Home {
            pref_idx,
            muni,
            address,
            postcode,
        }
    }

    fn family_name(&mut self, pref_idx: usize) -> NamePart {
        let rng = &mut self.rng;
        if PREFECTURES[pref_idx].code == 47 && rng.gen_bool(0.45) {
            let t = &names::OKINAWA_FAMILY_NAMES;
            return t[rng.gen_range(0..t.len())];
        }
        if rng.gen_bool(0.01) {
            let t = &names::VARIANT_FAMILY_NAMES;
            return t[rng.gen_range(0..t.len())];
        }
        names::FAMILY_NAMES[self.family_names.sample(rng)]
    }

    /// A birth date at which the person is exactly `age` today.
    fn birth_for_age(&mut self, age: u32) -> NaiveDate {
        let anniversary = self
            .today
            .checked_sub_months(Months::new(12 * age))
            .unwrap_or(self.today);
        anniversary - TimeDelta::days(self.rng.gen_range(0..365))
    }

    fn card(&mut self, insurer: usize) -> Card {
        let (symbol, number) = self.registry.insurers[insurer].issue(&mut self.rng);
        Card {
            insurer,
            symbol,
            number,
        }
    }

    /// Generates one household (sometimes with a namesake or an old record) and
    /// appends its records, stopping at `target`. (The order of the draws is the
    /// population's identity: changing it changes every seed's patients.)
    fn household(&mut self, out: &mut Vec<Person>, target: usize) {
        let pref_idx = self.prefectures.sample(&mut self.rng);
        let home = self.home(pref_idx);
        let family = self.family_name(pref_idx);
        let band = self.bands.sample(&mut self.rng) as u32;
        let head_age = 20 + 5 * band + self.rng.gen_range(0..5);
        if head_age >= 75 {
            self.elderly_household(out, target, &home, family, head_age);
            return;
        }
        let (national, insurer, card) = self.insurance(&home, head_age);
        let kind = self.registry.insurers[insurer].kind;
        let (married, head_sex) = self.marriage(head_age, national);
        let head_birth = self.birth_for_age(head_age);
        let (status, start, end) = self.household_status(head_birth, national);
        let changed = status == 1 && self.rng.gen_bool(CHANGED_SHARE);

        let mut member = Member {
            card: &card,
            branch: 0,
            dependant: false,
            family,
            sex: head_sex,
            birth: head_birth,
            start,
            end,
            status,
        };
        if out.len() >= target {
            return;
        }
        let head = self.person(&member, &home, kind);
        let namesake = self.rng.gen_bool(NAMESAKE_SHARE);
        let (head_name, head_kana, head_birth) =
            (head.name.clone(), head.name_kana.clone(), head.birth_date);
        if changed && out.len() + 1 < target {
            self.previous_record(out, &head, &home, pref_idx);
        }
        out.push(head);
        if married && out.len() < target {
            self.spouse(out, &mut member, &home, kind, head_age);
        }
        if (25..=59).contains(&head_age) && (married || self.rng.gen_bool(0.1)) {
            self.children(out, target, &mut member, &home, kind, head_age);
        }
        if namesake && out.len() < target {
            self.namesake(
                out, pref_idx, insurer, &head_name, &head_kana, head_sex, head_birth,
            );
        }
    }

    /// One or two persons of 75 or more, each insured in the late-elderly scheme.
    fn elderly_household(
        &mut self,
        out: &mut Vec<Person>,
        target: usize,
        home: &Home,
        family: NamePart,
        head_age: u32,
    ) {
        let sex = if self.rng.gen_bool(0.45) {
            Sex::Male
        } else {
            Sex::Female
        };
        self.elderly(out, target, home, family, sex, head_age);
        if self.rng.gen_bool(0.4) {
            let spouse_age = (head_age - self.rng.gen_range(0..5)).max(75);
            self.elderly(out, target, home, family, opposite(sex), spouse_age);
        }
    }

    /// Whether the head is in national health insurance (more likely from 65), the
    /// insurer, and the household's card.
    fn insurance(&mut self, home: &Home, head_age: u32) -> (bool, usize, Card) {
        let national = self.rng.gen_bool(if head_age >= 65 { 0.7 } else { 0.22 });
        let insurer = if national {
            self.registry.national_health(home.pref_idx, home.muni)
        } else {
            self.registry.employee(home.pref_idx, &mut self.rng)
        };
        let card = self.card(insurer);
        (national, insurer, card)
    }

    /// Whether the head is married, and the head's sex (mostly male for an
    /// employee with a dependent spouse).
    fn marriage(&mut self, head_age: u32, national: bool) -> (bool, Sex) {
        let married = self.rng.gen_bool(match head_age {
            ..25 => 0.05,
            25..30 => 0.3,
            30..40 => 0.6,
            _ => 0.7,
        });
        let head_sex = if self
            .rng
            .gen_bool(if married && !national { 0.8 } else { 0.5 })
        {
            Sex::Male
        } else {
            Sex::Female
        };
        (married, head_sex)
    }

    /// The status, start and end shared by the household's records: mostly
    /// qualified, a few lost or not yet registered.
    fn household_status(
        &mut self,
        head_birth: NaiveDate,
        national: bool,
    ) -> (i32, NaiveDate, Option<NaiveDate>) {
        let today = self.today;
        let roll: f64 = self.rng.r#gen();
        if roll < UNREGISTERED_SHARE {
            let start = today - TimeDelta::days(self.rng.gen_range(1..=14));
            return (6, start, None);
        }
        let lo = years_after(head_birth, if national { 18 } else { 22 })
            .max(today - TimeDelta::days(30 * 365));
        let start = date_between(&mut self.rng, lo, today - TimeDelta::days(30));
        if roll < UNREGISTERED_SHARE + LOST_SHARE {
            let end = today - TimeDelta::days(self.rng.gen_range(1..=365));
            (2, start.min(end - TimeDelta::days(30)), Some(end))
        } else {
            (1, start, None)
        }
    }

    /// The head's spouse (`member` is still the head): on the head's card, or
    /// insured in their own right at the same address.
    fn spouse(
        &mut self,
        out: &mut Vec<Person>,
        member: &mut Member<'_>,
        home: &Home,
        kind: InsurerKind,
        head_age: u32,
    ) {
        let today = self.today;
        let head_sex = member.sex;
        let spouse_age = (head_age as i32 + self.rng.gen_range(-4..=4)).clamp(20, 74) as u32;
        let spouse_birth = self.birth_for_age(spouse_age);
        let dependant_spouse = kind == InsurerKind::NationalHealth || self.rng.gen_bool(0.5);
        if dependant_spouse {
            member.branch = 1;
            member.dependant = kind.has_dependants();
            member.sex = opposite(head_sex);
            member.birth = spouse_birth;
            let p = self.person(member, home, kind);
            out.push(p);
            return;
        }
        let own = self.registry.employee(home.pref_idx, &mut self.rng);
        let own_card = self.card(own);
        let lo = years_after(spouse_birth, 22).max(today - TimeDelta::days(30 * 365));
        let own_start = date_between(&mut self.rng, lo, today - TimeDelta::days(30));
        let spouse = Member {
            card: &own_card,
            branch: 0,
            dependant: false,
            family: member.family,
            sex: opposite(head_sex),
            birth: spouse_birth,
            start: own_start,
            end: None,
            status: 1,
        };
        let p = self.person(&spouse, home, kind_of(&self.registry, own));
        out.push(p);
    }

    /// Up to three children on the household's card (`member` carries its start
    /// and end), none born after the card was lost.
    fn children(
        &mut self,
        out: &mut Vec<Person>,
        target: usize,
        member: &mut Member<'_>,
        home: &Home,
        kind: InsurerKind,
        head_age: u32,
    ) {
        let (start, end) = (member.start, member.end);
        let children = *[0, 0, 1, 1, 2, 2, 2, 3]
            .get(self.rng.gen_range(0..8))
            .unwrap_or(&0);
        let oldest = (head_age - 23).min(22);
        for c in 0..children {
            if out.len() >= target {
                break;
            }
            let age = self.rng.gen_range(0..=oldest);
            let birth = self.birth_for_age(age);
            if end.is_some_and(|end| birth >= end) {
                continue; // born after the card was lost: never on it
            }
            member.branch = 2 + c;
            member.dependant = kind.has_dependants();
            member.sex = if self.rng.gen_bool(0.51) {
                Sex::Male
            } else {
                Sex::Female
            };
            member.birth = birth;
            member.start = start.max(birth);
            let p = self.person(member, home, kind);
            out.push(p);
        }
    }

    /// The head's previous record under another employee insurer, replaced on the
    /// day the current one started (status 3: a newer qualification exists).
    fn previous_record(
        &mut self,
        out: &mut Vec<Person>,
        head: &Person,
        home: &Home,
        pref_idx: usize,
    ) {
        let old_insurer = self.registry.employee(pref_idx, &mut self.rng);
        if self.registry.insurers[old_insurer].number == head.insurer_number {
            return;
        }
        let card = self.card(old_insurer);
        let start = head.qualification_start;
        let member = Member {
            card: &card,
            branch: 0,
            dependant: false,
            family: ("", ""),
            sex: head.sex,
            birth: head.birth_date,
            start: years_after(head.birth_date, 22).min(start - TimeDelta::days(365)),
            end: Some(start),
            status: 3,
        };
        let mut old = self.person(&member, home, kind_of(&self.registry, old_insurer));
        // The same person: same name and birth date, the same medical records.
        old.name = head.name.clone();
        old.name_kana = head.name_kana.clone();
        old.birth_date = head.birth_date;
        old.drugs = head.drugs.clone();
        old.checkups = head.checkups.clone();
        out.push(old);
    }

    fn elderly(
        &mut self,
        out: &mut Vec<Person>,
        target: usize,
        home: &Home,
        family: NamePart,
        sex: Sex,
        age: u32,
    ) {
        if out.len() >= target {
            return;
        }
        let insurer = self.registry.late_elderly(home.pref_idx);
        let card = self.card(insurer);
        let birth = self.birth_for_age(age);
        let scheme_start = NaiveDate::from_ymd_opt(2008, 4, 1).unwrap_or(birth);
        let member = Member {
            card: &card,
            branch: 0,
            dependant: false,
            family,
            sex,
            birth,
            start: years_after(birth, 75).max(scheme_start),
            end: None,
            status: 1,
        };
        let p = self.person(&member, home, InsurerKind::LateElderly);
        out.push(p);
    }

    /// Someone with the same name, birth date and sex in another prefecture, under
    /// another insurer: the case the attribute search must not resolve silently.
    #[allow(clippy::too_many_arguments)]
    fn namesake(
        &mut self,
        out: &mut Vec<Person>,
        not_pref: usize,
        not_insurer: usize,
        name: &str,
        kana: &str,
        sex: Sex,
        birth: NaiveDate,
    ) {
        let mut pref_idx = self.prefectures.sample(&mut self.rng);
        if pref_idx == not_pref {
            pref_idx = (pref_idx + 1) % PREFECTURES.len();
        }
        let home = self.home(pref_idx);
        let age = age_on(birth, self.today);
        let insurer = if age >= 75 {
            self.registry.late_elderly(pref_idx)
        } else {
            self.registry.employee(pref_idx, &mut self.rng)
        };
        if insurer == not_insurer {
            return;
        }
        let card = self.card(insurer);
        let lo = years_after(birth, 22).max(self.today - TimeDelta::days(30 * 365));
        let start = date_between(&mut self.rng, lo, self.today - TimeDelta::days(30));
        let member = Member {
            card: &card,
            branch: 0,
            dependant: false,
            family: ("", ""),
            sex,
            birth,
            start,
            end: None,
            status: 1,
        };
        let mut p = self.person(&member, &home, kind_of(&self.registry, insurer));
        p.name = name.to_string();
        p.name_kana = kana.to_string();
        out.push(p);
    }

    /// Builds one record: name, copayment, certificates, card validity, records.
    fn person(&mut self, m: &Member<'_>, home: &Home, kind: InsurerKind) -> Person {
        let today = self.today;
        let rng = &mut self.rng;
        let female = m.sex == Sex::Female;
        let given_table = names::given_names(female, m.birth.year());
        let given = given_table[rng.gen_range(0..given_table.len())];
        let mut birth = m.birth;
        let name = format!("{} {}", m.family.0, given.0);
        let name_kana = format!("{} {}", m.family.1, given.1);
        while fixtures::is_reserved(&name, &name_kana, birth, m.sex) {
            birth = birth.succ_opt().unwrap_or(birth - TimeDelta::days(1));
        }
        let age = age_on(birth, today);
        let roll: f32 = rng.r#gen();
        let copayment_ratio = match age {
            ..6 => "020",
            6..=69 => "030",
            70..=74 if roll < 0.1 => "030",
            70..=74 => "020",
            _ if roll < 0.07 => "030",
            _ if roll < 0.2 => "020",
            _ => "010",
        };
        let mut certificates = Vec::new();
        if (70..=74).contains(&age) {
            certificates.push("高齢受給者証");
        }
        if age >= 40 && rng.gen_bool(0.03) {
            certificates.push("限度額適用認定証");
        }
        if rng.gen_bool(0.004) {
            certificates.push("特定疾病療養受療証");
        }
        let card_valid_until = match kind {
            InsurerKind::LateElderly => next_month_end(today, 7),
            InsurerKind::NationalHealth => next_month_end(today, 9),
            _ => None,
        };
        let conditions = Conditions::draw(rng, age.max(0) as u32, female);
        let usual = rng.gen_range(0..PHARMACIES_PER_MUNICIPALITY);
        let pharmacies = [
            self.facilities.pharmacy(home.pref_idx, home.muni, usual),
            self.facilities
                .pharmacy(home.pref_idx, home.muni, usual + 1),
        ];
        let site = rng.gen_range(0..SITES_PER_PREFECTURE);
        let sites = [
            self.facilities.site(home.pref_idx, site),
            self.facilities.site(home.pref_idx, site + 1),
        ];
        let drugs = medical::drug_history(rng, conditions, birth, today, pharmacies);
        let checkups = medical::checkups(rng, conditions, birth, female, today, sites);
        let insurer = &self.registry.insurers[m.card.insurer];
        Person {
            insurer_number: insurer.number.clone(),
            insurer_name: insurer.name.clone(),
            symbol: m.card.symbol.clone(),
            number: m.card.number.clone(),
            branch: format!("{:02}", m.branch),
            dependant: m.dependant,
            name,
            name_kana,
            sex: m.sex,
            birth_date: birth,
            prefecture: PREFECTURES[home.pref_idx].code,
            address: home.address.clone(),
            postcode: home.postcode.clone(),
            qualification_start: m.start.max(birth).min(today),
            qualification_end: m.end,
            card_valid_until,
            copayment_ratio,
            certificates,
            status: m.status,
            drugs,
            checkups,
        }
    }
}

fn opposite(sex: Sex) -> Sex {
    if sex == Sex::Male {
        Sex::Female
    } else {
        Sex::Male
    }
}

fn kind_of(registry: &Registry, insurer: usize) -> InsurerKind {
    registry.insurers[insurer].kind
}
