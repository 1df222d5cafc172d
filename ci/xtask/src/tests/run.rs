//! Issue K: `cargo xtask run`'s options for a user's own payloads.  Each test
//! makes its boot with `run::boot`, the function `cargo xtask run` uses, then
//! types on the console as a user would.

use super::{Expect, IntegrationTest, XResult, expect};
use crate::build::{Outputs, images_dir};
use crate::guest::{self, InitramfsSpec};
use crate::qemu::Boot;
use crate::run::{self, RunOptions};
use crate::util;
use std::time::Duration;

const FORBID: &[&str] = &["PANIC", "panicked", "Unhandled Exception", "Kernel panic", "BUG:"];

/// Typed after the shell's prompt, one command each, then `poweroff -f`.
fn typed(cmds: &[&str]) -> Vec<(String, String)> {
    let mut v = vec![("quadrant-init: shell".to_owned(), String::new())];
    for c in cmds.iter().chain(["poweroff -f"].iter()) {
        v.push(("/ # ".into(), format!("{c}\n")));
    }
    v
}

/// A user's initramfs: a BusyBox shell with a marker file, no modules.
fn user_initrd(o: &Outputs) -> XResult<std::path::PathBuf> {
    guest::initramfs(&o.paths, &InitramfsSpec { name: "user-initrd", modules: &[], script: None, files: &[("etc/marker", b"MARKER=user-initrd\n")] })
}

const USER_APPEND: &str = "console=ttyAMA0 earlycon=pl011,0x9000000 rdinit=/init quadrant_test=own_kernel";

fn own_kernel_opts(o: &Outputs, no_tfa: bool) -> XResult<RunOptions> {
    Ok(RunOptions {
        no_tfa,
        kernel: Some(guest::kernel_image(&o.paths)?),
        initrd: Some(user_initrd(o)?),
        append: Some(USER_APPEND.into()),
        ..Default::default()
    })
}

fn own_kernel_boot(o: &Outputs, no_tfa: bool) -> XResult<Boot> {
    let boot = run::boot(o, &own_kernel_opts(o, no_tfa)?)?;
    Ok(Boot::Scripted { boot: Box::new(boot), input: typed(&["sed 's/^/CMDLINE=/' /proc/cmdline; cat /etc/marker"]) })
}

