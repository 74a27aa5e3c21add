//! deploy/: `deploy/check.sh` passes (schemas, rules, the shipped configuration run
//! as two replicas and probed as the kubelet and compose probe it, the load-test
//! recipe; see its header), the image's Dockerfile is
//! multi-stage and runs the binary alone as a numeric non-root user, and every
//! configuration shipped there passes `onshi-gateway config check`.
//!
//! Needs python3 (with venv), systemd-analyze, psql and PostgreSQL at
//! ONSHI_DEPLOY_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test);
//! check.sh says which is missing. Its Python tools are installed from PyPI into
//! deploy/.venv on first run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn gateway() -> &'static str {
    env!("CARGO_BIN_EXE_onshi-gateway")
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The target directory the binary was built in (…/target/debug/onshi-gateway), so
/// that the load test's `cargo bench` reuses this build's artifacts.
fn target_dir() -> PathBuf {
    Path::new(gateway())
        .parent()
        .and_then(Path::parent)
        .expect("the binary lies in <target>/<profile>/")
        .to_path_buf()
}

#[test]
fn deploy_check_passes() {
    let out = Command::new("bash")
        .arg(root().join("deploy/check.sh"))
        .arg(gateway())
        .env("CARGO", option_env!("CARGO").unwrap_or("cargo"))
        .env("CARGO_TARGET_DIR", target_dir())
        .current_dir(root())
        .output()
        .expect("bash runs deploy/check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "deploy/check.sh failed: {}",
        show(&out)
    );
    for step in [
        "image",
        "k8s",
        "compose",
        "systemd",
        "replicas",
        "load-test",
    ] {
        assert!(
            stdout.contains(&format!("== {step}\n")),
            "deploy/check.sh ran no {step} step: {}",
            show(&out)
        );
    }
    assert!(
        stdout.contains("deploy checks: 6 of 6 passed"),
        "{}",
        show(&out)
    );
}

/// One Dockerfile instruction: its keyword (upper case) and the rest of its line.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

/// Instructions with continuation lines joined, comments and blank lines dropped.
fn instructions(text: &str) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                pending.push_str(start);
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let (keyword, args) = pending.split_once(' ').unwrap_or((&pending, ""));
                out.push(Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_string(),
                });
                pending.clear();
            }
        }
    }
    out
}

/// `${NAME}` replaced by the default of `ARG NAME=…` given before the first stage.
fn expand(value: &str, args: &[(String, String)]) -> String {
    args.iter().fold(value.to_string(), |v, (name, default)| {
        v.replace(&format!("${{{name}}}"), default)
    })
}

#[test]
fn image_is_multi_stage_and_runs_the_binary_alone_as_a_numeric_non_root_user() {
    let all = instructions(&read("deploy/Dockerfile"));
    let first_from = all
        .iter()
        .position(|i| i.keyword == "FROM")
        .expect("a FROM");
    let args: Vec<(String, String)> = all[..first_from]
        .iter()
        .filter(|i| i.keyword == "ARG")
        .filter_map(|i| i.args.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for i in &all[first_from..] {
        if i.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("a stage").push(i.clone());
    }
    assert!(
        stages.len() >= 2,
        "one stage only: the toolchain would ship"
    );

    // The build stage: a Rust image, the locked release build.
    let builder = &stages[0];
    let (base, name) = builder[0]
        .args
        .split_once(" AS ")
        .or_else(|| builder[0].args.split_once(" as "))
        .expect("the build stage is named");
    assert!(expand(base, &args).starts_with("rust:"), "{base}");
    assert!(
        builder
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("cargo build --release --locked")),
        "the build stage does not run `cargo build --release --locked`"
    );

    // The runtime stage: a minimal base, the binary from the build stage and the
    // image's configuration file, nothing else.
    let runtime = stages.last().expect("a runtime stage");
    let runtime_base = expand(
        runtime[0].args.split_whitespace().next().expect("a base"),
        &args,
    );
    assert!(
        runtime_base.starts_with("gcr.io/distroless/")
            || (runtime_base.starts_with("debian:") && runtime_base.ends_with("-slim")),
        "runtime base {runtime_base} is not a minimal one"
    );
    let copies: Vec<&Instruction> = runtime.iter().filter(|i| i.keyword == "COPY").collect();
    let from_build = format!("--from={name}");
    for copy in &copies {
        assert!(
            copy.args.contains(&from_build)
                || copy.args == "deploy/container.toml /etc/onshi-gateway/onshi-gateway.toml",
            "the runtime stage copies more than the binary and its configuration: COPY {}",
            copy.args
        );
    }
    assert!(
        copies
            .iter()
            .any(|c| c.args.contains(&from_build)
                && c.args.ends_with(" /usr/local/bin/onshi-gateway")),
        "the binary is not copied from the build stage"
    );
    assert!(
        !runtime.iter().any(|i| i.keyword == "RUN"),
        "the runtime stage runs commands (packages would be added to the base)"
    );

    // A numeric, non-root user and group, the same as the manifests run as.
    let user = runtime
        .iter()
        .rev()
        .find(|i| i.keyword == "USER")
        .expect("the runtime stage sets USER")
        .args
        .clone();
    let (uid, gid) = user.split_once(':').unwrap_or((&user, ""));
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER {user} is not numeric"));
    assert!(uid > 0, "USER {user} is root");
    if !gid.is_empty() {
        assert!(
            gid.parse::<u32>().is_ok_and(|g| g > 0),
            "USER {user}: group"
        );
    }
    assert!(
        read("deploy/k8s/deployment.yaml").contains(&format!("runAsUser: {uid}\n")),
        "deployment.yaml does not run as {uid}"
    );
    assert!(
        read("deploy/compose.yaml").contains(&format!("user: \"{user}\"")),
        "compose.yaml does not run as {user}"
    );

    // It serves, and exposes the ports its configuration listens on.
    let entrypoint = runtime
        .iter()
        .rev()
        .find(|i| i.keyword == "ENTRYPOINT")
        .expect("an ENTRYPOINT");
    assert_eq!(
        entrypoint.args, r#"["/usr/local/bin/onshi-gateway", "serve"]"#,
        "ENTRYPOINT is the binary's serve, in exec form (so SIGTERM reaches it)"
    );
    let exposed: Vec<&str> = runtime
        .iter()
        .filter(|i| i.keyword == "EXPOSE")
        .flat_map(|i| i.args.split_whitespace())
        .collect();
    let config: toml::Table = read("deploy/container.toml").parse().expect("TOML");
    let listen = config["listen"].as_table().expect("[listen]");
    for key in ["terminals", "admin", "metrics", "health"] {
        let address = listen[key].as_str().expect("an address");
        let port = address.rsplit(':').next().expect("a port");
        assert!(
            exposed.contains(&port),
            "listen.{key} = {address}: port not exposed ({exposed:?})"
        );
    }
    assert!(
        runtime.iter().any(|i| i.keyword == "ENV"
            && i.args == "ONSHI_CONFIG=/etc/onshi-gateway/onshi-gateway.toml"),
        "ONSHI_CONFIG does not name the image's configuration file"
    );
}

