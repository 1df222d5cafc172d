//! Issue C (spmc): real Normal-world clients of the SPMC.

use super::{Expect, FORBID_ALWAYS, IntegrationTest, XResult, expect};
use crate::build::{self, LINUX_BL33_BASE, Outputs};
use crate::sign;
use crate::guest::{self, InitramfsSpec};
use crate::qemu::{self, Boot};
use crate::{layout, util};
use std::path::Path;
use std::time::Duration;

/// Where QEMU preloads the initramfs for Linux-as-BL33 boots (well past the
/// ~55 MiB Image at LINUX_BL33_BASE).
const INITRD_BASE: u64 = 0x7000_0000;

/// Debian's Linux as BL33 over all four worlds with `initrd`.
pub fn linux_bl33_boot(o: &Outputs, initrd: &Path, name: &str, bootargs: &str) -> XResult<Boot> {
    bl33_boot(&o.linux_bios, &guest::kernel_image(&o.paths)?, Some(initrd), name, bootargs)
}

/// `image` (a Linux Image or any NS-EL2 payload) as BL33 over all four worlds:
/// `bios` is a TF-A build with PRELOADED_BL33_BASE, QEMU preloads the image
/// there and the initramfs at [`INITRD_BASE`]; the DTB BL2 hands over carries
/// the bootargs and the initrd range (QEMU writes neither when it boots
/// firmware with `-bios`).
pub fn bl33_boot(bios: &Path, image: &Path, initrd: Option<&Path>, name: &str, bootargs: &str) -> XResult<Boot> {
    let dtb = util::out_dir().join(format!("{name}.dtb"));
    qemu::dump_dtb(Some(bios), &dtb)?;
    let range = match initrd {
        Some(i) => {
            let size = std::fs::metadata(i).map_err(|e| format!("{}: {e}", i.display()))?.len();
            Some((INITRD_BASE, INITRD_BASE + size))
        }
        None => None,
    };
    let image_size = std::fs::metadata(image).map_err(|e| format!("{}: {e}", image.display()))?.len();
    if range.is_some() && image_size > INITRD_BASE - LINUX_BL33_BASE {
        return Err(format!("{}: {image_size} bytes does not fit below the initramfs at {INITRD_BASE:#x}", image.display()));
    }
    qemu::set_chosen(&dtb, bootargs, range)?;
    Ok(Boot::Custom { tfa: true, args: bl33_qemu_args(bios, &dtb, image, initrd) })
}

/// The machine-specific QEMU arguments of [`bl33_boot`]: the bios, the DTB
/// with /chosen filled in, the image preloaded at LINUX_BL33_BASE and the
/// initramfs at [`INITRD_BASE`].
pub fn bl33_qemu_args(bios: &Path, dtb: &Path, image: &Path, initrd: Option<&Path>) -> Vec<String> {
    let loader = |file: &Path, addr: u64| format!("loader,file={},addr={addr:#x},force-raw=on", file.display());
    let mut args = vec!["-bios".into(), bios.display().to_string(), "-dtb".into(), dtb.display().to_string(), "-device".into(), loader(image, LINUX_BL33_BASE)];
    if let Some(i) = initrd {
        args.extend(["-device".into(), loader(i, INITRD_BASE)]);
    }
    args
}

const FFA_SCRIPT: &str = "\
dmesg | grep -i -E 'ff-?a' | sed 's/^/quadrant-dmesg: /'
for d in /sys/bus/arm_ffa/devices/*; do
  [ -e \"$d\" ] || continue
  echo \"quadrant-ffa-device: $(basename $d) uuid=$(cat $d/uuid 2>/dev/null) id=$(cat $d/partition_id 2>/dev/null)\"
done
echo \"quadrant-ffa-devices: $(ls /sys/bus/arm_ffa/devices 2>/dev/null | wc -l)\"
grep -i ffa /proc/interrupts | sed 's/^ */quadrant-irq: /'
";

fn linux_ffa_boot(o: &Outputs) -> XResult<Boot> {
    let initrd = guest::initramfs(
        &o.paths,
        &InitramfsSpec { name: "linux-ffa", modules: &["ffa-core", "ffa-module"], script: Some(FFA_SCRIPT), files: &[] },
    )?;
    linux_bl33_boot(o, &initrd, "linux-ffa", "console=ttyAMA0 earlycon rdinit=/init")
}

fn linux_ffa_expects() -> Vec<Expect> {
    vec![
        expect("Linux reached its init", &["quadrant-init: up"]),
        expect("the FF-A driver loaded", &["quadrant-init: loaded ffa-module"]),
        expect("the driver agreed a version with spmc", &["quadrant-dmesg: ", "ARM FF-A: Firmware version 1."]),
        expect("the script finished", &["quadrant-init: script done"]),
        // Notifications set up (issue 11): FFA_FEATURES(SRI) gave SGI 8,
        // the driver requested it as its per-CPU Schedule Receiver Interrupt.
        expect("the driver requested the SRI", &["quadrant-irq: ", "ARM-FFA-SRI"]),
    ]
}

/// Linux's arm_ffa sets notifications up with no error (before issue 11:
/// "ARM FF-A: Notification setup failed -95, not enabled").
const FORBID_LINUX_FFA: &[&str] = &[
    "PANIC",
    "panicked",
    "Unhandled Exception",
    "ERROR:",
    "BL31: Error",
    "Notification setup failed",
    "Notification bitmap create error",
    "Error registering percpu",
    "Failed to retrieve FF-A",
    "Failed to create IRQ mapping",
    "Notification Info fetch failed",
];

/// One /sys/bus/arm_ffa device per SP in sp_layout.json, with the manifest's UUID.
///
/// Linux 7.3's driver also registers a device for itself (`ffa_setup_host_partition`
/// in drivers/firmware/arm_ffa/driver.c: partition id = its own FFA_ID_GET id,
/// 0 here, nil UUID) whatever the SPMC reports, so devices are told apart by
/// partition id: secure endpoint ids have bit 15 set (DEN0077 §2.9).  The one
/// device allowed besides the SPs' is that host device.
fn ffa_devices_match_layout(output: &str) -> Vec<String> {
    ffa_devices_are(output, &sp_uuids())
}

/// Exactly the SPs `sps` (name, UUID) have a /sys/bus/arm_ffa device (besides
/// the driver's own host device).
pub fn ffa_devices_are(output: &str, sps: &[(String, String)]) -> Vec<String> {
    let mut fails = Vec::new();
    let listed: Vec<&str> = output.lines().filter(|l| l.starts_with("quadrant-ffa-device: ")).collect();
    let id_of = |l: &str| -> Option<u16> {
        let id = l.split(" id=").nth(1)?.trim();
        u16::from_str_radix(id.trim_start_matches("0x"), 16).ok()
    };
    let (secure, other): (Vec<&str>, Vec<&str>) = listed.iter().partition(|l| id_of(l).is_some_and(|id| id & 0x8000 != 0));
    if secure.len() != sps.len() {
        fails.push(format!("{} secure-partition FF-A device(s) in sysfs, {} SP(s) expected: {listed:?}", secure.len(), sps.len()));
    }
    for l in &other {
        if !(id_of(l) == Some(0) && l.contains("uuid=00000000-0000-0000-0000-000000000000")) {
            fails.push(format!("unexpected FF-A device (neither an SP nor the driver's own host device): {l}"));
        }
    }
    for (name, uuid) in sps {
        if !secure.iter().any(|l| l.contains(uuid.as_str())) {
            fails.push(format!("no FF-A device with {name}'s UUID {uuid}"));
        }
    }
    fails
}

