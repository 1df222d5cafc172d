//! `cargo xtask build`: the Rust images as raw binaries, then TF-A around them
//! (our patches and flags, from tfa-integration/), the FIP and the QEMU bios.

use crate::layout::{self, SpSet};
use crate::setup::Paths;
use crate::sign;
use crate::util::{self, Result, run, run_logged};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The three products: (cargo package, output binary name).
pub const PRODUCTS: &[(&str, &str)] = &[("ns-hyp", "ns-hyp"), ("spmc", "spmc"), ("rmm", "rmm")];

/// Every bare-metal image: the products, then each secure partition named in
/// tfa-integration/sp_layout.json (its `image` is `<crate>.bin`, built from
/// the crate of that name under sps/).
pub fn images() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = PRODUCTS.iter().map(|(p, b)| (p.to_string(), b.to_string())).collect();
    for bin in sp_images() {
        v.push((bin.clone(), bin));
    }
    // The Normal-world FF-A test payload (issue C), BL33 of `Bl33::FfaPayload`.
    v.push(("ffa-payload".into(), "ffa-payload".into()));
    // The Realm payload ns-hyp loads in realm modes (docs/rmm.md).
    v.push(("realm-guest".into(), "realm-guest".into()));
    // The bare EL1 guest timing null HVCs under ns-hyp (`cargo xtask bench`).
    v.push(("hvc-bench-guest".into(), "hvc-bench-guest".into()));
    // The bare guest checking ns-hyp's FF-A memory isolation (issue B3, test guest_ffa_isolation).
    v.push(("ffa-guest".into(), "ffa-guest".into()));
    // The bare guest checking what the virtual CPU offers (issue B4, test guest_cpu_features).
    v.push(("guest-cpu-features".into(), "guest-cpu-features".into()));
    v
}

