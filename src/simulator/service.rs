//! The simulator as a gRPC service: both generated server traits over one population.
//!
//! It answers as the upstream would, knowing nothing of the gateway's rules:
//! no activation, consent or audit here. Unknown insured numbers are a normal
//! result (status NOT_FOUND) for lookups, and a gRPC NOT_FOUND for medical
//! information, where there is no result to carry the status.

use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;

use chrono::NaiveDate;

use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

use super::clinical;
use super::clinical_service as cs;
use super::drugs;
use super::medical;
use super::period::{self, CHECKUP_LOOKBACK_YEARS, DRUG_LOOKBACK_YEARS};
use super::person::Person;
use super::population::Population;
use super::prescriptions;
use super::search;
use super::vocabulary;
use crate::proto::medical_information_service_server::{
    MedicalInformationService, MedicalInformationServiceServer,
};
use crate::proto::qualification_service_server::{
    QualificationService, QualificationServiceServer,
};
use crate::proto::{
    CheckupItem, ClinicalCategory, Dispensing, GetClinicalInformationRequest,
    GetClinicalInformationResponse, GetDrugHistoryRequest, GetDrugHistoryResponse,
    GetEmergencySummaryRequest, GetEmergencySummaryResponse, GetHealthCheckupsRequest,
    GetHealthCheckupsResponse, GetPrescriptionsRequest, GetPrescriptionsResponse, HealthCheckup,
    InsuredNumber, LookupQualificationRequest, LookupQualificationResponse, Period,
    QualificationStatus, SearchPatientsRequest, SearchPatientsResponse,
};

/// Parts of the simulated upstream that can be switched off, so that a caller's
/// handling of a partial failure (the emergency summary's UNAVAILABLE sections)
/// can be exercised: a switched-off part answers UNAVAILABLE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Qualification,
    DrugHistory,
    Checkups,
    ClinicalInformation,
    Prescriptions,
}

/// Normal-mode look-back of clinical information and of e-prescriptions.
pub const CLINICAL_LOOKBACK_YEARS: u32 = 5;
pub const PRESCRIPTION_LOOKBACK_YEARS: u32 = 3;

/// The upstream simulator; cheap to clone (the population is shared).
#[derive(Debug, Clone)]
pub struct Simulator {
    population: Arc<Population>,
    max_candidates: usize,
    failing: Arc<[Part]>,
}

impl Simulator {
    /// Candidates an attribute search returns at most before answering
    /// TOO_MANY_MATCHES: a screenful a person can compare.
    pub const DEFAULT_MAX_CANDIDATES: usize = 10;

    pub fn new(population: Arc<Population>) -> Self {
        Simulator {
            population,
            max_candidates: Self::DEFAULT_MAX_CANDIDATES,
            failing: Arc::new([]),
        }
    }

    /// Switches `parts` off: each answers UNAVAILABLE from now on.
    pub fn with_failing(mut self, parts: &[Part]) -> Self {
        self.failing = parts.into();
        self
    }

    fn up(&self, part: Part) -> Result<(), Status> {
        if self.failing.contains(&part) {
            return Err(Status::unavailable(format!("{part:?} is switched off")));
        }
        Ok(())
    }

    /// Sets the candidate bound (at least 1).
    pub fn with_max_candidates(mut self, max_candidates: usize) -> Self {
        self.max_candidates = max_candidates.max(1);
        self
    }

    pub fn population(&self) -> &Arc<Population> {
        &self.population
    }

    pub fn max_candidates(&self) -> usize {
        self.max_candidates
    }

    /// Both services, for mounting on a server of one's own.
    pub fn into_services(
        self,
    ) -> (
        QualificationServiceServer<Simulator>,
        MedicalInformationServiceServer<Simulator>,
    ) {
        (
            QualificationServiceServer::new(self.clone()),
            MedicalInformationServiceServer::new(self),
        )
    }

