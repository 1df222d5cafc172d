//! An emulated PCIe host bridge (ECAM, bus 0) with one virtio-blk function
//! on the virtio PCI transport (Virtio 1.2 §4.1, "modern" only, device ID
//! 0x1042) whose interrupts are MSI-X messages (PCI Local Bus 3.0 §6.8.2),
//! meant for the guest's ITS (`vm::its`).  The device itself is
//! [`VirtioBlk`]: this module translates the PCI transport's registers to it.
//! Plain state and logic, host-tested; `crate::guest` routes the ECAM window
//! and BAR 0 here and sends the MSIs it returns to the ITS.
//!
//! Layout of BAR 0 (64-bit memory, 16 KiB), named by the vendor
//! capabilities (§4.1.4): common configuration at 0x0000, ISR at 0x1000,
//! device configuration at 0x2000, notifications at 0x2800 (one address for
//! the one queue: notify_off_multiplier 0), the MSI-X table (2 entries:
//! configuration changes and queue 0) at 0x3000 and its PBA at 0x3800.
//! Bad input (odd sizes, offsets, BAR values, vector numbers) reads as zero,
//! is ignored, or is clamped — never a panic.

use super::virtio_blk::{Effect, VirtioBlk, QUEUE_SIZE};

/// The function's place: bus 0, device 1, function 0; its requester ID is
/// also its ITS DeviceID (the DTB's `msi-map` is the identity).
pub const DEVFN: u32 = 1 << 3;
pub const REQUESTER_ID: u32 = DEVFN;
/// ECAM: 1 MiB per bus (PCIe base spec, "Enhanced Configuration Access").
pub const ECAM_SIZE: u64 = 1 << 20;
pub const BAR0_SIZE: u64 = 0x4000;

/// `ipa` lies in a BAR 0 the guest put at `bar` (0: none).  The guest picks
/// `bar`, up to the top of the 64-bit space: `bar + BAR0_SIZE` may not exist,
/// so the offset is taken instead of the end.
pub fn bar0_contains(bar: u64, ipa: u64) -> bool {
    bar != 0 && ipa.checked_sub(bar).is_some_and(|o| o < BAR0_SIZE)
}

const VENDOR_VIRTIO: u16 = 0x1af4;
/// 0x1040 + virtio device ID 2 (block), §4.1.2.
const DEVICE_BLK: u16 = 0x1042;

// BAR 0 regions.
const COMMON: u64 = 0x0000;
const COMMON_LEN: u64 = 0x38;
const ISR: u64 = 0x1000;
const DEVICE_CFG: u64 = 0x2000;
const DEVICE_CFG_LEN: u64 = 0x40;
const NOTIFY: u64 = 0x2800;
const MSIX_TABLE: u64 = 0x3000;
const MSIX_PBA: u64 = 0x3800;
/// MSI-X vectors: 0 and 1 (the driver picks which serves what).
pub const MSIX_VECTORS: usize = 2;
/// VIRTIO_MSI_NO_VECTOR (§4.1.4.3).
const NO_VECTOR: u16 = 0xffff;

/// Config-space offsets of the capabilities.
const CAP_MSIX: usize = 0x40;
const CAP_COMMON: usize = 0x4c;
const CAP_NOTIFY: usize = 0x5c;
const CAP_ISR: usize = 0x70;
const CAP_DEVICE: usize = 0x80;

/// A message the function sends (address and data of an MSI-X table entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi {
    pub address: u64,
    pub data: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct MsixEntry {
    address: u64,
    data: u32,
    /// Vector Control bit 0.
    masked: bool,
    /// Pending Bit Array: a message held back by the mask.
    pending: bool,
}

pub struct VirtioPci {
    pub blk: VirtioBlk,
    command: u16,
    bar0: u64,
    /// MSI-X Message Control: Enable (bit 15), Function Mask (bit 14).
    msix_control: u16,
    msix: [MsixEntry; MSIX_VECTORS],
    // virtio_pci_common_cfg fields the PCI transport keeps itself.
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: [u32; 2],
    config_msix_vector: u16,
    queue_select: u16,
    queue_size: u16,
    queue_msix_vector: u16,
    queue_desc: u64,
    queue_driver: u64,
    queue_device: u64,
}

/// What an access asks of the caller.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub value: u64,
    /// The driver notified the queue: run the device, then [`VirtioPci::used`].
    pub notify: bool,
    /// A message to send now (a vector unmasked with its pending bit set).
    pub msi: Option<Msi>,
}

