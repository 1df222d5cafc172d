//! Issue D2: spmc hosts OP-TEE (Debian's optee-os, built by setup in the
//! S-EL2 SPMC configuration) as an S-EL1 SP beside our SPs, and Debian's
//! Linux 7.3 as BL33 finds it over FF-A with its `optee` driver.

use super::{Expect, IntegrationTest, XResult, expect};
use crate::build::{self, Bl33, Outputs};
use crate::guest::{self, InitramfsSpec};
use crate::qemu::Boot;
use crate::{layout, setup, util};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn tests() -> Vec<IntegrationTest> {
    vec![
    IntegrationTest {
        name: "optee_boots",
        boot: optee_boot,
        // ~20 s on a loaded 2-core host (the xtest cases take a few seconds).
        timeout: Duration::from_secs(180),
        expects: optee_expects,
        extra: Some(no_optee_errors),
        forbid: FORBID_OPTEE,
    },
    // The reference first: `optee_xtest` compares against its log.
    IntegrationTest {
        name: "optee_xtest_reference",
        boot: |o| reference_xtest_boot(o, XTEST_CI, "optee-xtest-ref"),
        timeout: XTEST_CI_TIMEOUT,
        expects: || xtest_expects(true),
        extra: Some(xtest_ran),
        forbid: FORBID_XTEST,
    },
    IntegrationTest {
        name: "optee_xtest",
        boot: |o| spmc_boot(o, XTEST_CI, "optee-xtest"),
        timeout: XTEST_CI_TIMEOUT,
        expects: || xtest_expects(false),
        extra: Some(|out| compare_with_reference(out, "optee_xtest_reference")),
        forbid: FORBID_XTEST,
    },
    // Issue G: the same subset with Linux in protected mode, every FF-A call
    // and shared buffer of the optee driver going through pKVM's proxy.
    IntegrationTest {
        name: "pkvm_optee",
        boot: |o| spmc_boot_with(o, XTEST_CI, "pkvm-optee", &crate::run::pkvm_cmdline(OPTEE_CMDLINE)),
        timeout: XTEST_CI_TIMEOUT,
        expects: pkvm_xtest_expects,
        extra: Some(|out| compare_with_reference(out, "optee_xtest_reference")),
        forbid: FORBID_XTEST,
    },
    // Issue B3: the same subset inside a VM of ns-hyp, its optee driver's
    // FF-A calls and shared buffers going through ns-hyp's proxy under the
    // VM's own FF-A id.
    IntegrationTest {
        name: "guest_optee",
        boot: |o| guest_boot(o, XTEST_CI, "guest-optee"),
        timeout: XTEST_CI_TIMEOUT,
        expects: guest_xtest_expects,
        extra: Some(|out| compare_with_reference(out, "optee_xtest_reference")),
        forbid: FORBID_XTEST,
    },
    // Issue #16: the subset in two VMs of ns-hyp at once, each under its own
    // FF-A id (1 and 2), against one OP-TEE built with CFG_NS_VIRTUALIZATION
    // and our patches (tfa-integration/optee-virt-patches/); each VM must
    // pass what the reference passes.  About 8 minutes on 2 cores; see
    // docs/ns-hyp.md, "OP-TEE in two VMs".
    IntegrationTest {
        name: "guest_optee_two_vms",
        boot: |o| guest_boot_vms(o, XTEST_CI, "guest-optee-two", 2),
        timeout: XTEST_CI_TIMEOUT,
        expects: two_vms_xtest_expects,
        extra: Some(two_vms_compare),
        forbid: FORBID_XTEST,
    }]
}

/// VM `k`'s console lines of a multi-VM run, without their `[vmK] ` prefix.
fn vm_lines(output: &str, k: usize) -> String {
    let prefix = format!("[vm{k}] ");
    output.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).map(|l| format!("{l}\n")).collect()
}

fn two_vms_xtest_expects() -> Vec<Expect> {
    let mut v = vec![
        expect("ns-hyp made VM 0 FF-A endpoint 1", &["[ns-hyp] guest FF-A: vm0 is endpoint 0x0001"]),
        expect("ns-hyp made VM 1 FF-A endpoint 2", &["[ns-hyp] guest FF-A: vm1 is endpoint 0x0002"]),
        expect("OP-TEE booted under spmc", &["[op-tee] ", "OP-TEE version: "]),
    ];
    for (k, vm) in ["[vm0] ", "[vm1] "].into_iter().enumerate() {
        v.push(Expect { what: ["VM 0's optee driver initialised", "VM 1's optee driver initialised"][k], all_of: vec![vm.into(), "quadrant-dmesg: ".into(), "optee: initialized driver".into()] });
        v.push(Expect { what: ["VM 0's xtest ran to its end", "VM 1's xtest ran to its end"][k], all_of: vec![vm.into(), "quadrant-xtest: ".into(), "TEE test application done!".into()] });
        v.push(Expect { what: ["VM 0's script finished", "VM 1's script finished"][k], all_of: vec![vm.into(), "quadrant-init: script done".into()] });
    }
    v
}

/// Each VM's xtest against the reference's, as `optee_xtest` compares one.
fn two_vms_compare(output: &str) -> Vec<String> {
    (0..2).flat_map(|k| compare_with_reference(&vm_lines(output, k), "optee_xtest_reference").into_iter().map(move |f| format!("vm{k}: {f}"))).collect()
}

