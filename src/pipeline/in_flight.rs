//! A global bound on patient-data calls in flight, with load shedding: a call beyond
//! the bound is refused at once with OVERLOADED and a short retry hint, instead of
//! joining a queue with no bound.
//!
//! It sits inside the audit layer (so the refusal is recorded like any other) and after
//! the identity and rate-limit rules (so the record names the facility, and a facility
//! over its rate never takes a slot). A slot is held from there until the call's access
//! record is committed: a store slow to commit fills the slots and sheds new calls at
//! once, instead of letting them pile up in the access log's queue.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rand::Rng;
use tokio::sync::Semaphore;
use tonic::{Request, Status};
use tower::{Layer, Service};

use crate::domain::{Reason, Violation};
use crate::pipeline::Note;
use crate::status::RETRY_AFTER_MS;
use crate::status::status_of;

/// The retry hint of OVERLOADED lies in `[RETRY_HINT, 2 × RETRY_HINT)`, randomised so
/// that callers shed together do not come back together.
pub const RETRY_HINT: Duration = Duration::from_millis(200);

/// The slots shared by every patient-data RPC.
#[derive(Clone)]
pub struct InFlightLimit {
    slots: Arc<Semaphore>,
    max: usize,
}

impl InFlightLimit {
    /// At most `max` calls in flight; None when `max` is 0 (no bound).
    pub fn new(max: usize) -> Option<InFlightLimit> {
        (max > 0).then(|| InFlightLimit {
            slots: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            max,
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.max
            .min(Semaphore::MAX_PERMITS)
            .saturating_sub(self.slots.available_permits())
    }
}

#[derive(Clone)]
pub struct InFlightLayer(pub InFlightLimit);

impl<S> Layer<S> for InFlightLayer {
    type Service = InFlightService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InFlightService {
            limit: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct InFlightService<S> {
    limit: InFlightLimit,
    inner: S,
}

impl<M, S, T> Service<Request<M>> for InFlightService<S>
where
    M: Send + 'static,
    S: Service<Request<M>, Response = T, Error = Status> + Clone + Send + 'static,
    S::Future: Send,
    T: Send + 'static,
{
    type Response = T;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<T, Status>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<M>) -> Self::Future {
        let span = tracing::info_span!(
            "rule",
            otel.name = "limit.in_flight",
            onshi.rule = "limit.in_flight",
            onshi.decision = "pass",
            onshi.reason = tracing::field::Empty,
        );
        let Ok(slot) = self.limit.slots.clone().try_acquire_owned() else {
            let violation = overloaded(self.limit.max);
            span.record("onshi.decision", "deny");
            span.record("onshi.reason", violation.reason.as_str());
            tracing::debug!(max_in_flight = self.limit.max, "shedding a call");
            Note::of(&mut req).lock().reason = Some(violation.reason);
            return Box::pin(std::future::ready(Err(status_of(&violation))));
        };
        // Held until the call's record is committed (the audit layer releases it), so
        // calls waiting for the access log count too; without the audit layer, until
        // the call returns and the last handle on its note is gone.
        let note = Note::of(&mut req);
        note.hold_until_recorded(slot);
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let result = inner.call(req).await;
            drop(note);
            result
        })
    }
}

fn overloaded(max: usize) -> Violation {
    let hint = RETRY_HINT.as_millis() as u64;
    let ms = rand::thread_rng().gen_range(hint..2 * hint);
    Violation::new(
        Reason::Overloaded,
        "",
        format!(
            "the gateway has {max} patient-data calls in flight, its limit; try again in {ms} ms"
        ),
    )
    .with("max_in_flight", max.to_string())
    .with(RETRY_AFTER_MS, ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot;
    use tonic::Code;
    use tonic_types::StatusExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn beyond_the_bound_calls_are_refused_at_once_and_slots_come_back() {
        let limit = InFlightLimit::new(2).expect("bounded");
        // Answers each call when its sender fires.
        let endpoint = tower::service_fn(|req: Request<oneshot::Receiver<()>>| async move {
            let _ = req.into_inner().await;
            Ok::<_, Status>("done")
        });
        let service = InFlightLayer(limit.clone()).layer(endpoint);

        let mut releases = Vec::new();
        let mut calls = Vec::new();
        for _ in 0..2 {
            let (tx, rx) = oneshot::channel();
            releases.push(tx);
            calls.push(tokio::spawn(service.clone().oneshot(Request::new(rx))));
        }
        while limit.in_flight() < 2 {
            tokio::task::yield_now().await;
        }

        let (_tx, rx) = oneshot::channel();
        let mut req = Request::new(rx);
        let note = Note::of(&mut req);
        let status = service
            .clone()
            .oneshot(req)
            .await
            .expect_err("over the bound");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.get_details_error_info().expect("error info").reason,
            "OVERLOADED"
        );
        let delay = status
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .expect("retry delay");
        assert!(delay >= RETRY_HINT && delay < 2 * RETRY_HINT, "{delay:?}");
        assert_eq!(note.lock().reason, Some(Reason::Overloaded));

        for tx in releases {
            tx.send(()).expect("call waiting");
        }
        for call in calls {
            assert_eq!(call.await.expect("joined").expect("served"), "done");
        }
        assert_eq!(limit.in_flight(), 0);
        let (tx, rx) = oneshot::channel();
        tx.send(()).expect("sent");
        assert_eq!(
            service.oneshot(Request::new(rx)).await.expect("served"),
            "done"
        );
    }

    #[tokio::test]
    async fn a_slot_is_held_until_the_record_is_committed() {
        let limit = InFlightLimit::new(1).expect("bounded");
        let endpoint = tower::service_fn(|_: Request<()>| async { Ok::<_, Status>("done") });
        let service = InFlightLayer(limit.clone()).layer(endpoint);
        // The audit layer's handle on the call's note outlives the call.
        let note = Note::default();
        let mut req = Request::new(());
        req.extensions_mut().insert(note.clone());
        assert_eq!(service.clone().oneshot(req).await.expect("served"), "done");
        assert_eq!(limit.in_flight(), 1, "the record is not committed yet");
        let refused = service.clone().oneshot(Request::new(())).await;
        assert_eq!(
            refused.expect_err("no slot").code(),
            Code::ResourceExhausted
        );
        note.release();
        assert_eq!(limit.in_flight(), 0);
        assert_eq!(
            service.oneshot(Request::new(())).await.expect("served"),
            "done"
        );
    }

    #[test]
    fn zero_means_no_bound() {
        assert!(InFlightLimit::new(0).is_none());
    }
}
