//! `cargo xtask bench`: one four-world boot with ns-hyp in bench mode.  ns-hyp
//! times 10,000 round trips of each call with CNTVCT; we print each as a ratio
//! to the floor (a null SMC answered by EL3) measured in the same run, write
//! `target/bench.json`, and list the images' sizes.

use crate::build::{self, Outputs};
use crate::qemu::{self, Boot};
use crate::util::{self, Result};
use std::fmt::Write as _;
use std::time::Duration;

/// A bench run: which BL33 measures, its line prefix, and its rows (name in the
/// output, what it measures).  Each run measures its own null-SMC floor, so
/// every ratio divides two numbers taken in the same boot.
struct Run {
    label: &'static str,
    prefix: &'static str,
    rows: &'static [(&'static str, &'static str)],
    /// The row every ratio of this run divides by (measured in the same boot).
    floor: &'static str,
    /// The boot that runs this bench.
    boot: fn(&Outputs, &'static str) -> Result<Boot>,
}

/// TF-A boot of `bios` with `quadrant.bench` in /chosen/bootargs.
fn bench_dtb_boot(bios: &std::path::Path, label: &str) -> Result<Boot> {
    let dtb = util::out_dir().join(format!("bench-{label}.dtb"));
    qemu::dtb_with_bootargs(bios, "quadrant.bench", &dtb)?;
    Ok(Boot::Tfa { bios: bios.to_path_buf(), dtb: Some(dtb) })
}

const NS_HYP: Run = Run {
    label: "ns-hyp",
    prefix: "[ns-hyp] bench ",
    rows: &[
        ("smc_floor", "null SMC answered by EL3 (SMCCC_VERSION) — the floor"),
        ("ffa_version", "FFA_VERSION answered by spmc"),
        ("ffa_direct_req_echo", "direct request round trip to the echo SP"),
        ("rmi_version", "RMI_VERSION answered by rmm"),
    ],
    floor: "smc_floor",
    boot: |o, label| bench_dtb_boot(&o.test_bios, label),
};

const REALM: Run = Run {
    label: "realm",
    prefix: "[ns-hyp] bench ",
    rows: &[
        ("smc_floor", "null SMC answered by EL3 — this run's floor"),
        ("rmi_version", "RMI_VERSION answered by rmm (with a realm built)"),
        ("rec_enter_host_call", "REC_ENTER -> RSI_HOST_CALL exit round trip"),
        ("attest_token", "RSI_ATTESTATION_TOKEN_INIT + CONTINUE to completion, timed in the Realm"),
    ],
    floor: "smc_floor",
    boot: |o, _| crate::tests::realm_bench_boot(o),
};

const FFA_PAYLOAD: Run = Run {
    label: "ffa-payload",
    prefix: "[ffa-payload] bench ",
    rows: &[
        ("smc_floor", "null SMC answered by EL3 — this run's floor"),
        ("ffa_direct_req_echo_core0", "NS -> echo direct request, core 0"),
        ("ffa_direct_req_echo_core3", "NS -> echo direct request, core 3"),
        ("ffa_direct_req_mp_core0", "NS -> mp direct request, core 0"),
        ("ffa_sp_to_sp", "NS -> mp -> echo (SP-to-SP) and back"),
        ("ffa_mem_share_1page", "MEM_SHARE + (mp) RETRIEVE + RELINQUISH + RECLAIM of 1 page"),
        ("ffa_mem_share_2mib", "MEM_SHARE + (mp) RETRIEVE + RELINQUISH + RECLAIM of 2 MiB"),
    ],
    floor: "smc_floor",
    boot: |o, label| bench_dtb_boot(&o.ffa_bios, label),
};

/// A bare EL1 guest under ns-hyp (--no-tfa, 1 vCPU): there is no null SMC to
/// EL3 inside a guest, so its floor is a plain loop it also times.
const GUEST_HVC: Run = Run {
    label: "guest-hvc",
    prefix: "[hvc-bench] bench ",
    rows: &[
        ("guest_floor", "isb + CNTVCT read inside the guest — this run's floor"),
        ("guest_null_hvc", "guest null-HVC round trip in ticks (EL1 -> ns-hyp -> EL1)"),
    ],
    floor: "guest_floor",
    boot: |o, _| crate::tests::nshyp::hvc_bench_guest_boot(o),
};

struct Row {
    name: String,
    iterations: u64,
    ticks: u64,
}

/// One row's split (issue P item 2): per call, in counter ticks
/// (instructions under -icount), the whole round trip, the image's own
/// share (spmc or rmm, `shared::split`), its SP's or Realm's, and the rest
/// (EL3, the world switches it makes, and the Normal-world client).
#[derive(Debug, PartialEq)]
pub struct Split {
    pub row: String,
    pub image: String,
    pub total: f64,
    pub ours: f64,
    pub inner: f64,
}

impl Split {
    pub fn outside(&self) -> f64 {
        self.total - self.ours - self.inner
    }
}

/// Pairs each `bench <row> <n> <ticks>` line with the last `split <image>
/// calls <c> own <o> inner <i>` line of each image printed since the
/// previous row (the marker after the row's loop prints it, before the
/// client prints the row).  An image that served fewer calls than the row
/// made (the floor's, or spmc during an RMI row: only its markers) is left out.
pub fn parse_split(output: &str, prefix: &str) -> Vec<Split> {
    let mut out = Vec::new();
    let mut since: Vec<(String, u64, u64, u64)> = Vec::new();
    for line in output.lines() {
        if let Some(at) = line.find("split ") {
            let f: Vec<&str> = line[at + "split ".len()..].split_whitespace().collect();
            if let [image, "calls", c, "own", o, "inner", i] = f.as_slice() {
                if let (Ok(c), Ok(o), Ok(i)) = (c.parse(), o.parse(), i.parse()) {
                    since.retain(|s| s.0 != *image);
                    since.push((image.to_string(), c, o, i));
                }
                continue;
            }
        }
        let Some(rest) = line.trim().strip_prefix(prefix) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if let [name, iters, ticks] = f.as_slice() {
            if let (Ok(n), Ok(t)) = (iters.parse::<u64>(), ticks.parse::<u64>()) {
                for (image, calls, own, inner) in since.drain(..) {
                    if calls < n || n == 0 {
                        continue;
                    }
                    let per = |x: u64| x as f64 / n as f64;
                    out.push(Split { row: name.to_string(), image, total: per(t), ours: per(own), inner: per(inner) });
                }
            }
        }
    }
    out
}

/// The split run: ns-hyp's bench modes (FF-A and RMI rows, then the Realm
/// rows) under -icount, against spmc and rmm built with `bench-split`.
/// Prints each row's split as ratios to its run's null-SMC floor.
fn split_rows(o: &Outputs) -> Result<Vec<(Split, f64, &'static str)>> {
    build::build_split_images()?;
    let bios = build::build_tfa(&o.paths, build::Bl33::NsHypTestSplit, &crate::layout::SpSet::Ours)?;
    let ffa_bios = build::build_tfa(&o.paths, build::Bl33::FfaPayloadSplit, &crate::layout::SpSet::Ours)?;
    let so = Outputs { paths: o.paths.clone(), images: o.images.clone(), bios: o.bios.clone(), test_bios: bios, linux_bios: o.linux_bios.clone(), ffa_bios };
    let mut all = Vec::new();
    for run in [&NS_HYP, &REALM, &FFA_PAYLOAD] {
        let boot = Boot::Extra { boot: Box::new((run.boot)(&so, run.label)?), args: ICOUNT.iter().map(|s| s.to_string()).collect() };
        let log = util::out_dir().join(format!("bench-{}-split.log", run.label));
        let cap = qemu::capture(&boot, Duration::from_secs(600), &log, &["PANIC:"])?;
        let (rows, _, done) = parse(&cap.output, run.prefix);
        if !done {
            return Err(format!("{} split run did not complete; serial log: {}", run.label, log.display()));
        }
        let floor = rows.iter().find(|r| r.name == run.floor).map(|r| r.ticks as f64 / r.iterations.max(1) as f64).ok_or("no floor row in the split run")?;
        all.extend(parse_split(&cap.output, run.prefix).into_iter().map(|s| (s, floor, run.label)));
    }
    Ok(all)
}

fn parse(output: &str, prefix: &str) -> (Vec<Row>, Option<u64>, bool) {
    let mut rows = Vec::new();
    let mut freq = None;
    let mut done = false;
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix(prefix) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        match f.as_slice() {
            ["done"] => done = true,
            ["cntfrq", hz] => freq = hz.parse().ok(),
            [name, iters, ticks] => {
                if let (Ok(iterations), Ok(ticks)) = (iters.parse(), ticks.parse()) {
                    rows.push(Row { name: name.to_string(), iterations, ticks });
                }
            }
            _ => {}
        }
    }
    (rows, freq, done)
}

