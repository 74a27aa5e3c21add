use std::collections::{HashMap, HashSet};

use super::{shared, today};
use crate::domain::check_digit::oqs_check_digit;
use crate::proto::Sex;
use crate::simulator::{Population, fixtures};

#[test]
fn same_seed_same_population_other_seed_another() {
    let a = Population::generate_at(9, 3_000, today());
    let b = Population::generate_at(9, 3_000, today());
    let c = Population::generate_at(10, 3_000, today());
    assert_eq!(a.len(), 3_000);
    assert_eq!(a.persons(), b.persons());
    assert_ne!(a.persons(), c.persons());
}

#[test]
fn every_insurer_number_has_a_valid_check_digit() {
    let population = shared();
    for p in population.persons() {
        let n = &p.insurer_number;
        assert!(matches!(n.len(), 6 | 8), "{n}");
        let (body, check) = n.split_at(n.len() - 1);
        assert_eq!(
            oqs_check_digit(body).map(|d| d.to_string()).as_deref(),
            Some(check),
            "{n}"
        );
    }
}

#[test]
fn insured_numbers_are_unique_and_found() {
    let population = shared();
    let keys: HashSet<String> = population
        .persons()
        .iter()
        .map(super::super::person::Person::key)
        .collect();
    assert_eq!(keys.len(), population.len());
    for p in population.persons().iter().step_by(97) {
        let found = population.find(&p.insurer_number, &p.symbol, &p.number, &p.branch);
        assert_eq!(found, Some(p));
    }
}

#[test]
fn families_share_a_card_with_branches() {
    let population = shared();
    let mut heads = HashMap::new();
    for p in population.persons() {
        if p.branch == "00" {
            heads.insert((&p.insurer_number, &p.symbol, &p.number), p);
        }
    }
    let mut members = 0;
    for p in population.persons().iter().filter(|p| p.branch != "00") {
        let head = heads
            .get(&(&p.insurer_number, &p.symbol, &p.number))
            .unwrap_or_else(|| panic!("no head for {}", p.key()));
        assert_eq!(head.address, p.address);
        let family = |kana: &str| kana.split(' ').next().map(str::to_owned);
        assert_eq!(family(&head.name_kana), family(&p.name_kana));
        // Dependants exist only in employee insurance (law codes 01, 06, 3x).
        let national = p.insurer_number.len() == 6;
        assert_eq!(p.dependant, !national, "{}", p.key());
        assert!(!(p.insurer_number.len() == 8 && p.insurer_number.starts_with("39")));
        members += 1;
    }
    assert!(members > population.len() / 10, "only {members} members");
    let branches: HashSet<&str> = population
        .persons()
        .iter()
        .map(|p| p.branch.as_str())
        .collect();
    assert!(branches.contains("01") && branches.contains("02") && branches.contains("03"));
}

#[test]
fn insurance_follows_age() {
    let population = shared();
    let day = population.today();
    for p in population.persons() {
        let age = p.age_on(day);
        assert!((0..=105).contains(&age), "{age}");
        let late_elderly = p.insurer_number.starts_with("39") && p.insurer_number.len() == 8;
        if p.status != 3 {
            assert_eq!(late_elderly, age >= 75, "{} aged {age}", p.insurer_number);
        }
        if late_elderly {
            assert!(p.symbol.is_empty());
        }
        let copay = p.copayment_ratio;
        match age {
            ..6 => assert_eq!(copay, "020"),
            6..=69 => assert_eq!(copay, "030"),
            70..=74 => assert!(copay == "020" || copay == "030"),
            _ => assert!(["010", "020", "030"].contains(&copay)),
        }
        assert_eq!(
            p.certificates.contains(&"高齢受給者証"),
            (70..=74).contains(&age)
        );
        assert!(p.qualification_start <= day);
        assert!(p.qualification_start >= p.birth_date);
    }
}

#[test]
fn names_addresses_and_postcodes_are_well_formed() {
    let population = shared();
    for p in population.persons() {
        assert_eq!(p.name.matches(' ').count(), 1, "{}", p.name);
        assert_eq!(p.name_kana.matches(' ').count(), 1, "{}", p.name_kana);
        assert!(
            p.name_kana
                .chars()
                .all(|c| c == ' ' || ('\u{30A1}'..='\u{30FC}').contains(&c)),
            "{}",
            p.name_kana
        );
        let b = p.postcode.as_bytes();
        assert!(b.len() == 8 && b[3] == b'-', "{}", p.postcode);
        assert!(
            p.address
                .ends_with(|c: char| c == '号' || c.is_ascii_digit())
        );
    }
}

#[test]
fn all_prefectures_weighted_by_population() {
    let population = shared();
    let mut count = [0usize; 48];
    for p in population.persons() {
        count[usize::from(p.prefecture)] += 1;
        assert!(
            p.address.starts_with(
                crate::simulator::places::PREFECTURES[usize::from(p.prefecture) - 1].name
            ),
            "{}",
            p.address
        );
    }
    assert_eq!(count[0], 0);
    assert!(count[1..].iter().all(|&c| c > 0), "{count:?}");
    let tokyo = count[13];
    assert!(count[1..].iter().all(|&c| c <= tokyo));
    assert!(
        tokyo > count[31] * 10,
        "Tokyo {tokyo} vs Tottori {}",
        count[31]
    );
}