fn own_kernel_expects() -> Vec<Expect> {
    vec![
        expect("ns-hyp started the user's kernel", &["[ns-hyp] guest: 4 vCPU(s)"]),
        expect("the user's initramfs reached its shell", &["quadrant-init: shell"]),
        expect("the user's command line reached the guest", &["CMDLINE=", "quadrant_test=own_kernel"]),
        expect("the user's initramfs is the one running", &["MARKER=user-initrd"]),
        expect("the guest powered off through PSCI", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// The echo SP alone, in a layout of the user's (its own directory, paths
/// relative to the json, as TF-A's sptool reads them).
fn echo_only_layout() -> XResult<std::path::PathBuf> {
    let dir = util::out_dir().join("user-sp-layout");
    util::mkdirs(&dir)?;
    let integ = util::repo_root().join("tfa-integration");
    let copy = |from: &std::path::Path, to: &str| std::fs::copy(from, dir.join(to)).map(|_| ()).map_err(|e| format!("{}: {e}", from.display()));
    copy(&integ.join("sp/echo.dts"), "echo.dts")?;
    copy(&images_dir().join("echo.bin"), "echo.bin")?;
    let json = "{\n\t\"echo\": {\n\t\t\"image\": \"echo.bin\",\n\t\t\"pm\": \"echo.dts\",\n\t\t\"owner\": \"SiP\"\n\t}\n}\n";
    let file = dir.join("sp_layout.json");
    if std::fs::read_to_string(&file).ok().as_deref() != Some(json) {
        std::fs::write(&file, json).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(file)
}

fn sp_layout_boot(o: &Outputs) -> XResult<Boot> {
    let boot = run::boot(o, &RunOptions { sp_layout: Some(echo_only_layout()?), ..Default::default() })?;
    Ok(Boot::Scripted { boot: Box::new(boot), input: typed(&["echo NPROC=$(nproc)"]) })
}

fn sp_layout_expects() -> Vec<Expect> {
    vec![
        expect("the echo SP of the user's layout started", &["[echo] ready"]),
        expect("spmc finished init", &["[spmc] ", "init done"]),
        expect("spmc's manifest lists the layout's one SP", &["[spmc] manifest: ", "1 partition(s)"]),
        expect("the guest ran", &["NPROC=4"]),
        expect("the guest powered off through PSCI", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// Only the layout's SP ran: none of the others printed.
fn only_echo(output: &str) -> Vec<String> {
    output.lines().filter(|l| ["[mp]", "[isolation]", "[irq]"].iter().any(|t| l.starts_with(t))).map(|l| format!("an SP outside the user's layout ran: {l}")).collect()
}

fn bl33_boot(o: &Outputs) -> XResult<Boot> {
    let boot = run::boot(o, &RunOptions { bl33: Some(guest::kernel_image(&o.paths)?), ..Default::default() })?;
    Ok(Boot::Scripted { boot: Box::new(boot), input: typed(&["for u in /sys/bus/arm_ffa/devices/*/uuid; do echo FFA_UUID=$(cat $u); done"]) })
}

fn bl33_expects() -> Vec<Expect> {
    let echo = super::spmc::sp_uuids().into_iter().find(|(n, _)| n == "echo").map(|(_, u)| u).unwrap_or_default();
    vec![
        expect("Linux is BL33 (no ns-hyp)", &["Booting Linux on physical CPU"]),
        expect("its FF-A driver loaded over spmc", &["quadrant-init: loaded ffa-module"]),
        expect("Linux reached the shell", &["quadrant-init: shell"]),
        Expect { what: "Linux's FF-A bus lists the echo SP", all_of: vec![format!("FFA_UUID={echo}")] },
        expect("TF-A powered the machine off", &["QEMU System Power off"]),
    ]
}

fn no_ns_hyp(output: &str) -> Vec<String> {
    output.lines().filter(|l| l.starts_with("[ns-hyp]")).take(1).map(|l| format!("ns-hyp ran although --bl33 replaces it: {l}")).collect()
}

/// `--vms 2`: two VMs (2 vCPUs, 512 MiB each) under TF-A, as a user gets
/// them; each counts its CPUs and RAM, VM 1 powers off first.
fn vms_boot(o: &Outputs) -> XResult<Boot> {
    let boot = run::boot(o, &RunOptions { vms: Some(2), ..Default::default() })?;
    let count = |n: u32| format!("echo VM{n}_CPUS=$(nproc); grep MemTotal /proc/meminfo | sed 's/^/VM{n}_/'; poweroff -f\n");
    let input = vec![
        // VM 0 at its shell, then Enter in VM 1: it shows a prompt after this point.
        ("[vm0] / # ".to_owned(), "\x1d1".to_owned()),
        ("console: input to vm1".into(), "\n".into()),
        ("[vm1] / # ".into(), count(1)),
        ("[ns-hyp] vm1: SYSTEM_OFF".into(), "\x1d0".into()),
        ("console: input to vm0".into(), count(0)),
    ];
    Ok(Boot::Scripted { boot: Box::new(boot), input })
}

fn vms_expects() -> Vec<Expect> {
    vec![
        expect("VM 0 runs on 2 vCPUs", &["[vm0] VM0_CPUS=2"]),
        expect("VM 1 runs on 2 vCPUs", &["[vm1] VM1_CPUS=2"]),
        expect("VM 1's SYSTEM_OFF stopped VM 1 alone", &["[ns-hyp] vm1: SYSTEM_OFF"]),
        expect("the last VM's SYSTEM_OFF powered the machine off", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// Each VM's MemTotal (kB): at most the 512 MiB it was given, more than half of it.
fn vms_memory(output: &str) -> Vec<String> {
    (0..2)
        .filter_map(|n| {
            let tag = format!("VM{n}_MemTotal:");
            let kib = output.lines().find_map(|l| l.split_once(tag.as_str())).and_then(|(_, r)| r.split_whitespace().next()?.parse::<u64>().ok());
            match kib {
                Some(k) if (256 * 1024..=512 * 1024).contains(&k) => None,
                other => Some(format!("VM {n}'s MemTotal is {other:?} kB for 512 MiB of RAM")),
            }
        })
        .collect()
}

pub fn tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest {
            name: "run_own_kernel",
            boot: |o| own_kernel_boot(o, true),
            timeout: Duration::from_secs(200),
            expects: own_kernel_expects,
            extra: None,
            forbid: FORBID,
        },
        IntegrationTest {
            name: "run_own_kernel_tfa",
            boot: |o| own_kernel_boot(o, false),
            timeout: Duration::from_secs(200),
            expects: own_kernel_expects,
            extra: None,
            forbid: FORBID,
        },
        IntegrationTest { name: "run_bl33_linux", boot: bl33_boot, timeout: Duration::from_secs(240), expects: bl33_expects, extra: Some(no_ns_hyp), forbid: FORBID },
        IntegrationTest { name: "run_vms", boot: vms_boot, timeout: Duration::from_secs(300), expects: vms_expects, extra: Some(vms_memory), forbid: FORBID },
        IntegrationTest {
            name: "run_sp_layout",
            boot: sp_layout_boot,
            timeout: Duration::from_secs(200),
            expects: sp_layout_expects,
            extra: Some(only_echo),
            forbid: FORBID,
        },
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn vms_memory_lines() {
        let out = "[vm1] VM1_MemTotal:         427000 kB\n[vm0] VM0_MemTotal:         427100 kB\n";
        assert!(super::vms_memory(out).is_empty());
        assert_eq!(super::vms_memory("[vm0] VM0_MemTotal: 900000 kB\n").len(), 2);
    }
}
