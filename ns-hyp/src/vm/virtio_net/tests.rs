use super::super::virtio_blk::fakes::{Mem, BASE};
use super::*;

/// Two queues of 8: rings per queue at these offsets, buffers above.
fn desc(q: usize) -> u64 {
    BASE + 0x1000 + 0x4000 * q as u64
}
fn avail(q: usize) -> u64 {
    desc(q) + 0x1000
}
fn used(q: usize) -> u64 {
    desc(q) + 0x2000
}
const BUF: u64 = BASE + 0x10000;
const MAC: [u8; 6] = [0x52, 0x54, 0, 0x51, 0, 1];

fn put(m: &mut Mem, ipa: u64, b: &[u8]) {
    assert!(m.write(ipa, b));
}
fn u16_at(m: &Mem, ipa: u64) -> u16 {
    read_u16(m, ipa).unwrap()
}
fn set_desc(m: &mut Mem, q: usize, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
    let mut d = [0u8; 16];
    d[0..8].copy_from_slice(&addr.to_le_bytes());
    d[8..12].copy_from_slice(&len.to_le_bytes());
    d[12..14].copy_from_slice(&flags.to_le_bytes());
    d[14..16].copy_from_slice(&next.to_le_bytes());
    put(m, desc(q) + 16 * i as u64, &d);
}
fn offer(m: &mut Mem, q: usize, head: u16) {
    let idx = u16_at(m, avail(q) + 2);
    put(m, avail(q) + 4 + 2 * (idx % 8) as u64, &head.to_le_bytes());
    put(m, avail(q) + 2, &idx.wrapping_add(1).to_le_bytes());
}
fn used_elem(m: &Mem, q: usize, n: u16) -> (u32, u32) {
    let mut e = [0u8; 8];
    assert!(m.read(used(q) + 4 + 8 * (n % 8) as u64, &mut e));
    (u32::from_le_bytes(e[0..4].try_into().unwrap()), u32::from_le_bytes(e[4..8].try_into().unwrap()))
}

fn setup() -> (VirtioNet, Mem) {
    let mut d = VirtioNet::new(MAC);
    d.write(0x070, 1 | 2);
    d.write(0x024, 1);
    d.write(0x020, 1); // VERSION_1
    d.write(0x024, 0);
    d.write(0x020, 1 << 5); // MAC
    d.write(0x070, 1 | 2 | 8);
    assert_eq!(d.read(0x070, 4) as u32 & 8, 8, "FEATURES_OK kept");
    for q in 0..2 {
        d.write(0x030, q as u32);
        assert_eq!(d.read(0x034, 4), QUEUE_SIZE as u64);
        d.write(0x038, 8);
        d.write(0x080, desc(q) as u32);
        d.write(0x090, avail(q) as u32);
        d.write(0x0a0, used(q) as u32);
        d.write(0x044, 1);
    }
    d.write(0x070, 1 | 2 | 8 | 4);
    (d, Mem(vec![0; 0x20000]))
}

fn frame(len: usize) -> Vec<u8> {
    (0..len).map(|i| i as u8).collect()
}

#[test]
fn identifies_as_a_network_device_with_its_mac() {
    let d = VirtioNet::new(MAC);
    assert_eq!(d.read(0x000, 4) as u32, MAGIC);
    assert_eq!(d.read(0x008, 4) as u32, DEVICE_ID_NET);
    let mac: Vec<u8> = (0..6).map(|i| d.read(0x100 + i, 1) as u8).collect();
    assert_eq!(mac, MAC);
    assert_eq!(d.read(0x100, 4), u32::from_le_bytes([0x52, 0x54, 0, 0x51]) as u64);
    // Only queues 0 and 1 exist.
    let mut d = d;
    d.write(0x030, 2);
    assert_eq!(d.read(0x034, 4), 0);
}

