//! The hypervisor's VMs' RX/TX pairs (DEN0077 v1.2, FFA_RXTX_MAP forwarded
//! with an endpoint RX/TX descriptor, FFA_RX_ACQUIRE/FFA_RX_RELEASE with a
//! VM id, FFA_RXTX_UNMAP with a VM id) and indirect messages from an SP to
//! a VM through them.

use super::*;

const VM: u16 = 3;
const VM_RX: u64 = 0x6200_0000;
const VM_TX: u64 = 0x6200_2000;

/// An endpoint RX/TX descriptor in the hypervisor's TX buffer: `id`, RX and
/// TX of `pages` pages each, their composite descriptors at `rx_off` and
/// `tx_off`.
fn put_descriptor(f: &mut Fake, id: u16, rx: u64, tx: u64, pages: u32, rx_off: u32, tx_off: u32) {
    let mut b = vec![0u8; 128];
    b[0..2].copy_from_slice(&id.to_le_bytes());
    b[4..8].copy_from_slice(&rx_off.to_le_bytes());
    b[8..12].copy_from_slice(&tx_off.to_le_bytes());
    for (off, addr) in [(rx_off as usize, rx), (tx_off as usize, tx)] {
        if off + 32 > b.len() {
            continue;
        }
        b[off..off + 4].copy_from_slice(&pages.to_le_bytes());
        b[off + 4..off + 8].copy_from_slice(&1u32.to_le_bytes());
        b[off + 16..off + 24].copy_from_slice(&addr.to_le_bytes());
        b[off + 24..off + 28].copy_from_slice(&pages.to_le_bytes());
    }
    for (i, v) in b.iter().enumerate() {
        f.mem.insert(TX + i as u64, *v);
    }
}

fn forward_map(s: &Spmc, f: &mut Fake) -> Regs {
    s.handle_ns(&regs(&[fid::FFA_RXTX_MAP_64 as u64, 0, 0, 0]), 0, f)
}

fn ok(r: &Regs) -> bool {
    r[0] == fid::FFA_SUCCESS_32 as u64
}

/// The proxy SP, the hypervisor's own pair mapped, VM 3's bitmaps created.
fn setup() -> (Spmc, Fake) {
    let (mut s, mut f) = booted_proxy();
    map_ns(&mut s, &mut f);
    assert!(ok(&s.handle_ns(&regs(&[fid::FFA_NOTIFICATION_BITMAP_CREATE as u64, VM as u64, 2]), 0, &mut f)));
    (s, f)
}

#[test]
fn forwarded_rxtx_map_records_the_vms_pair() {
    let (s, mut f) = setup();
    put_descriptor(&mut f, VM, VM_RX, VM_TX, 2, 16, 48);
    assert!(ok(&forward_map(&s, &mut f)));
    assert_eq!(s.vm_mailbox(VM), Some(Mailbox { tx: VM_TX, rx: VM_RX, size: 0x2000, rx_full: false }));
    assert!(f.mapped.contains(&(VM_RX, 0x2000)) && f.mapped.contains(&(VM_TX, 0x2000)));
    // Once per VM.
    assert!(is_error(&forward_map(&s, &mut f), FfaError::Denied));
    // FFA_RXTX_UNMAP with the VM id in w1[31:16] forgets it.
    assert!(ok(&s.handle_ns(&regs(&[fid::FFA_RXTX_UNMAP as u64, (VM as u64) << 16]), 0, &mut f)));
    assert_eq!(s.vm_mailbox(VM), None);
    assert!(!f.mapped.contains(&(VM_RX, 0x2000)));
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RXTX_UNMAP as u64, (VM as u64) << 16]), 0, &mut f), FfaError::InvalidParameters));
    // The hypervisor's own pair is still there.
    assert!(s.ns_mailbox.lock().is_some());
    assert!(ok(&forward_map(&s, &mut f)), "mapped again");
    // The hypervisor's own pair cannot move onto a VM's.
    assert!(ok(&s.handle_ns(&regs(&[fid::FFA_RXTX_UNMAP as u64]), 0, &mut f)));
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RXTX_MAP_64 as u64, TX, VM_RX, 1]), 0, &mut f), FfaError::InvalidParameters));
}