/// Image names (without `.bin`) that sp_layout.json refers to.
fn sp_images() -> Vec<String> {
    let layout = std::fs::read_to_string(util::repo_root().join("tfa-integration/sp_layout.json")).unwrap_or_default();
    let mut out = Vec::new();
    for part in layout.split("\"image\"").skip(1) {
        // "image": "x.bin"  or  "image": {"file": "x.bin", ...}
        if let Some(file) = part.split('"').find(|t| t.ends_with(".bin")) {
            let name = file.rsplit('/').next().unwrap_or(file).trim_end_matches(".bin").to_owned();
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

pub struct Outputs {
    pub paths: Paths,
    pub images: PathBuf,
    /// TF-A with ns-hyp (the product image) as BL33.
    pub bios: PathBuf,
    /// TF-A with ns-hyp's test flavour (`test-modes`: probes, bench, realm
    /// test modes) as BL33.
    pub test_bios: PathBuf,
    /// TF-A with a preloaded Linux as BL33 (QEMU loads the Image at [`LINUX_BL33_BASE`]).
    pub linux_bios: PathBuf,
    /// TF-A with the FF-A test payload (ci/ffa-payload) as BL33.
    pub ffa_bios: PathBuf,
}

/// Where the Linux-as-BL33 configuration expects the kernel Image.
pub const LINUX_BL33_BASE: u64 = 0x6000_0000;

/// Which BL33 a TF-A build carries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bl33 {
    /// ns-hyp from the FIP.
    NsHyp,
    /// ns-hyp's test flavour (`ns-hyp-test.bin`) from the FIP.
    NsHypTest,
    /// A Linux Image that QEMU preloads at LINUX_BL33_BASE (pKVM / FF-A driver setup).
    PreloadedLinux,
    /// ci/ffa-payload from the FIP (spmc's Normal-world test client).
    FfaPayload,
    /// ns-hyp's test flavour, with spmc and rmm built with `bench-split`
    /// (`spmc-split.bin`, `rmm-split.bin`): only `cargo xtask bench` (issue P).
    NsHypTestSplit,
    /// ci/ffa-payload with the same split images.
    FfaPayloadSplit,
    /// The same, with `ENABLE_SPMD_LP=1`: the SPMD has an EL3 logical
    /// partition (tfa-integration/patches/0004; test `spmc_spmd_lsp`).
    /// Built only when that test runs.
    FfaPayloadLsp,
}

pub fn images_dir() -> PathBuf {
    util::out_dir().join("images")
}

pub fn build(p: &Paths) -> Result<Outputs> {
    build_images()?;
    let bios = build_tfa(p, Bl33::NsHyp, &SpSet::Ours)?;
    let test_bios = build_tfa(p, Bl33::NsHypTest, &SpSet::Ours)?;
    let linux_bios = build_tfa(p, Bl33::PreloadedLinux, &SpSet::Ours)?;
    let ffa_bios = build_tfa(p, Bl33::FfaPayload, &SpSet::Ours)?;
    Ok(Outputs { paths: p.clone(), images: images_dir(), bios, test_bios, linux_bios, ffa_bios })
}

pub fn build_images() -> Result {
    let root = util::repo_root();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&root).args(["build", "--release", "--target", "aarch64-unknown-none"]);
    let images = images();
    for (pkg, _) in &images {
        cmd.args(["-p", pkg]);
    }
    util::step("Rust images (cargo build --release --target aarch64-unknown-none)", || run(&mut cmd))?;
    // ns-hyp's test flavour: the same crate with `test-modes`, in its own
    // target directory (one cargo invocation unifies a package's features).
    let mut test = Command::new(env!("CARGO"));
    test.current_dir(&root).args(["build", "--release", "--target", "aarch64-unknown-none", "-p", "ns-hyp", "--features", "test-modes"]);
    test.arg("--target-dir").arg(test_target_dir());
    util::step("ns-hyp test flavour (--features test-modes)", || run(&mut test))?;
    let dir = images_dir();
    util::mkdirs(&dir)?;
    let release = root.join("target/aarch64-unknown-none/release");
    let elves = images.iter().map(|(_, bin)| (release.join(bin), bin.clone())).chain([(ns_hyp_test_elf(), NS_HYP_TEST.to_owned())]);
    for (elf, bin) in elves {
        run(Command::new("aarch64-linux-gnu-objcopy").arg("-O").arg("binary").arg(&elf).arg(dir.join(format!("{bin}.bin"))))?;
    }
    Ok(())
}

/// spmc and rmm with `bench-split` (`shared::split`), in their own target
/// directory, as `images/spmc-split.bin` and `images/rmm-split.bin`: the
/// bench's split run only (issue P), never a product image.
pub fn build_split_images() -> Result {
    let root = util::repo_root();
    let dir = util::repo_root().join("target/split");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&root).args(["build", "--release", "--target", "aarch64-unknown-none", "-p", "spmc", "-p", "rmm", "--features", "spmc/bench-split,rmm/bench-split"]);
    cmd.arg("--target-dir").arg(&dir);
    util::step("spmc and rmm with bench-split", || run(&mut cmd))?;
    for bin in ["spmc", "rmm"] {
        let elf = dir.join("aarch64-unknown-none/release").join(bin);
        run(Command::new("aarch64-linux-gnu-objcopy").arg("-O").arg("binary").arg(&elf).arg(images_dir().join(format!("{bin}-split.bin"))))?;
    }
    Ok(())
}

/// ns-hyp with `bench-split` (`vm::boot_split`: every guest exit timed, the
/// totals printed at the guest's `quadrant-boot: cntvct` line), in the split
/// target directory, as `images/ns-hyp-split.bin`: the Linux boot split of
/// `cargo xtask bench` only (issue P), never a product image.
pub fn build_nshyp_split() -> Result<PathBuf> {
    let root = util::repo_root();
    let dir = root.join("target/split");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(&root).args(["build", "--release", "--target", "aarch64-unknown-none", "-p", "ns-hyp", "--features", "ns-hyp/bench-split"]);
    cmd.arg("--target-dir").arg(&dir);
    util::step("ns-hyp with bench-split", || run(&mut cmd))?;
    let out = images_dir().join("ns-hyp-split.bin");
    run(Command::new("aarch64-linux-gnu-objcopy").arg("-O").arg("binary").arg(dir.join("aarch64-unknown-none/release/ns-hyp")).arg(&out))?;
    Ok(out)
}

