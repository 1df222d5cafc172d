//! Small helpers: running commands, paths, errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
/// A line every [`HEARTBEAT`] says it is still running, so a long build is
/// never silent.
pub fn run_logged(cmd: &mut Command, log: &Path) -> Result {
    eprintln!("xtask: $ {}  (log: {})", show(cmd), log.display());
    let file = std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut child = cmd.stdin(Stdio::null()).stdout(file).stderr(err).spawn().map_err(|e| format!("cannot start {}: {e}", show(cmd)))?;
    let start = Instant::now();
    let mut next = HEARTBEAT;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if start.elapsed() >= next {
            eprintln!("xtask:   … still running ({} s)", start.elapsed().as_secs());
            next += HEARTBEAT;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read(log).unwrap_or_default();
    let s = String::from_utf8_lossy(&text);
    let tail: Vec<&str> = s.lines().rev().take(30).collect();
    for l in tail.iter().rev() {
        eprintln!("    {l}");
    }
    Err(format!("`{}` failed ({status}); full log in {}", show(cmd), log.display()))
}

/// How often a long quiet command reports that it is still running.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

/// Runs one step of setup or build that does real work, with a line before
/// and a line after saying how long it took (issue K: a first run shows
/// what it downloads or builds, and is never silent for long).
pub fn step<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("xtask: ▶ {what}");
    let start = Instant::now();
    let r = f();
    let secs = start.elapsed().as_secs_f64();
    match &r {
        Ok(_) => eprintln!("xtask: ✓ {what} ({secs:.1} s)"),
        Err(_) => eprintln!("xtask: ✗ {what} failed after {secs:.1} s"),
    }
    r
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
