use chrono::TimeDelta;
use tonic::{Code, Request};

use super::shared;
use crate::proto::medical_information_service_server::MedicalInformationService;
use crate::proto::qualification_service_server::QualificationService;
use crate::proto::*;
use crate::simulator::fixtures::{self, Fixture};
use crate::simulator::{Population, Simulator};

fn simulator() -> Simulator {
    Simulator::new(shared())
}

async fn lookup(
    sim: &Simulator,
    insured: InsuredNumber,
    birth: &str,
) -> LookupQualificationResponse {
    sim.lookup_qualification(Request::new(LookupQualificationRequest {
        access: None,
        insured: Some(insured),
        birth_date: birth.into(),
    }))
    .await
    .expect("lookup answers")
    .into_inner()
}

fn search_request(
    name: &str,
    birth: &str,
    sex: Sex,
    insurer: &str,
    address: &str,
) -> SearchPatientsRequest {
    SearchPatientsRequest {
        access: None,
        name: name.into(),
        birth_date: birth.into(),
        sex: sex as i32,
        insurer_name: insurer.into(),
        address_fragment: address.into(),
    }
}

async fn search(sim: &Simulator, req: SearchPatientsRequest) -> SearchPatientsResponse {
    sim.search_patients(Request::new(req))
        .await
        .expect("search answers")
        .into_inner()
}

fn birth(f: &Fixture) -> String {
    f.birth_date.to_string()
}

#[tokio::test]
async fn lookup_returns_the_full_qualification() {
    let sim = simulator();
    let f = fixtures::DEMO_PATIENT;
    let reply = lookup(&sim, f.insured(), "1958-04-12").await;
    assert_eq!(reply.status, QualificationStatus::Valid as i32);
    let q = reply.qualification.expect("qualification");
    assert_eq!(q.insured, Some(f.insured()));
    assert_eq!(q.name, "山田 太郎");
    assert_eq!(q.name_kana, "ヤマダ タロウ");
    assert_eq!(q.sex, Sex::Male as i32);
    assert_eq!(q.birth_date, "1958-04-12");
    assert_eq!(q.insurer_name, "全国健康保険協会宮城支部");
    assert!(q.address.contains("石巻市"));
    assert_eq!(q.copayment_ratio, "030");
    assert!(!q.dependant && q.qualification_end.is_empty());

    // Without the optional birth date, and with untrimmed parts.
    let mut padded = f.insured();
    padded.number = format!(" {} ", padded.number);
    let reply = lookup(&sim, padded, "").await;
    assert_eq!(reply.status, QualificationStatus::Valid as i32);

    let spouse = lookup(&sim, fixtures::DEMO_SPOUSE.insured(), "").await;
    assert!(spouse.qualification.expect("spouse").dependant);
}

#[tokio::test]
async fn lookup_not_found_is_a_result_not_an_error() {
    let sim = simulator();
    let mut unknown = fixtures::DEMO_PATIENT.insured();
    unknown.branch = "09".into();
    for (insured, birth) in [
        (unknown, ""),
        (fixtures::DEMO_PATIENT.insured(), "1958-04-13"),
        (fixtures::DEMO_PATIENT.insured(), "not a date"),
        (InsuredNumber::default(), ""),
    ] {
        let reply = lookup(&sim, insured, birth).await;
        assert_eq!(reply.status, QualificationStatus::NotFound as i32);
        assert!(reply.qualification.is_none());
    }
    let reply = sim
        .lookup_qualification(Request::new(LookupQualificationRequest::default()))
        .await
        .expect("answers");
    assert_eq!(reply.get_ref().status, QualificationStatus::NotFound as i32);
}

#[tokio::test]
async fn lookup_reports_unusual_statuses() {
    let sim = simulator();
    let lost = lookup(&sim, fixtures::LOST_QUALIFICATION.insured(), "").await;
    assert_eq!(lost.status, QualificationStatus::Invalid as i32);
    let end = lost.qualification.expect("present").qualification_end;
    let expected = shared().today() - TimeDelta::days(fixtures::LOST_QUALIFICATION_DAYS_AGO);
    assert_eq!(end, expected.to_string());

    let old = lookup(&sim, fixtures::CHANGED_INSURER_OLD.insured(), "").await;
    assert_eq!(old.status, QualificationStatus::InvalidNewerExists as i32);
    let new = lookup(&sim, fixtures::CHANGED_INSURER_NEW.insured(), "").await;
    assert_eq!(new.status, QualificationStatus::Valid as i32);
    let joined = lookup(&sim, fixtures::VALID_UNREGISTERED.insured(), "").await;
    assert_eq!(joined.status, QualificationStatus::ValidUnregistered as i32);
    assert!(joined.qualification.is_some());
}

