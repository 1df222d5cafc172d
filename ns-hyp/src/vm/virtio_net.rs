//! virtio-mmio version 2 transport with a virtio-net device, as the guest
//! sees it (Virtio 1.2: §4.2.2 MMIO registers, §2.7 split virtqueues, §5.1
//! network device).  Plain state and logic, host-tested, like
//! `vm::virtio_blk`: the guest's memory is a trait, and the frames go to and
//! come from `crate::guest::net`, which switches them (`vm::net_switch`).
//!
//! The device offers VERSION_1 and MAC only: no checksum or segmentation
//! offload, no mergeable receive buffers.  So every frame is at most an
//! Ethernet MTU's worth, behind the 12-byte `virtio_net_hdr` (§5.1.6) whose
//! fields are all zero but `num_buffers` = 1.
//!
//! Bad input from the guest (rings or descriptors outside its RAM, loops,
//! indirect descriptors, chains too long for one frame) drops the frame or,
//! when the ring itself cannot be used, sets DEVICE_NEEDS_RESET — never a panic.

use super::virtio_blk::{at, read_u16, GuestMemory};
use super::virtio_mmio::{Queue, Transport, Write, F_VERSION_1, INT_VRING};
#[cfg(test)]
use super::virtio_mmio::{INT_CONFIG, MAGIC, STATUS_NEEDS_RESET};

pub const DEVICE_ID_NET: u32 = 1;
/// Queue 0 receives, queue 1 transmits (§5.1.2).
pub const RX: usize = 0;
pub const TX: usize = 1;
pub const QUEUE_SIZE: u16 = 256;
/// `virtio_net_hdr` with `num_buffers`, the layout VERSION_1 always uses (§5.1.6).
pub const HDR_LEN: usize = 12;
/// The largest frame: a 1500-byte MTU, the Ethernet header and one VLAN tag.
pub const MAX_FRAME: usize = 1518;
/// The most descriptors one frame may take (Linux: MAX_SKB_FRAGS + 2 = 19).
const MAX_CHAIN: usize = 32;

const F_MAC: u64 = 1 << 5;
const FEATURES: u64 = F_VERSION_1 | F_MAC;

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;
/// §2.7.7: the driver asks for no used-buffer notification on this queue.
const AVAIL_F_NO_INTERRUPT: u16 = 1;

#[derive(Debug, Default)]
pub struct VirtioNet {
    t: Transport<2>,
    /// Kept across a device reset.
    mac: [u8; 6],
}

/// What a register write asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// QueueNotify of queue `RX` (buffers to fill) or `TX` (frames to send).
    Notify(usize),
    /// InterruptACK or reset: the interrupt line is now `interrupt_status != 0`.
    Line,
}

/// One transmit request.
#[derive(Debug, PartialEq, Eq)]
pub enum Tx {
    /// Nothing (more) to send.
    Idle,
    /// A frame of this many bytes is in the buffer, after the header.
    Frame(usize),
    /// A request that holds no usable frame: completed and dropped.
    Dropped,
}

/// One receive.
#[derive(Debug, PartialEq, Eq)]
pub enum Rx {
    /// In the guest's buffer; `true`: raise the interrupt.
    Delivered(bool),
    /// The guest has no receive buffer posted (or not one big enough): dropped, as a NIC drops.
    NoBuffer,
    /// The driver is not running.
    Down,
}

/// A descriptor chain: (address, length, device-writable).
type Chain = ([(u64, u32, bool); MAX_CHAIN], usize);