impl Default for VirtioPci {
    fn default() -> Self {
        Self::new()
    }
}

impl VirtioPci {
    pub fn new() -> Self {
        VirtioPci {
            blk: VirtioBlk::new(),
            command: 0,
            bar0: 0,
            msix_control: 0,
            msix: [MsixEntry { masked: true, ..Default::default() }; MSIX_VECTORS],
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: [0; 2],
            config_msix_vector: NO_VECTOR,
            queue_select: 0,
            queue_size: QUEUE_SIZE,
            queue_msix_vector: NO_VECTOR,
            queue_desc: 0,
            queue_driver: 0,
            queue_device: 0,
        }
    }

    // ---- Configuration space (ECAM) ----

    /// The function's 256-byte configuration header and capabilities.
    fn config_bytes(&self) -> [u8; 256] {
        let mut c = [0u8; 256];
        let mut put = |at: usize, v: &[u8]| c[at..at + v.len()].copy_from_slice(v);
        put(0x00, &VENDOR_VIRTIO.to_le_bytes());
        put(0x02, &DEVICE_BLK.to_le_bytes());
        put(0x04, &self.command.to_le_bytes());
        put(0x06, &(1u16 << 4).to_le_bytes()); // Status: Capabilities List
        put(0x08, &[1, 0x00, 0x80, 0x01]); // revision 1; class 01 (storage), 80 (other)
        // BAR 0: 64-bit memory (type 0b10 in bits [2:1]).
        put(0x10, &((self.bar0 as u32 & !(BAR0_SIZE as u32 - 1)) | 0x4).to_le_bytes());
        put(0x14, &((self.bar0 >> 32) as u32).to_le_bytes());
        put(0x2c, &VENDOR_VIRTIO.to_le_bytes());
        put(0x2e, &0x1100u16.to_le_bytes());
        put(0x34, &[CAP_MSIX as u8]);
        // MSI-X: Table Size - 1, Table and PBA in BAR 0.
        put(CAP_MSIX, &[0x11, CAP_COMMON as u8]);
        put(CAP_MSIX + 2, &(self.msix_control | (MSIX_VECTORS as u16 - 1)).to_le_bytes());
        put(CAP_MSIX + 4, &(MSIX_TABLE as u32).to_le_bytes());
        put(CAP_MSIX + 8, &(MSIX_PBA as u32).to_le_bytes());
        // virtio_pci_cap (§4.1.4): cap_vndr 9, next, len, cfg_type, bar, id, pad, offset, length.
        let mut vcap = |at: usize, next: usize, len: u8, ty: u8, off: u64, length: u64| {
            put(at, &[0x09, next as u8, len, ty, 0, 0, 0, 0]);
            put(at + 8, &(off as u32).to_le_bytes());
            put(at + 12, &(length as u32).to_le_bytes());
        };
        vcap(CAP_COMMON, CAP_NOTIFY, 16, 1, COMMON, COMMON_LEN);
        vcap(CAP_NOTIFY, CAP_ISR, 20, 2, NOTIFY, 4);
        vcap(CAP_ISR, CAP_DEVICE, 16, 3, ISR, 4);
        vcap(CAP_DEVICE, 0, 16, 4, DEVICE_CFG, DEVICE_CFG_LEN);
        // notify_off_multiplier (after the notify capability's virtio_pci_cap): 0.
        c
    }

    /// A read of the ECAM window at `off` (bus 0 only).
    pub fn config_read(&self, off: u64, size: u8) -> u64 {
        let (devfn, reg) = ((off >> 12) as u32, (off & 0xfff) as usize);
        if devfn != DEVFN {
            // No function: all ones (vendor ID 0xffff).
            return if size >= 8 { u64::MAX } else { (1u64 << (8 * size as u32)) - 1 };
        }
        let c = self.config_bytes();
        (0..size as usize).fold(0, |v, b| v | (*c.get(reg + b).unwrap_or(&0) as u64) << (8 * b))
    }

