//! The guest's GICD and GICR registers as register-region tables (the shape
//! of KVM's `vgic/vgic-mmio-v3.c`): each row is one register (or register
//! array) by its IHI0069H name, its offset and length, how many bits each
//! interrupt takes, the access widths the architecture gives it, and its
//! read and write handlers.  The bit-per-interrupt and byte-per-interrupt
//! handlers are shared by the distributor's and the redistributor's rows.
//!
//! An offset no row covers reads as zero and ignores writes (as does a
//! register row accessed at an offset that is not a multiple of 4 within
//! it).  The `widths` column is the architecture's; other widths are
//! handled the same way, not refused (Linux uses only the permitted ones).

use super::{Irq, Kick, Vgic, NR_IRQS};

/// Access widths, as a mask of byte sizes (1, 2, 4, 8).
pub const W8: u8 = 1;
pub const W32: u8 = 4;
pub const W64: u8 = 8;

/// One access, as a handler sees it.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    /// The vCPU whose view it is (its redistributor; 0 for the distributor).
    pub vcpu: usize,
    /// Offset from the start of the row.
    pub rel: u64,
    pub size: u8,
    /// First INTID the access covers (rows with `bits_per_irq` > 0).
    pub intid: u32,
}

pub type ReadFn = fn(&Vgic, &Access) -> u64;
pub type WriteFn = fn(&mut Vgic, &Access, u64) -> Kick;

/// One register or register array.
#[derive(Clone, Copy)]
pub struct Region {
    /// The register's name (IHI0069H): what to grep for; read by the tests.
    #[cfg_attr(target_os = "none", allow(dead_code))]
    pub name: &'static str,
    /// Offset in the frame (GICD, or one vCPU's RD_base + SGI_base pair).
    pub offset: u64,
    pub len: u64,
    /// 0: a register, not a per-interrupt array.
    pub bits_per_irq: u8,
    /// INTID of the row's first bit.
    pub first_intid: u32,
    /// The access widths the architecture permits (documentation, checked by the tests).
    #[cfg_attr(target_os = "none", allow(dead_code))]
    pub widths: u8,
    pub read: ReadFn,
    pub write: WriteFn,
}

impl Region {
    fn contains(&self, off: u64) -> bool {
        (self.offset..self.offset + self.len).contains(&off)
    }
}

const fn reg(name: &'static str, offset: u64, len: u64, widths: u8, read: ReadFn, write: WriteFn) -> Region {
    Region { name, offset, len, bits_per_irq: 0, first_intid: 0, widths, read, write }
}

#[allow(clippy::too_many_arguments)] // one argument per column of the table
const fn per_irq(name: &'static str, offset: u64, len: u64, bits_per_irq: u8, first_intid: u32, widths: u8, read: ReadFn, write: WriteFn) -> Region {
    Region { name, offset, len, bits_per_irq, first_intid, widths, read, write }
}

// ---- Generic handlers ----

fn raz(_: &Vgic, _: &Access) -> u64 {
    0
}

fn wi(_: &mut Vgic, _: &Access, _: u64) -> Kick {
    0
}

/// Bit-per-interrupt read: bit b is INTID `a.intid + b`.
fn bits_read(g: &Vgic, a: &Access, f: impl Fn(&Irq) -> bool) -> u64 {
    let mut v = 0u64;
    for b in 0..32 {
        if g.irq(a.vcpu, a.intid + b).is_some_and(&f) {
            v |= 1 << b;
        }
    }
    v
}

/// Bit-per-interrupt write; an interrupt that became deliverable kicks its vCPU.
fn bits_write(g: &mut Vgic, a: &Access, val: u64, f: impl Fn(&mut Irq, bool)) -> Kick {
    let mut kick = 0;
    for b in 0..32 {
        let intid = a.intid + b;
        if let Some(i) = g.irq_mut(a.vcpu, intid) {
            f(i, val & (1 << b) != 0);
            let t = if intid >= 32 { g.spi_target(intid) } else { a.vcpu };
            kick |= g.kick_if_deliverable(t, intid);
        }
    }
    kick
}

