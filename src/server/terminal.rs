//! The terminal-facing gRPC services: each RPC runs its guarded pipeline.

use tonic::{Request, Response, Status};
use tower::ServiceExt;

use crate::pipeline::{self, Deps, Guarded};
use crate::proto::medical_information_service_server::MedicalInformationService;
use crate::proto::qualification_service_server::QualificationService;
use crate::proto::{
    GetClinicalInformationRequest, GetClinicalInformationResponse, GetDrugHistoryRequest,
    GetDrugHistoryResponse, GetEmergencySummaryRequest, GetEmergencySummaryResponse,
    GetHealthCheckupsRequest, GetHealthCheckupsResponse, GetPrescriptionsRequest,
    GetPrescriptionsResponse, LookupQualificationRequest, LookupQualificationResponse,
    SearchPatientsRequest, SearchPatientsResponse,
};

/// A gateway struct holding one guarded pipeline per RPC, and the generated service
/// trait implemented by handing each request to its pipeline: the services differ
/// only in which RPCs they have and how each pipeline is built.
macro_rules! gateway {
    ($gateway:ident: $service:ident {
        $($rpc:ident($request:ty) -> $response:ty = $field:ident: $build:path;)*
    }) => {
        pub struct $gateway {
            $($field: Guarded<$request>,)*
        }

        impl $gateway {
            pub fn new(deps: &Deps) -> Self {
                $gateway {
                    $($field: $build(deps),)*
                }
            }
        }

        #[tonic::async_trait]
        impl $service for $gateway {
            $(
                async fn $rpc(
                    &self,
                    request: Request<$request>,
                ) -> Result<Response<$response>, Status> {
                    self.$field.clone().oneshot(request).await
                }
            )*
        }
    };
}

gateway!(QualificationGateway: QualificationService {
    lookup_qualification(LookupQualificationRequest) -> LookupQualificationResponse
        = lookup: pipeline::forwarded;
    search_patients(SearchPatientsRequest) -> SearchPatientsResponse
        = search: pipeline::search;
});

gateway!(MedicalGateway: MedicalInformationService {
    get_drug_history(GetDrugHistoryRequest) -> GetDrugHistoryResponse
        = drugs: pipeline::forwarded;
    get_health_checkups(GetHealthCheckupsRequest) -> GetHealthCheckupsResponse
        = checkups: pipeline::forwarded;
    get_clinical_information(GetClinicalInformationRequest) -> GetClinicalInformationResponse
        = clinical: pipeline::forwarded;
    get_prescriptions(GetPrescriptionsRequest) -> GetPrescriptionsResponse
        = prescriptions: pipeline::forwarded;
    get_emergency_summary(GetEmergencySummaryRequest) -> GetEmergencySummaryResponse
        = summary: pipeline::summary;
});
