//! The pending bitmaps against the scans they replaced: `best`,
//! `has_deliverable` and `fill_lrs` as they were before (every private
//! interrupt, SPI and LPI looked at, kept here as the reference) must
//! choose exactly what the bitmap walks choose, over random sequences of
//! everything that changes an interrupt's state.

use super::*;
use super::mmio::SGI_BASE;
use crate::vm::layout::GICR_STRIDE;

impl Vgic {
    /// Every interrupt of `vcpu` in ascending INTID order, pending or not
    /// (the scan before the bitmaps, which tested each one's pending flag).
    fn old_candidates(&self, vcpu: usize) -> impl Iterator<Item = (u32, &Irq)> {
        let private = self.private.get(vcpu).map(|p| &p[..]).unwrap_or(&[]);
        let private = private.iter().enumerate().map(|(n, i)| (n as u32, i));
        let spis = self.spi.iter().enumerate().map(|(k, i)| (32 + k as u32, i));
        let lpis = self.lpi.iter().enumerate().filter(move |&(k, _)| self.lpi_target[k] == vcpu).map(|(k, i)| (LPI_BASE + k as u32, i));
        private
            .chain(spis.filter(move |&(n, _)| self.spi_target(n) == vcpu))
            .chain(lpis)
            .filter(move |&(n, _)| self.pending(vcpu, n))
    }

    fn old_has_deliverable(&self, vcpu: usize) -> bool {
        self.old_candidates(vcpu).any(|(_, i)| self.deliverable(true, i) || self.repending(true, i))
    }

    fn old_best(&self, vcpu: usize) -> Option<u32> {
        let mut best: Option<(u8, u32)> = None;
        for (n, i) in self.old_candidates(vcpu) {
            if self.deliverable(true, i) && best.is_none_or(|(p, _)| i.priority < p) {
                best = Some((i.priority, n));
            }
        }
        best.map(|(_, n)| n)
    }

    /// `fill_lrs` with the old scan.
    fn old_fill_lrs(&mut self, vcpu: usize, lrs: &mut [u64]) -> bool {
        self.fill_lrs_by(vcpu, lrs, Self::old_best)
    }
}