fn read_igroupr(g: &Vgic, a: &Access) -> u64 {
    bits_read(g, a, |i| i.group1)
}
fn write_igroupr(g: &mut Vgic, a: &Access, v: u64) -> Kick {
    bits_write(g, a, v, |i, b| i.group1 = b)
}
fn read_enabler(g: &Vgic, a: &Access) -> u64 {
    bits_read(g, a, |i| i.enabled)
}
fn write_isenabler(g: &mut Vgic, a: &Access, v: u64) -> Kick {
    bits_write(g, a, v, |i, b| i.enabled |= b)
}
fn write_icenabler(g: &mut Vgic, a: &Access, v: u64) -> Kick {
    bits_write(g, a, v, |i, b| i.enabled &= !b)
}
/// ISPENDR/ICPENDR read: latched pending, or held in a list register.
fn read_pendr(g: &Vgic, a: &Access) -> u64 {
    let mut v = 0u64;
    for b in 0..32 {
        let intid = a.intid + b;
        if g.irq(a.vcpu, intid).is_some_and(|i| i.in_lr) || g.pending(a.vcpu, intid) {
            v |= 1 << b;
        }
    }
    v
}
/// ISPENDR/ICPENDR write: each 1 bit latches (`to`) or clears the pending
/// state; an interrupt that became deliverable kicks its vCPU.
fn pendr_write(g: &mut Vgic, a: &Access, val: u64, to: bool) -> Kick {
    let mut kick = 0;
    for b in 0..32 {
        let intid = a.intid + b;
        if g.irq(a.vcpu, intid).is_none() {
            continue;
        }
        if val & (1 << b) != 0 {
            g.set_pending(a.vcpu, intid, to);
        }
        let t = if intid >= 32 { g.spi_target(intid) } else { a.vcpu };
        kick |= g.kick_if_deliverable(t, intid);
    }
    kick
}
fn write_ispendr(g: &mut Vgic, a: &Access, v: u64) -> Kick {
    pendr_write(g, a, v, true)
}
fn write_icpendr(g: &mut Vgic, a: &Access, v: u64) -> Kick {
    pendr_write(g, a, v, false)
}

/// Byte-per-interrupt (IPRIORITYR): byte b is INTID `a.intid + b`.
fn read_ipriorityr(g: &Vgic, a: &Access) -> u64 {
    let mut v = 0;
    for b in 0..a.size as u32 {
        v |= (g.irq(a.vcpu, a.intid + b).map_or(0, |i| i.priority) as u64) << (8 * b);
    }
    v
}
fn write_ipriorityr(g: &mut Vgic, a: &Access, val: u64) -> Kick {
    for b in 0..a.size as u32 {
        if let Some(i) = g.irq_mut(a.vcpu, a.intid + b) {
            i.priority = (val >> (8 * b)) as u8;
        }
    }
    0
}

/// Two bits per interrupt (ICFGR): Int_config bit 1 set = edge-triggered.
fn read_icfgr(g: &Vgic, a: &Access) -> u64 {
    let mut v = 0;
    for b in 0..16 {
        if g.irq(a.vcpu, a.intid + b).is_some_and(|i| i.edge) {
            v |= 2 << (2 * b);
        }
    }
    v
}
fn write_icfgr(g: &mut Vgic, a: &Access, val: u64) -> Kick {
    for b in 0..16 {
        if a.intid + b < 16 {
            continue; // SGIs are always edge-triggered (read-only)
        }
        if let Some(i) = g.irq_mut(a.vcpu, a.intid + b) {
            i.edge = val & (2 << (2 * b)) != 0;
        }
    }
    0
}

// ---- Distributor registers ----

