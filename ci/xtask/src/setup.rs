//! `cargo xtask setup`: everything the build, run and tests need on a fresh
//! Debian 12 machine, installed once and cached under `~/.cache/quadrant`.
//! Each step checks first whether its result is already there, so a second run
//! does nothing and needs no network.  Steps publish their result only when
//! complete (a directory renamed into place, a marker written last), so a
//! failed step is simply redone next time.

use crate::util::{self, Result, have, output, run};
use std::path::{Path, PathBuf};
use std::process::Command;

/// TF-A release and the Debian source package it comes from.
pub const TFA_DEBIAN_VERSION: &str = "2.12.1+dfsg-1";

/// Apt sources Quadrant adds.  Newer suites come in only as `deb-src` or as
/// `Architectures: arm64` (guest packages, downloaded and unpacked, never
/// installed), so no host package ever upgrades from them.
const APT_SOURCES: &str = "\
# Added by Quadrant's `cargo xtask setup`.
# QEMU 10 (RME support) for the host.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# TF-A source package.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# Guest kernel (arm64 only, downloaded, never installed).
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie-backports
Components: main
Architectures: arm64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

const APT_SOURCES_FILE: &str = "/etc/apt/sources.list.d/quadrant.sources";

/// Apt preferences for the suites above.  An `Architectures: arm64` suite
/// still offers its `Architecture: all` packages to the host (trixie-backports
/// once offered qemu-system-data 11 over the installed 10), so trixie and
/// trixie-backports get priority -1: never a candidate for installing or
/// upgrading anything, while `apt-get download PKG/trixie-backports` and
/// `apt-get source PKG=VERSION`, which name the release or version, still work.
/// bookworm-backports keeps Debian's default for backports (100: only what
/// was installed from it, i.e. QEMU, follows it).
const APT_PREFERENCES: &str = "\
# Added by Quadrant's `cargo xtask setup`: nothing on the host comes from
# trixie or trixie-backports (they serve only arm64 guest downloads and sources).
Package: *
Pin: release n=trixie
Pin-Priority: -1

Package: *
Pin: release n=trixie-backports
Pin-Priority: -1
";

const APT_PREFERENCES_FILE: &str = "/etc/apt/preferences.d/quadrant.pref";

/// Host tools and the Debian package that provides each.
const HOST_TOOLS: &[(&str, &str)] = &[
    ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    ("dtc", "device-tree-compiler"),
    ("fdtput", "device-tree-compiler"),
    ("cpio", "cpio"),
    ("dpkg-source", "dpkg-dev"),
    ("make", "make"),
    ("gcc", "gcc"),
    // libFuzzer (ci/fuzz, through libfuzzer-sys) is C++.
    ("g++", "g++"),
    ("python3", "python3"),
    ("mke2fs", "e2fsprogs"),
    ("xz", "xz-utils"),
    ("debugfs", "e2fsprogs"),
    ("patch", "patch"),
    ("gzip", "gzip"),
];

/// Packages needed whole: minbase has perl-base (`/usr/bin/perl`) but not the
/// modules OpenSSL's Configure uses (the verify-token build compiles OpenSSL).
const HOST_PACKAGES: &[&str] = &["perl"];

fn package_installed(p: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p])).is_ok_and(|s| s.contains("install ok installed"))
}

/// Files (headers, mostly) the builds need, and the package that provides each:
/// TF-A's host tools (fiptool) include OpenSSL's headers.
const HOST_FILES: &[(&str, &str)] = &[("/usr/include/openssl/sha.h", "libssl-dev")];

#[derive(Clone)]
pub struct Paths {
    pub tfa_src: PathBuf,
    pub guest: PathBuf,
}

pub fn paths() -> Paths {
    let c = util::cache_dir();
    Paths { tfa_src: c.join("tfa").join(format!("src-{TFA_DEBIAN_VERSION}")), guest: c.join("guest") }
}