impl VirtioNet {
    pub fn new(mac: [u8; 6]) -> Self {
        Self { mac, ..Self::default() }
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn read(&self, off: u64, size: u8) -> u64 {
        if off >= 0x100 {
            // virtio_net_config (§5.1.4): mac, then status etc. which we do not offer.
            let o = (off - 0x100) as usize;
            let mut v = 0u64;
            for b in 0..size as usize {
                v |= (*self.mac.get(o + b).unwrap_or(&0) as u64) << (8 * b);
            }
            return v;
        }
        self.t.read(off, DEVICE_ID_NET, FEATURES, QUEUE_SIZE) as u64
    }

    pub fn write(&mut self, off: u64, val: u32) -> Effect {
        match self.t.write(off, val, FEATURES, QUEUE_SIZE) {
            Write::None => Effect::None,
            Write::Notify(q) => Effect::Notify(q),
            Write::Line => Effect::Line,
            Write::Reset => {
                *self = Self::new(self.mac);
                Effect::Line
            }
        }
    }

    /// The driver runs queue `q` (`Transport::running`).
    pub fn running(&self, q: usize) -> bool {
        self.t.running(q)
    }

    /// Takes the next frame the driver made available on the transmit queue
    /// and copies it to `buf[HDR_LEN..]`; its buffers are returned to the
    /// driver at once (a used element of length 0, §5.1.6.2).
    pub fn pop_tx(&mut self, mem: &mut dyn GuestMemory, buf: &mut [u8; HDR_LEN + MAX_FRAME]) -> Tx {
        if !self.running(TX) {
            return Tx::Idle;
        }
        let head = match self.pop(TX, mem) {
            Ok(Some(h)) => h,
            Ok(None) => return Tx::Idle,
            Err(()) => return self.broken(),
        };
        let mut len = 0usize;
        let mut ok = match self.chain(TX, mem, head) {
            Ok(Some((c, n))) => c[..n].iter().all(|&(a, l, w)| {
                // Only device-readable buffers, and all of it must fit one frame.
                let end = len + l as usize;
                let fits = !w && end <= buf.len() && mem.read(a, &mut buf[len..end]);
                len = end;
                fits
            }),
            Ok(None) => false,
            Err(()) => return self.broken(),
        };
        ok &= len > HDR_LEN;
        if !self.push_used(TX, mem, head, 0) {
            return self.broken();
        }
        if ok { Tx::Frame(len - HDR_LEN) } else { Tx::Dropped }
    }

    /// Puts `frame` into the next receive buffer the driver posted.
    pub fn receive(&mut self, mem: &mut dyn GuestMemory, frame: &[u8]) -> Rx {
        if !self.running(RX) {
            return Rx::Down;
        }
        let head = match self.pop(RX, mem) {
            Ok(Some(h)) => h,
            Ok(None) => return Rx::NoBuffer,
            Err(()) => {
                self.broken();
                return Rx::Delivered(true);
            }
        };
        let mut hdr = [0u8; HDR_LEN];
        hdr[10] = 1; // num_buffers (le16)
        let total = HDR_LEN + frame.len();
        let mut done = 0usize;
        let ok = match self.chain(RX, mem, head) {
            Ok(Some((c, n))) => {
                let room: u64 = c[..n].iter().map(|&(_, l, w)| if w { l as u64 } else { 0 }).sum();
                let all_writable = c[..n].iter().all(|&(_, _, w)| w);
                all_writable && room >= total as u64 && c[..n].iter().all(|&(a, l, _)| {
                    let mut ipa = a;
                    let mut left = (l as usize).min(total - done);
                    while left > 0 {
                        // The header first, then the frame.
                        let (src, k) = if done < HDR_LEN { (&hdr[done..], (HDR_LEN - done).min(left)) } else { (&frame[done - HDR_LEN..], left) };
                        if !mem.write(ipa, &src[..k]) {
                            return false;
                        }
                        ipa += k as u64;
                        done += k;
                        left -= k;
                    }
                    true
                })
            }
            Ok(None) => false,
            Err(()) => {
                self.broken();
                return Rx::Delivered(true);
            }
        };
        // A buffer that could not take the frame goes back empty: the driver counts a length error.
        let used = if ok { total as u32 } else { 0 };
        if !self.push_used(RX, mem, head, used) {
            self.broken();
            return Rx::Delivered(true);
        }
        if ok { Rx::Delivered(self.notify_used(RX, mem)) } else { Rx::NoBuffer }
    }

    /// After transmit requests completed: whether to raise the interrupt.
    pub fn tx_done(&mut self, mem: &mut dyn GuestMemory) -> bool {
        self.notify_used(TX, mem)
    }

    /// §2.7.7.1: a used-buffer notification unless the driver suppressed it.
    fn notify_used(&mut self, q: usize, mem: &mut dyn GuestMemory) -> bool {
        let flags = read_u16(mem, self.t.queues[q].avail).unwrap_or(0);
        if flags & AVAIL_F_NO_INTERRUPT == 0 {
            self.t.interrupt_status |= INT_VRING;
        }
        self.t.interrupt_status != 0
    }

    /// The next head the driver made available on queue `q`.
    fn pop(&mut self, q: usize, mem: &mut dyn GuestMemory) -> Result<Option<u16>, ()> {
        let Queue { num, avail, last_avail, .. } = self.t.queues[q];
        let idx = at(avail, 2).and_then(|a| read_u16(mem, a)).ok_or(())?;
        if idx == last_avail {
            return Ok(None);
        }
        // A driver cannot have more than `num` buffers outstanding.
        if idx.wrapping_sub(last_avail) > num {
            return Err(());
        }
        let head = at(avail, 4 + 2 * (last_avail % num) as u64).and_then(|a| read_u16(mem, a)).ok_or(())?;
        self.t.queues[q].last_avail = last_avail.wrapping_add(1);
        Ok(Some(head))
    }

    /// The chain from `head`.  Err: the descriptor table is unusable;
    /// Ok(None): this chain is (a loop, indirect, too long).
    fn chain(&self, q: usize, mem: &dyn GuestMemory, head: u16) -> Result<Option<Chain>, ()> {
        let Queue { num, desc, .. } = self.t.queues[q];
        let mut c = [(0u64, 0u32, false); MAX_CHAIN];
        let mut n = 0;
        let mut i = head;
        loop {
            if i >= num {
                return Err(());
            }
            if n == MAX_CHAIN {
                return Ok(None);
            }
            let mut d = [0u8; 16];
            if !mem.read(at(desc, 16 * i as u64).ok_or(())?, &mut d) {
                return Err(());
            }
            let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
            let len = u32::from_le_bytes(d[8..12].try_into().unwrap());
            let flags = u16::from_le_bytes(d[12..14].try_into().unwrap());
            let next = u16::from_le_bytes(d[14..16].try_into().unwrap());
            if flags & DESC_F_INDIRECT != 0 {
                return Ok(None); // VIRTIO_F_INDIRECT_DESC is not offered
            }
            c[n] = (addr, len, flags & DESC_F_WRITE != 0);
            n += 1;
            if flags & DESC_F_NEXT == 0 {
                return Ok(Some((c, n)));
            }
            i = next;
        }
    }

    fn push_used(&mut self, q: usize, mem: &mut dyn GuestMemory, head: u16, len: u32) -> bool {
        let Queue { num, used, .. } = self.t.queues[q];
        let Some(idx_at) = at(used, 2) else { return false };
        let Some(idx) = read_u16(mem, idx_at) else { return false };
        let Some(elem) = at(used, 4 + 8 * (idx % num) as u64) else { return false };
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&(head as u32).to_le_bytes());
        e[4..].copy_from_slice(&len.to_le_bytes());
        mem.write(elem, &e) && mem.write(idx_at, &idx.wrapping_add(1).to_le_bytes())
    }

    /// The driver broke the rules of a ring: DEVICE_NEEDS_RESET (§2.1.1).
    fn broken(&mut self) -> Tx {
        self.t.broken();
        Tx::Dropped
    }
}

#[cfg(test)]
mod tests;
