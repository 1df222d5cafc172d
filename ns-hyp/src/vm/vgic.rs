//! The guest's GICv3 (IHI0069H): an emulated distributor (GICD) and one
//! emulated redistributor (GICR) per vCPU, behind Stage-2 faults, feeding the
//! hardware's virtual CPU interface through the ICH_LR<n>_EL2 list registers
//! (IHI0069H, "GIC support for virtualization", ICH_LR<n>_EL2).  This module is the state and the register
//! semantics; `guest/` moves list-register values to and from the hardware.
//!
//! The guest sees a GIC with one Security state (GICD_CTLR.DS = 1), affinity
//! routing always on, `NR_SPIS` SPIs, and LPIs when the guest has an ITS
//! (`vm::its`; GICD_TYPER.LPIS, GICR_PROPBASER/PENDBASER, `NR_LPIS` of them).

use super::config::MAX_VCPUS;

pub mod mmio;
#[cfg(test)]
mod scan_tests;

pub const NR_SPIS: usize = 64;
pub const NR_IRQS: usize = 32 + NR_SPIS;
pub const MAX_LRS: usize = 16;
/// LPIs (IHI0069H §5.1): INTIDs from 8192.  The model holds the first
/// `NR_LPIS` of them, which is what Linux's ITS driver hands out first
/// for a few devices; an MSI mapped to a higher one is dropped.
pub const LPI_BASE: u32 = 8192;
pub const NR_LPIS: usize = 64;

/// ICH_LR<n>_EL2 fields (IHI0069H, ICH_LR<n>_EL2).
#[cfg_attr(target_os = "none", allow(dead_code))]
pub mod lr {
    pub const STATE_SHIFT: u32 = 62;
    pub const PENDING: u64 = 1 << 62;
    pub const ACTIVE: u64 = 2 << 62;
    pub const HW: u64 = 1 << 61;
    pub const GROUP1: u64 = 1 << 60;
    pub const PRIORITY_SHIFT: u32 = 48;
    pub const PINTID_SHIFT: u32 = 32;
    /// With HW = 0: raise a maintenance interrupt when the guest deactivates it.
    pub const EOI: u64 = 1 << 41;

    pub fn state(v: u64) -> u64 {
        v >> STATE_SHIFT
    }
    pub fn vintid(v: u64) -> u32 {
        v as u32
    }
}

/// One interrupt's configuration and state.  Its latched pending state is
/// not here but in `Vgic`'s pending bitmaps (`Vgic::pending`), so that
/// the scans at every guest entry look only at interrupts that are pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    pub enabled: bool,
    /// Input line, for level-sensitive interrupts a device drives.
    pub level: bool,
    pub priority: u8,
    pub group1: bool,
    pub edge: bool,
    /// Currently held in one of the target vCPU's list registers.
    pub in_lr: bool,
    /// Deliver HW-linked to the physical INTID of the same number (the virtual timer).
    pub hw: bool,
    /// GICD_IROUTER<n> (SPIs only).
    pub route: u64,
}

impl Irq {
    const fn new(edge: bool) -> Self {
        Irq { enabled: false, level: false, priority: 0, group1: false, edge, in_lr: false, hw: false, route: 0 }
    }
}

/// A set of interrupts by index, `W` 64-bit words, walked in ascending order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bits<const W: usize>([u64; W]);

impl<const W: usize> Bits<W> {
    const EMPTY: Self = Bits([0; W]);

    fn get(&self, n: usize) -> bool {
        self.0.get(n / 64).is_some_and(|w| w >> (n % 64) & 1 != 0)
    }

    fn set(&mut self, n: usize, on: bool) {
        if let Some(w) = self.0.get_mut(n / 64) {
            if on {
                *w |= 1 << (n % 64);
            } else {
                *w &= !(1 << (n % 64));
            }
        }
    }

    /// The indices of the set bits, lowest first.
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(k, &w)| {
            let mut w = w;
            core::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(64 * k + b)
            })
        })
    }
}

const SPI_WORDS: usize = NR_SPIS.div_ceil(64);
const LPI_WORDS: usize = NR_LPIS.div_ceil(64);