#[test]
fn refuses_features_not_offered() {
    let mut d = VirtioNet::new(MAC);
    d.write(0x024, 0);
    d.write(0x020, 1 << 0); // VIRTIO_NET_F_CSUM: not offered
    d.write(0x024, 1);
    d.write(0x020, 1);
    d.write(0x070, 1 | 2 | 8);
    assert_eq!(d.read(0x070, 4) as u32 & 8, 0);
}

#[test]
fn transmits_a_frame_split_over_descriptors() {
    let (mut d, mut m) = setup();
    let f = frame(100);
    let mut bytes = vec![0u8; HDR_LEN];
    bytes.extend_from_slice(&f);
    put(&mut m, BUF, &bytes[..HDR_LEN]);
    put(&mut m, BUF + 0x100, &bytes[HDR_LEN..]);
    set_desc(&mut m, TX, 0, BUF, HDR_LEN as u32, DESC_F_NEXT, 1);
    set_desc(&mut m, TX, 1, BUF + 0x100, f.len() as u32, 0, 0);
    offer(&mut m, TX, 0);
    assert_eq!(d.write(0x050, TX as u32), Effect::Notify(TX));
    let mut buf = [0u8; HDR_LEN + MAX_FRAME];
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Frame(100));
    assert_eq!(&buf[HDR_LEN..HDR_LEN + 100], &f[..]);
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Idle);
    assert_eq!(u16_at(&m, used(TX) + 2), 1);
    assert_eq!(used_elem(&m, TX, 0), (0, 0));
    assert!(d.tx_done(&mut m));
    assert_eq!(d.read(0x060, 4), 1);
}

#[test]
fn receives_into_a_posted_buffer_with_the_header() {
    let (mut d, mut m) = setup();
    // Nothing posted yet: dropped.
    assert_eq!(d.receive(&mut m, &frame(60)), Rx::NoBuffer);
    set_desc(&mut m, RX, 3, BUF, (HDR_LEN + MAX_FRAME) as u32, DESC_F_WRITE, 0);
    offer(&mut m, RX, 3);
    assert_eq!(d.receive(&mut m, &frame(60)), Rx::Delivered(true));
    let mut got = vec![0u8; HDR_LEN + 60];
    assert!(m.read(BUF, &mut got));
    assert_eq!(&got[..HDR_LEN], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(&got[HDR_LEN..], &frame(60)[..]);
    assert_eq!(used_elem(&m, RX, 0), (3, (HDR_LEN + 60) as u32));
}

#[test]
fn receive_scatters_over_a_chain_and_honours_no_interrupt() {
    let (mut d, mut m) = setup();
    set_desc(&mut m, RX, 0, BUF, 5, DESC_F_WRITE | DESC_F_NEXT, 1);
    set_desc(&mut m, RX, 1, BUF + 0x100, 20, DESC_F_WRITE | DESC_F_NEXT, 2);
    set_desc(&mut m, RX, 2, BUF + 0x200, 2000, DESC_F_WRITE, 0);
    offer(&mut m, RX, 0);
    put(&mut m, avail(RX), &AVAIL_F_NO_INTERRUPT.to_le_bytes());
    assert_eq!(d.receive(&mut m, &frame(100)), Rx::Delivered(false));
    let mut a = [0u8; 5];
    let mut b = [0u8; 20];
    let mut c = [0u8; 87];
    assert!(m.read(BUF, &mut a) && m.read(BUF + 0x100, &mut b) && m.read(BUF + 0x200, &mut c));
    let mut all = a.to_vec();
    all.extend_from_slice(&b);
    all.extend_from_slice(&c);
    assert_eq!(&all[HDR_LEN..], &frame(100)[..]);
    assert_eq!(all[10], 1);
}

#[test]
fn a_buffer_too_small_goes_back_empty() {
    let (mut d, mut m) = setup();
    set_desc(&mut m, RX, 0, BUF, 50, DESC_F_WRITE, 0);
    offer(&mut m, RX, 0);
    assert_eq!(d.receive(&mut m, &frame(100)), Rx::NoBuffer);
    assert_eq!(used_elem(&m, RX, 0), (0, 0));
    // A read-only receive buffer too.
    set_desc(&mut m, RX, 1, BUF, 2000, 0, 0);
    offer(&mut m, RX, 1);
    assert_eq!(d.receive(&mut m, &frame(100)), Rx::NoBuffer);
    assert!(d.running(RX));
}

#[test]
fn bad_transmit_requests_are_dropped_not_sent() {
    let (mut d, mut m) = setup();
    let mut buf = [0u8; HDR_LEN + MAX_FRAME];
    // Longer than a frame.
    set_desc(&mut m, TX, 0, BUF, (HDR_LEN + MAX_FRAME + 1) as u32, 0, 0);
    offer(&mut m, TX, 0);
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Dropped);
    // A device-writable buffer in a transmit request.
    set_desc(&mut m, TX, 1, BUF, 60, DESC_F_WRITE, 0);
    offer(&mut m, TX, 1);
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Dropped);
    // Only a header.
    set_desc(&mut m, TX, 2, BUF, HDR_LEN as u32, 0, 0);
    offer(&mut m, TX, 2);
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Dropped);
    // Outside guest RAM.
    set_desc(&mut m, TX, 3, 0x1000, 100, 0, 0);
    offer(&mut m, TX, 3);
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Dropped);
    // Indirect.
    set_desc(&mut m, TX, 4, BUF, 100, DESC_F_INDIRECT, 0);
    offer(&mut m, TX, 4);
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Dropped);
    // A loop: 5 -> 6 -> 5 ... is cut at MAX_CHAIN.
    set_desc(&mut m, TX, 5, BUF, 16, DESC_F_NEXT, 6);
    set_desc(&mut m, TX, 6, BUF, 16, DESC_F_NEXT, 5);
    offer(&mut m, TX, 5);
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Dropped);
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Idle);
    // Every one went back to the driver, and the device still runs.
    assert_eq!(u16_at(&m, used(TX) + 2), 6);
    assert!(d.running(TX));
}