/// The xtest subset in one VM (4 vCPUs, 512 MiB) of ns-hyp, over TF-A +
/// spmc with OP-TEE as an S-EL1 SP: ns-hyp is BL33, the kernel and the
/// xtest initramfs are preloaded in the VM's RAM.
fn guest_boot(o: &Outputs, args: &str, name: &str) -> XResult<Boot> {
    guest_boot_vms(o, args, name, 1)
}

/// [`guest_boot`] with `n` VMs (4 vCPUs ÷ n each, 384 MiB each when
/// several), each running the subset at once with its own initramfs copy.
fn guest_boot_vms(o: &Outputs, args: &str, name: &str, n: usize) -> XResult<Boot> {
    use super::nshyp::{GuestPayload, VmSpec};
    // Several VMs: OP-TEE built for them, told of each by ns-hyp.
    let sps = layout::SpSet::User(if n == 1 { optee_layout(&o.paths)? } else { optee_virt_layout(&o.paths)? });
    let bios = build::build_tfa(&o.paths, Bl33::NsHyp, &sps)?;
    let initrd = xtest_initrd(o, args, name, &["ffa-core", "ffa-module", "tee", "optee"])?;
    let kernel = guest::kernel_image(&o.paths)?;
    let vms: Vec<VmSpec> = (0..n)
        .map(|_| VmSpec { payload: GuestPayload { kernel: kernel.clone(), initrd: Some(initrd.clone()), cmdline: Some(OPTEE_CMDLINE.into()) }, vcpus: 4 / n, mem_mib: if n == 1 { 512 } else { 384 }, realm: false })
        .collect();
    super::nshyp::hyp_vms_boot(o, Some(&bios), name, &vms, None, "")
}

/// `optee_xtest`'s checks, and that the driver ran as VM 0's endpoint of ns-hyp.
fn guest_xtest_expects() -> Vec<Expect> {
    let mut v = xtest_expects(false);
    v.push(expect("ns-hyp made the VM FF-A endpoint 1", &["[ns-hyp] guest FF-A: vm0 is endpoint 0x0001"]));
    v
}

/// `cargo xtask test --long optee` (not CI): the full default xtest suite
/// (`xtest` without arguments) under the reference, then under spmc.
pub fn long_tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest {
            name: "optee_full_xtest_reference",
            boot: |o| reference_xtest_boot(o, XTEST_FULL, "optee-full-ref"),
            timeout: XTEST_FULL_TIMEOUT,
            expects: || xtest_expects(true),
            extra: Some(xtest_ran),
            forbid: FORBID_XTEST,
        },
        IntegrationTest {
            name: "optee_full_xtest",
            boot: |o| spmc_boot(o, XTEST_FULL, "optee-full"),
            timeout: XTEST_FULL_TIMEOUT,
            expects: || xtest_expects(false),
            extra: Some(|out| compare_counts_with_reference(out, "optee_full_xtest_reference")),
            forbid: FORBID_XTEST,
        },
    ]
}

/// `optee_xtest`'s subset (CI): parts of the 1000 (core, sessions on several
/// cores, shared memory), 4000 (crypto), 6000 (secure storage through
/// tee-supplicant) and 8000 series.  About 3 minutes of TCG per stack.
const XTEST_CI: &str = "-t regression 1001 1002 1003 1004 1006 1008 1012 1013 1016 1018 1019 1022 1028 4001 4002 4003 4006 6001 6002 6010 8001 8002";
const XTEST_CI_TIMEOUT: Duration = Duration::from_secs(900);
/// The full default suite (`xtest` without arguments: the regression and
/// pkcs11 suites, 139 test cases).  ~8-9 minutes of guest time per stack.
const XTEST_FULL: &str = "";
const XTEST_FULL_TIMEOUT: Duration = Duration::from_secs(3600);

/// The guest script of the xtest runs: the same for both stacks.  xtest's
/// output goes to a file printed once it ends (OP-TEE's console lines, which
/// spmc prints on the same UART, cannot cut into it), except for the full
/// suite: there it is printed as it comes (through a pipe, so in 4 KiB
/// chunks), so that a run stopped early still leaves the verdicts so far.
fn xtest_script(args: &str) -> String {
    let run = if args == XTEST_FULL {
        format!("xtest {args} 2>&1 | sed 's/^/quadrant-xtest: /'\nend=$(cut -d' ' -f1 /proc/uptime)")
    } else {
        format!("xtest {args} > /tmp/xtest.log 2>&1\nend=$(cut -d' ' -f1 /proc/uptime)\nsed 's/^/quadrant-xtest: /' /tmp/xtest.log")
    };
    format!(
        "\
dmesg | grep -i -E 'optee|tee:' | sed 's/^/quadrant-dmesg: /'
[ -c /dev/tee0 ] && echo \"quadrant-tee0: present\" || echo \"quadrant-tee0: missing\"
mkdir -p /var/lib/optee-client/data/tee
tee-supplicant &
supplicant=$!
sleep 1
echo \"quadrant-xtest-args: {args}\"
start=$(cut -d' ' -f1 /proc/uptime)
{run}
echo \"quadrant-xtest-time: $start $end\"
kill $supplicant; wait $supplicant
"
    )
}

fn xtest_initrd(o: &Outputs, args: &str, name: &str, modules: &[&str]) -> XResult<PathBuf> {
    let userland = setup::optee_userland_root(&o.paths.optee);
    let script = xtest_script(args);
    guest::initramfs_with_trees(&o.paths, &InitramfsSpec { name, modules, script: Some(&script), files: &[] }, &[&userland])
}