    fn person(&self, insured: Option<&InsuredNumber>) -> Result<&Person, Status> {
        insured
            .and_then(|i| self.population.find_insured(i))
            .ok_or_else(|| Status::not_found("no insured person with that number"))
    }
}

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    simulator: Simulator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (qualification, medical) = simulator.into_services();
    tonic::transport::Server::builder()
        .add_service(qualification)
        .add_service(medical)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

fn not_found() -> LookupQualificationResponse {
    LookupQualificationResponse {
        status: QualificationStatus::NotFound as i32,
        qualification: None,
    }
}

#[tonic::async_trait]
impl QualificationService for Simulator {
    async fn lookup_qualification(
        &self,
        request: Request<LookupQualificationRequest>,
    ) -> Result<Response<LookupQualificationResponse>, Status> {
        self.up(Part::Qualification)?;
        let req = request.into_inner();
        let Some(person) = req
            .insured
            .as_ref()
            .and_then(|i| self.population.find_insured(i))
        else {
            return Ok(Response::new(not_found()));
        };
        let birth = req.birth_date.trim();
        if !birth.is_empty() {
            let same = chrono::NaiveDate::parse_from_str(birth, "%Y-%m-%d")
                .is_ok_and(|b| b == person.birth_date);
            if !same {
                return Ok(Response::new(not_found()));
            }
        }
        let (seed, today) = (self.population.seed(), self.population.today());
        let mut qualification = person.qualification();
        let records = clinical::clinical(seed, person, today);
        vocabulary::type_qualification(seed, person, &records, today, &mut qualification);
        Ok(Response::new(LookupQualificationResponse {
            status: person.status,
            qualification: Some(qualification),
        }))
    }

    async fn search_patients(
        &self,
        request: Request<SearchPatientsRequest>,
    ) -> Result<Response<SearchPatientsResponse>, Status> {
        search::search(&self.population, request.get_ref(), self.max_candidates).map(Response::new)
    }
}

#[tonic::async_trait]
impl MedicalInformationService for Simulator {
    async fn get_drug_history(
        &self,
        request: Request<GetDrugHistoryRequest>,
    ) -> Result<Response<GetDrugHistoryResponse>, Status> {
        self.up(Part::DrugHistory)?;
        let r = request.into_inner();
        let (person, days) =
            self.asked(r.insured.as_ref(), r.period.as_ref(), DRUG_LOOKBACK_YEARS)?;
        let dispensings = within(&person.drugs, &days, |d| d.date);
        let dispensings: Vec<Dispensing> = dispensings.map(|d| self.dispensing(d)).collect();
        let groups = if r.group_by_ingredient {
            cs::groups(dispensings.iter().map(|d| {
                (
                    d.drug_code.as_str(),
                    d.drug_name.as_str(),
                    d.dispensing_date.as_str(),
                )
            }))
        } else {
            Vec::new()
        };
        Ok(Response::new(GetDrugHistoryResponse {
            dispensings,
            groups,
        }))
    }

    async fn get_health_checkups(
        &self,
        request: Request<GetHealthCheckupsRequest>,
    ) -> Result<Response<GetHealthCheckupsResponse>, Status> {
        self.up(Part::Checkups)?;
        let r = request.into_inner();
        let lookback = CHECKUP_LOOKBACK_YEARS;
        let (person, days) = self.asked(r.insured.as_ref(), r.period.as_ref(), lookback)?;
        let checkups = within(&person.checkups, &days, |c| c.date);
        Ok(Response::new(GetHealthCheckupsResponse {
            checkups: checkups.map(|c| self.checkup(c)).collect(),
        }))
    }

    async fn get_clinical_information(
        &self,
        request: Request<GetClinicalInformationRequest>,
    ) -> Result<Response<GetClinicalInformationResponse>, Status> {
        self.up(Part::ClinicalInformation)?;
        let r = request.into_inner();
        let lookback = CLINICAL_LOOKBACK_YEARS;
        let (person, days) = self.asked(r.insured.as_ref(), r.period.as_ref(), lookback)?;
        let records = clinical::clinical(self.population.seed(), person, self.population.today());
        let items = cs::items(&records, &days, &r.categories);
        let total_items = i32::try_from(items.len()).unwrap_or(i32::MAX);
        let (items, next_page_token) = cs::page(items, r.page_size, &r.page_token)?;
        let dialysis = cs::wants(&r.categories, ClinicalCategory::Dialysis)
            .then(|| cs::dialysis(records.dialysis.as_ref(), &days));
        Ok(Response::new(GetClinicalInformationResponse {
            items,
            dialysis,
            next_page_token,
            total_items,
        }))
    }