pub fn setup() -> Result<Paths> {
    util::mkdirs(&util::cache_dir())?;
    rust_target()?;
    apt_packages()?;
    let p = paths();
    tfa_source(&p.tfa_src)?;
    guest_packages(&p.guest)?;
    guest_headers(&p.guest)?;
    crate::sign::ensure_test_key()?;
    Ok(p)
}

pub fn rust_target() -> Result {
    // rust-toolchain.toml makes rustup install the pinned toolchain with the
    // target and rust-src; this only repairs a toolchain that lacks them.
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == "aarch64-unknown-none") {
        util::step("rust: target aarch64-unknown-none", || run(Command::new("rustup").args(["target", "add", "aarch64-unknown-none"])))?;
    }
    let comps = output(Command::new("rustup").args(["component", "list", "--installed"])).unwrap_or_default();
    if !comps.lines().any(|l| l.starts_with("rust-src")) {
        util::step("rust: component rust-src", || run(Command::new("rustup").args(["component", "add", "rust-src"])))?;
    }
    Ok(())
}

/// QEMU's major version, if installed.
fn qemu_major() -> Option<u32> {
    let v = output(Command::new("qemu-system-aarch64").arg("--version")).ok()?;
    let word = v.split_whitespace().nth(3)?; // "QEMU emulator version 10.0.2 (...)"
    word.split('.').next()?.parse().ok()
}

fn sources_configured() -> bool {
    std::fs::read_to_string(APT_SOURCES_FILE).map(|s| s == APT_SOURCES).unwrap_or(false)
        && std::fs::read_to_string(APT_PREFERENCES_FILE).map(|s| s == APT_PREFERENCES).unwrap_or(false)
        && output(Command::new("dpkg").arg("--print-foreign-architectures")).map(|s| s.contains("arm64")).unwrap_or(false)
}

