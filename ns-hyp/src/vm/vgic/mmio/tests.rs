//! The tables against the match-based decode they replaced (kept here as
//! the reference), and a walk over the tables.

use super::*;
use crate::vm::layout::GICR_STRIDE;

/// The distributor/redistributor decode before the register tables,
/// unchanged: the tables must behave exactly like it.
#[allow(clippy::collapsible_if, clippy::manual_is_multiple_of)] // kept verbatim
impl Vgic {
    /// Bit-per-interrupt register bank access (IGROUPR, ISENABLER, ...):
    /// returns the bits of INTIDs base..base+32 of `vcpu`'s view.
    fn old_bits_read(&self, vcpu: usize, base: u32, f: impl Fn(&Irq) -> bool) -> u64 {
        let mut v = 0u64;
        for b in 0..32 {
            if let Some(i) = self.irq(vcpu, base + b) {
                if f(i) {
                    v |= 1 << b;
                }
            }
        }
        v
    }

    fn old_bits_write(&mut self, vcpu: usize, base: u32, val: u64, f: impl Fn(&mut Irq, bool)) -> Kick {
        let mut kick = 0;
        for b in 0..32 {
            let intid = base + b;
            if let Some(i) = self.irq_mut(vcpu, intid) {
                f(i, val & (1 << b) != 0);
                let t = if intid >= 32 { self.spi_target(intid) } else { vcpu };
                kick |= self.kick_if_deliverable(t, intid);
            }
        }
        kick
    }

    /// `old_bits_read`/`old_bits_write` for ISPENDR/ICPENDR, the pending
    /// state having since moved out of `Irq` into the pending bitmaps.
    fn old_pend_read(&self, vcpu: usize, base: u32) -> u64 {
        let mut v = 0u64;
        for b in 0..32 {
            if let Some(i) = self.irq(vcpu, base + b) {
                if self.pending(vcpu, base + b) || i.in_lr {
                    v |= 1 << b;
                }
            }
        }
        v
    }

    fn old_pend_write(&mut self, vcpu: usize, base: u32, val: u64, to: bool) -> Kick {
        let mut kick = 0;
        for b in 0..32 {
            let intid = base + b;
            if self.irq(vcpu, intid).is_some() {
                if val & (1 << b) != 0 {
                    self.set_pending(vcpu, intid, to);
                }
                let t = if intid >= 32 { self.spi_target(intid) } else { vcpu };
                kick |= self.kick_if_deliverable(t, intid);
            }
        }
        kick
    }

    /// Shared register layout of GICD (for SPIs, `vcpu` unused) and GICR's SGI frame (private).
    fn old_bank_read(&self, vcpu: usize, off: u64, size: u8, first: u32) -> Option<u64> {
        let n = |o: u64| first + ((off - o) * 8) as u32;
        Some(match off {
            0x080..=0x0ff => self.old_bits_read(vcpu, n(0x080), |i| i.group1),
            0x100..=0x17f => self.old_bits_read(vcpu, n(0x100), |i| i.enabled),
            0x180..=0x1ff => self.old_bits_read(vcpu, n(0x180), |i| i.enabled),
            0x200..=0x27f => self.old_pend_read(vcpu, n(0x200)),
            0x280..=0x2ff => self.old_pend_read(vcpu, n(0x280)),
            0x300..=0x3ff => 0, // active state lives in the list registers
            0x400..=0x7ff => {
                let mut v = 0;
                for b in 0..size as u64 {
                    let intid = first + (off - 0x400 + b) as u32;
                    v |= (self.irq(vcpu, intid).map_or(0, |i| i.priority) as u64) << (8 * b);
                }
                v
            }
            0xc00..=0xcff => {
                let base = first + ((off - 0xc00) * 4) as u32;
                let mut v = 0;
                for b in 0..16 {
                    if self.irq(vcpu, base + b).is_some_and(|i| i.edge) {
                        v |= 2 << (2 * b);
                    }
                }
                v
            }
            0xd00..=0xd7f => 0, // IGRPMODR: one Security state
            _ => return None,
        })
    }