#[tokio::test]
async fn search_single_match_whatever_the_writing_of_the_name() {
    let sim = simulator();
    let f = fixtures::DEMO_PATIENT;
    for name in [
        "山田 太郎",
        "山田太郎",
        "山田　太郎",
        "やまだ　たろう",
        "ヤマダタロウ",
        "ﾔﾏﾀﾞ ﾀﾛｳ",
        " ヤマダ  タロウ ",
    ] {
        let reply = search(
            &sim,
            search_request(name, &birth(&f), Sex::Male, "", "石巻"),
        )
        .await;
        assert_eq!(reply.outcome, SearchOutcome::SingleMatch as i32, "{name}");
        assert_eq!(reply.candidates.len(), 1);
        assert_eq!(reply.candidates[0].insured, Some(f.insured()));
        assert!(reply.search_id.is_empty());
        assert!(!reply.explanation.is_empty());
    }
    // By insurer name instead of address, also with full-width text.
    let reply = search(
        &sim,
        search_request("山田太郎", &birth(&f), Sex::Male, "協会宮城", ""),
    )
    .await;
    assert_eq!(reply.outcome, SearchOutcome::SingleMatch as i32);
    let reply = search(
        &sim,
        search_request("山田太郎", &birth(&f), Sex::Male, "", "宮城県石巻市中央"),
    )
    .await;
    assert_eq!(reply.outcome, SearchOutcome::SingleMatch as i32);
}

#[tokio::test]
async fn search_folds_variant_kanji() {
    let sim = simulator();
    let f = fixtures::VARIANT_KANJI;
    for name in ["高橋 美穂", "髙橋美穂", "タカハシ ミホ"] {
        let reply = search(
            &sim,
            search_request(name, &birth(&f), Sex::Female, "", "輪島"),
        )
        .await;
        assert_eq!(reply.outcome, SearchOutcome::SingleMatch as i32, "{name}");
        assert_eq!(reply.candidates[0].name, "髙橋 美穂");
    }
}

#[tokio::test]
async fn search_no_match_explains() {
    let sim = simulator();
    for req in [
        search_request("山田太郎", "1958-04-13", Sex::Male, "", "石巻"),
        search_request("山田太郎", "1958-04-12", Sex::Female, "", "石巻"),
        search_request("山田次郎", "1958-04-12", Sex::Male, "", "石巻"),
        search_request("山田太郎", "1958-04-12", Sex::Male, "", "福島"),
        search_request("山田太郎", "1958-04-12", Sex::Male, "国民健康保険", ""),
    ] {
        let reply = search(&sim, req).await;
        assert_eq!(reply.outcome, SearchOutcome::NoMatch as i32);
        assert!(reply.candidates.is_empty());
        assert!(reply.explanation.contains("生年月日") && reply.explanation.contains("kana"));
    }
}

#[tokio::test]
async fn same_name_and_birth_date_under_two_insurers() {
    let sim = simulator();
    let f = fixtures::SAME_NAME_FUKUSHIMA;
    let both = search(
        &sim,
        search_request("佐藤花子", &birth(&f), Sex::Female, "健康保険", ""),
    )
    .await;
    assert_eq!(both.outcome, SearchOutcome::MultipleMatches as i32);
    let insured: Vec<_> = both
        .candidates
        .iter()
        .filter_map(|c| c.insured.clone())
        .collect();
    // Sorted by insured number: 協会けんぽ (01...) before the society (06...).
    assert_eq!(
        insured,
        vec![f.insured(), fixtures::SAME_NAME_TOKYO.insured()]
    );
    assert!(both.explanation.contains('2'));

    let fukushima = search(
        &sim,
        search_request("さとう はなこ", &birth(&f), Sex::Female, "", "郡山"),
    )
    .await;
    assert_eq!(fukushima.outcome, SearchOutcome::SingleMatch as i32);
    assert_eq!(fukushima.candidates[0].insured, Some(f.insured()));
    let tokyo = search(
        &sim,
        search_request("佐藤 花子", &birth(&f), Sex::Female, "東都情報", "郡山"),
    )
    .await;
    assert_eq!(
        tokyo.outcome,
        SearchOutcome::MultipleMatches as i32,
        "either input may match"
    );
}

