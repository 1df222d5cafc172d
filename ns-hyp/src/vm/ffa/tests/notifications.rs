//! Notifications and indirect messages of VMs ([`super::super::notify`],
//! [`super::super::indirect`]) against the fake SPMC: every path, every bad input.

use super::*;
use shared::abi::ffa::interface_args::SuccessArgs;
use shared::abi::ffa::notification::SuccessArgsNotificationInfoGet64;

const BIND: u64 = fid::FFA_NOTIFICATION_BIND as u64;
const UNBIND: u64 = fid::FFA_NOTIFICATION_UNBIND as u64;
const SET: u64 = fid::FFA_NOTIFICATION_SET as u64;
const GET: u64 = fid::FFA_NOTIFICATION_GET as u64;
const SEND2: u64 = fid::FFA_MSG_SEND2 as u64;
const SP: u64 = 0x8001;

fn ids(sender: u64, receiver: u64) -> u64 {
    sender << 16 | receiver
}

#[test]
fn bind_checks_and_routes() {
    let w = World::new();
    // VM 1 (id 2) is the receiver.
    for bad in [
        [BIND, ids(SP, 1), 0, 1, 0],        // another receiver
        [BIND, ids(2, 2), 0, 1, 0],         // itself as sender
        [BIND, ids(SP, 2), 2, 1, 0],        // flags bits 31:1 MBZ
        [BIND, ids(9, 2), 0, 1, 0],         // no such VM
        [BIND, ids(0, 2), 0, 1, 0],         // ns-hyp sends no notifications
        [UNBIND, ids(1, 2), 1, 1, 0],       // UNBIND's flags MBZ
    ] {
        assert_eq!(w.call(1, &bad), err(FfaError::InvalidParameters), "{bad:x?}");
    }
    assert!(w.spmc.seen.borrow().is_empty(), "nothing bad reaches the SPMC");
    // An SP sender: forwarded as it is.
    let r = [BIND, ids(SP, 2), 1, 0x30, 0];
    assert!(is_success(&w.call(1, &r)));
    assert_eq!(w.spmc.seen.borrow().last().unwrap()[..5], r);
    // A VM sender: bound in ns-hyp, the SPMC not asked.
    let n = w.spmc.seen.borrow().len();
    assert!(is_success(&w.call(1, &[BIND, ids(1, 2), 0, 0b100, 0])));
    assert_eq!(w.call(1, &[BIND, ids(3, 2), 0, 0b110, 0]), err(FfaError::Denied), "bit 2 is bound already");
    assert_eq!(w.call(1, &[BIND, ids(3, 2), 0, 0, 0]), err(FfaError::InvalidParameters), "an empty bitmap");
    assert_eq!(w.call(1, &[UNBIND, ids(3, 2), 0, 0b100, 0]), err(FfaError::Denied), "bound to another sender");
    assert!(is_success(&w.call(1, &[UNBIND, ids(1, 2), 0, 0b100, 0])));
    assert!(is_success(&w.call(1, &[BIND, ids(3, 2), 1, 0b100, 0])), "free again");
    assert_eq!(w.spmc.seen.borrow().len(), n);
}

