//! `cargo xtask setup`: everything the build, run and tests need on a fresh
//! Debian 12 machine, installed once and cached under `~/.cache/quadrant`.
//! Each step checks first whether its result is already there, so a second run
//! does nothing and needs no network.  Steps publish their result only when
//! complete (a directory renamed into place, a marker written last), so a
//! failed step is simply redone next time.

use crate::util::{self, Result, have, output, run, run_logged};
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

/// OP-TEE's source (issue D2): trixie's deb-src index lists optee-os 4.5.0
/// but its files are gone from the mirror (404), unstable's download.  Setup
/// tries these suites in order and records which one served it.  unstable
/// comes in as `deb-src` only (and pinned to -1 all the same), so nothing on
/// the host can be installed or upgraded from it.  trixie's arm64 binaries
/// (tee-supplicant, libteec2, optee-test-qemu for the Linux guest) come as
/// `Architectures: arm64` (trixie is pinned to -1 by [`APT_PREFERENCES`]).
/// A file of its own, so the main sources file stays what other checkouts
/// of this repository expect.
pub const OPTEE_SUITES: &[&str] = &["trixie", "unstable"];

const APT_OPTEE_SOURCES: &str = "\
# Added by Quadrant's `cargo xtask setup`: OP-TEE (issue D2).
# optee-os source: trixie's files 404 on the mirror, unstable's download.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: unstable
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# OP-TEE's Linux userland (arm64 only, downloaded, never installed).
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Architectures: arm64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

const APT_OPTEE_SOURCES_FILE: &str = "/etc/apt/sources.list.d/quadrant-optee.sources";

const APT_OPTEE_PREFERENCES: &str = "\
# Added by Quadrant's `cargo xtask setup`: nothing on the host comes from
# unstable (it serves only OP-TEE's source package).
Package: *
Pin: release n=sid
Pin-Priority: -1
";

const APT_OPTEE_PREFERENCES_FILE: &str = "/etc/apt/preferences.d/quadrant-optee.pref";

/// Where OP-TEE runs: its SP package's load address and memory size (the
/// partition manifest `tfa-integration/sp/optee.dts` says the same; a test
/// checks).  Its image starts one SP-package header later (0x4000), which is
/// OP-TEE's CFG_TZDRAM_START (its link address; CFG_CORE_PHYS_RELOCATABLE
/// relocates it to wherever the manifest says it was loaded anyway).
pub const OPTEE_LOAD_ADDRESS: u64 = 0x0e80_0000;
pub const OPTEE_MEM_SIZE: u64 = 0x60_0000;
const OPTEE_IMAGE_OFFSET: u64 = 0x4000;

/// The virtualization build's package ([`optee_virt`]): all of Secure DRAM
/// from where our SPs start (0x0e300000) to its end (0x0eefb000; the
/// page there holds spmc's manifest, GPTs follow), so its layout holds
/// OP-TEE alone.  In 6 MiB, each of its two guests had about 1.7 MiB of TA
/// RAM, and TAs failed to load (ldelf: TEE_ERROR_OUT_OF_MEMORY, in
/// regression 1006, 1008, 1016, 4002, 4003, 4006, 6010); with 12 MiB each
/// has about 4.5 MiB, more than the one OP-TEE of `guest_optee` has.
pub const OPTEE_VIRT_LOAD_ADDRESS: u64 = 0x0e30_0000;
pub const OPTEE_VIRT_MEM_SIZE: u64 = 0x0eef_b000 - OPTEE_VIRT_LOAD_ADDRESS;

/// OP-TEE's make variables: QEMU's armv8a platform in the S-EL2 SPMC
/// configuration (FF-A over HVC to spmc, Hafnium's paravirtualised
/// interrupt controller), its console through FFA_CONSOLE_LOG (spmc prints
/// it as `[op-tee] ...`: no second UART needed).
/// `ta_key`: the key the TAs it will load were signed with (the public half
/// is built in; see [`optee_ta_key`]).
pub fn optee_make_vars(ta_key: &Path) -> Vec<String> {
    optee_make_vars_at(ta_key, OPTEE_LOAD_ADDRESS, OPTEE_MEM_SIZE)
}

