//! virtio-mmio version 2 ("modern") transport with a virtio-blk device, as
//! the guest sees it (Virtio 1.2: §4.2.2 MMIO registers, §2.7 split
//! virtqueues, §5.2 block device).  Plain state and logic, host-tested: the
//! guest's memory and the disk behind it are traits, so `crate::guest` plugs
//! in guest RAM and the real (QEMU) virtio-blk device ns-hyp drives.
//!
//! Bad input from the guest (descriptors outside its RAM, loops, chains
//! longer than the queue, short headers, unknown request types) completes the
//! request with an error status, or is ignored when not even that can be
//! written — never a panic.
//!
//! `crate::guest::virtio` routes the guest slot (VIRTIO_IPA) here when QEMU has a virtio-blk device.

/// Guest memory by IPA.  `false`: (part of) the range is not guest RAM.
pub trait GuestMemory {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> bool;
    fn write(&mut self, ipa: u64, buf: &[u8]) -> bool;
    /// The range as one slice the disk can transfer into/from directly
    /// (None: not possible, go through a bounce buffer).
    fn slice_mut(&mut self, _ipa: u64, _len: usize) -> Option<&mut [u8]> {
        None
    }
}

/// The disk behind the device, in 512-byte sectors.
pub trait Disk {
    fn sectors(&self) -> u64;
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> bool;
    fn write(&mut self, sector: u64, buf: &[u8]) -> bool;
    fn flush(&mut self) -> bool;
}

use super::virtio_mmio::{Transport, Write, F_VERSION_1, INT_VRING};
pub const DEVICE_ID_BLOCK: u32 = 2;
pub const QUEUE_SIZE: u16 = 128;
pub const SECTOR: usize = 512;

/// Feature bits offered (§6 VIRTIO_F_VERSION_1; §5.2.3 VIRTIO_BLK_F_FLUSH).
const F_BLK_FLUSH: u64 = 1 << 9;
const FEATURES: u64 = F_VERSION_1 | F_BLK_FLUSH;
/// §6 VIRTIO_F_ACCESS_PLATFORM: the device sees memory through the
/// platform's translation, so the driver must use its DMA API.  Offered to a
/// Realm (`VirtioBlk::set_access_platform`): without it Linux hands the
/// device protected IPAs of its vrings and buffers, which the Host can never
/// read; with it Linux allocates them decrypted and bounces data through
/// swiotlb, at unprotected IPAs (`crate::realm::linux::RealmShared`).
const F_ACCESS_PLATFORM: u64 = 1 << 33;

/// Descriptor flags (§2.7.5).
const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
const DESC_F_INDIRECT: u16 = 4;

/// Request types and status values (§5.2.6).
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;

/// The device's state (one queue).
#[derive(Debug, Default)]
pub struct VirtioBlk {
    pub t: Transport<1>,
    /// Offer VIRTIO_F_ACCESS_PLATFORM (kept across a device reset).
    access_platform: bool,
}

/// What a register write asks of the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// QueueNotify: process the queue (then raise the interrupt if `interrupt_status` says so).
    Notify,
    /// InterruptACK or reset: the interrupt line is now `interrupt_status != 0`.
    Line,
}

pub(super) fn lo(v: &mut u64, w: u32) {
    *v = (*v & !0xffff_ffff) | w as u64;
}
pub(super) fn hi(v: &mut u64, w: u32) {
    *v = (*v & 0xffff_ffff) | (w as u64) << 32;
}