    pub fn config_write(&mut self, off: u64, size: u8, val: u64) {
        if (off >> 12) as u32 != DEVFN {
            return;
        }
        let reg = (off & 0xfff) as usize;
        match (reg, size) {
            // Command: Memory Space (1), Bus Master (2), INTx Disable (10).
            (0x04, 2 | 4) => self.command = val as u16 & (1 << 1 | 1 << 2 | 1 << 10),
            // BAR 0 low/high: the size is learned by writing all ones.
            (0x10, 4) => self.bar0 = (self.bar0 & !0xffff_ffff) | (val & 0xffff_ffff & !(BAR0_SIZE - 1)),
            (0x14, 4) => self.bar0 = (self.bar0 & 0xffff_ffff) | (val & 0xffff_ffff) << 32,
            // MSI-X Message Control: Enable, Function Mask.
            (r, 2) if r == CAP_MSIX + 2 => self.msix_control = val as u16 & 0xc000,
            (r, 4) if r == CAP_MSIX => self.msix_control = (val >> 16) as u16 & 0xc000,
            _ => {}
        }
    }

    /// Where BAR 0 is, while memory decoding is on.
    pub fn bar0(&self) -> Option<u64> {
        (self.command & 2 != 0 && self.bar0 != 0).then_some(self.bar0)
    }

    // ---- BAR 0 ----

    /// A guest access to BAR 0 at offset `off`.  `sectors`: the disk's size.
    pub fn bar_access(&mut self, off: u64, size: u8, write: bool, val: u64, sectors: u64) -> Outcome {
        let value = |v: u64| Outcome { value: v, ..Default::default() };
        match off {
            COMMON..=0x37 => value(if write { self.common_write(off, size, val as u32); 0 } else { self.common_read(off, size) }),
            o if (ISR..ISR + 4).contains(&o) => {
                if write {
                    return value(0);
                }
                // Reading the ISR clears it (§4.1.4.5).
                let isr = self.blk.read(0x60, 4, sectors);
                self.blk.write(0x64, isr as u32);
                value(if o == ISR { isr & 0xff } else { 0 })
            }
            o if (DEVICE_CFG..DEVICE_CFG + DEVICE_CFG_LEN).contains(&o) => {
                value(if write { 0 } else { self.blk.read(0x100 + (o - DEVICE_CFG), size.min(8), sectors) })
            }
            o if (NOTIFY..NOTIFY + 4).contains(&o) => {
                if write && o == NOTIFY && self.blk.write(0x50, val as u16 as u32) == Effect::Notify {
                    return Outcome { notify: true, ..Default::default() };
                }
                value(0)
            }
            o if (MSIX_TABLE..MSIX_TABLE + 16 * MSIX_VECTORS as u64).contains(&o) => self.msix_table(o - MSIX_TABLE, size, write, val),
            o if (MSIX_PBA..MSIX_PBA + 8).contains(&o) && !write => {
                let pba = self.msix.iter().enumerate().fold(0u64, |v, (n, e)| v | (e.pending as u64) << n);
                value(if o == MSIX_PBA { pba } else { 0 })
            }
            _ => value(0),
        }
    }

    fn msix_table(&mut self, off: u64, size: u8, write: bool, val: u64) -> Outcome {
        let (n, field) = ((off / 16) as usize, off % 16);
        let e = &mut self.msix[n];
        if !write {
            let v = match (field, size) {
                (0, 8) => e.address,
                (0, 4) => e.address & 0xffff_ffff,
                (4, 4) => e.address >> 32,
                (8, 4) => e.data as u64,
                (12, 4) => e.masked as u64,
                _ => 0,
            };
            return Outcome { value: v, ..Default::default() };
        }
        match (field, size) {
            (0, 8) => e.address = val,
            (0, 4) => e.address = (e.address & !0xffff_ffff) | (val & 0xffff_ffff),
            (4, 4) => e.address = (e.address & 0xffff_ffff) | (val & 0xffff_ffff) << 32,
            (8, 4) => e.data = val as u32,
            (12, 4) => {
                e.masked = val & 1 != 0;
                // Unmasked with a message pending: it goes now.
                if !e.masked && e.pending {
                    return Outcome { msi: self.send(n), ..Default::default() };
                }
            }
            _ => {}
        }
        Outcome::default()
    }

    /// Vector `n` fires: its message, or pending if masked (MSI-X disabled
    /// or no such vector: nothing).
    fn send(&mut self, n: usize) -> Option<Msi> {
        if self.msix_control & 0x8000 == 0 {
            return None;
        }
        let function_masked = self.msix_control & 0x4000 != 0;
        let e = self.msix.get_mut(n)?;
        if e.masked || function_masked {
            e.pending = true;
            return None;
        }
        e.pending = false;
        Some(Msi { address: e.address, data: e.data })
    }

    /// The device put buffers in the used ring: the queue's vector fires.
    pub fn used(&mut self) -> Option<Msi> {
        self.send(self.queue_msix_vector as usize)
    }