#[cfg_attr(test, derive(Clone))]
pub struct Vgic {
    nvcpus: usize,
    /// GICD_CTLR EnableGrp0 (bit 0) / EnableGrp1 (bit 1).
    ctlr: u32,
    spi: [Irq; NR_SPIS],
    private: [[Irq; 32]; MAX_VCPUS],
    /// Latched pending state (edge, software-set, or a level line seen
    /// high), one bit per interrupt: its only copy, written through
    /// `set_pending` alone.  Private interrupts per vCPU (bit = INTID),
    /// SPIs (bit = INTID - 32), LPIs (bit = INTID - LPI_BASE).
    pend_private: [Bits<1>; MAX_VCPUS],
    pend_spi: Bits<SPI_WORDS>,
    pend_lpi: Bits<LPI_WORDS>,
    sleep: [bool; MAX_VCPUS],
    /// Which INTID each list register holds, per vCPU.
    lr_intid: [[Option<u32>; MAX_LRS]; MAX_VCPUS],
    /// LPIs are offered (GICD_TYPER.LPIS): the guest has an ITS.
    pub lpis_offered: bool,
    /// LPI state (edge, Group 1; enable and priority from the guest's LPI
    /// configuration table, as the ITS last read it) and each LPI's target.
    lpi: [Irq; NR_LPIS],
    lpi_target: [usize; NR_LPIS],
    /// Per redistributor: GICR_CTLR.EnableLPIs, GICR_PROPBASER, GICR_PENDBASER.
    pub enable_lpis: [bool; MAX_VCPUS],
    pub propbaser: [u64; MAX_VCPUS],
    pub pendbaser: [u64; MAX_VCPUS],
}

/// Bit mask of vCPUs that got a new deliverable interrupt (to be kicked).
pub type Kick = u32;

impl Vgic {
    pub fn new(nvcpus: usize) -> Self {
        let mut private = [[Irq::new(false); 32]; MAX_VCPUS];
        for p in private.iter_mut() {
            for sgi in p.iter_mut().take(16) {
                sgi.edge = true; // SGIs are always edge (GICR_ICFGR0 RO)
            }
        }
        Vgic {
            nvcpus: nvcpus.min(MAX_VCPUS),
            ctlr: 0,
            spi: [Irq::new(false); NR_SPIS],
            private,
            pend_private: [Bits::EMPTY; MAX_VCPUS],
            pend_spi: Bits::EMPTY,
            pend_lpi: Bits::EMPTY,
            sleep: [true; MAX_VCPUS],
            lr_intid: [[None; MAX_LRS]; MAX_VCPUS],
            lpis_offered: false,
            lpi: [Irq { group1: true, ..Irq::new(true) }; NR_LPIS],
            lpi_target: [0; NR_LPIS],
            enable_lpis: [false; MAX_VCPUS],
            propbaser: [0; MAX_VCPUS],
            pendbaser: [0; MAX_VCPUS],
        }
    }

    pub fn nvcpus(&self) -> usize {
        self.nvcpus
    }

    /// An LPI's configuration byte (IHI0069H §5.1.1: bit 0 Enable, bits
    /// [7:2] priority), as read from the guest's LPI configuration table
    /// when the ITS is told to (INV, INVALL, MAPTI).
    pub fn set_lpi_config(&mut self, intid: u32, prop: u8) -> Kick {
        let Some(k) = intid.checked_sub(LPI_BASE).map(|k| k as usize).filter(|&k| k < NR_LPIS) else { return 0 };
        let i = &mut self.lpi[k];
        i.enabled = prop & 1 != 0;
        i.priority = prop & 0xfc;
        let t = self.lpi_target[k];
        self.kick_if_deliverable(t, intid)
    }

    /// The ITS translated an MSI to LPI `intid` for `vcpu` (its collection's
    /// target).  Dropped while that redistributor has LPIs disabled, or for
    /// an LPI the model does not hold.
    pub fn raise_lpi(&mut self, vcpu: usize, intid: u32) -> Kick {
        let Some(k) = intid.checked_sub(LPI_BASE).map(|k| k as usize).filter(|&k| k < NR_LPIS) else { return 0 };
        if vcpu >= self.nvcpus || !self.enable_lpis[vcpu] {
            return 0;
        }
        if self.lpi[k].in_lr && self.lpi_target[k] != vcpu {
            return 0; // still being handled where it was; a GIC keeps one pending state
        }
        self.lpi_target[k] = vcpu;
        self.set_pending(vcpu, intid, true);
        self.kick_if_deliverable(vcpu, intid)
    }

    /// CLEAR / DISCARD: the LPI's pending state goes.
    pub fn clear_lpi(&mut self, intid: u32) {
        self.set_pending(0, intid, false);
    }

    pub fn irq(&self, vcpu: usize, intid: u32) -> Option<&Irq> {
        match intid {
            0..=31 => self.private.get(vcpu)?.get(intid as usize),
            LPI_BASE.. => self.lpi.get((intid - LPI_BASE) as usize),
            _ => self.spi.get(intid as usize - 32),
        }
    }

    fn irq_mut(&mut self, vcpu: usize, intid: u32) -> Option<&mut Irq> {
        match intid {
            0..=31 => self.private.get_mut(vcpu)?.get_mut(intid as usize),
            LPI_BASE.. => self.lpi.get_mut((intid - LPI_BASE) as usize),
            _ => self.spi.get_mut(intid as usize - 32),
        }
    }

