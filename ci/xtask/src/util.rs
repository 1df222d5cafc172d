//! Small helpers: running commands, paths, errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub type Result<T = ()> = std::result::Result<T, String>;

/// Repository root (the workspace of this xtask).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_path_buf()
}

/// Per-checkout build outputs that are not cargo's: `target/quadrant`.
pub fn out_dir() -> PathBuf {
    repo_root().join("target").join("quadrant")
}

/// Downloaded and unpacked inputs, shared by all checkouts: `~/.cache/quadrant`.
pub fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache").join("quadrant")
}

pub fn mkdirs(p: &Path) -> Result {
    std::fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()))
}

/// Prints and runs a command, failing on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result {
    eprintln!("xtask: $ {}", show(cmd));
    let status = cmd.status().map_err(|e| format!("cannot start {}: {e}", show(cmd)))?;
    if status.success() { Ok(()) } else { Err(format!("`{}` failed ({status})", show(cmd))) }
}

/// Runs a command quietly; its output goes to `log`, shown only if it fails.
pub fn run_logged(cmd: &mut Command, log: &Path) -> Result {
    eprintln!("xtask: $ {}  (log: {})", show(cmd), log.display());
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot start {}: {e}", show(cmd)))?;
    let mut text = out.stdout.clone();
    text.extend_from_slice(&out.stderr);
    let _ = std::fs::write(log, &text);
    if out.status.success() {
        Ok(())
    } else {
        let s = String::from_utf8_lossy(&text);
        let tail: Vec<&str> = s.lines().rev().take(30).collect();
        for l in tail.iter().rev() {
            eprintln!("    {l}");
        }
        Err(format!("`{}` failed ({}); full log in {}", show(cmd), out.status, log.display()))
    }
}

/// Runs a command and returns its stdout.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot start {}: {e}", show(cmd)))?;
    if !out.status.success() {
        return Err(format!("`{}` failed: {}", show(cmd), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command and returns its raw stdout.
pub fn output_bytes(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("cannot start {}: {e}", show(cmd)))?;
    if !out.status.success() {
        return Err(format!("`{}` failed: {}", show(cmd), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.stdout)
}

pub fn have(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program} >/dev/null 2>&1")]).status().map(|s| s.success()).unwrap_or(false)
}

pub fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Writes `data` to `path` through a temporary file, so a reader never sees half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result {
    let tmp = path.with_extension("tmp-xtask");
    std::fs::write(&tmp, data).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))
}
