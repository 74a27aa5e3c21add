//! Attribute search (the notice's four attributes) over the population.
//!
//! Name, birth date and sex must match exactly (names after normalisation, so
//! kanji or kana, width and spacing do not matter); then the insurer name or the
//! address fragment, whichever is given, must occur in the person's. The search
//! never picks among several candidates: it says how many there are.

use chrono::NaiveDate;
use tonic::Status;

use super::person::Person;
use super::population::Population;
use crate::domain::names::{normalize_name, normalize_text};
use crate::proto::{SearchOutcome, SearchPatientsRequest, SearchPatientsResponse, Sex};

/// A validated, normalised search.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    name: String,
    birth_date: NaiveDate,
    sex: Sex,
    insurer: Option<String>,
    address: Option<String>,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl Query {
    /// Normalises the request; refuses what the gateway should never forward.
    pub fn parse(req: &SearchPatientsRequest) -> Result<Query, Status> {
        let name = normalize_name(&req.name);
        if name.is_empty() {
            return Err(Status::invalid_argument("name is required"));
        }
        let birth_date = NaiveDate::parse_from_str(req.birth_date.trim(), "%Y-%m-%d")
            .map_err(|_| Status::invalid_argument("birth_date must be YYYY-MM-DD"))?;
        let Ok(sex @ (Sex::Male | Sex::Female)) = Sex::try_from(req.sex) else {
            return Err(Status::invalid_argument("sex is required"));
        };
        let insurer = non_empty(normalize_text(&req.insurer_name));
        let address = non_empty(normalize_text(&req.address_fragment));
        if insurer.is_none() && address.is_none() {
            return Err(Status::invalid_argument(
                "insurer_name or address_fragment is required",
            ));
        }
        Ok(Query {
            name,
            birth_date,
            sex,
            insurer,
            address,
        })
    }

    pub fn matches(&self, p: &Person) -> bool {
        if p.birth_date != self.birth_date || p.sex != self.sex {
            return false;
        }
        if normalize_name(&p.name) != self.name && normalize_name(&p.name_kana) != self.name {
            return false;
        }
        let insurer = self
            .insurer
            .as_ref()
            .is_some_and(|i| normalize_text(&p.insurer_name).contains(i.as_str()));
        insurer
            || self
                .address
                .as_ref()
                .is_some_and(|a| normalize_text(&p.address).contains(a.as_str()))
    }

    /// Which of the optional inputs were used, for the explanation.
    fn used(&self) -> (&'static str, &'static str) {
        match (self.insurer.is_some(), self.address.is_some()) {
            (true, true) => ("保険者名・住所の一部", "insurer name and address fragment"),
            (true, false) => ("保険者名", "insurer name"),
            _ => ("住所の一部", "address fragment"),
        }
    }
}

/// Runs a search; candidates are sorted by insured number, at most `max_candidates`.
pub fn search(
    population: &Population,
    req: &SearchPatientsRequest,
    max_candidates: usize,
) -> Result<SearchPatientsResponse, Status> {
    let query = Query::parse(req)?;
    let mut found: Vec<&Person> = population
        .born_on(query.birth_date, query.sex)
        .filter(|p| query.matches(p))
        .collect();
    found.sort_by(|a, b| {
        (&a.insurer_number, &a.symbol, &a.number, &a.branch).cmp(&(
            &b.insurer_number,
            &b.symbol,
            &b.number,
            &b.branch,
        ))
    });
    let (used_ja, used_en) = query.used();
    let n = found.len();
    let (outcome, explanation) = match n {
        0 => (
            SearchOutcome::NoMatch,
            format!(
                "氏名・生年月日・性別・{used_ja}で検索しましたが、該当する被保険者は見つかりませんでした。\
                 氏名のカナ・漢字の表記、生年月日、性別をご確認のうえ、保険者名または住所を変えて再検索してください。 \
                 No insured person matched the name, date of birth, sex and {used_en}. \
                 Check the name's kana or kanji spelling, the date of birth and the sex, \
                 then try another insurer name or address fragment."
            ),
        ),
        1 => (
            SearchOutcome::SingleMatch,
            format!(
                "氏名・生年月日・性別・{used_ja}で1名が該当しました。本人であることをご確認ください。 \
                 One insured person matched the name, date of birth, sex and {used_en}; \
                 confirm it is the patient."
            ),
        ),
        n if n <= max_candidates => (
            SearchOutcome::MultipleMatches,
            format!(
                "{n}名が該当しました。候補から患者本人を選んでください(自動では選択しません)。 \
                 {n} insured persons matched; choose the patient among them \
                 (none is picked automatically)."
            ),
        ),
        n => (
            SearchOutcome::TooManyMatches,
            format!(
                "{n}名が該当し、表示できる上限({max_candidates}名)を超えています。\
                 保険者名を加えるか、住所をより詳しく(市区町村や町名まで)入力してください。 \
                 {n} insured persons matched, more than the {max_candidates} that can be shown; \
                 add the insurer name or a longer part of the address."
            ),
        ),
    };
    let candidates = if outcome == SearchOutcome::TooManyMatches {
        Vec::new()
    } else {
        found.iter().map(|p| p.candidate()).collect()
    };
    Ok(SearchPatientsResponse {
        outcome: outcome as i32,
        candidates,
        search_id: String::new(),
        explanation,
    })
}