/// QEMU's instruction counting: the virtual clock (and so CNTVCT) advances
/// with the instructions executed, one per ns (`shift=0`), and never while
/// idle (`sleep=off`): a row's ticks are then an exact count, the same run to
/// run, where wall-clock rows move with the host's load (issue P).
pub const ICOUNT: &[&str] = &["-icount", "shift=0,sleep=off"];

/// Boots `bios` with `quadrant.bench`, returns the rows as (key, calls,
/// ticks/call, ratio) and the counter frequency.  `icount`: under
/// [`ICOUNT`]; the keys then end in `_icount`.
fn measure(run: &Run, outputs: &Outputs, icount: bool) -> Result<(Vec<(String, u64, f64, f64, &'static str)>, Option<u64>)> {
    let out = util::out_dir();
    let mut boot = (run.boot)(outputs, run.label)?;
    let mut label = run.label.to_owned();
    if icount {
        boot = Boot::Extra { boot: Box::new(boot), args: ICOUNT.iter().map(|s| s.to_string()).collect() };
        label.push_str("-icount");
    }
    let log = out.join(format!("bench-{label}.log"));
    let cap = qemu::capture(&boot, Duration::from_secs(600), &log, &["PANIC:"])?;
    let (rows, freq, done) = parse(&cap.output, run.prefix);
    if !done || cap.exit != Some(0) {
        return Err(format!("{} bench run did not complete (exit {:?}); serial log: {}", run.label, cap.exit, log.display()));
    }
    let per_call = |r: &Row| r.ticks as f64 / r.iterations.max(1) as f64;
    let floor = rows.iter().find(|r| r.name == run.floor).map(per_call).ok_or(format!("no {} row in the {} bench output", run.floor, run.label))?;
    let mut table = Vec::new();
    for (name, what) in run.rows {
        // Keys are unique across runs: the realm run's rows carry its label.
        let mut key = match (*name, run.label) {
            ("smc_floor", l) => format!("{}_smc_floor", l.replace('-', "_")),
            (n, "realm") => format!("realm_{n}"),
            (n, _) => n.to_string(),
        };
        if icount {
            key.push_str("_icount");
        }
        match rows.iter().find(|r| r.name == *name) {
            Some(r) => table.push((key, r.iterations, per_call(r), per_call(r) / floor, *what)),
            None => table.push((key, 0, f64::NAN, f64::NAN, *what)),
        }
    }
    Ok((table, freq))
}

/// Wall-clock time from QEMU's start to the guest's `/init` reaching its shell.
fn time_to_prompt(boot: &Boot, label: &str) -> Result<f64> {
    let log = util::out_dir().join(format!("bench-{label}.log"));
    let cap = qemu::capture(boot, Duration::from_secs(300), &log, &["quadrant-init: shell", "PANIC:", "Kernel panic"])?;
    match cap.stopped_at {
        Some(t) if cap.output.contains("quadrant-init: shell") => Ok(t.as_secs_f64()),
        _ => Err(format!("{label}: the guest did not reach its shell; serial log: {}", log.display())),
    }
}

/// Linux boot-to-prompt under ns-hyp (no TF-A, 4 vCPUs on 4 CPUs) ÷ the same
/// kernel and initramfs on bare QEMU `-kernel` with the same machine options
/// (issue B1's goal: ≤ 1.5×); each the best of `BOOT_RUNS`.
fn guest_boot_ratio(o: &Outputs) -> Result<(f64, f64)> {
    let under = crate::tests::nshyp::no_tfa_guest_boot(o, "bench-guest", &[], 4, qemu::SMP, "")?;
    let kernel = crate::guest::kernel_image(&o.paths)?;
    let initrd = util::out_dir().join("initramfs").join("bench-guest.cpio");
    let bare = Boot::Custom {
        tfa: false,
        args: vec![
            "-kernel".into(),
            kernel.display().to_string(),
            "-initrd".into(),
            initrd.display().to_string(),
            "-append".into(),
            "console=ttyAMA0 earlycon=pl011,0x9000000 rdinit=/init".into(),
        ],
    };
    // Best of BOOT_RUNS, alternating, so a slow moment of the host hits both
    // sides alike and a single hiccup does not set the ratio.
    let (mut u, mut b) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..BOOT_RUNS {
        u = u.min(time_to_prompt(&under, "guest-under-ns-hyp")?);
        b = b.min(time_to_prompt(&bare, "guest-bare-qemu")?);
    }
    Ok((u, b))
}

const BOOT_RUNS: usize = 3;

/// The bench initramfs's script (where its shell would start):
/// ci/boot-counter's counter line, then the kernel's own uptime and idle time.
const BOOT_COUNTER_SCRIPT: &str = "chmod +x /boot-counter\n/boot-counter\nsed 's/^/quadrant-boot: uptime /' /proc/uptime";

/// The guest's command line on both sides: ns-hyp's default one, with
/// `nokaslr`.  With KASLR the kernel's random placement moved the count at
/// the shell by up to 3.5% from run to run (two values 35 million apart,
/// most of it in `Checked W+X mappings`' walk of the kernel's page tables);
/// without, three runs under ns-hyp agreed to 10,000 instructions.
const BOOT_CMDLINE: &str = "console=ttyAMA0 earlycon=pl011,0x9000000 rdinit=/init nokaslr";

/// The RTC on the virtual clock from a fixed date: with the host's clock
/// (QEMU's default) bare QEMU's count at the shell moved by whole timer
/// ticks (4 million instructions) from run to run, 957 to 972 million in
/// eight runs; with this, three runs agreed to 10,000.  Both sides get it.
const BOOT_RTC: &[&str] = &["-rtc", "clock=vm,base=2026-01-01T00:00:00"];

/// ci/boot-counter's `quadrant-boot: cntvct N cntfrq F` line: (N, F).
fn boot_counter(output: &str) -> Option<(u64, u64)> {
    output.lines().find_map(|l| {
        let w: Vec<&str> = l.split("quadrant-boot: cntvct ").nth(1)?.split_whitespace().collect();
        match w.as_slice() {
            [n, "cntfrq", f, ..] => Some((n.parse().ok()?, f.parse().ok()?)),
            _ => None,
        }
    })
}

/// The script's `quadrant-boot: uptime U I` line (/proc/uptime: seconds up,
/// seconds idle summed over CPUs, 10 ms steps).
fn boot_uptime(output: &str) -> Option<(f64, f64)> {
    output.lines().find_map(|l| {
        let mut w = l.split("quadrant-boot: uptime ").nth(1)?.split_whitespace();
        Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
    })
}

/// ns-hyp's bench-split totals (ns-hyp/src/vm/boot_split.rs): counter
/// ticks; `now` is when ns-hyp saw the guest's counter line.
#[derive(Debug, Default, PartialEq)]
pub struct BootSplit {
    pub now: u64,
    pub first_entry: u64,
    pub guest: u64,
    pub hyp: u64,
    pub idle: u64,
    pub exits: u64,
    /// (kind, exits, ns-hyp's ticks after them).
    pub kinds: Vec<(String, u64, u64)>,
}

/// The `split ns-hyp boot ...` line and the `split ns-hyp exit ...` lines after it.
pub fn parse_boot_split(output: &str) -> Option<BootSplit> {
    let mut split: Option<BootSplit> = None;
    for line in output.lines() {
        let Some(at) = line.find("split ns-hyp ") else { continue };
        let w: Vec<&str> = line[at + "split ns-hyp ".len()..].split_whitespace().collect();
        match w.as_slice() {
            ["boot", "now", now, "first-entry", f, "guest", g, "hyp", h, "idle", i, "exits", n] => {
                let p = |x: &str| x.parse::<u64>().ok();
                split = Some(BootSplit { now: p(now)?, first_entry: p(f)?, guest: p(g)?, hyp: p(h)?, idle: p(i)?, exits: p(n)?, kinds: Vec::new() });
            }
            ["exit", kind, n, t] => {
                if let (Some(s), Ok(n), Ok(t)) = (split.as_mut(), n.parse(), t.parse()) {
                    s.kinds.push((kind.to_string(), n, t));
                }
            }
            _ => {}
        }
    }
    split
}

/// One side of [`guest_boot_icount`]: the guest's counter at its prompt,
/// its /proc/uptime, and (the split run) ns-hyp's totals.
struct BootCount {
    cntvct: u64,
    uptime: (f64, f64),
    split: Option<BootSplit>,
}

/// Issue P: the Linux guest's own virtual counter at its prompt under ns-hyp
/// ÷ on bare QEMU, both under [`ICOUNT`] on 1 CPU (1 vCPU), the same kernel,
/// initramfs (bench-boot: ci/boot-counter where the shell would start) and
/// command line, 1 GiB of RAM each (ns-hyp's default for its guest; `-m 1G`
/// bare), Linux at EL1 on both sides (bare: no virtualization=on, so no KVM
/// start-up at EL2), no random seeds in either DT (bare: dtb-randomness=off;
/// ns-hyp's guest DT has none), the RTC on the virtual clock ([`BOOT_RTC`]).  CNTVOFF_EL2 is 0 under ns-hyp, so both counts run from
/// the machine's reset: ns-hyp's own start, the guest, ns-hyp's exit
/// handling and any idle jumps (sleep=off) are all in the ns-hyp figure.
/// The bare side runs twice: with the CPU features ns-hyp offers its guest
/// (the row's ratio) and with all of `-cpu max`'s ([`BARE_AS_OFFERED`]).
fn guest_boot_icount(o: &Outputs) -> Result<GuestBootIcount> {
    let prog = build::build_boot_counter()?;
    let data = std::fs::read(&prog).map_err(|e| format!("{}: {e}", prog.display()))?;
    let spec = crate::guest::InitramfsSpec { name: "bench-boot", modules: &[], script: Some(BOOT_COUNTER_SCRIPT), files: &[("/boot-counter", &data)] };
    let initrd = crate::guest::initramfs(&o.paths, &spec)?;
    let kernel = crate::guest::kernel_image(&o.paths)?;
    let payload = crate::tests::nshyp::GuestPayload { kernel: kernel.clone(), initrd: Some(initrd.clone()), cmdline: Some(BOOT_CMDLINE.into()) };
    let under = crate::tests::nshyp::hyp_guest_boot(o, None, "", &payload, 1, Some(1), "")?;
    // The same boot with ns-hyp's bench-split image in place of the product one.
    let split_image = build::build_nshyp_split()?;
    let Boot::Custom { tfa, args } = under.clone() else { return Err("ns-hyp's guest boot is not a custom one".into()) };
    let product = o.images.join("ns-hyp.bin").display().to_string();
    let split = Boot::Custom { tfa, args: args.into_iter().map(|a| if a == product { split_image.display().to_string() } else { a }).collect() };
    let bare = |cmdline: &str| Boot::Custom {
        tfa: false,
        args: [
            "-machine", "virt,gic-version=3,dtb-randomness=off", "-smp", "1", "-m", "1G", "-kernel", &kernel.display().to_string(), "-initrd", &initrd.display().to_string(), "-append", cmdline,
        ]
        .map(String::from)
        .to_vec(),
    };
    let run = |boot: Boot, label: &str| -> Result<BootCount> {
        let boot = Boot::Extra { boot: Box::new(boot), args: ICOUNT.iter().chain(BOOT_RTC).map(|s| s.to_string()).collect() };
        let log = util::out_dir().join(format!("bench-{label}.log"));
        let cap = qemu::capture(&boot, Duration::from_secs(900), &log, &["quadrant-init: script done", "Kernel panic", "PANIC:"])?;
        let cntvct = boot_counter(&cap.output).map(|c| c.0).ok_or(format!("{label}: no `quadrant-boot: cntvct` line; serial log: {}", log.display()))?;
        let uptime = boot_uptime(&cap.output).ok_or(format!("{label}: no `quadrant-boot: uptime` line; serial log: {}", log.display()))?;
        Ok(BootCount { cntvct, uptime, split: parse_boot_split(&cap.output) })
    };
    let u = run(under, "guest-boot-ns-hyp-icount")?;
    let b = run(bare(&format!("{BOOT_CMDLINE} {BARE_AS_OFFERED}")), "guest-boot-bare-icount")?;
    let f = run(bare(BOOT_CMDLINE), "guest-boot-bare-all-features-icount")?;
    let s = run(split, "guest-boot-ns-hyp-split-icount")?;
    if s.split.is_none() {
        return Err(format!("the split run printed no `split ns-hyp boot` line; serial log: {}", util::out_dir().join("bench-guest-boot-ns-hyp-split-icount.log").display()));
    }
    Ok(GuestBootIcount { under: u, bare: b, bare_all_features: f, split: s })
}

/// What [`guest_boot_icount`] measured.
struct GuestBootIcount {
    under: BootCount,
    /// Bare, told not to use what ns-hyp does not offer ([`BARE_AS_OFFERED`]).
    bare: BootCount,
    /// Bare with every feature of `-cpu max`.
    bare_all_features: BootCount,
    split: BootCount,
}

/// Linux's ID register overrides (Documentation/admin-guide/kernel-parameters.txt)
/// for the bare side: the features `-cpu max` has and ns-hyp does not offer
/// its guest (`vm::idregs`) that change the boot's count.  Under -icount a
/// FEAT_MOPS memset or memcpy counts one instruction per chunk of up to a
/// page (QEMU re-executes the SETM/CPYM for each): with them bare Linux
/// reached its shell 59 million instructions (6%) sooner, an artefact of
/// counting rather than ns-hyp's cost.  The same-command-line ratio is
/// printed too.
const BARE_AS_OFFERED: &str = "arm64.nomops arm64.nosme";

/// Issue B2: two Debian VMs (2 vCPUs, 512 MiB each) booting together under
/// ns-hyp to both their shells ÷ one of them alone, on the same 2 CPUs (no
/// TF-A); each the best of [`BOOT_RUNS`], alternating.  Both shells are
/// seen by the script, which then switches the console's input: ns-hyp's
/// answer to that ends the run (within the 50 ms the capture polls).
fn two_vms_boot_ratio(o: &Outputs) -> Result<(f64, f64)> {
    use crate::tests::nshyp::{multi_vm_boot, GuestPayload, VmSpec};
    let kernel = crate::guest::kernel_image(&o.paths)?;
    let initrd = crate::guest::initramfs(&o.paths, &crate::guest::InitramfsSpec { name: "bench-guest", modules: &[], script: None, files: &[] })?;
    let vm = || VmSpec { payload: GuestPayload { kernel: kernel.clone(), initrd: Some(initrd.clone()), cmdline: None }, vcpus: 2, mem_mib: 512, realm: false };
    let one = multi_vm_boot(o, &[vm()], 2, "")?;
    let two = Boot::Scripted {
        boot: Box::new(multi_vm_boot(o, &[vm(), vm()], 2, "")?),
        input: vec![("quadrant-init: shell".into(), String::new()), ("quadrant-init: shell".into(), "\x1d1".into())],
    };
    let both_up = |label: &str| -> Result<f64> {
        let log = util::out_dir().join(format!("bench-{label}.log"));
        let cap = qemu::capture(&two, Duration::from_secs(300), &log, &["console: input to vm1", "PANIC:", "Kernel panic"])?;
        match cap.stopped_at {
            Some(t) if cap.output.contains("console: input to vm1") => Ok(t.as_secs_f64()),
            _ => Err(format!("{label}: the two VMs did not both reach their shells; serial log: {}", log.display())),
        }
    };
    let (mut t2, mut t1) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..BOOT_RUNS {
        t2 = t2.min(both_up("two-vms")?);
        t1 = t1.min(time_to_prompt(&one, "one-vm")?);
    }
    Ok((t2, t1))
}

/// Issue B2 item 3: TCP throughput from VM 0 to VM 1 through ns-hyp's
/// virtio-net devices and switch ÷ over loopback inside VM 0, in one boot
/// of two VMs (4 vCPUs, 512 MiB each) on 2 CPUs (no TF-A, no uplink): 32 MiB
/// from /dev/zero through BusyBox nc each time, timed in the guest with
/// /proc/uptime (10 ms steps), three times each, alternating; the best of
/// each.  Returns (VM to VM, loopback) in MB/s.
fn vm_to_vm_tcp(o: &Outputs) -> Result<(f64, f64)> {
    use crate::tests::nshyp::{net_bench_input, net_bench_times, net_vms_boot, NET_BENCH_BYTES};
    let boot = Boot::Scripted { boot: Box::new(net_vms_boot(o, None)?), input: net_bench_input() };
    let log = util::out_dir().join("bench-vm-to-vm-tcp.log");
    let cap = qemu::capture(&boot, Duration::from_secs(600), &log, &["PANIC:", "Kernel panic"])?;
    let (vm, lo) = net_bench_times(&cap.output);
    let best = |t: &[f64]| t.iter().copied().filter(|&s| s > 0.0).fold(f64::INFINITY, f64::min);
    let (vm, lo) = (best(&vm), best(&lo));
    if !vm.is_finite() || !lo.is_finite() {
        return Err(format!("vm_to_vm_tcp: no completed transfer to the other VM or over loopback; serial log: {}", log.display()));
    }
    let mbs = |secs: f64| NET_BENCH_BYTES as f64 / secs / 1e6;
    Ok((mbs(vm), mbs(lo)))
}

/// Issue F: Debian's Linux 7.3 to its shell as a Realm of ns-hyp (2 RECs,
/// rmm, its 13,000-odd measured pages included) ÷ the same kernel,
/// initramfs and machine (TF-A, 1 CPU, 2 vCPUs, 256 MiB) as ns-hyp's normal
/// guest; each the best of [`BOOT_RUNS`], alternating.
fn realm_linux_boot_ratio(o: &Outputs) -> Result<(f64, f64)> {
    let realm = crate::tests::realm_linux_bench_boot(o, true)?;
    let normal = crate::tests::realm_linux_bench_boot(o, false)?;
    let (mut r, mut n) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..BOOT_RUNS {
        r = r.min(time_to_prompt(&realm, "realm-linux-as-realm")?);
        n = n.min(time_to_prompt(&normal, "realm-linux-as-normal-guest")?);
    }
    Ok((r, n))
}

/// Each row's goal as a ratio to its floor (issue P's targets; B1's for the
/// guest boot).  The SVG draws them as goal lines.
fn goal(key: &str) -> Option<f64> {
    let key = key.strip_suffix("_icount").unwrap_or(key);
    Some(match key {
        "ffa_version" => 5.0,
        k if k.starts_with("ffa_direct_req") => 18.0,
        "ffa_sp_to_sp" => 28.0,
        "rmi_version" | "realm_rmi_version" => 3.5,
        "realm_rec_enter_host_call" => 90.0,
        "guest_null_hvc" => 10.0,
        "guest_boot_to_prompt" => 1.1,
        "optee_invoke" => 1.2,
        _ => return None,
    })
}

/// One bar of `target/bench.svg`.
pub struct Bar {
    pub key: String,
    pub ratio: f64,
    pub goal: Option<f64>,
}

/// A horizontal bar chart of every row's ratio to its floor, on a log scale
/// (the rows span 1× to a few hundred ×), with each row's goal as a red line.
/// Green: at or under the goal; orange: over it; grey: a floor (no goal).
pub fn svg(bars: &[Bar]) -> String {
    let (label_w, plot_w, row_h, top) = (250.0, 560.0, 22.0, 40.0);
    let max = bars.iter().flat_map(|b| [b.ratio, b.goal.unwrap_or(1.0)]).filter(|x| x.is_finite()).fold(2.0f64, f64::max) * 1.3;
    let x = |v: f64| label_w + plot_w * (v.max(1.0).ln() / max.ln());
    let height = top + row_h * bars.len() as f64 + 40.0;
    let width = label_w + plot_w + 90.0;
    let mut o = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">cargo xtask bench: each row ÷ its floor (log scale; red line = goal)</text>\n"
    );
    for t in [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0].into_iter().filter(|t| *t <= max) {
        let _ = write!(
            o,
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\" fill=\"#666\">{t}×</text>\n",
            x(t),
            height - 30.0,
            height - 15.0
        );
    }
    for (i, b) in bars.iter().enumerate() {
        let y = top + row_h * i as f64;
        let colour = match b.goal {
            None => "#999",
            Some(g) if b.ratio <= g => "#3a3",
            Some(_) => "#e80",
        };
        let w = if b.ratio.is_finite() { x(b.ratio) - label_w } else { 0.0 };
        let _ = write!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect class=\"bar\" x=\"{label_w}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            label_w - 8.0,
            y + 15.0,
            b.key,
            y + 3.0,
            w.max(1.0),
            row_h - 6.0,
            label_w + w.max(1.0) + 4.0,
            y + 15.0,
            if b.ratio.is_finite() { format!("{:.2}×", b.ratio) } else { "—".into() }
        );
        if let Some(g) = b.goal {
            let _ = write!(o, "<line class=\"goal\" x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"red\" stroke-width=\"2\"/>\n", x(g), y + 1.0, y + row_h - 1.0);
        }
    }
    o.push_str("</svg>\n");
    o
}