/// The guest command line of the xtest runs.
const OPTEE_CMDLINE: &str = "console=ttyAMA0 earlycon rdinit=/init";

/// Linux over TF-A + spmc with OP-TEE as an S-EL1 SP (as `optee_boots`).
pub fn spmc_boot(o: &Outputs, args: &str, name: &str) -> XResult<Boot> {
    spmc_boot_with(o, args, name, OPTEE_CMDLINE)
}

/// [`spmc_boot`] with the guest command line `cmdline` (pKVM's adds
/// `kvm-arm.mode=protected`).
fn spmc_boot_with(o: &Outputs, args: &str, name: &str, cmdline: &str) -> XResult<Boot> {
    let sps = layout::SpSet::User(optee_layout(&o.paths)?);
    let bios = build::build_tfa(&o.paths, Bl33::PreloadedLinux, &sps)?;
    let initrd = xtest_initrd(o, args, name, &["ffa-core", "ffa-module", "tee", "optee"])?;
    super::spmc::bl33_boot(&bios, &guest::kernel_image(&o.paths)?, Some(&initrd), name, cmdline)
}

/// `optee_xtest`'s checks, and that pKVM was up in protected mode (its
/// FF-A proxy then carries every call of the optee driver).
fn pkvm_xtest_expects() -> Vec<Expect> {
    let mut v = xtest_expects(false);
    v.push(expect("Linux was told to run pKVM", &["Kernel command line:", crate::run::PKVM_ARG]));
    v.push(expect("pKVM initialised in protected mode", &["kvm [", "Protected ", "mode initialized successfully"]));
    v
}

/// The reference: the same Linux, initramfs script and QEMU machine over
/// TF-A with SPD=opteed and OP-TEE as its BL32 (no spmc, no rmm); Linux's
/// optee driver finds it through the SMC ABI (OP-TEE adds its node to the
/// DTB).  `ffa-core` only because optee.ko links against it (no FF-A here:
/// `ffa-module` is not loaded).
pub fn reference_boot(o: &Outputs, args: &str, name: &str) -> XResult<Boot> {
    let bios = build::build_tfa_optee_reference(&o.paths)?;
    let initrd = xtest_initrd(o, args, name, &["ffa-core", "tee", "optee"])?;
    without_rme(super::spmc::bl33_boot(&bios, &guest::kernel_image(&o.paths)?, Some(&initrd), name, "console=ttyAMA0 earlycon rdinit=/init")?)
}

/// [`reference_boot`] for an xtest run, or the replay of an earlier one.
///
/// The reference runs none of our code: TF-A with SPD=opteed (our patches
/// apply, but not our images), OP-TEE, Debian's Linux, the initramfs and
/// QEMU.  So its verdicts hold while those inputs are unchanged, and a run
/// in which every case passed (the strongest baseline: spmc must then pass
/// them all) is kept under `~/.cache/quadrant/optee-reference/`, keyed by a
/// hash of the files QEMU is given, their contents and QEMU's version, and
/// replayed instead of 2.5 minutes of QEMU.  The TF-A reference build has a
/// fixed build message for this (`build::tfa_optee_reference_make_vars`);
/// the initramfs is reproducible (`guest::initramfs_with_trees`).  A fresh
/// machine, or any changed input, runs it.
fn reference_xtest_boot(o: &Outputs, args: &str, name: &str) -> XResult<Boot> {
    let boot = reference_boot(o, args, name)?;
    let kept = util::cache_dir().join("optee-reference").join(format!("{name}-{}.log", inputs_key(&boot)?));
    if kept.exists() {
        eprintln!("xtask: the reference's inputs are those of a kept run in which every case passed: replaying {}", kept.display());
        return Ok(Boot::Replay { log: kept });
    }
    *super::KEEP_LOG_ON_PASS.lock().unwrap() = Some((kept, every_case_passed));
    Ok(boot)
}

/// A run worth keeping as the reference: xtest reported, every case passed.
fn every_case_passed(output: &str) -> bool {
    let x = parse_xtest(output);
    !x.cases.is_empty() && x.cases.iter().all(|(_, ok)| *ok) && x.test_cases.is_some_and(|(_, failed)| failed == 0)
}

/// A hash of what decides a QEMU run: its arguments with the checkout's own
/// directory left out (a fresh clone builds in another), the contents of
/// every file an argument names, and QEMU's version.
fn inputs_key(boot: &Boot) -> XResult<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let out = util::out_dir().display().to_string();
    let version = util::output_bytes(std::process::Command::new("qemu-system-aarch64").arg("--version"))?;
    h.update(&version);
    for a in crate::qemu::args(boot) {
        h.update(a.replace(&out, "<out>").as_bytes());
        h.update([0]);
        // A file named by the argument itself or by a `key=value` in it.
        for part in a.split(',').flat_map(|p| p.rsplit('=').next()) {
            let path = Path::new(part);
            if path.is_absolute() && path.is_file() {
                h.update(Sha256::digest(without_seeds(path)?));
            }
        }
    }
    Ok(h.finalize().iter().take(12).map(|b| format!("{b:02x}")).collect())
}

