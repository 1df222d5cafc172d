//! Issue B3: `guest_ffa_isolation`, the memory isolation of ns-hyp's FF-A
//! proxy seen from a guest.  ci/ffa-guest, a bare EL1 guest, is VM 0 under
//! ns-hyp under TF-A and spmc: its MEM_SHARE of memory it does not own (an
//! IPA outside its RAM, its RX buffer, a page it has lent) is refused; a
//! page it lent to the isolation SP faults on a read and on a write until it
//! reclaims it, and then holds what it held; a made-up handle is not
//! reclaimed.  It leaves that page lent and resets: ns-hyp reclaims the
//! transaction at the VM's teardown, and the restarted guest's lend of the
//! same page succeeds (the SPMC refuses a page already in a live
//! transaction, and so would ns-hyp's ledger).  VM 1, a second ffa-guest
//! that only waits, makes VM 0's reset a VM reset and not the machine's.

use super::{Expect, IntegrationTest, XResult, expect};
use crate::build::Outputs;
use crate::qemu::Boot;
use std::time::Duration;

const VM_MIB: u32 = 64;
/// The payload store: above both VMs' RAM.  VM 0 boots from it, so a
/// reset starts it again from a fresh copy in scrubbed RAM.
const STORE_PA: u64 = super::nshyp::GUEST_RAM_PA + ((2 * VM_MIB as u64) << 20);

/// ffa-guest's checks as endpoint 1, in order (ci/ffa-guest/src/main.rs).
const CHECKS: &[&str] = &[
    "version",
    "id_get",
    "rxtx_map",
    "share_outside_ram",
    "share_rx_buffer",
    "lend",
    "read_lent_faults",
    "write_lent_faults",
    "share_lent_page",
    "reclaim",
    "read_reclaimed",
    "reclaim_unknown_handle",
    "lend_again",
];
/// The guest's two lives: before and after its reset.
const LIVES: usize = 2;
/// The page it lends (ffa-guest's `LENT`).
const LENT_IPA: &str = "0x41002000";

fn boot(o: &Outputs) -> XResult<Boot> {
    use super::nshyp::{self, GuestPayload, VmLoad};
    let image = o.images.join("ffa-guest.bin");
    let size = nshyp::size(&image)?;
    let vm0 = VmLoad { bootargs: format!("quadrant.guest={STORE_PA:#x},{size} quadrant.vcpus=1 quadrant.mem={VM_MIB}"), loads: vec![(image.clone(), STORE_PA)] };
    let vm1_pa = nshyp::GUEST_RAM_PA + ((VM_MIB as u64) << 20);
    let vm1 = nshyp::vm_load(&GuestPayload { kernel: image, initrd: None, cmdline: None }, vm1_pa, Some(VM_MIB), 1, &format!("quadrant.mem={VM_MIB}"))?;
    let b = nshyp::hyp_boot(o, Some(&o.bios), "guest-ffa-isolation", &[vm0, vm1], Some(2))?;
    Ok(Boot::Scripted { boot: Box::new(b), input: input() })
}

/// VM 0 (the console's input at first) resets after its first run of the
/// checks and powers off after its second; then VM 1 powers off, the last.
fn input() -> Vec<(String, String)> {
    super::nshyp::steps(&[
        ("[vm0] [ffa-guest] waiting", "r"),
        ("[ns-hyp] vm0: restarted", ""),
        ("[vm0] [ffa-guest] waiting", "o"),
        ("[ns-hyp] vm0: SYSTEM_OFF", "\x1d1"),
        ("console: input to vm1", "o"),
    ])
}