/// (SP name, UUID string) of every SP in tfa-integration/sp_layout.json, read
/// from its partition manifest's `uuid` cells (each cell is one byte-swapped
/// 4-byte group of the RFC 4122 string, the Hafnium/TF-A convention).
pub fn sp_uuids() -> Vec<(String, String)> {
    let integ = util::repo_root().join("tfa-integration");
    let json = std::fs::read_to_string(integ.join("sp_layout.json")).unwrap_or_default();
    let mut out = Vec::new();
    for e in layout::entries(&json) {
        let dts = std::fs::read_to_string(integ.join("sp").join(&e.pm)).unwrap_or_default();
        if let Some(cells) = layout::dts_cells(&dts, "uuid").filter(|c| c.len() == 4) {
            let b: Vec<u8> = cells.iter().flat_map(|c| c.to_le_bytes()).collect();
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            out.push((e.name, format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])));
        }
    }
    out
}

pub fn tests() -> Vec<IntegrationTest> {
    let mut v = vec![IntegrationTest {
        name: "linux_ffa_driver",
        boot: linux_ffa_boot,
        timeout: Duration::from_secs(240),
        expects: linux_ffa_expects,
        extra: Some(ffa_devices_match_layout),
        forbid: FORBID_LINUX_FFA,
    }];
    v.extend(ffa_payload_tests());
    v.extend(signed_sps_tests());
    v
}

// Issue H: signed SP packages.  `cargo xtask build` signs our SPs with the
// test key and trusts it in the SPMC manifest; the variants below edit one
// package in a copy of the Linux-as-BL33 build's FIP (build::bios_variant).

/// The SP whose package is tampered with, and the one signed with an unknown key.
const TAMPERED_SP: &str = "isolation";
const UNKNOWN_KEY_SP: &str = "irq";
/// The SP whose package is left unsigned.
const UNSIGNED_SP: &str = "echo";

fn signed_sps_tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest {
            name: "spmc_signed_sps",
            boot: |o| signed_sps_boot(o, "signed-sps", o.linux_bios.clone()),
            timeout: Duration::from_secs(240),
            expects: all_signed_expects,
            extra: Some(ffa_devices_match_layout),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "spmc_signed_sps_tampered",
            boot: |o| {
                let mut pkg = signed_package(o, TAMPERED_SP)?;
                // One byte of the image (sptool's default image offset 0x4000).
                pkg[0x4000 + 0x40] ^= 0x01;
                signed_sps_boot(o, "signed-sps-tampered", package_variant(o, "signed-sps-tampered", TAMPERED_SP, &pkg)?)
            },
            timeout: Duration::from_secs(240),
            expects: || refused_expects(TAMPERED_SP, "signature: does not verify (package tampered or wrongly signed)"),
            extra: Some(|out| only_sp_refused(out, TAMPERED_SP)),
            forbid: FORBID_REFUSED,
        },
        IntegrationTest {
            name: "spmc_signed_sps_unsigned",
            boot: |o| {
                let mut pkg = signed_package(o, UNSIGNED_SP)?;
                // Back to what sptool wrote: the header page's padding all zero.
                pkg[sign::BLOCK_OFFSET..sign::BLOCK_OFFSET + sign::BLOCK_SIZE].fill(0);
                signed_sps_boot(o, "signed-sps-unsigned", package_variant(o, "signed-sps-unsigned", UNSIGNED_SP, &pkg)?)
            },
            timeout: Duration::from_secs(240),
            expects: || refused_expects(UNSIGNED_SP, "signature: package not signed (no signature block)"),
            extra: Some(|out| only_sp_refused(out, UNSIGNED_SP)),
            forbid: FORBID_REFUSED,
        },
        IntegrationTest {
            name: "spmc_signed_sps_unknown_key",
            boot: |o| {
                let mut pkg = signed_package(o, UNKNOWN_KEY_SP)?;
                // A key of the test's own, not the one the manifest trusts.
                let unknown = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([0x5a; 32]));
                sign::sign_package(&mut pkg, &unknown)?;
                signed_sps_boot(o, "signed-sps-unknown-key", package_variant(o, "signed-sps-unknown-key", UNKNOWN_KEY_SP, &pkg)?)
            },
            timeout: Duration::from_secs(240),
            expects: || refused_expects(UNKNOWN_KEY_SP, "signature: signed with a key the SPMC manifest does not trust"),
            extra: Some(|out| only_sp_refused(out, UNKNOWN_KEY_SP)),
            forbid: FORBID_REFUSED,
        },
    ]
}

/// Linux as BL33 over `bios`, listing its FF-A devices.
fn signed_sps_boot(o: &Outputs, name: &str, bios: std::path::PathBuf) -> XResult<Boot> {
    let initrd = guest::initramfs(
        &o.paths,
        &InitramfsSpec { name: "linux-ffa", modules: &["ffa-core", "ffa-module"], script: Some(FFA_SCRIPT), files: &[] },
    )?;
    bl33_boot(&bios, &guest::kernel_image(&o.paths)?, Some(&initrd), name, "console=ttyAMA0 earlycon rdinit=/init")
}

/// The signed package of SP `sp` as `cargo xtask build` left it.
fn signed_package(o: &Outputs, sp: &str) -> XResult<Vec<u8>> {
    let f = o.linux_bios.parent().ok_or("bios without a directory")?.join(format!("{sp}.pkg"));
    std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))
}

/// The Linux-as-BL33 bios with SP `sp`'s package replaced by `pkg`.
fn package_variant(o: &Outputs, name: &str, sp: &str, pkg: &[u8]) -> XResult<std::path::PathBuf> {
    let uuids = sp_uuids();
    let uuid = &uuids.iter().find(|(n, _)| n == sp).ok_or_else(|| format!("{sp}: not in sp_layout.json"))?.1;
    build::bios_variant(&o.linux_bios, name, &[build::FipEdit::SpPackage { uuid, pkg }])
}

fn signature_ok(sp: &str) -> Expect {
    Expect { what: "spmc checked the SP's signature", all_of: vec![format!("[spmc] SP {sp}: signature ok (ed25519 key ")] }
}