#[test]
fn forwarded_rxtx_map_refuses_bad_descriptors() {
    let (mut s, mut f) = booted_proxy();
    // No TX buffer of the hypervisor's to read the descriptor from.
    put_descriptor(&mut f, VM, VM_RX, VM_TX, 1, 16, 48);
    assert!(is_error(&forward_map(&s, &mut f), FfaError::InvalidParameters));
    map_ns(&mut s, &mut f);
    let bad = |f: &mut Fake, id: u16, rx: u64, tx: u64, pages: u32, rx_off: u32, tx_off: u32, why: &str| {
        put_descriptor(f, id, rx, tx, pages, rx_off, tx_off);
        let a = forward_map(&s, f);
        assert!(is_error(&a, FfaError::InvalidParameters), "{why}: {a:x?}");
    };
    bad(&mut f, VM, 0x0e30_0000, VM_TX, 1, 16, 48, "RX in secure memory (an SP's)");
    bad(&mut f, VM, VM_RX, 0x0e3f_0000, 1, 16, 48, "TX in secure memory");
    bad(&mut f, VM, 0x4010_0000, VM_TX, 1, 16, 48, "RX outside Normal-world DRAM");
    bad(&mut f, VM, RX, VM_TX, 1, 16, 48, "RX is the hypervisor's own RX buffer");
    bad(&mut f, VM, VM_RX + 8, VM_TX, 1, 16, 48, "unaligned");
    bad(&mut f, VM, VM_RX, VM_RX, 1, 16, 48, "RX and TX the same");
    bad(&mut f, VM, VM_RX, VM_TX, 0, 16, 48, "no pages");
    bad(&mut f, VM, VM_RX, VM_TX, 64, 16, 48, "too many pages");
    bad(&mut f, VM, u64::MAX & !0xfff, VM_TX, 1, 16, 48, "wraps");
    bad(&mut f, 0, VM_RX, VM_TX, 1, 16, 48, "the hypervisor's id");
    bad(&mut f, 0x8001, VM_RX, VM_TX, 1, 16, 48, "an SP's id");
    bad(&mut f, VM, VM_RX, VM_TX, 1, 20, 48, "offset not 8-byte aligned");
    bad(&mut f, VM, VM_RX, VM_TX, 1, 8, 48, "offset inside the descriptor");
    bad(&mut f, VM, VM_RX, VM_TX, 1, 16, 4096 - 16, "composite past the TX buffer");
    bad(&mut f, VM, VM_RX, VM_TX, 1, 16, u32::MAX & !7, "offset far past the buffer");
    // Two address ranges, or a total that is not the range's.
    put_descriptor(&mut f, VM, VM_RX, VM_TX, 1, 16, 48);
    f.mem.insert(TX + 16 + 4, 2);
    assert!(is_error(&forward_map(&s, &mut f), FfaError::InvalidParameters), "two ranges");
    put_descriptor(&mut f, VM, VM_RX, VM_TX, 1, 16, 48);
    f.mem.insert(TX + 48, 2);
    assert!(is_error(&forward_map(&s, &mut f), FfaError::InvalidParameters), "total != range");
    put_descriptor(&mut f, VM, VM_RX, VM_TX, 1, 16, 48);
    f.mem.insert(TX + 2, 1);
    assert!(is_error(&forward_map(&s, &mut f), FfaError::InvalidParameters), "reserved field");
    // RX and TX of different sizes.
    put_descriptor(&mut f, VM, VM_RX, VM_TX, 1, 16, 48);
    f.mem.insert(TX + 48, 2);
    f.mem.insert(TX + 48 + 24, 2);
    assert!(is_error(&forward_map(&s, &mut f), FfaError::InvalidParameters), "RX and TX sizes differ");
    assert_eq!(s.vm_mailbox(VM), None, "nothing recorded");
    // A second VM naming the first one's pages.
    put_descriptor(&mut f, VM, VM_RX, VM_TX, 1, 16, 48);
    assert!(ok(&forward_map(&s, &mut f)));
    bad(&mut f, VM + 1, VM_TX, VM_RX + 0x1000, 1, 16, 48, "another VM's TX");
    // A mapping failure: NO_MEMORY, nothing recorded.
    put_descriptor(&mut f, VM + 1, 0x6300_0000, 0x6300_1000, 1, 16, 48);
    f.fail_map = true;
    assert!(is_error(&forward_map(&s, &mut f), FfaError::NoMemory));
    f.fail_map = false;
    assert_eq!(s.vm_mailbox(VM + 1), None);
    // The hypervisor's TX buffer left the NS PAS under the read: ABORTED.
    put_descriptor(&mut f, VM + 1, 0x6300_0000, 0x6300_1000, 1, 16, 48);
    f.access_fault = true;
    assert!(is_error(&forward_map(&s, &mut f), FfaError::Aborted));
    assert_eq!(s.vm_mailbox(VM + 1), None);
    // Unmap, acquire or release naming an SP: no VM of the hypervisor's.
    for a in [regs(&[fid::FFA_RXTX_UNMAP as u64, 0x8001 << 16]), regs(&[fid::FFA_RX_ACQUIRE as u64, 0x8001]), regs(&[fid::FFA_RX_RELEASE as u64, 0x8001])] {
        assert!(is_error(&s.handle_ns(&a, 0, &mut f), FfaError::InvalidParameters), "{a:x?}");
    }
    // Only the Normal world forwards: an SP's zero map is just invalid.
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_RXTX_MAP_64 as u64, 0, 0, 0]), FfaError::InvalidParameters));
}

