use super::*;
use crate::vm::virtio_blk::fakes::{Mem, RamDisk, BASE};
use crate::vm::virtio_blk::{GuestMemory, SECTOR};

const DEV: u64 = (DEVFN as u64) << 12;
const ITS_TRANSLATER: u64 = 0x0809_0040;

fn cfg32(p: &VirtioPci, reg: u64) -> u32 {
    p.config_read(DEV + reg, 4) as u32
}

/// Walks the capability list as Linux's virtio_pci_modern does: cfg_type → (offset, length).
fn virtio_caps(p: &VirtioPci) -> Vec<(u8, u32, u32)> {
    let mut caps = Vec::new();
    let mut at = p.config_read(DEV + 0x34, 1);
    let mut guard = 0;
    while at != 0 && guard < 16 {
        let id = p.config_read(DEV + at, 1);
        if id == 0x09 {
            caps.push((p.config_read(DEV + at + 3, 1) as u8, cfg32(p, at + 8), cfg32(p, at + 12)));
        }
        at = p.config_read(DEV + at + 1, 1);
        guard += 1;
    }
    caps
}

#[test]
fn config_space_is_a_modern_virtio_blk_function() {
    let p = VirtioPci::new();
    assert_eq!(cfg32(&p, 0), 0x1042_1af4);
    assert_eq!(p.config_read(DEV + 0x06, 2) & 0x10, 0x10, "capability list");
    assert_eq!(p.config_read(DEV + 0x08, 1), 1, "revision 1");
    assert_eq!(p.config_read(DEV + 0x34, 1), 0x40);
    assert_eq!(p.config_read(DEV + 0x40, 1), 0x11, "MSI-X first");
    assert_eq!(p.config_read(DEV + 0x42, 2) & 0x7ff, 1, "2 vectors");
    assert_eq!(virtio_caps(&p), [(1, 0, 0x38), (2, 0x2800, 4), (3, 0x1000, 4), (4, 0x2000, 0x40)]);
    // Other functions and buses: nothing (all ones).
    assert_eq!(p.config_read(0, 4), 0xffff_ffff);
    assert_eq!(p.config_read(2 << 15, 2), 0xffff);
}

#[test]
fn bar0_is_sized_and_placed_like_a_64_bit_bar() {
    let mut p = VirtioPci::new();
    p.config_write(DEV + 0x10, 4, 0xffff_ffff);
    p.config_write(DEV + 0x14, 4, 0xffff_ffff);
    assert_eq!(cfg32(&p, 0x10), !(BAR0_SIZE as u32 - 1) | 0x4, "16 KiB, 64-bit memory");
    assert_eq!(cfg32(&p, 0x14), 0xffff_ffff);
    p.config_write(DEV + 0x10, 4, 0x1000_4000);
    p.config_write(DEV + 0x14, 4, 0);
    assert_eq!(p.bar0(), None, "memory decoding off");
    p.config_write(DEV + 0x04, 2, 0x6);
    assert_eq!(p.bar0(), Some(0x1000_4000));
    // An unaligned BAR value keeps its alignment.
    p.config_write(DEV + 0x10, 4, 0x1000_4567);
    assert_eq!(p.bar0(), Some(0x1000_4000));
}

