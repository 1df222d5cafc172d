//! Issue E (rmm): ns-hyp as the RMI host creates Realms under rmm.
//!
//! Each boot is the four-world machine with ns-hyp's mode in /chosen/bootargs
//! and realm-guest (padded to whole pages) preloaded in NS memory at
//! [`REALM_IMAGE_BASE`] by QEMU's loader, named by `quadrant.realm-image=`.

use super::{Expect, FORBID_ALWAYS, IntegrationTest, XResult, expect};
use crate::build::Outputs;
use crate::measure;
use crate::qemu::{self, Boot};
use crate::util;
use std::time::Duration;

/// NS DRAM nobody else uses: above the RMM's carve-out (0x40100000..0x41900000),
/// below BL33 (0x60000000).
pub const REALM_IMAGE_BASE: u64 = 0x4800_0000;

/// realm-guest.bin zero-padded to whole pages (what ns-hyp loads and xtask measures).
fn padded_guest(o: &Outputs) -> XResult<(std::path::PathBuf, Vec<u8>)> {
    let src = o.images.join("realm-guest.bin");
    let mut img = std::fs::read(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    img.resize(img.len().next_multiple_of(0x1000), 0);
    let out = util::out_dir().join("realm-guest.padded.bin");
    std::fs::write(&out, &img).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok((out, img))
}

/// The boot for a realm mode (`quadrant.realm`, `quadrant.rmi-tests`, ...).
pub fn realm_mode_boot(o: &Outputs, mode: &str) -> XResult<Boot> {
    let (guest, img) = padded_guest(o)?;
    let name = mode.trim_start_matches("quadrant.");
    let dtb = util::out_dir().join(format!("{name}.dtb"));
    let bootargs = format!("{mode} quadrant.realm-image={REALM_IMAGE_BASE:#x},{:#x}", img.len());
    // Building and running a Realm is product code; the RMI test tables,
    // isolation checks and bench exist only in ns-hyp's test flavour.
    let bios = if mode == "quadrant.realm" { &o.bios } else { &o.test_bios };
    qemu::dtb_with_bootargs(bios, &bootargs, &dtb)?;
    Ok(Boot::Custom {
        tfa: true,
        args: vec![
            "-bios".into(),
            bios.display().to_string(),
            "-dtb".into(),
            dtb.display().to_string(),
            "-device".into(),
            format!("loader,file={},addr={REALM_IMAGE_BASE:#x},force-raw=on", guest.display()),
        ],
    })
}

fn realm_boot(o: &Outputs) -> XResult<Boot> {
    realm_mode_boot(o, "quadrant.realm")
}
fn rmi_tests_boot(o: &Outputs) -> XResult<Boot> {
    realm_mode_boot(o, "quadrant.rmi-tests")
}
fn isolation_boot(o: &Outputs) -> XResult<Boot> {
    realm_mode_boot(o, "quadrant.realm-isolation")
}
fn rsi_tests_boot(o: &Outputs) -> XResult<Boot> {
    realm_mode_boot(o, "quadrant.rsi-tests")
}

fn realm_boot_expects() -> Vec<Expect> {
    vec![
        expect("rmm booted", &["[rmm] ", "boot complete"]),
        expect("ns-hyp in realm mode", &["[ns-hyp] mode: realm (Boot)"]),
        expect("realm created", &["[ns-hyp] realm: created rd"]),
        expect("RSI_VERSION answered", &["[realm] RSI_VERSION status 0 lower 0x10000 higher 0x10000"]),
        expect("REALM_CONFIG answered", &["[realm] REALM_CONFIG ipa_width 39 hash_algo 0"]),
        expect("RIM printed", &["[realm] RIM "]),
        expect("RIPAS change accepted", &["[realm] IPA_STATE_SET ", "status 0", "response 0"]),
        expect("host call answered", &["[realm] HOST_CALL imm 1 status 0 x0 0x1235"]),
        expect("realm finished", &["[realm] done"]),
        expect("realm powered off and torn down", &["[ns-hyp] realm_boot: ok", "torn down"]),
    ]
}

/// The RIM the Realm printed equals xtask's own computation.
fn rim_matches(output: &str) -> Vec<String> {
    let img = match std::fs::read(util::out_dir().join("realm-guest.padded.bin")) {
        Ok(i) => i,
        Err(e) => return vec![format!("cannot read the padded realm-guest image: {e}")],
    };
    let want = measure::hex(&measure::rim(&measure::NS_HYP_REALM, &img));
    match output.lines().find_map(|l| l.strip_prefix("[realm] RIM ")) {
        Some(got) if got.trim() == want => vec![],
        Some(got) => vec![format!("RIM mismatch: realm read {}, xtask computed {want}", got.trim())],
        None => vec!["no RIM line".into()],
    }
}

fn attestation_expects() -> Vec<Expect> {
    vec![
        expect("token read", &["[realm] ATTEST size "]),
        expect("token printed", &["[realm] ATTEST end"]),
        expect("REM 1 extended from inside the realm", &["[realm] REM_EXTEND index 1 size 20 status 0"]),
        expect("second token read", &["[realm] ATTEST2 size "]),
        expect("second token printed", &["[realm] ATTEST2 end"]),
        expect("realm finished", &["[realm] done"]),
    ]
}

/// What realm-guest extends REM 1 with between its two tokens (its
/// `REM_EXTEND_DATA`).
const REM_EXTEND_DATA: &[u8] = b"quadrant: rem extend";

/// The tokens the Realm printed (base64 on `[realm] ATTEST ` and `[realm]
/// ATTEST2 ` lines) pass `verify-token` with realm-guest's challenge and the
/// RIM xtask computes; between them the Realm extended REM 1, so the first
/// token must show REM 1 = 0 (REMs start zero) and the second H(0 || data)
/// (xtask's own `measure::rem_extend`), which the Realm's own
/// RSI_MEASUREMENT_READ (`[realm] REM1`) must also give.
/// The platform token is TF-A qemu's fixed sample: bound to qemu's sample
/// RAK, but its signature cannot be checked (no key; docs/rmm.md).
fn attestation_verified(output: &str) -> Vec<String> {
    let img = match std::fs::read(util::out_dir().join("realm-guest.padded.bin")) {
        Ok(i) => i,
        Err(e) => return vec![format!("cannot read the padded realm-guest image: {e}")],
    };
    let rim = measure::hex(&measure::rim(&measure::NS_HYP_REALM, &img));
    let rem0 = [0u8; 32];
    let rem1 = measure::rem_extend(&rem0, REM_EXTEND_DATA);
    let mut errs = Vec::new();
    match output.lines().find_map(|l| l.strip_prefix("[realm] REM1 ")) {
        Some(got) if got.trim() == measure::hex(&rem1) => {}
        Some(got) => errs.push(format!("REM 1 read by the realm {} != H(0 || data) {}", got.trim(), measure::hex(&rem1))),
        None => errs.push("no REM1 line".into()),
    }
    for (tag, file, rem) in [("ATTEST", "realm-attestation-token.b64", rem0), ("ATTEST2", "realm-attestation-token2.b64", rem1)] {
        let prefix = format!("[realm] {tag} ");
        let b64: String = output
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .filter(|l| !l.starts_with("size ") && !l.starts_with("end") && !l.contains(' '))
            .collect();
        let path = util::out_dir().join(file);
        if let Err(e) = std::fs::write(&path, &b64) {
            errs.push(format!("cannot write {}: {e}", path.display()));
            continue;
        }
        let challenge: String = (0..64u8).map(|i| format!("{i:02x}")).collect();
        let rem_arg = format!("1:{}", measure::hex(&rem));
        let args: Vec<String> = [path.to_string_lossy().as_ref(), "--challenge", &challenge, "--expect-rim", &rim, "--expect-rem", &rem_arg].iter().map(|s| s.to_string()).collect();
        println!("xtask: $ cargo xtask verify-token {}", args.join(" "));
        match crate::verify_token::main(&args) {
            Ok(true) => {}
            Ok(false) => errs.push(format!("verify-token refused the realm's {tag} token (see above)")),
            Err(e) => errs.push(format!("verify-token: {e}")),
        }
    }
    errs
}

fn rmi_bad_input_expects() -> Vec<Expect> {
    vec![
        expect("ns-hyp in rmi-tests mode", &["[ns-hyp] mode: realm (RmiTests)"]),
        expect("a granule case ran", &["[ns-hyp] rmi_bad_input delegate_delegated: ok"]),
        expect("an RTT case ran", &["[ns-hyp] rmi_bad_input rtt_create_exists: ok", "ERROR_RTT(2)"]),
        expect("a live-object destroy case ran", &["[ns-hyp] rmi_bad_input realm_destroy_live: ok", "ERROR_REALM"]),
        expect("an Active-Realm REC_ENTER case ran", &["[ns-hyp] rmi_bad_input rec_enter_inject_sea_without_abort_exit: ok", "ERROR_REC"]),
        expect("reserved num_bps refused", &["[ns-hyp] rmi_bad_input realm_create_num_bps_zero: ok", "ERROR_INPUT"]),
        expect("reserved num_wps refused", &["[ns-hyp] rmi_bad_input realm_create_num_wps_zero: ok", "ERROR_INPUT"]),
        expect("num_aux other than REC_AUX_COUNT refused", &["[ns-hyp] rmi_bad_input rec_create_num_aux_not_aux_count: ok", "ERROR_INPUT"]),
        expect("fixture torn down", &["[ns-hyp] rmi_bad_input teardown: ok"]),
        expect("no case failed", &["[ns-hyp] rmi_bad_input: ", " passed, 0 failed"]),
    ]
}

fn no_failed_case(output: &str) -> Vec<String> {
    output.lines().filter(|l| l.starts_with("[ns-hyp] rmi_bad_input") && l.contains(": FAIL")).map(|l| format!("failed case: {l}")).collect()
}

/// realm-guest's RSI bad-input cases (its `rsi_cases` module; ns-hyp's
/// `quadrant.rsi-tests` says yes to its host call 5): one `[realm]
/// rsi_bad_input <case>: ok|FAIL ...` line per case, the tally, then the
/// Realm carries on with its usual run to `done` and is torn down.
fn rsi_bad_input_expects() -> Vec<Expect> {
    vec![
        expect("ns-hyp in rsi-tests mode", &["[ns-hyp] mode: realm (RsiTests)"]),
        expect("TOKEN_CONTINUE without INIT", &["[realm] rsi_bad_input token_continue_without_init: ok", "RSI_ERROR_STATE"]),
        expect("an out-of-range REM index", &["[realm] rsi_bad_input measurement_extend_index_5: ok", "RSI_ERROR_INPUT"]),
        expect("an oversized extend", &["[realm] rsi_bad_input measurement_extend_size_65: ok"]),
        expect("REALM_CONFIG unaligned", &["[realm] rsi_bad_input realm_config_unaligned: ok"]),
        expect("IPA_STATE_SET outside the realm's range", &["[realm] rsi_bad_input ipa_state_set_outside_ipa_space: ok"]),
        expect("IPA_STATE_GET unaligned", &["[realm] rsi_bad_input ipa_state_get_unaligned_base: ok"]),
        expect("HOST_CALL at an unprotected address", &["[realm] rsi_bad_input host_call_unprotected: ok"]),
        expect("token continue offset out of range", &["[realm] rsi_bad_input token_continue_offset_plus_size_4097: ok"]),
        expect("a 32-byte challenge", &["[realm] rsi_bad_input token_init_32_byte_challenge: ok"]),
        expect("an unknown RSI function id", &["[realm] rsi_bad_input unknown_rsi_fid_0xc400019a: ok", "NOT_SUPPORTED"]),
        expect("no case failed", &["[realm] rsi_bad_input: ", " passed, 0 failed"]),
        expect("the realm kept running", &["[realm] done"]),
        expect("realm torn down", &["[ns-hyp] realm_boot: ok"]),
    ]
}

/// No FAIL line; every case line before the tally.
fn rsi_bad_input_extra(output: &str) -> Vec<String> {
    let mut errs: Vec<String> = output.lines().filter(|l| l.starts_with("[realm] rsi_bad_input") && l.contains(": FAIL")).map(|l| format!("failed case: {l}")).collect();
    let cases = output.lines().filter(|l| l.starts_with("[realm] rsi_bad_input ") && l.contains(": ok ")).count();
    match output.lines().find_map(|l| l.strip_prefix("[realm] rsi_bad_input: ")) {
        Some(t) if t.starts_with(&format!("{cases} passed")) => {}
        Some(t) => errs.push(format!("tally {t:?} but {cases} ok lines")),
        None => errs.push("no tally line".into()),
    }
    // A refused call makes no REC exit: the Host sees realm-guest's own
    // RIPAS change (one) and host calls (immediates 1..=8: 8 asks whether
    // to run the storm of `hostile_realm_storm`, here answered 0) only.
    let ripas = output.lines().filter(|l| l.starts_with("[ns-hyp] realm: RIPAS change")).count();
    if ripas != 1 {
        errs.push(format!("{ripas} RIPAS changes reached the Host (realm-guest asks for one; a refused RSI_IPA_STATE_SET must not exit)"));
    }
    for l in output.lines().filter_map(|l| l.strip_prefix("[ns-hyp] realm: host call imm ")) {
        if !l.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| (1..=8).contains(&n)) {
            errs.push(format!("a host call realm-guest does not make reached the Host: {l}"));
        }
    }
    errs
}

