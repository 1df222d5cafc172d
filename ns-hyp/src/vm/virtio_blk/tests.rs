use super::fakes::{DirectMem, Mem, RamDisk};
use super::*;
use crate::vm::virtio_mmio::{MAGIC, STATUS_NEEDS_RESET};

use super::fakes::BASE;
const DESC: u64 = BASE + 0x1000;
const AVAIL: u64 = BASE + 0x2000;
const USED: u64 = BASE + 0x3000;
const HDR: u64 = BASE + 0x4000;
const DATA: u64 = BASE + 0x5000;
const STATUS: u64 = BASE + 0x8000;

impl Mem {
    fn put(&mut self, ipa: u64, b: &[u8]) {
        assert!(self.write(ipa, b));
    }
    fn u16(&self, ipa: u64) -> u16 {
        read_u16(self, ipa).unwrap()
    }
    fn desc(&mut self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[0..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..16].copy_from_slice(&next.to_le_bytes());
        self.put(DESC + 16 * i as u64, &d);
    }
    /// Makes descriptor `head` available as the next request.
    fn offer(&mut self, head: u16) {
        let idx = self.u16(AVAIL + 2);
        self.put(AVAIL + 4 + 2 * (idx % 8) as u64, &head.to_le_bytes());
        self.put(AVAIL + 2, &idx.wrapping_add(1).to_le_bytes());
    }
    fn header(&mut self, ty: u32, sector: u64) {
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&ty.to_le_bytes());
        h[8..16].copy_from_slice(&sector.to_le_bytes());
        self.put(HDR, &h);
    }
}

fn setup() -> (VirtioBlk, Mem, RamDisk) {
    let mut d = VirtioBlk::new();
    d.write(0x070, 1 | 2); // ACKNOWLEDGE | DRIVER
    d.write(0x024, 1);
    d.write(0x020, 1); // VERSION_1
    d.write(0x070, 1 | 2 | 8);
    assert_eq!(d.read(0x070, 4, 0) as u32 & 8, 8, "FEATURES_OK kept");
    d.write(0x030, 0);
    d.write(0x038, 8);
    d.write(0x080, DESC as u32);
    d.write(0x084, 0);
    d.write(0x090, AVAIL as u32);
    d.write(0x0a0, USED as u32);
    d.write(0x044, 1);
    d.write(0x070, 1 | 2 | 8 | 4);
    let disk = RamDisk { data: (0..64 * SECTOR).map(|i| (i / SECTOR) as u8).collect(), flushes: 0 };
    (d, Mem(vec![0; 0x10000]), disk)
}

/// header, one data buffer, status: descriptors 0, 1, 2.
fn three(m: &mut Mem, ty: u32, sector: u64, data_len: u32, data_write: bool) {
    m.header(ty, sector);
    m.desc(0, HDR, 16, DESC_F_NEXT, 1);
    m.desc(1, DATA, data_len, DESC_F_NEXT | if data_write { DESC_F_WRITE } else { 0 }, 2);
    m.desc(2, STATUS, 1, DESC_F_WRITE, 0);
    m.put(STATUS, &[0xff]);
    m.offer(0);
}

#[test]
fn identity_features_and_capacity() {
    let d = VirtioBlk::new();
    assert_eq!(d.read(0x000, 4, 0), MAGIC as u64);
    assert_eq!(d.read(0x004, 4, 0), 2, "modern transport");
    assert_eq!(d.read(0x008, 4, 0), 2, "block device");
    assert_eq!(d.read(0x034, 4, 0), QUEUE_SIZE as u64);
    assert_eq!(d.read(0x100, 4, 0x1_2345_6789), 0x2345_6789);
    assert_eq!(d.read(0x104, 4, 0x1_2345_6789), 1);
    assert_eq!(d.read(0x100, 1, 0x1_2345_6789), 0x89);
    let mut d = VirtioBlk::new();
    d.write(0x014, 1);
    assert_eq!(d.read(0x010, 4, 0), 1, "VERSION_1 offered");
    // A driver that does not accept VERSION_1 (legacy) or asks for more than offered: no FEATURES_OK.
    d.write(0x070, 1 | 2 | 8);
    assert_eq!(d.read(0x070, 4, 0) & 8, 0);
    d.write(0x024, 0);
    d.write(0x020, 1 << 5);
    d.write(0x024, 1);
    d.write(0x020, 1);
    d.write(0x070, 1 | 2 | 8);
    assert_eq!(d.read(0x070, 4, 0) & 8, 0);
}

