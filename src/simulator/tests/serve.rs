use tokio::net::TcpListener;

use super::shared;
use crate::proto::qualification_service_client::QualificationServiceClient;
use crate::proto::{LookupQualificationRequest, QualificationStatus};
use crate::simulator::{Simulator, fixtures, serve};

#[tokio::test]
async fn serves_over_a_real_socket_and_shuts_down() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, Simulator::new(shared()), async {
        let _ = stopped.await;
    }));

    let mut client = QualificationServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let reply = client
        .lookup_qualification(LookupQualificationRequest {
            access: None,
            insured: Some(fixtures::DEMO_PATIENT.insured()),
            birth_date: "1958-04-12".into(),
        })
        .await
        .expect("lookup")
        .into_inner();
    assert_eq!(reply.status, QualificationStatus::Valid as i32);
    assert_eq!(
        reply.qualification.map(|q| q.name).as_deref(),
        Some("山田 太郎")
    );

    drop(client);
    let _ = stop.send(());
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("stops in time")
        .expect("task");
    assert!(result.is_ok());
}