fn isolation_expects() -> Vec<Expect> {
    vec![
        expect("GPF reported by ns-hyp", &["[ns-hyp] granule protection fault: "]),
        expect("Normal world survived the GPF", &["[ns-hyp] isolation ns_touch_delegated: ok 2 fault(s)"]),
        expect("protected EMPTY IPA: the Realm took the SEA rmm injects", &["[realm] isolation protected_empty ipa 0x60000000: ok expected Sea"]),
        expect("unmapped unprotected IPA: the Host answered, not NS memory", &["[realm] isolation unprotected_unmapped", ": ok expected HostEmulatedZero"]),
        expect("the Host asked rmm for an SEA (RmiRecEnter.flags.inject_sea)", &["[ns-hyp] realm: read at ipa ", "no device there: inject_sea"]),
        expect("unprotected IPA with no device: the Realm took the SEA the Host asked for", &["[realm] isolation unprotected_host_sea", ": ok expected Sea"]),
        expect("realm ran to the end", &["[realm] done"]),
        expect("realm torn down", &["[ns-hyp] realm_boot: ok"]),
    ]
}

fn isolation_extra(output: &str) -> Vec<String> {
    output.lines().filter(|l| l.starts_with("[realm] isolation") && l.contains("FAIL")).map(|l| format!("realm isolation probe failed: {l}")).collect()
}

