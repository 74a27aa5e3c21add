//! Wraps the upstream call of SearchPatients: gives every search an id and records
//! which facility made it, when, and (as hashes) which candidates it returned, so the
//! identification rule can later check a request that names it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::{Request, Response, Status};
use tower::Service;

use crate::clock::SharedClock;
use crate::domain::insured::parse_insured_number;
use crate::domain::{Reason, Violation};
use crate::pipeline::Note;
use crate::pipeline::rules::identification::candidate_hash;
use crate::proto::{SearchPatientsRequest, SearchPatientsResponse};
use crate::status::status_of;
use crate::store::{SearchLedger, SearchRecord};

#[derive(Clone)]
pub struct SearchRecorder<S> {
    inner: S,
    ledger: Arc<dyn SearchLedger>,
    clock: SharedClock,
}

impl<S> SearchRecorder<S> {
    pub fn new(inner: S, ledger: Arc<dyn SearchLedger>, clock: SharedClock) -> Self {
        SearchRecorder {
            inner,
            ledger,
            clock,
        }
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
        let ledger = self.ledger.clone();
        let clock = self.clock.clone();
        let note = Note::of(&mut req);
        let facility = note.facility().map_err(|v| status_of(&v));
        Box::pin(async move {
            let mut reply = inner.call(req).await?.into_inner();
            let facility = facility?.to_string();
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
            let candidate_hashes = candidates.iter().map(|k| candidate_hash(k)).collect();
            let record = SearchRecord {
                search_id: search_id.clone(),
                facility,
                at: clock.now(),
                candidate_hashes,
            };
            if let Err(e) = ledger.record_search(&record).await {
                let v = Violation::new(
                    Reason::SearchLedgerUnavailable,
                    "",
                    format!(
                        "the search could not be recorded, so its candidates could not be viewed later: {e}"
                    ),
                );
                note.lock().reason = Some(v.reason);
                return Err(status_of(&v));
            }
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