fn read_gicd_ctlr(g: &Vgic, _: &Access) -> u64 {
    (g.ctlr as u64) | 1 << 4 | 1 << 6 // ARE, DS
}
fn write_gicd_ctlr(g: &mut Vgic, _: &Access, val: u64) -> Kick {
    g.ctlr = val as u32 & 3;
    (0..g.nvcpus).filter(|&c| g.has_deliverable(c)).fold(0, |k, c| k | 1 << c)
}
/// ITLinesNumber, CPUNumber, IDbits = 9 (10-bit INTIDs), no LPIs/MBIS/security.
fn read_gicd_typer(g: &Vgic, _: &Access) -> u64 {
    // IDbits: 10 bits of INTID (9 + 1) without LPIs; with them LPIS (bit
    // 17) and 16 bits (IHI0069H GICD_TYPER: at least 14 with LPIs).
    let lpis = if g.lpis_offered { 1 << 17 | 15 << 19 } else { 9 << 19 };
    (NR_IRQS as u64 / 32 - 1) | ((g.nvcpus as u64 - 1) << 5) | lpis
}
/// Arm implementer code, product 0.
fn read_iidr(_: &Vgic, _: &Access) -> u64 {
    0x0000_043b
}
/// ArchRev 3 (GICv3).
fn read_pidr2(_: &Vgic, _: &Access) -> u64 {
    0x3b
}
/// One 64-bit GICD_IROUTER<n> per SPI, also accessible as two 32-bit halves.
fn read_irouter(g: &Vgic, a: &Access) -> u64 {
    let r = g.spi.get(a.intid as usize - 32).map_or(0, |i| i.route);
    if a.rel % 8 == 4 { r >> 32 } else if a.size == 8 { r } else { r & 0xffff_ffff }
}
fn write_irouter(g: &mut Vgic, a: &Access, val: u64) -> Kick {
    let Some(i) = g.spi.get_mut(a.intid as usize - 32) else { return 0 };
    i.route = match (a.size, a.rel % 8) {
        (8, 0) => val,
        (4, 0) => (i.route & !0xffff_ffff) | (val & 0xffff_ffff),
        (4, 4) => (i.route & 0xffff_ffff) | (val << 32),
        _ => i.route,
    };
    // Re-routing a pending SPI: its new target may need a kick.
    let t = g.spi_target(a.intid);
    g.kick_if_deliverable(t, a.intid)
}

/// The distributor (IHI0069H, the GICD_* registers), by offset.  With
/// affinity routing (GICD_CTLR.ARE = 1) the SGI and PPI parts of the
/// per-interrupt arrays (INTIDs 0..31) are RAZ/WI here: they live in each
/// redistributor.
pub const GICD_REGIONS: &[Region] = &[
    reg("GICD_CTLR", 0x0000, 4, W32, read_gicd_ctlr, write_gicd_ctlr),
    reg("GICD_TYPER", 0x0004, 4, W32, read_gicd_typer, wi),
    reg("GICD_IIDR", 0x0008, 4, W32, read_iidr, wi),
    reg("GICD_TYPER2", 0x000c, 4, W32, raz, wi),
    reg("GICD_STATUSR", 0x0010, 4, W32, raz, wi),
    per_irq("GICD_IGROUPR", 0x0080, 0x80, 1, 0, W32, read_igroupr, write_igroupr),
    per_irq("GICD_ISENABLER", 0x0100, 0x80, 1, 0, W32, read_enabler, write_isenabler),
    per_irq("GICD_ICENABLER", 0x0180, 0x80, 1, 0, W32, read_enabler, write_icenabler),
    per_irq("GICD_ISPENDR", 0x0200, 0x80, 1, 0, W32, read_pendr, write_ispendr),
    per_irq("GICD_ICPENDR", 0x0280, 0x80, 1, 0, W32, read_pendr, write_icpendr),
    // Active state lives in the list registers.
    per_irq("GICD_ISACTIVER", 0x0300, 0x80, 1, 0, W32, raz, wi),
    per_irq("GICD_ICACTIVER", 0x0380, 0x80, 1, 0, W32, raz, wi),
    per_irq("GICD_IPRIORITYR", 0x0400, 0x400, 8, 0, W8 | W32, read_ipriorityr, write_ipriorityr),
    per_irq("GICD_ICFGR", 0x0c00, 0x100, 2, 0, W32, read_icfgr, write_icfgr),
    // One Security state (GICD_CTLR.DS = 1).
    per_irq("GICD_IGRPMODR", 0x0d00, 0x80, 1, 0, W32, raz, wi),
    // GICD_IROUTER<n> exists for SPIs only (n = 32..1019).
    per_irq("GICD_IROUTER", 0x6100, 0x1ee0, 64, 32, W32 | W64, read_irouter, write_irouter),
    reg("GICD_PIDR2", 0xffe8, 4, W32, read_pidr2, wi),
];

// ---- Redistributor registers ----