#[test]
fn a_broken_ring_needs_reset() {
    let (mut d, mut m) = setup();
    let mut buf = [0u8; HDR_LEN + MAX_FRAME];
    // A head beyond the queue.
    offer(&mut m, TX, 9);
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Dropped);
    assert!(!d.running(TX));
    assert_eq!(d.read(0x070, 4) as u32 & STATUS_NEEDS_RESET, STATUS_NEEDS_RESET);
    assert_eq!(d.read(0x060, 4) as u32 & INT_CONFIG, INT_CONFIG);
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Idle);
    assert_eq!(d.receive(&mut m, &frame(60)), Rx::Down);
    // More available than the queue holds.
    let (mut d, mut m) = setup();
    put(&mut m, avail(RX) + 2, &9u16.to_le_bytes());
    assert_eq!(d.receive(&mut m, &frame(60)), Rx::Delivered(true));
    assert!(!d.running(RX));
    // A used ring outside guest RAM.
    let (mut d, mut m) = setup();
    d.write(0x030, 0);
    d.write(0x044, 0);
    d.write(0x0a0, 0x10);
    d.write(0x044, 1);
    set_desc(&mut m, RX, 0, BUF, 2000, DESC_F_WRITE, 0);
    offer(&mut m, RX, 0);
    assert_eq!(d.receive(&mut m, &frame(60)), Rx::Delivered(true));
    assert!(!d.running(RX));
    // Reset brings it back, MAC kept.
    d.write(0x070, 0);
    assert_eq!(d.mac(), MAC);
    assert_eq!(d.read(0x070, 4), 0);
}

#[test]
fn a_ring_address_that_overflows_is_broken_not_wrapped() {
    let (mut d, mut m) = setup();
    d.write(0x030, TX as u32);
    d.write(0x044, 0);
    d.write(0x090, u32::MAX);
    d.write(0x094, u32::MAX);
    d.write(0x044, 1);
    let mut buf = [0u8; HDR_LEN + MAX_FRAME];
    assert_eq!(d.pop_tx(&mut m, &mut buf), Tx::Dropped);
    assert!(!d.running(TX));
    assert!(d.tx_done(&mut m));
}