/// A file's contents; for a DTB its source, without the random seeds QEMU writes
/// into each one it dumps (`rng-seed`, `kaslr-seed` in /chosen and
/// /secure-chosen): they differ on every dump and decide nothing xtest does.
fn without_seeds(path: &Path) -> XResult<Vec<u8>> {
    if path.extension().is_none_or(|x| x != "dtb") {
        return std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    }
    let copy = util::out_dir().join("inputs-key.dtb");
    std::fs::copy(path, &copy).map_err(|e| format!("{}: {e}", path.display()))?;
    for node in ["/chosen", "/secure-chosen"] {
        for prop in ["rng-seed", "kaslr-seed"] {
            // Absent in a DTB QEMU did not dump: nothing to delete.
            let _ = std::process::Command::new("fdtput").arg("-d").arg(&copy).args([node, prop]).stderr(std::process::Stdio::null()).status();
        }
    }
    // As source: a deletion leaves stale bytes behind in the blob.
    util::output_bytes(std::process::Command::new("dtc").args(["-I", "dtb", "-O", "dts"]).arg(&copy).stderr(std::process::Stdio::null()))
}

/// The reference's QEMU: the same machine, memory and cores, but `-cpu max`
/// without `x-rme=on`.  TF-A refuses ENABLE_RME with SPD=opteed, and on a
/// CPU with FEAT_RME an EL3 that does not know it faults on its first
/// instruction fetch after enabling its MMU (its code is mapped Secure, and
/// EL3 may only execute from the Root PA space).
fn without_rme(boot: Boot) -> XResult<Boot> {
    match boot {
        Boot::Custom { tfa: true, mut args } => {
            args.extend(["-cpu".into(), "max".into()]);
            Ok(Boot::Custom { tfa: true, args })
        }
        other => Err(format!("the OP-TEE reference expects a TF-A boot, not {other:?}")),
    }
}

/// `cargo xtask bench`'s OP-TEE row: Linux under spmc (`reference` false)
/// or under the SPD=opteed reference, running ci/optee-invoke-bench once
/// (no tee-supplicant: it invokes a pseudo TA).
pub fn invoke_bench_boot(o: &Outputs, reference: bool) -> XResult<Boot> {
    let bench = build::build_invoke_bench()?;
    let data = std::fs::read(&bench).map_err(|e| format!("{}: {e}", bench.display()))?;
    let script = "chmod +x /optee-invoke-bench\n/optee-invoke-bench\n";
    let (name, bios, modules): (&str, PathBuf, &[&str]) = if reference {
        ("bench-optee-ref", build::build_tfa_optee_reference(&o.paths)?, &["ffa-core", "tee", "optee"])
    } else {
        let sps = layout::SpSet::User(optee_layout(&o.paths)?);
        ("bench-optee", build::build_tfa(&o.paths, Bl33::PreloadedLinux, &sps)?, &["ffa-core", "ffa-module", "tee", "optee"])
    };
    let initrd = guest::initramfs(&o.paths, &InitramfsSpec { name, modules, script: Some(script), files: &[("/optee-invoke-bench", &data)] })?;
    let boot = match super::spmc::bl33_boot(&bios, &guest::kernel_image(&o.paths)?, Some(&initrd), name, "console=ttyAMA0 earlycon rdinit=/init")? {
        // One core: under -icount every core's instructions advance the one
        // virtual clock, so idle cores' timer ticks would count in the row.
        Boot::Custom { tfa, mut args } => {
            args.extend(["-smp".into(), "1".into()]);
            Boot::Custom { tfa, args }
        }
        other => other,
    };
    if reference { without_rme(boot) } else { Ok(boot) }
}

/// `quadrant-invoke: CALLS calls NS ns ret 0xRET` → (calls, ns).
pub fn parse_invoke(output: &str) -> Option<(u64, u64)> {
    let rest = output.lines().find_map(|l| l.split("quadrant-invoke: ").nth(1))?;
    let w: Vec<&str> = rest.split_whitespace().collect();
    match w.as_slice() {
        [calls, "calls", ns, "ns", ..] => Some((calls.parse().ok()?, ns.parse().ok()?)),
        _ => None,
    }
}

fn xtest_expects(reference: bool) -> Vec<Expect> {
    let mut v = vec![
        expect("Linux reached its init", &["quadrant-init: up"]),
        expect("the optee module loaded", &["quadrant-init: loaded optee"]),
        expect("Linux's optee driver initialised", &["quadrant-dmesg: ", "optee: initialized driver"]),
        expect("/dev/tee0 exists", &["quadrant-tee0: present"]),
        expect("xtest ran to its end", &["quadrant-xtest: ", "TEE test application done!"]),
        expect("the script finished", &["quadrant-init: script done"]),
    ];
    if reference {
        v.push(expect("the driver found OP-TEE through the SMC ABI", &["quadrant-dmesg: ", "optee: probing for conduit method"]));
    } else {
        v.push(expect("OP-TEE booted under spmc", &["[op-tee] ", "OP-TEE version: "]));
    }
    v
}

/// xtest's own negative cases make OP-TEE log TA panics (`TA panicked`)
/// and `E/TC:` lines: only panics of the firmware itself are forbidden.
const FORBID_XTEST: &[&str] = &["Unhandled Exception", "BL31: Error", "Panic at", "panicked at", "Kernel panic", "optee: probe of"];