/// GICR_CTLR: EnableLPIs (bit 0, where LPIs are offered), RWP = 0.
fn read_gicr_ctlr(g: &Vgic, a: &Access) -> u64 {
    g.enable_lpis[a.vcpu] as u64
}
/// EnableLPIs: once set it stays set (IHI0069H allows an implementation to
/// make it RES1 once written 1; Linux never clears it).
fn write_gicr_ctlr(g: &mut Vgic, a: &Access, val: u64) -> Kick {
    if g.lpis_offered && val & 1 != 0 {
        g.enable_lpis[a.vcpu] = true;
    }
    0
}
/// GICR_PROPBASER / GICR_PENDBASER: kept as written while LPIs are off
/// (IHI0069H: UNPREDICTABLE to change them with EnableLPIs set, ignored
/// here); the LPI configuration table is read through the ITS.
fn read_gicr_propbaser(g: &Vgic, a: &Access) -> u64 {
    half(g.propbaser[a.vcpu], a)
}
fn write_gicr_propbaser(g: &mut Vgic, a: &Access, val: u64) -> Kick {
    if g.lpis_offered && !g.enable_lpis[a.vcpu] {
        g.propbaser[a.vcpu] = merge(g.propbaser[a.vcpu], a, val);
    }
    0
}
fn read_gicr_pendbaser(g: &Vgic, a: &Access) -> u64 {
    half(g.pendbaser[a.vcpu], a)
}
fn write_gicr_pendbaser(g: &mut Vgic, a: &Access, val: u64) -> Kick {
    if g.lpis_offered && !g.enable_lpis[a.vcpu] {
        g.pendbaser[a.vcpu] = merge(g.pendbaser[a.vcpu], a, val);
    }
    0
}
/// A 64-bit register read whole, or as its low/high 32-bit half.
fn half(v: u64, a: &Access) -> u64 {
    match (a.size, a.rel) {
        (8, 0) => v,
        (_, 0) => v & 0xffff_ffff,
        _ => v >> 32,
    }
}
/// A 64-bit register written whole, or one 32-bit half.
fn merge(old: u64, a: &Access, val: u64) -> u64 {
    match (a.size, a.rel) {
        (8, 0) => val,
        (4, 0) => (old & !0xffff_ffff) | (val & 0xffff_ffff),
        (4, 4) => (old & 0xffff_ffff) | (val << 32),
        _ => old,
    }
}
/// GICR_TYPER: Processor_Number and Affinity_Value (Aff0) = the vCPU, Last.
fn read_gicr_typer(g: &Vgic, a: &Access) -> u64 {
    let v = a.vcpu;
    let last = if v + 1 == g.nvcpus { 1 << 4 } else { 0 };
    // PLPIS (bit 0) where LPIs are offered; DirectLPI (bit 3) = 0: LPIs
    // are invalidated through the ITS (INV/INVALL), not GICR_INVLPIR.
    let typer = (v as u64) << 32 | (v as u64) << 8 | last | g.lpis_offered as u64;
    if a.rel == 0 { if a.size == 8 { typer } else { typer & 0xffff_ffff } } else { typer >> 32 }
}
/// GICR_WAKER: ProcessorSleep (bit 1) and ChildrenAsleep (bit 2) follow each other at once.
fn read_gicr_waker(g: &Vgic, a: &Access) -> u64 {
    let s = g.sleep[a.vcpu] as u64;
    (s << 1) | (s << 2)
}
fn write_gicr_waker(g: &mut Vgic, a: &Access, val: u64) -> Kick {
    g.sleep[a.vcpu] = val & 2 != 0;
    0
}

/// Offset of SGI_base in a redistributor's frame pair.
pub const SGI_BASE: u64 = 0x1_0000;

