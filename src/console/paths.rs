//! The operators' API methods the console's pages and actions stand for: each is
//! allowed to the roles that may call the method over gRPC, no more.

pub const LIST_ACTIVATIONS: &str = "/onshi.v1.ActivationAdminService/ListActivations";
pub const GET_ACTIVATION: &str = "/onshi.v1.ActivationAdminService/GetActivation";
pub const PREVIEW_AREAS: &str = "/onshi.v1.ActivationAdminService/PreviewAreas";
pub const CREATE_ACTIVATION: &str = "/onshi.v1.ActivationAdminService/CreateActivation";
pub const ADD_AREAS: &str = "/onshi.v1.ActivationAdminService/AddAreas";
pub const EXTEND_WINDOW: &str = "/onshi.v1.ActivationAdminService/ExtendWindow";
pub const GET_HISTORY: &str = "/onshi.v1.ActivationAdminService/GetHistory";
pub const CHECK_FACILITY: &str = "/onshi.v1.ActivationAdminService/CheckFacility";
pub const LIST_SITES: &str = "/onshi.v1.SiteAdminService/ListSites";
pub const CHECK_SITE: &str = "/onshi.v1.SiteAdminService/CheckSite";
pub const GET_SITE: &str = "/onshi.v1.SiteAdminService/GetSite";
pub const LIST_UNREVIEWED: &str = "/onshi.v1.AuditService/ListUnreviewed";
pub const RECORD_REVIEW_OUTCOME: &str = "/onshi.v1.AuditService/RecordReviewOutcome";
pub const QUERY_ACCESS_LOG: &str = "/onshi.v1.AuditService/QueryAccessLog";
pub const QUERY_PATIENT_ACCESSES: &str = "/onshi.v1.AuditService/QueryPatientAccesses";