/// `cargo xtask bench [FILTER]`: every row, or (FILTER) only the groups of
/// rows whose key contains FILTER, printed but not written to
/// target/bench.json and target/bench.svg (which always hold a full run).
pub fn bench(outputs: &Outputs, filter: Option<&str>) -> Result<bool> {
    let wanted = |keys: &[&str]| filter.is_none_or(|f| keys.iter().any(|k| k.contains(f)));
    let mut all = Vec::new();
    let mut freq = None;
    // Wall-clock rows first, then the same rows counted in instructions.
    for icount in [false, true] {
        for run in [&NS_HYP, &FFA_PAYLOAD, &REALM, &GUEST_HVC] {
            if !wanted(&run.rows.iter().map(|r| r.0).collect::<Vec<_>>()) {
                continue;
            }
            let (rows, f) = measure(run, outputs, icount)?;
            all.extend(rows);
            if !icount {
                freq = freq.or(f);
            }
        }
    }
    let mut ok = true;
    let mut bars = Vec::new();
    let mut json = String::from("{\n");
    println!("{:<36} {:>8} {:>14} {:>9}  {}", "row", "calls", "ticks/call", "÷ floor", "what");
    for (key, calls, tpc, ratio, what) in &all {
        ok &= ratio.is_finite();
        let how = if key.ends_with("_icount") { " [instructions, -icount shift=0]" } else { "" };
        println!("{:<36} {:>8} {:>14.1} {:>9.2}  {what}{how}", key, calls, tpc, ratio);
        let _ = writeln!(json, "  \"{key}\": {{\"calls\": {calls}, \"ticks_per_call\": {}, \"ratio_to_floor\": {}, \"goal\": {}}},", num(*tpc), num(*ratio), goal(key).map(num).unwrap_or("null".into()));
        bars.push(Bar { key: key.clone(), ratio: *ratio, goal: goal(key) });
    }
    // Issue H: spmc's cold boot with SP signatures checked ÷ without.
    for icount in [false, true].into_iter().filter(|_| wanted(&["spmc_boot_signed_sps", "boot_to_spmc_ready_signed_sps"])) {
        for (key, calls, tpc, ratio, what) in &signature_boot_ratio(outputs, icount)? {
            ok &= ratio.is_finite();
            println!("{:<36} {:>8} {:>14.1} {:>9.2}  {what}", key, calls, tpc, ratio);
            let _ = writeln!(json, "  \"{key}\": {{\"calls\": {calls}, \"ticks_per_call\": {}, \"ratio_to_floor\": {}, \"goal\": {}}},", num(*tpc), num(*ratio), goal(key).map(num).unwrap_or("null".into()));
            bars.push(Bar { key: key.clone(), ratio: *ratio, goal: goal(key) });
        }
    }
    // Issue G: a direct request from Linux through pKVM ÷ the same from Linux at EL2.
    for icount in [false, true].into_iter().filter(|_| wanted(&["pkvm_direct_req"])) {
        for (key, calls, tpc, ratio, what) in &pkvm_direct_req_ratio(outputs, icount)? {
            ok &= ratio.is_finite();
            println!("{:<36} {:>8} {:>14.1} {:>9.2}  {what}", key, calls, tpc, ratio);
            let _ = writeln!(json, "  \"{key}\": {{\"calls\": {calls}, \"ticks_per_call\": {}, \"ratio_to_floor\": {}, \"goal\": {}}},", num(*tpc), num(*ratio), goal(key).map(num).unwrap_or("null".into()));
            bars.push(Bar { key: key.clone(), ratio: *ratio, goal: goal(key) });
        }
    }
    // Issue D2: one OP-TEE invoke round trip under spmc ÷ the SPD=opteed reference.
    for icount in [false, true].into_iter().filter(|_| wanted(&["optee_invoke"])) {
        let (key, calls, tpc, ratio, what) = optee_invoke_ratio(outputs, icount)?;
        ok &= ratio.is_finite();
        println!("{:<36} {:>8} {:>14.1} {:>9.2}  {what}", key, calls, tpc, ratio);
        let _ = writeln!(json, "  \"{key}\": {{\"calls\": {calls}, \"ticks_per_call\": {}, \"ratio_to_floor\": {}, \"goal\": {}}},", num(tpc), num(ratio), goal(&key).map(num).unwrap_or("null".into()));
        bars.push(Bar { key: key.clone(), ratio, goal: goal(&key) });
    }
    // Issue B3: a guest's direct request through ns-hyp's FF-A proxy ÷ ns-hyp's own.
    for icount in [false, true].into_iter().filter(|_| wanted(&["guest_ffa_direct_req"])) {
        let (key, calls, tpc, ratio, what) = guest_ffa_direct_req_ratio(outputs, icount)?;
        ok &= ratio.is_finite();
        println!("{:<36} {:>8} {:>14.1} {:>9.2}  {what}", key, calls, tpc, ratio);
        let _ = writeln!(json, "  \"{key}\": {{\"calls\": {calls}, \"ticks_per_call\": {}, \"ratio_to_floor\": {}, \"goal\": {}}},", num(tpc), num(ratio), goal(&key).map(num).unwrap_or("null".into()));
        bars.push(Bar { key: key.clone(), ratio, goal: goal(&key) });
    }
    // Issue B4: the guest's own cycle count for a fixed loop under ns-hyp ÷ on bare QEMU.
    if wanted(&["guest_pmu_loop_cycles"]) {
        let (key, calls, tpc, ratio, what) = guest_pmu_loop_ratio(outputs)?;
        ok &= ratio.is_finite();
        println!("{:<36} {:>8} {:>14.1} {:>9.2}  {what}", key, calls, tpc, ratio);
        let _ = writeln!(json, "  \"{key}\": {{\"calls\": {calls}, \"ticks_per_call\": {}, \"ratio_to_floor\": {}, \"goal\": {}}},", num(tpc), num(ratio), goal(&key).map(num).unwrap_or("null".into()));
        bars.push(Bar { key: key.clone(), ratio, goal: goal(&key) });
    }
    // Issue B2: two VMs booting together ÷ one alone, on the same CPUs.
    if wanted(&["two_vms_boot_to_prompt"]) {
        let (two, one) = two_vms_boot_ratio(outputs)?;
        let ratio = two / one;
        ok &= ratio.is_finite();
        println!("{:<36} {:>8} {:>14} {:>9}  {}", "two_vms_boot_to_prompt", "", format!("{two:.1} s"), format!("{ratio:.2}"), format!("two VMs (2 vCPUs each) to both shells on 2 CPUs ÷ one VM alone ({one:.1} s)"));
        let _ = writeln!(json, "  \"two_vms_boot_to_prompt\": {{\"two_s\": {}, \"one_s\": {}, \"ratio\": {}, \"goal\": null}},", num(two), num(one), num(ratio));
        bars.push(Bar { key: "two_vms_boot_to_prompt".into(), ratio, goal: None });
    }
    // Issue B2 item 3: TCP between two VMs through ns-hyp's switch ÷ loopback in one of them.
    if wanted(&["vm_to_vm_tcp"]) {
        let (vm, lo) = vm_to_vm_tcp(outputs)?;
        let ratio = vm / lo;
        ok &= ratio.is_finite();
        let (speed, r) = (format!("{vm:.1} MB/s"), format!("{ratio:.3}"));
        println!("{:<36} {:>8} {speed:>14} {r:>9}  TCP VM 0 -> VM 1 through ns-hyp's switch ÷ loopback in VM 0 ({lo:.1} MB/s), 32 MiB via nc", "vm_to_vm_tcp", "");
        let _ = writeln!(json, "  \"vm_to_vm_tcp\": {{\"vm_to_vm_mb_s\": {}, \"loopback_mb_s\": {}, \"ratio\": {}, \"goal\": null}},", num(vm), num(lo), num(ratio));
        bars.push(Bar { key: "vm_to_vm_tcp".into(), ratio, goal: None });
    }
    // Issue P: Linux's boot to its prompt under ns-hyp ÷ bare QEMU, in the
    // guest's own counter under -icount, and where ns-hyp's share goes.
    if wanted(&["guest_boot_to_prompt_icount"]) {
        let GuestBootIcount { under: u, bare: b, bare_all_features: f, split: s } = guest_boot_icount(outputs)?;
        let key = "guest_boot_to_prompt_icount";
        let ratio = u.cntvct as f64 / b.cntvct as f64;
        let ratio_all = u.cntvct as f64 / f.cntvct as f64;
        ok &= ratio.is_finite();
        println!("{:<36} {:>8} {:>14} {:>9.3}  Linux to its shell under ns-hyp ÷ bare QEMU ({}, {BARE_AS_OFFERED}): the guest's CNTVCT there, 1 vCPU [instructions, -icount shift=0]", key, 1, u.cntvct, ratio, b.cntvct);
        println!("  ÷ bare QEMU with all of -cpu max (MOPS, SME: {}): {:.3}", f.cntvct, ratio_all);
        let sp = s.split.as_ref().expect("checked by guest_boot_icount");
        let rest = sp.now.saturating_sub(sp.first_entry + sp.guest + sp.hyp + sp.idle);
        let hyp = sp.hyp + rest;
        let pct = |x: u64| 100.0 * x as f64 / sp.now.max(1) as f64;
        println!("  /proc/uptime at the shell (s, idle s): under ns-hyp {:.2} {:.2}, bare {:.2} {:.2}, bare with all features {:.2} {:.2}", u.uptime.0, u.uptime.1, b.uptime.0, b.uptime.1, f.uptime.0, f.uptime.1);
        println!(
            "  split (bench-split ns-hyp, its guest at {} = {:.3}× bare): ns-hyp's start {} ({:.1}%), guest {} ({:.1}%), ns-hyp's exit handling {} ({:.1}%, {} exits), idle {} ({:.1}%)",
            sp.now,
            sp.now as f64 / b.cntvct as f64,
            sp.first_entry,
            pct(sp.first_entry),
            sp.guest,
            pct(sp.guest),
            hyp,
            pct(hyp),
            sp.exits,
            sp.idle,
            pct(sp.idle)
        );
        println!(
            "  without ns-hyp's start: {:.3}×; without its exit handling too (the guest and its idle alone): {:.3}× bare",
            (u.cntvct - sp.first_entry.min(u.cntvct)) as f64 / b.cntvct as f64,
            (sp.guest + sp.idle) as f64 / b.cntvct as f64
        );
        // The split run is longer than the product's: its counting, and the
        // boot's own drift with timing (docs/performance.md): its parts are
        // good to a percent or two, the product's share by difference roughly.
        let own = u.cntvct.saturating_sub(sp.first_entry + sp.guest + sp.idle);
        println!(
            "  the product image's exit handling, roughly, by difference (its count - start - the split's guest and idle): {} ({:.1}% of bare, {:.0} per exit); the split run was {} longer ({:.0} per exit)",
            own,
            100.0 * own as f64 / b.cntvct as f64,
            own as f64 / sp.exits.max(1) as f64,
            s.cntvct.saturating_sub(u.cntvct),
            s.cntvct.saturating_sub(u.cntvct) as f64 / sp.exits.max(1) as f64
        );
        let mut kinds: Vec<&(String, u64, u64)> = sp.kinds.iter().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.2));
        println!("  {:<14} {:>9} {:>14} {:>10} {:>9}", "exit kind", "exits", "ns-hyp ticks", "per exit", "÷ bare");
        for (kind, n, t) in &kinds {
            println!("  {:<14} {:>9} {:>14} {:>10.0} {:>8.2}%", kind, n, t, *t as f64 / (*n).max(1) as f64, 100.0 * *t as f64 / b.cntvct as f64);
        }
        let kinds_json = kinds.iter().map(|(k, n, t)| format!("\"{k}\": [{n}, {t}]")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            json,
            "  \"{key}\": {{\"under_ns_hyp\": {}, \"bare_qemu\": {}, \"ratio\": {}, \"goal\": {}, \"bare_qemu_all_features\": {}, \"ratio_all_features\": {}, \"uptime_under_s\": [{}, {}], \"uptime_bare_s\": [{}, {}], \"split\": {{\"now\": {}, \"ns_hyp_start\": {}, \"guest\": {}, \"ns_hyp_exits\": {}, \"idle\": {}, \"exits\": {}, \"by_kind\": {{{kinds_json}}}}}}},",
            u.cntvct,
            b.cntvct,
            num(ratio),
            goal(key).map(num).unwrap_or("null".into()),
            f.cntvct,
            num(ratio_all),
            u.uptime.0,
            u.uptime.1,
            b.uptime.0,
            b.uptime.1,
            sp.now,
            sp.first_entry,
            sp.guest,
            hyp,
            sp.idle,
            sp.exits
        );
        bars.push(Bar { key: key.into(), ratio, goal: goal(key) });
    }
    // Issue P item 2: where each round trip's instructions go.
    if wanted(&["split"]) {
        let rows = split_rows(outputs)?;
        println!();
        println!("{:<36} {:>9} {:>9} {:>9} {:>9}  {}", "split [instructions, -icount]", "total", "EL3+NS", "ours", "SP/Realm", "(each ÷ the run's null-SMC floor)");
        for (s, floor, label) in &rows {
            // The realm run's rows carry its label, as in the table above.
            let key = if *label == "realm" { format!("realm_{}_split_{}", s.row, s.image) } else { format!("{}_split_{}", s.row, s.image) };
            println!("{:<36} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {} per call: {:.0} = {:.0} outside + {:.0} {} + {:.0} inner", key, s.total / floor, s.outside() / floor, s.ours / floor, s.inner / floor, s.row, s.total, s.outside(), s.ours, s.image, s.inner);
            let _ = writeln!(json, "  \"{key}\": {{\"total\": {}, \"outside\": {}, \"ours\": {}, \"inner\": {}, \"floor\": {}}},", num(s.total), num(s.outside()), num(s.ours), num(s.inner), num(*floor));
        }
        ok &= !rows.is_empty();
    }
    if filter.is_some() {
        return Ok(ok);
    }
    let _ = writeln!(json, "  \"cntfrq_hz\": {},", freq.map(|f| f.to_string()).unwrap_or("null".into()));
    let (under, bare) = guest_boot_ratio(outputs)?;
    let ratio = under / bare;
    ok &= ratio.is_finite();
    println!();
    println!("{:<36} {:>8} {:>14} {:>9}  {}", "guest_boot_to_prompt", "", format!("{under:.1} s"), format!("{ratio:.2}"), format!("Linux to its shell under ns-hyp ÷ bare QEMU -kernel ({bare:.1} s)"));
    let _ = writeln!(
        json,
        "  \"guest_boot_to_prompt\": {{\"under_ns_hyp_s\": {}, \"bare_qemu_s\": {}, \"ratio\": {}, \"goal\": {}}},",
        num(under),
        num(bare),
        num(ratio),
        goal("guest_boot_to_prompt").map(num).unwrap_or("null".into())
    );
    bars.push(Bar { key: "guest_boot_to_prompt".into(), ratio, goal: goal("guest_boot_to_prompt") });
    let (realm, normal) = realm_linux_boot_ratio(outputs)?;
    let ratio = realm / normal;
    ok &= ratio.is_finite();
    println!("{:<36} {:>8} {:>14} {:>9}  {}", "realm_linux_boot_to_prompt", "", format!("{realm:.1} s"), format!("{ratio:.2}"), format!("Linux to its shell as a Realm (2 RECs) ÷ as ns-hyp's normal guest ({normal:.1} s)"));
    let _ = writeln!(
        json,
        "  \"realm_linux_boot_to_prompt\": {{\"as_realm_s\": {}, \"as_normal_guest_s\": {}, \"ratio\": {}, \"goal\": null}},",
        num(realm),
        num(normal),
        num(ratio)
    );
    bars.push(Bar { key: "realm_linux_boot_to_prompt".into(), ratio, goal: None });
    println!();
    println!("{:<36} {:>8}", "image", "bytes");
    let mut sizes = Vec::new();
    for (_, bin) in build::images() {
        let p = outputs.images.join(format!("{bin}.bin"));
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        println!("{:<36} {:>8}", format!("{bin}.bin"), size);
        sizes.push(format!("\"{bin}\": {size}"));
    }
    let _ = writeln!(json, "  \"image_bytes\": {{{}}}\n}}", sizes.join(", "));
    let path = util::repo_root().join("target").join("bench.json");
    util::write_atomic(&path, json.as_bytes())?;
    let chart = path.with_extension("svg");
    util::write_atomic(&chart, svg(&bars).as_bytes())?;
    println!("\nwrote {} and {} (open the SVG in any web browser)", path.display(), chart.display());
    Ok(ok)
}