/// `quadrant.realm-bench` (for `cargo xtask bench`): prints `bench smc_floor`,
/// `bench rmi_version`, `bench rec_enter_host_call` and `bench attest_token` rows, then `bench done`.
#[allow(dead_code)]
pub fn realm_bench_boot(o: &Outputs) -> XResult<Boot> {
    realm_mode_boot(o, "quadrant.realm-bench")
}

pub fn tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest { name: "realm_boot", boot: realm_boot, timeout: Duration::from_secs(120), expects: realm_boot_expects, extra: Some(rim_matches), forbid: FORBID_ALWAYS },
        IntegrationTest { name: "rmi_bad_input", boot: rmi_tests_boot, timeout: Duration::from_secs(120), expects: rmi_bad_input_expects, extra: Some(no_failed_case), forbid: FORBID_ALWAYS },
        IntegrationTest { name: "realm_attestation", boot: realm_boot, timeout: Duration::from_secs(180), expects: attestation_expects, extra: Some(attestation_verified), forbid: FORBID_ALWAYS },
        IntegrationTest { name: "rsi_bad_input", boot: rsi_tests_boot, timeout: Duration::from_secs(120), expects: rsi_bad_input_expects, extra: Some(rsi_bad_input_extra), forbid: FORBID_ALWAYS },
        IntegrationTest { name: "realm_isolation", boot: isolation_boot, timeout: Duration::from_secs(120), expects: isolation_expects, extra: Some(isolation_extra), forbid: FORBID_ALWAYS },
        // ~40 s here (-smp 1; the Realm's 13,621 measured pages, then Linux to its shell).
        IntegrationTest { name: "realm_linux", boot: realm_linux_boot, timeout: Duration::from_secs(300), expects: realm_linux_expects, extra: Some(realm_linux_token), forbid: FORBID_ALWAYS },
        // Two Linux VMs and a Linux Realm under TF-A and rmm, -smp 3 under TCG on the host's cores.
        IntegrationTest {
            name: "vms_with_realm",
            boot: vms_with_realm_boot,
            timeout: Duration::from_secs(600),
            expects: vms_with_realm_expects,
            extra: Some(vms_with_realm_extra),
            forbid: super::nshyp::FORBID_GUEST,
        },
    ]
}

/// Work in progress: run only when named in full (none now).
pub fn pending() -> Vec<IntegrationTest> {
    vec![]
}

/// RECs of the Linux Realm (its vCPUs).
const REALM_LINUX_RECS: usize = 2;
/// Its RAM, MiB (ns-hyp's `quadrant.mem`; at most 256 for a Realm).
const REALM_LINUX_MEM_MIB: u32 = 256;
/// Modules the Realm loads: its disk, then configfs-tsm's report and arm-cca-guest.
const REALM_LINUX_MODULES: &[&str] = &["virtio_mmio", "virtio_blk", "crc16", "mbcache", "jbd2", "ext4", "configfs", "tsm_report", "arm-cca-guest"];
/// The Realm kernel's command line: features whose state ns-hyp's Realm
/// does not switch (SVE, SME, pointer authentication, MTE) are turned off
/// by the kernel's own ID register overrides; a small swiotlb (8 MiB of
/// bounce buffers in shared memory).  earlycon names the PL011's unprotected
/// alias (1 << 38 | 0x09000000): Linux 7.3 sets up earlycon (in
/// `parse_early_param`) before `arm64_rsi_init` (after `psci_dt_init`)
/// learns the shared bit, and the protected 0x09000000 is RIPAS EMPTY (an
/// access there is a Synchronous External Abort).
const REALM_LINUX_CMDLINE: &str = "console=ttyAMA0 earlycon=pl011,0x4009000000 rdinit=/init arm64.nosve arm64.nosme arm64.nopauth arm64.nomte swiotlb=4096";

/// What the `realm_linux` boot handed QEMU, for its checks afterwards: the
/// files xtask preloaded (measured into the RIM), the challenge it typed
/// into configfs-tsm, and TF-A qemu's sample platform token (the reference
/// value of the platform token, whose key is not shipped).
struct RealmLinuxRun {
    kernel: std::path::PathBuf,
    initrd: std::path::PathBuf,
    challenge: [u8; 64],
    platform_token: std::path::PathBuf,
}

static REALM_LINUX_RUN: std::sync::Mutex<Option<RealmLinuxRun>> = std::sync::Mutex::new(None);

