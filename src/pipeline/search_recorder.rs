//! Wraps the upstream call of SearchPatients: gives every search an id and notes the
//! candidates it returned. The call's access record carries both, and the store
//! writes the search ledger's row (facility, time, candidates as hashes) from that
//! record in the record's own transaction (`AccessRecord::opened_search`): the
//! identification rule can later check a request that names the search, and no
//! search costs a commit of its own.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::{Request, Response, Status};
use tower::Service;

use crate::domain::insured::parse_insured_number;
use crate::pipeline::Note;
use crate::proto::{SearchPatientsRequest, SearchPatientsResponse};

#[derive(Clone)]
pub struct SearchRecorder<S> {
    inner: S,
}

impl<S> SearchRecorder<S> {
    pub fn new(inner: S) -> Self {
        SearchRecorder { inner }
    }
}

type Reply = Response<SearchPatientsResponse>;

impl<S> Service<Request<SearchPatientsRequest>> for SearchRecorder<S>
where
    S: Service<Request<SearchPatientsRequest>, Response = Reply, Error = Status>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    type Response = Reply;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Status>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<SearchPatientsRequest>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let note = Note::of(&mut req);
        Box::pin(async move {
            let mut reply = inner.call(req).await?.into_inner();
            // Time-ordered, as record ids are: the ledger's key grows at its end.
            let search_id = uuid::Uuid::now_v7().to_string();
            let candidates: Vec<String> = reply
                .candidates
                .iter()
                .filter_map(|c| c.insured.as_ref())
                .filter_map(|i| {
                    parse_insured_number("", &i.insurer_number, &i.symbol, &i.number, &i.branch)
                        .ok()
                })
                .map(|i| i.key())
                .collect();
            {
                let mut note = note.lock();
                note.search_id = Some(search_id.clone());
                note.disclosed_patients = candidates;
            }
            reply.search_id = search_id;
            Ok(Response::new(reply))
        })
    }
}
