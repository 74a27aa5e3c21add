//! Compiles the API in `proto/` with `protox`, so no system `protoc` is needed.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/onshi/v1/common.proto",
        "proto/onshi/v1/qualification.proto",
        "proto/onshi/v1/medical.proto",
        "proto/onshi/v1/audit.proto",
        "proto/onshi/v1/admin.proto",
        "proto/onshi/v1/sites.proto",
        "proto/onshi/v1/transparency.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // The descriptor set also feeds server reflection.
    std::fs::write(
        out.join("onshi_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