/// Linux's virtio-pci modern driver: reset, features, MSI-X vectors,
/// queue 0 at the rings, DRIVER_OK; one read request through the notify
/// address; the used buffer raises the queue's vector's message.
#[test]
fn a_request_completes_with_the_queues_msi() {
    let mut p = VirtioPci::new();
    let sectors = 64;
    let acc = |p: &mut VirtioPci, off: u64, size: u8, write: bool, val: u64| p.bar_access(off, size, write, val, sectors);
    p.config_write(DEV + 0x42, 2, 0x8000);
    for (n, data) in [(0u64, 0x20u32), (1, 0x21)] {
        acc(&mut p, MSIX_TABLE + 16 * n, 4, true, ITS_TRANSLATER);
        acc(&mut p, MSIX_TABLE + 16 * n + 4, 4, true, 0);
        acc(&mut p, MSIX_TABLE + 16 * n + 8, 4, true, data as u64);
        acc(&mut p, MSIX_TABLE + 16 * n + 12, 4, true, 0);
    }
    acc(&mut p, 0x14, 1, true, 0);
    acc(&mut p, 0x14, 1, true, 1 | 2);
    acc(&mut p, 0x00, 4, true, 1);
    assert_eq!(acc(&mut p, 0x04, 4, false, 0).value & 1, 1, "VERSION_1 offered");
    acc(&mut p, 0x08, 4, true, 1);
    acc(&mut p, 0x0c, 4, true, 1);
    acc(&mut p, 0x14, 1, true, 1 | 2 | 8);
    assert_eq!(acc(&mut p, 0x14, 1, false, 0).value & 8, 8, "FEATURES_OK");
    acc(&mut p, 0x10, 2, true, 0);
    assert_eq!(acc(&mut p, 0x10, 2, false, 0).value, 0);
    acc(&mut p, 0x16, 2, true, 0);
    assert_eq!(acc(&mut p, 0x18, 2, false, 0).value, QUEUE_SIZE as u64);
    acc(&mut p, 0x18, 2, true, 8);
    acc(&mut p, 0x1a, 2, true, 1);
    assert_eq!(acc(&mut p, 0x1a, 2, false, 0).value, 1);
    let (desc, avail, used) = (BASE + 0x1000, BASE + 0x2000, BASE + 0x3000);
    for (off, v) in [(0x20, desc), (0x28, avail), (0x30, used)] {
        acc(&mut p, off, 4, true, v & 0xffff_ffff);
        acc(&mut p, off + 4, 4, true, v >> 32);
    }
    acc(&mut p, 0x1c, 2, true, 1);
    assert_eq!(acc(&mut p, 0x1c, 2, false, 0).value, 1, "queue enabled");
    acc(&mut p, 0x14, 1, true, 1 | 2 | 8 | 4);
    // A read of sector 3 into BASE + 0x5000: header, data, status.
    let mut mem = Mem(vec![0; 0x10000]);
    let mut disk = RamDisk { data: (0..sectors as usize * SECTOR).map(|i| (i / SECTOR) as u8).collect(), flushes: 0 };
    let mut hdr = [0u8; 16];
    hdr[8..16].copy_from_slice(&3u64.to_le_bytes());
    mem.write(BASE + 0x4000, &hdr);
    let descs = [(BASE + 0x4000, 16u32, 1u16, 1u16), (BASE + 0x5000, 512, 1 | 2, 2), (BASE + 0x6000, 1, 2, 0)];
    for (i, (a, l, f, n)) in descs.iter().enumerate() {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&a.to_le_bytes());
        d[8..12].copy_from_slice(&l.to_le_bytes());
        d[12..14].copy_from_slice(&f.to_le_bytes());
        d[14..16].copy_from_slice(&n.to_le_bytes());
        mem.write(desc + 16 * i as u64, &d);
    }
    mem.write(avail + 4, &0u16.to_le_bytes());
    mem.write(avail + 2, &1u16.to_le_bytes());
    let o = acc(&mut p, NOTIFY, 2, true, 0);
    assert!(o.notify);
    assert!(p.blk.process(&mut mem, &mut disk));
    assert_eq!(p.used(), Some(Msi { address: ITS_TRANSLATER, data: 0x21 }));
    let mut b = [0u8; 512];
    mem.read(BASE + 0x5000, &mut b);
    assert_eq!(b, [3u8; 512]);
    // Masked, the message waits in the PBA and goes when unmasked.
    acc(&mut p, MSIX_TABLE + 16 + 12, 4, true, 1);
    assert_eq!(p.used(), None);
    assert_eq!(acc(&mut p, MSIX_PBA, 8, false, 0).value, 0b10);
    assert_eq!(acc(&mut p, MSIX_TABLE + 16 + 12, 4, true, 0).msi, Some(Msi { address: ITS_TRANSLATER, data: 0x21 }));
    assert_eq!(acc(&mut p, MSIX_PBA, 8, false, 0).value, 0);
    // Reset: the vectors are NO_VECTOR again, MSI-X stays set up.
    acc(&mut p, 0x14, 1, true, 0);
    assert_eq!(acc(&mut p, 0x1a, 2, false, 0).value, 0xffff);
    assert_eq!(p.used(), None);
}

#[test]
fn hostile_accesses_are_harmless() {
    let mut p = VirtioPci::new();
    for off in (0..BAR0_SIZE + 64).step_by(1) {
        for size in [1u8, 2, 4, 8] {
            let _ = p.bar_access(off, size, false, 0, 8);
            let _ = p.bar_access(off, size, true, u64::MAX, 8);
        }
    }
    // Out-of-range vectors read back as NO_VECTOR and never fire.
    p.bar_access(0x1a, 2, true, 7, 8);
    assert_eq!(p.bar_access(0x1a, 2, false, 0, 8).value, 0xffff);
    assert_eq!(p.used(), None);
    for off in 0..0x1000u64 {
        for size in [1u8, 2, 4, 8] {
            let _ = p.config_read(DEV + off, size);
            p.config_write(DEV + off, size, u64::MAX);
        }
    }
    assert_eq!(cfg32(&p, 0), 0x1042_1af4, "identity is read-only");
}

#[test]
fn a_bar_at_the_top_of_the_address_space_does_not_wrap() {
    let top = u64::MAX & !(BAR0_SIZE - 1);
    assert!(bar0_contains(top, top));
    assert!(bar0_contains(top, u64::MAX));
    assert!(!bar0_contains(top, 0), "bar + size wraps to 0: 0 is not inside");
    assert!(!bar0_contains(top, BAR0_SIZE - 1));
    assert!(!bar0_contains(top, top - 1));
    assert!(bar0_contains(0x1000_0000, 0x1000_0000 + BAR0_SIZE - 1));
    assert!(!bar0_contains(0x1000_0000, 0x1000_0000 + BAR0_SIZE));
    assert!(!bar0_contains(0, 0), "no BAR");
}
