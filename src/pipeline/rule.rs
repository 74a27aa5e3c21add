//! What a rule is, how rules are chained in order, and the tower layer that runs the
//! chain over the decoded request, timing each rule's decision. The rules themselves
//! are in `rules/`.
//!
//! The chain runs as one future: each rule's check is awaited in turn inside it, so
//! a call waiting for its record holds one small future, not one boxed future per
//! rule, each with its own copy of the request's place (~4 KiB a call with ten
//! rules).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::{Request, Status};
use tower::{Layer, Service, ServiceExt};
use tracing::Instrument;

use super::Note;
use crate::domain::Violation;
use crate::status::status_of;
use crate::telemetry::metrics::RequestMetrics;
use crate::telemetry::metrics::requests::RuleTimer;

/// One rule: looks at (and may normalise) the request, or refuses it.
pub trait Rule<M>: Send + Sync + 'static {
    /// The span name, e.g. `rule.activation`.
    const NAME: &'static str;

    fn check<'a>(
        &'a self,
        req: &'a mut Request<M>,
    ) -> impl Future<Output = Result<(), Violation>> + Send + 'a;
}

/// Rules run in order: the first refusal ends the chain.
pub trait Rules<M>: Send + Sync + 'static {
    fn run<'a>(
        &'a self,
        req: &'a mut Request<M>,
    ) -> impl Future<Output = Result<(), Violation>> + Send + 'a;
}

/// Builds the chain of rules for requests of type `M`, in the order they are added.
pub struct Chain<'m, M, C> {
    metrics: &'m RequestMetrics,
    rules: C,
    request: PhantomData<fn(M)>,
}

impl<'m, M> Chain<'m, M, ()> {
    /// An empty chain; each rule added is timed in `metrics`.
    pub fn new(metrics: &'m RequestMetrics) -> Self {
        Chain {
            metrics,
            rules: (),
            request: PhantomData,
        }
    }
}

impl<'m, M, C> Chain<'m, M, C> {
    /// Then `rule`.
    pub fn rule<R: Rule<M>>(self, rule: R) -> Chain<'m, M, Then<C, Timed<R>>> {
        let timed = Timed::new(rule, self.metrics);
        self.then(timed)
    }

    /// Then `rule`, if configured.
    pub fn optional<R: Rule<M>>(self, rule: Option<R>) -> Chain<'m, M, Then<C, Option<Timed<R>>>> {
        let timed = rule.map(|rule| Timed::new(rule, self.metrics));
        self.then(timed)
    }

    fn then<N>(self, next: N) -> Chain<'m, M, Then<C, N>> {
        Chain {
            metrics: self.metrics,
            rules: Then(self.rules, next),
            request: PhantomData,
        }
    }

    /// The layer that runs the chain in front of a service.
    pub fn layer(self) -> RulesLayer<C> {
        RulesLayer(Arc::new(self.rules))
    }
}

/// The empty chain passes every call.
impl<M: Send> Rules<M> for () {
    async fn run(&self, _: &mut Request<M>) -> Result<(), Violation> {
        Ok(())
    }
}

/// A rule with the histograms its decisions are timed in.
pub struct Timed<R> {
    rule: R,
    timer: RuleTimer,
}

impl<R> Timed<R> {
    fn new<M>(rule: R, metrics: &RequestMetrics) -> Timed<R>
    where
        R: Rule<M>,
    {
        Timed {
            rule,
            timer: metrics.rule_timer(R::NAME),
        }
    }
}

impl<M: Send, R: Rule<M>> Rules<M> for Timed<R> {
    async fn run(&self, req: &mut Request<M>) -> Result<(), Violation> {
        // The span covers the rule's own check only, so its length is the rule's cost.
        let span = tracing::info_span!(
            "rule",
            otel.name = R::NAME,
            onshi.rule = R::NAME,
            onshi.decision = tracing::field::Empty,
            onshi.reason = tracing::field::Empty,
        );
        let started = Instant::now();
        let checked = self.rule.check(req).instrument(span.clone()).await;
        self.timer
            .observe(checked.is_ok(), started.elapsed().as_secs_f64());
        match &checked {
            Ok(()) => span.record("onshi.decision", "pass"),
            Err(violation) => span
                .record("onshi.decision", "deny")
                .record("onshi.reason", violation.reason.as_str()),
        };
        checked
    }
}

/// A rule that is switched off by configuration passes every call.
impl<M: Send, R: Rules<M>> Rules<M> for Option<R> {
    async fn run(&self, req: &mut Request<M>) -> Result<(), Violation> {
        match self {
            Some(rules) => rules.run(req).await,
            None => Ok(()),
        }
    }
}

/// `A`, then `B` if `A` passed.
pub struct Then<A, B>(A, B);

