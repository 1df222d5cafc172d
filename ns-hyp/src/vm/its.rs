//! The guest's GICv3 ITS (IHI0069H chapter 5, "Locality-specific Peripheral
//! Interrupts and the ITS"): its register frame, its command queue, and the
//! translation of an MSI (DeviceID, EventID) to an LPI and a target vCPU.
//! Plain state and logic, host-tested; `crate::guest` routes the guest's
//! accesses to the ITS frame here and sends its emulated PCI devices' MSIs.
//!
//! The mappings live here, not in the tables the guest gives GITS_BASER<n>
//! (an implementation may hold them in its own storage; IHI0069H 5.2).  The
//! model has `MAX_DEVICES` devices of up to `MAX_EVENTS` events and
//! `MAX_COLLECTIONS` collections (GITS_TYPER.HCC); a command naming more is
//! ignored, as a command error would be without GITS_TYPER.SEIS.  Commands
//! run when GITS_CWRITER is written, so GITS_CREADR has caught up by the
//! time the guest reads it.  Nothing the guest writes can make this panic.

use super::vgic::{Kick, Vgic, LPI_BASE};
use super::virtio_blk::GuestMemory;

pub const MAX_DEVICES: usize = 8;
pub const MAX_EVENTS: usize = 32;
pub const MAX_COLLECTIONS: usize = 8;

// GITS register offsets (IHI0069H 12.19).
const GITS_CTLR: u64 = 0x0000;
const GITS_IIDR: u64 = 0x0004;
const GITS_TYPER: u64 = 0x0008;
const GITS_CBASER: u64 = 0x0080;
const GITS_CWRITER: u64 = 0x0088;
const GITS_CREADR: u64 = 0x0090;
const GITS_BASER0: u64 = 0x0100;
const GITS_PIDR2: u64 = 0xffe8;
/// In the translation frame, the second 64 KiB page.
pub const GITS_TRANSLATER: u64 = 0x1_0040;
/// The ITS's two 64 KiB frames.
pub const FRAME_SIZE: u64 = 0x2_0000;

/// GITS_TYPER: Physical (LPIs), ITT_entry_size 8 bytes, ID_bits 16,
/// Devbits 16, PTA = 0 (targets are processor numbers, as GICR_TYPER
/// gives them), HCC = MAX_COLLECTIONS (no collection table needed).
const TYPER: u64 = 1 | (8 - 1) << 4 | (16 - 1) << 8 | (16 - 1) << 13 | (MAX_COLLECTIONS as u64) << 24;

/// GITS_BASER<n>.Type (bits [58:56]) and Entry_Size - 1 (bits [52:48]):
/// a Device table; the other seven registers are unimplemented (Type 0).
const BASER_DEVICE: u64 = 1 << 56 | (8 - 1) << 48;
/// The fields of GITS_BASER<n> the guest may write: Valid, InnerCache,
/// Type RO, OuterCache, Entry_Size RO, Physical_Address, Shareability,
/// Page_Size, Size (flat tables only: Indirect RAZ/WI).
const BASER_WRITABLE: u64 = 1 << 63 | 7 << 59 | 7 << 53 | 0xf_ffff_ffff_f000 | 3 << 10 | 3 << 8 | 0xff;
/// GITS_CBASER: Valid, InnerCache, OuterCache, Physical_Address [51:12],
/// Shareability, Size [7:0] (pages of 4 KiB, minus 1).
const CBASER_WRITABLE: u64 = 1 << 63 | 7 << 59 | 7 << 53 | 0xf_ffff_ffff_f000 | 3 << 10 | 0xff;

// Command numbers (IHI0069H 5.3, the ITS command descriptions).
const CMD_MOVI: u8 = 0x01;
const CMD_INT: u8 = 0x03;
const CMD_CLEAR: u8 = 0x04;
const CMD_SYNC: u8 = 0x05;
const CMD_MAPD: u8 = 0x08;
const CMD_MAPC: u8 = 0x09;
const CMD_MAPTI: u8 = 0x0a;
const CMD_MAPI: u8 = 0x0b;
const CMD_INV: u8 = 0x0c;
const CMD_INVALL: u8 = 0x0d;
const CMD_MOVALL: u8 = 0x0e;
const CMD_DISCARD: u8 = 0x0f;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Event {
    lpi: u32,
    icid: u16,
}

#[derive(Clone, Copy, Debug, Default)]
struct Device {
    id: Option<u32>,
    /// Number of EventID bits the guest gave MAPD (Size + 1).
    event_bits: u8,
    events: [Option<Event>; MAX_EVENTS],
}

pub struct Its {
    ctlr: u64,
    cbaser: u64,
    cwriter: u64,
    creadr: u64,
    baser: [u64; 8],
    devices: [Device; MAX_DEVICES],
    /// Collection → target vCPU (MAPC with PTA = 0: a processor number).
    collections: [Option<usize>; MAX_COLLECTIONS],
}