#[test]
fn vm_to_vm_set_pends_the_receivers_npi_once() {
    let w = World::new();
    // VM 1 (id 2, 4 vCPUs) takes bit 2 from VM 0 (id 1) globally, bit 40 per vCPU.
    assert!(is_success(&w.call(1, &[BIND, ids(1, 2), 0, 0b100, 0])));
    assert!(is_success(&w.call(1, &[BIND, ids(1, 2), 1, 0, 1 << 8])));
    for bad in [
        [SET, ids(2, 2), 0, 0b100, 0],  // another sender than itself
        [SET, ids(1, 1), 0, 0b100, 0],  // itself as receiver
        [SET, ids(1, 9), 0, 0b100, 0],  // no such VM
        [SET, ids(1, 2), 4, 0b100, 0],  // flags bits 15:2 MBZ
        [SET, ids(1, 2), 1, 0b100, 0],  // per-vCPU set of a global notification
        [SET, ids(1, 2), 0, 0, 1 << 8], // global set of a per-vCPU one
        [SET, ids(1, 2), 1 | 4 << 16, 0, 1 << 8], // no vCPU 4
    ] {
        assert_eq!(w.call(0, &bad), err(FfaError::InvalidParameters), "{bad:x?}");
    }
    assert_eq!(w.call(0, &[SET, ids(1, 2), 0, 0b1000, 0]), err(FfaError::Denied), "not bound");
    assert!(w.ram.npis.borrow().is_empty());
    assert!(is_success(&w.call(0, &[SET, ids(1, 2), 0, 0b100, 0])));
    assert!(is_success(&w.call(0, &[SET, ids(1, 2), 2, 0b100, 0])), "delay SRI: allowed, no meaning here");
    assert_eq!(*w.ram.npis.borrow(), [(1, 0)], "one NPI for what is pending, on vCPU 0");
    assert!(is_success(&w.call(0, &[SET, ids(1, 2), 1 | 3 << 16, 0, 1 << 8])));
    assert_eq!(*w.ram.npis.borrow(), [(1, 0), (1, 3)], "a per-vCPU one: that vCPU's");
    // VM 1's GET of the VMs' bitmap on vCPU 0 takes the global one; the SPMC is not asked.
    let r = w.call(1, &[GET, 2, 1 << 1]);
    assert!(is_success(&r));
    assert_eq!((r[4], r[5], r[2], r[6], r[7]), (0b100, 0, 0, 0, 0));
    assert!(w.spmc.seen.borrow().is_empty());
    let r = w.call(1, &[GET, 3 << 16 | 2, 1 << 1]);
    assert_eq!((r[4], r[5]), (0, 1 << 8), "vCPU 3's own");
    // Read: the next SET is news again.
    assert!(is_success(&w.call(0, &[SET, ids(1, 2), 0, 0b100, 0])));
    assert_eq!(w.ram.npis.borrow().last(), Some(&(1, 0)));
    assert_eq!(w.ram.npis.borrow().len(), 3);
    // To an SP: forwarded as it is.
    let r = [SET, ids(1, SP), 0, 1, 0];
    assert!(is_success(&w.call(0, &r)));
    assert_eq!(w.spmc.seen.borrow().last().unwrap()[..5], r);
}

#[test]
fn get_merges_the_spmcs_half_and_ns_hyps() {
    let w = World::new();
    assert!(is_success(&w.call(1, &[BIND, ids(1, 2), 0, 0b100, 0])));
    assert!(is_success(&w.call(0, &[SET, ids(1, 2), 0, 0b100, 0])));
    for bad in [
        [GET, 1, 0xf],          // another receiver
        [GET, 4 << 16 | 2, 0xf], // no vCPU 4
        [GET, 2, 0x10],         // flags bits 31:4 MBZ
    ] {
        assert_eq!(w.call(1, &bad), err(FfaError::InvalidParameters), "{bad:x?}");
    }
    let r = w.call(1, &[GET, 2, 0xf]);
    assert!(is_success(&r));
    // SPs' bit 5 and the SPM framework's RX buffer full from the SPMC, VM 0's bit 2 from ns-hyp.
    assert_eq!((r[2], r[3], r[4], r[5], r[6], r[7]), (0x20, 0, 0b100, 0, 1, 0));
    // The SPMC was asked for its bitmaps only, for VM 1 on vCPU 0.
    let asked = *w.spmc.seen.borrow().last().unwrap();
    assert_eq!((asked[0], asked[1], asked[2]), (GET, 2, 0b101));
    // The SPMC's error passes through.
    w.spmc.script.borrow_mut().push(err(FfaError::Denied));
    assert_eq!(w.call(1, &[GET, 2, 1]), err(FfaError::Denied));
}

