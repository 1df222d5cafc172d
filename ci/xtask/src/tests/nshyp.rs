//! Issue B1 (ns-hyp): a Debian Linux guest under ns-hyp, driven through its console.

use super::{Expect, IntegrationTest, XResult, expect};
use crate::build::Outputs;
use crate::guest::{self, InitramfsSpec};
use crate::qemu::Boot;
use std::time::Duration;

/// Where xtask preloads the guest payloads: inside the guest's RAM as ns-hyp
/// maps it (PA 0x80000000 = guest IPA 0x40000000, see ns-hyp/src/vm/layout.rs).
/// The Image 2 MiB in (the DTB ns-hyp writes sits below it), the initramfs 128 MiB in.
pub const GUEST_KERNEL_PA: u64 = 0x8020_0000;
pub const GUEST_INITRD_PA: u64 = 0x8800_0000;

/// ns-hyp's bootargs naming the guest payloads (ns-hyp/src/vm/config.rs).
pub fn guest_bootargs(kernel_size: u64, initrd_size: u64, vcpus: usize) -> String {
    format!("quadrant.guest={GUEST_KERNEL_PA:#x},{kernel_size} quadrant.initrd={GUEST_INITRD_PA:#x},{initrd_size} quadrant.vcpus={vcpus}")
}

fn size(p: &std::path::Path) -> XResult<u64> {
    std::fs::metadata(p).map(|m| m.len()).map_err(|e| format!("{}: {e}", p.display()))
}

/// ns-hyp as `-kernel` (no TF-A) with the guest preloaded; `smp` physical CPUs.
pub fn no_tfa_guest_boot(o: &Outputs, name: &str, vcpus: usize, smp: u32) -> XResult<Boot> {
    let kernel = guest::kernel_image(&o.paths)?;
    let initrd = guest::initramfs(&o.paths, &InitramfsSpec { name, modules: &[], script: None, files: &[] })?;
    let loader = |file: &std::path::Path, addr: u64| format!("loader,file={},addr={addr:#x},force-raw=on", file.display());
    Ok(Boot::Custom {
        tfa: false,
        args: vec![
            "-smp".into(),
            smp.to_string(),
            "-kernel".into(),
            o.images.join("ns-hyp.bin").display().to_string(),
            "-append".into(),
            guest_bootargs(size(&kernel)?, size(&initrd)?, vcpus),
            "-device".into(),
            loader(&kernel, GUEST_KERNEL_PA),
            "-device".into(),
            loader(&initrd, GUEST_INITRD_PA),
        ],
    })
}

/// What the shell tests type, each after the previous answer appeared.
fn shell_input() -> Vec<(String, String)> {
    [
        ("quadrant-init: shell", ""),
        // Each command after the shell's prompt, so none is typed before the shell reads.
        ("/ # ", "echo NPROC=$(nproc)\n"),
        ("/ # ", "for i in 1 2; do grep arch_timer /proc/interrupts | sed \"s/^/TIMER$i:/\"; sleep 1; done\n"),
        ("/ # ", "poweroff -f\n"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

fn linux_shell_boot(o: &Outputs) -> XResult<Boot> {
    Ok(Boot::Scripted { boot: Box::new(no_tfa_guest_boot(o, "nshyp-shell", 4, 4)?), input: shell_input() })
}

fn linux_shell_1pcpu_boot(o: &Outputs) -> XResult<Boot> {
    Ok(Boot::Scripted { boot: Box::new(no_tfa_guest_boot(o, "nshyp-shell", 4, 1)?), input: shell_input() })
}

fn shell_expects() -> Vec<Expect> {
    vec![
        expect("ns-hyp ran its probes first", &["[ns-hyp] probes: ", " 0 failed"]),
        expect("ns-hyp started the guest", &["[ns-hyp] guest: 4 vCPU(s)"]),
        expect("Linux booted on ns-hyp", &["Booting Linux on physical CPU"]),
        expect("the guest's init ran", &["quadrant-init: up, 4 cpu(s)"]),
        expect("nproc typed on the console prints 4", &["NPROC=4"]),
        expect("the guest powered off through PSCI", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// Two reads of the arch timer's row of /proc/interrupts, a second apart:
/// every CPU's count rose.
fn timer_counts_rise(output: &str) -> Vec<String> {
    let row = |tag: &str| -> Option<Vec<u64>> {
        let l = output.lines().find(|l| l.starts_with(tag))?;
        // "TIMERn:  11:   803   2290  1464  1298  GICv3  27 Level  arch_timer"
        Some(l[tag.len()..].split_whitespace().skip(1).map_while(|w| w.parse().ok()).collect())
    };
    match (row("TIMER1:"), row("TIMER2:")) {
        (Some(a), Some(b)) if a.len() == 4 && b.len() == 4 => {
            let stuck: Vec<usize> = (0..4).filter(|&i| b[i] <= a[i]).collect();
            if stuck.is_empty() { vec![] } else { vec![format!("arch timer count did not rise on CPU(s) {stuck:?}: {a:?} then {b:?}")] }
        }
        (a, b) => vec![format!("no two 4-CPU arch_timer rows in the output: {a:?} {b:?}")],
    }
}

/// What must never appear in a guest run (besides QEMU's own failures).
const FORBID_GUEST: &[&str] = &["PANIC", "panicked", "Unhandled Exception", "ERROR:", "Kernel panic", "BUG:", "UNDEFINED"];

pub fn tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest {
            name: "linux_shell",
            boot: linux_shell_boot,
            timeout: Duration::from_secs(300),
            expects: shell_expects,
            extra: Some(timer_counts_rise),
            forbid: FORBID_GUEST,
        },
        IntegrationTest {
            name: "linux_shell_1pcpu",
            boot: linux_shell_1pcpu_boot,
            // ~16 s alone, ~40 s under load since the scheduler fix (was 82-400 s).
            timeout: Duration::from_secs(150),
            expects: shell_expects,
            extra: Some(timer_counts_rise),
            forbid: FORBID_GUEST,
        },
    ]
}

/// Issue B1's tests that do not pass yet; run only when named exactly.
pub fn pending() -> Vec<IntegrationTest> {
    vec![]
}

#[cfg(test)]
mod tests {
    #[test]
    fn timer_rows() {
        let out = "TIMER1:  11:   803   2290  1464  1298  GICv3  27 Level  arch_timer\nTIMER2:  11:   903   2390  1564  1398  GICv3  27 Level  arch_timer\n";
        assert!(super::timer_counts_rise(out).is_empty());
        let out = "TIMER1:  11:   803   2290  1464  1298  GICv3\nTIMER2:  11:   903   2290  1564  1398  GICv3\n";
        assert_eq!(super::timer_counts_rise(out).len(), 1);
        assert_eq!(super::timer_counts_rise("").len(), 1);
    }
}
