//! `cargo xtask fresh-check`: the README's `cargo xtask test` on a clean
//! Debian 12 root, not on this machine (issue K).  A green CI on a machine
//! that kept packages from earlier sessions once hid a missing install step;
//! this proves the path a new user takes.
//!
//! 1. mmdebstrap (Debian's own tool) makes a bookworm root with what the
//!    README asks a user to have besides rustup: `gcc` + `libc6-dev` (rustc's
//!    linker) and `ca-certificates` (cargo's TLS to crates.io).  Nothing else.
//! 2. This repository's committed HEAD is cloned into it.
//! 3. The host's rustup home is bind-mounted read-only (this workplace cannot
//!    download toolchains; the pinned one must already be installed here,
//!    which `cargo xtask setup` ensures), with rustup's proxies for
//!    `cargo`/`rustc`/`rustup`; CARGO_HOME is the root's own, empty.
//! 4. In a private mount namespace (the mounts vanish with it) and a chroot,
//!    `cargo xtask test` runs as root with HOME=/root: setup installs every
//!    package and download from scratch.
//!
//! It prints the run's closing `N passed, N failed` line and how many host
//! packages the root could upgrade from trixie (must be 0).  Not part of
//! `.ci/run` (a full first run takes a while); its log is
//! `target/quadrant/fresh-check.log`.

use crate::util::{self, Result, run};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The packages of a "fresh Debian 12 machine with rustup" beyond minbase.
const BASE_INCLUDE: &str = "ca-certificates,gcc,libc6-dev";

/// The tools rustup's installer links to the rustup binary.
const PROXIES: &[&str] = &["cargo", "cargo-clippy", "cargo-fmt", "clippy-driver", "rustc", "rustdoc", "rustfmt", "rust-gdb", "rust-lldb"];

/// A fresh bookworm machine's apt sources.
const BASE_SOURCES: &[&str] = &[
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
];

pub fn fresh_check() -> Result<bool> {
    let host_rustup = rustup_home();
    if !host_rustup.join("toolchains").is_dir() {
        return Err(format!("no rustup toolchains under {}", host_rustup.display()));
    }
    // The pinned toolchain with its target: what the clean root will use.
    crate::setup::rust_target()?;
    if !util::have("mmdebstrap") {
        util::step("apt: mmdebstrap (for the clean root)", || {
            run(Command::new("apt-get").env("DEBIAN_FRONTEND", "noninteractive").args(["install", "-y", "-q", "--no-install-recommends", "mmdebstrap"]))
        })?;
    }
    let work = util::cache_dir().join("fresh");
    let root = work.join("root");
    if root.exists() {
        util::step("removing the previous clean root", || run(Command::new("rm").args(["-rf", "--one-file-system"]).arg(&root)))?;
    }
    util::mkdirs(&work)?;
    util::step("mmdebstrap: a clean Debian 12 (bookworm) root", || {
        let mut cmd = Command::new("mmdebstrap");
        cmd.args(["--variant=minbase", "--mode=root", "--format=directory", &format!("--include={BASE_INCLUDE}"), "bookworm"]).arg(&root);
        cmd.args(BASE_SOURCES);
        util::run_logged(&mut cmd, &work.join("mmdebstrap.log"))
    })?;
    let clone = root.join("root/quadrant");
    util::step("git clone of this repository's HEAD into the root", || {
        run(Command::new("git").args(["clone", "-q", "--no-hardlinks"]).arg(util::repo_root()).arg(&clone))
    })?;
    // rustup and its proxies (cargo, rustc, rustdoc, clippy, ...): links to
    // the rustup binary named after each tool, as rustup's installer makes them.
    let bin = root.join("root/.cargo/bin");
    util::mkdirs(&bin)?;
    let rustup_bin = which("rustup")?;
    std::fs::copy(&rustup_bin, bin.join("rustup")).map_err(|e| format!("copying {}: {e}", rustup_bin.display()))?;
    for name in PROXIES {
        std::os::unix::fs::symlink("rustup", bin.join(name)).map_err(|e| format!("linking {name}: {e}"))?;
    }
    util::mkdirs(&root.join("root/.rustup"))?;
    let _ = std::fs::copy("/etc/resolv.conf", root.join("etc/resolv.conf"));
    // The site's apt acquisition settings (proxies, a mirror of frozen
    // snapshots whose Release files are past their Valid-Until, as here):
    // the network, like resolv.conf, not packages. Only files that hold
    // nothing but `Acquire::` settings; without them the fresh root could not
    // read this site's unstable deb-src (OP-TEE's source) at all.
    if let Ok(list) = std::fs::read_dir("/etc/apt/apt.conf.d") {
        for e in list.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else { continue };
            let settings: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("//") && !l.starts_with('#')).collect();
            if !settings.is_empty() && settings.iter().all(|l| l.starts_with("Acquire::")) {
                let _ = std::fs::copy(e.path(), root.join("etc/apt/apt.conf.d").join(e.file_name()));
            }
        }
    }
    // The network's own trust: a site whose egress re-signs TLS installs its
    // CA in /usr/local/share/ca-certificates on every machine, fresh or not.
    // That is the place, not this project's state, so the root gets it too.
    let local_ca = Path::new("/usr/local/share/ca-certificates");
    if let Ok(list) = std::fs::read_dir(local_ca) {
        let dest = root.join("usr/local/share/ca-certificates");
        util::mkdirs(&dest)?;
        for e in list.flatten() {
            let _ = std::fs::copy(e.path(), dest.join(e.file_name()));
        }
    }
    let inner = "set -e
