//! What a failed upstream call says about the upstream: it answered, the transport
//! failed, or time ran out.
//!
//! The gRPC code alone cannot tell. tonic reports a connection cut mid-call, a GOAWAY
//! (ENHANCE_YOUR_CALM after too many stream resets) or a refused stream with codes
//! such as INTERNAL, UNKNOWN, CANCELLED or RESOURCE_EXHAUSTED, the same codes an
//! upstream may answer with. What differs is the source: a status the upstream sent
//! comes from its trailers and has none, while a transport failure keeps the h2,
//! hyper or I/O error that caused it.

use std::error::Error;

use tonic::{Code, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A status the upstream sent (NOT_FOUND, INVALID_ARGUMENT, INTERNAL…): its
    /// answer, never sent again, and proof that it is there.
    Answer,
    /// The call did not get through, its connection broke before the answer, or the
    /// upstream said UNAVAILABLE: worth another attempt; UPSTREAM_UNAVAILABLE.
    Transport,
    /// The deadline passed, by the client's timer or the upstream's own.
    Timeout,
}

impl Fault {
    /// Whether the upstream failed the call, as the circuit breaker counts: an answer,
    /// even NOT_FOUND or INTERNAL, shows the upstream is there.
    pub fn is_failure(self) -> bool {
        self != Fault::Answer
    }
}

/// Classifies a failed upstream call by the errors behind its status, then its code.
pub fn classify(status: &Status) -> Fault {
    let mut transport = false;
    let mut cause = status.source();
    while let Some(e) = cause {
        // tonic's client reports the deadline it was given as CANCELLED with this cause.
        if e.is::<tonic::TimeoutExpired>() {
            return Fault::Timeout;
        }
        transport |= e.is::<h2::Error>()
            || e.is::<hyper::Error>()
            || e.is::<hyper_util::client::legacy::Error>()
            || e.is::<std::io::Error>()
            || e.is::<tonic::transport::Error>();
        cause = e.source();
    }
    match status.code() {
        _ if transport => Fault::Transport,
        Code::Unavailable => Fault::Transport,
        Code::DeadlineExceeded => Fault::Timeout,
        _ => Fault::Answer,
    }
}

