//! Issue G: pKVM against our SPMC.  Debian's Linux 7.3 as BL33 with
//! `kvm-arm.mode=protected` (`cargo xtask run --pkvm`): pKVM initialises at
//! NS-EL2 and puts Linux at EL1, and every FF-A call of Linux's driver goes
//! through pKVM's FF-A proxy (arch/arm64/kvm/hyp/nvhe/ffa.c) to spmc.  Our
//! module `quadrant_ffa_probe` (ci/linux-ffa-probe) then makes a direct
//! request to each SP, a share and a lend that an SP retrieves, and a
//! fragmented share whose reclaim pKVM checks with a hypervisor retrieve
//! request answered in fragments.

use super::{Expect, IntegrationTest, XResult, expect};
use crate::build::Outputs;
use crate::qemu::Boot;
use crate::run::{self, RunOptions};
use std::time::Duration;

/// Pages of the fragmented share: its descriptor (48 + 32 + 16 + 16 per
/// page) and so the retrieve response exceed one 4 KiB buffer.
pub const BIG_PAGES: u32 = 300;

/// The partition id spmc gives the SP named `name`: node vmN of the SPMC
/// manifest is 0x8000 + N, in sp_layout.json's order (docs/spmc.md).
pub fn sp_id(name: &str) -> Option<u16> {
    super::spmc::sp_uuids().iter().position(|(n, _)| n == name).map(|i| 0x8001 + i as u16)
}

/// The insmod line of our module: mp gets a shared page, isolation a lent
/// one (both answer command 4: retrieve, read, write, relinquish), echo the
/// fragmented share; `extra` more parameters (the bench's).
pub fn probe_insmod(extra: &str) -> String {
    let id = |n| sp_id(n).map(|i| format!("{i:#06x}")).unwrap_or_else(|| "0".into());
    format!(
        "insmod /lib/modules/{}.ko share_id={} lend_id={} big_id={} big_pages={BIG_PAGES}{extra}",
        crate::kmod::NAME,
        id("mp"),
        id("isolation"),
        id("echo")
    )
}

const LIST_DEVICES: &str = "for d in /sys/bus/arm_ffa/devices/*; do echo \"quadrant-ffa-device: $(basename $d) uuid=$(cat $d/uuid) id=$(cat $d/partition_id)\"; done";

fn typed(cmds: &[&str]) -> Vec<(String, String)> {
    let mut v = vec![("quadrant-init: shell".to_owned(), String::new())];
    for c in cmds.iter().chain(["echo quadrant-pkvm: done", "poweroff -f"].iter()) {
        v.push(("/ # ".into(), format!("{c}\n")));
    }
    v
}

/// Linux's kernel log, replayed after each step with a prefix: spmc's log
/// and Linux's console share one UART, and a line of each can land inside
/// a line of the other (seen: `quadrant-ffa-probe: 0x8001 [spmc] RUN ...`);
/// the kernel's log buffer has Linux's lines whole.  `quiet` keeps Linux off
/// the console meanwhile.  `dmesg -c` clears what it printed, so the second
/// replay holds only what came after the driver's reload.
const REPLAY_1: &str = "dmesg -c | sed 's/^/quadrant-dmesg-1: /'";
const REPLAY_2: &str = "dmesg -c | sed 's/^/quadrant-dmesg-2: /'";

/// The lines of a replay, without their prefix.
fn replay<'a>(output: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> {
    output.lines().filter_map(move |l| l.strip_prefix(prefix))
}

/// `cargo xtask run --pkvm --append "... quiet"`, then typed as a user
/// would: list the FF-A devices, load the module, replay the kernel log;
/// then the driver unloaded (pKVM unmaps its RX/TX pair at spmc:
/// FFA_RXTX_UNMAP with w1 = 0) and loaded again (mapped again), a direct
/// request to each SP once more, the log replayed again.
fn interop_boot(o: &Outputs) -> XResult<Boot> {
    let append = format!("{} quiet", run::BL33_DEFAULT_CMDLINE);
    let boot = run::boot(o, &RunOptions { pkvm: true, append: Some(append), ..Default::default() })?;
    let insmod = probe_insmod("");
    let again = format!("insmod /lib/modules/{}.ko", crate::kmod::NAME);
    let cmds = [LIST_DEVICES, &insmod, REPLAY_1, "rmmod quadrant_ffa_probe", "rmmod ffa_module", "insmod /lib/modules/ffa-module.ko", &again, REPLAY_2];
    Ok(Boot::Scripted { boot: Box::new(boot), input: typed(&cmds) })
}

