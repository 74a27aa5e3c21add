//! The terminal-facing gRPC services: each RPC runs its guarded pipeline.

use tonic::{Request, Response, Status};
use tower::ServiceExt;

use crate::pipeline::{self, Deps, Guarded};
use crate::proto::medical_information_service_server::MedicalInformationService;
use crate::proto::qualification_service_server::QualificationService;
use crate::proto::{
    GetDrugHistoryRequest, GetDrugHistoryResponse, GetHealthCheckupsRequest,
    GetHealthCheckupsResponse, LookupQualificationRequest, LookupQualificationResponse,
    SearchPatientsRequest, SearchPatientsResponse,
};

pub struct QualificationGateway {
    lookup: Guarded<LookupQualificationRequest>,
    search: Guarded<SearchPatientsRequest>,
}

impl QualificationGateway {
    pub fn new(deps: &Deps) -> Self {
        QualificationGateway {
            lookup: pipeline::forwarded(deps),
            search: pipeline::search(deps),
        }
    }
}

#[tonic::async_trait]
impl QualificationService for QualificationGateway {
    async fn lookup_qualification(
        &self,
        request: Request<LookupQualificationRequest>,
    ) -> Result<Response<LookupQualificationResponse>, Status> {
        self.lookup.clone().oneshot(request).await
    }

    async fn search_patients(
        &self,
        request: Request<SearchPatientsRequest>,
    ) -> Result<Response<SearchPatientsResponse>, Status> {
        self.search.clone().oneshot(request).await
    }
}

pub struct MedicalGateway {
    drugs: Guarded<GetDrugHistoryRequest>,
    checkups: Guarded<GetHealthCheckupsRequest>,
}

impl MedicalGateway {
    pub fn new(deps: &Deps) -> Self {
        MedicalGateway {
            drugs: pipeline::forwarded(deps),
            checkups: pipeline::forwarded(deps),
        }
    }
}

#[tonic::async_trait]
impl MedicalInformationService for MedicalGateway {
    async fn get_drug_history(
        &self,
        request: Request<GetDrugHistoryRequest>,
    ) -> Result<Response<GetDrugHistoryResponse>, Status> {
        self.drugs.clone().oneshot(request).await
    }

    async fn get_health_checkups(
        &self,
        request: Request<GetHealthCheckupsRequest>,
    ) -> Result<Response<GetHealthCheckupsResponse>, Status> {
        self.checkups.clone().oneshot(request).await
    }
}
