//! What a rule is, and the tower layer that runs one over the decoded request and
//! times its decision. The rules themselves are in `rules/`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use tonic::{Request, Status};
use tower::{Layer, Service};
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
            inner,
        }
    }
}

#[derive(Clone)]
pub struct RuleService<R, S> {
    rule: R,
    metrics: RequestMetrics,
    timer: Arc<OnceLock<RuleTimer>>,
    inner: S,
}

impl<M, R, S, T> Service<Request<M>> for RuleService<R, S>
where
    M: Send + 'static,
    R: Rule<M>,
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
        let rule = self.rule.clone();
        let timer = self
            .timer
            .get_or_init(|| self.metrics.rule_timer(R::NAME))
            .clone();
        // The ready inner service is the one to call; leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
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
                    inner.call(req).await
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