impl Default for Its {
    fn default() -> Self {
        Self::new()
    }
}

impl Its {
    pub fn new() -> Self {
        let mut baser = [0; 8];
        baser[0] = BASER_DEVICE;
        Its { ctlr: 0, cbaser: 0, cwriter: 0, creadr: 0, baser, devices: [Device::default(); MAX_DEVICES], collections: [None; MAX_COLLECTIONS] }
    }

    /// A guest read of the ITS frames at `off`.
    pub fn read(&self, off: u64, size: u8) -> u64 {
        let reg64 = |v: u64| match (size, off % 8) {
            (8, 0) => v,
            (4, 0) => v & 0xffff_ffff,
            (4, 4) => v >> 32,
            _ => 0,
        };
        match off & !7 {
            GITS_CTLR => match off {
                // Quiescent (bit 31): nothing in flight, ever.
                GITS_CTLR => self.ctlr | 1 << 31,
                GITS_IIDR => 0x0000_043b,
                _ => 0,
            },
            GITS_TYPER => reg64(TYPER),
            GITS_CBASER => reg64(self.cbaser),
            GITS_CWRITER => reg64(self.cwriter),
            GITS_CREADR => reg64(self.creadr),
            o if (GITS_BASER0..GITS_BASER0 + 64).contains(&o) => reg64(self.baser[((o - GITS_BASER0) / 8) as usize]),
            // ArchRev 3: Linux checks it before using the ITS.
            GITS_PIDR2 if off == GITS_PIDR2 => 0x3b,
            _ => 0,
        }
    }

    /// A guest write.  Writing GITS_CWRITER runs the queued commands, which
    /// may read the guest's memory and change the vGIC's LPI state.
    pub fn write(&mut self, off: u64, size: u8, val: u64, mem: &dyn GuestMemory, vgic: &mut Vgic) -> Kick {
        let merge = |old: u64| match (size, off % 8) {
            (8, 0) => val,
            (4, 0) => (old & !0xffff_ffff) | (val & 0xffff_ffff),
            (4, 4) => (old & 0xffff_ffff) | (val << 32),
            _ => old,
        };
        match off & !7 {
            GITS_CTLR if off == GITS_CTLR => {
                self.ctlr = val & 1;
                if self.ctlr != 0 {
                    return self.run_commands(mem, vgic);
                }
            }
            // IHI0069H: CBASER is written while the ITS is disabled, and
            // writing it resets CREADR.
            GITS_CBASER if self.ctlr == 0 => {
                self.cbaser = merge(self.cbaser) & CBASER_WRITABLE;
                self.creadr = 0;
            }
            GITS_CWRITER => {
                self.cwriter = merge(self.cwriter) & 0xf_ffe0;
                return self.run_commands(mem, vgic);
            }
            o if (GITS_BASER0..GITS_BASER0 + 64).contains(&o) => {
                let n = ((o - GITS_BASER0) / 8) as usize;
                if self.baser[n] != 0 {
                    // Type and Entry_Size are read-only.
                    let ro = self.baser[n] & (7 << 56 | 0x1f << 48);
                    self.baser[n] = (merge(self.baser[n]) & BASER_WRITABLE & !(7 << 56 | 0x1f << 48)) | ro;
                }
            }
            _ => {}
        }
        0
    }

    /// Bytes in the command queue (GITS_CBASER.Size + 1 pages).
    fn queue_size(&self) -> u64 {
        ((self.cbaser & 0xff) + 1) * 0x1000
    }

    fn run_commands(&mut self, mem: &dyn GuestMemory, vgic: &mut Vgic) -> Kick {
        let mut kick = 0;
        if self.ctlr & 1 == 0 || self.cbaser >> 63 == 0 {
            return 0;
        }
        let base = self.cbaser & 0xf_ffff_ffff_f000;
        let size = self.queue_size();
        // At most one lap of the queue per write: a CWRITER beyond the
        // queue stalls it (CREADR stays), as the command error would.
        for _ in 0..size / 32 {
            if self.creadr == self.cwriter || self.cwriter >= size {
                break;
            }
            let mut cmd = [0u8; 32];
            if !mem.read(base + self.creadr, &mut cmd) {
                break;
            }
            let dw = |i: usize| u64::from_le_bytes(cmd[i * 8..i * 8 + 8].try_into().unwrap());
            kick |= self.command([dw(0), dw(1), dw(2), dw(3)], mem, vgic);
            self.creadr = (self.creadr + 32) % size;
        }
        kick
    }

    fn device(&mut self, id: u32) -> Option<&mut Device> {
        self.devices.iter_mut().find(|d| d.id == Some(id))
    }

    /// The event `event` of device `id`, if mapped.
    fn event(&self, id: u32, event: u32) -> Option<Event> {
        let d = self.devices.iter().find(|d| d.id == Some(id))?;
        *d.events.get(event as usize)?
    }

    fn target(&self, icid: u16) -> Option<usize> {
        *self.collections.get(icid as usize)?
    }