    /// Whether interrupt `intid` (of `vcpu`, for a private one) is latched
    /// pending; false for one the model does not hold.
    pub fn pending(&self, vcpu: usize, intid: u32) -> bool {
        match intid {
            0..=31 => self.pend_private.get(vcpu).is_some_and(|b| b.get(intid as usize)),
            LPI_BASE.. => (intid - LPI_BASE) < NR_LPIS as u32 && self.pend_lpi.get((intid - LPI_BASE) as usize),
            _ => (intid as usize) < NR_IRQS && self.pend_spi.get(intid as usize - 32),
        }
    }

    /// Latches or clears the pending state of `intid` (of `vcpu`, for a
    /// private one); an interrupt the model does not hold is ignored.
    fn set_pending(&mut self, vcpu: usize, intid: u32, on: bool) {
        match intid {
            0..=31 => {
                if let Some(b) = self.pend_private.get_mut(vcpu) {
                    b.set(intid as usize, on);
                }
            }
            LPI_BASE.. => {
                if (intid - LPI_BASE) < NR_LPIS as u32 {
                    self.pend_lpi.set((intid - LPI_BASE) as usize, on);
                }
            }
            _ => {
                if (intid as usize) < NR_IRQS {
                    self.pend_spi.set(intid as usize - 32, on);
                }
            }
        }
    }

    /// The vCPU an SPI is routed to (IROUTER Aff0; IRM = 1 "any" picks vCPU 0).
    pub fn spi_target(&self, intid: u32) -> usize {
        let r = self.spi.get(intid.wrapping_sub(32) as usize).map_or(0, |i| i.route);
        let aff0 = (r & 0xff) as usize;
        if r & (1 << 31) != 0 || r & 0xff_00ff_ff00 != 0 || aff0 >= self.nvcpus { 0 } else { aff0 }
    }

    /// Interrupt `i`, pending or not as `pending` says, can go in a list register.
    fn deliverable(&self, pending: bool, i: &Irq) -> bool {
        let group_on = if i.group1 { self.ctlr & 2 != 0 } else { self.ctlr & 1 != 0 };
        i.enabled && pending && !i.in_lr && group_on
    }

    /// Pending again while its previous instance is still in a list register
    /// (typically active: the guest is handling it).  An edge-triggered
    /// software interrupt is then made pending+active in that LR at the next
    /// entry (IHI0069H, ICH_LR<n>_EL2.State 0b11: pending and active), so it is taken right after the
    /// guest deactivates the first one; without that it would wait for the
    /// vCPU's next exit, which for an idle vCPU is its next timer tick.
    fn repending(&self, pending: bool, i: &Irq) -> bool {
        let group_on = if i.group1 { self.ctlr & 2 != 0 } else { self.ctlr & 1 != 0 };
        i.enabled && pending && i.in_lr && i.edge && !i.hw && group_on
    }

    fn kick_if_deliverable(&self, vcpu: usize, intid: u32) -> Kick {
        let p = self.pending(vcpu, intid);
        match self.irq(vcpu, intid) {
            Some(i) if self.deliverable(p, i) || self.repending(p, i) => 1 << vcpu,
            _ => 0,
        }
    }

    /// A device drives an SPI's line (level-sensitive) to `level`.
    pub fn set_level(&mut self, intid: u32, level: bool) -> Kick {
        let t = self.spi_target(intid);
        let Some(i) = self.irq_mut(t, intid) else { return 0 };
        i.level = level;
        let (edge, in_lr) = (i.edge, i.in_lr);
        if level && !in_lr {
            self.set_pending(t, intid, true);
        } else if !level && !edge && !in_lr {
            self.set_pending(t, intid, false);
        }
        self.kick_if_deliverable(t, intid)
    }

    /// The line of a private interrupt (PPI) of `vcpu` is at `level`
    /// (level-sensitive: e.g. a Realm's virtual timer, whose state the RMM
    /// reports at each REC exit).
    pub fn set_private_level(&mut self, vcpu: usize, intid: u32, level: bool) -> Kick {
        if !(16..32).contains(&intid) {
            return 0;
        }
        let Some(i) = self.irq_mut(vcpu, intid) else { return 0 };
        i.level = level;
        let (edge, in_lr) = (i.edge, i.in_lr);
        if level && !in_lr {
            self.set_pending(vcpu, intid, true);
        } else if !level && !edge && !in_lr {
            self.set_pending(vcpu, intid, false);
        }
        self.kick_if_deliverable(vcpu, intid)
    }

    /// An edge on an SPI, or a private interrupt of `vcpu` made pending.
    pub fn raise(&mut self, vcpu: usize, intid: u32) -> Kick {
        let t = if intid >= 32 { self.spi_target(intid) } else { vcpu };
        if self.irq(t, intid).is_none() {
            return 0;
        }
        self.set_pending(t, intid, true);
        self.kick_if_deliverable(t, intid)
    }