/// One xtest run's results from the serial log.
#[derive(Debug, Default, PartialEq)]
pub struct Xtest {
    /// Each test case (`regression_1001`) and whether it passed.
    pub cases: Vec<(String, bool)>,
    /// "N subtests of which M failed".
    pub subtests: Option<(u64, u64)>,
    /// "N test cases of which M failed".
    pub test_cases: Option<(u64, u64)>,
    /// Guest seconds xtest took (/proc/uptime before and after).
    pub seconds: Option<f64>,
}

impl Xtest {
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.1).count()
    }
}

/// Parses xtest's lines (prefixed `quadrant-xtest: ` by the script).
pub fn parse_xtest(output: &str) -> Xtest {
    let mut x = Xtest::default();
    for line in output.lines() {
        if let Some(t) = line.split("quadrant-xtest-time: ").nth(1) {
            let v: Vec<f64> = t.split_whitespace().filter_map(|n| n.parse().ok()).collect();
            if v.len() == 2 {
                x.seconds = Some(v[1] - v[0]);
            }
            continue;
        }
        let Some(rest) = line.split("quadrant-xtest: ").nth(1) else { continue };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
        if words.len() >= 5 && words[1] == "subtests" && words[3] == "which" {
            if let (Some(n), Some(m)) = (num(0), num(4)) {
                x.subtests = Some((n, m));
            }
        } else if words.len() >= 6 && words[1] == "test" && words[2] == "cases" && words[4] == "which" {
            if let (Some(n), Some(m)) = (num(0), num(5)) {
                x.test_cases = Some((n, m));
            }
        } else if words.len() >= 2 && !words[0].contains('.') && words[0].contains('_') && (words[1] == "OK" || words[1] == "FAILED") {
            let name = words[0].to_owned();
            let ok = words[1] == "OK";
            // A case is reported once when it ends; keep the first verdict.
            if !x.cases.iter().any(|c| c.0 == name) {
                x.cases.push((name, ok));
            }
        }
    }
    x
}

fn summary(x: &Xtest) -> String {
    let sub = x.subtests.map(|(n, m)| format!(", {n} subtests of which {m} failed")).unwrap_or_default();
    let secs = x.seconds.map(|s| format!(", {s:.0} s")).unwrap_or_default();
    format!("{} of {} test cases passed{sub}{secs}", x.passed(), x.cases.len())
}

/// The reference's own check: xtest ran and reported its cases (their
/// verdicts are the reference, not a requirement).
fn xtest_ran(output: &str) -> Vec<String> {
    let x = parse_xtest(output);
    println!("    reference (SPD=opteed): {}", summary(&x));
    if x.cases.is_empty() || x.test_cases.is_none() {
        return vec!["no xtest results in the serial log".into()];
    }
    Vec::new()
}

fn reference_log(name: &str) -> Result<String, String> {
    let f = util::out_dir().join("logs").join(format!("{name}.log"));
    std::fs::read_to_string(&f).map_err(|e| format!("no reference log {} (run `{name}` first): {e}", f.display()))
}

/// The xtest arguments a log's run used.
/// The arguments line.  spmc's and OP-TEE's own log lines go to the same
/// UART and can land inside it (`... 8002[spmc] DIRECT_REQ ...`, seen once):
/// xtest's arguments never hold `[`, so the line ends there.
fn xtest_args(output: &str) -> Option<String> {
    output.lines().find_map(|l| l.split("quadrant-xtest-args: ").nth(1)).map(|s| s.split('[').next().unwrap_or("").trim().to_owned())
}

/// `optee_xtest`: every case that passes under the reference passes under spmc.
fn compare_with_reference(output: &str, reference: &str) -> Vec<String> {
    let refl = match reference_log(reference) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    compare(output, &refl, false)
}

/// `--long`: spmc's pass count at least the reference's (and the same per-case rule, reported).
fn compare_counts_with_reference(output: &str, reference: &str) -> Vec<String> {
    let refl = match reference_log(reference) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    compare(output, &refl, true)
}

fn compare(output: &str, refl: &str, counts_only: bool) -> Vec<String> {
    let (ours, theirs) = (parse_xtest(output), parse_xtest(refl));
    println!("    reference (SPD=opteed): {}", summary(&theirs));
    println!("    spmc:                   {}", summary(&ours));
    let mut fails = Vec::new();
    if xtest_args(output) != xtest_args(refl) {
        fails.push(format!("the reference ran other xtest arguments ({:?} vs {:?})", xtest_args(refl), xtest_args(output)));
    }
    if theirs.cases.is_empty() || theirs.test_cases.is_none() {
        fails.push("no xtest results from the reference's run: nothing to compare with".into());
    }
    if ours.cases.is_empty() || ours.test_cases.is_none() {
        fails.push("no xtest results from spmc's run".into());
    }
    let regressions: Vec<&str> =
        theirs.cases.iter().filter(|c| c.1).filter(|c| !ours.cases.iter().any(|o| o.0 == c.0 && o.1)).map(|c| c.0.as_str()).collect();
    if counts_only {
        if ours.passed() < theirs.passed() {
            fails.push(format!("spmc passed {} test cases, the reference {}", ours.passed(), theirs.passed()));
        }
        if !regressions.is_empty() {
            println!("    passed under the reference only: {}", regressions.join(" "));
        }
    } else {
        for c in regressions {
            fails.push(format!("{c} passes under the reference, not under spmc"));
        }
    }
    fails
}