    fn old_bank_write(&mut self, vcpu: usize, off: u64, size: u8, val: u64, first: u32) -> Option<Kick> {
        let n = |o: u64| first + ((off - o) * 8) as u32;
        Some(match off {
            0x080..=0x0ff => self.old_bits_write(vcpu, n(0x080), val, |i, b| i.group1 = b),
            0x100..=0x17f => self.old_bits_write(vcpu, n(0x100), val, |i, b| i.enabled |= b),
            0x180..=0x1ff => self.old_bits_write(vcpu, n(0x180), val, |i, b| i.enabled &= !b),
            0x200..=0x27f => self.old_pend_write(vcpu, n(0x200), val, true),
            0x280..=0x2ff => self.old_pend_write(vcpu, n(0x280), val, false),
            0x300..=0x3ff => 0,
            0x400..=0x7ff => {
                for b in 0..size as u64 {
                    let intid = first + (off - 0x400 + b) as u32;
                    if let Some(i) = self.irq_mut(vcpu, intid) {
                        i.priority = (val >> (8 * b)) as u8;
                    }
                }
                0
            }
            0xc00..=0xcff => {
                let base = first + ((off - 0xc00) * 4) as u32;
                for b in 0..16 {
                    if base + b < 16 {
                        continue; // SGIs: RO edge
                    }
                    if let Some(i) = self.irq_mut(vcpu, base + b) {
                        i.edge = val & (2 << (2 * b)) != 0;
                    }
                }
                0
            }
            0xd00..=0xd7f => 0,
            _ => return None,
        })
    }

    /// A guest read of the distributor at offset `off`.
    fn old_dist_read(&self, off: u64, size: u8) -> u64 {
        match off {
            0x0000 => (self.ctlr as u64) | 1 << 4 | 1 << 6, // ARE, DS
            0x0004 => {
                // ITLinesNumber, CPUNumber, IDbits = 9 (10-bit INTIDs), no LPIs/MBIS/security.
                (NR_IRQS as u64 / 32 - 1) | ((self.nvcpus as u64 - 1) << 5) | (9 << 19)
            }
            0x0008 => 0x0000_043b, // IIDR: Arm implementer code, product 0
            0x000c | 0x0010 => 0,
            0x6100..=0x7fd8 => {
                let intid = ((off - 0x6000) / 8) as u32;
                let r = self.spi.get(intid as usize - 32).map_or(0, |i| i.route);
                if off % 8 == 4 { r >> 32 } else if size == 8 { r } else { r & 0xffff_ffff }
            }
            0xffe8 => 0x3b, // PIDR2: ArchRev 3 (GICv3)
            // SGI/PPI rows of the banked registers are RAZ/WI with affinity routing.
            0x080..=0x083 | 0x100..=0x103 | 0x180..=0x183 | 0x200..=0x203 | 0x280..=0x283 | 0x400..=0x41f | 0xc00..=0xc07 => 0,
            _ => self.old_bank_read(0, off, size, 0).unwrap_or(0),
        }
    }

    fn old_dist_write(&mut self, off: u64, size: u8, val: u64) -> Kick {
        match off {
            0x0000 => {
                self.ctlr = val as u32 & 3;
                (0..self.nvcpus).filter(|&c| self.has_deliverable(c)).fold(0, |k, c| k | 1 << c)
            }
            0x6100..=0x7fd8 => {
                let intid = ((off - 0x6000) / 8) as u32;
                let Some(i) = self.spi.get_mut(intid as usize - 32) else { return 0 };
                i.route = match (size, off % 8) {
                    (8, 0) => val,
                    (4, 0) => (i.route & !0xffff_ffff) | (val & 0xffff_ffff),
                    (4, 4) => (i.route & 0xffff_ffff) | (val << 32),
                    _ => i.route,
                };
                // Re-routing a pending SPI: its new target may need a kick.
                let t = self.spi_target(intid);
                self.kick_if_deliverable(t, intid)
            }
            0x080..=0x083 | 0x100..=0x103 | 0x180..=0x183 | 0x200..=0x203 | 0x280..=0x283 | 0x400..=0x41f | 0xc00..=0xc07 => 0,
            _ => self.old_bank_write(0, off, size, val, 0).unwrap_or(0),
        }
    }

    /// Only row 0 (INTIDs 0..31) of each bank exists in the SGI frame.
    fn old_beyond_row0(o: u64) -> bool {
        matches!(o, 0x084..=0x0ff | 0x104..=0x17f | 0x184..=0x1ff | 0x204..=0x27f | 0x284..=0x2ff | 0x420..=0x7ff | 0xc08..=0xcff)
    }

