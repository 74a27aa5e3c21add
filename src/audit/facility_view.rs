//! The access log as a facility sees it, on the terminal listener: its own
//! facility's records only, the facility being the one its certificate names.
//! Every other view of the log is for operators, on their own listener.

use tonic::{Request, Response, Status};

use super::service::AuditQueryService;
use crate::domain::{Reason, Violation};
use crate::proto::audit_service_server::AuditService;
use crate::proto::{
    ListAuditReadsRequest, ListExemptionReviewsRequest, ListUnreviewedRequest,
    QueryAccessLogRequest, QueryFacilityAccessLogRequest, QueryPatientAccessesRequest,
    RecordReviewOutcomeRequest, RecordReviewOutcomeResponse,
};
use crate::status::status_of;
use crate::tls::identity::{IdentitySource, facility_of};

pub struct FacilityAuditView {
    inner: AuditQueryService,
    identity: IdentitySource,
}

impl FacilityAuditView {
    pub fn new(inner: AuditQueryService, identity: IdentitySource) -> Self {
        FacilityAuditView { inner, identity }
    }
}

fn operators_only(view: &str) -> Status {
    status_of(&Violation::new(
        Reason::OperatorRoleRequired,
        "",
        format!(
            "{view} is for operators; a facility reads its own records with QueryFacilityAccessLog"
        ),
    ))
}

#[tonic::async_trait]
impl AuditService for FacilityAuditView {
    type QueryAccessLogStream = <AuditQueryService as AuditService>::QueryAccessLogStream;
    type ListExemptionReviewsStream =
        <AuditQueryService as AuditService>::ListExemptionReviewsStream;
    type QueryFacilityAccessLogStream =
        <AuditQueryService as AuditService>::QueryFacilityAccessLogStream;
    type QueryPatientAccessesStream =
        <AuditQueryService as AuditService>::QueryPatientAccessesStream;
    type ListUnreviewedStream = <AuditQueryService as AuditService>::ListUnreviewedStream;
    type ListAuditReadsStream = <AuditQueryService as AuditService>::ListAuditReadsStream;

    async fn record_review_outcome(
        &self,
        _request: Request<RecordReviewOutcomeRequest>,
    ) -> Result<Response<RecordReviewOutcomeResponse>, Status> {
        Err(operators_only("RecordReviewOutcome"))
    }

    async fn list_unreviewed(
        &self,
        _request: Request<ListUnreviewedRequest>,
    ) -> Result<Response<Self::ListUnreviewedStream>, Status> {
        Err(operators_only("ListUnreviewed"))
    }

    async fn list_audit_reads(
        &self,
        _request: Request<ListAuditReadsRequest>,
    ) -> Result<Response<Self::ListAuditReadsStream>, Status> {
        Err(operators_only("ListAuditReads"))
    }

    async fn query_access_log(
        &self,
        _request: Request<QueryAccessLogRequest>,
    ) -> Result<Response<Self::QueryAccessLogStream>, Status> {
        Err(operators_only("QueryAccessLog"))
    }

    async fn list_exemption_reviews(
        &self,
        _request: Request<ListExemptionReviewsRequest>,
    ) -> Result<Response<Self::ListExemptionReviewsStream>, Status> {
        Err(operators_only("ListExemptionReviews"))
    }

    async fn query_facility_access_log(
        &self,
        request: Request<QueryFacilityAccessLogRequest>,
    ) -> Result<Response<Self::QueryFacilityAccessLogStream>, Status> {
        let facility = facility_of(self.identity, &request).map_err(|v| status_of(&v))?;
        let mut r = request.into_inner();
        let asked = r.facility_code.trim();
        if !asked.is_empty() && asked != facility.as_str() {
            return Err(status_of(
                &Violation::new(
                    Reason::FacilityMismatch,
                    "facility_code",
                    format!("facility {facility} may read only its own records"),
                )
                .with("facility", facility.to_string()),
            ));
        }
        r.facility_code = facility.to_string();
        self.inner.query_facility_access_log(Request::new(r)).await
    }

    async fn query_patient_accesses(
        &self,
        _request: Request<QueryPatientAccessesRequest>,
    ) -> Result<Response<Self::QueryPatientAccessesStream>, Status> {
        Err(operators_only("QueryPatientAccesses"))
    }
}