fn info_get(lists: &[(u16, &[u16])], more: bool) -> Regs {
    let mut info = SuccessArgsNotificationInfoGet64::default();
    for (id, vcpus) in lists {
        info.add_list(*id, vcpus).unwrap();
    }
    info.more_pending_notifications = more;
    let SuccessArgs::Args64(a) = SuccessArgs::from(info) else { unreachable!() };
    let mut r = [0; 18];
    r[0] = fid::FFA_SUCCESS_64 as u64;
    r[2..18].copy_from_slice(&a);
    r
}

#[test]
fn sri_pends_the_npi_of_each_vm_named() {
    let w = World::new();
    // VM 0 (id 1) global, VM 1 (id 2) vCPUs 1 and 3, ns-hyp (0) and an SP
    // skipped, then (more pending) VM 0 vCPU 5: it has 2 vCPUs, skipped.
    w.spmc.script.borrow_mut().push(info_get(&[(1, &[]), (2, &[1, 3]), (0, &[]), (0x8001, &[0])], true));
    w.spmc.script.borrow_mut().push(info_get(&[(1, &[5])], false));
    assert_eq!(w.p.sri(&w.spmc, &w.ram), 3);
    assert_eq!(*w.ram.npis.borrow(), [(0, 0), (1, 1), (1, 3)]);
    assert_eq!(w.spmc.seen_fids(), [fid::FFA_NOTIFICATION_INFO_GET_64; 2]);
    // NO_DATA: nothing to pend; an answer that does not parse: nothing either.
    w.spmc.script.borrow_mut().push(err(FfaError::NoData));
    assert_eq!(w.p.sri(&w.spmc, &w.ram), 0);
    let mut bad = info_get(&[], false);
    bad[2] = 31 << 7; // 31 lists in a 20-id answer
    w.spmc.script.borrow_mut().push(bad);
    assert_eq!(w.p.sri(&w.spmc, &w.ram), 0);
    // An SPMC that always says "more": bounded.
    for _ in 0..20 {
        w.spmc.script.borrow_mut().push(info_get(&[], true));
    }
    w.p.sri(&w.spmc, &w.ram);
    assert!(w.spmc.script.borrow().len() >= 10);
}

#[test]
fn msg_send2_to_an_sp_goes_through_ns_hyps_tx_buffer() {
    let w = World::new();
    assert_eq!(w.call(0, &[SEND2]), err(FfaError::Denied), "no TX buffer");
    assert!(is_success(&w.map(0, TX, RX)));
    w.put_message(0, 1, SP as u16, b"to the SP");
    assert!(is_success(&w.call(0, &[SEND2, 0, 2])));
    let sent = *w.spmc.seen.borrow().last().unwrap();
    assert_eq!((sent[0], sent[1], sent[2]), (SEND2, 1 << 16, 2), "the VM named as sender; delay SRI kept");
    assert_eq!(&w.spmc.sent_tx.borrow()[0][40..], b"to the SP");
    // w1 may name the VM itself.
    assert!(is_success(&w.call(0, &[SEND2, 1 << 16])));
}

#[test]
fn msg_send2_between_vms() {
    let w = World::new();
    assert!(is_success(&w.map(0, TX, RX)));
    w.put_message(0, 1, 2, b"hello vm1");
    assert_eq!(w.call(0, &[SEND2]), err(FfaError::Busy), "the receiver has no RX buffer");
    assert!(is_success(&w.map(1, TX, RX)));
    assert!(is_success(&w.call(0, &[SEND2])));
    assert!(w.spmc.seen.borrow().is_empty(), "between VMs: the SPMC is not involved");
    assert_eq!(&w.ram.read(1, RX + 40, 9), b"hello vm1");
    assert_eq!(w.ram.read(1, RX + 12, 4), (1u32 << 16 | 2).to_le_bytes());
    assert_eq!(*w.ram.npis.borrow(), [(1, 0)]);
    // Its RX buffer is VM 1's until released.
    assert_eq!(w.call(0, &[SEND2]), err(FfaError::Busy));
    let r = w.call(1, &[GET, 2, 1 << 3]);
    assert_eq!(r[7], 1, "hypervisor framework: RX buffer full");
    assert!(is_success(&w.call(1, &[fid::FFA_RX_RELEASE as u64])));
    assert!(is_success(&w.call(0, &[SEND2])));
    assert_eq!(w.ram.npis.borrow().len(), 2);
}