/// One vCPU's redistributor (IHI0069H, the GICR_* registers): RD_base, then
/// SGI_base at 64 KiB with the SGI/PPI row (INTIDs 0..31) of each array.
pub const GICR_REGIONS: &[Region] = &[
    reg("GICR_CTLR", 0x0000, 4, W32, read_gicr_ctlr, write_gicr_ctlr),
    reg("GICR_IIDR", 0x0004, 4, W32, read_iidr, wi),
    reg("GICR_TYPER", 0x0008, 8, W32 | W64, read_gicr_typer, wi),
    reg("GICR_WAKER", 0x0014, 4, W32, read_gicr_waker, write_gicr_waker),
    reg("GICR_PROPBASER", 0x0070, 8, W64, read_gicr_propbaser, write_gicr_propbaser),
    reg("GICR_PENDBASER", 0x0078, 8, W64, read_gicr_pendbaser, write_gicr_pendbaser),
    reg("GICR_PIDR2", 0xffe8, 4, W32, read_pidr2, wi),
    per_irq("GICR_IGROUPR0", SGI_BASE + 0x0080, 4, 1, 0, W32, read_igroupr, write_igroupr),
    per_irq("GICR_ISENABLER0", SGI_BASE + 0x0100, 4, 1, 0, W32, read_enabler, write_isenabler),
    per_irq("GICR_ICENABLER0", SGI_BASE + 0x0180, 4, 1, 0, W32, read_enabler, write_icenabler),
    per_irq("GICR_ISPENDR0", SGI_BASE + 0x0200, 4, 1, 0, W32, read_pendr, write_ispendr),
    per_irq("GICR_ICPENDR0", SGI_BASE + 0x0280, 4, 1, 0, W32, read_pendr, write_icpendr),
    per_irq("GICR_ISACTIVER0", SGI_BASE + 0x0300, 4, 1, 0, W32, raz, wi),
    per_irq("GICR_ICACTIVER0", SGI_BASE + 0x0380, 4, 1, 0, W32, raz, wi),
    per_irq("GICR_IPRIORITYR", SGI_BASE + 0x0400, 0x20, 8, 0, W8 | W32, read_ipriorityr, write_ipriorityr),
    per_irq("GICR_ICFGR0", SGI_BASE + 0x0c00, 4, 2, 0, W32, read_icfgr, write_icfgr),
    per_irq("GICR_ICFGR1", SGI_BASE + 0x0c04, 4, 2, 16, W32, read_icfgr, write_icfgr),
    per_irq("GICR_IGRPMODR0", SGI_BASE + 0x0d00, 4, 1, 0, W32, raz, wi),
];

/// The row for `off` and the access its handler gets, or `None`: RAZ/WI.
/// `distributor`: the SGI/PPI part of a per-interrupt array is RAZ/WI.
fn route(table: &'static [Region], vcpu: usize, off: u64, size: u8, distributor: bool) -> Option<(&'static Region, Access)> {
    // Rows are sorted by offset (a test checks it): the last row starting at or before `off`.
    let k = table.partition_point(|r| r.offset <= off);
    let r = table.get(k.checked_sub(1)?)?;
    if !r.contains(off) {
        return None;
    }
    let rel = off - r.offset;
    if r.bits_per_irq == 0 {
        return rel.is_multiple_of(4).then_some((r, Access { vcpu, rel, size, intid: 0 }));
    }
    let intid = r.first_intid + (rel * 8 / r.bits_per_irq as u64) as u32;
    if distributor && intid < 32 {
        return None;
    }
    Some((r, Access { vcpu, rel, size, intid }))
}

impl Vgic {
    /// A guest read of the distributor at offset `off`.
    pub fn dist_read(&self, off: u64, size: u8) -> u64 {
        route(GICD_REGIONS, 0, off, size, true).map_or(0, |(r, a)| (r.read)(self, &a))
    }

    pub fn dist_write(&mut self, off: u64, size: u8, val: u64) -> Kick {
        route(GICD_REGIONS, 0, off, size, true).map_or(0, |(r, a)| (r.write)(self, &a, val))
    }

    /// A guest read of the redistributor region at offset `off` (all vCPUs' frames).
    pub fn redist_read(&self, off: u64, size: u8) -> u64 {
        let vcpu = (off / super::super::layout::GICR_STRIDE) as usize;
        if vcpu >= self.nvcpus {
            return 0;
        }
        let o = off % super::super::layout::GICR_STRIDE;
        route(GICR_REGIONS, vcpu, o, size, false).map_or(0, |(r, a)| (r.read)(self, &a))
    }

    pub fn redist_write(&mut self, off: u64, size: u8, val: u64) -> Kick {
        let vcpu = (off / super::super::layout::GICR_STRIDE) as usize;
        if vcpu >= self.nvcpus {
            return 0;
        }
        let o = off % super::super::layout::GICR_STRIDE;
        route(GICR_REGIONS, vcpu, o, size, false).map_or(0, |(r, a)| (r.write)(self, &a, val))
    }
}

#[cfg(test)]
mod tests;