/// [`optee_make_vars`] for a package loaded at `load` with `size` bytes.
fn optee_make_vars_at(ta_key: &Path, load: u64, size: u64) -> Vec<String> {
    let mut v: Vec<String> = [
        "PLATFORM=vexpress-qemu_armv8a",
        "CFG_ARM64_core=y",
        "CFG_USER_TA_TARGETS=ta_arm64",
        "CFG_CORE_SEL2_SPMC=y",
        "CFG_FFA_CONSOLE=y",
        "CFG_TEE_CORE_LOG_LEVEL=2",
        "CROSS_COMPILE=aarch64-linux-gnu-",
        "CROSS_COMPILE64=aarch64-linux-gnu-",
        // Debian's python3 (with python3-cryptography and -pyelftools), not
        // whatever python3 comes first in PATH.
        "PYTHON3=/usr/bin/python3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("CFG_TZDRAM_START={:#x}", load + OPTEE_IMAGE_OFFSET));
    v.push(format!("CFG_TZDRAM_SIZE={:#x}", size - OPTEE_IMAGE_OFFSET));
    v.push(format!("TA_PUBLIC_KEY={}", ta_key.display()));
    v
}

/// OP-TEE for several VMs of ns-hyp at once: [`optee_make_vars`] with
/// CFG_NS_VIRTUALIZATION=y.  That OP-TEE keeps a guest partition per VM id
/// (sessions, TA instances, shared memory, wait queues) and needs the
/// hypervisor's VM created message before a VM's first call (ns-hyp sends
/// it, `ns-hyp/src/vm/ffa/availability.rs`).  Without it OP-TEE has one
/// Normal world, and a thread of one VM waiting on a lock that another
/// VM's thread releases is woken by an RPC to that other VM: never
/// (docs/ns-hyp.md, "OP-TEE in two VMs").  CFG_VIRT_GUEST_COUNT stays
/// OP-TEE's default, 2: each guest gets half of the TA RAM, so the package
/// is larger ([`OPTEE_VIRT_LOAD_ADDRESS`], [`OPTEE_VIRT_MEM_SIZE`]).
///
/// CFG_NUM_THREADS=8 (the platform's default is 2): OP-TEE's threads are one
/// pool for all guests, and a yielding call that finds none free gets
/// TEE_ERROR_BUSY; Linux's driver then waits until another call of its own
/// completes (`optee_cq_wait_for_completion`, no timeout), so a VM whose
/// only call found the pool taken by the other VM's calls (xtest 1013 runs several
/// at once) would wait for ever.  8 is meant to cover both VMs' calls at once.
pub fn optee_virt_make_vars(ta_key: &Path) -> Vec<String> {
    let mut v = optee_make_vars_at(ta_key, OPTEE_VIRT_LOAD_ADDRESS, OPTEE_VIRT_MEM_SIZE);
    v.push("CFG_NS_VIRTUALIZATION=y".into());
    v.push("CFG_NUM_THREADS=8".into());
    v
}

/// The virtualization build's directory (`<optee>/build-virt`).
pub fn optee_virt_build_dir(optee_dir: &Path) -> PathBuf {
    optee_dir.join("build-virt")
}

/// The virtualization build's raw image.
pub fn optee_virt_image(optee_dir: &Path) -> PathBuf {
    optee_virt_build_dir(optee_dir).join("core/tee-raw.bin")
}

/// Builds [`optee_virt_make_vars`]'s OP-TEE (once; again when its flags
/// change) from the source [`setup`] fetched.  Called only by the tests
/// that boot it: ~5 minutes on 2 cores.
pub fn optee_virt(dir: &Path) -> Result {
    let vars = optee_virt_make_vars(&optee_ta_key(dir));
    let patches = optee_virt_patches()?;
    let flags = format!("{} patches={}", vars.join(" "), crate::build::patches_stamp(&patches)?);
    let build = optee_virt_build_dir(dir);
    let record = dir.join("versions-virt.txt");
    let done = std::fs::read_to_string(&record).is_ok_and(|r| r.lines().any(|l| l == format!("flags {flags}")));
    if done && optee_virt_image(dir).exists() {
        return Ok(());
    }
    let (suite, dsc, src) = optee_source(dir)?;
    let src = optee_virt_source(dir, &src, &patches)?;
    let _ = std::fs::remove_dir_all(&build);
    let mut cmd = Command::new("make");
    cmd.current_dir(&src).arg(format!("-j{}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)));
    cmd.args(&vars).arg(format!("O={}", build.display()));
    util::step(&format!("OP-TEE build ({dsc} + {} patch(es), S-EL2 SPMC configuration, CFG_NS_VIRTUALIZATION)", patches.len()), || run_logged(&mut cmd, &dir.join("build-virt.log")))?;
    if !optee_virt_image(dir).exists() {
        return Err(format!("OP-TEE build produced no {}", optee_virt_image(dir).display()));
    }
    util::write_atomic(&record, format!("suite {suite}\nsource {dsc}\nflags {flags}\n").as_bytes())
}

/// Our patches to OP-TEE's virtualization build
/// (`tfa-integration/optee-virt-patches/*.patch`, in name order).
fn optee_virt_patches() -> Result<Vec<PathBuf>> {
    let d = util::repo_root().join("tfa-integration/optee-virt-patches");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
        .map_err(|e| format!("{}: {e}", d.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    v.sort();
    Ok(v)
}

/// A copy of OP-TEE's source (`<optee>/src-virt`) with `patches` applied,
/// redone when they change; the plain and reference builds keep Debian's
/// tree as it is.
fn optee_virt_source(dir: &Path, src: &Path, patches: &[PathBuf]) -> Result<PathBuf> {
    let stamp = crate::build::patches_stamp(patches)?;
    let tree = dir.join("src-virt");
    let marker = tree.join(".quadrant-patches");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(tree);
    }
    let work = dir.join("src-virt.partial");
    let _ = std::fs::remove_dir_all(&work);
    let _ = std::fs::remove_dir_all(&tree);
    run(Command::new("cp").arg("-a").arg(src).arg(&work))?;
    for patch in patches {
        let f = std::fs::File::open(patch).map_err(|e| format!("{}: {e}", patch.display()))?;
        run(Command::new("patch").args(["-p1", "-s", "-d"]).arg(&work).stdin(f))?;
    }
    util::write_atomic(&work.join(".quadrant-patches"), stamp.as_bytes())?;
    std::fs::rename(&work, &tree).map_err(|e| format!("{}: {e}", tree.display()))?;
    Ok(tree)
}

/// The reference OP-TEE (issue D2 item 3): the same source with OP-TEE's
/// defaults for QEMU's armv8a platform, i.e. without CFG_CORE_SEL2_SPMC: a
/// classic BL32 under TF-A's own dispatcher (SPD=opteed), found by Linux's
/// optee driver through the SMC ABI.  Its console is the Secure UART (not
/// captured), its memory OP-TEE's default (TZDRAM 0x0e100000 + 15 MiB).
/// Same compiler, same TA key as [`optee_make_vars`].
pub fn optee_reference_make_vars(ta_key: &Path) -> Vec<String> {
    let mut v: Vec<String> = [
        "PLATFORM=vexpress-qemu_armv8a",
        "CFG_ARM64_core=y",
        // QEMU's machine has a GICv3 (`gic-version=3`, as for spmc): OP-TEE's
        // default GICv2 driver asserts on it.
        "CFG_ARM_GICV3=y",
        "CFG_USER_TA_TARGETS=ta_arm64",
        "CFG_TEE_CORE_LOG_LEVEL=2",
        "CROSS_COMPILE=aarch64-linux-gnu-",
        "CROSS_COMPILE64=aarch64-linux-gnu-",
        "PYTHON3=/usr/bin/python3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("TA_PUBLIC_KEY={}", ta_key.display()));
    v
}

/// The reference OP-TEE's build directory (`<optee>/build-ref`).
pub fn optee_reference_build_dir(optee_dir: &Path) -> PathBuf {
    optee_dir.join("build-ref")
}

/// The reference OP-TEE's three images for TF-A's qemu platform: BL32,
/// BL32_EXTRA1, BL32_EXTRA2 (TF-A docs/plat/qemu.rst).
pub fn optee_reference_images(optee_dir: &Path) -> [PathBuf; 3] {
    let core = optee_reference_build_dir(optee_dir).join("core");
    ["tee-header_v2.bin", "tee-pager_v2.bin", "tee-pageable_v2.bin"].map(|f| core.join(f))
}

/// Builds the reference OP-TEE (once; again when its flags change) from the
/// source [`setup`] fetched.  Called only by the tests and bench rows that
/// boot it, not by every `setup`: ~2-4 minutes on 2 cores.
pub fn optee_reference(dir: &Path) -> Result {
    let vars = optee_reference_make_vars(&optee_ta_key(dir));
    let flags = vars.join(" ");
    let build = optee_reference_build_dir(dir);
    let record = dir.join("versions-ref.txt");
    let done = std::fs::read_to_string(&record).is_ok_and(|r| r.lines().any(|l| l == format!("flags {flags}")));
    if done && optee_reference_images(dir).iter().all(|f| f.exists()) {
        return Ok(());
    }
    let (suite, dsc, src) = optee_source(dir)?;
    let _ = std::fs::remove_dir_all(&build);
    let mut cmd = Command::new("make");
    cmd.current_dir(&src).arg(format!("-j{}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)));
    cmd.args(&vars).arg(format!("O={}", build.display()));
    util::step(&format!("OP-TEE reference build ({dsc}, BL32 for SPD=opteed)"), || run_logged(&mut cmd, &dir.join("build-ref.log")))?;
    for f in optee_reference_images(dir) {
        if !f.exists() {
            return Err(format!("OP-TEE reference build produced no {}", f.display()));
        }
    }
    util::write_atomic(&record, format!("suite {suite}\nsource {dsc}\nflags {flags}\n").as_bytes())
}

/// The TA signing key of trixie's OP-TEE TA dev kit (`optee-os-dev`,
/// arm64, unpacked by [`optee_userland`]).  Debian's packaged TAs (xtest's,
/// in optee-test-qemu) are signed with it, not with the upstream
/// `keys/default_ta.pem` of the optee-os source (checked: they fail
/// `scripts/sign_encrypt.py verify` with that one and pass with this), so
/// our OP-TEE must embed its public half to load them.
pub fn optee_ta_key(optee_dir: &Path) -> PathBuf {
    optee_dir.join("userland/devkit/usr/lib/optee-os-dev/vexpress-qemu_armv8a/keys/default_ta.pem")
}

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
/// OP-TEE's build (its Build-Depends) imports `cryptography` and `elftools`
/// (signing the TAs, embedding ldelf).
const HOST_PACKAGES: &[&str] = &["perl", "python3-cryptography", "python3-pyelftools"];

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
    /// OP-TEE: its source, its build, `versions.txt` (what was used).
    pub optee: PathBuf,
}

pub fn paths() -> Paths {
    let c = util::cache_dir();
    Paths { tfa_src: c.join("tfa").join(format!("src-{TFA_DEBIAN_VERSION}")), guest: c.join("guest"), optee: c.join("optee") }
}

pub fn setup() -> Result<Paths> {
    util::mkdirs(&util::cache_dir())?;
    rust_target()?;
    apt_packages()?;
    let p = paths();
    tfa_source(&p.tfa_src)?;
    guest_packages(&p.guest)?;
    optee(&p.optee)?;
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

fn optee_sources_configured() -> bool {
    std::fs::read_to_string(APT_OPTEE_SOURCES_FILE).map(|s| s == APT_OPTEE_SOURCES).unwrap_or(false)
        && std::fs::read_to_string(APT_OPTEE_PREFERENCES_FILE).map(|s| s == APT_OPTEE_PREFERENCES).unwrap_or(false)
}

fn configure_optee_sources() -> Result {
    configure_sources()?;
    if optee_sources_configured() {
        return Ok(());
    }
    util::step("apt: OP-TEE's sources (unstable deb-src, trixie arm64) and their pins", || {
        // Preferences first: no apt run may see unstable without its pin.
        std::fs::write(APT_OPTEE_PREFERENCES_FILE, APT_OPTEE_PREFERENCES).map_err(|e| format!("writing {APT_OPTEE_PREFERENCES_FILE} (are you root?): {e}"))?;
        std::fs::write(APT_OPTEE_SOURCES_FILE, APT_OPTEE_SOURCES).map_err(|e| format!("writing {APT_OPTEE_SOURCES_FILE} (are you root?): {e}"))?;
        apt_update()
    })
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

/// OP-TEE for spmc (issue D2): Debian's optee-os source from the first of
/// [`OPTEE_SUITES`] whose files download, built with [`optee_make_vars`].
/// Rebuilt when the flags change; `versions.txt` records the suite, the
/// source package and the flags.
fn optee(dir: &Path) -> Result {
    // The userland first: its dev kit's TA key goes into the build.
    optee_userland(dir)?;
    let vars = optee_make_vars(&optee_ta_key(dir));
    let flags = vars.join(" ");
    let record = dir.join("versions.txt");
    let done = std::fs::read_to_string(&record).is_ok_and(|r| r.lines().any(|l| l == format!("flags {flags}")));
    if done && optee_image(dir).exists() {
        return Ok(());
    }
    configure_optee_sources()?;
    let (suite, dsc, src) = util::step("OP-TEE source: apt-get source optee-os (trixie, else unstable)", || optee_source(dir))?;
    let build = dir.join("build");
    let _ = std::fs::remove_dir_all(&build);
    let mut cmd = Command::new("make");
    cmd.current_dir(&src).arg(format!("-j{}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)));
    cmd.args(&vars).arg(format!("O={}", build.display()));
    util::step(&format!("OP-TEE build ({dsc}, S-EL2 SPMC configuration)"), || run_logged(&mut cmd, &dir.join("build.log")))?;
    if !optee_image(dir).exists() {
        return Err(format!("OP-TEE build produced no {}", optee_image(dir).display()));
    }
    util::write_atomic(&record, format!("suite {suite}\nsource {dsc}\nflags {flags}\n").as_bytes())
}

/// Fetches and unpacks optee-os (once); returns (suite, .dsc name, tree).
fn optee_source(dir: &Path) -> Result<(String, String, PathBuf)> {
    let marker = dir.join("source.txt");
    if let Ok(m) = std::fs::read_to_string(&marker) {
        let mut it = m.lines();
        if let (Some(suite), Some(dsc)) = (it.next(), it.next()) {
            let src = dir.join("src");
            if src.join("Makefile").exists() {
                return Ok((suite.to_owned(), dsc.to_owned(), src));
            }
        }
    }
    let work = dir.join("src.partial");
    let _ = std::fs::remove_dir_all(&work);
    util::mkdirs(&work)?;
    let mut served = None;
    for suite in OPTEE_SUITES {
        let fetch = || run(Command::new("apt-get").current_dir(&work).args(["source", "--download-only", "-q", &format!("optee-os/{suite}")]));
        if fetch().is_ok() {
            served = Some(*suite);
            break;
        }
        eprintln!("xtask: optee-os from {suite} did not download; trying the next suite");
        // A partial download must not be taken for the next suite's.
        let _ = std::fs::remove_dir_all(&work);
        util::mkdirs(&work)?;
    }
    let suite = served.ok_or_else(|| format!("optee-os: no suite of {OPTEE_SUITES:?} serves its source"))?;
    let dsc = std::fs::read_dir(&work)
        .map_err(|e| format!("{}: {e}", work.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .find(|n| n.starts_with("optee-os_") && n.ends_with(".dsc"))
        .ok_or("optee-os: no .dsc downloaded")?;
    run(Command::new("dpkg-source").current_dir(&work).args(["-x", &dsc, "src"]))?;
    let src = dir.join("src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::rename(work.join("src"), &src).map_err(|e| format!("moving OP-TEE source into place: {e}"))?;
    let _ = std::fs::remove_dir_all(&work);
    util::write_atomic(&marker, format!("{suite}\n{dsc}\n").as_bytes())?;
    Ok((suite.to_owned(), dsc, src))
}

/// OP-TEE's Linux userland from trixie's arm64 binaries: the supplicant,
/// the client library and xtest with its TAs.
pub const OPTEE_USERLAND: &[&str] = &["tee-supplicant", "libteec2", "optee-test-qemu"];

/// [`OPTEE_USERLAND`] and their library dependencies (each package's
/// `Depends`, recursively, the first of any alternatives), downloaded with
/// `apt-get download PKG:arm64/trixie` and unpacked, never installed, into
/// `<optee>/userland/root` (documentation dropped); `userland.txt` records
/// the .deb files used.
fn optee_userland(dir: &Path) -> Result {
    let dir = dir.join("userland");
    if dir.join("userland.txt").exists() && dir.join("devkit").exists() {
        return merged_usr_links(&dir.join("root"));
    }
    configure_optee_sources()?;
    util::step("OP-TEE userland: tee-supplicant, libteec2, optee-test-qemu and their libraries (arm64, trixie)", || {
        let dl = dir.join("debs");
        let _ = std::fs::remove_dir_all(&dl);
        util::mkdirs(&dl)?;
        let mut todo: Vec<String> = OPTEE_USERLAND.iter().map(|s| s.to_string()).collect();
        let mut seen: Vec<String> = Vec::new();
        while let Some(pkg) = todo.pop() {
            if seen.contains(&pkg) {
                continue;
            }
            // Bounded: the closure is about a dozen packages.
            if seen.len() >= 40 {
                return Err(format!("OP-TEE userland: more than 40 packages in the dependency closure ({seen:?})"));
            }
            seen.push(pkg.clone());
            run(Command::new("apt-get").current_dir(&dl).args(["download", "-q", &format!("{pkg}:arm64/trixie")]))?;
            let deb = find_deb(&dl, &format!("{pkg}_"))?;
            // One field per call: with several, dpkg-deb prefixes each with its name.
            for field in ["Pre-Depends", "Depends"] {
                let deps = output(Command::new("dpkg-deb").args(["-f", deb.to_str().unwrap(), field]))?;
                todo.extend(dependency_names(&deps));
            }
        }
        let root = dir.join("root");
        let _ = std::fs::remove_dir_all(&root);
        util::mkdirs(&root)?;
        let mut record = String::new();
        let mut debs: Vec<PathBuf> = std::fs::read_dir(&dl)
            .map_err(|e| format!("{}: {e}", dl.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        debs.sort();
        for deb in debs {
            run(Command::new("dpkg-deb").args(["-x", deb.to_str().unwrap(), root.to_str().unwrap()]))?;
            record.push_str(&format!("{}\n", deb.file_name().unwrap().to_string_lossy()));
        }
        merged_usr_links(&root)?;
        // The TA dev kit, for its signing key only (not in the initramfs).
        run(Command::new("apt-get").current_dir(&dl).args(["download", "-q", "optee-os-dev:arm64/trixie"]))?;
        let kit = find_deb(&dl, "optee-os-dev_")?;
        let devkit = dir.join("devkit");
        let _ = std::fs::remove_dir_all(&devkit);
        run(Command::new("dpkg-deb").args(["-x", kit.to_str().unwrap(), devkit.to_str().unwrap()]))?;
        record.push_str(&format!("{} (TA signing key only)\n", kit.file_name().unwrap().to_string_lossy()));
        // Only what runs: no documentation, locales or charset converters.
        for d in ["usr/share", "usr/lib/aarch64-linux-gnu/gconv"] {
            let _ = std::fs::remove_dir_all(root.join(d));
        }
        util::write_atomic(&dir.join("userland.txt"), record.as_bytes())
    })
}

/// Trixie is merged-/usr: its packages ship under /usr/lib what programs
/// look for under /lib, whose symlink to usr/lib comes from base-files (not
/// unpacked; the initramfs's /lib holds the kernel modules).  The two paths
/// used: the interpreter of every program (/lib/ld-linux-aarch64.so.1) and
/// tee-supplicant's TA directory (/lib/optee_armtz).  Idempotent.
fn merged_usr_links(root: &Path) -> Result {
    for name in ["ld-linux-aarch64.so.1", "optee_armtz"] {
        let link = root.join("lib").join(name);
        if root.join("usr/lib").join(name).exists() && std::fs::symlink_metadata(&link).is_err() {
            util::mkdirs(&root.join("lib"))?;
            std::os::unix::fs::symlink(format!("../usr/lib/{name}"), &link).map_err(|e| format!("{}: {e}", link.display()))?;
        }
    }
    Ok(())
}

/// Package names of a `Depends` field: versions dropped, the first of each
/// set of alternatives, architecture qualifiers removed.
fn dependency_names(field: &str) -> Vec<String> {
    field
        .split([',', '\n'])
        .filter_map(|d| d.split('|').next())
        .filter_map(|d| d.split_whitespace().next())
        .map(|n| n.split(':').next().unwrap_or(n).to_owned())
        .filter(|n| !n.is_empty())
        .collect()
}

/// The unpacked OP-TEE userland (for the guest's initramfs).
pub fn optee_userland_root(optee_dir: &Path) -> PathBuf {
    optee_dir.join("userland/root")
}

/// OP-TEE's raw image (the SP image sptool packs): `core/tee-raw.bin`.
pub fn optee_image(optee_dir: &Path) -> PathBuf {
    optee_dir.join("build/core/tee-raw.bin")
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

#[cfg(test)]
mod tests {
    use super::*;

    /// OP-TEE's partition manifest and its build agree on where it lives.
    #[test]
    fn optee_manifest_matches_build() {
        let dts = std::fs::read_to_string(util::repo_root().join("tfa-integration/sp/optee.dts")).unwrap();
        assert_eq!(crate::layout::load_address(&dts), Some(OPTEE_LOAD_ADDRESS));
        assert_eq!(crate::layout::dts_cells(&dts, "mem-size"), Some(vec![OPTEE_MEM_SIZE as u32]));
        assert_eq!(crate::layout::dts_cells(&dts, "entrypoint-offset"), Some(vec![OPTEE_IMAGE_OFFSET as u32]));
        let vars = optee_make_vars(Path::new("/k.pem"));
        assert!(vars.contains(&format!("CFG_TZDRAM_START={:#x}", OPTEE_LOAD_ADDRESS + OPTEE_IMAGE_OFFSET)));
        assert!(vars.iter().any(|v| v == "CFG_CORE_SEL2_SPMC=y"));
    }

    #[test]
    fn dependency_fields() {
        let d = "libc6 (>= 2.38), libzstd1 (>= 1.5.5), zlib1g:arm64 (>= 1:1.1.4) | foo, openssl-provider-legacy\nlibgcc-s1";
        assert_eq!(dependency_names(d), ["libc6", "libzstd1", "zlib1g", "openssl-provider-legacy", "libgcc-s1"]);
        assert!(dependency_names("").is_empty());
    }

    /// Newer suites come in as deb-src, or as arm64 only, and are pinned.
    #[test]
    fn optee_sources_cannot_upgrade_the_host() {
        for stanza in APT_OPTEE_SOURCES.split("\n\n") {
            if stanza.contains("Types: deb\n") {
                assert!(stanza.contains("Architectures: arm64"), "{stanza}");
            }
        }
        assert!(APT_OPTEE_PREFERENCES.contains("Pin: release n=sid\nPin-Priority: -1"));
        assert!(APT_PREFERENCES.contains("Pin: release n=trixie\nPin-Priority: -1"));
    }
}

/// The binder driver's sources (drivers/android) of the guest kernel's own
/// Debian source package, `linux-source-<X.Y>` at the kernel's version,
/// fetched with `apt-get download` once (167 MB; only drivers/android is
/// kept).  For `kmod::binder_module`, on first use; `source.txt` records
/// the package.
pub fn binder_source(p: &Paths) -> Result<PathBuf> {
    let dir = p.guest.join("binder-src");
    let marker = dir.join("source.txt");
    let find = || -> Option<PathBuf> {
        let tree = std::fs::read_dir(&dir).ok()?.flatten().map(|e| e.path()).find(|d| d.join("drivers/android/binder.c").exists())?;
        Some(tree.join("drivers/android"))
    };
    if marker.exists()
        && let Some(android) = find()
    {
        return Ok(android);
    }
    let debs = p.guest.join("debs");
    let kernel = find_deb(&debs, "linux-binary-unsigned-")?;
    let version = output(Command::new("dpkg-deb").args(["-f", kernel.to_str().unwrap(), "Version"]))?.trim().to_owned();
    // The upstream version's X.Y names the package: 7.3.4-1~bpo13+1 → linux-source-7.3.
    let xy: Vec<&str> = version.split(['.', '-']).take(2).collect();
    let pkg = format!("linux-source-{}={version}", xy.join("."));
    let _ = std::fs::remove_dir_all(&dir);
    let dl = dir.join("dl");
    util::mkdirs(&dl)?;
    util::step(&format!("binder sources: apt-get download {pkg} (drivers/android only is kept)"), || {
        let download = || run(Command::new("apt-get").current_dir(&dl).args(["download", "-q", &pkg]));
        if download().is_err() {
            apt_update()?;
            download()?;
        }
        let deb = find_deb(&dl, "linux-source-")?;
        let x = dl.join("x");
        run(Command::new("dpkg-deb").args(["-x", deb.to_str().unwrap(), x.to_str().unwrap()]))?;
        let tarball = std::fs::read_dir(x.join("usr/src"))
            .map_err(|e| format!("{}: {e}", x.display()))?
            .flatten()
            .map(|e| e.path())
            .find(|t| t.to_string_lossy().ends_with(".tar.xz"))
            .ok_or("no linux-source tarball in the package")?;
        run(Command::new("tar").args(["-xJf", tarball.to_str().unwrap(), "-C", dir.to_str().unwrap(), "--wildcards", "*/drivers/android/*"]))?;
        let _ = std::fs::remove_dir_all(&dl);
        util::write_atomic(&marker, format!("{pkg}\n").as_bytes())
    })?;
    find().ok_or_else(|| format!("no drivers/android/binder.c under {}", dir.display()))
}