#[tokio::test]
async fn search_beyond_the_bound_returns_no_candidates() {
    let sim = simulator();
    let b = fixtures::CROWD_BIRTH_DATE.to_string();
    let crowd = |insurer: &str, address: &str| {
        search_request(
            fixtures::CROWD_NAME,
            &b,
            fixtures::CROWD_SEX,
            insurer,
            address,
        )
    };
    let too_many = search(&sim, crowd("", fixtures::CROWD_ADDRESS_FRAGMENT)).await;
    assert_eq!(too_many.outcome, SearchOutcome::TooManyMatches as i32);
    assert!(too_many.candidates.is_empty());
    assert!(
        too_many
            .explanation
            .contains(&fixtures::CROWD_SIZE.to_string())
    );
    assert!(too_many.explanation.contains("insurer name"));

    let ward = search(&sim, crowd("", fixtures::CROWD_WARD)).await;
    assert_eq!(ward.outcome, SearchOutcome::MultipleMatches as i32);
    assert_eq!(ward.candidates.len(), 3);
    let insurers: std::collections::HashSet<_> =
        ward.candidates.iter().map(|c| &c.insurer_name).collect();
    assert_eq!(insurers.len(), 3);

    let kyokai = search(&sim, crowd("全国健康保険協会東京支部", "")).await;
    assert_eq!(kyokai.candidates.len(), fixtures::CROWD_KYOKAI_TOKYO);
    let keys: Vec<_> = kyokai
        .candidates
        .iter()
        .map(|c| c.insured.clone().unwrap_or_default())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| {
        (&a.insurer_number, &a.symbol, &a.number).cmp(&(&b.insurer_number, &b.symbol, &b.number))
    });
    assert_eq!(keys, sorted);

    let roomy = Simulator::new(shared()).with_max_candidates(fixtures::CROWD_SIZE);
    let all = search(&roomy, crowd("", fixtures::CROWD_ADDRESS_FRAGMENT)).await;
    assert_eq!(all.outcome, SearchOutcome::MultipleMatches as i32);
    assert_eq!(all.candidates.len(), fixtures::CROWD_SIZE);
}

#[tokio::test]
async fn search_refuses_what_the_gateway_never_forwards() {
    let sim = simulator();
    for req in [
        search_request("", "1958-04-12", Sex::Male, "", "石巻"),
        search_request("　", "1958-04-12", Sex::Male, "", "石巻"),
        search_request("山田太郎", "1958/04/12", Sex::Male, "", "石巻"),
        search_request("山田太郎", "1958-02-30", Sex::Male, "", "石巻"),
        search_request("山田太郎", "1958-04-12", Sex::Unspecified, "", "石巻"),
        search_request("山田太郎", "1958-04-12", Sex::Male, " ", "　"),
    ] {
        let err = sim
            .search_patients(Request::new(req))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
    }
    let mut odd_sex = search_request("山田太郎", "1958-04-12", Sex::Male, "", "石巻");
    odd_sex.sex = 99;
    let err = sim
        .search_patients(Request::new(odd_sex))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
}

fn drug_request(insured: InsuredNumber, from: &str, to: &str) -> GetDrugHistoryRequest {
    GetDrugHistoryRequest {
        access: None,
        insured: Some(insured),
        period: Some(Period {
            from: from.into(),
            to: to.into(),
        }),
        ..GetDrugHistoryRequest::default()
    }
}

#[tokio::test]
async fn drug_history_by_period_newest_first() {
    let sim = simulator();
    let today = shared().today();
    let demo = fixtures::DEMO_PATIENT.insured();
    let all = sim
        .get_drug_history(Request::new(drug_request(demo.clone(), "", "")))
        .await
        .expect("history")
        .into_inner()
        .dispensings;
    assert_eq!(all.len(), 28);
    assert!(
        all.windows(2)
            .all(|w| w[0].dispensing_date >= w[1].dispensing_date)
    );
    let first = &all[0];
    assert_eq!(
        first.dispensing_date,
        (today - TimeDelta::days(9)).to_string()
    );
    assert_eq!(first.drug_name, "アムロジピン錠5mg");
    assert_eq!(first.drug_code.chars().count(), 12);
    assert_eq!(first.dose, "1日1回朝食後");
    assert_eq!(first.days, 28);
    assert_eq!(first.dispensing_facility, "あおば薬局 石巻店");
    assert!(all.iter().any(|d| d.drug_name.contains("ワルファリン")));

    let from = (today - TimeDelta::days(30)).to_string();
    let recent = sim
        .get_drug_history(Request::new(drug_request(demo.clone(), &from, "")))
        .await
        .expect("history")
        .into_inner()
        .dispensings;
    assert_eq!(recent.len(), 3);

    let to = (today - TimeDelta::days(300)).to_string();
    let old = sim
        .get_drug_history(Request::new(drug_request(demo, "", &to)))
        .await
        .expect("history")
        .into_inner()
        .dispensings;
    assert_eq!(old.len(), 1, "only the acute one, 400 days ago");
}

