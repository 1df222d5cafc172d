//! `cargo xtask verify-token`: runs the `verify-token` binary (ci/verify-token),
//! built only when asked for, so that xtask itself needs nothing that setup
//! installs (the verifier's OpenSSL build wants perl and make).

use crate::util::{self, Result};
use std::process::Command;

pub const USAGE: &str = "  verify-token FILE [--challenge HEX] [--expect-rim HEX] [--expect-rem I:HEX]... [--platform-key HEX]
                   [--expect-platform-token FILE] [--flip-every-byte]
                   check a CCA attestation token (binary CBOR, or base64 text) with
                   ccatoken and p384: signatures, binding, claims; then, if asked,
                   that every single-byte flip of it is refused (docs/rmm.md)";

/// Runs the verifier on `args`; true when it accepted the token.
pub fn main(args: &[String]) -> Result<bool> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(util::repo_root()).args(["run", "--quiet", "-p", "verify-token", "--"]).args(args);
    eprintln!("xtask: $ {}", util::show(&cmd));
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    match status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(format!("verify-token: {status}")),
    }
}