fn interop_expects() -> Vec<Expect> {
    vec![
        expect("Linux was told to run pKVM", &["quadrant-dmesg-1: ", "Kernel command line:", run::PKVM_ARG]),
        // 7.3 on QEMU's max CPU (FEAT_VHE): "Protected hVHE mode initialized
        // successfully"; without VHE it says nVHE.
        expect("pKVM initialised in protected mode", &["quadrant-dmesg-1: ", "kvm [", "Protected ", "mode initialized successfully"]),
        expect("Linux's FF-A driver loaded (through the proxy)", &["quadrant-init: loaded ffa-module"]),
        expect("the driver agreed FF-A 1.2 (answered by pKVM)", &["quadrant-dmesg-1: ", "ARM FF-A: Firmware version 1.2"]),
        expect("a page shared with mp: retrieved, written, reclaimed", &["quadrant-dmesg-1: ", "quadrant-ffa-probe: ", " share: ok "]),
        expect("a page lent to isolation: retrieved, written, reclaimed", &["quadrant-dmesg-1: ", "quadrant-ffa-probe: ", " lend: ok "]),
        expect("a fragmented share reclaimed through pKVM's hypervisor retrieve request", &["quadrant-dmesg-1: ", "quadrant-ffa-probe: ", " big share: ok "]),
        expect("the driver loaded again", &["quadrant-dmesg-2: ", "ARM FF-A: Firmware version 1.2"]),
        expect("the commands ran", &["quadrant-pkvm: done"]),
        expect("TF-A powered the machine off", &["QEMU System Power off"]),
    ]
}

/// pKVM's reserved memory (`kvm [0]: Reserved 18 MiB at 0xbe800000`).
fn hyp_reserved(output: &str) -> Option<(u64, u64)> {
    let l = output.lines().find(|l| l.contains("kvm [") && l.contains("Reserved ") && l.contains(" MiB at 0x"))?;
    let mib: u64 = l.split("Reserved ").nth(1)?.split_whitespace().next()?.parse().ok()?;
    let base = u64::from_str_radix(l.split(" MiB at 0x").nth(1)?.split_whitespace().next()?, 16).ok()?;
    Some((base, base + (mib << 20)))
}

/// spmc's `RXTX_MAP from NS (..): tx 0x.. rx 0x.., N page(s): ok` lines.
fn ns_rxtx_maps(output: &str) -> Vec<(u64, u64)> {
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x").trim_end_matches(','), 16).ok();
    output
        .lines()
        .filter(|l| l.contains("[spmc] RXTX_MAP") && l.contains("from NS") && l.ends_with(": ok"))
        .filter_map(|l| {
            let tx = hex(l.split(" tx ").nth(1)?.split_whitespace().next()?)?;
            let rx = hex(l.split(" rx ").nth(1)?.split_whitespace().next()?)?;
            Some((tx, rx))
        })
        .collect()
}

