//! The patient is identified either by a valid insured number or by the notice's four
//! attributes; a request that names a search must name this facility's own, recent
//! search that returned the patient. Normalised values are written back, so the
//! upstream sees one canonical form.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tonic::Request;

use crate::clock::SharedClock;
use crate::domain::dates::{parse_birth_date, parse_period};
use crate::domain::insured::{InsuredNumber as Insured, parse_insured_number};
use crate::domain::jst::{to_jst_string, today_jst};
use crate::domain::names::validate_text;
use crate::domain::{Reason, Violation};
use crate::pipeline::patient_request::{PeriodField, Subject};
use crate::pipeline::{Note, PatientRequest, Rule};
use crate::proto::{IdentificationMethod, InsuredNumber, Period, SearchPatientsRequest};
use crate::store::SearchLedger;

pub const NAME_MAX_CHARS: usize = 50;
pub const TEXT_MAX_CHARS: usize = 100;

/// How a candidate is kept in the search ledger: a hash of its insured-number key.
pub fn candidate_hash(insured_key: &str) -> String {
    hex::encode(Sha256::digest(insured_key.as_bytes()))
}

#[derive(Clone)]
pub struct IdentificationRule {
    ledger: Arc<dyn SearchLedger>,
    clock: SharedClock,
    search_ttl: Duration,
}

impl IdentificationRule {
    pub fn new(ledger: Arc<dyn SearchLedger>, clock: SharedClock, search_ttl: Duration) -> Self {
        IdentificationRule {
            ledger,
            clock,
            search_ttl,
        }
    }

    /// A patient named by a search must come out of this facility's own recent search.
    async fn check_search(
        &self,
        facility: &str,
        search_id: &str,
        patient: &Insured,
    ) -> Result<(), Violation> {
        let field = "access.identification.search_id";
        let search_id = search_id.trim();
        if search_id.is_empty() {
            return Err(Violation::new(
                Reason::SearchIdMissing,
                field,
                "identification by attribute search must name the search_id of that search",
            ));
        }
        if !is_search_id(search_id) {
            return Err(Violation::new(
                Reason::SearchNotFound,
                field,
                "this is not a search id the gateway issues (a UUID); search again",
            ));
        }
        let record = self
            .ledger
            .find_search(search_id)
            .await
            .map_err(|e| {
                Violation::new(
                    Reason::SearchLedgerUnavailable,
                    "",
                    format!("the search ledger cannot be read: {e}"),
                )
            })?
            .ok_or_else(|| {
                Violation::new(
                    Reason::SearchNotFound,
                    field,
                    "no search with this id exists",
                )
            })?;
        if record.facility != facility {
            return Err(Violation::new(
                Reason::SearchFacilityMismatch,
                field,
                "this search was made by another facility; search again from this facility",
            ));
        }
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.search_ttl).unwrap_or(chrono::Duration::MAX);
        if now >= record.at + ttl {
            return Err(Violation::new(
                Reason::SearchExpired,
                field,
                format!(
                    "the search was made at {} and is valid for {} minutes; search again",
                    to_jst_string(record.at),
                    self.search_ttl.as_secs() / 60
                ),
            )
            .with("search_time", to_jst_string(record.at)));
        }
        if !record
            .candidate_hashes
            .contains(&candidate_hash(&patient.key()))
        {
            return Err(Violation::new(
                Reason::PatientNotInSearch,
                "insured",
                "this insured number was not among the candidates of the named search",
            ));
        }
        Ok(())
    }
}

fn check_insured(
    insured: &mut Option<InsuredNumber>,
    birth_date: Option<&mut String>,
    period: Option<PeriodField<'_>>,
    today: chrono::NaiveDate,
) -> Result<Insured, Violation> {
    let raw = insured.as_ref().ok_or_else(|| {
        Violation::new(
            Reason::InsuredNumberMissing,
            "insured",
            "the insured number (insurer number, symbol, number, branch) is required",
        )
    })?;
    let parsed = parse_insured_number(
        "insured",
        &raw.insurer_number,
        &raw.symbol,
        &raw.number,
        &raw.branch,
    )?;
    *insured = Some(InsuredNumber {
        insurer_number: parsed.insurer.as_str().to_string(),
        symbol: parsed.symbol.clone(),
        number: parsed.number.clone(),
        branch: parsed.branch.clone(),
    });
    if let Some(birth_date) = birth_date
        && !birth_date.trim().is_empty()
    {
        *birth_date = parse_birth_date("birth_date", birth_date, today)?
            .format("%Y-%m-%d")
            .to_string();
    }
    if let Some(PeriodField {
        period,
        lookback_years,
    }) = period
    {
        let p = period.clone().unwrap_or_default();
        let (from, to) = parse_period("period", &p.from, &p.to, today, lookback_years)?;
        *period = Some(Period {
            from: from.format("%Y-%m-%d").to_string(),
            to: to.format("%Y-%m-%d").to_string(),
        });
    }
    Ok(parsed)
}

