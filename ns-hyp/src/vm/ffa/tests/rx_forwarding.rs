//! A VM's RX/TX pair forwarded to an SPMC that keeps it ([`super::super::setup`]):
//! FFA_RXTX_MAP with the endpoint RX/TX descriptor, FFA_RX_ACQUIRE before
//! ns-hyp writes into the VM's RX buffer, FFA_RX_RELEASE with the VM id,
//! FFA_RXTX_UNMAP with the VM id on unmap and teardown.

use super::*;

const SEND2: u64 = fid::FFA_MSG_SEND2 as u64;
const RELEASE: u64 = fid::FFA_RX_RELEASE as u64;

/// A world whose SPMC keeps the VMs' pairs.
fn world() -> World {
    let w = World::new();
    *w.spmc.vm_rx.borrow_mut() = Some(Default::default());
    w
}

/// Whether the SPMC holds VM `id`'s RX buffer away from its producer.
fn spmc_full(w: &World, id: u16) -> Option<bool> {
    w.spmc.vm_rx.borrow().as_ref().unwrap().get(&id).copied()
}

#[test]
fn the_map_is_forwarded_with_the_endpoint_rxtx_descriptor() {
    let w = world();
    assert!(is_success(&w.map(1, TX, RX)));
    assert!(w.p.vm(1).mailbox.unwrap().forwarded);
    let d = w.spmc.descriptors.borrow()[0].clone();
    let le32 = |o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap());
    let le64 = |o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap());
    assert_eq!(u16::from_le_bytes([d[0], d[1]]), 2, "VM 1's id");
    assert_eq!((le32(4), le32(8), le32(12)), (16, 48, 0));
    // RX then TX: one page, one range each, at their PAs.
    assert_eq!((le32(16), le32(20), le64(32), le32(40)), (1, 1, ram_pa(1) + 0x10_1000, 1));
    assert_eq!((le32(48), le32(52), le64(64), le32(72)), (1, 1, ram_pa(1) + 0x10_0000, 1));
    assert_eq!(spmc_full(&w, 2), Some(false));
    // Unmapped: at the SPMC too (w1[31:16] = the VM id).
    assert!(is_success(&w.call(1, &[fid::FFA_RXTX_UNMAP as u64])));
    assert_eq!(*w.spmc.seen.borrow().last().unwrap(), {
        let mut r = [0; 18];
        r[0] = fid::FFA_RXTX_UNMAP as u64;
        r[1] = 2 << 16;
        r
    });
    assert_eq!(spmc_full(&w, 2), None);
    // A v1.0 VM has no indirect messages: its pair stays ns-hyp's.
    w.call(0, &[fid::FFA_VERSION as u64, 0x1_0000]);
    let n = w.spmc.seen.borrow().len();
    assert!(is_success(&w.map(0, TX, RX)));
    assert!(!w.p.vm(0).mailbox.unwrap().forwarded);
    assert_eq!(w.spmc.seen.borrow().len(), n);
}

#[test]
fn an_sps_message_is_released_through_the_spmc() {
    let w = world();
    assert!(is_success(&w.map(1, TX, RX)));
    // Nothing there: the SPMC says DENIED, and so does the VM's release.
    assert_eq!(w.call(1, &[RELEASE]), err(FfaError::Denied));
    // The SPMC wrote an SP's message into it (its state: full).
    w.spmc.vm_rx.borrow_mut().as_mut().unwrap().insert(2, true);
    // Another VM's message meanwhile: ns-hyp cannot acquire it, BUSY, nothing written.
    assert!(is_success(&w.map(0, TX, RX)));
    w.put_message(0, 1, 2, b"from vm0");
    assert_eq!(w.call(0, &[SEND2]), err(FfaError::Busy));
    assert_eq!(w.ram.read(1, RX + 40, 8), [0; 8]);
    assert!(!w.p.vm(1).mailbox.unwrap().rx_full, "the reservation was undone");
    // So is a partition discovery into it.
    assert_eq!(w.call(1, &[fid::FFA_PARTITION_INFO_GET as u64]), err(FfaError::Busy));
    // The VM releases: forwarded with its id; the SPMC owns it again.
    assert!(is_success(&w.call(1, &[RELEASE])));
    assert_eq!(w.spmc.seen.borrow().last().unwrap()[..2], [RELEASE, 2]);
    assert_eq!(spmc_full(&w, 2), Some(false));
    assert_eq!(w.call(1, &[RELEASE]), err(FfaError::Denied), "released twice");
}