/// spmc's `cold boot: N counter ticks (at M since reset), SP signatures ...` line.
fn cold_boot_ticks(output: &str) -> Option<(u64, u64)> {
    let rest = output.lines().find_map(|l| l.split("[spmc] cold boot: ").nth(1))?;
    let mut w = rest.split_whitespace();
    let ticks = w.next()?.parse().ok()?;
    let since_reset = rest.split("(at ").nth(1)?.split_whitespace().next()?.parse().ok()?;
    Some((ticks, since_reset))
}

/// One OP-TEE invoke round trip (ci/optee-invoke-bench: an unknown command
/// of OP-TEE's invoke-tests pseudo TA, from Linux user space through
/// /dev/tee0) under spmc ÷ the same under the SPD=opteed reference.  Ticks
/// per call = spmc's ns per invoke (CLOCK_MONOTONIC; under `-icount
/// shift=0` 1 ns = 1 instruction).
fn optee_invoke_ratio(o: &Outputs, icount: bool) -> Result<TableRow> {
    let mut per_call = Vec::new();
    for (label, reference) in [("optee-invoke-spmc", false), ("optee-invoke-ref", true)] {
        let mut boot = crate::tests::optee::invoke_bench_boot(o, reference)?;
        let mut label = label.to_owned();
        if icount {
            boot = Boot::Extra { boot: Box::new(boot), args: ICOUNT.iter().map(|s| s.to_string()).collect() };
            label.push_str("-icount");
        }
        let log = util::out_dir().join(format!("bench-{label}.log"));
        let cap = qemu::capture(&boot, Duration::from_secs(900), &log, &["quadrant-init: script done", "Kernel panic", "PANIC:"])?;
        match crate::tests::optee::parse_invoke(&cap.output) {
            Some((calls, ns)) if calls > 0 => per_call.push((calls, ns as f64 / calls as f64)),
            _ => return Err(format!("{label}: no `quadrant-invoke: N calls T ns` line; serial log: {}", log.display())),
        }
    }
    let (spmc, reference) = (per_call[0], per_call[1]);
    Ok(if icount {
        ("optee_invoke_icount".into(), spmc.0, spmc.1, spmc.1 / reference.1, "OP-TEE invoke (no-op PTA command) from Linux, spmc ÷ SPD=opteed reference [instructions, -icount shift=0]")
    } else {
        ("optee_invoke".into(), spmc.0, spmc.1, spmc.1 / reference.1, "OP-TEE invoke (no-op PTA command) from Linux, spmc ÷ SPD=opteed reference")
    })
}