impl<M: Send, A: Rules<M>, B: Rules<M>> Rules<M> for Then<A, B> {
    async fn run(&self, req: &mut Request<M>) -> Result<(), Violation> {
        self.0.run(req).await?;
        self.1.run(req).await
    }
}

/// Puts a chain of rules in front of a service ([`Chain::layer`]).
pub struct RulesLayer<C>(Arc<C>);

impl<C, S> Layer<S> for RulesLayer<C> {
    type Service = RulesService<C, S>;

    fn layer(&self, inner: S) -> Self::Service {
        RulesService {
            rules: Arc::clone(&self.0),
            inner,
        }
    }
}

pub struct RulesService<C, S> {
    rules: Arc<C>,
    inner: S,
}

impl<C, S: Clone> Clone for RulesService<C, S> {
    fn clone(&self) -> Self {
        RulesService {
            rules: Arc::clone(&self.rules),
            inner: self.inner.clone(),
        }
    }
}

impl<M, C, S, T> Service<Request<M>> for RulesService<C, S>
where
    M: Send + 'static,
    C: Rules<M>,
    S: Service<Request<M>, Response = T, Error = Status> + Clone + Send + 'static,
    S::Future: Send,
    T: Send + 'static,
{
    type Response = T;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<T, Status>> + Send>>;

    /// Always ready: the service below is made ready inside the call, once every
    /// rule has passed (a refused call never waits for it).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<M>) -> Self::Future {
        let rules = Arc::clone(&self.rules);
        let inner = self.inner.clone();
        Box::pin(async move {
            match rules.run(&mut req).await {
                Ok(()) => inner.oneshot(req).await,
                Err(violation) => {
                    Note::of(&mut req).lock().reason = Some(violation.reason);
                    Err(status_of(&violation))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tonic::Code;
    use tonic_types::StatusExt;

    use super::*;
    use crate::domain::Reason;

    /// A rule that notes that it ran, and refuses if told to.
    struct Step {
        name: &'static str,
        refuse: Option<Reason>,
        ran: Arc<Mutex<Vec<&'static str>>>,
    }

    impl Rule<()> for Step {
        const NAME: &'static str = "rule.step";

        async fn check(&self, _: &mut Request<()>) -> Result<(), Violation> {
            self.ran.lock().expect("not poisoned").push(self.name);
            match self.refuse {
                Some(reason) => Err(Violation::new(reason, "field", "refused by the test")),
                None => Ok(()),
            }
        }
    }

    fn step(ran: &Arc<Mutex<Vec<&'static str>>>, name: &'static str) -> Step {
        Step {
            name,
            refuse: None,
            ran: Arc::clone(ran),
        }
    }

    /// Calls `rules` in front of an endpoint that notes that it was reached.
    async fn call<C: Rules<()>>(
        rules: Chain<'_, (), C>,
        ran: &Arc<Mutex<Vec<&'static str>>>,
    ) -> (Result<&'static str, Status>, Note) {
        let reached = Arc::clone(ran);
        let endpoint = tower::service_fn(move |_: Request<()>| {
            reached.lock().expect("not poisoned").push("endpoint");
            std::future::ready(Ok::<_, Status>("answered"))
        });
        let mut req = Request::new(());
        let note = Note::of(&mut req);
        (rules.layer().layer(endpoint).oneshot(req).await, note)
    }

    #[tokio::test]
    async fn rules_run_in_order_then_the_service_below() {
        let metrics = RequestMetrics::default();
        let ran = Arc::default();
        let rules = Chain::new(&metrics)
            .rule(step(&ran, "first"))
            .optional(None::<Step>)
            .optional(Some(step(&ran, "configured")))
            .rule(step(&ran, "last"));
        let (answer, note) = call(rules, &ran).await;
        assert_eq!(answer.expect("allowed"), "answered");
        assert_eq!(
            *ran.lock().expect("not poisoned"),
            ["first", "configured", "last", "endpoint"]
        );
        assert_eq!(note.lock().reason, None);
    }

    #[tokio::test]
    async fn the_first_refusal_ends_the_chain_and_is_noted() {
        let metrics = RequestMetrics::default();
        let ran = Arc::default();
        let refusing = Step {
            refuse: Some(Reason::AreaNotActivated),
            ..step(&ran, "refusing")
        };
        let rules = Chain::new(&metrics)
            .rule(step(&ran, "first"))
            .rule(refusing)
            .rule(step(&ran, "never"));
        let (answer, note) = call(rules, &ran).await;
        let status = answer.expect_err("refused");
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(
            status.get_details_error_info().expect("error info").reason,
            "AREA_NOT_ACTIVATED"
        );
        assert_eq!(*ran.lock().expect("not poisoned"), ["first", "refusing"]);
        assert_eq!(note.lock().reason, Some(Reason::AreaNotActivated));
    }
}