    /// A guest read of the redistributor region at offset `off` (all vCPUs' frames).
    fn old_redist_read(&self, off: u64, size: u8) -> u64 {
        let vcpu = (off / crate::vm::layout::GICR_STRIDE) as usize;
        if vcpu >= self.nvcpus {
            return 0;
        }
        let o = off % crate::vm::layout::GICR_STRIDE;
        match o {
            0x0000 => 0, // CTLR: no LPIs, RWP = 0
            0x0004 => 0x0000_043b,
            0x0008 | 0x000c => {
                let last = if vcpu + 1 == self.nvcpus { 1 << 4 } else { 0 };
                let typer = (vcpu as u64) << 32 | (vcpu as u64) << 8 | last;
                if o == 0x8 { if size == 8 { typer } else { typer & 0xffff_ffff } } else { typer >> 32 }
            }
            0x0014 => {
                let s = self.sleep[vcpu] as u64;
                (s << 1) | (s << 2) // ProcessorSleep, ChildrenAsleep
            }
            0xffe8 => 0x3b,
            0x1_0000.. => {
                let o = o - 0x1_0000;
                if Self::old_beyond_row0(o) {
                    return 0;
                }
                self.old_bank_read(vcpu, o, size, 0).unwrap_or(0)
            }
            _ => 0,
        }
    }

    fn old_redist_write(&mut self, off: u64, size: u8, val: u64) -> Kick {
        let vcpu = (off / crate::vm::layout::GICR_STRIDE) as usize;
        if vcpu >= self.nvcpus {
            return 0;
        }
        let o = off % crate::vm::layout::GICR_STRIDE;
        match o {
            0x0014 => {
                self.sleep[vcpu] = val & 2 != 0;
                0
            }
            0x1_0000.. => {
                let o = o - 0x1_0000;
                if Self::old_beyond_row0(o) {
                    return 0;
                }
                self.old_bank_write(vcpu, o, size, val, 0).unwrap_or(0)
            }
            _ => 0,
        }
    }
}

fn same_state(a: &Vgic, b: &Vgic) -> bool {
    a.ctlr == b.ctlr && a.spi == b.spi && a.private == b.private && a.sleep == b.sleep && a.pend_private == b.pend_private && a.pend_spi == b.pend_spi
}

/// Offsets worth trying in a frame of `len` bytes: every byte of the
/// register space that has rows, and a sparse walk over the rest.
fn offsets(dense: &[(u64, u64)], len: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..len).step_by(0x40).collect();
    for &(s, e) in dense {
        v.extend(s..e);
    }
    v
}

/// Every offset and access width: the tables read what the old decode read,
/// and a write changes the model (and kicks) exactly as it did.
#[test]
fn tables_behave_like_the_old_decode() {
    let (mut new, mut old) = (Vgic::new(4), Vgic::new(4));
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for off in offsets(&[(0, 0x1000), (0x6000, 0x8000), (0xffe0, 0x1_0000)], 0x1_0000) {
        for size in [1u8, 2, 4, 8] {
            assert_eq!(new.dist_read(off, size), old.old_dist_read(off, size), "GICD read {off:#x}/{size}");
            let val = next();
            assert_eq!(new.dist_write(off, size, val), old.old_dist_write(off, size, val), "GICD write {off:#x}/{size}");
            assert!(same_state(&new, &old), "GICD write {off:#x}/{size}");
        }
    }
    let mut dense = Vec::new();
    for v in 0..5 {
        let f = v * GICR_STRIDE;
        dense.extend([(f, f + 0x100), (f + SGI_BASE, f + SGI_BASE + 0x1000), (f + 0xffe0, f + 0x1_0000)]);
    }
    for off in offsets(&dense, 5 * GICR_STRIDE) {
        for size in [1u8, 2, 4, 8] {
            assert_eq!(new.redist_read(off, size), old.old_redist_read(off, size), "GICR read {off:#x}/{size}");
            let val = next();
            assert_eq!(new.redist_write(off, size, val), old.old_redist_write(off, size, val), "GICR write {off:#x}/{size}");
            assert!(same_state(&new, &old), "GICR write {off:#x}/{size}");
        }
    }
}

/// Rows are sorted, do not overlap, name their frame, and have widths;
/// per-interrupt rows hold a whole number of interrupts.
#[test]
fn table_walk() {
    for (table, prefix, frame) in [(GICD_REGIONS, "GICD_", 0x1_0000), (GICR_REGIONS, "GICR_", GICR_STRIDE)] {
        for w in table.windows(2) {
            assert!(w[0].offset + w[0].len <= w[1].offset, "{} overlaps {}", w[0].name, w[1].name);
        }
        for r in table {
            assert!(r.name.starts_with(prefix), "{}", r.name);
            assert!(r.offset + r.len <= frame, "{}", r.name);
            assert!(r.widths != 0 && r.widths & !(W8 | 2 | W32 | W64) == 0, "{}", r.name);
            if r.bits_per_irq > 0 {
                assert_eq!(r.len * 8 % r.bits_per_irq as u64, 0, "{}", r.name);
            } else {
                assert_eq!(r.len % 4, 0, "{}", r.name);
            }
        }
    }
}