fn same(a: &Vgic, b: &Vgic) -> bool {
    a.ctlr == b.ctlr
        && a.spi == b.spi
        && a.private == b.private
        && a.lpi == b.lpi
        && a.lpi_target == b.lpi_target
        && a.pend_private == b.pend_private
        && a.pend_spi == b.pend_spi
        && a.pend_lpi == b.pend_lpi
        && a.lr_intid == b.lr_intid
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// A few priorities, so that ties (lowest INTID wins) are frequent.
const PRIOS: [u64; 4] = [0x10, 0xa0, 0xa0, 0xf0];

/// Any INTID, including some the model does not hold.
fn any_intid(r: &mut Rng) -> u32 {
    match r.below(8) {
        0..=2 => r.below(32) as u32,
        3..=5 => 32 + r.below(NR_SPIS as u64) as u32,
        6 => LPI_BASE + r.below(NR_LPIS as u64 + 4) as u32,
        _ => NR_IRQS as u32 + r.below(64) as u32,
    }
}

/// One random change to `g` (and to the guest's list registers `lrs`).
fn step(r: &mut Rng, g: &mut Vgic, lrs: &mut [[u64; 4]], nv: usize) {
    let v = r.below(nv as u64) as usize;
    let rd = v as u64 * GICR_STRIDE;
    let spi = 32 + r.below(NR_SPIS as u64) as u32;
    let ppi = 16 + r.below(16) as u32;
    let lpi = LPI_BASE + r.below(NR_LPIS as u64) as u32;
    let word = r.next() & r.next(); // about a quarter of the bits
    match r.below(20) {
        0 | 1 => {
            g.raise(v, any_intid(r));
        }
        2 => {
            g.set_level(spi, r.chance(2));
        }
        3 => {
            g.set_private_level(v, ppi, r.chance(2));
        }
        4 => {
            g.raise_hw(v, 27);
        }
        5 => g.unlink_hw(v, 27),
        6 => {
            let sgi = r.below(16) << 24;
            g.send_sgi(v, sgi | if r.chance(3) { 1 << 40 } else { r.below(1 << nv) });
        }
        7 => {
            // GICD_CTLR, mostly with Group 1 on.
            g.dist_write(0, 4, if r.chance(4) { r.below(4) } else { 2 });
        }
        8 => {
            let k = 4 + 4 * r.below(2);
            let reg = [0x080, 0x100, 0x180, 0x200, 0x280, 0x100, 0x100][r.below(7) as usize];
            g.dist_write(reg + k, 4, word);
        }
        9 => {
            g.dist_write(0x400 + spi as u64, 1, PRIOS[r.below(4) as usize]);
        }
        10 => {
            let route = match r.below(4) {
                0 => 1 << 31,
                1 => r.below(nv as u64 + 2),
                2 => 1 << 8,
                _ => r.below(nv as u64),
            };
            g.dist_write(0x6000 + 8 * spi as u64, 8, route);
        }
        11 => {
            let k = 8 + 4 * r.below(4);
            g.dist_write(0xc00 + k, 4, word);
        }
        12 => {
            let reg = [0x080, 0x100, 0x180, 0x200, 0x280, 0x100, 0xc04][r.below(7) as usize];
            g.redist_write(rd + SGI_BASE + reg, 4, if reg == 0x100 { word | word >> 7 } else { word });
        }
        13 => {
            g.redist_write(rd + SGI_BASE + 0x400 + r.below(32), 1, PRIOS[r.below(4) as usize]);
        }
        14 => {
            g.redist_write(rd, 4, 1); // EnableLPIs
            g.raise_lpi(v, lpi);
        }
        15 => {
            g.set_lpi_config(lpi, (PRIOS[r.below(4) as usize] as u8) | (r.below(4) != 0) as u8);
        }
        16 => g.clear_lpi(lpi),
        17 => {
            // The guest acknowledges, completes, or leaves its list registers.
            for l in lrs[v].iter_mut() {
                if *l != 0 && r.chance(2) {
                    *l = *l & !(3 << lr::STATE_SHIFT) | r.below(4) << lr::STATE_SHIFT;
                }
            }
            g.sync_lrs(v, &lrs[v]);
        }
        18 => {
            g.lower_level(v, ppi, &mut lrs[v]);
        }
        _ => {
            if r.chance(8) {
                g.reset_lrs(v);
                lrs[v] = [0; 4];
            }
        }
    }
}

/// Random sequences: after every change, the bitmap walks choose what the
/// old scans chose, and `fill_lrs` fills the list registers and leaves the
/// model exactly as the old `fill_lrs` did.
#[test]
fn bitmaps_choose_what_the_scan_chose() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut fills = 0;
    let mut chosen = 0;
    for run in 0..200 {
        let nv = 1 + run % MAX_VCPUS.min(4);
        let mut g = Vgic::new(nv);
        g.lpis_offered = true;
        g.dist_write(0, 4, 2);
        g.dist_write(0x84, 4, !0);
        g.dist_write(0x88, 4, !0);
        for c in 0..nv as u64 {
            g.redist_write(c * GICR_STRIDE + SGI_BASE + 0x80, 4, !0);
        }
        let mut lrs = vec![[0u64; 4]; nv];
        for _ in 0..400 {
            step(&mut r, &mut g, &mut lrs, nv);
            for v in 0..nv {
                assert_eq!(g.best(v), g.old_best(v), "run {run}, vCPU {v}");
                assert_eq!(g.has_deliverable(v), g.old_has_deliverable(v), "run {run}, vCPU {v}");
                chosen += g.best(v).is_some() as u32;
            }
            if r.chance(3) {
                let v = r.below(nv as u64) as usize;
                let (mut a, mut b) = (g.clone(), g.clone());
                let (mut la, mut lb) = (lrs[v], lrs[v]);
                assert_eq!(a.fill_lrs(v, &mut la), b.old_fill_lrs(v, &mut lb), "run {run}, vCPU {v}");
                assert_eq!(la, lb, "run {run}, vCPU {v}");
                assert!(same(&a, &b), "run {run}, vCPU {v}");
                fills += (la != lrs[v]) as u32;
                g = a;
                lrs[v] = la;
            }
        }
    }
    // The sequences do reach the interesting states.
    assert!(fills > 1000 && chosen > 10_000, "fills {fills}, chosen {chosen}");
}

/// Nothing pending: the walks find nothing without looking at any interrupt.
#[test]
fn nothing_pending_nothing_walked() {
    let mut g = Vgic::new(4);
    g.dist_write(0, 4, 2);
    for v in 0..4 {
        assert_eq!(g.candidates(v).count(), 0);
    }
    g.raise(2, 5);
    g.raise(0, 40);
    assert_eq!(g.candidates(2).map(|(n, _)| n).collect::<Vec<_>>(), [5]);
    assert_eq!(g.candidates(0).map(|(n, _)| n).collect::<Vec<_>>(), [40]);
    assert_eq!(g.candidates(1).count(), 0);
}

/// The bitmap type: set, clear, walk in ascending order, ignore what is out of range.
#[test]
fn bits() {
    let mut b = Bits::<2>::EMPTY;
    for n in [127, 0, 64, 63, 5, 200] {
        b.set(n, true);
    }
    assert_eq!(b.iter().collect::<Vec<_>>(), [0, 5, 63, 64, 127]);
    b.set(63, false);
    b.set(200, false);
    assert!(!b.get(63) && b.get(64) && !b.get(200));
    assert_eq!(b.iter().collect::<Vec<_>>(), [0, 5, 64, 127]);
}