/// Our SPs (tfa-integration/sp_layout.json) plus OP-TEE
/// (tfa-integration/sp/optee.dts with setup's build), as a layout of its
/// own under `target/quadrant/optee-layout/`: the default layout, which
/// every other test boots, stays without OP-TEE.  The `size` key becomes
/// OP-TEE's `mem_size` in the generated SPMC manifest (layout.rs).
pub fn optee_layout(p: &setup::Paths) -> XResult<PathBuf> {
    let dts = std::fs::read_to_string(util::repo_root().join("tfa-integration/sp/optee.dts")).map_err(|e| format!("optee.dts: {e}"))?;
    layout_with_optee("optee-layout", true, &dts, &setup::optee_image(&p.optee), setup::OPTEE_MEM_SIZE)
}

/// OP-TEE alone, built for several VMs ([`setup::optee_virt`],
/// CFG_NS_VIRTUALIZATION), under `target/quadrant/optee-virt-layout/`: its
/// package fills the Secure DRAM our SPs use otherwise
/// ([`setup::OPTEE_VIRT_LOAD_ADDRESS`]), and its manifest subscribes to the
/// VM created and destroyed messages (`vm-availability-messages = <0x3>`,
/// Hafnium's binding), which ns-hyp sends it for each VM.
pub fn optee_virt_layout(p: &setup::Paths) -> XResult<PathBuf> {
    setup::optee_virt(&p.optee)?;
    let dts = std::fs::read_to_string(util::repo_root().join("tfa-integration/sp/optee.dts")).map_err(|e| format!("optee.dts: {e}"))?;
    layout_with_optee("optee-virt-layout", false, &virt_manifest(&dts)?, &setup::optee_virt_image(&p.optee), setup::OPTEE_VIRT_MEM_SIZE)
}

/// OP-TEE's manifest for the virtualization build: its load address and
/// `mem-size` lines say [`setup::OPTEE_VIRT_LOAD_ADDRESS`] and
/// [`setup::OPTEE_VIRT_MEM_SIZE`], and `vm-availability-messages = <0x3>`
/// follows its `messaging-method` line.
fn virt_manifest(dts: &str) -> XResult<String> {
    let line = |key: &str| -> XResult<(usize, usize)> {
        let at = dts.find(&format!("\t{key} = ")).ok_or(format!("optee.dts: no {key} line"))?;
        Ok((at, at + dts[at..].find('\n').ok_or(format!("optee.dts: {key} is its last line"))? + 1))
    };
    let (load, mem, msg) = (line("load-address")?, line("mem-size")?, line("messaging-method")?);
    if !(load.1 <= mem.0 && mem.1 <= msg.0) {
        return Err("optee.dts: load-address, mem-size and messaging-method are not in that order".into());
    }
    Ok(format!(
        "{}\tload-address = <{:#010x}>;\n\tmem-size = <{:#x}>;\n{}{}\tvm-availability-messages = <0x3>;\t/* VM created and destroyed: ns-hyp's VMs */\n{}",
        &dts[..load.0],
        setup::OPTEE_VIRT_LOAD_ADDRESS,
        setup::OPTEE_VIRT_MEM_SIZE,
        &dts[mem.1..msg.0],
        &dts[msg.0..msg.1],
        &dts[msg.1..]
    ))
}