#[tokio::test]
async fn default_periods_cut_off_older_records() {
    let population = shared();
    let sim = simulator();
    let today = population.today();
    let three_years = today
        .checked_sub_months(chrono::Months::new(36))
        .expect("date");
    let person = population
        .persons()
        .iter()
        .find(|p| p.drugs.iter().any(|d| d.date < three_years))
        .expect("someone with older dispensings");
    let default = sim
        .get_drug_history(Request::new(drug_request(person.insured_number(), "", "")))
        .await
        .expect("history")
        .into_inner()
        .dispensings;
    let expected = person
        .drugs
        .iter()
        .filter(|d| d.date >= three_years)
        .count();
    assert_eq!(default.len(), expected);
    assert!(default.len() < person.drugs.len());
    let everything = sim
        .get_drug_history(Request::new(drug_request(
            person.insured_number(),
            "2000-01-01",
            "",
        )))
        .await
        .expect("history")
        .into_inner()
        .dispensings;
    assert_eq!(everything.len(), person.drugs.len());

    let five_years = today
        .checked_sub_months(chrono::Months::new(60))
        .expect("date");
    let person = population
        .persons()
        .iter()
        .find(|p| p.checkups.iter().any(|c| c.date < five_years))
        .expect("someone with older check-ups");
    let req = GetHealthCheckupsRequest {
        access: None,
        insured: Some(person.insured_number()),
        period: None,
    };
    let default = sim
        .get_health_checkups(Request::new(req))
        .await
        .expect("check-ups")
        .into_inner()
        .checkups;
    let expected = person
        .checkups
        .iter()
        .filter(|c| c.date >= five_years)
        .count();
    assert_eq!(default.len(), expected);
}

#[tokio::test]
async fn checkups_carry_coded_items() {
    let sim = simulator();
    let req = GetHealthCheckupsRequest {
        access: None,
        insured: Some(fixtures::DEMO_PATIENT.insured()),
        period: None,
    };
    let checkups = sim
        .get_health_checkups(Request::new(req))
        .await
        .expect("check-ups")
        .into_inner()
        .checkups;
    assert_eq!(checkups.len(), 5);
    assert!(
        checkups
            .windows(2)
            .all(|w| w[0].checkup_date > w[1].checkup_date)
    );
    let latest = &checkups[0];
    assert_eq!(latest.facility, "宮城総合健診センター");
    let item = |name: &str| latest.items.iter().find(|i| i.name == name).expect(name);
    assert_eq!(item("HbA1c(NGSP値)").value, "7.1");
    assert_eq!(item("HbA1c(NGSP値)").unit, "%");
    assert_eq!(item("収縮期血圧").value, "142");
    assert_eq!(item("BMI").code, "9N011000000000001");
    assert_eq!(latest.items.len(), 13);
    assert!(
        latest
            .items
            .iter()
            .all(|i| i.code.len() == 17 && !i.unit.is_empty())
    );
}

#[tokio::test]
async fn medical_information_errors() {
    let sim = simulator();
    let mut unknown = fixtures::DEMO_PATIENT.insured();
    unknown.number = "999999".into();
    let err = sim
        .get_drug_history(Request::new(drug_request(unknown.clone(), "", "")))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    let err = sim
        .get_health_checkups(Request::new(GetHealthCheckupsRequest::default()))
        .await
        .expect_err("no insured");
    assert_eq!(err.code(), Code::NotFound);
    let demo = fixtures::DEMO_PATIENT.insured();
    for (from, to) in [
        ("2025-13-01", ""),
        ("", "soon"),
        ("2025-05-01", "2025-04-01"),
    ] {
        let err = sim
            .get_drug_history(Request::new(drug_request(demo.clone(), from, to)))
            .await
            .expect_err("bad period");
        assert_eq!(err.code(), Code::InvalidArgument, "{from} {to}");
    }
}

#[tokio::test]
async fn a_tiny_population_still_serves_the_fixtures() {
    let sim = Simulator::new(std::sync::Arc::new(Population::generate_at(
        5,
        0,
        super::today(),
    )));
    let reply = lookup(&sim, fixtures::DEMO_PATIENT.insured(), "1958-04-12").await;
    assert_eq!(reply.status, QualificationStatus::Valid as i32);
    assert_eq!(sim.max_candidates(), Simulator::DEFAULT_MAX_CANDIDATES);
    assert_eq!(sim.clone().with_max_candidates(0).max_candidates(), 1);
}