/// The kernel Image and initramfs IPAs in the Realm (ns-hyp's normal guest
/// layout: RAM IPA 0x4000_0000 is PA 0x8000_0000, where QEMU's loader puts
/// them, `nshyp::GUEST_KERNEL_PA` / `GUEST_INITRD_PA`) and its DTB's.
const REALM_RAM_IPA: u64 = 0x4000_0000;
const REALM_KERNEL_IPA: u64 = REALM_RAM_IPA + (super::nshyp::GUEST_KERNEL_PA - 0x8000_0000);
const REALM_INITRD_IPA: u64 = REALM_RAM_IPA + (super::nshyp::GUEST_INITRD_PA - 0x8000_0000);
const REALM_DTB_IPA: u64 = REALM_RAM_IPA;

/// TF-A's qemu sample platform token (plat/qemu/common/qemu_plat_attest_token.c,
/// `sample_platform_token[]`), read from the C array into a file.
fn qemu_sample_platform_token(o: &Outputs) -> XResult<std::path::PathBuf> {
    let src = o.paths.tfa_src.join("plat/qemu/common/qemu_plat_attest_token.c");
    let text = std::fs::read_to_string(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let body = text
        .split_once("sample_platform_token[] = {")
        .and_then(|(_, rest)| rest.split_once("};"))
        .map(|(b, _)| b)
        .ok_or(format!("{}: no sample_platform_token[] array", src.display()))?;
    let bytes: Vec<u8> = body
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.strip_prefix("0x").and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or(format!("{}: {t:?} in the array", src.display())))
        .collect::<XResult<_>>()?;
    let out = util::out_dir().join("qemu-sample-platform-token.cbor");
    std::fs::write(&out, &bytes).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(out)
}

/// `printf` octal escapes of `bytes` (a shell word in single quotes).
fn printf_octal(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:03o}")).collect()
}

/// For `cargo xtask bench`'s `realm_linux_boot_to_prompt`: the kernel and
/// initramfs of `realm_linux`, same machine (TF-A, one CPU, 2 vCPUs, 256 MiB),
/// either as a Realm (`realm`, the test's boot without its disk and input) or
/// as ns-hyp's normal guest (the same command line, but earlycon at the
/// PL011's own address: there is no unprotected alias outside a Realm).
pub fn realm_linux_bench_boot(o: &Outputs, realm: bool) -> XResult<Boot> {
    use super::nshyp;
    let initrd = crate::guest::initramfs(&o.paths, &crate::guest::InitramfsSpec { name: "realm-linux", modules: REALM_LINUX_MODULES, script: None, files: &[] })?;
    let cmdline = if realm { REALM_LINUX_CMDLINE.to_string() } else { REALM_LINUX_CMDLINE.replace("earlycon=pl011,0x4009000000", "earlycon=pl011,0x9000000") };
    let g = nshyp::GuestPayload { kernel: crate::guest::kernel_image(&o.paths)?, initrd: Some(initrd), cmdline: Some(cmdline) };
    let hyp = if realm { format!("quadrant.realm-vm quadrant.mem={REALM_LINUX_MEM_MIB}") } else { format!("quadrant.mem={REALM_LINUX_MEM_MIB}") };
    let name = if realm { "bench-realm-linux" } else { "bench-normal-linux" };
    nshyp::hyp_guest_boot(o, Some(&o.bios), name, &g, REALM_LINUX_RECS, Some(1), &hyp)
}

/// Debian's Linux 7.3 as a Realm of ns-hyp (`quadrant.realm-vm`), under
/// TF-A and rmm, with the shell initramfs and the known-file disk.
fn realm_linux_boot(o: &Outputs) -> XResult<Boot> {
    use super::nshyp;
    let disk = crate::guest::ext2_image("realm-linux", 8, &[("known.bin", &nshyp::known_file())])?;
    let initrd = crate::guest::initramfs(&o.paths, &crate::guest::InitramfsSpec { name: "realm-linux", modules: REALM_LINUX_MODULES, script: None, files: &[] })?;
    let kernel = crate::guest::kernel_image(&o.paths)?;
    let g = nshyp::GuestPayload { kernel: kernel.clone(), initrd: Some(initrd.clone()), cmdline: Some(REALM_LINUX_CMDLINE.into()) };
    let hyp = format!("quadrant.realm-vm quadrant.mem={REALM_LINUX_MEM_MIB}");
    // One physical CPU: ns-hyp runs every REC on its boot CPU, and with -smp 4
    // TF-A's three parked secondaries spin (WFE is a yield under TCG), taking
    // host time from it (the Realm reached /init 3x later).  The host DTB
    // says one CPU too (`hyp_guest_boot` dumps it for `-smp`).
    let Boot::Custom { tfa, mut args } = nshyp::hyp_guest_boot(o, Some(&o.bios), "realm-linux", &g, REALM_LINUX_RECS, Some(1), &hyp)? else { unreachable!() };
    args.extend(nshyp::disk_args(&disk));
    // A fresh random challenge for the Realm's report, typed in by us.
    let mut challenge = [0u8; 64];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?, &mut challenge).map_err(|e| format!("/dev/urandom: {e}"))?;
    let platform_token = qemu_sample_platform_token(o)?;
    *REALM_LINUX_RUN.lock().unwrap() = Some(RealmLinuxRun { kernel, initrd, challenge, platform_token });
    let input = [
        ("quadrant-init: shell", String::new()),
        ("/ # ", "echo NPROC=$(nproc); ls /sys/kernel/config/tsm/report >/dev/null 2>&1 || mount -t configfs none /sys/kernel/config; ls -d /sys/kernel/config/tsm/report && echo TSM=yes\n".into()),
        ("/ # ", "mount -t ext2 -o ro /dev/vda /mnt && sha256sum /mnt/known.bin | sed \"s/^/SHA256=/\"\n".into()),
        // An attestation token through configfs-tsm (arm-cca-guest's
        // RSI_ATTESTATION_TOKEN_INIT/CONTINUE, answered by rmm) for our
        // challenge, typed in two halves; the token comes back in base64
        // between B64BEGIN and B64END (the quotes keep the echoed command
        // line from matching).
        ("/ # ", format!("printf '{}' > /tmp/c\n", printf_octal(&challenge[..32]))),
        ("/ # ", format!("printf '{}' >> /tmp/c\n", printf_octal(&challenge[32..]))),
        ("/ # ", "r=/sys/kernel/config/tsm/report/q; mkdir $r && cat /tmp/c > $r/inblob && cat $r/outblob > /tmp/t && echo TOKEN=$(wc -c < /tmp/t) && echo B64\"\"BEGIN && base64 /tmp/t && echo B64\"\"END\n".into()),
        ("/ # ", "poweroff -f\n".into()),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b))
    .collect();
    Ok(Boot::Scripted { boot: Box::new(Boot::Custom { tfa, args }), input })
}

