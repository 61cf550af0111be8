//! Compiles `junction/v1/*.proto` with protox (pure Rust), so a fresh machine needs no
//! system `protoc`. The encoded descriptor set is kept for gRPC server reflection.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["junction/v1/gateway.proto"];
    let fds = protox::compile(files, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("junction_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Content bytes stay `Bytes` end to end: no copy into a Vec on either side.
        .bytes(".junction.v1.ContentChunk.data")
        .compile_fds(fds)?;
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    Ok(())
}