    /// Reads LPI `lpi`'s configuration byte from the guest's table (the
    /// target redistributor's GICR_PROPBASER) into the vGIC.
    fn refresh(&self, lpi: u32, vcpu: usize, mem: &dyn GuestMemory, vgic: &mut Vgic) -> Kick {
        let Some(&prop) = vgic.propbaser.get(vcpu) else { return 0 };
        let table = prop & 0xf_ffff_ffff_f000;
        let id_bits = (prop & 0x1f) + 1;
        if lpi < LPI_BASE || u64::from(lpi) >= 1u64 << id_bits.min(16) {
            return 0;
        }
        let mut b = [0u8];
        if !mem.read(table + u64::from(lpi - LPI_BASE), &mut b) {
            return 0;
        }
        vgic.set_lpi_config(lpi, b[0])
    }

    /// One command (four doublewords, IHI0069H 5.3).
    fn command(&mut self, dw: [u64; 4], mem: &dyn GuestMemory, vgic: &mut Vgic) -> Kick {
        let devid = (dw[0] >> 32) as u32;
        let event = dw[1] as u32;
        let icid = dw[2] as u16;
        match dw[0] as u8 {
            CMD_MAPD => {
                let valid = dw[2] >> 63 != 0;
                let bits = (dw[1] & 0x1f) as u8 + 1;
                match (self.device(devid).is_some(), valid) {
                    (_, false) => {
                        if let Some(d) = self.device(devid) {
                            *d = Device::default();
                        }
                    }
                    (true, true) => {
                        let d = self.device(devid).unwrap();
                        *d = Device { id: Some(devid), event_bits: bits, events: [None; MAX_EVENTS] };
                    }
                    (false, true) => {
                        if let Some(d) = self.devices.iter_mut().find(|d| d.id.is_none()) {
                            *d = Device { id: Some(devid), event_bits: bits, events: [None; MAX_EVENTS] };
                        }
                    }
                }
                0
            }
            CMD_MAPC => {
                let valid = dw[2] >> 63 != 0;
                let target = ((dw[2] >> 16) & 0xffff) as usize;
                if let Some(c) = self.collections.get_mut(icid as usize) {
                    *c = (valid && target < vgic.nvcpus()).then_some(target);
                }
                0
            }
            CMD_MAPTI | CMD_MAPI => {
                let lpi = if dw[0] as u8 == CMD_MAPI { event } else { (dw[1] >> 32) as u32 };
                let Some(t) = self.target(icid) else { return 0 };
                let Some(d) = self.device(devid) else { return 0 };
                if u64::from(event) >= 1u64 << d.event_bits.min(32) || lpi < LPI_BASE {
                    return 0;
                }
                let Some(e) = d.events.get_mut(event as usize) else { return 0 };
                *e = Some(Event { lpi, icid });
                self.refresh(lpi, t, mem, vgic)
            }
            CMD_MOVI => {
                if self.target(icid).is_none() {
                    return 0;
                }
                if let Some(Some(e)) = self.device(devid).and_then(|d| d.events.get_mut(event as usize)) {
                    e.icid = icid;
                }
                0
            }
            CMD_DISCARD => {
                if let Some(Some(e)) = self.device(devid).and_then(|d| d.events.get_mut(event as usize)).map(|e| e.take()) {
                    vgic.clear_lpi(e.lpi);
                }
                0
            }
            CMD_CLEAR => {
                if let Some(e) = self.event(devid, event) {
                    vgic.clear_lpi(e.lpi);
                }
                0
            }
            CMD_INT => self.translate(devid, event, vgic),
            CMD_INV => match self.event(devid, event) {
                Some(e) => self.target(e.icid).map_or(0, |t| self.refresh(e.lpi, t, mem, vgic)),
                None => 0,
            },
            CMD_INVALL => {
                let Some(t) = self.target(icid) else { return 0 };
                let mut kick = 0;
                for d in self.devices.iter().filter(|d| d.id.is_some()) {
                    for e in d.events.iter().flatten().filter(|e| e.icid == icid) {
                        kick |= self.refresh(e.lpi, t, mem, vgic);
                    }
                }
                kick
            }
            // SYNC, MOVALL (one redistributor's LPIs all live in the model;
            // nothing to move or wait for), VSYNC and the rest: no effect.
            CMD_SYNC | CMD_MOVALL => 0,
            _ => 0,
        }
    }

    /// An MSI from device `devid` with EventID `event` (a write of `event`
    /// to GITS_TRANSLATER): the LPI goes pending on its collection's vCPU.
    /// Dropped if the ITS is disabled or the event is not mapped.
    pub fn translate(&self, devid: u32, event: u32, vgic: &mut Vgic) -> Kick {
        if self.ctlr & 1 == 0 {
            return 0;
        }
        match self.event(devid, event) {
            Some(e) => self.target(e.icid).map_or(0, |t| vgic.raise_lpi(t, e.lpi)),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests;
