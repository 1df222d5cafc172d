//! Issue B3 (item 1): ns-hyp as the FF-A hypervisor.  `guest_ffa`: two
//! Linux VMs under ns-hyp under TF-A and spmc, each loading Linux's FF-A
//! driver (`ffa-core`, `ffa-module`) and our probe module
//! (ci/linux-ffa-probe): each sees our SPs and the other VM under its own
//! id, shares and lends its memory to SPs through ns-hyp (B3 item 2), and
//! both send direct requests at the same time.

use super::{expect, Expect, IntegrationTest, XResult};
use crate::build::Outputs;
use crate::qemu::Boot;
use std::time::Duration;

const VMS: usize = 2;
const VCPUS: usize = 2;
const MEM_MIB: u32 = 192;
/// The SP of the concurrent loops: the MP SP (a context per CPU, NS
/// interrupts signalled: a preempted request comes back as FFA_INTERRUPT
/// and is resumed with FFA_RUN through the proxy).
const BENCH_SP: &str = "0x8002";
/// About half a second of requests each: long against the console's
/// switch from one VM to the other.
const BENCH_ITERS: u32 = 2000;

/// A VM's FF-A id as ns-hyp gives it (VM k: k + 1).
fn vm_id(k: usize) -> u16 {
    k as u16 + 1
}

fn boot(o: &Outputs) -> XResult<Boot> {
    use super::nshyp::{self, GuestPayload, VmSpec};
    let kernel = crate::guest::kernel_image(&o.paths)?;
    let initrd = crate::run::pkvm_initramfs(o, "guest-ffa", None)?;
    let vms: Vec<VmSpec> = (0..VMS)
        .map(|_| VmSpec { payload: GuestPayload { kernel: kernel.clone(), initrd: Some(initrd.clone()), cmdline: None }, vcpus: VCPUS, mem_mib: MEM_MIB, realm: false })
        .collect();
    let b = nshyp::hyp_vms_boot(o, Some(&o.bios), "guest-ffa", &vms, Some(2), "")?;
    Ok(Boot::Scripted { boot: Box::new(b), input: input() })
}

/// What VM `k` types once its probe is done and the other VM is quiet (so
/// no other output splits its lines on the shared console): its driver's
/// and the probe's kernel lines again (`RESULT: `), then
/// /sys/bus/arm_ffa/devices in registration order (the driver registers
/// its own partition's device last).  Markers are typed with `""` inside,
/// so the shell's echo never matches them.
fn report(k: usize) -> String {
    format!(
        "dmesg | grep -E 'ARM FF-A|quadrant-ffa-probe' | sed \"s/^/RESU\"\"LT: /\"; \
         grep ARM-FFA-N[P]I /proc/interrupts | sed \"s/^/RESU\"\"LT: npi /\"; \
         for d in $(ls /sys/bus/arm_ffa/devices | sort -t- -k3 -n); do echo \"FFA_D\"\"EV: $d id=$(cat /sys/bus/arm_ffa/devices/$d/partition_id) uuid=$(cat /sys/bus/arm_ffa/devices/$d/uuid)\"; done; \
         echo VM{k}_REPO\"\"RTED\n"
    )
}

/// VM `k`'s probe: one round trip to every SP; a page shared with the MP
/// SP and one lent to the isolation SP, each retrieved and written by the
/// SP and reclaimed (the lent one out of the VM's Stage-2 meanwhile); a
/// share of [`super::pkvm::BIG_PAGES`] pages, whose descriptor does not fit
/// one TX buffer (FFA_MEM_FRAG_TX through ns-hyp); then the timed loop of
/// direct requests to [`BENCH_SP`], on its vCPU `k` (VM 0's vCPU 0 and
/// VM 1's vCPU 1 are on different CPUs: the loops run truly at once).
fn probe(k: usize) -> String {
    format!(
        "busybox taskset {} insmod /lib/modules/{}.ko own_id={} share_id=0x8002 lend_id=0x8003 notify_id=0x8002 big_id=0x8001 big_pages={} bench_id={BENCH_SP} bench_iters={BENCH_ITERS}; echo VM{k}_PRO\"\"BED\n",
        1 << k,
        crate::kmod::NAME,
        vm_id(k),
        super::pkvm::BIG_PAGES
    )
}

fn input() -> Vec<(String, String)> {
    let (r0, r1, p0, p1) = (report(0), report(1), probe(0), probe(1));
    super::nshyp::steps(&[
        ("[vm0] / # ", "\x1d1"),
        ("console: input to vm1", "\n"),
        // VM 1's probe starts; as soon as its shell echoed the command, VM 0's.
        ("[vm1] / # ", &p1),
        ("bench_iters=", "\x1d0"),
        ("console: input to vm0", &p0),
        // VM 0's prompt after its probe, then VM 1 (whose probe may still run:
        // its shell reads the line after).
        ("VM0_PROBED", ""),
        ("[vm0] / # ", "\x1d1"),
        ("console: input to vm1", "echo VM1_AF\"\"TER\n"),
        ("VM1_AFTER", &r1),
        ("VM1_REPORTED", "poweroff -f\n"),
        ("[ns-hyp] vm1: SYSTEM_OFF", "\x1d0"),
        ("console: input to vm0", &r0),
        ("VM0_REPORTED", "poweroff -f\n"),
    ])
}