/// The image name of ns-hyp's test flavour (`images/ns-hyp-test.bin`).
pub const NS_HYP_TEST: &str = "ns-hyp-test";

fn test_target_dir() -> PathBuf {
    util::repo_root().join("target").join("test-modes")
}

/// The ELF of ns-hyp's test flavour.
pub fn ns_hyp_test_elf() -> PathBuf {
    test_target_dir().join("aarch64-unknown-none/release/ns-hyp")
}

/// The ELF of ns-hyp's product image.
pub fn ns_hyp_elf() -> PathBuf {
    util::repo_root().join("target/aarch64-unknown-none/release/ns-hyp")
}

/// Hash of our patches, to know when the patched tree must be redone.
pub(crate) fn patches_stamp(patches: &[PathBuf]) -> Result<String> {
    // FNV-1a over names and contents: only change detection, no security role.
    let mut h: u64 = 0xcbf29ce484222325;
    for p in patches {
        let data = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        for b in p.file_name().unwrap().as_encoded_bytes().iter().chain(data.iter()) {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    Ok(format!("{h:016x}"))
}

/// A copy of Debian's TF-A tree with our patches applied, redone when they change.
fn patched_tree(p: &Paths) -> Result<PathBuf> {
    let integ = util::repo_root().join("tfa-integration");
    let mut patches: Vec<PathBuf> = std::fs::read_dir(integ.join("patches"))
        .map_err(|e| format!("tfa-integration/patches: {e}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    patches.sort();
    let stamp = patches_stamp(&patches)?;
    let tree = util::out_dir().join("tfa-src");
    let marker = tree.join(".quadrant-patches");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(tree);
    }
    let _ = std::fs::remove_dir_all(&tree);
    util::mkdirs(tree.parent().unwrap())?;
    run(Command::new("cp").arg("-a").arg(&p.tfa_src).arg(&tree))?;
    for patch in &patches {
        let f = std::fs::File::open(patch).map_err(|e| format!("{}: {e}", patch.display()))?;
        run(Command::new("patch").args(["-p1", "-s", "-d"]).arg(&tree).stdin(f))?;
    }
    // Stale objects from an earlier patch set must not survive.
    let _ = std::fs::remove_dir_all(util::out_dir().join("tfa-build"));
    util::write_atomic(&marker, stamp.as_bytes())?;
    Ok(tree)
}

/// Stages sp_layout.json with the partition manifests and SP images beside it
/// (sptool resolves their paths relative to the json file).
fn stage_sps() -> Result<PathBuf> {
    let integ = util::repo_root().join("tfa-integration");
    let dir = util::out_dir().join("sp");
    util::mkdirs(&dir)?;
    let layout_changed = std::fs::read(integ.join("sp_layout.json")).ok() != std::fs::read(dir.join("sp_layout.json")).ok();
    copy(&integ.join("sp_layout.json"), &dir.join("sp_layout.json"))?;
    if layout_changed {
        // TF-A's make does not know that tb_fw_config.dtb includes the SP list
        // generated from sp_layout.json (ARM_BL2_SP_LIST_DTS): drop the stale
        // DTB and its preprocessed source so BL2 learns about added or removed SPs.
        for build in ["tfa-build", "tfa-build-test", "tfa-build-linux", "tfa-build-ffa", "tfa-build-ffa-lsp"] {
            drop_sp_list_dtb(&util::out_dir().join(build));
        }
    }
    for entry in std::fs::read_dir(integ.join("sp")).map_err(|e| format!("tfa-integration/sp: {e}"))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|x| x == "dts") {
            copy(&path, &dir.join(path.file_name().unwrap()))?;
        }
    }
    for bin in sp_images() {
        copy(&images_dir().join(format!("{bin}.bin")), &dir.join(format!("{bin}.bin")))?;
    }
    Ok(dir)
}

/// Copies only when the content differs: TF-A's make regenerates `sp_gen.mk` (on
/// which every object depends) whenever `sp_layout.json` is newer than it, so a
/// needless copy would turn every build into a full rebuild.
fn copy(from: &Path, to: &Path) -> Result {
    let data = std::fs::read(from).map_err(|e| format!("reading {}: {e}", from.display()))?;
    if std::fs::read(to).ok().as_deref() == Some(data.as_slice()) {
        return Ok(());
    }
    std::fs::write(to, data).map_err(|e| format!("writing {}: {e}", to.display()))
}

/// TF-A's make variables for the four-world QEMU build: the flags a platform
/// team puts on its own TF-A command line to run our spmc and rmm (the quick
/// starts in docs/ quote this list; a test keeps them equal).  `img(name)`
/// gives an image's path, `cfg(name)` a tfa-integration file's path, `bl33`
/// which BL33 goes into the FIP (or none: preloaded at LINUX_BL33_BASE),
/// `plat` the build's platform directory (`<BUILD_BASE>/qemu/release`).
pub fn tfa_make_vars(bl33: Bl33, img: &dyn Fn(&str) -> String, cfg: &dyn Fn(&str) -> String, plat: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "CROSS_COMPILE=aarch64-linux-gnu-",
        "PLAT=qemu",
        // The default GICv2 driver asserts on QEMU's GICv3 machine.
        "QEMU_USE_GIC_DRIVER=QEMU_GICV3",
        // Realm world: the RMMD at EL3 and our RMM at R-EL2.
        "ENABLE_RME=1",
        // The SPMD at EL3 with the SPMC (ours) at S-EL2.
        "SPD=spmd",
        "SPMD_SPM_AT_SEL2=1",
        // Without it TF-A traps FP/SIMD from the Secure world (CPTR_EL3.TFP) on
        // -cpu max, and Rust code at S-EL2/S-EL1 uses SIMD registers.
        "ENABLE_SVE_FOR_SWD=1",
        // BL2 passes the DTB in x0 to BL33, as Linux's boot protocol wants.
        "ARM_LINUX_KERNEL_AS_BL33=1",
        // Release build, NOTICE-level logs: TF-A's banners, not its chatter.
        "DEBUG=0",
        "LOG_LEVEL=20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let split = matches!(bl33, Bl33::NsHypTestSplit | Bl33::FfaPayloadSplit);
    v.push(format!("BL32={}", img(if split { "spmc-split.bin" } else { "spmc.bin" })));
    v.push(format!("RMM={}", img(if split { "rmm-split.bin" } else { "rmm.bin" })));
    match bl33 {
        Bl33::NsHyp => v.push(format!("BL33={}", img("ns-hyp.bin"))),
        Bl33::NsHypTest | Bl33::NsHypTestSplit => v.push(format!("BL33={}", img("ns-hyp-test.bin"))),
        Bl33::FfaPayload | Bl33::FfaPayloadSplit => v.push(format!("BL33={}", img("ffa-payload.bin"))),
        Bl33::FfaPayloadLsp => {
            v.push(format!("BL33={}", img("ffa-payload.bin")));
            v.push("ENABLE_SPMD_LP=1".into());
        }
        // BL2 jumps to the preloaded Image with x0 = DTB; without BL33 in the
        // FIP, `all` no longer builds the bios, so the targets name it.
        Bl33::PreloadedLinux => v.push(format!("PRELOADED_BL33_BASE={LINUX_BL33_BASE:#x}")),
    }
    v.push(format!("QEMU_TOS_FW_CONFIG_DTS={}", cfg("spmc_manifest.dts")));
    v.push(format!("QEMU_TB_FW_CONFIG_DTS={}", cfg("tb_fw_config.dts")));
    v.push(format!("SP_LAYOUT_FILE={}", cfg("sp_layout.json")));
    // BL2 learns the SP packages from TB_FW_CONFIG; sptool writes their list
    // from the layout into this fragment, which tb_fw_config.dts includes.
    v.push(format!("ARM_BL2_SP_LIST_DTS={plat}/sp_list_fragment.dts"));
    v
}

/// The make targets: the FIP and QEMU's bios (bl1.bin with fip.bin at 256 KiB).
pub const TFA_TARGETS: &[&str] = &["all", "fip", "qemu_fw.bios"];

/// TF-A with SPMD (SPMC at S-EL2) and RMMD, our images and the SPs of `sps`.
/// Returns the QEMU bios (bl1.bin with fip.bin at 256 KiB).
pub fn build_tfa(p: &Paths, bl33: Bl33, sps: &SpSet) -> Result<PathBuf> {
    let tree = patched_tree(p)?;
    let integ = util::repo_root().join("tfa-integration");
    let imgs = images_dir();
    let (layout, manifest) = match sps {
        SpSet::Ours => (stage_sps()?.join("sp_layout.json"), signed_spmc_manifest()?),
        SpSet::User(f) => {
            let f = std::fs::canonicalize(f).map_err(|e| format!("--sp-layout {}: {e}", f.display()))?;
            (f.clone(), layout::spmc_manifest_file(&SpSet::User(f))?)
        }
    };
    let mut dir = match bl33 {
        Bl33::NsHyp => "tfa-build",
        Bl33::NsHypTest => "tfa-build-test",
        Bl33::NsHypTestSplit => "tfa-build-split",
        Bl33::FfaPayloadSplit => "tfa-build-ffa-split",
        Bl33::PreloadedLinux => "tfa-build-linux",
        Bl33::FfaPayload => "tfa-build-ffa",
        Bl33::FfaPayloadLsp => "tfa-build-ffa-lsp",
    }
    .to_owned();
    if let SpSet::User(_) = sps {
        dir.push_str("-user-sp");
    }
    let build_base = util::out_dir().join(dir);
    let plat = build_base.join("qemu").join("release");
    if let SpSet::User(_) = sps {
        // A user's layout and manifests may change between runs under the same
        // path; TF-A's make does not see that tb_fw_config includes the SP list.
        drop_sp_list_dtb(&build_base);
    }
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(&tree).arg(format!("-j{}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)));
    let img = |n: &str| imgs.join(n).display().to_string();
    let cfg = |n: &str| match n {
        "sp_layout.json" => layout.display().to_string(),
        "spmc_manifest.dts" => manifest.display().to_string(),
        _ => integ.join(n).display().to_string(),
    };
    cmd.args(tfa_make_vars(bl33, &img, &cfg, &plat.display().to_string()));
    cmd.arg(format!("BUILD_BASE={}", build_base.display()));
    cmd.args(TFA_TARGETS);
    // TF-A's make does not notice changed flags: start from an empty build
    // directory whenever the command line differs from the last build's.
    let flags = util::show(&cmd);
    let flags_marker = build_base.join(".quadrant-flags");
    if std::fs::read_to_string(&flags_marker).ok().as_deref() != Some(flags.as_str()) {
        let _ = std::fs::remove_dir_all(&build_base);
    }
    util::mkdirs(&build_base)?;
    let log_name = format!("{}.log", build_base.file_name().unwrap().to_string_lossy());
    util::step(&format!("TF-A {} (BL33: {})", build_base.file_name().unwrap().to_string_lossy(), bl33.name()), || {
        run_logged(&mut cmd, &util::out_dir().join(log_name))
    })?;
    util::write_atomic(&flags_marker, flags.as_bytes())?;
    if *sps == SpSet::Ours && sign_packages(&plat)? {
        // sptool made the packages unsigned: the FIP (rebuilt by every make,
        // its `sp` prerequisite is phony) must now take the signed ones.
        util::step(&format!("TF-A {}: FIP with the signed SP packages", build_base.file_name().unwrap().to_string_lossy()), || {
            run_logged(&mut cmd, &util::out_dir().join(format!("{}-signed.log", build_base.file_name().unwrap().to_string_lossy())))
        })?;
    }
    let bios = plat.join("qemu_fw.bios");
    if !bios.exists() {
        return Err(format!("TF-A build produced no {}", bios.display()));
    }
    Ok(bios)
}

/// TF-A's make variables for the OP-TEE reference (issue D2 item 3): the
/// same qemu platform and GIC driver, Linux preloaded as BL33, but OP-TEE as
/// a classic BL32 under TF-A's own dispatcher (SPD=opteed; TF-A's
/// docs/plat/qemu.rst): no SPMD, no SPMC, no RME/RMMD (opteed and the SPMD
/// exclude each other).  `bl32` = tee-header_v2.bin, tee-pager_v2.bin,
/// tee-pageable_v2.bin.
pub fn tfa_optee_reference_make_vars(bl32: &[PathBuf; 3]) -> Vec<String> {
    let mut v: Vec<String> = [
        "CROSS_COMPILE=aarch64-linux-gnu-",
        "PLAT=qemu",
        "QEMU_USE_GIC_DRIVER=QEMU_GICV3",
        "SPD=opteed",
        "BL32_RAM_LOCATION=tdram",
        // As for spmc: without it TF-A traps FP/SIMD from the Secure world
        // (CPTR_EL3.TFP) on -cpu max, and a release BL31 then stops that
        // core without a word the first time OP-TEE touches a SIMD
        // register (crypto, TA hashing): Linux reports a hard lockup.
        "ENABLE_SVE_FOR_SWD=1",
        "ARM_LINUX_KERNEL_AS_BL33=1",
        "DEBUG=0",
        "LOG_LEVEL=20",
        // A fixed build message instead of the build's time: the same
        // sources give the same bios, so a kept reference xtest run stays
        // valid across checkouts (tests::optee, `reference_xtest_boot`).
        "BUILD_MESSAGE_TIMESTAMP=\"reproducible\"",
        // And a fixed version string: TF-A's default is `git describe` of
        // the directory it is built in, which is inside our checkout, so
        // every commit of ours changed the reference bios.
        "BUILD_STRING=debian-2.12.1-reference",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("BL32={}", bl32[0].display()));
    v.push(format!("BL32_EXTRA1={}", bl32[1].display()));
    v.push(format!("BL32_EXTRA2={}", bl32[2].display()));
    v.push(format!("PRELOADED_BL33_BASE={LINUX_BL33_BASE:#x}"));
    v
}

/// TF-A for the OP-TEE reference (`target/quadrant/tfa-build-optee-ref`),
/// with the reference OP-TEE (built first, only here: setup does not build
/// it).  Returns the QEMU bios.
pub fn build_tfa_optee_reference(p: &Paths) -> Result<PathBuf> {
    crate::setup::optee_reference(&p.optee)?;
    let tree = patched_tree(p)?;
    let build_base = util::out_dir().join("tfa-build-optee-ref");
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(&tree).arg(format!("-j{}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)));
    cmd.args(tfa_optee_reference_make_vars(&crate::setup::optee_reference_images(&p.optee)));
    cmd.arg(format!("BUILD_BASE={}", build_base.display()));
    cmd.args(TFA_TARGETS);
    let flags = util::show(&cmd);
    let flags_marker = build_base.join(".quadrant-flags");
    if std::fs::read_to_string(&flags_marker).ok().as_deref() != Some(flags.as_str()) {
        let _ = std::fs::remove_dir_all(&build_base);
    }
    util::mkdirs(&build_base)?;
    util::step("TF-A tfa-build-optee-ref (SPD=opteed, BL32 = OP-TEE, BL33: preloaded at 0x60000000)", || {
        run_logged(&mut cmd, &util::out_dir().join("tfa-build-optee-ref.log"))
    })?;
    util::write_atomic(&flags_marker, flags.as_bytes())?;
    let bios = build_base.join("qemu/release/qemu_fw.bios");
    if !bios.exists() {
        return Err(format!("TF-A build produced no {}", bios.display()));
    }
    Ok(bios)
}

/// ci/optee-invoke-bench: a freestanding static arm64 Linux program (raw
/// syscalls; Debian's cross compiler, no arm64 libc needed) timing OP-TEE
/// invokes for `cargo xtask bench`.  `target/quadrant/images/optee-invoke-bench`.
pub fn build_invoke_bench() -> Result<PathBuf> {
    build_freestanding("ci/optee-invoke-bench/invoke.c", "optee-invoke-bench")
}

/// ci/boot-counter: a freestanding static arm64 Linux program printing the
/// guest's virtual counter where its shell would start (`cargo xtask bench`,
/// row guest_boot_to_prompt_icount).  `target/quadrant/images/boot-counter`.
pub fn build_boot_counter() -> Result<PathBuf> {
    build_freestanding("ci/boot-counter/counter.c", "boot-counter")
}

/// ci/binder-ping: a freestanding static arm64 Linux program (raw syscalls)
/// making one binder transaction round trip between two processes (test
/// `android_bits`).  `target/quadrant/images/binder-ping`.
pub fn build_binder_ping() -> Result<PathBuf> {
    build_freestanding("ci/binder-ping/binder_ping.c", "binder-ping")
}

/// Builds one freestanding C source (repository-relative) into `images/<name>`
/// with Debian's arm64 cross compiler: static, no libc, no startup files.
fn build_freestanding(src: &str, name: &str) -> Result<PathBuf> {
    let src = util::repo_root().join(src);
    let out = images_dir().join(name);
    util::mkdirs(&images_dir())?;
    let mut cmd = Command::new("aarch64-linux-gnu-gcc");
    // -fno-tree-loop-distribute-patterns: a program's own memset/memcpy loop
    // must not become a call to itself.
    cmd.args(["-O2", "-Wall", "-static", "-nostdlib", "-ffreestanding", "-fno-tree-loop-distribute-patterns", "-fno-stack-protector", "-fno-pie", "-no-pie"]);
    cmd.arg("-I").arg(util::repo_root().join("ci/include"));
    cmd.arg("-o").arg(&out).arg(&src);
    run(&mut cmd)?;
    Ok(out)
}

/// ci/linux-guest-features: a freestanding static arm64 Linux program built
/// the same way, checking SVE, MTE and the PMU from a guest's user space
/// (test `linux_guest_features`).  `-march=armv8.5-a+sve+memtag` lets its
/// inline assembly use SVE and MTE instructions; `-fno-tree-vectorize`
/// keeps the compiler's own code free of them, so on a CPU without SVE the
/// program reports failures instead of dying of SIGILL.
/// `target/quadrant/images/linux-guest-features`.
pub fn build_guest_features() -> Result<PathBuf> {
    let src = util::repo_root().join("ci/linux-guest-features/features.c");
    let out = images_dir().join("linux-guest-features");
    util::mkdirs(&images_dir())?;
    let mut cmd = Command::new("aarch64-linux-gnu-gcc");
    cmd.args(["-O2", "-Wall", "-march=armv8.5-a+sve+memtag", "-fno-tree-vectorize", "-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-pie", "-no-pie"]);
    // ci/include/quadrant_sys.h: the types, raw syscalls and output helpers
    // it shares with the other freestanding programs.
    cmd.arg("-I").arg(util::repo_root().join("ci/include"));
    cmd.arg("-o").arg(&out).arg(&src);
    run(&mut cmd)?;
    Ok(out)
}

/// Our SPMC manifest with the test key trusted for every SP
/// (`target/quadrant/sp/spmc_manifest.dts`; the key is not in the repository).
pub fn signed_spmc_manifest() -> Result<PathBuf> {
    let ours = util::repo_root().join("tfa-integration/spmc_manifest.dts");
    let template = std::fs::read_to_string(&ours).map_err(|e| format!("{}: {e}", ours.display()))?;
    let key = sign::load_key(&sign::ensure_test_key()?)?;
    let text = sign::manifest_with_keys(&template, &sign::manifest_line(&[*key.pk]))?;
    let out = util::out_dir().join("sp").join("spmc_manifest.dts");
    util::mkdirs(out.parent().unwrap())?;
    if std::fs::read_to_string(&out).ok().as_deref() != Some(text.as_str()) {
        util::write_atomic(&out, text.as_bytes())?;
    }
    Ok(out)
}

/// Signs the SP packages sptool left in a build's platform directory with
/// the test key; returns whether any changed.
fn sign_packages(plat: &Path) -> Result<bool> {
    let key = sign::load_key(&sign::ensure_test_key()?)?;
    let mut changed = false;
    for (name, _, _, _) in SpSet::Ours.packages()? {
        changed |= sign::sign_file(&plat.join(format!("{name}.pkg")), &key)?;
    }
    Ok(changed)
}

/// Drops a build's tb_fw_config DTB and its preprocessed source, so BL2
/// learns about added or removed SPs (ARM_BL2_SP_LIST_DTS is generated from
/// the layout, and make does not know tb_fw_config.dtb depends on it).
fn drop_sp_list_dtb(build_base: &Path) {
    for f in ["tb_fw_config.dtb", "tb_fw_config.pre.dts"] {
        let _ = std::fs::remove_file(build_base.join("qemu/release/fdts").join(f));
    }
}

impl Bl33 {
    pub fn name(self) -> &'static str {
        match self {
            Bl33::NsHyp => "ns-hyp",
            Bl33::NsHypTest => "ns-hyp test flavour",
            Bl33::NsHypTestSplit => "ns-hyp test flavour; spmc, rmm with bench-split",
            Bl33::FfaPayloadSplit => "ffa-payload; spmc, rmm with bench-split",
            Bl33::PreloadedLinux => "preloaded at 0x60000000",
            Bl33::FfaPayload => "ffa-payload",
            Bl33::FfaPayloadLsp => "ffa-payload, ENABLE_SPMD_LP=1",
        }
    }
}

/// What a [`bios_variant`] changes in a built FIP.
pub enum FipEdit<'a> {
    /// The SP package whose FIP blob has this UUID (RFC 4122 string).
    SpPackage { uuid: &'a str, pkg: &'a [u8] },
    /// TOS_FW_CONFIG: the SPMC manifest, as DTS source (compiled with dtc).
    SpmcManifest(&'a str),
}

/// A QEMU bios like `bios` (a TF-A build's `qemu_fw.bios`) with its FIP
/// edited by TF-A's own fiptool: `target/quadrant/variants/<name>/qemu_fw.bios`.
/// No TF-A rebuild: BL2 finds every image by UUID, the bios is bl1.bin with
/// the FIP at 256 KiB (TF-A's plat/qemu/qemu/platform.mk).
pub fn bios_variant(bios: &Path, name: &str, edits: &[FipEdit]) -> Result<PathBuf> {
    let plat = bios.parent().ok_or("bios without a directory")?;
    let dir = util::out_dir().join("variants").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    util::mkdirs(&dir)?;
    let fip = dir.join("fip.bin");
    std::fs::copy(plat.join("fip.bin"), &fip).map_err(|e| format!("{}: {e}", plat.join("fip.bin").display()))?;
    let mut cmd = Command::new(util::out_dir().join("tfa-src/tools/fiptool/fiptool"));
    cmd.arg("update");
    for (i, e) in edits.iter().enumerate() {
        match e {
            FipEdit::SpPackage { uuid, pkg } => {
                let f = dir.join(format!("sp{i}.pkg"));
                util::write_atomic(&f, pkg)?;
                cmd.arg("--blob").arg(format!("uuid={uuid},file={}", f.display()));
            }
            FipEdit::SpmcManifest(dts) => {
                let src = dir.join("spmc_manifest.dts");
                let dtb = dir.join("spmc_manifest.dtb");
                util::write_atomic(&src, dts.as_bytes())?;
                run(Command::new("dtc").args(["-q", "-I", "dts", "-O", "dtb", "-o"]).arg(&dtb).arg(&src))?;
                cmd.arg("--tos-fw-config").arg(&dtb);
            }
        }
    }
    cmd.arg(&fip);
    run(&mut cmd)?;
    let mut image = std::fs::read(plat.join("bl1.bin")).map_err(|e| format!("{}: {e}", plat.join("bl1.bin").display()))?;
    if image.len() > 0x4_0000 {
        return Err("bl1.bin is larger than 256 KiB".into());
    }
    image.resize(0x4_0000, 0);
    image.extend(std::fs::read(&fip).map_err(|e| format!("{}: {e}", fip.display()))?);
    let out = dir.join("qemu_fw.bios");
    util::write_atomic(&out, &image)?;
    Ok(out)
}
