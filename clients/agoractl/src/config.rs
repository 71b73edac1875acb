//! Where the broker is and how to prove who we are. Each setting comes from
//! its flag, else its `AGORA_*` variable (clap reads both), else the config
//! file, else the default: plaintext to `http://127.0.0.1:50051` without a
//! token, which is what `agora dev` serves.

use std::path::{Path, PathBuf};

use agora_client::{ConnectOptions, TlsOptions};
use anyhow::Context;
use serde::Deserialize;

use crate::{Failure, cli::Global};

/// The broker `agora dev` serves by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// The config file: every key optional. Paths are relative to the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// The broker's gRPC URL.
    pub server: Option<String>,
    /// A bearer token.
    pub token: Option<String>,
    /// A file holding the bearer token.
    pub token_file: Option<PathBuf>,
    /// PEM of the CA that signed the broker's certificate.
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// The name to verify in the broker's certificate.
    pub tls_domain: Option<String>,
}

/// Where to connect and with what.
#[derive(Debug)]
pub struct Target {
    /// The broker's URL.
    pub server: String,
    /// Token and TLS.
    pub options: ConnectOptions,
}

/// The file named by `--config` (or `AGORACTL_CONFIG`), which must exist;
/// otherwise `~/.config/agora/agoractl.toml` if it exists.
fn config_path(global: &Global) -> Option<(PathBuf, bool)> {
    if let Some(path) = &global.config {
        return Some((path.clone(), true));
    }
    let home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some((home.join("agora").join("agoractl.toml"), false))
}

/// Reads a config file; relative paths in it become relative to its
/// folder.
pub fn read_file(path: &Path) -> anyhow::Result<File> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut file: File =
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
    let folder = path.parent().unwrap_or(Path::new("."));
    for entry in [
        &mut file.token_file,
        &mut file.ca,
        &mut file.cert,
        &mut file.key,
    ] {
        if let Some(relative) = entry.as_mut().filter(|p| p.is_relative()) {
            *relative = folder.join(&*relative);
        }
    }
    Ok(file)
}

/// Resolves the target from the flags (and variables) and the file.
pub fn target(global: &Global) -> Result<Target, Failure> {
    let file = match config_path(global) {
        Some((path, true)) => read_file(&path).map_err(Failure::Usage)?,
        Some((path, false)) if path.exists() => read_file(&path).map_err(Failure::Usage)?,
        _ => File::default(),
    };
    resolve(global, file).map_err(Failure::Usage)
}

/// The flags and variables win over the file.
pub fn resolve(global: &Global, file: File) -> anyhow::Result<Target> {
    let server = global
        .server
        .clone()
        .or(file.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let mut options = ConnectOptions::new();
    let token_file = global.token_file.clone().or(file.token_file);
    let token = match (global.token.clone(), token_file) {
        (Some(token), _) => Some(token),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read token file {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        (None, None) => file.token,
    };
    if let Some(token) = token {
        options = options.token(token);
    }
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
    };
    let (ca, cert, key) = (
        global.ca.clone().or(file.ca),
        global.cert.clone().or(file.cert),
        global.key.clone().or(file.key),
    );
    let domain = global.tls_domain.clone().or(file.tls_domain);
    match (&ca, &cert, &key) {
        (None, None, None) => {}
        (None, _, _) => {
            anyhow::bail!("--cert and --key need --ca: client certificates go over TLS")
        }
        (Some(ca), cert, key) => {
            let mut tls = TlsOptions::new(read(ca, "CA")?);
            match (cert, key) {
                (Some(cert), Some(key)) => {
                    tls = tls.identity(read(cert, "certificate")?, read(key, "key")?);
                }
                (None, None) => {}
                _ => anyhow::bail!("--cert and --key go together"),
            }
            if let Some(domain) = domain {
                tls = tls.domain(domain);
            }
            options = options.tls(tls);
        }
    }
    Ok(Target { server, options })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn global(args: &[&str]) -> Global {
        let mut argv = vec!["agoractl"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["get", "ns"]);
        Cli::try_parse_from(argv).unwrap().global
    }

    #[test]
    fn flags_win_over_the_file_and_the_default_is_agora_dev() {
        let file = File {
            server: Some("http://from-file:1".into()),
            ..File::default()
        };
        let target = resolve(&global(&["--server", "http://flag:2"]), file).unwrap();
        assert_eq!(target.server, "http://flag:2");
        let file = File {
            server: Some("http://from-file:1".into()),
            ..File::default()
        };
        assert_eq!(
            resolve(&global(&[]), file).unwrap().server,
            "http://from-file:1"
        );
        assert_eq!(
            resolve(&global(&[]), File::default()).unwrap().server,
            DEFAULT_SERVER
        );
    }

    #[test]
    fn a_file_names_paths_relative_to_itself_and_refuses_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agoractl.toml");
        std::fs::write(
            &path,
            "server = \"http://a:1\"\ntoken_file = \"ops.token\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("ops.token"), "s3cret\n").unwrap();
        let file = read_file(&path).unwrap();
        assert_eq!(file.token_file, Some(dir.path().join("ops.token")));
        let target = resolve(&global(&[]), file).unwrap();
        assert_eq!(target.server, "http://a:1");
        assert!(!format!("{:?}", target.options).contains("s3cret"));
        std::fs::write(&path, "sever = \"typo\"\n").unwrap();
        let error = format!("{:#}", read_file(&path).unwrap_err());
        assert!(error.contains("sever"), "{error}");
    }

    #[test]
    fn client_certificates_need_a_ca() {
        let error = resolve(
            &global(&["--cert", "c.pem", "--key", "k.pem"]),
            File::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("--ca"), "{error}");
    }
}
