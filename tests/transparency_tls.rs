//! The witness as another organisation runs it: over mutual TLS, with an operator
//! certificate of the `witness` role from `certs dev`, against a gateway serving
//! with `--tls-dir` (the real binary). The role reaches checkpoints and proofs and
//! nothing else.

#[path = "common/process.rs"]
mod process;

use std::process::Output;

use onshi_gateway::audit::ChainSigner;
use process::{TlsGateway, bin};

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_witness_certificate_fetches_and_cosigns_checkpoints_but_reads_nothing_else() {
    let gateway = TlsGateway::start(&[], &["--population", "2000"]);
    let public_key = ChainSigner::load_or_generate(&gateway.data.join("audit-signing.key"))
        .expect("the gateway's key")
        .public_key_hex();
    let admin = format!("https://127.0.0.1:{}", gateway.serving.admin.port());
    let witness_dir = tempfile::tempdir().expect("tempdir");
    let witness = |operator: &str| {
        bin()
            .args([
                "audit",
                "witness",
                "--admin",
                &admin,
                "--log-key",
                &public_key,
            ])
            .arg("--dir")
            .arg(witness_dir.path())
            .args(gateway.operator_flags(operator))
            .output()
            .expect("the CLI runs")
    };
    let first = witness("witness");
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("consistent with the 0 seen before"),
        "{}",
        text(&first)
    );
    // Running again finds the same tree, still consistent with what it kept.
    let again = witness("witness");
    assert!(again.status.success(), "{}", text(&again));

    let activations = bin()
        .args(["activation", "list", "--admin", &admin])
        .args(gateway.operator_flags("witness"))
        .output()
        .expect("the CLI runs");
    assert!(!activations.status.success(), "{}", text(&activations));
    assert!(
        text(&activations).contains("OPERATOR_ROLE_REQUIRED"),
        "{}",
        text(&activations)
    );

    // A certificate of a role without the tree is refused.
    let manager = witness("activation-manager");
    assert!(!manager.status.success(), "{}", text(&manager));
    assert!(
        text(&manager).contains("OPERATOR_ROLE_REQUIRED"),
        "{}",
        text(&manager)
    );
}