fn all_signed_expects() -> Vec<Expect> {
    let mut v: Vec<Expect> = sp_uuids().iter().map(|(n, _)| signature_ok(n)).collect();
    v.push(expect("spmc booted with signature checks on", &["[spmc] cold boot: ", "SP signatures checked"]));
    v.extend(linux_ffa_expects());
    v
}

fn refused_expects(sp: &str, why: &str) -> Vec<Expect> {
    let mut v: Vec<Expect> = sp_uuids().iter().filter(|(n, _)| n != sp).map(|(n, _)| signature_ok(n)).collect();
    v.push(Expect { what: "spmc refused the SP, saying why", all_of: vec![format!("[spmc] ERROR: SP {sp} at 0x"), format!("refused: {why}")] });
    v.push(expect("spmc finished init", &["[spmc] init done"]));
    v.extend(linux_ffa_expects());
    v
}

/// spmc's refusal of `sp` is the only ERROR line; Linux lists every SP but it.
fn only_sp_refused(output: &str, sp: &str) -> Vec<String> {
    let mut fails = Vec::new();
    for l in output.lines().filter(|l| l.contains("ERROR:") && !l.contains("QEMU System Power off")) {
        if !l.contains(&format!("[spmc] ERROR: SP {sp} at 0x")) {
            fails.push(format!("unexpected error line: {l}"));
        }
    }
    if output.lines().any(|l| l.contains(&format!("[spmc] SP {sp}: signature ok"))) {
        fails.push(format!("spmc accepted {sp}'s signature"));
    }
    if output.lines().any(|l| l.starts_with(&format!("[{sp}] "))) {
        fails.push(format!("the refused SP {sp} ran"));
    }
    let good: Vec<(String, String)> = sp_uuids().into_iter().filter(|(n, _)| n != sp).collect();
    fails.extend(ffa_devices_are(output, &good));
    fails
}

/// A refused SP is an ERROR line of spmc's; TF-A's must still not appear.
const FORBID_REFUSED: &[&str] = &["PANIC", "panicked", "Unhandled Exception", "BL31: Error", "Kernel panic"];

/// The ci/ffa-payload tests (BL33 = the FF-A test payload).
fn ffa_payload_tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest {
            name: "spmc_direct_messaging",
            boot: ffa_payload_boot,
            timeout: Duration::from_secs(180),
            expects: direct_messaging_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "spmc_interrupts",
            boot: interrupts_boot,
            timeout: Duration::from_secs(180),
            expects: interrupts_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "spmc_concurrency",
            boot: concurrency_boot,
            timeout: Duration::from_secs(180),
            expects: concurrency_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "spmc_notifications",
            boot: notifications_boot,
            timeout: Duration::from_secs(180),
            expects: notifications_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "spmc_indirect_messaging",
            boot: indirect_messaging_boot,
            timeout: Duration::from_secs(180),
            expects: indirect_messaging_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "spmc_cpu_on_twice",
            boot: cpu_on_twice_boot,
            timeout: Duration::from_secs(240),
            expects: cpu_on_twice_expects,
            extra: Some(cpu_on_twice_extra),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "spmc_version_locked",
            boot: version_locked_boot,
            timeout: Duration::from_secs(180),
            expects: version_locked_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "spmc_hafnium_manifests",
            boot: hafnium_manifests_boot,
            timeout: Duration::from_secs(180),
            expects: hafnium_manifests_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "spmc_spmd_lsp",
            boot: spmd_lsp_boot,
            timeout: Duration::from_secs(180),
            expects: spmd_lsp_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "spmc_sp_sizing",
            boot: sp_sizing_boot,
            timeout: Duration::from_secs(180),
            expects: sp_sizing_expects,
            extra: Some(only_sizing_errors),
            forbid: FORBID_ISOLATION,
        },
        IntegrationTest {
            name: "spmc_memory_sharing",
            boot: memory_boot,
            timeout: Duration::from_secs(180),
            expects: memory_expects,
            // Its last case makes the isolation SP fault on purpose.
            extra: Some(only_isolation_errors),
            forbid: FORBID_ISOLATION,
        },
        IntegrationTest {
            name: "sp_fpsimd_off",
            boot: |o| ffa_mode_boot(o, "sp-fpsimd-off", ""),
            timeout: Duration::from_secs(180),
            expects: fpsimd_off_expects,
            extra: Some(no_failed_check),
            forbid: FORBID_ALWAYS,
        },
        IntegrationTest {
            name: "sp_abort",
            boot: |o| ffa_mode_boot(o, "sp-abort", "quadrant.sp_abort"),
            timeout: Duration::from_secs(180),
            expects: sp_abort_expects,
            extra: Some(sp_abort_extra),
            forbid: FORBID_ISOLATION,
        },
        IntegrationTest {
            name: "spmc_isolation",
            boot: isolation_sp_boot,
            timeout: Duration::from_secs(180),
            expects: isolation_expects,
            extra: Some(only_isolation_errors),
            forbid: FORBID_ISOLATION,
        },
        IntegrationTest {
            name: "spmc_isolation_spmc",
            boot: isolation_spmc_boot,
            timeout: Duration::from_secs(180),
            expects: isolation_expects,
            extra: Some(only_isolation_errors),
            forbid: FORBID_ISOLATION,
        },
    ]
}

/// Issue C's tests that do not pass yet; `cargo xtask test` runs them only
/// when named exactly in FILTER.
pub fn pending() -> Vec<IntegrationTest> {
    vec![]
}

/// ci/ffa-payload in interrupts mode.
fn interrupts_boot(o: &Outputs) -> XResult<Boot> {
    let dtb = util::out_dir().join("spmc-interrupts.dtb");
    qemu::dtb_with_bootargs(&o.ffa_bios, "quadrant.interrupts", &dtb)?;
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: Some(dtb) })
}

fn interrupts_expects() -> Vec<Expect> {
    vec![
        expect("signalled (mp): FFA_INTERRUPT, then FFA_RUN finishes the work", &["[ffa-payload] check ns_interrupt_signalled: ok"]),
        expect("spmc preempted mp", &["[spmc] NS interrupt: SP 0x8002 ctx 0 preempted, FFA_INTERRUPT to NS"]),
        expect("managed exit (irq): early direct response", &["[ffa-payload] check ns_interrupt_managed_exit: ok"]),
        expect("spmc gave irq a managed exit", &["[spmc] NS interrupt: managed exit for SP 0x8004 ctx 0"]),
        expect("irq still answers", &["[ffa-payload] check irq_alive_after_managed_exit: ok"]),
        expect("queued (isolation): work undisturbed, interrupt pending after", &["[ffa-payload] check ns_interrupt_queued: ok"]),
        expect("the SP's timer while it waits (through the SPMD)", &["[ffa-payload] check secure_timer_while_waiting: ok"]),
        expect("irq got its virtual timer interrupt", &["[irq] virtual interrupt 3"]),
        expect("the SP's timer while it runs", &["[ffa-payload] check secure_timer_while_running: ok"]),
        expect("messaging still works", &["[ffa-payload] check interrupts_then_messaging: ok"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]
}

/// ci/ffa-payload with `bootargs` (none: the direct messaging checks).
fn ffa_mode_boot(o: &Outputs, name: &str, bootargs: &str) -> XResult<Boot> {
    let dtb = util::out_dir().join(format!("{name}.dtb"));
    qemu::dtb_with_bootargs(&o.ffa_bios, bootargs, &dtb)?;
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: Some(dtb) })
}