/// Every row answers every access width (1, 2, 4, 8 bytes) at every offset
/// in it, permitted by its `widths` or not, without panicking.
#[test]
fn every_width_handled() {
    let mut g = Vgic::new(4);
    for r in GICD_REGIONS {
        for off in r.offset..r.offset + r.len {
            for size in [1u8, 2, 4, 8] {
                let v = g.dist_read(off, size);
                g.dist_write(off, size, v);
            }
        }
    }
    for r in GICR_REGIONS {
        for off in r.offset..r.offset + r.len {
            for size in [1u8, 2, 4, 8] {
                let v = g.redist_read(3 * GICR_STRIDE + off, size);
                g.redist_write(3 * GICR_STRIDE + off, size, v);
            }
        }
    }
}

/// An offset no row covers reads as zero and ignores writes.
#[test]
fn unknown_offsets_raz_wi() {
    let mut g = Vgic::new(2);
    g.dist_write(0, 4, 2);
    g.dist_write(0x104, 4, 0xffff);
    g.redist_write(0x14, 4, 0);
    let before = g.clone();
    for (table, frame) in [(GICD_REGIONS, 0x1_0000u64), (GICR_REGIONS, GICR_STRIDE)] {
        for off in (0..frame).filter(|&o| !table.iter().any(|r| r.contains(o))) {
            let (rd, wr): (u64, u64) = if frame == GICR_STRIDE {
                (g.redist_read(off, 4), g.redist_write(off, 4, !0) as u64)
            } else {
                (g.dist_read(off, 4), g.dist_write(off, 4, !0) as u64)
            };
            assert_eq!((rd, wr), (0, 0), "{off:#x}");
        }
    }
    assert!(same_state(&g, &before));
}

#[test]
fn lpis_only_where_offered() {
    let mut g = Vgic::new(2);
    assert_eq!(g.dist_read(0x4, 4) & (1 << 17), 0, "GICD_TYPER.LPIS");
    assert_eq!(g.redist_read(0x8, 8) & 1, 0, "GICR_TYPER.PLPIS");
    g.redist_write(0x70, 8, 0x1234_5000);
    g.redist_write(0x0, 4, 1);
    assert_eq!((g.redist_read(0x70, 8), g.redist_read(0x0, 4)), (0, 0), "RAZ/WI without LPIs");
    g.lpis_offered = true;
    assert_eq!(g.dist_read(0x4, 4) >> 19 & 0x1f, 15, "16 bits of INTID");
    assert_eq!(g.redist_read(0x8, 8) & 1, 1);
    // vCPU 1's frame: PROPBASER in two halves, then EnableLPIs locks it.
    let rd1 = crate::vm::layout::GICR_STRIDE;
    g.redist_write(rd1 + 0x70, 4, 0x4567_800f);
    g.redist_write(rd1 + 0x74, 4, 0x1);
    assert_eq!(g.redist_read(rd1 + 0x70, 8), 0x1_4567_800f);
    g.redist_write(rd1, 4, 1);
    g.redist_write(rd1 + 0x70, 8, 0);
    assert_eq!(g.redist_read(rd1 + 0x70, 8), 0x1_4567_800f, "fixed once LPIs are on");
    assert_eq!((g.redist_read(0x0, 4), g.redist_read(rd1, 4)), (0, 1));
}

#[test]
fn an_lpi_reaches_its_target_once_enabled() {
    use super::super::LPI_BASE;
    let mut g = Vgic::new(2);
    g.lpis_offered = true;
    g.dist_write(0, 4, 2 | 1 << 4); // EnableGrp1NS, ARE
    let lpi = LPI_BASE + 3;
    assert_eq!(g.raise_lpi(1, lpi), 0, "redistributor 1 has LPIs off: dropped");
    g.redist_write(crate::vm::layout::GICR_STRIDE, 4, 1);
    assert_eq!(g.raise_lpi(1, lpi), 0, "pending, but disabled in the configuration table");
    assert_eq!(g.set_lpi_config(lpi, 0xa1), 1 << 1, "enabled: vCPU 1 is kicked");
    let mut lrs = [0u64; 4];
    g.fill_lrs(0, &mut lrs);
    assert_eq!(lrs, [0; 4], "not vCPU 0's");
    g.fill_lrs(1, &mut lrs);
    assert_eq!(lrs[0] & 0xffff_ffff, lpi as u64);
    assert_eq!(lrs[0] >> 48 & 0xff, 0xa0, "priority from the table");
    // Out of the model's range, or past INTID 2^16: dropped without a panic.
    assert_eq!(g.raise_lpi(1, LPI_BASE + super::super::NR_LPIS as u32), 0);
    assert_eq!(g.raise_lpi(9, lpi), 0);
    assert_eq!(g.set_lpi_config(u32::MAX, 1), 0);
}
