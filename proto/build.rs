//! Generates Rust code for every `.proto` under this directory, once, for the
//! whole workspace, plus the descriptor set that server reflection and the
//! Mesos JSON codec read at run time.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "agora/v1/resources.proto",
    "agora/v1/broker.proto",
    "agora/v1/admin.proto",
    "agora/v1/errors.proto",
    "mesos/v1/mesos.proto",
    "mesos/v1/scheduler/scheduler.proto",
    "mesos/v1/quota/quota.proto",
    "mesos/v1/master/master.proto",
];

/// The files that define services.
const SERVICES: &[&str] = &["agora/v1/broker.proto", "agora/v1/admin.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let well_known = protoc_bin_vendored::include_path()?;
    let well_known = well_known
        .to_str()
        .ok_or("protoc include path is not UTF-8")?;
    config.enable_type_names();
    let includes = [".", well_known];
    tonic_prost_build::configure()
        .build_server(false)
        .file_descriptor_set_path(out_dir.join("descriptor.bin"))
        .compile_with_config(config, PROTOS, &includes)?;
    // The servers again, on their own, with a codec that answers an
    // undecodable request INVALID_ARGUMENT (see src/codec.rs); their
    // messages are the ones generated above.
    let servers = out_dir.join("servers");
    std::fs::create_dir_all(&servers)?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_client(false)
        .out_dir(&servers)
        .codec_path("crate::codec::RequestCodec")
        .extern_path(".agora.v1", "crate::agora::v1")
        .compile_with_config(config, SERVICES, &includes)?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