    /// The physical virtual-timer interrupt fired while `vcpu` was loaded: make
    /// the virtual one pending, HW-linked (the guest's deactivation deactivates
    /// the physical interrupt, IHI0069H, ICH_LR<n>_EL2.HW).
    pub fn raise_hw(&mut self, vcpu: usize, intid: u32) -> Kick {
        if let Some(i) = self.irq_mut(vcpu, intid) {
            i.hw = true;
        }
        self.raise(vcpu, intid)
    }

    /// A HW-linked private interrupt of `vcpu` raised and not yet in an LR:
    /// its physical interrupt waits active for the LR it will get.
    pub fn hw_latched(&self, vcpu: usize, intid: u32) -> bool {
        self.irq(vcpu, intid).is_some_and(|i| i.hw && !i.in_lr) && self.pending(vcpu, intid)
    }

    /// The vCPU is descheduled and its physical timer interrupt deactivated:
    /// a pending HW-linked interrupt waiting for an LR is delivered as a software one.
    pub fn unlink_hw(&mut self, vcpu: usize, intid: u32) {
        if let Some(i) = self.irq_mut(vcpu, intid) {
            i.hw = false;
        }
    }

    /// ICC_SGI1R_EL1 written by `from` (IHI0069H, ICC_SGI1R_EL1): returns the vCPUs to kick.
    pub fn send_sgi(&mut self, from: usize, v: u64) -> Kick {
        let intid = ((v >> 24) & 0xf) as u32;
        let irm = v & (1 << 40) != 0;
        let mut targets: u32 = 0;
        if irm {
            targets = ((1u32 << self.nvcpus) - 1) & !(1 << from);
        } else {
            let aff_upper = (v >> 16) & 0xff | ((v >> 32) & 0xff) << 8 | ((v >> 48) & 0xff) << 16;
            let rs = (v >> 44) & 0xf;
            if aff_upper == 0 && rs == 0 {
                targets = (v & 0xffff) as u32 & ((1u32 << self.nvcpus) - 1);
            }
        }
        let mut kick = 0;
        for t in 0..self.nvcpus {
            if targets & (1 << t) != 0 {
                kick |= self.raise(t, intid);
            }
        }
        kick
    }

    /// Whether `vcpu` has an interrupt waiting that is not yet in a list
    /// register (or pending again behind its active instance): a reason to
    /// wake it from WFI.
    pub fn has_deliverable(&self, vcpu: usize) -> bool {
        self.any_pending(vcpu) && self.candidates(vcpu).any(|(_, i)| self.deliverable(true, i) || self.repending(true, i))
    }

    /// Whether any bit of the pending bitmaps is set (whatever its target):
    /// the common case at a guest entry, none, costs a few loads.
    fn any_pending(&self, vcpu: usize) -> bool {
        let private = self.pend_private.get(vcpu).is_some_and(|b| b.0 != [0; 1]);
        private || self.pend_spi.0 != [0; SPI_WORDS] || self.pend_lpi.0 != [0; LPI_WORDS]
    }

    /// The pending interrupts of `vcpu` (its SGIs/PPIs, the SPIs routed to
    /// it, the LPIs targeting it), with their INTIDs, in ascending INTID
    /// order.  Runs at every guest entry: only the set bits of the pending
    /// bitmaps are looked at, and nothing at all when none is pending.
    fn candidates(&self, vcpu: usize) -> impl Iterator<Item = (u32, &Irq)> {
        let (private, pend) = match (self.private.get(vcpu), self.pend_private.get(vcpu)) {
            (Some(p), Some(b)) => (&p[..], b),
            _ => (&[][..], &Bits::EMPTY),
        };
        let private = pend.iter().filter_map(move |n| private.get(n).map(|i| (n as u32, i)));
        let spis = self.pend_spi.iter().filter_map(|k| self.spi.get(k).map(|i| (32 + k as u32, i)));
        let lpis = self.pend_lpi.iter().filter(move |&k| self.lpi_target.get(k) == Some(&vcpu)).filter_map(|k| self.lpi.get(k).map(|i| (LPI_BASE + k as u32, i)));
        private.chain(spis.filter(move |&(n, _)| self.spi_target(n) == vcpu)).chain(lpis)
    }

    /// Takes back the list registers after the guest ran: interrupts whose LR
    /// went invalid are done (a level-sensitive one still asserted pends again).
    pub fn sync_lrs(&mut self, vcpu: usize, lrs: &[u64]) {
        for (n, &v) in lrs.iter().enumerate().take(MAX_LRS) {
            let Some(intid) = self.lr_intid[vcpu][n] else { continue };
            if lr::state(v) != 0 {
                continue;
            }
            self.lr_intid[vcpu][n] = None;
            let pending = self.pending(vcpu, intid);
            if let Some(i) = self.irq_mut(vcpu, intid) {
                i.in_lr = false;
                // A HW-linked interrupt raised again while in the LR keeps its link.
                if !pending {
                    i.hw = false;
                }
                if !i.edge && i.level {
                    self.set_pending(vcpu, intid, true);
                }
            }
        }
    }

