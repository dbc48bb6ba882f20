//! Compiles `gorp/v1/*.proto` with protox (pure Rust, no system `protoc`) and
//! writes the descriptor set used by gRPC server reflection.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["gorp/v1/bus.proto", "gorp/v1/control.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-changed=gorp/v1/common.proto");
    let fds = protox::compile(files, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("gorp_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