#[test]
fn unusual_statuses_are_present_and_consistent() {
    let population = shared();
    let day = population.today();
    let mut by_status = [0usize; 7];
    for p in population.persons() {
        by_status[p.status as usize] += 1;
        match p.status {
            1 | 6 => assert!(p.qualification_end.is_none()),
            2 | 3 => {
                let end = p.qualification_end.expect("lost records have an end");
                assert!(end <= day && end > p.qualification_start);
            }
            s => panic!("status {s}"),
        }
        if p.status == 6 {
            assert!((day - p.qualification_start).num_days() <= 14);
        }
        if p.status == 3 {
            // The same person holds a newer, valid record elsewhere.
            let newer = population
                .born_on(p.birth_date, p.sex)
                .any(|q| q.name == p.name && q.status == 1 && q.insurer_number != p.insurer_number);
            assert!(newer, "{}", p.key());
        }
    }
    assert!(by_status[1] > population.len() * 9 / 10);
    assert!(by_status[2] > 50, "{by_status:?}");
    assert!(by_status[3] > 5, "{by_status:?}");
    assert!(by_status[6] > 5, "{by_status:?}");
}

#[test]
fn namesakes_under_different_insurers_exist_beyond_the_fixtures() {
    let population = shared();
    let mut groups: HashMap<_, HashSet<&str>> = HashMap::new();
    for p in population.persons().iter().filter(|p| p.status == 1) {
        groups
            .entry((&p.name, p.birth_date, p.sex as i32))
            .or_default()
            .insert(&p.insurer_number);
    }
    let namesakes = groups
        .iter()
        .filter(|((name, ..), insurers)| {
            insurers.len() > 1 && *name != fixtures::CROWD_NAME && *name != "佐藤 花子"
        })
        .count();
    assert!(namesakes >= 10, "{namesakes}");
}

#[test]
fn records_are_bounded_and_newest_first() {
    let population = shared();
    let day = population.today();
    let mut with_drugs = 0;
    let mut with_checkups = 0;
    for p in population.persons() {
        assert!(p.drugs.len() <= 30);
        assert!(p.drugs.windows(2).all(|w| w[0].date >= w[1].date));
        assert!(p.checkups.windows(2).all(|w| w[0].date > w[1].date));
        assert!(
            p.drugs
                .iter()
                .all(|d| d.date <= day && d.date >= p.birth_date)
        );
        for c in &p.checkups {
            assert!((40..=74).contains(&crate::simulator::person::age_on(p.birth_date, c.date)));
            assert!(!population.checkup_site_name(c.site).is_empty());
        }
        for d in &p.drugs {
            assert!(!population.pharmacy_name(d.pharmacy).is_empty());
        }
        with_drugs += usize::from(!p.drugs.is_empty());
        with_checkups += usize::from(!p.checkups.is_empty());
    }
    assert!(with_drugs > population.len() / 3, "{with_drugs}");
    assert!(with_checkups > population.len() / 5, "{with_checkups}");
}

#[test]
fn fixtures_are_present_whatever_the_seed_and_size() {
    for (seed, size) in [(1, 0), (2, 500), (3, 5_000)] {
        let population = Population::generate_at(seed, size, today());
        assert!(population.len() >= size);
        for f in fixtures::ALL {
            let p = population
                .find_insured(&f.insured())
                .unwrap_or_else(|| panic!("{} missing", f.name));
            assert_eq!(
                (p.name.as_str(), p.name_kana.as_str(), p.birth_date, p.sex),
                (f.name, f.name_kana, f.birth_date, f.sex)
            );
            assert_eq!(p.insurer_name, f.insurer_name);
            assert_eq!(p.address, f.address);
        }
        let crowd = population
            .born_on(fixtures::CROWD_BIRTH_DATE, fixtures::CROWD_SEX)
            .filter(|p| p.name == fixtures::CROWD_NAME)
            .count();
        assert_eq!(crowd, fixtures::CROWD_SIZE);
        let hanako = population
            .born_on(fixtures::SAME_NAME_TOKYO.birth_date, Sex::Female)
            .filter(|p| p.name_kana == "サトウ ハナコ")
            .count();
        assert_eq!(hanako, 2);
    }
}

#[test]
fn fixture_statuses() {
    let population = shared();
    let status = |f: &fixtures::Fixture| population.find_insured(&f.insured()).map(|p| p.status);
    assert_eq!(status(&fixtures::DEMO_PATIENT), Some(1));
    assert_eq!(status(&fixtures::DEMO_SPOUSE), Some(1));
    assert_eq!(status(&fixtures::LOST_QUALIFICATION), Some(2));
    assert_eq!(status(&fixtures::CHANGED_INSURER_OLD), Some(3));
    assert_eq!(status(&fixtures::CHANGED_INSURER_NEW), Some(1));
    assert_eq!(status(&fixtures::VALID_UNREGISTERED), Some(6));
    let spouse = population
        .find_insured(&fixtures::DEMO_SPOUSE.insured())
        .expect("spouse");
    assert!(spouse.dependant);
}

/// Run with `cargo test --release --lib generation_time -- --ignored --nocapture`.
#[test]
#[ignore = "timing; meaningful only in release"]
fn generation_time_of_the_default_size() {
    let start = std::time::Instant::now();
    let population = Population::generate_at(1, Population::DEFAULT_SIZE, today());
    let elapsed = start.elapsed();
    let dispensings: usize = population.persons().iter().map(|p| p.drugs.len()).sum();
    let checkups: usize = population.persons().iter().map(|p| p.checkups.len()).sum();
    println!(
        "{} persons, {dispensings} dispensings, {checkups} check-ups in {elapsed:?}",
        population.len()
    );
}