    /// Fills free list registers (state invalid) with the highest-priority
    /// deliverable interrupts.  Returns true if some remain pending (the caller
    /// asks for an underflow maintenance interrupt, ICH_HCR_EL2.UIE).
    pub fn fill_lrs(&mut self, vcpu: usize, lrs: &mut [u64]) -> bool {
        self.fill_lrs_by(vcpu, lrs, Self::best)
    }

    /// `fill_lrs` with `best` choosing each next interrupt (the host tests
    /// pass the old full scan, `scan_tests`, and compare).
    fn fill_lrs_by(&mut self, vcpu: usize, lrs: &mut [u64], best: impl Fn(&Self, usize) -> Option<u32>) -> bool {
        let nlrs = lrs.len().min(MAX_LRS);
        // Interrupts raised again while in an LR: behind an active instance
        // the LR becomes pending+active; one still pending there merges with
        // it (a GIC holds one pending state per interrupt).
        for n in 0..nlrs {
            let Some(intid) = self.lr_intid[vcpu][n] else { continue };
            if !self.pending(vcpu, intid) || !self.irq(vcpu, intid).is_some_and(|i| self.repending(true, i)) {
                continue;
            }
            if lr::state(lrs[n]) == 2 {
                lrs[n] |= lr::PENDING;
            }
            if lr::state(lrs[n]) & 1 != 0 {
                self.set_pending(vcpu, intid, false);
            }
        }
        for n in 0..nlrs {
            if self.lr_intid[vcpu][n].is_some() {
                continue;
            }
            let Some(intid) = best(self, vcpu) else { return false };
            self.set_pending(vcpu, intid, false);
            let i = self.irq_mut(vcpu, intid).unwrap();
            i.in_lr = true;
            let mut v = lr::PENDING | (i.priority as u64) << lr::PRIORITY_SHIFT | intid as u64;
            if i.group1 {
                v |= lr::GROUP1;
            }
            if i.hw {
                v |= lr::HW | (intid as u64) << lr::PINTID_SHIFT;
            } else if !i.edge {
                // Level-sensitive: learn when it is deactivated, to re-sample the line.
                v |= lr::EOI;
            }
            lrs[n] = v;
            self.lr_intid[vcpu][n] = Some(intid);
        }
        best(self, vcpu).is_some()
    }

    fn best(&self, vcpu: usize) -> Option<u32> {
        if !self.any_pending(vcpu) {
            return None;
        }
        let mut best: Option<(u8, u32)> = None;
        for (n, i) in self.candidates(vcpu) {
            if self.deliverable(true, i) && best.is_none_or(|(p, _)| i.priority < p) {
                best = Some((i.priority, n));
            }
        }
        best.map(|(_, n)| n)
    }

    /// The line of a level-sensitive private interrupt of `vcpu` (a timer's
    /// output) went low: its pending state goes, wherever it is — latched in
    /// the model, or in a list register the guest has not acknowledged yet
    /// (the LR is emptied; pending+active becomes active).  A GIC drops the
    /// pending state of a level interrupt whose line falls before it is
    /// acknowledged (IHI0069H, "Level-sensitive interrupts"); without this a
    /// disabled timer's interrupt stayed latched.  Returns true if a
    /// HW-linked LR was emptied: its physical interrupt, left active for the
    /// link, must be deactivated by the caller.
    pub fn lower_level(&mut self, vcpu: usize, intid: u32, lrs: &mut [u64]) -> bool {
        if !(16..32).contains(&intid) {
            return false;
        }
        let mut hw_dropped = false;
        for n in 0..lrs.len().min(MAX_LRS) {
            if self.lr_intid[vcpu][n] != Some(intid) {
                continue;
            }
            match lr::state(lrs[n]) {
                1 => {
                    hw_dropped = lrs[n] & lr::HW != 0;
                    lrs[n] = 0;
                    self.lr_intid[vcpu][n] = None;
                    if let Some(i) = self.irq_mut(vcpu, intid) {
                        i.in_lr = false;
                        i.hw = false;
                    }
                }
                3 => lrs[n] &= !lr::PENDING,
                _ => {}
            }
        }
        let pending = self.pending(vcpu, intid);
        if let Some(i) = self.irq_mut(vcpu, intid) {
            i.level = false;
            if pending && i.hw && !i.in_lr {
                // Latched HW-linked, not in an LR yet: its physical interrupt waits active.
                hw_dropped = true;
                i.hw = false;
            }
            self.set_pending(vcpu, intid, false);
        }
        hw_dropped
    }