    async fn get_prescriptions(
        &self,
        request: Request<GetPrescriptionsRequest>,
    ) -> Result<Response<GetPrescriptionsResponse>, Status> {
        self.up(Part::Prescriptions)?;
        let r = request.into_inner();
        let lookback = PRESCRIPTION_LOOKBACK_YEARS;
        let (person, days) = self.asked(r.insured.as_ref(), r.period.as_ref(), lookback)?;
        let today = self.population.today();
        let all = prescriptions::prescriptions(self.population.seed(), person, today);
        let prescriptions: Vec<_> = all
            .iter()
            .rev()
            .filter(|p| days.contains(&p.issued) && (!r.open_only || cs::is_open(p)))
            .map(|p| cs::prescription(&self.population, p))
            .collect();
        let groups = if r.group_by_ingredient {
            cs::groups(prescriptions.iter().flat_map(|p| {
                p.items.iter().map(|i| {
                    (
                        i.drug_code.as_str(),
                        i.drug_name.as_str(),
                        p.issued_date.as_str(),
                    )
                })
            }))
        } else {
            Vec::new()
        };
        Ok(Response::new(GetPrescriptionsResponse {
            prescriptions,
            groups,
        }))
    }

    /// The gateway composes the summary from the item calls above, so that each
    /// section can fail on its own; the upstream has no summary of its own.
    async fn get_emergency_summary(
        &self,
        _request: Request<GetEmergencySummaryRequest>,
    ) -> Result<Response<GetEmergencySummaryResponse>, Status> {
        Err(Status::unimplemented(
            "the emergency summary is composed from the item calls",
        ))
    }
}

/// The records of `days`, by the date `date` reads.
fn within<'r, T>(
    records: &'r [T],
    days: &RangeInclusive<NaiveDate>,
    date: impl Fn(&T) -> NaiveDate,
) -> impl Iterator<Item = &'r T> {
    records.iter().filter(move |r| days.contains(&date(r)))
}

impl Simulator {
    /// The person `insured` names and the days asked for: `period`, or the last
    /// `lookback_years` up to the population's today.
    fn asked(
        &self,
        insured: Option<&InsuredNumber>,
        period: Option<&Period>,
        lookback_years: u32,
    ) -> Result<(&Person, RangeInclusive<NaiveDate>), Status> {
        let person = self.person(insured)?;
        let (from, to) = period::resolve(period, self.population.today(), lookback_years)?;
        Ok((person, from..=to))
    }

    fn dispensing(&self, d: &medical::Dispensing) -> Dispensing {
        Dispensing {
            dispensing_date: d.date.to_string(),
            drug_name: d.drug.name.to_string(),
            drug_code: d.drug.code.to_string(),
            dose: d.drug.dose.to_string(),
            quantity: d.drug.quantity.to_string(),
            days: i32::from(d.days),
            dispensing_facility: self.population.pharmacy_name(d.pharmacy).to_string(),
            ingredient_group: drugs::ingredient_group(d.drug.code).to_string(),
            generic_name: drugs::generic_name(d.drug.code).to_string(),
        }
    }

    fn checkup(&self, c: &medical::Checkup) -> HealthCheckup {
        HealthCheckup {
            checkup_date: c.date.to_string(),
            facility: self.population.checkup_site_name(c.site).to_string(),
            items: c
                .values()
                .into_iter()
                .map(|v| CheckupItem {
                    code: v.code.to_string(),
                    name: v.name.to_string(),
                    value: v.value,
                    unit: v.unit.to_string(),
                })
                .collect(),
        }
    }
}