/// A layout of OP-TEE (`dts` its manifest, `image` its raw image, `size`
/// its package's memory), with our SPs before it when `ours`, under
/// `target/quadrant/<name>/`.
fn layout_with_optee(name: &str, ours_too: bool, dts: &str, image: &Path, size: u64) -> XResult<PathBuf> {
    let dir = util::out_dir().join(name);
    util::mkdirs(&dir)?;
    let integ = util::repo_root().join("tfa-integration");
    let copy = |from: &Path, to: &str| -> XResult<()> {
        let data = std::fs::read(from).map_err(|e| format!("{}: {e}", from.display()))?;
        if std::fs::read(dir.join(to)).ok().as_deref() != Some(data.as_slice()) {
            std::fs::write(dir.join(to), data).map_err(|e| format!("{to}: {e}"))?;
        }
        Ok(())
    };
    let ours = if ours_too { std::fs::read_to_string(integ.join("sp_layout.json")).map_err(|e| format!("sp_layout.json: {e}"))? } else { "{\n}\n".into() };
    for e in layout::entries(&ours) {
        copy(&integ.join("sp").join(&e.pm), &e.pm)?;
        copy(&build::images_dir().join(format!("{}.bin", e.name)), &format!("{}.bin", e.name))?;
    }
    if std::fs::read_to_string(dir.join("optee.dts")).ok().as_deref() != Some(dts) {
        std::fs::write(dir.join("optee.dts"), dts).map_err(|e| format!("optee.dts: {e}"))?;
    }
    copy(image, "optee.bin")?;
    let end = ours.trim_end().strip_suffix('}').ok_or("sp_layout.json: no closing brace")?.trim_end();
    let comma = if ours_too { "," } else { "" };
    let json = format!(
        "{end}{comma}\n\t\"op-tee\": {{\n\t\t\"image\": \"optee.bin\",\n\t\t\"pm\": \"optee.dts\",\n\t\t\"owner\": \"SiP\",\n\t\t\"size\": \"{size:#x}\"\n\t}}\n}}\n"
    );
    let file = dir.join("sp_layout.json");
    if std::fs::read_to_string(&file).ok().as_deref() != Some(json.as_str()) {
        std::fs::write(&file, json).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(file)
}

const OPTEE_SCRIPT: &str = "\
dmesg | grep -i -E 'optee|tee:|ff-?a' | sed 's/^/quadrant-dmesg: /'
for d in /sys/bus/arm_ffa/devices/*; do
  [ -e \"$d\" ] || continue
  echo \"quadrant-ffa-device: $(basename $d) uuid=$(cat $d/uuid 2>/dev/null) id=$(cat $d/partition_id 2>/dev/null)\"
done
ls -l /dev/tee* 2>&1 | sed 's/^/quadrant-dev: /'
[ -c /dev/tee0 ] && echo \"quadrant-tee0: present\" || echo \"quadrant-tee0: missing\"
mkdir -p /var/lib/optee-client/data/tee
tee-supplicant &
supplicant=$!
sleep 1
echo \"quadrant-xtest: start\"
# Printed once it is done: OP-TEE's and spmc's lines share the console.
xtest -t regression 1001 4001 > /tmp/xtest.log 2>&1
sed 's/^/quadrant-xtest: /' /tmp/xtest.log
# The driver's removal at power-off waits for /dev/teepriv0 to be closed.
kill $supplicant; wait $supplicant
";

fn optee_boot(o: &Outputs) -> XResult<Boot> {
    let sps = layout::SpSet::User(optee_layout(&o.paths)?);
    let bios = build::build_tfa(&o.paths, Bl33::PreloadedLinux, &sps)?;
    let userland = setup::optee_userland_root(&o.paths.optee);
    let initrd = guest::initramfs_with_trees(
        &o.paths,
        &InitramfsSpec { name: "optee", modules: &["ffa-core", "ffa-module", "tee", "optee"], script: Some(OPTEE_SCRIPT), files: &[] },
        &[&userland],
    )?;
    super::spmc::bl33_boot(&bios, &guest::kernel_image(&o.paths)?, Some(&initrd), "optee", "console=ttyAMA0 earlycon rdinit=/init")
}

fn optee_expects() -> Vec<Expect> {
    vec![
        expect("spmc passed OP-TEE its boot information", &["[spmc] SP op-tee: boot information blob", "in x0"]),
        expect("OP-TEE booted (its banner, through FFA_CONSOLE_LOG)", &["[op-tee] ", "OP-TEE version: "]),
        expect("OP-TEE's primary CPU finished its init", &["[op-tee] ", "Primary CPU switching to normal world boot"]),
        expect("our SPs booted beside it", &["[echo] ready"]),
        expect("OP-TEE's context on core 3 started", &["[spmc] SP op-tee (0x8005): context 3 ready on cpu 3"]),
        expect("Linux reached its init", &["quadrant-init: up"]),
        expect("the FF-A driver loaded", &["quadrant-init: loaded ffa-module"]),
        expect("the optee module loaded", &["quadrant-init: loaded optee"]),
        expect("Linux's FF-A bus lists OP-TEE", &["quadrant-ffa-device: ", "uuid=486178e0-e7f8-11e3-bc5e-0002a5d5c51b", "id=0x8005"]),
        expect("Linux's optee driver found OP-TEE over FF-A", &["quadrant-dmesg: ", "optee: revision "]),
        expect("Linux's optee driver initialised", &["quadrant-dmesg: ", "optee: initialized driver"]),
        expect("/dev/tee0 exists", &["quadrant-tee0: present"]),
        expect("tee-supplicant and xtest ran", &["quadrant-xtest: ", "TEE test application done!"]),
        // Core self tests (a pseudo TA; shared memory retrieved by OP-TEE
        // from spmc) and hash operations (the crypt TA loaded from the
        // initramfs by tee-supplicant over OP-TEE's RPCs).
        expect("xtest regression 1001", &["quadrant-xtest: regression_1001 OK"]),
        expect("xtest regression 4001", &["quadrant-xtest: regression_4001 OK"]),
        expect("the script finished", &["quadrant-init: script done"]),
    ]
}

/// Besides the usual: OP-TEE's panics and error lines, and Linux's optee
/// driver giving up.
const FORBID_OPTEE: &[&str] = &[
    "PANIC",
    "panicked",
    "Unhandled Exception",
    "BL31: Error",
    "Panic at",
    "optee: probe of",
    "FAILED to load",
];

/// `ERROR:` lines are forbidden except TF-A's power-off line; OP-TEE's
/// own errors (`E/TC:`, `E/LD:`) too.  Linux's FF-A bus lists exactly our
/// SPs and OP-TEE (besides its own host device).
fn no_optee_errors(output: &str) -> Vec<String> {
    let mut fails: Vec<String> = output
        .lines()
        .filter(|l| (l.contains("ERROR:") && !l.contains("QEMU System Power off")) || l.contains("E/TC:") || l.contains("E/LD:"))
        .map(|l| format!("error line: {l}"))
        .collect();
    let mut sps = super::spmc::sp_uuids();
    sps.push(("op-tee".into(), OPTEE_UUID.into()));
    fails.extend(super::spmc::ffa_devices_are(output, &sps));
    fails
}

/// OP-TEE's UUID (tfa-integration/sp/optee.dts), which Linux's optee driver probes for.
const OPTEE_UUID: &str = "486178e0-e7f8-11e3-bc5e-0002a5d5c51b";

#[cfg(test)]
mod tests {
    #[test]
    fn the_arguments_line_survives_a_firmware_line_inside_it() {
        let cut = "quadrant-xtest-args: -t regression 1001 8002[spmc] DIRECT_REQ 0x0000 -> 0x8005: ok\n";
        assert_eq!(super::xtest_args(cut).as_deref(), Some("-t regression 1001 8002"));
        assert_eq!(super::xtest_args("quadrant-xtest-args: -t regression 1001\n").as_deref(), Some("-t regression 1001"));
    }
    use super::*;

    #[test]
    fn the_virt_manifest_subscribes_to_vm_availability() {
        let dts = std::fs::read_to_string(util::repo_root().join("tfa-integration/sp/optee.dts")).unwrap();
        let v = virt_manifest(&dts).unwrap();
        assert_eq!(layout::dts_cells(&v, "vm-availability-messages"), Some(vec![3]));
        assert_eq!(layout::load_address(&v), Some(setup::OPTEE_VIRT_LOAD_ADDRESS));
        assert_eq!(layout::dts_cells(&v, "mem-size"), Some(vec![setup::OPTEE_VIRT_MEM_SIZE as u32]));
        // sp_mk_generator greps the load address line: exactly one.
        assert_eq!(v.matches("load-address = <").count(), 1);
        assert_eq!(v.lines().count(), dts.lines().count() + 1);
        assert!(virt_manifest("/ {\n};\n").is_err());
        // The build and the manifest agree (as `optee_manifest_matches_build` checks the plain one).
        let vars = setup::optee_virt_make_vars(Path::new("k.pem"));
        assert!(vars.contains(&format!("CFG_TZDRAM_START={:#x}", setup::OPTEE_VIRT_LOAD_ADDRESS + 0x4000)));
        assert!(vars.contains(&format!("CFG_TZDRAM_SIZE={:#x}", setup::OPTEE_VIRT_MEM_SIZE - 0x4000)));
        assert_eq!(layout::dts_cells(&v, "entrypoint-offset"), Some(vec![0x4000]));
    }

    #[test]
    fn optee_uuid_is_the_manifests() {
        let dts = std::fs::read_to_string(util::repo_root().join("tfa-integration/sp/optee.dts")).unwrap();
        let cells = layout::dts_cells(&dts, "uuid").unwrap();
        let b: Vec<u8> = cells.iter().flat_map(|c| c.to_le_bytes()).collect();
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]), OPTEE_UUID);
    }

    const RUN: &str = "quadrant-xtest-args: -t regression 1001 1002
quadrant-xtest: o regression_1001 Core self tests
quadrant-xtest:   regression_1001.1 OK
quadrant-xtest: regression_1001 OK
[op-tee] E/TC:? 0 TA panicked with code 0xdeadbeef
quadrant-xtest: regression_1002 FAILED first error at x.c:12
quadrant-xtest: +-----------------------------------------------------
quadrant-xtest: 23 subtests of which 1 failed
quadrant-xtest: 2 test cases of which 1 failed
quadrant-xtest: 0 test cases were skipped
quadrant-xtest: TEE test application done!
quadrant-xtest-time: 10.50 40.75
";

    #[test]
    fn invoke_line() {
        assert_eq!(parse_invoke("x\nquadrant-invoke: 2000 calls 123456 ns ret 0xffff0006\n"), Some((2000, 123456)));
        assert_eq!(parse_invoke("quadrant-invoke: open failed 0 calls"), None);
    }

    #[test]
    fn xtest_results_are_parsed() {
        let x = parse_xtest(RUN);
        assert_eq!(x.cases, vec![("regression_1001".to_owned(), true), ("regression_1002".to_owned(), false)]);
        assert_eq!(x.subtests, Some((23, 1)));
        assert_eq!(x.test_cases, Some((2, 1)));
        assert_eq!(x.passed(), 1);
        assert!((x.seconds.unwrap() - 30.25).abs() < 1e-9);
        assert_eq!(xtest_args(RUN).as_deref(), Some("-t regression 1001 1002"));
    }

    #[test]
    fn a_case_passing_only_under_the_reference_fails() {
        let reference = RUN.replace("regression_1002 FAILED first error at x.c:12", "regression_1002 OK");
        let fails = compare(RUN, &reference, false);
        assert_eq!(fails, vec!["regression_1002 passes under the reference, not under spmc".to_owned()]);
        assert!(compare(&reference, RUN, false).is_empty());
        assert_eq!(compare(RUN, &reference, true).len(), 1);
        assert!(compare(RUN, RUN, true).is_empty());
        let other = RUN.replace("1001 1002\n", "1001\n");
        assert!(compare(RUN, &other, false).iter().any(|f| f.contains("other xtest arguments")));
        // A reference run without results compares with nothing: a failure.
        let crashed = "quadrant-xtest-args: -t regression 1001 1002\n";
        assert!(compare(RUN, crashed, false).iter().any(|f| f.contains("no xtest results from the reference")));
    }

    /// A failing run's output: the checks find what is missing.
    #[test]
    fn errors_and_missing_devices_are_failures() {
        let out = "[op-tee] E/TC:? 0 ldelf failed\nERROR:   QEMU System Power off: with GPIO.\n";
        let fails = no_optee_errors(out);
        assert!(fails.iter().any(|f| f.contains("E/TC:")), "{fails:?}");
        assert!(fails.iter().any(|f| f.contains("secure-partition FF-A device")), "{fails:?}");
        assert!(!fails.iter().any(|f| f.contains("Power off")), "{fails:?}");
    }
}