#[test]
fn ns_hyp_acquires_before_writing_and_releases_after_the_vm() {
    let w = world();
    assert!(is_success(&w.map(0, TX, RX)));
    assert!(is_success(&w.map(1, TX, RX)));
    w.put_message(0, 1, 2, b"hello vm1");
    assert!(is_success(&w.call(0, &[SEND2])));
    assert_eq!(&w.ram.read(1, RX + 40, 9), b"hello vm1");
    let fids = w.spmc.seen_fids();
    assert_eq!(fids[fids.len() - 1], fid::FFA_RX_ACQUIRE, "acquired from the SPMC before the write");
    assert_eq!(spmc_full(&w, 2), Some(true));
    assert!(w.p.vm(1).mailbox.unwrap().rx_full);
    // Full: the next one BUSY, without asking the SPMC.
    let n = w.spmc.seen.borrow().len();
    assert_eq!(w.call(0, &[SEND2]), err(FfaError::Busy));
    assert_eq!(w.spmc.seen.borrow().len(), n);
    // The VM releases: ns-hyp's state and the SPMC's.
    assert!(is_success(&w.call(1, &[RELEASE])));
    assert!(!w.p.vm(1).mailbox.unwrap().rx_full);
    assert_eq!(spmc_full(&w, 2), Some(false));
    assert!(is_success(&w.call(0, &[SEND2])));
    // Partition discovery too: acquired, written, released with the VM's release.
    assert!(is_success(&w.call(1, &[RELEASE])));
    assert!(is_success(&w.call(1, &[fid::FFA_PARTITION_INFO_GET as u64])));
    assert_eq!(spmc_full(&w, 2), Some(true));
    assert!(is_success(&w.call(1, &[RELEASE])));
    assert_eq!(spmc_full(&w, 2), Some(false));
    // An answer that failed gives it back at once.
    assert_eq!(w.call(1, &[fid::FFA_PARTITION_INFO_GET as u64, 7, 7, 7, 7]), err(FfaError::InvalidParameters));
    assert_eq!(spmc_full(&w, 2), Some(false));
    assert!(!w.p.vm(1).mailbox.unwrap().rx_full);
}

#[test]
fn teardown_unmaps_at_the_spmc_before_unpinning() {
    let w = world();
    assert!(is_success(&w.map(2, TX, RX)));
    assert_eq!(spmc_full(&w, 3), Some(false));
    w.p.vm_gone(2, &w.spmc, &w.ram);
    assert_eq!(spmc_full(&w, 3), None);
    assert!(w.p.vm(2).mailbox.is_none());
    let fids = w.spmc.seen_fids();
    let unmap = fids.iter().position(|&f| f == fid::FFA_RXTX_UNMAP).unwrap();
    let destroy = fids.iter().position(|&f| f == fid::FFA_NOTIFICATION_BITMAP_DESTROY).unwrap();
    assert!(unmap < destroy, "no SP message (nor its notification) after the bitmaps go");
    // Mapped again after the reset: forwarded again.
    assert!(is_success(&w.map(2, TX, RX)));
    assert_eq!(spmc_full(&w, 3), Some(false));
    // A VM without a pair: nothing to unmap at the SPMC.
    let n = w.spmc.seen_fids().iter().filter(|&&f| f == fid::FFA_RXTX_UNMAP).count();
    w.p.vm_gone(0, &w.spmc, &w.ram);
    assert_eq!(w.spmc.seen_fids().iter().filter(|&&f| f == fid::FFA_RXTX_UNMAP).count(), n);
}

#[test]
fn the_spm_framework_rx_full_bit_reaches_the_vm() {
    let w = world();
    assert!(is_success(&w.map(1, TX, RX)));
    // The fake SPMC reports SPM framework bit 0 (RX buffer full) in w6.
    let r = w.call(1, &[fid::FFA_NOTIFICATION_GET as u64, 2, 1 << 2]);
    assert!(is_success(&r));
    assert_eq!(r[6], 1);
}

#[test]
fn an_spmc_that_lost_the_pair_does_not_stop_the_vms_unmap() {
    let w = world();
    assert!(is_success(&w.map(1, TX, RX)));
    w.spmc.vm_rx.borrow_mut().as_mut().unwrap().remove(&2);
    // The SPMC answers INVALID_PARAMETERS to the forwarded unmap: logged,
    // and the VM's own unmap still succeeds (its pages are unpinned).
    assert!(is_success(&w.call(1, &[fid::FFA_RXTX_UNMAP as u64])));
    assert!(w.p.vm(1).mailbox.is_none());
    // And its release of a message nobody wrote: the SPMC's INVALID_PARAMETERS
    // never reaches a VM without a pair (DENIED here).
    assert_eq!(w.call(1, &[RELEASE]), err(FfaError::Denied));
}