fn realm_linux_expects() -> Vec<Expect> {
    let sha = super::nshyp::known_sha256();
    let nproc = format!("NPROC={REALM_LINUX_RECS}");
    let sha_line = format!("SHA256={sha}  /mnt/known.bin");
    vec![
        expect("ns-hyp built the Realm", &["[ns-hyp] realm-vm: created rd"]),
        expect("Linux started in the Realm", &["Booting Linux on physical CPU"]),
        expect("the kernel says it runs in a Realm", &["RME: Using RSI version 1.0"]),
        expect("arm-cca-guest loaded", &["quadrant-init: loaded arm-cca-guest"]),
        expect("the shell came up", &["quadrant-init: shell"]),
        expect_owned("nproc = the number of RECs", nproc),
        expect("configfs-tsm has its report directory", &["TSM=yes"]),
        expect_owned("the file on the virtio disk has the host's sha256", sha_line),
        expect("the token came out in base64", &["B64END"]),
        expect("the Realm powered off", &["[ns-hyp] realm-vm: PSCI SYSTEM_OFF"]),
    ]
}

/// The DTB ns-hyp printed (`realm-vm: dtb <offset> <hex>` lines, then
/// `realm-vm: dtb end <size>`).
fn printed_dtb(output: &str) -> XResult<Vec<u8>> {
    let mut dtb = Vec::new();
    for l in output.lines().filter_map(|l| l.split_once("realm-vm: dtb ").map(|(_, r)| r.trim())) {
        let (a, b) = l.split_once(' ').ok_or(format!("dtb line {l:?}"))?;
        if a == "end" {
            let n: usize = b.parse().map_err(|_| format!("dtb line {l:?}"))?;
            return if n == dtb.len() { Ok(dtb) } else { Err(format!("ns-hyp says its DTB is {n} bytes, its lines hold {}", dtb.len())) };
        }
        if usize::from_str_radix(a, 16).ok() != Some(dtb.len()) {
            return Err(format!("dtb line {l:?} out of order"));
        }
        let bytes = (0..b.len()).step_by(2).map(|i| b.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect::<Option<Vec<u8>>>();
        dtb.extend(bytes.ok_or(format!("dtb line {l:?}: not hex"))?);
    }
    Err("no `realm-vm: dtb end` line".into())
}

/// `fdtget OPT DTB PATH...` (dtc's own parser, not ns-hyp's writer).
fn fdtget(dtb: &std::path::Path, opt: &[&str], path: &[&str]) -> XResult<String> {
    util::output(std::process::Command::new("fdtget").args(opt).arg(dtb).args(path)).map(|s| s.trim().to_string())
}

/// 32-bit words (`fdtget -t x` output) joined two by two into u64s.
fn u64_cells(s: &str) -> Vec<u64> {
    let w: Vec<u64> = s.split_whitespace().filter_map(|x| u64::from_str_radix(x, 16).ok()).collect();
    w.chunks(2).map(|c| c[0] << 32 | c.get(1).copied().unwrap_or(0)).collect()
}

/// The Realm DTB says what xtask asked for: the command line, the
/// initramfs where QEMU put it, the RAM, one CPU per REC, PSCI through SMC.
fn check_realm_dtb(dtb: &std::path::Path, initrd_size: u64) -> Vec<String> {
    let memory = format!("/memory@{REALM_RAM_IPA:x}");
    let checks: [(&[&str], &[&str], fn(String) -> String, String); 6] = [
        (&["-t", "s"], &["/chosen", "bootargs"], |s| s, REALM_LINUX_CMDLINE.to_string()),
        (&["-t", "x"], &["/chosen", "linux,initrd-start"], u64s_of, format!("{:?}", [REALM_INITRD_IPA])),
        (&["-t", "x"], &["/chosen", "linux,initrd-end"], u64s_of, format!("{:?}", [REALM_INITRD_IPA + initrd_size])),
        (&["-t", "x"], &[memory.as_str(), "reg"], u64s_of, format!("{:?}", [REALM_RAM_IPA, (REALM_LINUX_MEM_MIB as u64) << 20])),
        (&["-t", "s"], &["/psci", "method"], |s| s, "smc".to_string()),
        (&["-l"], &["/cpus"], |s| s.split_whitespace().collect::<Vec<_>>().join(" "), (0..REALM_LINUX_RECS).map(|i| format!("cpu@{i}")).collect::<Vec<_>>().join(" ")),
    ];
    let mut errs = Vec::new();
    for (opt, path, norm, want) in checks {
        match fdtget(dtb, opt, path).map(norm) {
            Ok(g) if g == want => {}
            Ok(g) => errs.push(format!("the Realm's DTB: {}: {g:?}, expected {want:?}", path.join(" "))),
            Err(e) => errs.push(format!("the Realm's DTB: {e}")),
        }
    }
    errs
}

fn u64s_of(s: String) -> String {
    format!("{:?}", u64_cells(&s))
}

/// The token the Realm read through configfs-tsm for xtask's challenge
/// (`TOKEN=<bytes>`, then base64 between `B64BEGIN` and `B64END`), checked
/// by `verify-token`: the challenge, the RIM xtask computes itself
/// (`measure::linux_rim`) from the kernel and initramfs it preloaded and the
/// DTB ns-hyp printed (checked with fdtget against what xtask asked for),
/// the REMs (zero: Linux extends none), the platform token (TF-A qemu's
/// sample, byte for byte), and every single-byte flip of the token refused.
fn realm_linux_token(output: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let size = match output.lines().find_map(|l| l.trim().strip_prefix("TOKEN=")).map(|n| n.trim().parse::<usize>()) {
        Some(Ok(n)) if n > 1518 => n,
        Some(n) => return vec![format!("the Realm's attestation token through configfs-tsm: {n:?} bytes")],
        None => return vec!["no TOKEN= line: the Realm read no attestation token".into()],
    };
    let Some(run) = REALM_LINUX_RUN.lock().unwrap().take() else { return vec!["no record of the realm_linux boot".into()] };
    // The token's base64 lines.
    let lines: Vec<&str> = output.lines().map(str::trim).skip_while(|l| *l != "B64BEGIN").skip(1).take_while(|l| *l != "B64END").collect();
    if let Some(l) = lines.iter().find(|l| !l.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))) {
        errs.push(format!("a line inside the token's base64: {l:?}"));
    }
    let b64: String = lines.concat();
    let token_file = util::out_dir().join("realm-linux-token.b64");
    if let Err(e) = std::fs::write(&token_file, &b64) {
        return vec![format!("{}: {e}", token_file.display())];
    }
    // The RIM, from what xtask preloaded and the DTB ns-hyp printed.
    let dtb = match printed_dtb(output) {
        Ok(d) => d,
        Err(e) => return vec![e],
    };
    let dtb_file = util::out_dir().join("realm-linux-realm.dtb");
    let (kernel, initrd) = match (std::fs::read(&run.kernel), std::fs::read(&run.initrd), std::fs::write(&dtb_file, &dtb)) {
        (Ok(k), Ok(i), Ok(())) => (k, i),
        (k, i, d) => return vec![format!("reading the Realm's images: {:?} {:?} {:?}", k.err(), i.err(), d.err())],
    };
    errs.extend(check_realm_dtb(&dtb_file, initrd.len() as u64));
    let payloads = [(REALM_DTB_IPA, &dtb[..]), (REALM_KERNEL_IPA, &kernel[..]), (REALM_INITRD_IPA, &initrd[..])];
    let rim = measure::linux_rim(&measure::LinuxRealm {
        ram_ipa: REALM_RAM_IPA,
        ram_size: (REALM_LINUX_MEM_MIB as u64) << 20,
        payloads: &payloads,
        recs: REALM_LINUX_RECS,
        entry: REALM_KERNEL_IPA,
        dtb_ipa: REALM_DTB_IPA,
    });
    println!("xtask: realm_linux: token {size} bytes; RIM from {} DTB + {} kernel + {} initramfs bytes: {}", dtb.len(), kernel.len(), initrd.len(), measure::hex(&rim));
    let zero = measure::hex(&[0u8; 32]);
    let mut args: Vec<String> = vec![token_file.display().to_string(), "--challenge".into(), measure::hex(&run.challenge), "--expect-rim".into(), measure::hex(&rim)];
    for i in 1..=4 {
        args.extend(["--expect-rem".into(), format!("{i}:{zero}")]);
    }
    args.extend(["--expect-platform-token".into(), run.platform_token.display().to_string(), "--flip-every-byte".into()]);
    println!("xtask: $ cargo xtask verify-token {}", args.join(" "));
    match crate::verify_token::main(&args) {
        Ok(true) => {}
        Ok(false) => errs.push("verify-token refused the Linux Realm's token (see above)".into()),
        Err(e) => errs.push(format!("verify-token: {e}")),
    }
    errs
}

