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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let well_known = protoc_bin_vendored::include_path()?;
    let well_known = well_known
        .to_str()
        .ok_or("protoc include path is not UTF-8")?;
    config.enable_type_names();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("descriptor.bin"))
        .compile_with_config(config, PROTOS, &[".", well_known])?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