/// Issue B3: a guest's direct request to the echo SP, under its own FF-A id
/// through ns-hyp's FF-A proxy, ÷ the same request from ns-hyp itself, both
/// timed in one boot ([`crate::tests::nshyp::guest_ffa_bench_boot`]).
/// Ticks per call = the guest's.
fn guest_ffa_direct_req_ratio(o: &Outputs, icount: bool) -> Result<TableRow> {
    let mut boot = crate::tests::nshyp::guest_ffa_bench_boot(o)?;
    let mut label = "guest-ffa".to_owned();
    if icount {
        boot = Boot::Extra { boot: Box::new(boot), args: ICOUNT.iter().map(|s| s.to_string()).collect() };
        label.push_str("-icount");
    }
    let log = util::out_dir().join(format!("bench-{label}.log"));
    let cap = qemu::capture(&boot, Duration::from_secs(600), &log, &["[hvc-bench] bench done", "PANIC"])?;
    let per_call = |prefix: &str, name: &str| -> Result<(u64, f64)> {
        let (rows, _, _) = parse(&cap.output, prefix);
        match rows.iter().find(|r| r.name == name) {
            Some(r) if r.iterations > 0 => Ok((r.iterations, r.ticks as f64 / r.iterations as f64)),
            _ => Err(format!("{label}: no `{prefix}{name} N T` line; serial log: {}", log.display())),
        }
    };
    let hyp = per_call("[ns-hyp] bench ", "ffa_direct_req_echo")?;
    let guest = per_call("[hvc-bench] bench ", "guest_ffa_direct_req_echo")?;
    let what = "direct request to the echo SP from a guest (its own FF-A id, through ns-hyp's proxy) ÷ the same from ns-hyp";
    Ok(if icount {
        ("guest_ffa_direct_req_icount".into(), guest.0, guest.1, guest.1 / hyp.1, what)
    } else {
        ("guest_ffa_direct_req".into(), guest.0, guest.1, guest.1 / hyp.1, what)
    })
}