/// The proxy is in the path, and every SP answered through it:
/// - the only RX/TX pair spmc mapped for the Normal world lies in pKVM's own
///   reserved memory (the proxy's buffers; it never forwards the host's);
/// - spmc's one FFA_VERSION from NS came before Linux's /init (pKVM
///   negotiates at its init, then answers the host's FFA_VERSION itself);
/// - one /sys/bus/arm_ffa device per SP with its UUID, and a direct request
///   answered by each; no probe line says FAIL.
fn interop_checks(output: &str) -> Vec<String> {
    let mut fails = Vec::new();
    let log: String = replay(output, "quadrant-dmesg-1: ").map(|l| format!("{l}\n")).collect();
    match (hyp_reserved(&log), ns_rxtx_maps(output).as_slice()) {
        (None, _) => fails.push("no `kvm [..]: Reserved N MiB at 0x..` line (pKVM's memory)".into()),
        (_, []) => fails.push("spmc mapped no RX/TX pair for the Normal world".into()),
        (Some((lo, hi)), maps) => {
            for &(tx, rx) in maps {
                if !(lo..hi).contains(&tx) || !(lo..hi).contains(&rx) {
                    fails.push(format!("spmc mapped NS buffers tx {tx:#x} rx {rx:#x} outside pKVM's memory {lo:#x}..{hi:#x}: not the proxy's"));
                }
            }
        }
    }
    // pKVM's init runs before /init; the host driver's own FFA_VERSION (when
    // /init loads ffa-core) is answered by pKVM and never reaches spmc.
    let versions: Vec<usize> = output.lines().enumerate().filter(|(_, l)| l.contains("[spmc] FFA_VERSION from NS")).map(|(i, _)| i).collect();
    let init = output.lines().position(|l| l.contains("quadrant-init: up"));
    match (versions.as_slice(), init) {
        ([v], Some(u)) if *v < u => {}
        (v, u) => fails.push(format!("expected one FFA_VERSION from NS at spmc, before Linux's /init (pKVM's own); got {} (lines {v:?}, /init at {u:?})", v.len())),
    }
    fails.extend(super::spmc::ffa_devices_are(output, &super::spmc::sp_uuids()));
    for (prefix, when) in [("quadrant-dmesg-1: ", "through pKVM"), ("quadrant-dmesg-2: ", "after the FF-A driver was reloaded")] {
        for (name, _) in super::spmc::sp_uuids() {
            let Some(id) = sp_id(&name) else { continue };
            let want = format!("quadrant-ffa-probe: {id:#06x} direct: ok");
            if !replay(output, prefix).any(|l| l.contains(&want)) {
                fails.push(format!("no direct request answered by {name} ({id:#06x}) {when}: a line {prefix}..{want}"));
            }
        }
    }
    // Unmapped at the rmmod and at power-off; mapped at each load.
    let unmaps = output.lines().filter(|l| l.contains("[spmc] RXTX_UNMAP from NS") && l.ends_with(": ok")).count();
    if unmaps < 2 || ns_rxtx_maps(output).len() < 2 {
        fails.push(format!("expected the proxy's pair unmapped and mapped again at the driver's reload: {unmaps} unmap(s), {} map(s)", ns_rxtx_maps(output).len()));
    }
    fails.extend(output.lines().filter(|l| l.starts_with("quadrant-dmesg-") && l.contains("quadrant-ffa-probe: ") && l.contains(": FAIL")).map(|l| format!("probe failed: {l}")));
    fails
}

const FORBID: &[&str] = &["PANIC", "panicked", "Unhandled Exception", "ERROR:", "BL31: Error", "Kernel panic", "BUG:", "WARNING: CPU:", "Call trace:", "Internal error"];

pub fn tests() -> Vec<IntegrationTest> {
    vec![IntegrationTest { name: "pkvm_ffa_interop", boot: interop_boot, timeout: Duration::from_secs(300), expects: interop_expects, extra: Some(interop_checks), forbid: FORBID }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pkvm_memory_and_spmc_maps() {
        let out = "[    0.000000] kvm [0]: Reserved 18 MiB at 0xbe800000\n\
                   [spmc] RXTX_MAP from NS (0xc4000066): tx 0xbf000000 rx 0xbf001000, 1 page(s): ok\n\
                   [spmc] RXTX_MAP from NS (0xc4000066): tx 0x1000 rx 0x2000, 1 page(s): error DENIED\n";
        assert_eq!(hyp_reserved(out), Some((0xbe80_0000, 0xbe80_0000 + (18 << 20))));
        assert_eq!(ns_rxtx_maps(out), vec![(0xbf00_0000, 0xbf00_1000)]);
    }

    #[test]
    fn probe_parameters_name_our_sps() {
        let line = probe_insmod(" bench_iters=5");
        assert!(line.contains("share_id=0x8002") && line.contains("lend_id=0x8003") && line.contains("big_id=0x8001"), "{line}");
        assert!(line.ends_with(" bench_iters=5"));
    }
}