impl VirtioBlk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Offer VIRTIO_F_ACCESS_PLATFORM from now on (a Realm's device).
    pub fn set_access_platform(&mut self, on: bool) {
        self.access_platform = on;
    }

    fn features(&self) -> u64 {
        FEATURES | if self.access_platform { F_ACCESS_PLATFORM } else { 0 }
    }

    /// A 32-bit register read (the transport's registers are 32-bit; the
    /// config space also accepts narrower reads, passed with `size`).
    pub fn read(&self, off: u64, size: u8, sectors: u64) -> u64 {
        if off >= 0x100 {
            // virtio_blk_config (§5.2.4): capacity (le64) then fields we do not offer.
            let cfg = sectors.to_le_bytes();
            let o = (off - 0x100) as usize;
            let mut v = 0u64;
            for b in 0..size as usize {
                v |= (*cfg.get(o + b).unwrap_or(&0) as u64) << (8 * b);
            }
            return v;
        }
        self.t.read(off, DEVICE_ID_BLOCK, self.features(), QUEUE_SIZE) as u64
    }

    pub fn write(&mut self, off: u64, val: u32) -> Effect {
        match self.t.write(off, val, self.features(), QUEUE_SIZE) {
            Write::None => Effect::None,
            Write::Notify(_) => Effect::Notify,
            Write::Line => Effect::Line,
            Write::Reset => {
                *self = Self { access_platform: self.access_platform, ..Self::default() };
                Effect::Line
            }
        }
    }

    fn running(&self) -> bool {
        self.t.running(0)
    }

    /// Processes every request the driver made available.  Returns whether a
    /// used-buffer interrupt is now pending.
    pub fn process(&mut self, mem: &mut dyn GuestMemory, disk: &mut dyn Disk) -> bool {
        if !self.running() {
            return false;
        }
        let super::virtio_mmio::Queue { num: n, avail, used, .. } = self.t.queues[0];
        // Ring addresses are the driver's: an offset that overflows is a broken
        // queue, never a wrapped access (found by `nshyp_virtio`, issue J).
        let Some(avail_idx) = at(avail, 2).and_then(|a| read_u16(mem, a)) else { return self.broken() };
        let mut done = 0;
        while self.t.queues[0].last_avail != avail_idx {
            // A driver cannot have more than `n` requests outstanding.
            if done >= n {
                return self.broken();
            }
            let slot = (self.t.queues[0].last_avail % n) as u64;
            let Some(head) = at(avail, 4 + 2 * slot).and_then(|a| read_u16(mem, a)) else { return self.broken() };
            let Some(len) = self.request(mem, disk, head) else { return self.broken() };
            let Some(used_idx_at) = at(used, 2) else { return self.broken() };
            let Some(used_idx) = read_u16(mem, used_idx_at) else { return self.broken() };
            let Some(elem) = at(used, 4 + 8 * (used_idx % n) as u64) else { return self.broken() };
            let mut e = [0u8; 8];
            e[..4].copy_from_slice(&(head as u32).to_le_bytes());
            e[4..].copy_from_slice(&len.to_le_bytes());
            if !mem.write(elem, &e) || !mem.write(used_idx_at, &used_idx.wrapping_add(1).to_le_bytes()) {
                return self.broken();
            }
            let q = &mut self.t.queues[0];
            q.last_avail = q.last_avail.wrapping_add(1);
            done += 1;
        }
        if done > 0 {
            self.t.interrupt_status |= INT_VRING;
        }
        self.t.interrupt_status != 0
    }

    /// The driver broke the queue's rules: DEVICE_NEEDS_RESET (§2.1.1), no more processing.
    fn broken(&mut self) -> bool {
        self.t.broken();
        true
    }

    /// One request from descriptor `head`.  Returns the bytes written into
    /// the driver's buffers, or None if the chain itself is unusable.
    fn request(&self, mem: &mut dyn GuestMemory, disk: &mut dyn Disk, head: u16) -> Option<u32> {
        let super::virtio_mmio::Queue { num: n, desc, .. } = self.t.queues[0];
        let mut chain = [(0u64, 0u32, false); QUEUE_SIZE as usize];
        let mut len = 0;
        let mut i = head;
        loop {
            if i >= n || len >= n as usize {
                return None; // out of range, or a loop
            }
            let mut d = [0u8; 16];
            if !mem.read(at(desc, 16 * i as u64)?, &mut d) {
                return None;
            }
            let addr = u64::from_le_bytes(d[0..8].try_into().unwrap());
            let dlen = u32::from_le_bytes(d[8..12].try_into().unwrap());
            let flags = u16::from_le_bytes(d[12..14].try_into().unwrap());
            let next = u16::from_le_bytes(d[14..16].try_into().unwrap());
            if flags & DESC_F_INDIRECT != 0 {
                return None; // VIRTIO_F_INDIRECT_DESC is not offered
            }
            chain[len] = (addr, dlen, flags & DESC_F_WRITE != 0);
            len += 1;
            if flags & DESC_F_NEXT == 0 {
                break;
            }
            i = next;
        }
        let chain = &chain[..len];
        // Header (device-readable, 16 bytes), data, status (device-writable, last byte of the last descriptor).
        let (st_addr, st_len, st_w) = *chain.last()?;
        if !st_w || st_len == 0 {
            return None;
        }
        let status_at = at(st_addr, st_len as u64 - 1)?;
        let mut hdr = [0u8; 16];
        let (h_addr, h_len, h_w) = chain[0];
        // Linux gives the status byte a descriptor of its own; a header must be readable and whole.
        if len < 2 || h_w || h_len < 16 || st_len != 1 || !mem.read(h_addr, &mut hdr) {
            return Some(finish(mem, status_at, S_IOERR, 0));
        }
        let ty = u32::from_le_bytes(hdr[0..4].try_into().unwrap());
        let sector = u64::from_le_bytes(hdr[8..16].try_into().unwrap());
        let data = &chain[1..len - 1];
        let mut written = 0u32;
        let status = match ty {
            T_IN | T_OUT => {
                let to_guest = ty == T_IN; // IN: the device writes the driver's buffers
                let mut sec = sector;
                let mut st = S_OK;
                for &(a, l, w) in data {
                    let count = l as u64 / SECTOR as u64;
                    let fits = sec.checked_add(count).is_some_and(|e| e <= disk.sectors());
                    if w != to_guest || l as usize % SECTOR != 0 || !fits || !transfer(mem, disk, to_guest, a, l, sec) {
                        st = S_IOERR;
                        break;
                    }
                    if to_guest {
                        written += l;
                    }
                    sec += count;
                }
                st
            }
            T_FLUSH => {
                if disk.flush() { S_OK } else { S_IOERR }
            }
            T_GET_ID => {
                // 20 bytes, NUL-padded (§5.2.6.1).
                let id = b"quadrant-ns-hyp\0\0\0\0\0";
                match data.first() {
                    Some(&(a, l, true)) if l >= 20 && mem.write(a, id) => {
                        written = 20;
                        S_OK
                    }
                    _ => S_IOERR,
                }
            }
            _ => S_UNSUPP,
        };
        Some(finish(mem, status_at, status, written))
    }
}