apt_candidates() { apt-get -s -q dist-upgrade 2>/dev/null | grep '^Inst' | grep -c -E 'trixie' || true; }
update-ca-certificates >/dev/null 2>&1 || true
cd /root/quadrant
echo \"fresh-check: $(. /etc/os-release; echo $PRETTY_NAME), $(dpkg -l | grep -c '^ii') packages, $(cargo --version)\"
status=0
cargo xtask test || status=$?
echo \"fresh-check: host packages upgradable from trixie or trixie-backports: $(apt_candidates)\"
exit $status
";
    let script = format!(
        "set -e
mount --make-rprivate /
mount --rbind /dev '{root}/dev'
mount -t proc proc '{root}/proc'
mount -t sysfs sys '{root}/sys'
mount -t tmpfs tmpfs '{root}/tmp'
mount --bind -o ro '{rustup}' '{root}/root/.rustup'
exec chroot '{root}' /usr/bin/env -i HOME=/root TERM=dumb CI=true LANG=C.UTF-8 \
  RUSTUP_HOME=/root/.rustup CARGO_HOME=/root/.cargo PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/bash -c '{inner}'",
        root = root.display(),
        rustup = host_rustup.display(),
        inner = inner.replace('\'', "'\\''"),
    );
    let log = util::out_dir().join("fresh-check.log");
    util::mkdirs(log.parent().unwrap())?;
    eprintln!("xtask: ▶ cargo xtask test in the clean root (log: {})", log.display());
    let start = Instant::now();
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start unshare: {e}"))?;
    // stderr and stdout both to this terminal and the log, line by line.
    let file = std::sync::Arc::new(std::sync::Mutex::new(std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?));
    let closing = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut readers = Vec::new();
    let streams: Vec<Box<dyn std::io::Read + Send>> = vec![Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
    for stream in streams {
        let (file, closing) = (file.clone(), closing.clone());
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(std::result::Result::ok) {
                eprintln!("  | {line}");
                let _ = writeln!(file.lock().unwrap(), "{line}");
                if is_closing_line(&line) || line.starts_with("fresh-check:") {
                    closing.lock().unwrap().push(line);
                }
            }
        }));
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    for r in readers {
        let _ = r.join();
    }
    let mins = start.elapsed().as_secs_f64() / 60.0;
    println!("fresh-check: ran {mins:.1} min in {} (log: {})", root.display(), log.display());
    for l in closing.lock().unwrap().iter() {
        println!("{l}");
    }
    if !closing.lock().unwrap().iter().any(|l| is_closing_line(l)) {
        println!("fresh-check: FAILED: `cargo xtask test` printed no closing `N passed, N failed` line");
    }
    let from_trixie_ok = closing.lock().unwrap().iter().any(|l| l.ends_with("trixie or trixie-backports: 0"));
    if !from_trixie_ok {
        println!("fresh-check: FAILED: the clean root could take host packages from trixie");
    }
    Ok(status.success() && from_trixie_ok)
}

/// `N passed, N failed` (the line `cargo xtask test` ends with).
fn is_closing_line(l: &str) -> bool {
    let w: Vec<&str> = l.split_whitespace().collect();
    matches!(w.as_slice(), [_, "passed,", _, "failed"] if w[0].parse::<u32>().is_ok() && w[2].parse::<u32>().is_ok())
}

fn rustup_home() -> PathBuf {
    std::env::var_os("RUSTUP_HOME").map(PathBuf::from).unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".rustup"))
}

fn which(program: &str) -> Result<PathBuf> {
    let out = util::output(Command::new("sh").args(["-c", &format!("command -v {program}")]))?;
    Ok(PathBuf::from(out.trim()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn closing_line() {
        assert!(super::is_closing_line("270 passed, 0 failed"));
        assert!(!super::is_closing_line("host unit tests: 251 passed, 0 failed"));
        assert!(!super::is_closing_line("x passed, 0 failed"));
    }
}