fn expects() -> Vec<Expect> {
    vec![
        expect("ns-hyp made VM 0 endpoint 1", &["[ns-hyp] guest FF-A: vm0 is endpoint 0x0001"]),
        expect("VM 1 ran ffa-guest as endpoint 2", &["[vm1] [ffa-guest] endpoint 0x0002: no checks, idle"]),
        expect("ns-hyp turned the guest's read of its lent page into an external abort", &["vm0 vCPU 0: data abort at IPA ", LENT_IPA, "a page it lent (FF-A), not reclaimed"]),
        expect("VM 0 reset through PSCI", &["[ns-hyp] vm0: SYSTEM_RESET"]),
        expect("ns-hyp reclaimed VM 0's lent page at its teardown", &["[ns-hyp] vm0: FF-A memory: 1 transaction(s) reclaimed, 0 held by a borrower"]),
        expect("ns-hyp restarted VM 0", &["[ns-hyp] vm0: restarted"]),
        expect("VM 0 powered off alone", &["[ns-hyp] vm0: SYSTEM_OFF"]),
        expect("the last VM's SYSTEM_OFF powered the machine off", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// Every check ok in both lives, each life's summary `N passed, 0 failed`,
/// no check failed, and a teardown reclaim per life (the reset's and the
/// power-off's), none held back.
fn extra(output: &str) -> Vec<String> {
    let mut f = failed_checks(output);
    for c in CHECKS {
        expect_lines(output, &format!("[vm0] [ffa-guest] {c}: ok"), LIVES, &mut f);
    }
    expect_lines(output, &format!("[vm0] [ffa-guest] {} passed, 0 failed", CHECKS.len()), LIVES, &mut f);
    let reclaimed = "vm0: FF-A memory: 1 transaction(s) reclaimed, 0 held by a borrower";
    expect_lines(output, reclaimed, LIVES, &mut f);
    // The restarted guest's lend came after the reset's reclaim.
    let (reclaim, second) = (output.find(reclaimed), output.match_indices("[vm0] [ffa-guest] lend_again: ok").nth(1).map(|m| m.0));
    if !matches!((reclaim, second), (Some(r), Some(s)) if r < s) {
        f.push("the second life's lend did not follow the teardown's reclaim".into());
    }
    f
}

/// Every ffa-guest line that reports a failed check.
fn failed_checks(output: &str) -> Vec<String> {
    output.lines().filter(|l| l.contains("[ffa-guest]") && l.contains("FAIL")).map(|l| format!("a check failed: {l}")).collect()
}

/// Adds a failure to `f` unless exactly `n` lines of `output` contain `what`.
fn expect_lines(output: &str, what: &str, n: usize, f: &mut Vec<String>) {
    let count = output.lines().filter(|l| l.contains(what)).count();
    if count != n {
        f.push(format!("{count} line(s) with {what:?}, not {n}"));
    }
}

/// The guest lines that must not appear, besides [`super::nshyp::FORBID_GUEST`]'s.
const FORBID: &[&str] = &["PANIC", "panicked", "Unhandled Exception", "ERROR:", "Kernel panic", "BUG:", "UNDEFINED", "FAIL", "not reclaimed (a borrower holds it)"];

pub fn tests() -> Vec<IntegrationTest> {
    vec![
        IntegrationTest {
            name: "guest_ffa_isolation",
            boot,
            // TF-A, spmc, ns-hyp, two bare guests and one reset: well under a minute.
            timeout: Duration::from_secs(180),
            expects,
            extra: Some(extra),
            forbid: FORBID,
        },
        IntegrationTest {
            name: "guest_ffa_notifications",
            boot: notify_boot,
            timeout: Duration::from_secs(180),
            expects: notify_expects,
            extra: Some(notify_extra),
            forbid: FORBID,
        },
    ]
}

/// Issue B3 item 3, `guest_ffa_notifications`: two ffa-guests (endpoints 1
/// and 2) under ns-hyp under TF-A and spmc.  Each in turn (`n`) checks what
/// it may not do (the hypervisor's calls, calls for another endpoint, bad
/// indirect messages), takes a notification from the mp SP as the NPI that
/// ns-hyp pends from the SPMC's Schedule Receiver Interrupt, notifies mp and
/// sends it an indirect message that mp reads back, and binds the other VM;
/// then (`i`) mp sends it indirect messages, which the SPMC writes into the
/// RX buffer ns-hyp forwarded (the NPI, the SPM framework "RX buffer full"
/// bit, BUSY until FFA_RX_RELEASE, which ns-hyp passes to the SPMC).
/// Then VM 1 notifies VM 0 and sends it a message (`s`; a second one is
/// BUSY until VM 0 releases its RX buffer), VM 0 takes both (`g`), and the
/// same the other way.  Last, with VM 1 off, VM 0 asks mp (subscribed to VM
/// availability messages) what ns-hyp told it: each VM created once, VM 1
/// destroyed once (`a`).
fn notify_boot(o: &Outputs) -> XResult<Boot> {
    use super::nshyp::{self, GuestPayload};
    let image = o.images.join("ffa-guest.bin");
    let payload = GuestPayload { kernel: image, initrd: None, cmdline: None };
    let vms = (0..2)
        .map(|k| nshyp::vm_load(&payload, nshyp::GUEST_RAM_PA + ((k * VM_MIB as u64) << 20), Some(VM_MIB), 1, &format!("quadrant.mem={VM_MIB}")))
        .collect::<XResult<Vec<_>>>()?;
    let b = nshyp::hyp_boot(o, Some(&o.bios), "guest-ffa-notifications", &vms, Some(2))?;
    Ok(Boot::Scripted { boot: Box::new(b), input: notify_input() })
}

fn notify_input() -> Vec<(String, String)> {
    super::nshyp::steps(&[
        ("[vm0] [ffa-guest] waiting", "n"),
        ("[vm0] [ffa-guest] notifications: ", "i"),
        ("[vm0] [ffa-guest] from_sp: ", "\x1d1"),
        ("console: input to vm1", "n"),
        ("[vm1] [ffa-guest] notifications: ", "i"),
        ("[vm1] [ffa-guest] from_sp: ", "s"),
        ("[vm1] [ffa-guest] sent: ", "\x1d0"),
        ("console: input to vm0", "g"),
        ("[vm0] [ffa-guest] received: ", "s"),
        ("[vm0] [ffa-guest] sent: ", "\x1d1"),
        ("console: input to vm1", "g"),
        ("[vm1] [ffa-guest] received: ", "o"),
        ("[ns-hyp] vm1: SYSTEM_OFF", "\x1d0"),
        ("console: input to vm0", "a"),
        ("[vm0] [ffa-guest] availability: ", "o"),
    ])
}

/// The checks of `n`, `s` and `g` (ci/ffa-guest/src/main.rs), for both VMs.
const NOTIFY_CHECKS: &[(&str, &[&str])] = &[
    ("notifications", &["notif_rxtx_map", "features_npi", "features_no_sri", "hypervisor_calls_refused", "only_for_itself", "bind_sp_sender", "sp_sets", "npi_from_sp", "get_from_sp", "get_takes", "sp_binds_vm", "set_to_sp", "sp_gets", "sp_unbinds_vm", "send2_to_sp", "sp_reads", "send2_bad", "bind_peer"]),
    ("sent", &["set_to_peer", "send2_to_peer", "send2_peer_busy"]),
    ("received", &["npi_from_peer", "get_from_peer", "message_from_peer", "rx_release"]),
    ("from_sp", &["sp_sends_to_vm", "npi_from_sp_message", "get_spm_rx_full", "message_from_sp", "sp_send_busy", "rx_release_to_spmc", "sp_sends_again", "release_again"]),
];
/// VM 0's last checks (`a`): mp's log of ns-hyp's VM availability messages.
const AVAILABILITY_CHECKS: &[&str] = &["vm_created_seen", "peer_destroyed_seen"];

fn notify_expects() -> Vec<Expect> {
    vec![
        expect("ns-hyp made both VMs endpoints with notification bitmaps at the SPMC", &["[ns-hyp] guest FF-A: vm1 is endpoint 0x0002 (1 vCPU(s)), notification bitmaps created"]),
        expect("ns-hyp took the SPMC's Schedule Receiver Interrupt and pended NPIs", &["[ns-hyp] guest FF-A: ", "Schedule Receiver Interrupt(s) taken"]),
        expect("ns-hyp told mp (subscribed) that VM 1 was created", &["[ns-hyp] guest FF-A: vm1: VM created message to 1 SP(s), 1 answered"]),
        expect("ns-hyp told mp that VM 1 is gone at its power-off", &["[ns-hyp] guest FF-A: vm1: VM destroyed message to 1 SP(s), 1 answered"]),
        expect("mp's log of the messages as VM 0 read it", &["[vm0] [ffa-guest] availability: 2 passed, 0 failed"]),
        expect("the last VM's SYSTEM_OFF powered the machine off", &["[ns-hyp] guest: SYSTEM_OFF"]),
    ]
}

/// Every check ok once per VM, each summary `N passed, 0 failed`, and the
/// SRI taken at least twice (mp's notification of each VM).
fn notify_extra(output: &str) -> Vec<String> {
    let mut f = failed_checks(output);
    for vm in ["[vm0]", "[vm1]"] {
        for (what, checks) in NOTIFY_CHECKS {
            for c in *checks {
                expect_lines(output, &format!("{vm} [ffa-guest] {c}: ok"), 1, &mut f);
            }
            expect_lines(output, &format!("{vm} [ffa-guest] {what}: {} passed, 0 failed", checks.len()), 1, &mut f);
        }
    }
    for c in AVAILABILITY_CHECKS {
        expect_lines(output, &format!("[vm0] [ffa-guest] {c}: ok"), 1, &mut f);
    }
    let sris = output.lines().find_map(|l| l.split("guest FF-A: ").nth(1)?.split(" Schedule Receiver Interrupt(s) taken").next()?.parse::<u32>().ok());
    if !sris.is_some_and(|n| n >= 2) {
        f.push(format!("Schedule Receiver Interrupts taken: {sris:?}, not 2 or more"));
    }
    f
}

#[cfg(test)]
mod tests {
    #[test]
    fn forbid_extends_the_guest_list() {
        assert!(super::super::nshyp::FORBID_GUEST.iter().all(|f| super::FORBID.contains(f)));
    }

    #[test]
    fn both_lives_are_checked() {
        let mut out = String::new();
        for _ in 0..super::LIVES {
            for c in super::CHECKS {
                out += &format!("[vm0] [ffa-guest] {c}: ok\n");
            }
            out += &format!("[vm0] [ffa-guest] {} passed, 0 failed\n", super::CHECKS.len());
            out += "[ns-hyp] vm0: FF-A memory: 1 transaction(s) reclaimed, 0 held by a borrower\n";
        }
        assert_eq!(super::extra(&out), Vec::<String>::new());
        let one_life = out[..out.len() / 2].to_string();
        assert!(!super::extra(&one_life).is_empty());
        let failed = out.replacen("lend_again: ok", "lend_again: FAIL FFA_ERROR DENIED", 2);
        assert!(!super::extra(&failed).is_empty());
    }
}