/// The HTTP/2 error behind a transport failure, for the log: e.g. `GOAWAY
/// ENHANCE_YOUR_CALM` or `RST_STREAM REFUSED_STREAM`.
pub fn h2_cause(status: &Status) -> Option<String> {
    let mut cause = status.source();
    while let Some(e) = cause {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            let frame = if h2.is_go_away() {
                "GOAWAY"
            } else if h2.is_reset() {
                "RST_STREAM"
            } else if h2.is_io() {
                return Some("connection I/O".into());
            } else {
                "error"
            };
            return Some(match h2.reason() {
                Some(reason) => format!("{frame} {reason:?}"),
                None => frame.into(),
            });
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::LookupQualificationRequest;
    use crate::proto::qualification_service_client::QualificationServiceClient;
    use h2::Reason;
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use std::net::SocketAddr;
    use tokio::net::TcpListener;

    /// What a one-call HTTP/2 server does.
    #[derive(Clone, Copy, Debug)]
    enum Then {
        /// Takes the call, then closes the connection without answering.
        Cut,
        /// Sends response headers, then closes the connection before the message.
        CutAfterHeaders,
        /// Shuts the connection down with GOAWAY before taking the call.
        GoAway(Reason),
        /// Resets the call's stream.
        Reset(Reason),
    }

    /// The gateway's HTTP/2 client (see `upstream`), and tonic's `Channel`.
    #[derive(Clone, Copy, Debug)]
    enum Via {
        Hyper,
        Channel,
    }

    const BOTH: [Via; 2] = [Via::Hyper, Via::Channel];

    /// What the client makes of a real HTTP/2 server that misbehaves on one call.
    async fn status_after(then: Then, via: Via) -> Status {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(misbehave(listener, then));
        lookup(addr, via).await
    }

    async fn lookup(addr: SocketAddr, via: Via) -> Status {
        let origin: http::Uri = format!("http://{addr}").parse().expect("uri");
        let request = LookupQualificationRequest::default();
        let answer = match via {
            Via::Hyper => {
                let transport: Client<HttpConnector, tonic::body::Body> =
                    Client::builder(TokioExecutor::new())
                        .http2_only(true)
                        .build_http();
                QualificationServiceClient::with_origin(transport, origin)
                    .lookup_qualification(request)
                    .await
            }
            Via::Channel => {
                let channel = tonic::transport::Endpoint::from(origin).connect_lazy();
                QualificationServiceClient::new(channel)
                    .lookup_qualification(request)
                    .await
            }
        };
        answer.expect_err("no answer")
    }

    async fn misbehave(listener: TcpListener, then: Then) {
        let (socket, _) = listener.accept().await.expect("accept");
        let mut conn = h2::server::handshake(socket).await.expect("handshake");
        if let Then::GoAway(reason) = then {
            // Before taking the call: it is beyond the last stream the GOAWAY admits.
            conn.abrupt_shutdown(reason);
            while conn.accept().await.is_some() {}
            // Closing at once could cut the client off before it reads the GOAWAY.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            return;
        }
        let Some(Ok((request, mut respond))) = conn.accept().await else {
            return;
        };
        // The whole request first, so that the client is no longer writing.
        let (read, mut body_read) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut body = request.into_body();
            while let Some(Ok(_)) = body.data().await {}
            let _ = read.send(());
        });
        loop {
            tokio::select! {
                _ = &mut body_read => break,
                next = conn.accept() => if next.is_none() { return },
            }
        }
        match then {
            Then::Cut | Then::GoAway(_) => return,
            Then::CutAfterHeaders => {
                let headers = http::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(())
                    .expect("response");
                let _stream = respond.send_response(headers, false).expect("sent");
                // Flush the headers, then drop the connection.
                let flush = std::time::Duration::from_millis(100);
                let _ = tokio::time::timeout(flush, conn.accept()).await;
                return;
            }
            Then::Reset(reason) => respond.send_reset(reason),
        }
        while conn.accept().await.is_some() {}
    }

    #[tokio::test]
    async fn a_connection_cut_mid_call_is_a_transport_failure_whatever_its_code() {
        for via in BOTH {
            for then in [Then::Cut, Then::CutAfterHeaders] {
                let status = status_after(then, via).await;
                assert_eq!(classify(&status), Fault::Transport, "{via:?} {status:?}");
            }
        }
    }

    #[tokio::test]
    async fn goaway_and_refused_streams_are_transport_failures() {
        for via in BOTH {
            let calm = status_after(Then::GoAway(Reason::ENHANCE_YOUR_CALM), via).await;
            // tonic says RESOURCE_EXHAUSTED, as if the upstream had answered it.
            assert_eq!(calm.code(), Code::ResourceExhausted, "{via:?} {calm:?}");
            assert_eq!(classify(&calm), Fault::Transport);
            let cause = h2_cause(&calm);
            assert_eq!(
                cause.as_deref(),
                Some("GOAWAY ENHANCE_YOUR_CALM"),
                "{via:?}"
            );
            let protocol = status_after(Then::GoAway(Reason::PROTOCOL_ERROR), via).await;
            assert_eq!(protocol.code(), Code::Internal, "{via:?} {protocol:?}");
            assert_eq!(classify(&protocol), Fault::Transport);
            let refused = status_after(Then::Reset(Reason::REFUSED_STREAM), via).await;
            assert_eq!(classify(&refused), Fault::Transport, "{via:?} {refused:?}");
            let cause = h2_cause(&refused);
            assert_eq!(
                cause.as_deref(),
                Some("RST_STREAM REFUSED_STREAM"),
                "{via:?}"
            );
        }
    }

    #[tokio::test]
    async fn nothing_listening_is_a_transport_failure() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind")
            .local_addr()
            .expect("addr");
        for via in BOTH {
            let status = lookup(addr, via).await;
            assert_eq!(classify(&status), Fault::Transport, "{via:?} {status:?}");
        }
    }

    #[test]
    fn errors_as_tonic_wraps_them_are_transport_failures() {
        let io = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe,
        )));
        assert_eq!(io.code(), Code::Unknown);
        assert_eq!(classify(&io), Fault::Transport);
        let calm = Status::from_error(Box::new(h2::Error::from(Reason::ENHANCE_YOUR_CALM)));
        assert_eq!(classify(&calm), Fault::Transport);
    }

    #[test]
    fn what_the_upstream_answers_is_an_answer_whatever_its_code() {
        for code in [
            Code::NotFound,
            Code::InvalidArgument,
            Code::Internal,
            Code::Unknown,
            Code::ResourceExhausted,
            Code::Cancelled,
        ] {
            let status = Status::new(code, "the upstream says so");
            assert_eq!(classify(&status), Fault::Answer, "{code:?}");
            assert!(!classify(&status).is_failure());
        }
        assert_eq!(
            classify(&Status::unavailable("shutting down")),
            Fault::Transport
        );
        assert_eq!(
            classify(&Status::deadline_exceeded("too slow")),
            Fault::Timeout
        );
    }

    #[test]
    fn the_clients_own_deadline_is_a_timeout() {
        let expired = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(
            expired.code(),
            Code::Cancelled,
            "as tonic's client reports it"
        );
        assert_eq!(classify(&expired), Fault::Timeout);
        assert!(classify(&expired).is_failure());
    }
}