fn expect_owned(what: &'static str, s: String) -> Expect {
    expect(what, &[&s])
}

/// vms_with_realm (issue B2: "N VMs, at least 3: two Linux VMs, plus a
/// realm where rmm is present"): ns-hyp under TF-A and rmm runs VM 0 and
/// VM 1, Debian's Linux with the BusyBox shell ([`VMS_REALM_LINUX_VCPUS`]
/// vCPUs and [`VMS_REALM_LINUX_MIB`] each, their vCPUs over CPUs 0 and 1),
/// and VM 2, a Realm (`quadrant.realm-vm`): realm_linux's kernel command
/// line and initramfs on [`REALM_LINUX_RECS`] RECs, [`REALM_LINUX_MEM_MIB`]
/// of RAM (a footprint of twice that + 8 MiB in ns-hyp's guest area), on
/// CPU 2 alone.  Each VM has its own disk, the known file and `whose`
/// naming the VM.
const VMS_REALM_LINUX_MIB: u32 = 192;
const VMS_REALM_LINUX_VCPUS: usize = 2;
/// The physical CPUs the two Linux VMs' vCPUs share; the Realm's is one more.
const VMS_REALM_LINUX_CPUS: u32 = 2;
/// The Realm's VM number (its console prefix, its `Ctrl-] K`, its disk).
const VMS_REALM_K: usize = 2;

/// Each VM's RAM (the Realm's last) and where it starts in PA.
fn vms_with_realm_layout() -> XResult<(Vec<u32>, Vec<u64>)> {
    let mem = vec![VMS_REALM_LINUX_MIB, VMS_REALM_LINUX_MIB, REALM_LINUX_MEM_MIB];
    let pas = super::nshyp::vm_ram_pas(&mem, Some(VMS_REALM_K))?;
    Ok((mem, pas))
}

/// The Realm's initramfs size, for the check of the DTB ns-hyp printed.
static VMS_WITH_REALM_INITRD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn vms_with_realm_boot(o: &Outputs) -> XResult<Boot> {
    use super::nshyp::{self, GuestPayload, VmSpec};
    let kernel = crate::guest::kernel_image(&o.paths)?;
    let shell = nshyp::shell_initramfs(o)?;
    let realm_initrd = crate::guest::initramfs(&o.paths, &crate::guest::InitramfsSpec { name: "realm-linux", modules: REALM_LINUX_MODULES, script: None, files: &[] })?;
    let initrd_size = std::fs::metadata(&realm_initrd).map_err(|e| format!("{}: {e}", realm_initrd.display()))?.len();
    VMS_WITH_REALM_INITRD.store(initrd_size, std::sync::atomic::Ordering::Relaxed);
    let (mem, _) = vms_with_realm_layout()?;
    let vms: Vec<VmSpec> = mem
        .iter()
        .enumerate()
        .map(|(k, &m)| {
            let realm = k == VMS_REALM_K;
            let (initrd, cmdline, vcpus) = if realm { (realm_initrd.clone(), Some(REALM_LINUX_CMDLINE.to_string()), REALM_LINUX_RECS) } else { (shell.clone(), None, VMS_REALM_LINUX_VCPUS) };
            VmSpec { payload: GuestPayload { kernel: kernel.clone(), initrd: Some(initrd), cmdline }, vcpus, mem_mib: m, realm }
        })
        .collect();
    // One more CPU than the Linux VMs share: ns-hyp runs the RECs on the last.
    let Boot::Custom { tfa, mut args } = nshyp::hyp_vms_boot(o, Some(&o.bios), "vms-with-realm", &vms, Some(VMS_REALM_LINUX_CPUS + 1), "")? else { unreachable!() };
    // Names of 16 bytes at most: each is its image's ext2 label too.
    let disks = (0..vms.len())
        .map(|k| crate::guest::ext2_image(&format!("vmsrealm-vm{k}"), 8, &[("known.bin", &nshyp::known_file()), ("whose", format!("vm{k}\n").as_bytes())]))
        .collect::<XResult<Vec<_>>>()?;
    args.extend(nshyp::vm_disks_args(&disks));
    Ok(Boot::Scripted { boot: Box::new(Boot::Custom { tfa, args }), input: vms_with_realm_input() })
}