fn expects() -> Vec<Expect> {
    let mut e = vec![
        expect("ns-hyp made VM 0 endpoint 1", &["[ns-hyp] guest FF-A: vm0 is endpoint 0x0001"]),
        expect("ns-hyp made VM 1 endpoint 2", &["[ns-hyp] guest FF-A: vm1 is endpoint 0x0002"]),
        expect("VM 1's probe finished", &["[vm1] VM1_PROBED"]),
        expect("VM 0 reported", &["[vm0] VM0_REPORTED"]),
        expect("VM 1 powered off alone", &["[ns-hyp] vm1: SYSTEM_OFF"]),
        expect("the last VM's SYSTEM_OFF powered the machine off", &["[ns-hyp] guest: SYSTEM_OFF"]),
        expect("the two VMs' requests were in the SPMC at the same time", &["[ns-hyp] guest FF-A: ", "forwarded, at most 2 at once"]),
    ];
    for k in 0..VMS {
        let vm: &'static str = ["[vm0] ", "[vm1] "][k];
        e.extend([
            Expect { what: ["VM 0's driver agreed FF-A v1.2 with ns-hyp", "VM 1's driver agreed FF-A v1.2 with ns-hyp"][k], all_of: vec![vm.into(), "RESULT: ".into(), "ARM FF-A: Firmware version 1.2 found".into()] },
            Expect { what: ["VM 0 shared a page with the MP SP, which wrote it; reclaimed", "VM 1 shared a page with the MP SP, which wrote it; reclaimed"][k], all_of: vec![vm.into(), "RESULT: ".into(), "quadrant-ffa-probe: ".into(), " share: ok ".into()] },
            Expect { what: ["VM 0 lent a page to the isolation SP, which wrote it; reclaimed", "VM 1 lent a page to the isolation SP, which wrote it; reclaimed"][k], all_of: vec![vm.into(), "RESULT: ".into(), "quadrant-ffa-probe: ".into(), " lend: ok ".into()] },
            Expect { what: ["VM 0's fragmented share went through ns-hyp and was reclaimed", "VM 1's fragmented share went through ns-hyp and was reclaimed"][k], all_of: vec![vm.into(), "RESULT: ".into(), "quadrant-ffa-probe: ".into(), " big share: ok ".into()] },
            Expect { what: ["VM 0's driver got the MP SP's notification (ns-hyp's NPI, FFA_NOTIFICATION_GET)", "VM 1's driver got the MP SP's notification (ns-hyp's NPI, FFA_NOTIFICATION_GET)"][k], all_of: vec![vm.into(), "RESULT: ".into(), "quadrant-ffa-probe: 0x8002 notification: ok".into()] },
            Expect { what: ["VM 0's driver took ns-hyp's Notification Pending Interrupt", "VM 1's driver took ns-hyp's Notification Pending Interrupt"][k], all_of: vec![vm.into(), "RESULT: npi ".into(), "ARM-FFA-NPI".into()] },
            Expect {
                what: ["VM 0's direct requests all succeeded", "VM 1's direct requests all succeeded"][k],
                all_of: vec![vm.into(), "RESULT: ".into(), format!("quadrant-ffa-probe: bench direct_req {BENCH_SP} {BENCH_ITERS} calls"), " 0 failed".into()],
            },
        ]);
    }
    e
}