#[test]
fn at_most_max_ns_vms_pairs() {
    let (s, mut f) = setup();
    for n in 0..MAX_NS_VMS as u64 {
        put_descriptor(&mut f, 1 + n as u16, 0x6400_0000 + n * 0x2000, 0x6400_1000 + n * 0x2000, 1, 16, 48);
        assert!(ok(&forward_map(&s, &mut f)));
    }
    put_descriptor(&mut f, 100, 0x6500_0000, 0x6500_1000, 1, 16, 48);
    assert!(is_error(&forward_map(&s, &mut f), FfaError::NoMemory));
}

#[test]
fn rx_acquire_and_release_of_a_vms_buffer() {
    let (s, mut f) = setup();
    let acq = |s: &Spmc, f: &mut Fake, id: u16| s.handle_ns(&regs(&[fid::FFA_RX_ACQUIRE as u64, id as u64]), 0, f);
    let rel = |s: &Spmc, f: &mut Fake, id: u16| s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64, id as u64]), 0, f);
    // No pair for the VM: INVALID_PARAMETERS.
    assert!(is_error(&acq(&s, &mut f, VM), FfaError::InvalidParameters));
    assert!(is_error(&rel(&s, &mut f, VM), FfaError::InvalidParameters));
    put_descriptor(&mut f, VM, VM_RX, VM_TX, 1, 16, 48);
    assert!(ok(&forward_map(&s, &mut f)));
    // The SPMC owns it: release DENIED; acquire once, then DENIED.
    assert!(is_error(&rel(&s, &mut f, VM), FfaError::Denied));
    assert!(ok(&acq(&s, &mut f, VM)));
    assert!(is_error(&acq(&s, &mut f, VM), FfaError::Denied));
    // Meanwhile an SP's message to the VM finds it BUSY.
    assert_eq!(sp_call(&s, &mut f, &[fid::FFA_RXTX_MAP_64 as u64, SP_TX, SP_RX, 1])[0], fid::FFA_SUCCESS_32 as u64);
    put_message(&mut f, SP_TX, 0x8001, VM, b"hi");
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64]), FfaError::Busy));
    assert!(ok(&rel(&s, &mut f, VM)));
    assert!(ok(&acq(&s, &mut f, VM)), "the SPMC's again, so it can be acquired again");
    assert!(ok(&rel(&s, &mut f, VM)));
    // An SP cannot acquire.
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_RX_ACQUIRE as u64, VM as u64]), FfaError::NotSupported));
}