    /// Whether `vcpu`'s list registers hold `intid` pending and not yet
    /// acknowledged (state pending, not active).
    pub fn pending_in_lr(&self, vcpu: usize, intid: u32, lrs: &[u64]) -> bool {
        lrs.iter().enumerate().take(MAX_LRS).any(|(n, &l)| self.lr_intid[vcpu][n] == Some(intid) && lr::state(l) == 1)
    }

    /// Forgets the list registers of `vcpu` (it is being reset / powered on).
    pub fn reset_lrs(&mut self, vcpu: usize) {
        for n in 0..MAX_LRS {
            if let Some(intid) = self.lr_intid[vcpu][n].take() {
                if let Some(i) = self.irq_mut(vcpu, intid) {
                    i.in_lr = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(nv: usize) -> Vgic {
        let mut g = Vgic::new(nv);
        g.dist_write(0, 4, 2); // EnableGrp1
        g.dist_write(0x84, 4, !0); // SPIs 32..63 group 1
        g.dist_write(0x88, 4, !0);
        for c in 0..nv as u64 {
            g.redist_write(c * 0x20000 + 0x1_0080, 4, !0);
        }
        g
    }

    #[test]
    fn ids_and_typer() {
        let g = Vgic::new(4);
        assert_eq!(g.dist_read(0xffe8, 4) & 0xf0, 0x30);
        assert_eq!(g.dist_read(4, 4) & 0x1f, 2);
        assert_eq!(g.dist_read(0, 4) & (1 << 4), 1 << 4);
        assert_eq!(g.redist_read(0x8, 8), 0);
        assert_eq!(g.redist_read(3 * 0x20000 + 0x8, 8), 3 << 32 | 3 << 8 | 1 << 4);
        assert_eq!(g.redist_read(3 * 0x20000 + 0xc, 4), 3);
        assert_eq!(g.redist_read(4 * 0x20000 + 0x8, 8), 0); // beyond the last vCPU
    }

    #[test]
    fn waker() {
        let mut g = Vgic::new(2);
        assert_eq!(g.redist_read(0x14, 4), 6);
        g.redist_write(0x14, 4, 0);
        assert_eq!(g.redist_read(0x14, 4), 0);
    }

    #[test]
    fn level_spi_flows_through_lrs() {
        let mut g = enabled(2);
        g.dist_write(0x100 + 4, 4, 1 << 1); // enable INTID 33
        g.dist_write(0x400 + 33, 1, 0xa0);
        assert_eq!(g.set_level(33, true), 1); // routed to vCPU 0 by default
        let mut lrs = [0u64; 4];
        assert!(!g.fill_lrs(0, &mut lrs));
        assert_eq!(lr::vintid(lrs[0]), 33);
        assert_eq!(lr::state(lrs[0]), 1);
        assert_ne!(lrs[0] & lr::EOI, 0);
        assert_eq!((lrs[0] >> lr::PRIORITY_SHIFT) & 0xff, 0xa0);
        // Still in the LR: no second copy.
        assert!(!g.fill_lrs(0, &mut lrs));
        assert_eq!(lrs[1], 0);
        // Guest deactivated it while the line is still high: pending again.
        lrs[0] &= !(3 << 62);
        g.sync_lrs(0, &lrs);
        assert!(g.pending(0, 33));
        g.set_level(33, false);
        assert!(!g.pending(0, 33));
    }

    #[test]
    fn overflow_and_priority_order() {
        let mut g = enabled(1);
        for n in 16..22u32 {
            g.redist_write(0x1_0100, 4, 1 << n);
            g.redist_write(0x1_0400 + n as u64, 1, (0x80 - n) as u64);
            g.raise(0, n);
        }
        let mut lrs = [0u64; 4];
        assert!(g.fill_lrs(0, &mut lrs), "two remain");
        let got: Vec<u32> = lrs.iter().map(|&v| lr::vintid(v)).collect();
        assert_eq!(got, [21, 20, 19, 18]);
        lrs[1] = 0;
        g.sync_lrs(0, &lrs);
        assert!(g.fill_lrs(0, &mut lrs));
        assert_eq!(lr::vintid(lrs[1]), 17);
    }

    #[test]
    fn disabled_or_group_off_is_not_delivered() {
        let mut g = Vgic::new(1);
        g.redist_write(0x1_0080, 4, !0);
        g.redist_write(0x1_0100, 4, 1 << 20);
        assert_eq!(g.raise(0, 20), 0, "EnableGrp1 is off");
        g.dist_write(0, 4, 2);
        assert!(g.has_deliverable(0));
        g.redist_write(0x1_0180, 4, 1 << 20);
        assert!(!g.has_deliverable(0));
    }

    #[test]
    fn sgis_between_vcpus() {
        let mut g = enabled(4);
        for c in 0..4u64 {
            g.redist_write(c * 0x20000 + 0x1_0100, 4, 0xffff);
        }
        // INTID 3 to vCPUs 1 and 2.
        assert_eq!(g.send_sgi(0, 3 << 24 | 0b110), 0b110);
        assert!(g.pending(1, 3) && g.pending(2, 3) && !g.pending(0, 3));
        // IRM: everyone but the sender.
        assert_eq!(g.send_sgi(1, 5 << 24 | 1 << 40), 0b1101);
        // Affinity we do not have: nobody.
        assert_eq!(g.send_sgi(0, 1 << 24 | 1 << 16 | 1), 0);
    }

    /// An IPI sent again while the target handles the previous one (active in
    /// its LR) must not wait for the target's next exit: the target is kicked,
    /// and the LR becomes pending+active at its next entry; if the guest
    /// deactivated first, the model sees it after the exit's sync and the
    /// vCPU is woken from WFI.
    #[test]
    fn sgi_pending_again_while_active() {
        let mut g = enabled(2);
        g.redist_write(0x20000 + 0x1_0100, 4, 0xffff);
        assert_eq!(g.send_sgi(0, 1 << 24 | 0b10), 0b10);
        let mut lrs = [0u64; 4];
        g.fill_lrs(1, &mut lrs);
        assert_eq!(lr::state(lrs[0]), 1);
        // The guest acknowledged it: active.
        lrs[0] = lrs[0] & !(3 << 62) | lr::ACTIVE;
        g.sync_lrs(1, &lrs);
        assert!(!g.has_deliverable(1));
        assert_eq!(g.send_sgi(0, 1 << 24 | 0b10), 0b10, "the target is kicked");
        assert!(g.has_deliverable(1), "a reason to leave WFI");
        g.fill_lrs(1, &mut lrs);
        assert_eq!(lr::state(lrs[0]), 3, "pending+active");
        assert_eq!(lrs[1], 0, "no second LR for the same INTID");
        assert!(!g.has_deliverable(1));
        // Other order: the guest deactivates, then the SGI comes again.
        lrs[0] = 0;
        g.sync_lrs(1, &lrs);
        g.send_sgi(0, 1 << 24 | 0b10);
        lrs[0] = 0;
        assert!(g.has_deliverable(1));
        assert!(!g.fill_lrs(1, &mut lrs));
        assert_eq!(lr::state(lrs[0]), 1);
    }

    /// The re-raised interrupt's LR need not be the first: a free LR before
    /// it must not stop the promotion (and a WFI wake-up must then not spin).
    #[test]
    fn repending_behind_a_free_lr() {
        let mut g = enabled(2);
        g.redist_write(0x20000 + 0x1_0100, 4, 0xffff);
        g.send_sgi(0, 1 << 24 | 0b10);
        g.send_sgi(0, 2 << 24 | 0b10);
        let mut lrs = [0u64; 4];
        g.fill_lrs(1, &mut lrs);
        assert_eq!((lr::vintid(lrs[0]), lr::vintid(lrs[1])), (1, 2));
        // SGI 1 done, SGI 2 active; SGI 2 comes again.
        lrs[0] = 0;
        lrs[1] = lrs[1] & !(3 << 62) | lr::ACTIVE;
        g.sync_lrs(1, &lrs);
        lrs[0] = 0;
        g.send_sgi(0, 2 << 24 | 0b10);
        assert!(g.has_deliverable(1));
        assert!(!g.fill_lrs(1, &mut lrs));
        assert_eq!(lr::state(lrs[1]), 3, "pending+active in LR1");
        assert_eq!(lrs[0], 0);
        assert!(!g.has_deliverable(1), "nothing left to wake for");
    }

    /// An edge raised again while its instance is still pending in an LR
    /// merges with it: one delivery, not two.
    #[test]
    fn re_raise_while_pending_merges() {
        let mut g = enabled(2);
        g.redist_write(0x20000 + 0x1_0100, 4, 0xffff);
        g.send_sgi(0, 3 << 24 | 0b10);
        let mut lrs = [0u64; 4];
        g.fill_lrs(1, &mut lrs);
        g.send_sgi(0, 3 << 24 | 0b10);
        g.fill_lrs(1, &mut lrs);
        assert_eq!(lr::state(lrs[0]), 1);
        assert_eq!(lrs[1], 0);
        // The guest takes and completes it: nothing more to deliver.
        lrs[0] = 0;
        g.sync_lrs(1, &lrs);
        assert!(!g.has_deliverable(1));
    }

    /// A HW-linked or level interrupt is never made pending+active.
    #[test]
    fn hw_and_level_are_not_repended() {
        let mut g = enabled(1);
        g.redist_write(0x1_0100, 4, 1 << 27);
        g.raise_hw(0, 27);
        let mut lrs = [0u64; 4];
        g.fill_lrs(0, &mut lrs);
        lrs[0] = lrs[0] & !(3 << 62) | lr::ACTIVE;
        g.sync_lrs(0, &lrs);
        g.raise_hw(0, 27);
        g.fill_lrs(0, &mut lrs);
        assert_eq!(lr::state(lrs[0]), 2);
    }

    /// `hw_latched`: raised HW-linked and waiting for an LR (its physical
    /// interrupt is held active for it), not once it is in one.
    #[test]
    fn hw_latched_until_in_an_lr() {
        let mut g = enabled(1);
        g.redist_write(0x1_0100, 4, 1 << 27);
        assert!(!g.hw_latched(0, 27));
        g.raise_hw(0, 27);
        assert!(g.hw_latched(0, 27));
        let mut lrs = [0u64; 4];
        g.fill_lrs(0, &mut lrs);
        assert!(!g.hw_latched(0, 27), "in an LR: the LR holds it");
        g.raise(0, 23);
        assert!(!g.hw_latched(0, 23), "a software one holds nothing physical");
        assert!(!g.hw_latched(0, 1023), "no such interrupt");
    }

    #[test]
    fn spi_routing() {
        let mut g = enabled(4);
        g.dist_write(0x100 + 4, 4, 1 << 16); // INTID 48
        g.dist_write(0x6000 + 48 * 8, 8, 2);
        assert_eq!(g.spi_target(48), 2);
        assert_eq!(g.raise(0, 48), 1 << 2);
        g.dist_write(0x6000 + 48 * 8, 8, 9); // no such vCPU: falls back to 0
        assert_eq!(g.spi_target(48), 0);
    }

    #[test]
    fn hw_timer_lr() {
        let mut g = enabled(1);
        g.redist_write(0x1_0100, 4, 1 << 27);
        g.raise_hw(0, 27);
        let mut lrs = [0u64; 4];
        g.fill_lrs(0, &mut lrs);
        assert_ne!(lrs[0] & lr::HW, 0);
        assert_eq!((lrs[0] >> lr::PINTID_SHIFT) & 0x3ff, 27);
    }

    #[test]
    fn timer_level_lowered_before_ack_is_withdrawn() {
        let mut g = enabled(1);
        g.redist_write(0x1_0100, 4, 1 << 27 | 1 << 30);
        // HW-linked vtimer in an LR, not acknowledged: emptied, the caller deactivates.
        g.raise_hw(0, 27);
        let mut lrs = [0u64; 4];
        g.fill_lrs(0, &mut lrs);
        assert!(g.pending_in_lr(0, 27, &lrs));
        assert!(g.lower_level(0, 27, &mut lrs));
        assert_eq!(lrs[0], 0);
        assert!(!g.pending_in_lr(0, 27, &lrs));
        assert!(!g.has_deliverable(0));
        g.fill_lrs(0, &mut lrs);
        assert_eq!(lrs[0], 0, "nothing left to deliver");
        // Latched in the model (no LR yet): forgotten; HW-linked, the caller deactivates.
        g.raise(0, 27);
        assert!(g.has_deliverable(0));
        assert!(!g.lower_level(0, 27, &mut lrs));
        assert!(!g.has_deliverable(0));
        g.raise_hw(0, 27);
        assert!(g.lower_level(0, 27, &mut lrs));
        assert!(!g.has_deliverable(0));
        // Emulated physical timer, a software level PPI: in the LR with EOI.
        g.set_private_level(0, 30, true);
        g.fill_lrs(0, &mut lrs);
        assert_eq!(lr::vintid(lrs[0]), 30);
        assert_ne!(lrs[0] & lr::EOI, 0);
        // Acknowledged (active): left to the guest; pending+active loses its pending.
        lrs[0] = (lrs[0] & !(3 << lr::STATE_SHIFT)) | lr::ACTIVE | lr::PENDING;
        assert!(!g.lower_level(0, 30, &mut lrs));
        assert_eq!(lr::state(lrs[0]), 2);
        // Deactivated with the line low: not pending again.
        lrs[0] &= !(3 << lr::STATE_SHIFT);
        g.sync_lrs(0, &lrs);
        assert!(!g.has_deliverable(0));
        // Raised again while high, the line stays: pending again after deactivation.
        g.set_private_level(0, 30, true);
        g.fill_lrs(0, &mut lrs);
        lrs[0] &= !(3 << lr::STATE_SHIFT);
        g.sync_lrs(0, &lrs);
        assert!(g.has_deliverable(0));
        // Not a PPI: ignored.
        assert!(!g.lower_level(0, 33, &mut lrs));
    }

    #[test]
    fn garbage_offsets_do_not_panic() {
        let mut g = Vgic::new(4);
        for off in (0..0x1_0000u64).step_by(4) {
            let _ = g.dist_read(off, 4);
            g.dist_write(off, 4, !0);
        }
        for off in (0..0x8_0000u64).step_by(4) {
            let _ = g.redist_read(off, 4);
            g.redist_write(off, 4, !0);
        }
    }
}