#[test]
fn access_platform_only_when_offered() {
    // VERSION_1 | ACCESS_PLATFORM in the high word, as Linux accepts them.
    let accept = |d: &mut VirtioBlk| {
        d.write(0x024, 1);
        d.write(0x020, 1 | 2);
        d.write(0x070, 1 | 2 | 8);
        d.read(0x070, 4, 0) & 8
    };
    let mut d = VirtioBlk::new();
    d.write(0x014, 1);
    assert_eq!(d.read(0x010, 4, 0), 1, "a normal guest: not offered");
    assert_eq!(accept(&mut d), 0, "and refused");
    let mut d = VirtioBlk::new();
    d.set_access_platform(true);
    d.write(0x014, 1);
    assert_eq!(d.read(0x010, 4, 0), 1 | 2, "a Realm's device offers it");
    assert_eq!(accept(&mut d), 8);
    d.write(0x070, 0);
    d.write(0x014, 1);
    assert_eq!(d.read(0x010, 4, 0), 1 | 2, "still offered after a reset");
}

#[test]
fn write_then_read_round_trip() {
    let (mut d, mut m, mut disk) = setup();
    m.put(DATA, &[0xab; 1024]);
    three(&mut m, T_OUT, 3, 1024, false);
    assert_eq!(d.write(0x050, 0), Effect::Notify);
    assert!(d.process(&mut m, &mut disk));
    assert_eq!(m.0[(STATUS - BASE) as usize], S_OK);
    assert_eq!(m.u16(USED + 2), 1);
    assert_eq!(&disk.data[3 * SECTOR..5 * SECTOR], &[0xab; 1024][..]);
    assert_eq!(disk.data[5 * SECTOR], 5);
    assert_eq!(d.read(0x060, 4, 0), 1);
    assert_eq!(d.write(0x064, 1), Effect::Line);
    assert_eq!(d.read(0x060, 4, 0), 0);

    m.put(DATA, &[0; 1536]);
    three(&mut m, T_IN, 4, 1536, true);
    assert!(d.process(&mut m, &mut disk));
    assert_eq!(m.0[(STATUS - BASE) as usize], S_OK);
    let got = &m.0[(DATA - BASE) as usize..][..1536];
    assert_eq!(&got[..512], &[0xab; 512][..]);
    assert_eq!(&got[512..], &[5u8; 512].iter().chain([6u8; 512].iter()).copied().collect::<Vec<_>>()[..]);
    // Used element: head 0, 1536 data bytes + the status byte.
    let mut e = [0u8; 8];
    m.read(USED + 4 + 8, &mut e);
    assert_eq!(u32::from_le_bytes(e[4..].try_into().unwrap()), 1537);
}

#[test]
fn direct_transfers_round_trip() {
    let (mut d, m, mut disk) = setup();
    let mut m = DirectMem(m);
    m.0.put(DATA, &[0x5a; 2048]);
    three(&mut m.0, T_OUT, 10, 2048, false);
    d.process(&mut m, &mut disk);
    assert_eq!(m.0 .0[(STATUS - BASE) as usize], S_OK);
    assert_eq!(&disk.data[10 * SECTOR..14 * SECTOR], &[0x5a; 2048][..]);
    m.0.put(DATA, &[0; 2048]);
    three(&mut m.0, T_IN, 9, 2048, true);
    d.process(&mut m, &mut disk);
    assert_eq!(m.0 .0[(STATUS - BASE) as usize], S_OK);
    assert_eq!(&m.0 .0[(DATA - BASE) as usize..][..512], &[9u8; 512][..]);
    assert_eq!(&m.0 .0[(DATA - BASE) as usize + 512..][..1536], &[0x5a; 1536][..]);
    // Outside guest RAM: no slice, no bounce either.
    three(&mut m.0, T_IN, 0, 512, true);
    m.0.desc(1, 0x1000, 512, DESC_F_NEXT | DESC_F_WRITE, 2);
    d.process(&mut m, &mut disk);
    assert_eq!(m.0 .0[(STATUS - BASE) as usize], S_IOERR);
}

#[test]
fn flush_get_id_and_unsupported() {
    let (mut d, mut m, mut disk) = setup();
    m.header(T_FLUSH, 0);
    m.desc(0, HDR, 16, DESC_F_NEXT, 2);
    m.desc(2, STATUS, 1, DESC_F_WRITE, 0);
    m.offer(0);
    d.process(&mut m, &mut disk);
    assert_eq!((disk.flushes, m.0[(STATUS - BASE) as usize]), (1, S_OK));
    three(&mut m, T_GET_ID, 0, 20, true);
    d.process(&mut m, &mut disk);
    assert_eq!(&m.0[(DATA - BASE) as usize..][..15], b"quadrant-ns-hyp");
    three(&mut m, 0x1234, 0, 512, true);
    d.process(&mut m, &mut disk);
    assert_eq!(m.0[(STATUS - BASE) as usize], S_UNSUPP);
}