/// Issue M: spmc starts every SP with FP/SIMD trapped, as Hafnium does; our
/// SPs enable it themselves (sps/runtime entry) and all answer.
fn fpsimd_off_expects() -> Vec<Expect> {
    let mut v: Vec<Expect> = ["echo", "mp", "isolation", "irq"]
        .iter()
        .map(|n| expect("started with FP/SIMD trapped", &[&format!("[spmc] SP {n} "), "starts with FP/SIMD trapped"]))
        .collect();
    v.extend([
        expect("echo answers (SIMD used in its request decoding)", &["[ffa-payload] check core0_echo_direct_req: ok"]),
        expect("mp answers on every core", &["[ffa-payload] check core3_mp_direct_req: ok"]),
        expect("SP to SP", &["[ffa-payload] check sp_to_sp_direct_req: ok"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]);
    v
}

/// Issue M: an SP's fatal error ends it the FF-A way.
fn sp_abort_expects() -> Vec<Expect> {
    vec![
        expect("isolation answers first", &["[ffa-payload] check sp_abort_alive_before: ok"]),
        expect("its fatal error, reported", &["[isolation] fatal: CMD_FATAL"]),
        expect("spmc took its FFA_ERROR", &["[spmc] ERROR: SP 0x8003 reported error"]),
        expect("the caller got ABORTED", &["[ffa-payload] check sp_abort_caller_gets_aborted: ok"]),
        expect("and later callers too", &["[ffa-payload] check sp_abort_stays_aborted: ok"]),
        expect("echo still answers", &["[ffa-payload] check sp_abort_others_answer: ok"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]
}

/// No Stage-2 fault: the SP gave up by FFA_ERROR, not by touching memory.
fn sp_abort_extra(output: &str) -> Vec<String> {
    let mut fails = no_failed_check(output);
    if let Some(l) = output.lines().find(|l| l.contains("Stage-2") && l.contains("abort")) {
        fails.push(format!("a fault, not FFA_ERROR: {l}"));
    }
    fails
}

/// ci/ffa-payload in memory mode (issue D1: FFA_MEM_* with sps/mp).
fn memory_boot(o: &Outputs) -> XResult<Boot> {
    let dtb = util::out_dir().join("spmc-memory.dtb");
    qemu::dtb_with_bootargs(&o.ffa_bios, "quadrant.memory", &dtb)?;
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: Some(dtb) })
}

fn memory_expects() -> Vec<Expect> {
    [
        ("share RW: mp reads ours, writes its own, relinquishes; we reclaim", "memory_share_retrieve_relinquish_reclaim"),
        ("lend read-only", "memory_lend_read_only"),
        ("retrieve wider than granted: DENIED, lend intact", "memory_retrieve_wider_than_granted_denied"),
        ("reclaim while borrowed: DENIED", "memory_reclaim_while_borrowed_denied"),
        ("reclaim twice: INVALID_PARAMETERS", "memory_reclaim_twice_invalid"),
        ("Secure memory from NS: DENIED", "memory_share_secure_denied"),
        ("descriptor outside TX: NOT_SUPPORTED", "memory_share_buffer_not_supported"),
        ("five receivers: NO_MEMORY", "memory_share_too_many_receivers"),
        ("state unchanged after the errors", "memory_state_unchanged_after_errors"),
        ("lend with the zero flag: the borrower reads zeros", "memory_lend_zeroed"),
        ("reclaim with the zero flag: the lender gets zeros", "memory_reclaim_zeroed"),
        ("share with the zero flag: INVALID_PARAMETERS", "memory_share_zero_invalid"),
        ("retrieved twice: reclaim waits for both relinquishes", "memory_retrieve_twice"),
        ("hypervisor retrieve request: the whole descriptor back", "memory_hypervisor_retrieve"),
        ("a retrieve while the RX buffer is full: BUSY", "memory_retrieve_rx_full_busy"),
        ("1,200 constituents in five fragments, retrieved in fragments", "memory_fragmented_1200_constituents"),
        ("two borrowers: reclaim waits for both", "memory_two_borrowers"),
        ("SP to SP: mp shares its own page with isolation", "memory_sp_to_sp_share"),
        ("SP to SP donation: the handle is gone once retrieved", "memory_sp_to_sp_donate"),
        ("after relinquish the borrower faults, the lender still has it", "memory_borrower_faults_after_relinquish"),
        ("share to an aborted SP: ABORTED, nothing left behind", "memory_share_to_aborted_sp"),
    ]
    .into_iter()
    .map(|(what, name)| expect(what, &[&format!("[ffa-payload] check {name}: ok")]))
    .chain([
        expect("the borrower's late access is a Stage-2 fault", &["[spmc] ERROR: SP isolation (0x8003) ctx 0: Stage-2 data abort at IPA"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ])
    .collect()
}

/// ci/ffa-payload in concurrency mode (issue R: spmc locks per context).
fn concurrency_boot(o: &Outputs) -> XResult<Boot> {
    let dtb = util::out_dir().join("spmc-concurrency.dtb");
    qemu::dtb_with_bootargs(&o.ffa_bios, "quadrant.concurrency", &dtb)?;
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: Some(dtb) })
}

/// Judged by the order of completions the payload saw, never by time.
fn concurrency_expects() -> Vec<Expect> {
    vec![
        expect("core 1 up for the long request", &["[ffa-payload] check core1_cpu_on: ok"]),
        expect("echo answered on core 0", &["[ffa-payload] check concurrency_echo_answered: ok"]),
        expect("mp finished its long request on core 1", &["[ffa-payload] check concurrency_mp_answered: ok"]),
        expect("echo on core 0 completed while mp was busy on core 1", &["[ffa-payload] check concurrency_echo_completed_first: ok"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]
}

/// ci/ffa-payload in `mode` (its /chosen/bootargs word).
fn ffa_payload_mode(o: &Outputs, name: &str, mode: &str) -> XResult<Boot> {
    let dtb = util::out_dir().join(format!("{name}.dtb"));
    qemu::dtb_with_bootargs(&o.ffa_bios, mode, &dtb)?;
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: Some(dtb) })
}

/// Issue 11: each secondary core powered off and on 3 times (spmc took the
/// core index from a stale x4 on warm boots).
fn cpu_on_twice_boot(o: &Outputs) -> XResult<Boot> {
    ffa_payload_mode(o, "spmc-cpu-on-twice", "quadrant.cpu_on_twice")
}

fn cpu_on_twice_expects() -> Vec<Expect> {
    let mut v = Vec::new();
    // Names from ci/ffa-payload/src/checks.rs (`run_cpu_on_twice`, 3 rounds).
    const ROUNDS: [&str; 3] = ["1", "2", "3"];
    const CORES: [&str; 3] = ["1", "2", "3"];
    for r in ROUNDS {
        for c in CORES {
            v.push(Expect { what: "a secondary core powered on again did its round trips", all_of: vec![format!("[ffa-payload] check cpu_on_round{r}_core{c}: ok")] });
        }
        v.push(Expect { what: "core 0 still reaches mp's context 0", all_of: vec![format!("[ffa-payload] check cpu_on_round{r}_core0_mp_context: ok")] });
    }
    for c in CORES {
        v.push(Expect { what: "mp's context answers on its own core", all_of: vec![format!("[ffa-payload] check core{c}_mp_direct_req: ok")] });
        v.push(Expect { what: "the last power-on of each core", all_of: vec![format!("[ffa-payload] check cpu_on_final_core{c}: ok")] });
    }
    v.extend([
        expect("core 0 after all the power cycles", &["[ffa-payload] check cpu_on_round4_core0_mp_context: ok"]),
        expect("SP to SP after all the power cycles", &["[ffa-payload] check cpu_on_twice_sp_to_sp: ok"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]);
    v
}

/// A core's context restarted on another core shows as a FAIL line (mp
/// answers with the wrong context index); count the warm boots too.
fn cpu_on_twice_extra(output: &str) -> Vec<String> {
    let mut fails = no_failed_check(output);
    for c in 1..4 {
        let ready = format!("[spmc] SP mp (0x8002): context {c} ready on cpu {c}");
        let n = output.lines().filter(|l| l.contains(&ready)).count();
        // 3 rounds + the final power-on.
        if n != 4 {
            fails.push(format!("mp context {c} was started {n} time(s) on cpu {c}, want 4"));
        }
    }
    for l in output.lines().filter(|l| l.contains("[spmc] SP mp (0x8002): context ") && l.contains(" ready on cpu ")) {
        let mut w = l.split("context ").nth(1).unwrap_or("").split(" ready on cpu ");
        let (ctx, cpu) = (w.next().unwrap_or("").trim(), w.next().unwrap_or("").trim());
        if ctx != cpu {
            fails.push(format!("a context started on another core: {l}"));
        }
    }
    fails
}

/// Issue 11: FFA_VERSION cannot change the Normal world's version once it made other calls.
fn version_locked_boot(o: &Outputs) -> XResult<Boot> {
    ffa_payload_mode(o, "spmc-version-locked", "quadrant.version_locked")
}

fn version_locked_expects() -> Vec<Expect> {
    vec![
        expect("FFA_VERSION may be asked again before other calls", &["[ffa-payload] check version_renegotiated_before_other_calls: ok"]),
        expect("REQ2 from a v1.1 caller is NOT_SUPPORTED", &["[ffa-payload] check version_v1_1_req2_refused: ok"]),
        expect("1.2 after other calls is NOT_SUPPORTED", &["[ffa-payload] check version_locked_refuses_1_2: ok"]),
        expect("1.0 after other calls is NOT_SUPPORTED", &["[ffa-payload] check version_locked_refuses_1_0: ok"]),
        expect("the same version again is fine", &["[ffa-payload] check version_locked_same_again: ok"]),
        expect("spmc's idea of the version did not change", &["[ffa-payload] check version_locked_unchanged: ok"]),
        expect("messaging still works", &["[ffa-payload] check version_locked_messaging: ok"]),
        expect("spmc logged the refusal", &["[spmc] FFA_VERSION from NS: version fixed at 0x10001 after other calls"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]
}

/// Issue 11: a layout of our own (as `cargo xtask run --sp-layout` takes
/// one, see `run_sp_layout`): echo and isolation with the manifests in the
/// forms Hafnium boots (tfa-integration/sp/{echo,isolation}-hafnium.dts).
fn hafnium_manifests_layout() -> XResult<std::path::PathBuf> {
    let dir = util::out_dir().join("hafnium-manifests-layout");
    util::mkdirs(&dir)?;
    let integ = util::repo_root().join("tfa-integration/sp");
    let images = crate::build::images_dir();
    let copy = |from: &Path, to: &str| -> XResult<()> {
        let data = std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
        if std::fs::read(dir.join(to)).ok().as_deref() != Some(data.as_slice()) {
            std::fs::write(dir.join(to), data).map_err(|e| format!("{to}: {e}"))?;
        }
        Ok(())
    };
    copy(&integ.join("echo-hafnium.dts"), "echo.dts")?;
    copy(&integ.join("isolation-hafnium.dts"), "isolation.dts")?;
    copy(&images.join("echo.bin"), "echo.bin")?;
    copy(&images.join("isolation.bin"), "isolation.bin")?;
    let json = "{\n\t\"echo\": {\"image\": \"echo.bin\", \"pm\": \"echo.dts\", \"owner\": \"SiP\"},\n\t\"isolation\": {\"image\": \"isolation.bin\", \"pm\": \"isolation.dts\", \"owner\": \"SiP\"}\n}\n";
    let file = dir.join("sp_layout.json");
    if std::fs::read_to_string(&file).ok().as_deref() != Some(json) {
        std::fs::write(&file, json).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(file)
}

/// Issue 11: echo (1 MiB, no size) and isolation with `"size": "0x200000"`,
/// which becomes its SPMC manifest node's `mem_size`.
fn sp_sizing_layout() -> XResult<std::path::PathBuf> {
    let dir = util::out_dir().join("sp-sizing-layout");
    util::mkdirs(&dir)?;
    let integ = util::repo_root().join("tfa-integration/sp");
    let images = crate::build::images_dir();
    for (from, to) in [(integ.join("echo.dts"), "echo.dts"), (integ.join("isolation.dts"), "isolation.dts"), (images.join("echo.bin"), "echo.bin"), (images.join("isolation.bin"), "isolation.bin")] {
        let data = std::fs::read(&from).map_err(|e| format!("{}: {e}", from.display()))?;
        if std::fs::read(dir.join(to)).ok().as_deref() != Some(data.as_slice()) {
            std::fs::write(dir.join(to), data).map_err(|e| format!("{to}: {e}"))?;
        }
    }
    let json = "{\n\t\"echo\": {\"image\": \"echo.bin\", \"pm\": \"echo.dts\", \"owner\": \"SiP\"},\n\t\"isolation\": {\"image\": \"isolation.bin\", \"pm\": \"isolation.dts\", \"owner\": \"SiP\", \"size\": \"0x200000\"}\n}\n";
    let file = dir.join("sp_layout.json");
    if std::fs::read_to_string(&file).ok().as_deref() != Some(json) {
        std::fs::write(&file, json).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(file)
}

fn sp_sizing_boot(o: &Outputs) -> XResult<Boot> {
    let sps = layout::SpSet::User(sp_sizing_layout()?);
    let bios = crate::build::build_tfa(&o.paths, crate::build::Bl33::FfaPayload, &sps)?;
    let dtb = util::out_dir().join("spmc-sp-sizing.dtb");
    qemu::dtb_with_bootargs(&bios, "quadrant.sp_sizing", &dtb)?;
    Ok(Boot::Tfa { bios, dtb: Some(dtb) })
}

fn sp_sizing_expects() -> Vec<Expect> {
    vec![
        expect("spmc loaded both partitions", &["[spmc] manifest: ", "2 partition(s)"]),
        expect("isolation's second MiB is mapped", &["[ffa-payload] check sp_sizing_second_mib_mapped: ok"]),
        expect("echo keeps its 1 MiB", &["[ffa-payload] check sp_sizing_echo: ok"]),
        expect("past its mem_size it faults", &["[ffa-payload] check sp_sizing_past_its_memory_faults: ok"]),
        expect("spmc logged that fault", &["[spmc] ERROR: SP isolation (0x8002) ctx 0: Stage-2 data abort at IPA 0xe700000"]),
        expect("echo after it", &["[ffa-payload] check sp_sizing_echo_after: ok"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]
}

/// The only ERROR lines allowed: spmc's about isolation's deliberate fault.
fn only_sizing_errors(output: &str) -> Vec<String> {
    let mut fails = no_failed_check(output);
    for l in output.lines().filter(|l| l.contains("ERROR:") && !l.contains("QEMU System Power off")) {
        if !l.contains("[spmc] ERROR: SP isolation (0x8002)") {
            fails.push(format!("unexpected error line: {l}"));
        }
    }
    fails
}

fn hafnium_manifests_boot(o: &Outputs) -> XResult<Boot> {
    let sps = layout::SpSet::User(hafnium_manifests_layout()?);
    let bios = crate::build::build_tfa(&o.paths, crate::build::Bl33::FfaPayload, &sps)?;
    let dtb = util::out_dir().join("spmc-hafnium-manifests.dtb");
    qemu::dtb_with_bootargs(&bios, "quadrant.hafnium_manifests", &dtb)?;
    Ok(Boot::Tfa { bios, dtb: Some(dtb) })
}

fn hafnium_manifests_expects() -> Vec<Expect> {
    vec![
        expect("spmc loaded both partitions", &["[spmc] manifest: ", "2 partition(s)"]),
        expect("the unknown property is a warning", &["[spmc] ", "`stream-endpoint-ids` ignored"]),
        expect("echo's id comes from the SPMC manifest", &["[spmc] ", "SP echo: no usable `id`", "id 0x8001"]),
        expect("isolation's id without bit 15 is replaced", &["[spmc] ", "SP isolation: manifest `id` 0x3 ignored", "id 0x8002"]),
        expect("gp-register-num without boot-info boots", &["[spmc] ", "SP echo: gp-register-num without a boot-info node"]),
        expect("echo started", &["[echo] ready"]),
        expect("both listed with Hafnium's ids", &["[ffa-payload] check hafnium_manifests_ids: ok"]),
        expect("notification-support sets properties bit 3", &["[ffa-payload] check hafnium_manifests_notification_bit: ok"]),
        expect("echo answers", &["[ffa-payload] check hafnium_manifests_echo_answers: ok"]),
        expect("echo answers REQ2", &["[ffa-payload] check hafnium_manifests_echo_req2: ok"]),
        expect("isolation answers", &["[ffa-payload] check hafnium_manifests_isolation_answers: ok"]),
        expect("the manifests' own ids are not endpoints", &["[ffa-payload] check hafnium_manifests_no_id_3: ok"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]
}

/// Issue 11: TF-A with ENABLE_SPMD_LP=1 (and our qemu SPMD logical partition,
/// tfa-integration/patches/0004) under the FF-A payload.
fn spmd_lsp_boot(o: &Outputs) -> XResult<Boot> {
    let bios = crate::build::build_tfa(&o.paths, crate::build::Bl33::FfaPayloadLsp, &layout::SpSet::Ours)?;
    let dtb = util::out_dir().join("spmc-spmd-lsp.dtb");
    qemu::dtb_with_bootargs(&bios, "quadrant.spmd_lsp", &dtb)?;
    Ok(Boot::Tfa { bios, dtb: Some(dtb) })
}

fn spmd_lsp_expects() -> Vec<Expect> {
    vec![
        expect("TF-A started its logical partition", &["qemu SPMD logical partition 0xffc0: initialised"]),
        expect("spmc learnt it from the SPMD", &["[spmc] SPMD logical partition 0xffc0: uuid 6e1b4a5f-839e-2d4c-367b-f0a115c4d892, properties 0x102"]),
        expect("PARTITION_INFO_GET lists it", &["[ffa-payload] check spmd_lsp_partition_info_get: ok"]),
        expect("PARTITION_INFO_GET_REGS lists it", &["[ffa-payload] check spmd_lsp_partition_info_get_regs: ok"]),
        expect("found by its UUID", &["[ffa-payload] check spmd_lsp_by_uuid: ok"]),
        expect("messaging still works", &["[ffa-payload] check spmd_lsp_messaging: ok"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]
}

/// ci/ffa-payload in notifications mode (issue 11 item 2).
fn notifications_boot(o: &Outputs) -> XResult<Boot> {
    let dtb = util::out_dir().join("spmc-notifications.dtb");
    qemu::dtb_with_bootargs(&o.ffa_bios, "quadrant.notifications", &dtb)?;
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: Some(dtb) })
}

/// Checks of ci/ffa-payload/src/notif.rs `run_notifications`: every
/// notification ABI's success and error paths, the SRI taken by the payload.
const NOTIFICATION_CHECKS: &[(&str, &str)] = &[
    ("FFA_FEATURES(SRI) = SGI 8 for NS", "features_sri"),
    ("NPI and MEI are not NS features", "features_npi_mei_not_for_ns"),
    ("an SP gets NPI 5 and MEI 4, not the SRI", "sp_features_npi_mei"),
    ("DESTROY without a bitmap: DENIED", "err_bitmap_destroy_none"),
    ("CREATE for a secure id: INVALID_PARAMETERS", "err_bitmap_create_secure_id"),
    ("CREATE for a VM twice: DENIED", "err_bitmap_create_vm_twice"),
    ("CREATE and DESTROY for a VM (id 3)", "bitmap_create_destroy_vm"),
    ("CREATE for too many vCPUs: INVALID_PARAMETERS", "err_bitmap_create_vcpus"),
    ("BITMAP_CREATE", "bitmap_create"),
    ("CREATE twice: DENIED", "err_bitmap_create_twice"),
    ("CREATE from an SP: NOT_SUPPORTED", "err_bitmap_create_from_sp"),
    ("the SP binds global and per-vCPU", "sp_bind"),
    ("BIND of a bound bit: DENIED", "err_bind_bound"),
    ("BIND reserved flags: INVALID_PARAMETERS", "err_bind_reserved_flags"),
    ("BIND unknown sender: INVALID_PARAMETERS", "err_bind_no_such_sender"),
    ("BIND for another receiver: INVALID_PARAMETERS", "err_bind_other_receiver"),
    ("UNBIND of an unbound bit: DENIED", "err_unbind_not_bound"),
    ("SET of an unbound bit: DENIED", "err_set_not_bound"),
    ("SET with another sender id: INVALID_PARAMETERS", "err_set_wrong_sender"),
    ("SET global bit per vCPU: INVALID_PARAMETERS", "err_set_global_as_per_vcpu"),
    ("SET to a missing vCPU: INVALID_PARAMETERS", "err_set_no_such_vcpu"),
    ("SET reserved flags: INVALID_PARAMETERS", "err_set_reserved_flags"),
    ("SET to an SP without notifications: INVALID_PARAMETERS", "err_set_no_notification_support"),
    ("SET global, SRI taken by NS", "set_global_sri"),
    ("INFO_GET lists mp once, then NO_DATA", "info_get_global"),
    ("INFO_GET from an SP: NOT_SUPPORTED", "err_info_get_from_sp"),
    ("GET of another vCPU: INVALID_PARAMETERS", "err_get_other_vcpu"),
    ("GET for another receiver: INVALID_PARAMETERS", "err_get_other_receiver"),
    ("the SP gets the global notification once", "sp_get_global"),
    ("per-vCPU SET, SRI, INFO_GET vCPU list, GET", "per_vcpu_set_info_get"),
    ("NS binding a VM sender: INVALID_PARAMETERS", "err_ns_bind_vm_sender"),
    ("the SP sets NS's notification, SRI", "sp_set_sri"),
    ("DESTROY with one pending: DENIED", "err_destroy_pending"),
    ("UNBIND of a pending one: DENIED", "err_unbind_pending"),
    ("GET on a missing vCPU: INVALID_PARAMETERS", "err_get_vcpu_out_of_range"),
    ("INFO_GET lists endpoint 0; NS GET", "ns_get"),
    ("SRI, INFO_GET, FFA_RUN: mp takes its notification", "run_after_sri"),
    ("FFA_RUN gave mp the Notification Pending Interrupt", "npi_with_run"),
    ("FFA_RUN with nothing pending: DENIED", "err_run_nothing_pending"),
    ("UNBIND both ways", "unbind"),
    ("SET after UNBIND: DENIED", "err_set_after_unbind"),
    ("BITMAP_DESTROY", "bitmap_destroy"),
    ("BIND after DESTROY: DENIED", "err_bind_after_destroy"),
    ("messaging still works", "notifications_then_messaging"),
];

fn notifications_expects() -> Vec<Expect> {
    checks_expects(NOTIFICATION_CHECKS)
}

/// ci/ffa-payload in indirect messaging mode (issue 11 item 3).
fn indirect_messaging_boot(o: &Outputs) -> XResult<Boot> {
    let dtb = util::out_dir().join("spmc-indirect.dtb");
    qemu::dtb_with_bootargs(&o.ffa_bios, "quadrant.indirect", &dtb)?;
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: Some(dtb) })
}

/// Checks of ci/ffa-payload/src/notif.rs `run_indirect_messaging`.
const INDIRECT_MESSAGING_CHECKS: &[(&str, &str)] = &[
    ("SEND2 without a TX buffer: DENIED", "err_send2_no_tx_buffer"),
    ("BITMAP_CREATE", "bitmap_create"),
    ("SEND2 to an SP without RX: BUSY", "err_send2_receiver_without_rx"),
    ("the SP maps its RX/TX", "sp_rxtx_map"),
    ("SEND2 reserved flags: INVALID_PARAMETERS", "err_send2_reserved_flags"),
    ("SEND2 with a VM sender: INVALID_PARAMETERS", "err_send2_vm_sender"),
    ("header with another sender: INVALID_PARAMETERS", "err_send2_wrong_sender"),
    ("header to a missing endpoint: INVALID_PARAMETERS", "err_send2_no_such_receiver"),
    ("header to itself: INVALID_PARAMETERS", "err_send2_to_itself"),
    ("to an SP without indirect messaging: DENIED", "err_send2_no_indirect_messaging"),
    ("payload past the buffer: INVALID_PARAMETERS", "err_send2_too_big"),
    ("payload offset inside the header: INVALID_PARAMETERS", "err_send2_offset_in_header"),
    ("SEND2 to mp, SRI taken by NS", "send2_to_sp_sri"),
    ("INFO_GET lists mp", "send2_info_get"),
    ("receiver RX full: BUSY", "err_send2_receiver_rx_full"),
    ("mp sees RX buffer full (SPM framework notification)", "sp_rx_buffer_full_notification"),
    ("mp reads the message and releases RX", "sp_reads_message"),
    ("SEND2 again after the release", "send2_after_release"),
    ("mp sends to NS: header, payload, SRI", "send2_from_sp"),
    ("NS RX full: BUSY for mp", "err_send2_from_sp_ns_rx_full"),
    ("NS sees RX buffer full", "ns_rx_buffer_full_notification"),
    ("RX_ACQUIRE while NS owns RX: BUSY", "err_rx_acquire_while_full"),
    ("RX ownership: release, acquire, release", "rx_ownership"),
    ("RX_RELEASE not owned: DENIED", "err_rx_release_not_owned"),
    ("messaging still works", "indirect_then_messaging"),
];

fn indirect_messaging_expects() -> Vec<Expect> {
    checks_expects(INDIRECT_MESSAGING_CHECKS)
}

/// One expect per named payload check, and none failed.
fn checks_expects(checks: &[(&'static str, &'static str)]) -> Vec<Expect> {
    let mut v: Vec<Expect> = checks.iter().map(|(what, name)| Expect { what, all_of: vec![format!("[ffa-payload] check {name}: ok")] }).collect();
    v.push(expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]));
    v
}

/// ci/ffa-payload as BL33 (checks mode: no bootargs).
fn ffa_payload_boot(o: &Outputs) -> XResult<Boot> {
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: None })
}

/// ci/ffa-payload in isolation mode: the isolation SP reads `target`.
fn ffa_payload_isolation(o: &Outputs, name: &str, target: u64) -> XResult<Boot> {
    let dtb = util::out_dir().join(format!("{name}.dtb"));
    qemu::dtb_with_bootargs(&o.ffa_bios, &format!("quadrant.isolation={target:#x}"), &dtb)?;
    Ok(Boot::Tfa { bios: o.ffa_bios.clone(), dtb: Some(dtb) })
}

/// Another SP's memory: echo's package (tfa-integration/sp/echo.dts load-address).
fn isolation_sp_boot(o: &Outputs) -> XResult<Boot> {
    ffa_payload_isolation(o, "spmc-isolation", 0x0e30_0000)
}

/// spmc's own image (BL32_BASE).
fn isolation_spmc_boot(o: &Outputs) -> XResult<Boot> {
    ffa_payload_isolation(o, "spmc-isolation-spmc", 0x0e10_0000)
}

/// Checks the payload must report ok (names from ci/ffa-payload/src/checks.rs).
const DIRECT_MESSAGING_CHECKS: &[(&str, &str)] = &[
    ("FFA_VERSION 1.2 agreed", "ffa_version"),
    ("PARTITION_INFO_GET lists echo, mp (4 contexts), isolation", "ffa_partition_info_get"),
    ("core 0 -> mp context 0", "core0_mp_direct_req"),
    ("core 1 -> mp context 1", "core1_mp_direct_req"),
    ("core 2 -> mp context 2", "core2_mp_direct_req"),
    ("core 3 -> mp context 3", "core3_mp_direct_req"),
    ("core 0 -> echo", "core0_echo_direct_req"),
    ("core 1 -> echo", "core1_echo_direct_req"),
    ("core 2 -> echo", "core2_echo_direct_req"),
    ("core 3 -> echo", "core3_echo_direct_req"),
    ("core 3 -> echo (32-bit)", "core3_echo_direct_req32"),
    ("core 3 -> mp REQ2 by UUID", "core3_mp_req2_by_uuid"),
    ("SP to SP (mp -> echo)", "sp_to_sp_direct_req"),
    ("SP to SP with REQ2", "sp_to_sp_req2"),
    ("REQ2 by UUID to echo", "req2_by_uuid_echo"),
    ("PARTITION_INFO_GET_REGS", "partition_info_get_regs"),
    ("invalid endpoint", "err_invalid_endpoint"),
    ("BUSY on an SP request loop", "err_busy_sp_loop"),
    ("BUSY while the RX buffer is not released", "err_busy_rx_not_released"),
    ("DENIED: REQ2 to an SP that does not take it", "err_denied_req2_not_accepted"),
    ("DENIED: RUN of a context that did not yield", "err_denied_run_not_preempted"),
    ("NOT_SUPPORTED feature", "err_not_supported_feature"),
    ("NOT_SUPPORTED function", "err_not_supported_function"),
    ("wrong FF-A major version", "err_wrong_version_major"),
    ("FFA_VERSION 1.1 after other calls refused, REQ2 still works", "err_version_fixed_after_calls"),
    ("bad parameters: wrong UUID", "err_bad_params_wrong_uuid"),
    ("bad parameters: secure source id from NS", "err_bad_params_secure_source"),
    ("bad parameters: reserved flags", "err_bad_params_info_flags"),
    ("bad parameters: unmap of another endpoint", "err_bad_params_unmap_other"),
    ("RETRY: unknown PARTITION_INFO_GET_REGS tag", "err_retry_info_regs_tag"),
    ("SP to SP after all errors", "sp_to_sp_after_errors"),
];

fn direct_messaging_expects() -> Vec<Expect> {
    let mut v: Vec<Expect> = DIRECT_MESSAGING_CHECKS
        .iter()
        .map(|(what, name)| Expect { what, all_of: vec![format!("[ffa-payload] check {name}: ok")] })
        .collect();
    v.extend([
        expect("spmc answered the missing endpoint itself", &["[spmc] DIRECT_REQ 0x0000 -> 0x8123: error INVALID_PARAMETERS"]),
        expect("mp context 1 initialised on cpu 1", &["[spmc] SP mp (0x8002): context 1 ready on cpu 1"]),
        expect("mp context 3 initialised on cpu 3", &["[spmc] SP mp (0x8002): context 3 ready on cpu 3"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]);
    v
}

fn no_failed_check(output: &str) -> Vec<String> {
    output.lines().filter(|l| l.contains("[ffa-payload] check ") && l.contains(": FAIL")).map(|l| format!("failed: {l}")).collect()
}

/// spmc's abort report is an ERROR line; TF-A's must still not appear.
const FORBID_ISOLATION: &[&str] = &["PANIC", "panicked", "Unhandled Exception", "BL31: Error"];

fn isolation_expects() -> Vec<Expect> {
    vec![
        expect("the isolation SP answered before", &["[ffa-payload] check isolation_alive: ok"]),
        expect("spmc logged the Stage-2 fault", &["[spmc] ERROR: SP isolation (0x8003) ctx 0: Stage-2 data abort at IPA"]),
        expect("spmc aborted the SP", &["[spmc] ERROR: SP isolation (0x8003) aborted"]),
        expect("the caller got ABORTED", &["[ffa-payload] check isolation_read_faults: ok", "ABORTED"]),
        expect("later callers get ABORTED too", &["[ffa-payload] check isolation_stays_aborted: ok"]),
        expect("SP callers get ABORTED", &["[ffa-payload] check isolation_aborted_for_sp_callers: ok"]),
        expect("echo and mp keep working", &["[ffa-payload] check sp_to_sp_after_abort: ok"]),
        expect("other cores keep working", &["[ffa-payload] check core2_mp_direct_req: ok"]),
        expect("no check failed", &["[ffa-payload] checks: ", " 0 failed"]),
    ]
}

/// The only ERROR lines allowed are spmc's about the isolation SP.
fn only_isolation_errors(output: &str) -> Vec<String> {
    let mut fails = no_failed_check(output);
    for l in output.lines().filter(|l| l.contains("ERROR:") && !l.contains("QEMU System Power off")) {
        if !l.contains("[spmc] ERROR: SP isolation (0x8003)") {
            fails.push(format!("unexpected error line: {l}"));
        }
    }
    fails
}

#[cfg(test)]
mod tests {
    #[test]
    fn linux_ffa_forbids_everything_always_forbidden() {
        for f in super::FORBID_ALWAYS {
            assert!(super::FORBID_LINUX_FFA.contains(f), "{f}");
        }
    }

    #[test]
    fn host_device_is_not_counted_as_an_sp() {
        let uuids = super::sp_uuids();
        let mut out: String = uuids.iter().enumerate().map(|(i, (_, u))| format!("quadrant-ffa-device: arm-ffa-{} uuid={u} id=0x{:04x}\n", i + 1, 0x8001 + i)).collect();
        assert!(super::ffa_devices_match_layout(&out).is_empty());
        out.push_str("quadrant-ffa-device: arm-ffa-9 uuid=00000000-0000-0000-0000-000000000000 id=0x0000\n");
        assert!(super::ffa_devices_match_layout(&out).is_empty());
        out.push_str("quadrant-ffa-device: arm-ffa-10 uuid=00000000-0000-0000-0000-000000000000 id=0x8009\n");
        assert!(!super::ffa_devices_match_layout(&out).is_empty(), "an extra secure partition");
    }

    #[test]
    fn echo_uuid_string() {
        let uuids = super::sp_uuids();
        assert!(uuids.iter().any(|(n, u)| n == "echo" && u == "d4ff1955-d086-4722-8923-d8bd89eb38b3"), "{uuids:?}");
    }
}
