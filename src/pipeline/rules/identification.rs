//! The patient is identified either by a valid insured number or by the notice's four
//! attributes; a request that names a search must name this facility's own, recent
//! search that returned the patient. Normalised values are written back, so the
//! upstream sees one canonical form.

use std::sync::Arc;
use std::time::Duration;

use tonic::Request;

use crate::clock::SharedClock;
use crate::domain::dates::{parse_birth_date, parse_period};
use crate::domain::input::WireEnum;
use crate::domain::insured::{InsuredNumber as Insured, parse_insured_number};
use crate::domain::jst::{to_jst_string, today_jst};
use crate::domain::names::validate_text;
use crate::domain::{Gather, Reason, Violation};
use crate::pipeline::patient_request::{PeriodField, Subject};
use crate::pipeline::{Note, PatientRequest, Rule};
use crate::proto::{
    Identification, IdentificationMethod, InsuredNumber, Period, SearchPatientsRequest,
};
use crate::store::{SearchLedger, candidate_hash};

pub const NAME_MAX_CHARS: usize = 50;
pub const TEXT_MAX_CHARS: usize = 100;
const SEARCH_ID_FIELD: &str = "access.identification.search_id";

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

    /// A patient named by a search must come out of this facility's own recent search;
    /// `search_id` is trimmed and not empty.
    async fn check_search(
        &self,
        facility: &str,
        search_id: &str,
        patient: &Insured,
    ) -> Result<(), Violation> {
        let field = SEARCH_ID_FIELD;
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

/// The insured number, the birth-date cross-check and the period, each judged on its
/// own so that one refusal names every field at fault; each is written back in
/// canonical form.
fn check_insured(
    insured: &mut Option<InsuredNumber>,
    birth_date: Option<&mut String>,
    period: Option<PeriodField<'_>>,
    today: chrono::NaiveDate,
) -> Result<Insured, Violation> {
    let parsed = canonical_insured(insured);
    let birth = match birth_date {
        Some(birth_date) if !birth_date.trim().is_empty() => {
            parse_birth_date("birth_date", birth_date, today).map(|date| {
                *birth_date = date.format("%Y-%m-%d").to_string();
            })
        }
        _ => Ok(()),
    };
    let period = period.map_or(Ok(()), |field| canonical_period(field, today));
    let ((parsed, ()), ()) = parsed.gather(birth).gather(period)?;
    Ok(parsed)
}

fn canonical_insured(insured: &mut Option<InsuredNumber>) -> Result<Insured, Violation> {
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
    Ok(parsed)
}

fn canonical_period(field: PeriodField<'_>, today: chrono::NaiveDate) -> Result<(), Violation> {
    let PeriodField {
        period,
        lookback_years,
    } = field;
    let p = period.clone().unwrap_or_default();
    let (from, to) = parse_period("period", &p.from, &p.to, today, lookback_years)?;
    *period = Some(Period {
        from: from.format("%Y-%m-%d").to_string(),
        to: to.format("%Y-%m-%d").to_string(),
    });
    Ok(())
}

/// The gateway issues UUIDs: anything else cannot name a search, and is neither
/// looked up nor written to the access log as given.
fn is_search_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

const SEX: WireEnum<()> = WireEnum {
    field: "sex",
    decode: |n| matches!(n, 1 | 2).then_some(()),
    missing: (Reason::SexMissing, "the patient's sex is required"),
    unknown: (Reason::SexMissing, |n| {
        format!("unknown sex value {n}: use SEX_MALE or SEX_FEMALE")
    }),
};

/// The four attributes, each judged on its own so that one refusal names every
/// field at fault; the validated text is written back.
fn check_attributes(
    req: &mut SearchPatientsRequest,
    today: chrono::NaiveDate,
) -> Result<(), Violation> {
    let birth = if req.birth_date.trim().is_empty() {
        Err(Violation::new(
            Reason::BirthDateMissing,
            "birth_date",
            "the date of birth is required",
        ))
    } else {
        parse_birth_date("birth_date", &req.birth_date, today)
    };
    let (((name, birth), ()), (insurer, address)) = search_name(&req.name)
        .gather(birth)
        .gather(SEX.parse(req.sex))
        .gather(insurer_or_address(&req.insurer_name, &req.address_fragment))?;
    req.name = name;
    req.birth_date = birth.format("%Y-%m-%d").to_string();
    req.insurer_name = insurer;
    req.address_fragment = address;
    Ok(())
}

fn search_name(raw: &str) -> Result<String, Violation> {
    let name = validate_text("name", raw, NAME_MAX_CHARS, Reason::NameInvalid)?;
    // Judged on the form that is searched: a name of middle dots alone is no name.
    if name.is_empty() || crate::domain::names::normalize_name(&name).is_empty() {
        return Err(Violation::new(
            Reason::NameMissing,
            "name",
            "the patient's name (kanji or kana) is required",
        ));
    }
    Ok(name)
}

/// The insurer's name, part of the address, or both; with neither, both fields are
/// named, since either will do.
fn insurer_or_address(insurer: &str, address: &str) -> Result<(String, String), Violation> {
    let (insurer, address) = validate_text(
        "insurer_name",
        insurer,
        TEXT_MAX_CHARS,
        Reason::InsurerNameInvalid,
    )
    .gather(validate_text(
        "address_fragment",
        address,
        TEXT_MAX_CHARS,
        Reason::AddressFragmentInvalid,
    ))?;
    if insurer.is_empty() && address.is_empty() {
        let missing = |field| {
            Violation::new(
                Reason::InsurerOrAddressMissing,
                field,
                "give the insurer's name or part of the patient's address (or both)",
            )
        };
        return Err(missing("insurer_name").and(missing("address_fragment")));
    }
    Ok((insurer, address))
}

/// How the request says the patient was identified.
enum Method<'a> {
    InsuredNumberKnown,
    /// From an attribute search, with its (trimmed, non-empty) id.
    Search(&'a str),
}

fn method_of(identification: &Identification) -> Result<Method<'_>, Violation> {
    match IdentificationMethod::try_from(identification.method) {
        Ok(IdentificationMethod::InsuredNumberKnown) => Ok(Method::InsuredNumberKnown),
        Ok(IdentificationMethod::AttributeSearch) => {
            let search_id = identification.search_id.trim();
            if search_id.is_empty() {
                return Err(Violation::new(
                    Reason::SearchIdMissing,
                    SEARCH_ID_FIELD,
                    "identification by attribute search must name the search_id of that search",
                ));
            }
            Ok(Method::Search(search_id))
        }
        _ => Err(Violation::new(
            Reason::IdentificationMissing,
            "access.identification.method",
            "say how the patient was identified: INSURED_NUMBER_KNOWN or ATTRIBUTE_SEARCH with its search_id",
        )),
    }
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
            } => check_insured(insured, birth_date, period, today),
        };
        if let Ok(patient) = &patient {
            note.lock().patient_key = Some(patient.key());
        }
        let (patient, method) = patient.gather(method_of(&identification))?;
        match method {
            Method::InsuredNumberKnown => {
                note.lock().identification = Some("insured_number_known");
                Ok(())
            }
            Method::Search(search_id) => {
                {
                    let mut n = note.lock();
                    n.identification = Some("attribute_search");
                    // Only an id the gateway could have issued goes into the record.
                    n.search_id = is_search_id(search_id).then(|| search_id.to_string());
                }
                self.check_search(&facility, search_id, &patient).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2022, 3, 20).unwrap()
    }

    fn named(v: &Violation) -> Vec<(Reason, &str)> {
        v.all().map(|v| (v.reason, v.field.as_str())).collect()
    }

    fn search(
        name: &str,
        birth: &str,
        sex: i32,
        insurer: &str,
        address: &str,
    ) -> SearchPatientsRequest {
        SearchPatientsRequest {
            access: None,
            name: name.into(),
            birth_date: birth.into(),
            sex,
            insurer_name: insurer.into(),
            address_fragment: address.into(),
        }
    }

    #[test]
    fn attributes_name_every_field_at_fault() {
        let mut req = search("山田 太郎", "1958-02-30", 0, "", "");
        let v = check_attributes(&mut req, today()).unwrap_err();
        assert_eq!(
            named(&v),
            [
                (Reason::BirthDateInvalid, "birth_date"),
                (Reason::SexMissing, "sex"),
                (Reason::InsurerOrAddressMissing, "insurer_name"),
                (Reason::InsurerOrAddressMissing, "address_fragment"),
            ]
        );
        let mut req = search("", "", 9, "協\u{0}", "");
        let v = check_attributes(&mut req, today()).unwrap_err();
        assert_eq!(
            named(&v),
            [
                (Reason::NameMissing, "name"),
                (Reason::BirthDateMissing, "birth_date"),
                (Reason::SexMissing, "sex"),
                (Reason::InsurerNameInvalid, "insurer_name"),
            ]
        );
        assert_eq!(v.also[1].metadata, [("value".to_owned(), "9".to_owned())]);
    }

    #[test]
    fn attributes_with_one_fault_name_only_it() {
        let mut req = search("山田 太郎", "1958-04-12", 1, "", " ");
        let v = check_attributes(&mut req, today()).unwrap_err();
        assert_eq!(
            named(&v),
            [
                (Reason::InsurerOrAddressMissing, "insurer_name"),
                (Reason::InsurerOrAddressMissing, "address_fragment"),
            ]
        );
        let mut req = search("山田 太郎", "1958-04-12", 2, "", "石巻");
        assert_eq!(check_attributes(&mut req, today()), Ok(()));
        let mut req = search("山田 太郎", "1958-04-12", 3, "協会", "");
        let v = check_attributes(&mut req, today()).unwrap_err();
        assert_eq!(named(&v), [(Reason::SexMissing, "sex")]);
    }

    #[test]
    fn attributes_are_written_back_in_canonical_form() {
        let mut req = search(" ﾔﾏﾀﾞ ", "１９５８－０４－１２", 1, "", " 石巻 ");
        check_attributes(&mut req, today()).unwrap();
        assert_eq!(
            (
                req.name.as_str(),
                req.birth_date.as_str(),
                req.address_fragment.as_str()
            ),
            ("ヤマダ", "1958-04-12", "石巻")
        );
    }

    fn card(insurer: &str, branch: &str) -> Option<InsuredNumber> {
        Some(InsuredNumber {
            insurer_number: insurer.into(),
            symbol: "1".into(),
            number: "2".into(),
            branch: branch.into(),
        })
    }

    #[test]
    fn insured_birth_date_and_period_are_named_together() {
        let mut insured = card("01234567", "1a");
        let mut birth = "2023-02-30".to_string();
        let mut period = Some(Period {
            from: "x".into(),
            to: "2022-13-01".into(),
        });
        let field = PeriodField {
            period: &mut period,
            lookback_years: 3,
        };
        let v = check_insured(&mut insured, Some(&mut birth), Some(field), today()).unwrap_err();
        assert_eq!(
            named(&v),
            [
                (Reason::InsurerNumberCheckDigit, "insured.insurer_number"),
                (Reason::BranchInvalid, "insured.branch"),
                (Reason::BirthDateInvalid, "birth_date"),
                (Reason::PeriodInvalid, "period.from"),
                (Reason::PeriodInvalid, "period.to"),
            ]
        );
        let mut none = None;
        let v = check_insured(&mut none, None, None, today()).unwrap_err();
        assert_eq!(named(&v), [(Reason::InsuredNumberMissing, "insured")]);
        let mut insured = card("06130488", "00");
        let mut birth = "2023-02-30".to_string();
        let v = check_insured(&mut insured, Some(&mut birth), None, today()).unwrap_err();
        assert_eq!(named(&v), [(Reason::BirthDateInvalid, "birth_date")]);
    }

    #[test]
    fn the_method_is_read_with_its_search_id() {
        let by = |method: IdentificationMethod, id: &str| Identification {
            method: method as i32,
            search_id: id.into(),
        };
        assert!(matches!(
            method_of(&by(IdentificationMethod::InsuredNumberKnown, "")),
            Ok(Method::InsuredNumberKnown)
        ));
        assert!(matches!(
            method_of(&by(IdentificationMethod::AttributeSearch, " abc ")),
            Ok(Method::Search("abc"))
        ));
        let v = method_of(&by(IdentificationMethod::AttributeSearch, " "))
            .err()
            .unwrap();
        assert_eq!(named(&v), [(Reason::SearchIdMissing, SEARCH_ID_FIELD)]);
        let v = method_of(&Identification::default()).err().unwrap();
        assert_eq!(
            named(&v),
            [(
                Reason::IdentificationMissing,
                "access.identification.method"
            )]
        );
    }
}