/// The literal block `key: |` of a YAML file, its indentation removed.
fn yaml_block(text: &str, key: &str) -> String {
    let mut lines = text.lines().skip_while(|l| l.trim() != format!("{key}: |"));
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no `{key}: |` block"));
    let indent = header.len() - header.trim_start().len() + 2;
    let block: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect();
    block.join("\n") + "\n"
}

/// The `KEY: value` entries of the mapping under `header` (a line of its own).
fn yaml_mapping(text: &str, header: &str) -> Vec<(String, String)> {
    let mut lines = text.lines().skip_while(|l| l.trim() != header);
    let header_line = lines.next().unwrap_or_else(|| panic!("no `{header}`"));
    let indent = header_line.len() - header_line.trim_start().len();
    lines
        .take_while(|l| l.len() - l.trim_start().len() > indent)
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// `config check` of `file` with `env`, paths of the container replaced by local
/// ones (the data directory, and the certificates `certs dev` wrote in `tls`).
fn config_check(file: &Path, env: &[(String, String)], dirs: &Path) -> (bool, String) {
    let mut command = Command::new(gateway());
    command
        .args(["config", "check"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ONSHI_CONFIG", file)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("ONSHI_TLS_DIR", dirs.join("tls"))
        .env("ONSHI_DATA_DIR", dirs.join("data"));
    let out = command.output().expect("runs config check");
    (out.status.success(), show(&out))
}

#[test]
fn shipped_configurations_pass_config_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = Command::new(gateway())
        .args(["certs", "dev", "--dir"])
        .arg(dir.path().join("tls"))
        .output()
        .expect("certs dev runs");
    assert!(certs.status.success(), "{}", show(&certs));

    // The image's own file.
    let (ok, out) = config_check(&root().join("deploy/container.toml"), &[], dir.path());
    assert!(ok, "deploy/container.toml: {out}");
    assert!(out.contains("terminals on 0.0.0.0:50051"), "{out}");

    // The ConfigMap's file, with the database URL the Secret gives.
    let configmap = dir.path().join("configmap.toml");
    std::fs::write(
        &configmap,
        yaml_block(&read("deploy/k8s/configmap.yaml"), "onshi-gateway.toml"),
    )
    .expect("written");
    let secret = [(
        "ONSHI_DATABASE_URL".to_string(),
        "postgres://onshi:secret@postgres.onshi.svc:5432/onshi".to_string(),
    )];
    let (ok, out) = config_check(&configmap, &secret, dir.path());
    assert!(ok, "deploy/k8s/configmap.yaml: {out}");
    for expected in [
        "terminals on 0.0.0.0:50051",
        "store PostgreSQL",
        "traces to http://",
        "as json",
    ] {
        assert!(out.contains(expected), "configmap: {expected:?} in {out}");
    }
    assert!(!out.contains("secret@"), "the password is shown: {out}");

    // Compose: the image's file under the gateways' environment.
    let compose = yaml_mapping(
        &read("deploy/compose.yaml"),
        "environment: &gateway-environment",
    );
    assert!(
        compose.iter().any(|(k, _)| k == "ONSHI_DATABASE_URL"),
        "no database URL among the compose gateways' variables: {compose:?}"
    );
    let (ok, out) = config_check(&root().join("deploy/container.toml"), &compose, dir.path());
    assert!(ok, "deploy/compose.yaml's gateways: {out}");
    assert!(
        out.contains("traces to http://otel-collector:4317"),
        "{out}"
    );

    // The check can fail: a value the gateway refuses in the same setting.
    let broken = [(
        "ONSHI_OTLP_ENDPOINT".to_string(),
        "otel-collector:4317".to_string(),
    )];
    let (ok, out) = config_check(&configmap, &broken, dir.path());
    assert!(!ok, "a collector address without a scheme passed: {out}");
}