/// ci/guest-cpu-features' `guest_cpu_features info: pmu_loop_cycles=<n>` line.
fn pmu_loop_cycles(output: &str) -> Option<u64> {
    output.lines().find_map(|l| l.split("guest_cpu_features info: pmu_loop_cycles=").nth(1)?.trim().parse().ok())
}

/// Iterations of the loop behind `pmu_loop_cycles` (ci/guest-cpu-features).
const PMU_LOOP_ITERATIONS: u64 = 1_000_000;

/// Issue B4: ci/guest-cpu-features' `pmu_loop_cycles` (PMCCNTR_EL0 across
/// 1,000,000 iterations of a 4-instruction loop at EL1, IRQs masked, the
/// cycle counter filtered to EL0/EL1) under ns-hyp ÷ on bare QEMU: the two
/// runs of the guest_cpu_features test, each under [`ICOUNT`], where QEMU's
/// cycle counter (1 GHz of virtual time) counts instructions exactly.  Each
/// run stops once the line is out.  Ticks per call = ns-hyp's cycles per
/// iteration.  A run without the line (no PMU in the guest) gives NaN.
fn guest_pmu_loop_ratio(o: &Outputs) -> Result<TableRow> {
    let (bare, hyp) = crate::tests::nshyp::cpu_features_runs(o)?;
    let mut cycles = Vec::new();
    for (label, boot) in [("guest-pmu-loop-bare-icount", bare), ("guest-pmu-loop-ns-hyp-icount", hyp)] {
        let boot = Boot::Extra { boot: Box::new(boot), args: ICOUNT.iter().map(|s| s.to_string()).collect() };
        let log = util::out_dir().join(format!("bench-{label}.log"));
        let cap = qemu::capture(&boot, Duration::from_secs(600), &log, &["pmu_loop_cycles=", "PANIC"])?;
        let n = pmu_loop_cycles(&cap.output);
        if n.is_none() {
            eprintln!("xtask: {label}: no `guest_cpu_features info: pmu_loop_cycles=` line (no PMU in the guest?); serial log: {}", log.display());
        }
        cycles.push(n.map(|n| n as f64).unwrap_or(f64::NAN));
    }
    let (bare, hyp) = (cycles[0], cycles[1]);
    Ok((
        "guest_pmu_loop_cycles".into(),
        PMU_LOOP_ITERATIONS,
        hyp / PMU_LOOP_ITERATIONS as f64,
        hyp / bare,
        "guest PMCCNTR_EL0 over a fixed 1M-iteration loop, under ns-hyp ÷ bare QEMU [instructions, -icount shift=0]",
    ))
}