fn configure_sources() -> Result {
    if sources_configured() {
        return Ok(());
    }
    util::step("apt: sources, pins and the arm64 foreign architecture", || {
        // Preferences first: no apt run may see trixie without its pin.
        std::fs::write(APT_PREFERENCES_FILE, APT_PREFERENCES).map_err(|e| format!("writing {APT_PREFERENCES_FILE} (are you root?): {e}"))?;
        std::fs::write(APT_SOURCES_FILE, APT_SOURCES).map_err(|e| format!("writing {APT_SOURCES_FILE} (are you root?): {e}"))?;
        run(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
        apt_update()
    })
}

fn apt_update() -> Result {
    // Another configured source being unreachable must not stop us; what we
    // need is checked by the installs that follow.
    if let Err(e) = run(Command::new("apt-get").args(["update", "-q"])) {
        eprintln!("xtask: warning: {e}; continuing with the package lists we have");
    }
    Ok(())
}

fn apt_install(args: &[&str]) -> Result {
    let mut cmd = Command::new("apt-get");
    cmd.env("DEBIAN_FRONTEND", "noninteractive").args(["install", "-y", "-q", "--no-install-recommends"]).args(args);
    run(&mut cmd)
}

fn apt_packages() -> Result {
    let missing: Vec<&str> = HOST_TOOLS
        .iter()
        .filter(|(t, _)| !have(t))
        .map(|(_, p)| *p)
        .chain(HOST_FILES.iter().filter(|(f, _)| !Path::new(f).exists()).map(|(_, p)| *p))
        .chain(HOST_PACKAGES.iter().copied().filter(|p| !package_installed(p)))
        .collect();
    let qemu_ok = qemu_major().is_some_and(|m| m >= 8);
    if missing.is_empty() && qemu_ok && sources_configured() {
        return Ok(());
    }
    configure_sources()?;
    if !qemu_ok {
        // bookworm's QEMU 7.2 has no RME (`x-rme`); bookworm-backports has 10.x.
        // Every QEMU command line is -nodefaults (qemu.rs), so none of QEMU's
        // Recommends (ROMs, firmware) is needed.
        util::step("apt: QEMU 10 from bookworm-backports", || apt_install(&["-t", "bookworm-backports", "qemu-system-arm", "qemu-utils"]))?;
    }
    if !missing.is_empty() {
        let mut pkgs = missing.clone();
        pkgs.sort();
        pkgs.dedup();
        util::step(&format!("apt: {}", pkgs.join(" ")), || {
            apt_install(&pkgs).or_else(|e| {
                // Stale package lists are the usual cause: refresh once and retry.
                eprintln!("xtask: {e}; refreshing package lists and retrying");
                apt_update()?;
                apt_install(&pkgs)
            })
        })?;
    }
    match qemu_major() {
        Some(m) if m >= 8 => Ok(()),
        other => Err(format!("qemu-system-aarch64 >= 8 with RME support is required, found {other:?}")),
    }
}

/// TF-A source from Debian's package, unpacked (with Debian's own patches applied).
fn tfa_source(dest: &Path) -> Result {
    if dest.join(".quadrant-complete").exists() {
        return Ok(());
    }
    configure_sources()?;
    util::step(&format!("TF-A source: apt-get source arm-trusted-firmware={TFA_DEBIAN_VERSION} (trixie)"), || tfa_source_fetch(dest))
}

fn tfa_source_fetch(dest: &Path) -> Result {
    let work = dest.with_extension("partial");
    let _ = std::fs::remove_dir_all(&work);
    util::mkdirs(&work)?;
    let spec = format!("arm-trusted-firmware={TFA_DEBIAN_VERSION}");
    let fetch = |w: &Path| run(Command::new("apt-get").current_dir(w).args(["source", "--download-only", "-q", &spec]));
    if fetch(&work).is_err() {
        apt_update()?;
        fetch(&work)?;
    }
    let dsc = format!("arm-trusted-firmware_{TFA_DEBIAN_VERSION}.dsc");
    run(Command::new("dpkg-source").current_dir(&work).args(["-x", &dsc, "src"]))?;
    let _ = std::fs::remove_dir_all(dest);
    std::fs::rename(work.join("src"), dest).map_err(|e| format!("moving TF-A source into place: {e}"))?;
    let _ = std::fs::remove_dir_all(&work);
    util::write_atomic(&dest.join(".quadrant-complete"), spec.as_bytes())
}

/// The guest kernel, its modules and busybox, as unpacked trees.  Versions are
/// resolved at setup time from what `linux-image-arm64` in trixie-backports
/// depends on today, and recorded in `versions.txt`.
fn guest_packages(dir: &Path) -> Result {
    if dir.join("versions.txt").exists() {
        return Ok(());
    }
    configure_sources()?;
    util::step("guest: Debian arm64 kernel, its modules and busybox-static (apt-get download)", || guest_packages_fetch(dir))
}

fn guest_packages_fetch(dir: &Path) -> Result {
    let dl = dir.join("debs");
    let _ = std::fs::remove_dir_all(&dl);
    util::mkdirs(&dl)?;
    let download = |pkg: &str| run(Command::new("apt-get").current_dir(&dl).args(["download", "-q", pkg]));
    if download("linux-image-arm64:arm64/trixie-backports").is_err() {
        apt_update()?;
        download("linux-image-arm64:arm64/trixie-backports")?;
    }
    let meta = find_deb(&dl, "linux-image-arm64_")?;
    let depends = output(Command::new("dpkg-deb").args(["-f", meta.to_str().unwrap(), "Depends"]))?;
    let abi = depends
        .split(',')
        .filter_map(|d| d.trim().split_whitespace().next())
        .find_map(|name| name.strip_prefix("linux-image-").filter(|s| !s.starts_with("arm64")).map(str::to_owned))
        .ok_or_else(|| format!("cannot find the kernel ABI in linux-image-arm64's Depends: {depends}"))?;
    eprintln!("xtask: guest kernel ABI {abi}");
    download(&format!("linux-binary-unsigned-{abi}:arm64/trixie-backports"))?;
    download(&format!("linux-modules-{abi}:arm64/trixie-backports"))?;
    download("busybox-static:arm64")?;
    let root = dir.join("root");
    let _ = std::fs::remove_dir_all(&root);
    util::mkdirs(&root)?;
    let mut record = String::new();
    for prefix in [format!("linux-binary-unsigned-{abi}_"), format!("linux-modules-{abi}_"), "busybox-static_".to_owned()] {
        let deb = find_deb(&dl, &prefix)?;
        run(Command::new("dpkg-deb").args(["-x", deb.to_str().unwrap(), root.to_str().unwrap()]))?;
        record.push_str(&format!("{}\n", deb.file_name().unwrap().to_string_lossy()));
    }
    record.push_str(&format!("abi {abi}\n"));
    util::write_atomic(&dir.join("versions.txt"), record.as_bytes())
}

/// The guest kernel's headers (`linux-headers-<abi>` and its `-common`
/// part, the same version as the unpacked kernel), unpacked into
/// `guest/headers`: what `kmod` compiles our test module against (issue G).
fn guest_headers(dir: &Path) -> Result {
    let out = dir.join("headers");
    if out.join("versions.txt").exists() {
        return Ok(());
    }
    configure_sources()?;
    util::step("guest: the kernel's headers (apt-get download linux-headers-<abi>)", || guest_headers_fetch(dir, &out))
}

/// (ABI, Debian version) of the unpacked guest kernel, from `versions.txt`.
fn guest_kernel_version(dir: &Path) -> Result<(String, String)> {
    let f = dir.join("versions.txt");
    let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
    let abi = text.lines().find_map(|l| l.strip_prefix("abi ")).ok_or_else(|| format!("{}: no abi line", f.display()))?.trim().to_owned();
    let deb = text.lines().find(|l| l.starts_with("linux-binary-unsigned-")).ok_or_else(|| format!("{}: no kernel package", f.display()))?;
    // linux-binary-unsigned-<abi>_<version>_arm64.deb; ':' of an epoch is %3a.
    let version = deb.split('_').nth(1).ok_or_else(|| format!("{}: cannot read a version from {deb}", f.display()))?.replace("%3a", ":");
    Ok((abi, version))
}

fn guest_headers_fetch(dir: &Path, out: &Path) -> Result {
    let (abi, version) = guest_kernel_version(dir)?;
    let dl = dir.join("headers-debs");
    let _ = std::fs::remove_dir_all(&dl);
    util::mkdirs(&dl)?;
    // The arch-independent part is named after the ABI without its flavour.
    let common = format!("linux-headers-{}-common", abi.strip_suffix("-arm64").unwrap_or(&abi));
    let pkgs = [format!("linux-headers-{abi}:arm64={version}"), format!("{common}={version}")];
    let download = || run(Command::new("apt-get").current_dir(&dl).args(["download", "-q"]).args(&pkgs));
    if download().is_err() {
        apt_update()?;
        download()?;
    }
    let _ = std::fs::remove_dir_all(out);
    util::mkdirs(out)?;
    let mut record = String::new();
    for prefix in [format!("linux-headers-{abi}_"), format!("{common}_")] {
        let deb = find_deb(&dl, &prefix)?;
        run(Command::new("dpkg-deb").args(["-x", deb.to_str().unwrap(), out.to_str().unwrap()]))?;
        record.push_str(&format!("{}\n", deb.file_name().unwrap().to_string_lossy()));
    }
    record.push_str(&format!("abi {abi}\n"));
    util::write_atomic(&out.join("versions.txt"), record.as_bytes())
}

fn find_deb(dir: &Path, prefix: &str) -> Result<PathBuf> {
    std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix) && p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("no {prefix}*.deb downloaded into {}", dir.display()))
}

/// The guest kernel image unpacked by setup (for later issues' Linux guests).
#[allow(dead_code)]
pub fn guest_kernel(p: &Paths) -> Option<PathBuf> {
    let mods = p.guest.join("root/usr/lib/modules");
    std::fs::read_dir(mods).ok()?.filter_map(|e| e.ok()).map(|e| e.path().join("vmlinuz.unsigned")).find(|p| p.exists())
}