/// The gateway issues UUIDs: anything else cannot name a search, and is neither
/// looked up nor written to the access log as given.
fn is_search_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn check_attributes(
    req: &mut SearchPatientsRequest,
    today: chrono::NaiveDate,
) -> Result<(), Violation> {
    let name = validate_text("name", &req.name, NAME_MAX_CHARS, Reason::NameInvalid)?;
    // Judged on the form that is searched: a name of middle dots alone is no name.
    if name.is_empty() || crate::domain::names::normalize_name(&name).is_empty() {
        return Err(Violation::new(
            Reason::NameMissing,
            "name",
            "the patient's name (kanji or kana) is required",
        ));
    }
    if req.birth_date.trim().is_empty() {
        return Err(Violation::new(
            Reason::BirthDateMissing,
            "birth_date",
            "the date of birth is required",
        ));
    }
    let birth = parse_birth_date("birth_date", &req.birth_date, today)?;
    match req.sex {
        1 | 2 => {}
        0 => {
            return Err(Violation::new(
                Reason::SexMissing,
                "sex",
                "the patient's sex is required",
            ));
        }
        other => {
            return Err(Violation::new(
                Reason::SexMissing,
                "sex",
                format!("unknown sex value {other}: use SEX_MALE or SEX_FEMALE"),
            ));
        }
    }
    let insurer = validate_text(
        "insurer_name",
        &req.insurer_name,
        TEXT_MAX_CHARS,
        Reason::InsurerNameInvalid,
    )?;
    let address = validate_text(
        "address_fragment",
        &req.address_fragment,
        TEXT_MAX_CHARS,
        Reason::AddressFragmentInvalid,
    )?;
    if insurer.is_empty() && address.is_empty() {
        return Err(Violation::new(
            Reason::InsurerOrAddressMissing,
            "insurer_name",
            "give the insurer's name or part of the patient's address (or both)",
        ));
    }
    req.name = name;
    req.birth_date = birth.format("%Y-%m-%d").to_string();
    req.insurer_name = insurer;
    req.address_fragment = address;
    Ok(())
}

impl<M: PatientRequest> Rule<M> for IdentificationRule {
    const NAME: &'static str = "rule.identification";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        let note = Note::of(req);
        let today = today_jst(self.clock.now());
        let facility = note.facility()?.to_string();
        let identification = req
            .get_ref()
            .access()
            .and_then(|a| a.identification.clone())
            .unwrap_or_default();
        let patient = match req.get_mut().subject() {
            Subject::Attributes(search) => {
                check_attributes(search, today)?;
                note.lock().identification = Some("attribute_search");
                return Ok(());
            }
            Subject::Insured {
                insured,
                birth_date,
                period,
            } => check_insured(insured, birth_date, period, today)?,
        };
        note.lock().patient_key = Some(patient.key());
        match IdentificationMethod::try_from(identification.method) {
            Ok(IdentificationMethod::InsuredNumberKnown) => {
                note.lock().identification = Some("insured_number_known");
                Ok(())
            }
            Ok(IdentificationMethod::AttributeSearch) => {
                {
                    let mut n = note.lock();
                    n.identification = Some("attribute_search");
                    // Only an id the gateway could have issued goes into the record.
                    let id = identification.search_id.trim();
                    n.search_id = is_search_id(id).then(|| id.to_string());
                }
                self.check_search(&facility, &identification.search_id, &patient)
                    .await
            }
            _ => Err(Violation::new(
                Reason::IdentificationMissing,
                "access.identification.method",
                "say how the patient was identified: INSURED_NUMBER_KNOWN or ATTRIBUTE_SEARCH with its search_id",
            )),
        }
    }
}