/// Per VM: every SP of sp_layout.json with its UUID, the other VM, and the
/// driver's own partition (its last device) under the VM's id; one direct
/// round trip to each SP succeeded; no probe line failed.
fn extra(output: &str) -> Vec<String> {
    let sps = super::spmc::sp_uuids();
    let mut f: Vec<String> = output.lines().filter(|l| l.contains("quadrant-ffa-probe:") && l.contains("FAIL")).map(|l| format!("a probe failed: {l}")).collect();
    // The driver set notifications up (ns-hyp offers the NPI, creates the bitmaps).
    f.extend(output.lines().filter(|l| l.contains("Notification setup failed") || l.contains("Notification bitmap create error")).map(|l| format!("notifications not set up: {l}")));
    for k in 0..VMS {
        let prefix = format!("[vm{k}] FFA_DEV: ");
        let devs: Vec<(u16, String)> = output
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .filter_map(|l| {
                let id = l.split(" id=").nth(1)?.split_whitespace().next()?;
                let uuid = l.split(" uuid=").nth(1)?.trim().to_string();
                Some((u16::from_str_radix(id.trim_start_matches("0x"), 16).ok()?, uuid))
            })
            .collect();
        let nil = "00000000-0000-0000-0000-000000000000";
        let secure: Vec<&(u16, String)> = devs.iter().filter(|(id, _)| id & 0x8000 != 0).collect();
        if secure.len() != sps.len() {
            f.push(format!("vm{k}: {} SP device(s), {} SP(s) in sp_layout.json: {devs:?}", secure.len(), sps.len()));
        }
        for (name, uuid) in &sps {
            if !secure.iter().any(|(_, u)| u == uuid) {
                f.push(format!("vm{k}: no FF-A device with {name}'s UUID {uuid}"));
            }
        }
        let mut vms: Vec<u16> = devs.iter().filter(|(id, u)| id & 0x8000 == 0 && u == nil).map(|(id, _)| *id).collect();
        vms.sort();
        let want: Vec<u16> = (0..VMS).map(vm_id).collect();
        if vms != want || devs.iter().any(|(id, u)| id & 0x8000 == 0 && u != nil) {
            f.push(format!("vm{k}: the VMs' devices are {vms:?}, not the other VM and itself {want:?}: {devs:?}"));
        }
        if devs.last().map(|d| d.0) != Some(vm_id(k)) {
            f.push(format!("vm{k}: its own partition (the driver's last device) is not id {}: {devs:?}", vm_id(k)));
        }
        for sp in sp_ids() {
            let (vm, ok) = (format!("[vm{k}] RESULT: "), format!("quadrant-ffa-probe: {sp:#06x} direct: ok"));
            if !output.lines().any(|l| l.starts_with(&vm) && l.contains(&ok)) {
                f.push(format!("vm{k}: no successful round trip to SP {sp:#06x}"));
            }
        }
    }
    f
}

/// The id of every SP in tfa-integration/sp_layout.json (its partition manifest's `id`).
fn sp_ids() -> Vec<u16> {
    let integ = crate::util::repo_root().join("tfa-integration");
    let json = std::fs::read_to_string(integ.join("sp_layout.json")).unwrap_or_default();
    crate::layout::entries(&json)
        .iter()
        .filter_map(|e| std::fs::read_to_string(integ.join("sp").join(&e.pm)).ok())
        .filter_map(|dts| crate::layout::dts_cells(&dts, "id")?.first().map(|&c| c as u16))
        .collect()
}

pub fn tests() -> Vec<IntegrationTest> {
    vec![IntegrationTest {
        name: "guest_ffa",
        boot,
        // Two Linux boots on 2 CPUs under TF-A, the driver and probe in each.
        timeout: Duration::from_secs(240),
        expects,
        extra: Some(extra),
        forbid: super::nshyp::FORBID_GUEST,
    }]
}

#[cfg(test)]
mod tests {
    #[test]
    fn script_never_types_what_it_waits_for() {
        let input = super::input();
        for (wait, _) in &input {
            assert!(input.iter().all(|(_, send)| !send.contains(wait.as_str()) || wait == "bench_iters="), "{wait:?} is typed");
        }
        for e in super::expects() {
            for f in e.all_of.iter().filter(|f| !f.starts_with('[')) {
                assert!(input.iter().all(|(_, send)| !send.contains(f.as_str())), "{f:?} is typed");
            }
        }
    }

    #[test]
    fn devices_are_checked_per_vm() {
        let sps = crate::tests::spmc::sp_uuids();
        let mut out = String::new();
        for k in 0..2usize {
            for (i, (_, u)) in sps.iter().enumerate() {
                out += &format!("[vm{k}] FFA_DEV: arm-ffa-{} id={:#06x} uuid={u}\n", i + 1, 0x8001 + i);
            }
            let nil = "00000000-0000-0000-0000-000000000000";
            out += &format!("[vm{k}] FFA_DEV: arm-ffa-8 id={:#06x} uuid={nil}\n", 2 - k);
            out += &format!("[vm{k}] FFA_DEV: arm-ffa-9 id={:#06x} uuid={nil}\n", k + 1);
            for sp in super::sp_ids() {
                out += &format!("[vm{k}] RESULT: [    5.1] quadrant-ffa-probe: {sp:#06x} direct: ok x3..x7 0 51 52 53 54\n");
            }
        }
        assert_eq!(super::extra(&out), Vec::<String>::new());
        // VM 1's own device listed before the other VM's: its id is not the last.
        let swapped = out.replace("arm-ffa-8 id=0x0001", "arm-ffa-8 id=0x0002").replace("[vm1] FFA_DEV: arm-ffa-9 id=0x0002", "[vm1] FFA_DEV: arm-ffa-9 id=0x0001");
        assert_eq!(super::extra(&swapped).len(), 1, "{:?}", super::extra(&swapped));
        let failed = format!("{out}[vm1] quadrant-ffa-probe: 0x8003 direct: FAIL ret -16\n");
        assert_eq!(super::extra(&failed).len(), 1);
    }
}
