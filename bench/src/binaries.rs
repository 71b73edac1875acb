//! Where the `agora` and `devcluster` binaries come from: by default the
//! workspace target directory this binary was built into, rebuilt first
//! when the harness runs under cargo (so `cargo run --release -p
//! agora-bench -- …` never measures a stale broker); or any paths given.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail, ensure};
use clap::Args;

/// Flags choosing the binaries under test.
#[derive(Debug, Clone, Args)]
pub(crate) struct BinaryArgs {
    /// The broker binary (default: `agora` beside this one).
    #[arg(long, env = "AGORA_BENCH_AGORA", global = true)]
    pub agora_bin: Option<PathBuf>,
    /// The devcluster binary (default: `devcluster` beside this one).
    #[arg(long, env = "AGORA_BENCH_DEVCLUSTER", global = true)]
    pub devcluster_bin: Option<PathBuf>,
    /// Do not run `cargo build` for the default binaries, even under cargo.
    #[arg(long, global = true)]
    pub no_build: bool,
}

/// The programs a run starts.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    pub agora: PathBuf,
    pub devcluster: PathBuf,
    /// This binary, re-run as the empty-RPC baseline server.
    pub bench: PathBuf,
    /// Where children's logs go: `bench-logs/` in the target directory.
    pub log_dir: PathBuf,
}

impl Binaries {
    /// Resolves (and, under cargo, rebuilds) the binaries.
    pub(crate) fn resolve(args: &BinaryArgs) -> anyhow::Result<Binaries> {
        let bench = std::env::current_exe().context("cannot find this binary's path")?;
        let dir = target_dir(&bench)?;
        let defaults_needed = args.agora_bin.is_none() || args.devcluster_bin.is_none();
        if defaults_needed
            && !args.no_build
            && let Some(cargo) = std::env::var_os("CARGO")
        {
            build(Path::new(&cargo))?;
        }
        let agora = args.agora_bin.clone().unwrap_or_else(|| dir.join("agora"));
        let devcluster = args
            .devcluster_bin
            .clone()
            .unwrap_or_else(|| dir.join("devcluster"));
        for path in [&agora, &devcluster] {
            ensure!(
                path.is_file(),
                "{} is missing: build it with `cargo build{} -p agora-broker -p devcluster --bins`, \
                 or pass --agora-bin / --devcluster-bin",
                path.display(),
                release_flag()
            );
        }
        Ok(Binaries {
            agora,
            devcluster,
            bench,
            log_dir: dir.join("bench-logs"),
        })
    }
}

/// `target/<profile>` for a binary in it or in its `deps/` (test binaries).
fn target_dir(exe: &Path) -> anyhow::Result<PathBuf> {
    let parent = exe.parent().context("this binary has no directory")?;
    let dir = if parent.ends_with("deps") {
        parent.parent().context("deps/ has no parent")?
    } else {
        parent
    };
    Ok(dir.to_path_buf())
}

/// Builds the broker and devcluster with this binary's profile.
fn build(cargo: &Path) -> anyhow::Result<()> {
    let mut command = Command::new(cargo);
    command.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "build",
        "-p",
        "agora-broker",
        "-p",
        "devcluster",
        "--bins",
    ]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", cargo.display()))?;
    if !status.success() {
        bail!("building agora and devcluster failed ({status})");
    }
    Ok(())
}

fn release_flag() -> &'static str {
    if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_profile_directory_of_binaries_and_tests() {
        assert_eq!(
            target_dir(Path::new("/w/target/release/agora-bench")).unwrap(),
            Path::new("/w/target/release")
        );
        assert_eq!(
            target_dir(Path::new("/w/target/debug/deps/smoke-123")).unwrap(),
            Path::new("/w/target/debug")
        );
    }
}