/// What a VM types to read its disk: the known file's sha256, whose disk it is.
const VMS_REALM_DISK: &str = "mount -t ext2 -o ro /dev/vda /mnt && sha256sum /mnt/known.bin | sed \"s/^/SHA256=/\"; echo DISK=$(cat /mnt/whose)";
/// How many virtio-mmio devices the VM's DTB gives it, as its kernel sees them.
const VMS_REALM_VIRTIO: &str = "echo VIRTIO_NODES=$(ls -d /sys/firmware/devicetree/base/virtio_mmio@* | wc -l)";

/// Every VM at its shell (VM 0's prompt, then Enter in VM 1 and in the
/// Realm, as vm_isolation does); the Realm's nproc and disk; each Linux
/// VM's; the Realm powers off and is destroyed; then VM 1 and VM 0 say
/// they are still there and power off.  Each marker waited for is typed
/// with `""` inside, so the shell's echo of the line cannot match it.
fn vms_with_realm_input() -> Vec<(String, String)> {
    let realm = format!("echo NPROC=$(nproc); sed \"s/^/CMDLINE=/\" /proc/cmdline; {VMS_REALM_VIRTIO}; {VMS_REALM_DISK}; echo VM2_DO\"\"NE\n");
    let linux = |k: usize| format!("echo VM{k}_NPROC=$(nproc) KERNEL=$(uname -r); {VMS_REALM_VIRTIO}; {VMS_REALM_DISK}; echo VM{k}_DO\"\"NE\n");
    let after = |k: usize| format!("echo VM{k}_AF\"\"TER=$(nproc); poweroff -f\n");
    let (vm0, vm1, after0, after1) = (linux(0), linux(1), after(0), after(1));
    super::nshyp::steps(&[
        ("[vm0] / # ", "\x1d1"),
        ("console: input to vm1", "\n"),
        ("[vm1] / # ", "\x1d2"),
        ("console: input to vm2", "\n"),
        ("[vm2] / # ", &realm),
        ("VM2_DONE", "\x1d0"),
        ("console: input to vm0", &vm0),
        ("VM0_DONE", "\x1d1"),
        ("console: input to vm1", &vm1),
        ("VM1_DONE", "\x1d2"),
        ("console: input to vm2", "poweroff -f\n"),
        ("vm2: realm destroyed", "\x1d1"),
        ("console: input to vm1", &after1),
        ("[ns-hyp] vm1: SYSTEM_OFF", "\x1d0"),
        ("console: input to vm0", &after0),
    ])
}