#[test]
fn msg_send2_from_an_sp_to_a_vm() {
    let (s, mut f) = setup();
    assert_eq!(sp_call(&s, &mut f, &[fid::FFA_RXTX_MAP_64 as u64, SP_TX, SP_RX, 1])[0], fid::FFA_SUCCESS_32 as u64);
    put_message(&mut f, SP_TX, 0x8001, VM, b"to the vm");
    // The hypervisor has not forwarded the VM's pair: no such receiver.
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64]), FfaError::InvalidParameters));
    put_descriptor(&mut f, VM, VM_RX, VM_TX, 1, 16, 48);
    assert!(ok(&forward_map(&s, &mut f)));
    // A VM the hypervisor forwarded nothing for: INVALID_PARAMETERS.
    put_message(&mut f, SP_TX, 0x8001, VM + 1, b"to the vm");
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64]), FfaError::InvalidParameters));
    // Delivered: header and payload, the VM's SPM framework "RX buffer full", the SRI.
    put_message(&mut f, SP_TX, 0x8001, VM, b"to the vm");
    let sris = f.sris;
    assert_eq!(sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(f.read(VM_RX + 40, 9), b"to the vm".to_vec());
    assert_eq!(f.read(VM_RX + 12, 4), vec![VM as u8, 0, 0x01, 0x80]);
    assert_eq!(f.sris, sris + 1);
    assert!(s.vm_mailbox(VM).unwrap().rx_full);
    // Full: a second message BUSY; the hypervisor cannot acquire it either.
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64]), FfaError::Busy));
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_RX_ACQUIRE as u64, VM as u64]), 0, &mut f), FfaError::Denied));
    // NOTIFICATION_INFO_GET names the VM; its GET with the SPM framework flag: w6 bit 0.
    let info = s.handle_ns(&regs(&[fid::FFA_NOTIFICATION_INFO_GET_64 as u64]), 0, &mut f);
    assert_eq!(info[0], fid::FFA_SUCCESS_64 as u64, "{info:x?}");
    assert_eq!(info[3] as u16, VM);
    let a = s.handle_ns(&regs(&[fid::FFA_NOTIFICATION_GET as u64, VM as u64, SPM_BITMAP]), 0, &mut f);
    assert_eq!(a[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(a[6], notifications::FWK_RX_BUFFER_FULL as u64);
    // The VM read it; the hypervisor releases it for the VM: the next one goes in.
    assert!(ok(&s.handle_ns(&regs(&[fid::FFA_RX_RELEASE as u64, VM as u64]), 0, &mut f)));
    put_message(&mut f, SP_TX, 0x8001, VM, b"again");
    assert_eq!(sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64])[0], fid::FFA_SUCCESS_32 as u64);
    assert_eq!(f.read(VM_RX + 40, 5), b"again".to_vec());
    // Too big for the VM's one page cannot happen (a TX is one page too);
    // from the Normal world a message to a VM is the hypervisor's business.
    put_message(&mut f, TX, VM + 1, VM, b"vm to vm");
    assert!(is_error(&s.handle_ns(&regs(&[fid::FFA_MSG_SEND2 as u64, ((VM + 1) as u64) << 16, 0]), 0, &mut f), FfaError::InvalidParameters));
    // After the unmap the VM is no receiver any more.
    assert!(ok(&s.handle_ns(&regs(&[fid::FFA_RXTX_UNMAP as u64, (VM as u64) << 16]), 0, &mut f)));
    assert!(sp_error(&sp_call(&s, &mut f, &[fid::FFA_MSG_SEND2 as u64]), FfaError::InvalidParameters));
}