/// Writes the status byte; the used length counts it.
fn finish(mem: &mut dyn GuestMemory, status_at: u64, status: u8, written: u32) -> u32 {
    if mem.write(status_at, &[status]) { written + 1 } else { written }
}

/// Moves `len` bytes between guest memory at `ipa` and the disk from
/// `sector`: in one disk request when the memory allows, else a sector at a time.
fn transfer(mem: &mut dyn GuestMemory, disk: &mut dyn Disk, to_guest: bool, ipa: u64, len: u32, sector: u64) -> bool {
    if let Some(s) = mem.slice_mut(ipa, len as usize) {
        return if to_guest { disk.read(sector, s) } else { disk.write(sector, s) };
    }
    let mut buf = [0u8; SECTOR];
    for k in 0..(len as usize / SECTOR) {
        let Some(a) = at(ipa, (k * SECTOR) as u64) else { return false };
        let ok = if to_guest {
            disk.read(sector + k as u64, &mut buf) && mem.write(a, &buf)
        } else {
            mem.read(a, &mut buf) && disk.write(sector + k as u64, &buf)
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `base + off` for a guest-given address, None if it overflows.
pub(super) fn at(base: u64, off: u64) -> Option<u64> {
    base.checked_add(off)
}

pub(super) fn read_u16(mem: &dyn GuestMemory, ipa: u64) -> Option<u16> {
    let mut b = [0u8; 2];
    mem.read(ipa, &mut b).then(|| u16::from_le_bytes(b))
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod fakes;
#[cfg(test)]
mod tests;