#[test]
fn bad_requests_get_an_error_status() {
    let (mut d, mut m, mut disk) = setup();
    // Beyond the disk's end.
    three(&mut m, T_IN, 63, 1024, true);
    d.process(&mut m, &mut disk);
    assert_eq!(m.0[(STATUS - BASE) as usize], S_IOERR);
    // Sector count overflow.
    three(&mut m, T_IN, u64::MAX, 512, true);
    d.process(&mut m, &mut disk);
    assert_eq!(m.0[(STATUS - BASE) as usize], S_IOERR);
    // A read into a device-readable buffer, a partial sector, a buffer outside guest RAM.
    three(&mut m, T_IN, 0, 512, false);
    d.process(&mut m, &mut disk);
    assert_eq!(m.0[(STATUS - BASE) as usize], S_IOERR);
    three(&mut m, T_OUT, 0, 100, false);
    d.process(&mut m, &mut disk);
    assert_eq!(m.0[(STATUS - BASE) as usize], S_IOERR);
    three(&mut m, T_OUT, 0, 512, false);
    m.desc(1, 0x1000, 512, DESC_F_NEXT, 2);
    d.process(&mut m, &mut disk);
    assert_eq!(m.0[(STATUS - BASE) as usize], S_IOERR);
    // A device-writable header.
    three(&mut m, T_OUT, 0, 512, false);
    m.desc(0, HDR, 16, DESC_F_NEXT | DESC_F_WRITE, 1);
    d.process(&mut m, &mut disk);
    assert_eq!(m.0[(STATUS - BASE) as usize], S_IOERR);
    assert_eq!(d.read(0x070, 4, 0) & 64, 0, "still running");
    assert_eq!(m.u16(USED + 2), 6, "every request completed");
}

#[test]
fn broken_queues_need_a_reset_and_never_hang() {
    for (what, bad) in [("loop", 0u8), ("index out of range", 1), ("indirect", 2), ("status not writable", 3), ("table outside RAM", 4)] {
        let (mut d, mut m, mut disk) = setup();
        three(&mut m, T_IN, 0, 512, true);
        match bad {
            0 => m.desc(2, STATUS, 1, DESC_F_WRITE | DESC_F_NEXT, 0),
            1 => m.desc(1, DATA, 512, DESC_F_WRITE | DESC_F_NEXT, 99),
            2 => m.desc(0, HDR, 16, DESC_F_INDIRECT, 0),
            3 => m.desc(2, STATUS, 1, 0, 0),
            _ => {
                d.write(0x044, 0);
                d.write(0x080, 0x1000);
                d.write(0x044, 1);
            }
        }
        assert!(d.process(&mut m, &mut disk), "{what}: interrupt (config change)");
        assert_ne!(d.read(0x070, 4, 0) & 64, 0, "{what}: DEVICE_NEEDS_RESET");
        assert!(!d.process(&mut m, &mut disk), "{what}: no more processing");
        d.write(0x070, 0);
        assert_eq!(d.read(0x070, 4, 0), 0, "{what}: reset");
    }
    // More requests made available than the queue holds.
    let (mut d, mut m, mut disk) = setup();
    three(&mut m, T_IN, 0, 512, true);
    m.put(AVAIL + 2, &100u16.to_le_bytes());
    d.process(&mut m, &mut disk);
    assert_ne!(d.read(0x070, 4, 0) & 64, 0);
}

#[test]
fn queue_registers_are_locked_while_ready_and_notify_needs_driver_ok() {
    let (mut d, _, _) = setup();
    d.write(0x038, 2);
    d.write(0x080, 0);
    assert_eq!((d.t.queues[0].num, d.t.queues[0].desc), (8, DESC));
    let mut fresh = VirtioBlk::new();
    assert_eq!(fresh.write(0x050, 0), Effect::None);
    d.write(0x030, 1);
    assert_eq!(d.read(0x034, 4, 0), 0, "only queue 0 exists");
}

/// Ring and descriptor addresses near the top of the address space: the
/// device marks the queue broken instead of computing a wrapped address
/// (issue J, found by the `nshyp_virtio` fuzz target).
#[test]
fn ring_addresses_that_overflow_break_the_queue() {
    for (reg, addr) in [(0x090u64, u64::MAX - 1), (0x0a0, u64::MAX - 3), (0x080, u64::MAX - 15)] {
        let (mut d, mut m, mut disk) = setup();
        three(&mut m, 0, 0, 512, true);
        d.write(0x044, 0); // not ready: the queue registers are writable again
        d.write(reg, addr as u32);
        d.write(reg + 4, (addr >> 32) as u32);
        d.write(0x044, 1);
        assert!(d.process(&mut m, &mut disk), "{reg:#x}");
        assert_ne!(d.read(0x070, 4, 0) as u32 & STATUS_NEEDS_RESET, 0, "{reg:#x}: DEVICE_NEEDS_RESET");
    }
}
