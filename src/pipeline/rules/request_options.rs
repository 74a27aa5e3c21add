//! The request's own options (clinical categories, paging), judged before any
//! data is read; see `pipeline::request_options`.

use tonic::Request;

use crate::domain::Violation;
use crate::pipeline::{PatientRequest, Rule};

#[derive(Clone, Default)]
pub struct RequestOptionsRule;

impl<M: PatientRequest> Rule<M> for RequestOptionsRule {
    const NAME: &'static str = "rule.request_options";

    async fn check(&self, req: &mut Request<M>) -> Result<(), Violation> {
        req.get_ref().check_options()
    }
}
