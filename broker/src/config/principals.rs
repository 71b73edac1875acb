//! `[[auth.principals]]`: who may call the broker and how each caller
//! proves it, as the operator writes it in the configuration.
//!
//! The configuration parses and validates these; `api::auth` checks every
//! request against them. They live here, under the configuration and apart
//! from the authentication itself, so that the API depends on the
//! configuration and never the other way round.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One caller identity and what it is granted (`[[auth.principals]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSettings {
    /// The name sessions and frontend names are bound to.
    pub name: String,
    /// SHA-256 (hex) of the principal's bearer token; `agora hash-token`
    /// prints it. The token itself never goes into the file.
    #[serde(default)]
    pub token_sha256: Option<TokenHash>,
    /// The subject CN of the principal's client certificate, verified
    /// against `tls.client_ca`.
    #[serde(default)]
    pub tls_subject: Option<String>,
    /// Namespaces it may subscribe in; `["*"]` grants every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Whether it may call the `Admin` service.
    #[serde(default)]
    pub admin: bool,
}

/// The SHA-256 of a bearer token, as the configuration stores it.
///
/// Why SHA-256 and not a password hash such as Argon2: tokens are long
/// random machine credentials (e.g. 32 random bytes, hex), not passwords a
/// person chose, so nobody can guess one from its hash however fast the
/// hash is; a deliberately slow hash would only cost CPU on every call.
/// Why store a hash at all: a leaked configuration file then leaks no
/// working credential.
///
/// Equality is constant-time, and `Debug` never shows the digest.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of `token`, as `agora hash-token` prints it.
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Lower-case hex, the form the configuration file takes.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Compares in constant time, so that the time a refusal takes tells
    /// an attacker nothing about how close a guess was.
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &TokenHash) -> bool {
        self.matches(other)
    }
}

impl Eq for TokenHash {}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<sha256 redacted>")
    }
}

/// Why a `token_sha256` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "token_sha256 must be 64 hexadecimal digits (a SHA-256); `agora hash-token` prints it from the token on stdin"
)]
pub struct BadTokenHash;

impl TryFrom<String> for TokenHash {
    type Error = BadTokenHash;

    fn try_from(hex: String) -> Result<TokenHash, BadTokenHash> {
        let hex = hex.trim().as_bytes();
        if hex.len() != 64 {
            return Err(BadTokenHash);
        }
        let mut digest = [0u8; 32];
        for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| BadTokenHash)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| BadTokenHash)?;
        }
        Ok(TokenHash(digest))
    }
}

impl From<TokenHash> for String {
    fn from(hash: TokenHash) -> String {
        hash.to_hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 of "abc", from FIPS 180-2.
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn hashes_are_sha256_in_lower_hex_and_parse_back() {
        let hash = TokenHash::of("abc");
        assert_eq!(hash.to_hex(), ABC);
        assert_eq!(TokenHash::try_from(ABC.to_owned()), Ok(hash.clone()));
        assert_eq!(TokenHash::try_from(ABC.to_uppercase()), Ok(hash));
    }

    #[test]
    fn refuses_hashes_that_are_not_64_hex_digits() {
        for bad in [
            "",
            "abc",
            &ABC[1..],
            &format!("{ABC}0"),
            &ABC.replace('b', "g"),
        ] {
            assert_eq!(
                TokenHash::try_from(bad.to_owned()),
                Err(BadTokenHash),
                "{bad}"
            );
        }
    }

    #[test]
    fn compares_by_value_and_never_prints_the_digest() {
        assert!(TokenHash::of("x").matches(&TokenHash::of("x")));
        assert!(!TokenHash::of("x").matches(&TokenHash::of("y")));
        let shown = format!("{:?}", TokenHash::of("abc"));
        assert!(!shown.contains(&ABC[..8]), "{shown}");
    }
}