fn vms_with_realm_expects() -> Vec<Expect> {
    let sha = super::nshyp::known_sha256();
    let realm_pa = vms_with_realm_layout().map(|(_, pas)| pas[VMS_REALM_K]).unwrap_or(0);
    let mut e = vec![
        expect("rmm booted", &["[rmm] ", "boot complete"]),
        expect_owned("ns-hyp made VM 2 a Realm on the last CPU", format!("[ns-hyp] vm2: a Realm of {REALM_LINUX_RECS} REC(s) on cpu {VMS_REALM_LINUX_CPUS}")),
        expect("ns-hyp built the Realm", &["[ns-hyp] realm-vm: created rd"]),
    ];
    for k in 0..3 {
        let vm = format!("[vm{k}] ");
        let line = |rest: &[&str]| std::iter::once(vm.clone()).chain(rest.iter().map(|s| s.to_string())).collect::<Vec<_>>();
        let what = |w: [&'static str; 3]| w[k];
        e.extend([
            Expect { what: what(["VM 0's init ran on 2 vCPUs", "VM 1's init ran on 2 vCPUs", "the Realm's init ran on 2 RECs"]), all_of: line(&["quadrant-init: up, 2 cpu(s)"]) },
            Expect { what: what(["VM 0 reached its shell", "VM 1 reached its shell", "the Realm reached its shell"]), all_of: line(&["quadrant-init: shell"]) },
            Expect { what: what(["VM 0 read the known file on its disk", "VM 1 read the known file on its disk", "the Realm read the known file on its disk"]), all_of: line(&[&format!("SHA256={sha}  /mnt/known.bin")]) },
            Expect { what: what(["VM 0's disk is the first virtio-blk device", "VM 1's disk is the second", "the Realm's disk is the third"]), all_of: line(&[&format!("DISK=vm{k}")]) },
        ]);
    }
    e.extend([
        expect("ns-hyp switched the console's input to the Realm", &["console: input to vm2"]),
        expect("the kernel in VM 2 says it runs in a Realm", &["[vm2] ", "RME: Using RSI version 1.0"]),
        expect_owned("nproc in the Realm = its RECs", format!("[vm2] NPROC={REALM_LINUX_RECS}")),
        expect_owned("the Realm's kernel has realm_linux's command line", format!("[vm2] CMDLINE={REALM_LINUX_CMDLINE}")),
        expect_owned("VM 0 answered while the Realm ran", format!("[vm0] VM0_NPROC={VMS_REALM_LINUX_VCPUS} KERNEL=")),
        expect_owned("VM 1 answered while the Realm ran", format!("[vm1] VM1_NPROC={VMS_REALM_LINUX_VCPUS} KERNEL=")),
        expect("the Realm powered off", &["[ns-hyp] realm-vm: PSCI SYSTEM_OFF after "]),
        expect("ns-hyp destroyed the Realm", &["[ns-hyp] vm2: realm destroyed: ", "granule(s) undelegated"]),
        Expect { what: "ns-hyp scrubbed the Realm's RAM and returned it", all_of: vec!["[ns-hyp] vm2: ".into(), format!("MiB at PA {realm_pa:#x} scrubbed and returned")] },
        expect_owned("VM 1 ran on after the Realm was gone", format!("[vm1] VM1_AFTER={VMS_REALM_LINUX_VCPUS}")),
        expect("VM 1's SYSTEM_OFF stopped VM 1 alone", &["[ns-hyp] vm1: SYSTEM_OFF"]),
        expect_owned("VM 0 ran on after VM 1 and the Realm were gone", format!("[vm0] VM0_AFTER={VMS_REALM_LINUX_VCPUS}")),
        expect("the last VM's SYSTEM_OFF powered the machine off", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]);
    e
}

/// The numbers after `[vm<k>] <tag>=` (what the VM printed, not the echo
/// of the command that prints it).
fn vm_numbers(output: &str, k: usize, tag: &str) -> Vec<u64> {
    let key = format!("[vm{k}] {tag}=");
    output.lines().filter_map(|l| l.strip_prefix(key.as_str())?.trim().parse().ok()).collect()
}

/// What another world prints on the shared UART (TF-A, spmc, rmm): text that
/// cuts into ns-hyp's lines when their CPUs print at the same time.
const OTHER_WORLDS: &[&str] = &["[spmc]", "[rmm]", "NOTICE:", "INFO:", "WARNING:"];

/// Every module loaded in every VM; only VM 2 says it is a Realm; the
/// Realm's kernel sees one virtio-mmio device, its disk (no network; VM 0's
/// count is printed); the Realm's DTB as ns-hyp printed it is what xtask
/// asked for (realm_linux's checks).  ns-hyp prints that DTB on the Realm's
/// CPU as it starts, while CPU 1 comes up in the other worlds, whose lines
/// can cut into it character by character (2 of the first 4 runs): then
/// the DTB is not compared, and the run says so.
fn vms_with_realm_extra(output: &str) -> Vec<String> {
    let mut f: Vec<String> = output.lines().filter(|l| l.contains("quadrant-init: FAILED") || l.contains("modules not loaded")).map(|l| format!("a VM's init failed: {l}")).collect();
    f.extend(output.lines().filter(|l| l.contains("RME: Using RSI") && !l.starts_with("[vm2] ")).map(|l| format!("a VM other than the Realm says it is one: {l}")));
    if let Some(l) = output.lines().find(|l| l.contains("[ns-hyp] realm-vm: created rd")) {
        println!("    vms_with_realm: {}", l.trim());
    }
    match vm_numbers(output, VMS_REALM_K, "VIRTIO_NODES").as_slice() {
        [1] => {}
        other => f.push(format!("the Realm's kernel sees {other:?} virtio-mmio nodes in its DTB, not one (its disk)")),
    }
    println!("    vms_with_realm: virtio-mmio nodes in VM 0's DTB: {:?}, in the Realm's: {:?}", vm_numbers(output, 0, "VIRTIO_NODES"), vm_numbers(output, VMS_REALM_K, "VIRTIO_NODES"));
    let dtb = match printed_dtb(output) {
        Ok(d) => d,
        Err(e) => {
            let lines: Vec<&str> = output.lines().skip_while(|l| !l.contains("realm-vm: dtb 0000 ")).take_while(|l| !l.contains("realm-vm: created rd")).collect();
            if lines.iter().any(|l| OTHER_WORLDS.iter().any(|w| l.contains(w))) {
                println!("    vms_with_realm: the Realm's DTB lines were cut by another world's output ({e}): not compared");
            } else {
                f.push(e);
            }
            return f;
        }
    };
    let dtb_file = util::out_dir().join("vms-with-realm-realm.dtb");
    if let Err(e) = std::fs::write(&dtb_file, &dtb) {
        f.push(format!("{}: {e}", dtb_file.display()));
        return f;
    }
    f.extend(check_realm_dtb(&dtb_file, VMS_WITH_REALM_INITRD.load(std::sync::atomic::Ordering::Relaxed)));
    f
}

#[cfg(test)]
mod tests {
    #[test]
    fn vms_with_realm_layout_and_script() {
        let (mem, pas) = super::vms_with_realm_layout().unwrap();
        assert_eq!(mem, [192, 192, 256]);
        // The Realm's footprint (2 x 256 + 8 MiB) ends below the guest area's 1 GiB.
        assert_eq!(pas, [0x8000_0000, 0x8c00_0000, 0x9800_0000]);
        assert!(pas[2] + (520 << 20) <= 0xc000_0000);
        let input = super::vms_with_realm_input();
        // What the script waits for never appears in what it types.
        for (wait, _) in &input {
            assert!(input.iter().all(|(_, send)| !send.contains(wait.as_str())), "{wait:?} is typed");
        }
        // Neither do the lines the test expects from the guests.
        for e in super::vms_with_realm_expects().iter().filter(|e| e.all_of[0].starts_with("[vm")) {
            let fragments = e.all_of.iter().map(|f| f.get(6..).filter(|_| f.starts_with("[vm")).unwrap_or(f)).filter(|f| !f.is_empty());
            for f in fragments {
                assert!(input.iter().all(|(_, send)| !send.contains(f)), "{f:?} of {:?} is typed", e.what);
            }
        }
        assert!(input.iter().all(|(_, send)| send.is_empty() || send.ends_with('\n') || send.starts_with('\x1d')));
        // The Realm powers off before the Linux VMs, VM 0 last.
        let order: Vec<&str> = input.iter().filter(|(_, s)| s.contains("poweroff -f")).map(|(w, _)| w.as_str()).collect();
        assert_eq!(order, ["console: input to vm2", "console: input to vm1", "console: input to vm0"]);
    }

    #[test]
    fn vms_with_realm_output() {
        let cut = "[ns-hyp] realm-vm: dtb 0000 d00dfeed\n[ns-hyp] realm-vm: dtb 0004 00000001637[spmc] cpu 1 up (MPIDR_EL1 0x80000001, x4 0x1)\n26d2c\n\
                   [ns-hyp] realm-vm: created rd 0xa8000000: 2 REC(s)\n";
        let typed = "[vm2] / # echo VIRTIO_NODES=$(ls -d /sys/firmware/devicetree/base/virtio_mmio@* | wc -l)\n";
        let good = format!("{cut}{typed}[vm2] VIRTIO_NODES=1\n[vm0] VIRTIO_NODES=2\n");
        assert_eq!(super::vm_numbers(&good, 2, "VIRTIO_NODES"), [1]);
        // DTB lines cut by another world's output are not compared.
        assert!(super::vms_with_realm_extra(&good).is_empty(), "{:?}", super::vms_with_realm_extra(&good));
        // Without another world's text, a DTB that does not parse fails.
        assert_eq!(super::vms_with_realm_extra(&good.replace("[spmc] cpu 1 up", "zz")).len(), 1);
        let net = good.replace("[vm2] VIRTIO_NODES=1", "[vm2] VIRTIO_NODES=2");
        assert_eq!(super::vms_with_realm_extra(&net).len(), 1, "a network device in the Realm");
        let bad = format!("{good}[vm0] [    0.0] RME: Using RSI version 1.0\n[vm1] quadrant-init: FAILED to load ext4\n");
        assert_eq!(super::vms_with_realm_extra(&bad).len(), 2);
    }
}