#[test]
fn msg_send2_bad_input() {
    let w = World::new();
    assert!(is_success(&w.map(0, TX, RX)));
    assert!(is_success(&w.map(1, TX, RX)));
    for (sender, receiver) in [(2, 1), (1, 1), (1, 9), (1, 0)] {
        w.put_message(0, sender, receiver, b"x");
        assert_eq!(w.call(0, &[SEND2]), err(FfaError::InvalidParameters), "{sender} -> {receiver}");
    }
    w.put_message(0, 1, 2, b"x");
    for (w1, w2) in [(1, 0), (2 << 16, 0), (0, 1), (0, 4)] {
        assert_eq!(w.call(0, &[SEND2, w1, w2]), err(FfaError::InvalidParameters), "w1 {w1:#x} w2 {w2:#x}");
    }
    // A payload past the buffer, and flags (MBZ) in the header.
    let pa = w.ram.pages_pa(0, TX, 1).unwrap();
    w.ram.write(pa + 16, &4096u32.to_le_bytes());
    assert_eq!(w.call(0, &[SEND2]), err(FfaError::InvalidParameters));
    w.put_message(0, 1, 2, b"x");
    w.ram.write(pa, &1u32.to_le_bytes());
    assert_eq!(w.call(0, &[SEND2]), err(FfaError::InvalidParameters));
    assert!(w.ram.npis.borrow().is_empty() && w.spmc.seen.borrow().is_empty());
}

#[test]
fn a_vm_gone_has_its_bitmaps_made_anew() {
    let w = World::new();
    assert!(is_success(&w.call(1, &[BIND, ids(1, 2), 0, 0b100, 0])));
    assert!(is_success(&w.call(0, &[SET, ids(1, 2), 0, 0b100, 0])));
    w.p.vm_gone(1, &w.spmc, &w.ram);
    // At the SPMC: pending ones taken on each of its 4 vCPUs, destroyed, created.
    let seen = w.spmc.seen.borrow().clone();
    let notif: Vec<_> = seen.iter().filter(|r| [GET, fid::FFA_NOTIFICATION_BITMAP_DESTROY as u64, fid::FFA_NOTIFICATION_BITMAP_CREATE as u64].contains(&r[0])).map(|r| (r[0] as u32, r[1], r[2])).collect();
    assert_eq!(
        notif,
        [
            (fid::FFA_NOTIFICATION_GET, 2, 0b101),
            (fid::FFA_NOTIFICATION_GET, 1 << 16 | 2, 0b101),
            (fid::FFA_NOTIFICATION_GET, 2 << 16 | 2, 0b101),
            (fid::FFA_NOTIFICATION_GET, 3 << 16 | 2, 0b101),
            (fid::FFA_NOTIFICATION_BITMAP_DESTROY, 2, 0),
            (fid::FFA_NOTIFICATION_BITMAP_CREATE, 2, 4),
        ]
    );
    // In ns-hyp: nothing pending, nothing bound.
    let r = w.call(1, &[GET, 2, 1 << 1]);
    assert_eq!(r[4], 0);
    assert_eq!(w.call(0, &[SET, ids(1, 2), 0, 0b100, 0]), err(FfaError::Denied));
    assert!(is_success(&w.call(1, &[BIND, ids(3, 2), 0, 0b100, 0])));
}