    fn common_read(&self, off: u64, size: u8) -> u64 {
        let q0 = self.queue_select == 0;
        let half = |v: u64| match off % 8 {
            0 => v & 0xffff_ffff,
            _ => v >> 32,
        };
        let v = match (off, size) {
            (0x00, 4) => self.device_feature_select as u64,
            (0x04, 4) => self.blk.read(0x10, 4, 0),
            (0x08, 4) => self.driver_feature_select as u64,
            (0x0c, 4) => *self.driver_features.get(self.driver_feature_select as usize).unwrap_or(&0) as u64,
            (0x10, 2) => self.config_msix_vector as u64,
            (0x12, 2) => 1, // num_queues
            (0x14, 1) => self.blk.read(0x70, 4, 0) & 0xff,
            (0x15, 1) => 0, // config_generation
            (0x16, 2) => self.queue_select as u64,
            (0x18, 2) => if q0 { self.queue_size as u64 } else { 0 },
            (0x1a, 2) => if q0 { self.queue_msix_vector as u64 } else { NO_VECTOR as u64 },
            (0x1c, 2) => if q0 { self.blk.read(0x44, 4, 0) } else { 0 },
            (0x1e, 2) => 0, // queue_notify_off
            (0x20 | 0x24, 4) if q0 => half(self.queue_desc),
            (0x28 | 0x2c, 4) if q0 => half(self.queue_driver),
            (0x30 | 0x34, 4) if q0 => half(self.queue_device),
            (0x20 | 0x28 | 0x30, 8) if q0 => [self.queue_desc, self.queue_driver, self.queue_device][((off - 0x20) / 8) as usize],
            _ => 0,
        };
        v
    }

    fn common_write(&mut self, off: u64, size: u8, val: u32) {
        let q0 = self.queue_select == 0;
        let set_half = |v: &mut u64| match off % 8 {
            0 => *v = (*v & !0xffff_ffff) | val as u64,
            _ => *v = (*v & 0xffff_ffff) | (val as u64) << 32,
        };
        match (off, size) {
            (0x00, 4) => {
                self.device_feature_select = val;
                self.blk.write(0x14, val);
            }
            (0x08, 4) => {
                self.driver_feature_select = val;
                self.blk.write(0x24, val);
            }
            (0x0c, 4) => {
                if let Some(f) = self.driver_features.get_mut(self.driver_feature_select as usize) {
                    *f = val;
                }
                self.blk.write(0x20, val);
            }
            (0x10, 2) => self.config_msix_vector = vector(val),
            (0x14, 1) => {
                self.blk.write(0x70, val & 0xff);
                if val & 0xff == 0 {
                    // Device reset (§4.1.4.3.2): the transport's fields too.
                    let blk = core::mem::take(&mut self.blk);
                    let (command, bar0, msix_control, msix) = (self.command, self.bar0, self.msix_control, self.msix);
                    *self = VirtioPci { blk, command, bar0, msix_control, msix, ..VirtioPci::new() };
                }
            }
            (0x16, 2) => {
                self.queue_select = val as u16;
                self.blk.write(0x30, val & 0xffff);
            }
            (0x18, 2) if q0 => self.queue_size = (val as u16).min(QUEUE_SIZE),
            (0x1a, 2) if q0 => self.queue_msix_vector = vector(val),
            (0x1c, 2) if q0 && val & 1 != 0 => {
                // The mmio model takes the ring addresses and size before Ready.
                let regs = [(0x38, self.queue_size as u64), (0x80, self.queue_desc), (0x90, self.queue_driver), (0xa0, self.queue_device)];
                for (r, v) in regs {
                    self.blk.write(r, v as u32);
                    if r != 0x38 {
                        self.blk.write(r + 4, (v >> 32) as u32);
                    }
                }
                self.blk.write(0x44, 1);
            }
            (0x20 | 0x24, 4) if q0 => set_half(&mut self.queue_desc),
            (0x28 | 0x2c, 4) if q0 => set_half(&mut self.queue_driver),
            (0x30 | 0x34, 4) if q0 => set_half(&mut self.queue_device),
            _ => {}
        }
    }
}

/// A vector number the driver assigns: one of ours, or NO_VECTOR (§4.1.5.1.2:
/// a vector the device cannot use reads back as NO_VECTOR).
fn vector(val: u32) -> u16 {
    if (val as usize) < MSIX_VECTORS { val as u16 } else { NO_VECTOR }
}

#[cfg(test)]
mod tests;