/// One printed row: key, calls, ticks per call, ratio, what it measures.
type TableRow = (String, u64, f64, f64, &'static str);

/// Boot with every SP package's signature checked (the build's FIP) ÷ the
/// same FIP with the SPMC manifest trusting no key (the checked-in
/// tfa-integration/spmc_manifest.dts: no check, Hafnium's behaviour).  Two
/// rows, wall clock or `_icount`: spmc's own cold boot (manifest to every SP
/// initialised; 4 SPs) and the whole boot from reset to that point (TF-A's
/// BL1, BL2, BL31 before it).  Ticks per "call" = the checked boot's ticks.
fn signature_boot_ratio(o: &Outputs, icount: bool) -> Result<Vec<TableRow>> {
    let template = std::fs::read_to_string(util::repo_root().join("tfa-integration/spmc_manifest.dts")).map_err(|e| e.to_string())?;
    let unchecked = build::bios_variant(&o.ffa_bios, "bench-no-signature-check", &[build::FipEdit::SpmcManifest(&template)])?;
    let mut ticks = Vec::new();
    for (label, bios, want) in [("spmc-signed", o.ffa_bios.clone(), "SP signatures checked"), ("spmc-unsigned", unchecked, "SP signatures not checked")] {
        let mut boot = Boot::Tfa { bios, dtb: None };
        let mut label = label.to_owned();
        if icount {
            boot = Boot::Extra { boot: Box::new(boot), args: ICOUNT.iter().map(|s| s.to_string()).collect() };
            label.push_str("-icount");
        }
        let log = util::out_dir().join(format!("bench-{label}.log"));
        let cap = qemu::capture(&boot, Duration::from_secs(300), &log, &["SP signatures ", "PANIC:"])?;
        match cold_boot_ticks(&cap.output) {
            Some(t) if cap.output.contains(want) => ticks.push(t),
            _ => return Err(format!("{label}: no `[spmc] cold boot: .. {want}` line; serial log: {}", log.display())),
        }
    }
    let (with, without) = (ticks[0], ticks[1]);
    let sfx = if icount { "_icount" } else { "" };
    let (spmc_what, reset_what) = if icount {
        ("spmc cold boot, 4 SP signatures checked ÷ unchecked [instructions, -icount shift=0]", "reset to spmc's init done, checked ÷ unchecked [instructions, -icount shift=0]")
    } else {
        ("spmc cold boot, 4 SP signatures checked ÷ unchecked", "reset to spmc's init done, checked ÷ unchecked")
    };
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    Ok(vec![
        (format!("spmc_boot_signed_sps{sfx}"), 1, with.0 as f64, ratio(with.0, without.0), spmc_what),
        (format!("boot_to_spmc_ready_signed_sps{sfx}"), 1, with.1 as f64, ratio(with.1, without.1), reset_what),
    ])
}

/// Direct requests timed by our Linux module (`quadrant_ffa_probe`,
/// `bench_iters`) in each of the two pKVM bench boots.
const PKVM_BENCH_ITERS: u32 = 2000;

/// The module's `quadrant-ffa-probe: bench direct_req <id> <n> calls median
/// <ticks> min .. total .. ticks .. ns 0 failed` line: (n, median ticks per call).
/// The first such line that reads whole (spmc's log shares the UART and
/// can land inside a console line; the script replays the kernel log too).
fn probe_bench_line(output: &str) -> Option<(u64, u64)> {
    output.lines().filter_map(|l| l.split("quadrant-ffa-probe: bench direct_req ").nth(1)).find_map(|rest| {
        let w: Vec<&str> = rest.split_whitespace().collect();
        match w.as_slice() {
            [_, n, "calls", "median", median, .., "0", "failed"] => Some((n.parse().ok()?, median.parse().ok()?)),
            _ => None,
        }
    })
}

/// Issue G: Debian's Linux 7.3 as BL33 times [`PKVM_BENCH_ITERS`] direct
/// requests to echo from our module (CNTVCT around each, after 100 untimed
/// ones; the median call is the figure, so that the console's printing
/// thread or a tick preempting a call does not count), once with `kvm-arm.mode=protected` (Linux at EL1: each
/// SMC traps to pKVM, whose FF-A proxy forwards it to EL3) and once without
/// (Linux at EL2 with VHE: its SMC goes straight to EL3).  Same kernel,
/// initramfs, module and machine; the row is the first ÷ the second, ticks
/// per call = through pKVM.
fn pkvm_direct_req_ratio(o: &Outputs, icount: bool) -> Result<Vec<TableRow>> {
    let echo = crate::tests::pkvm::sp_id("echo").ok_or("no echo SP in sp_layout.json")?;
    let script = format!(
        "insmod /lib/modules/{}.ko bench_id={echo:#06x} bench_iters={PKVM_BENCH_ITERS}\ndmesg | grep -E 'bench direct_req|Protected .* mode initialized' | sed 's/^/quadrant-dmesg: /'",
        crate::kmod::NAME
    );
    let initrd = crate::run::pkvm_initramfs(o, "bench-pkvm", Some(&script))?;
    // One CPU (`nosmp`): under -icount the counter advances with every
    // vCPU's instructions, so the others must not run meanwhile.
    // `quiet`: the result comes back through the kernel log, not the console.
    let base = "console=ttyAMA0 earlycon rdinit=/init nosmp quiet";
    let mut per_call = Vec::new();
    for (label, cmdline) in [("pkvm", crate::run::pkvm_cmdline(base)), ("linux-el2", base.to_owned())] {
        let mut boot = crate::tests::spmc::linux_bl33_boot(o, &initrd, &format!("bench-{label}"), &cmdline)?;
        let mut label = format!("bench-{label}");
        if icount {
            boot = Boot::Extra { boot: Box::new(boot), args: ICOUNT.iter().map(|s| s.to_string()).collect() };
            label.push_str("-icount");
        }
        let log = util::out_dir().join(format!("{label}.log"));
        let cap = qemu::capture(&boot, Duration::from_secs(600), &log, &["Kernel panic", "PANIC:"])?;
        match probe_bench_line(&cap.output) {
            Some((n, median)) if n > 0 => per_call.push(median as f64),
            _ => return Err(format!("{label}: no `quadrant-ffa-probe: bench direct_req` line without failures; serial log: {}", log.display())),
        }
        if label.starts_with("bench-pkvm") && !cap.output.lines().any(|l| l.starts_with("quadrant-dmesg: ") && l.contains("mode initialized successfully")) {
            return Err(format!("{label}: pKVM did not come up; serial log: {}", log.display()));
        }
    }
    let (pkvm, el2) = (per_call[0], per_call[1]);
    let (key, what) = if icount {
        ("pkvm_ffa_direct_req_icount", "Linux -> echo direct request through pKVM ÷ from Linux at EL2 without pKVM [instructions, -icount shift=0]")
    } else {
        ("pkvm_ffa_direct_req", "Linux -> echo direct request through pKVM ÷ from Linux at EL2 without pKVM")
    };
    Ok(vec![(key.to_owned(), PKVM_BENCH_ITERS as u64, pkvm, pkvm / el2, what)])
}

fn num(x: f64) -> String {
    if x.is_finite() { format!("{x:.3}") } else { "null".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_lines_go_to_the_row_printed_after_them() {
        let out = "[spmc] split spmc calls 3 own 900 inner 0\n[ns-hyp] bench smc_floor 10 3000\n\
                   [spmc] split spmc calls 1 own 5 inner 0\n[spmc] split spmc calls 10 own 8000 inner 0\n[rmm] split rmm calls 0 own 0 inner 0\n\
                   [ns-hyp] bench ffa_version 10 24000\n[rmm] split rmm calls 10 own 6000 inner 9000\n[ns-hyp] bench rec_enter_host_call 10 50000\nx split y\n";
        let s = parse_split(out, "[ns-hyp] bench ");
        assert_eq!(
            s,
            [
                Split { row: "ffa_version".into(), image: "spmc".into(), total: 2400.0, ours: 800.0, inner: 0.0 },
                Split { row: "rec_enter_host_call".into(), image: "rmm".into(), total: 5000.0, ours: 600.0, inner: 900.0 },
            ]
        );
        assert_eq!(s[1].outside(), 3500.0);
    }

    #[test]
    fn boot_counter_uptime_and_split_lines() {
        let out = "quadrant-init: up\nquadrant-boot: cntvct 3456789012 cntfrq 1000000000\n[ns-hyp] split ns-hyp boot now 3456800000 first-entry 40000000 guest 3000000000 hyp 400000000 idle 16000000 exits 123456\n\
                   [ns-hyp] split ns-hyp exit wfi 10 0\n[ns-hyp] split ns-hyp exit uart 100000 350000000\nquadrant-boot: uptime 3.41 0.01\n";
        assert_eq!(boot_counter(out), Some((3_456_789_012, 1_000_000_000)));
        assert_eq!(boot_counter("quadrant-boot: cntvct x cntfrq 5\n"), None);
        assert_eq!(boot_uptime(out), Some((3.41, 0.01)));
        assert_eq!(boot_uptime("quadrant-boot: uptime 3.41\n"), None);
        let s = parse_boot_split(out).unwrap();
        assert_eq!((s.now, s.first_entry, s.guest, s.hyp, s.idle, s.exits), (3_456_800_000, 40_000_000, 3_000_000_000, 400_000_000, 16_000_000, 123_456));
        assert_eq!(s.kinds, [("wfi".to_string(), 10, 0), ("uart".to_string(), 100_000, 350_000_000)]);
        // Exit lines before the boot line belong to no split; none at all is None.
        assert_eq!(parse_boot_split("[ns-hyp] split ns-hyp exit uart 1 2\n"), None);
    }

    #[test]
    fn probe_bench_line_reads_calls_and_ticks() {
        let out = "[    6.6] quadrant-ffa-probe: bench direct_req 0x8001 2000 calls median 12700 min 12650 total 31891805 ticks 31916439 ns 0 failed\n";
        assert_eq!(probe_bench_line(out), Some((2000, 12700)));
        assert_eq!(probe_bench_line("quadrant-ffa-probe: bench direct_req 0x8001 2000 calls median 1 min 1 total 5 ticks 9 ns 3 failed"), None);
        let garbled = "quadrant-ffa-probe: bench direct_req 0x8001 2000 calls med[spmc] NS interrupt\nquadrant-dmesg: [ 6.6] quadrant-ffa-probe: bench direct_req 0x8001 2000 calls median 7 min 7 total 9 ticks 9 ns 0 failed\n";
        assert_eq!(probe_bench_line(garbled), Some((2000, 7)));
    }

    #[test]
    fn pmu_loop_cycles_line() {
        let out = "guest_cpu_features info: PMU: x\nguest_cpu_features info: pmu_loop_cycles=4000004\nguest_cpu_features info: pmu_loop_cycles=5\n";
        assert_eq!(pmu_loop_cycles(out), Some(4_000_004));
        assert_eq!(pmu_loop_cycles("guest_cpu_features info: pmu_loop_cycles=\n"), None);
        assert_eq!(pmu_loop_cycles("guest_cpu_features pmu_present: fail\n"), None);
    }

    #[test]
    fn cold_boot_line() {
        let out = "[spmc] manifest\n[spmc] cold boot: 1234 counter ticks (at 99999 since reset), SP signatures checked\n";
        assert_eq!(cold_boot_ticks(out), Some((1234, 99999)));
        assert_eq!(cold_boot_ticks("[spmc] cold boot: x counter ticks"), None);
    }

    #[test]
    fn one_bar_per_row_with_its_goal() {
        let bars = vec![
            Bar { key: "ns_hyp_smc_floor".into(), ratio: 1.0, goal: goal("ns_hyp_smc_floor") },
            Bar { key: "ffa_version".into(), ratio: 7.5, goal: goal("ffa_version") },
            Bar { key: "realm_rec_enter_host_call".into(), ratio: 202.8, goal: goal("realm_rec_enter_host_call") },
            Bar { key: "guest_boot_to_prompt".into(), ratio: f64::NAN, goal: goal("guest_boot_to_prompt") },
        ];
        let s = svg(&bars);
        assert_eq!(s.matches("class=\"bar\"").count(), 4);
        assert_eq!(s.matches("class=\"goal\"").count(), 3);
        assert!(s.contains("#e80") && s.contains("#999") && !s.contains("NaN") && !s.contains("inf"));
    }
}
