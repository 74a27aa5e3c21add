//! What a rule is, and the tower layer that runs one over the decoded request and
//! times its decision. The rules themselves are in `rules/`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tonic::{Request, Status};
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;

use super::Note;
use crate::domain::Violation;
use crate::status::status_of;
use crate::telemetry::metrics::RequestMetrics;
use crate::telemetry::metrics::requests::RuleTimer;

/// One rule: looks at (and may normalise) the request, or refuses it.
pub trait Rule<M>: Clone + Send + Sync + 'static {
    /// The span name, e.g. `rule.activation`.
    const NAME: &'static str;

    fn check<'a>(
        &'a self,
        req: &'a mut Request<M>,
    ) -> impl Future<Output = Result<(), Violation>> + Send + 'a;
}

/// Turns a [`Rule`] into a tower layer that times each decision.
#[derive(Clone)]
pub struct RuleLayer<R> {
    rule: R,
    metrics: RequestMetrics,
    /// The rule's histograms, found on its first call (the name comes with the
    /// request type) and shared by every clone.
    timer: Arc<OnceLock<RuleTimer>>,
}

impl<R> RuleLayer<R> {
    pub fn new(rule: R, metrics: RequestMetrics) -> Self {
        RuleLayer {
            rule,
            metrics,
            timer: Arc::default(),
        }
    }
}

impl<R: Clone, S> Layer<S> for RuleLayer<R> {
    type Service = RuleService<R, S>;

    fn layer(&self, inner: S) -> Self::Service {
        RuleService {
            rule: self.rule.clone(),
            metrics: self.metrics.clone(),
            timer: self.timer.clone(),
            inner: Arc::new(inner),
        }
    }
}

#[derive(Clone)]
pub struct RuleService<R, S> {
    rule: R,
    metrics: RequestMetrics,
    timer: Arc<OnceLock<RuleTimer>>,
    /// Shared, not owned: a call's future then holds a pointer to the rules below,
    /// not a copy of them, and cloning a rule does not clone every rule below it.
    /// Owned, each of a call's ten nested futures carried the whole stack beneath it:
    /// ~20 KiB per call waiting for its record, and as many clones per call.
    inner: Arc<S>,
}

impl<M, R, S, T> Service<Request<M>> for RuleService<R, S>
where
    M: Send + 'static,
    R: Rule<M>,
    S: Service<Request<M>, Response = T, Error = Status> + Clone + Send + Sync + 'static,
    S::Future: Send,
    T: Send + 'static,
{
    type Response = T;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<T, Status>> + Send>>;

    /// Always ready: the service below is made ready inside the call, once this
    /// rule has passed (a refused call never waits for it).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<M>) -> Self::Future {
        let rule = self.rule.clone();
        let timer = self
            .timer
            .get_or_init(|| self.metrics.rule_timer(R::NAME))
            .clone();
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            // The span covers the rule's own check only, so its length is the rule's cost.
            let span = tracing::info_span!(
                "rule",
                otel.name = R::NAME,
                onshi.rule = R::NAME,
                onshi.decision = tracing::field::Empty,
                onshi.reason = tracing::field::Empty,
            );
            let started = std::time::Instant::now();
            let checked = rule.check(&mut req).instrument(span.clone()).await;
            timer.observe(checked.is_ok(), started.elapsed().as_secs_f64());
            match checked {
                Ok(()) => {
                    span.record("onshi.decision", "pass");
                    S::clone(&inner).oneshot(req).await
                }
                Err(violation) => {
                    span.record("onshi.decision", "deny");
                    span.record("onshi.reason", violation.reason.as_str());
                    Note::of(&mut req).lock().reason = Some(violation.reason);
                    Err(status_of(&violation))
                }
            }
        })
    }
}
