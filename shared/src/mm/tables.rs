//! Stage-1 (EL2 regime) and Stage-2 translation tables on `aarch64-paging`.
//!
//! Conventions shared by all Quadrant images:
//! - 4 KiB granule, 39-bit address spaces starting at level 1 (one root table),
//!   so `TCR_EL2.T0SZ` / `VTCR_EL2.T0SZ` = 25 and Stage-2 `SL0` = 1.
//! - MAIR_EL2 index 0 = Device-nGnRE, index 1 = Normal write-back (see [`MAIR_EL2`]).

use super::pool::PoolTranslation;
use bitflags::Flags;
use aarch64_paging::descriptor::{El23Attributes, PagingAttributes, PhysicalAddress, Stage2Attributes, VirtualAddress};
use aarch64_paging::paging::{Constraints, MemoryRegion, TranslationRegime};
use aarch64_paging::{MapError, Mapping};

pub use aarch64_paging::paging::{El2, Stage2};

/// Root level of every table Quadrant builds.
pub const ROOT_LEVEL: usize = 1;
/// Size of the input address space of every table (39 bits).
pub const VA_BITS: u32 = 39;
pub const ADDRESS_SPACE_END: usize = 1 << VA_BITS;

/// Attribute 0: Device-nGnRE; attribute 1: Normal, inner/outer write-back
/// read/write-allocate non-transient (ARM DDI0487 D19.2 MAIR_ELx encoding).
pub const MAIR_EL2: u64 = 0x04 | (0xff << 8);

/// What a region is, independent of the regime's attribute encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// Executable, read-only code.
    Code,
    /// Read-only data, never executable.
    ReadOnly,
    /// Read-write data, never executable.
    ReadWrite,
    /// Read-write-execute: a payload whose layout we do not know (an SP image).
    ReadWriteExec,
    /// Device registers.
    Device,
}

/// Stage-1 attributes for the EL2 regime.  `non_secure` sets the descriptor's
/// NS bit, which at S-EL2 and R-EL2 selects the Non-secure PAS (e.g. a Normal
/// world endpoint's RX/TX buffers, the NS UART).
pub fn el2_attributes(kind: MemKind, non_secure: bool) -> El23Attributes {
    let normal = El23Attributes::VALID
        | El23Attributes::ACCESSED
        | El23Attributes::INNER_SHAREABLE
        | El23Attributes::ATTRIBUTE_INDEX_1;
    let mut a = match kind {
        MemKind::Code => normal | El23Attributes::READ_ONLY,
        MemKind::ReadOnly => normal | El23Attributes::READ_ONLY | El23Attributes::XN,
        MemKind::ReadWrite => normal | El23Attributes::XN,
        MemKind::ReadWriteExec => normal,
        MemKind::Device => {
            El23Attributes::VALID
                | El23Attributes::ACCESSED
                | El23Attributes::ATTRIBUTE_INDEX_0
                | El23Attributes::XN
        }
    };
    if non_secure {
        a |= El23Attributes::NS;
    }
    a
}

/// Stage-2 attributes (DDI0487 D8.5.5: MemAttr, S2AP, SH, AF, XN).
pub fn stage2_attributes(kind: MemKind) -> Stage2Attributes {
    let normal = Stage2Attributes::VALID
        | Stage2Attributes::ACCESS_FLAG
        | Stage2Attributes::SH_INNER
        | Stage2Attributes::MEMATTR_NORMAL_INNER_WB
        | Stage2Attributes::MEMATTR_NORMAL_OUTER_WB;
    match kind {
        MemKind::Code => normal | Stage2Attributes::S2AP_ACCESS_RO,
        MemKind::ReadOnly => normal | Stage2Attributes::S2AP_ACCESS_RO | Stage2Attributes::XN,
        MemKind::ReadWrite => normal | Stage2Attributes::S2AP_ACCESS_RW | Stage2Attributes::XN,
        MemKind::ReadWriteExec => normal | Stage2Attributes::S2AP_ACCESS_RW,
        MemKind::Device => {
            Stage2Attributes::VALID
                | Stage2Attributes::ACCESS_FLAG
                | Stage2Attributes::MEMATTR_DEVICE_nGnRE
                | Stage2Attributes::S2AP_ACCESS_RW
                | Stage2Attributes::XN
        }
    }
}

/// The Secure-IPA Stage-2 regime of S-EL2 (VSTTBR_EL2), which `aarch64-paging`
/// does not provide: its `Stage2` writes VTTBR_EL2, the Non-secure IPA space.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub struct SecureStage2;

impl TranslationRegime for SecureStage2 {
    type Attributes = Stage2Attributes;
    type Asid = ();
    type VaRange = ();

    fn invalidate_va(va: VirtualAddress) {
        #[cfg(target_os = "none")]
        // SAFETY: TLB maintenance has no effect on memory the program can observe.
        // Operand bit 63 (NS) = 0 selects the Secure IPA space (DDI0487, TLBI IPAS2E1IS).
        unsafe {
            core::arch::asm!("tlbi ipas2e1is, {}", in(reg) (va.0 >> 12) as u64, options(nostack, preserves_flags));
        }
        #[cfg(not(target_os = "none"))]
        let _ = va;
    }

    unsafe fn activate(root_pa: PhysicalAddress, _asid: (), _va_range: ()) -> usize {
        #[cfg(target_os = "none")]
        {
            let prev: usize;
            // SAFETY: the caller (Mapping::activate) guarantees root_pa is a valid table.
            unsafe {
                core::arch::asm!("mrs {p}, vsttbr_el2", "msr vsttbr_el2, {r}", "isb",
                    p = out(reg) prev, r = in(reg) root_pa.0, options(nostack, preserves_flags));
            }
            prev
        }
        #[cfg(not(target_os = "none"))]
        {
            let _ = root_pa;
            usize::MAX
        }
    }

    unsafe fn deactivate(previous_ttbr: usize, _asid: (), _va_range: ()) {
        #[cfg(target_os = "none")]
        // SAFETY: restores the table that was active before `activate`.
        unsafe {
            core::arch::asm!("msr vsttbr_el2, {r}", "isb", "tlbi vmalls12e1is", "dsb ish", "isb",
                r = in(reg) previous_ttbr, options(nostack, preserves_flags));
        }
        #[cfg(not(target_os = "none"))]
        let _ = previous_ttbr;
    }
}

/// An EL2 Stage-1 identity map.
pub type El2Map = Mapping<PoolTranslation, El2>;
/// A Stage-2 table over the Non-secure IPA space (VTTBR_EL2).
pub type NsStage2 = Mapping<PoolTranslation, Stage2>;
/// A Stage-2 table over the Secure IPA space (VSTTBR_EL2).
pub type SecureStage2Map = Mapping<PoolTranslation, SecureStage2>;

/// A new, empty table in `regime` whose frames come from `pool`.
pub fn new_table<R: TranslationRegime<Asid = (), VaRange = ()>>(
    pool: &'static spin::Mutex<super::FramePool>,
    regime: R,
) -> Mapping<PoolTranslation, R> {
    Mapping::new(PoolTranslation::new(pool), ROOT_LEVEL, regime)
}

/// Maps `[ipa_or_va, +size)` to `pa` with `attrs`, using blocks where alignment allows.
pub fn map<R: TranslationRegime>(
    table: &mut Mapping<PoolTranslation, R>,
    va: usize,
    pa: usize,
    size: usize,
    attrs: R::Attributes,
) -> Result<(), MapError> {
    let end = va.checked_add(size).ok_or(MapError::AddressRange(VirtualAddress(va)))?;
    table.map_range(&MemoryRegion::new(va, end), PhysicalAddress(pa), attrs, Constraints::empty())
}

/// One leaf descriptor of a table: the region it covers, where to, how.
#[derive(Clone, Copy, Debug)]
struct Leaf<A> {
    start: usize,
    end: usize,
    pa: usize,
    flags: A,
    valid: bool,
}

/// Changes `[ipa, ipa + size)` of a Stage-2 table that a guest may be using
/// to map `pa` (or to nothing, with `pa` None) with `attrs`, by
/// break-before-make (DDI0487 D8.14.1): every leaf that overlaps the range
/// — including a 2 MiB or 1 GiB block that only partly does — is made
/// invalid and its TLB entries removed first; then the parts of those
/// leaves outside the range are mapped again as they were (pages where a
/// block was split) and the range gets its new mapping.  Guest accesses to
/// the affected leaves in between take a Stage-2 translation fault, which
/// the caller must treat as "retry" (it holds the table's lock meanwhile).
///
/// `aarch64-paging` refuses to split a live block, and its Stage-2 TLB
/// maintenance is `TLBI IPAS2E1IS` alone, which removes stage-2-only
/// entries but not combined stage 1+2 ones (DDI0487 D8.13.5); after the
/// break, `invalidate_stage1` must run `TLBI VMALLE1IS; DSB ISH` for the
/// table's VMID (a no-op on the host, or for a table no CPU uses).  The table
/// must be marked active (`Mapping::mark_active`) while in use, so that the
/// crate does its own per-leaf invalidation.
pub fn remap_stage2_live<R: TranslationRegime<Attributes = Stage2Attributes>>(
    table: &mut Mapping<PoolTranslation, R>,
    ipa: usize,
    pa: Option<usize>,
    size: usize,
    attrs: Stage2Attributes,
    invalidate_stage1: &dyn Fn(),
) -> Result<(), MapError> {
    const PAGE: usize = aarch64_paging::paging::PAGE_SIZE;
    let end = ipa.checked_add(size).ok_or(MapError::AddressRange(VirtualAddress(ipa)))?;
    if !ipa.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) || size == 0 || pa.is_some_and(|p| !p.is_multiple_of(PAGE)) {
        return Err(MapError::AddressRange(VirtualAddress(ipa)));
    }
    // The leaves holding the first and the last page of the range: only they
    // can reach outside it.
    let leaf_at = |table: &Mapping<PoolTranslation, R>, a: usize| -> Result<Option<Leaf<Stage2Attributes>>, MapError> {
        let mut leaf = None;
        table.walk_range(&MemoryRegion::new(a, a + PAGE), &mut |region, desc, level| {
            let is_table = level < 3 && desc.flags().contains(Stage2Attributes::TABLE_OR_PAGE);
            if !is_table {
                // The walk reports the part of the leaf inside the range it
                // was asked about; the leaf itself is a whole granule.
                let granule = PAGE << (9 * (3 - level));
                let start = region.start().0 & !(granule - 1);
                leaf = Some(Leaf { start, end: start + granule, pa: desc.output_address().0, flags: desc.flags(), valid: desc.is_valid() });
            }
            Ok(())
        })?;
        Ok(leaf)
    };
    let first = leaf_at(table, ipa)?;
    let last = leaf_at(table, end - PAGE)?;
    let break_start = first.map_or(ipa, |l| l.start.min(ipa));
    let break_end = last.map_or(end, |l| l.end.max(end));
    // The make step may need new tables: splitting a block down to pages at
    // each end of the range takes at most one table per level below it, and
    // the new range as much again.  Refuse before breaking anything if the
    // pool cannot cover that (the crate's allocator cannot fail gracefully).
    const WORST_CASE_TABLES: usize = 2 * 2 + 2;
    if table.translation().frames_left() < WORST_CASE_TABLES {
        return Err(MapError::AddressRange(VirtualAddress(ipa)));
    }

    // Break.
    table.map_range(&MemoryRegion::new(break_start, break_end), PhysicalAddress(0), Stage2Attributes::empty(), Constraints::empty())?;
    invalidate_stage1();
    // Make: what lay outside the range as it was, then the range itself.  If
    // that fails, the broken leaves get their old mappings back (whole
    // granules again: no new table needed) and the error is returned.
    let make = |table: &mut Mapping<PoolTranslation, R>| -> Result<(), MapError> {
        for (leaf, from, to) in [(first, break_start, ipa), (last, end, break_end)] {
            if let Some(l) = leaf.filter(|l| l.valid && from < to) {
                let flags = l.flags - Stage2Attributes::TABLE_OR_PAGE;
                table.map_range(&MemoryRegion::new(from, to), PhysicalAddress(l.pa + (from - l.start)), flags, Constraints::empty())?;
            }
        }
        if let Some(pa) = pa {
            table.map_range(&MemoryRegion::new(ipa, end), PhysicalAddress(pa), attrs, Constraints::empty())?;
        }
        Ok(())
    };
    make(table).inspect_err(|_| {
        for l in [first, last].into_iter().flatten().filter(|l| l.valid) {
            let flags = l.flags - Stage2Attributes::TABLE_OR_PAGE;
            let _ = table.map_range(&MemoryRegion::new(l.start, l.end), PhysicalAddress(l.pa), flags, Constraints::empty());
        }
    })
}

/// Looks up the output address of `va` (for tests and fault reports).
pub fn translate<R: TranslationRegime>(table: &Mapping<PoolTranslation, R>, va: usize) -> Option<usize> {
    let mut out = None;
    let _ = table.walk_range(&MemoryRegion::new(va, va + 1), &mut |_region, desc, level| {
        if desc.is_valid() && (level == 3 || !desc.flags().contains(R::Attributes::TABLE_OR_PAGE)) {
            let granule = aarch64_paging::paging::PAGE_SIZE << (9 * (3 - level));
            out = Some(desc.output_address().0 + (va & (granule - 1)));
        }
        Ok(())
    });
    out
}

/// TCR_EL2 for the EL2 (non-VHE) regime with the conventions above: T0SZ=25,
/// 4 KiB granule, inner-shareable write-back walks, PS from the caller
/// (DDI0487, ID_AA64MMFR0_EL1.PARange).
pub const fn tcr_el2(pa_range: u64) -> u64 {
    let t0sz = 64 - VA_BITS as u64;
    let irgn0 = 1 << 8; // WB RA WA
    let orgn0 = 1 << 10;
    let sh0 = 3 << 12; // inner shareable
    let tg0 = 0 << 14; // 4 KiB
    let ps = (pa_range & 7) << 16;
    let res1 = (1 << 31) | (1 << 23);
    t0sz | irgn0 | orgn0 | sh0 | tg0 | ps | res1
}

/// VTCR_EL2 (and the matching VSTCR_EL2 fields) for a 39-bit IPA space starting
/// at level 1: T0SZ=25, SL0=1, 4 KiB granule, WB inner-shareable walks.
pub const fn vtcr_el2(pa_range: u64) -> u64 {
    let t0sz = 64 - VA_BITS as u64;
    let sl0 = 1 << 6; // start at level 1 with 4 KiB granule
    let irgn0 = 1 << 8;
    let orgn0 = 1 << 10;
    let sh0 = 3 << 12;
    let tg0 = 0 << 14;
    let ps = (pa_range & 7) << 16;
    let res1 = 1 << 31;
    t0sz | sl0 | irgn0 | orgn0 | sh0 | tg0 | ps | res1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::pool::test_support::leaked_pool;

    #[test]
    fn el2_identity_map_with_blocks_and_pages() {
        let pool = leaked_pool(16);
        let mut t = new_table(pool, El2);
        map(&mut t, 0x4000_0000, 0x4000_0000, 0x20_0000, el2_attributes(MemKind::ReadWrite, false)).unwrap();
        map(&mut t, 0x0900_0000, 0x0900_0000, 0x1000, el2_attributes(MemKind::Device, true)).unwrap();
        assert_eq!(translate(&t, 0x4000_1234), Some(0x4000_1234));
        assert_eq!(translate(&t, 0x0900_0010), Some(0x0900_0010));
        assert_eq!(translate(&t, 0x0a00_0000), None);
        // a 2 MiB aligned range becomes one block: root + one level-2 table for the RAM,
        // plus level-2 and level-3 tables for the UART page.
        assert!(pool.lock().frames_in_use() <= 4, "used {}", pool.lock().frames_in_use());
    }

    /// A page remapped inside a live 2 MiB block: the block is broken
    /// (stage-1 invalidation requested once, after the break), the rest of it
    /// maps as before at page granularity, the page goes to its new PA.
    #[test]
    fn remap_splits_a_block_by_break_before_make() {
        let pool = leaked_pool(16);
        let mut t = new_table(pool, Stage2);
        let rw = stage2_attributes(MemKind::ReadWrite);
        map(&mut t, 0x4000_0000, 0x8000_0000, 0x40_0000, rw).unwrap();
        t.mark_active();
        let flushes = core::cell::Cell::new(0);
        remap_stage2_live(&mut t, 0x4020_3000, Some(0x9000_0000), 0x1000, stage2_attributes(MemKind::ReadOnly), &|| flushes.set(flushes.get() + 1)).unwrap();
        assert_eq!(flushes.get(), 1);
        assert_eq!(translate(&t, 0x4020_3010), Some(0x9000_0010));
        assert_eq!(translate(&t, 0x4020_2ff8), Some(0x8020_2ff8));
        assert_eq!(translate(&t, 0x4020_4000), Some(0x8020_4000));
        assert_eq!(translate(&t, 0x4020_0000), Some(0x8020_0000));
        assert_eq!(translate(&t, 0x403f_f000), Some(0x803f_f000));
        // The other block is untouched (still one block: no level-3 walk).
        assert_eq!(translate(&t, 0x4010_0000), Some(0x8010_0000));
        // Unmapping a page leaves a hole and nothing else.
        remap_stage2_live(&mut t, 0x4010_0000, None, 0x1000, rw, &|| ()).unwrap();
        assert_eq!(translate(&t, 0x4010_0000), None);
        assert_eq!(translate(&t, 0x4010_1000), Some(0x8010_1000));
        assert_eq!(translate(&t, 0x400f_f000), Some(0x800f_f000));
        // Back again: a range across the two former blocks.
        remap_stage2_live(&mut t, 0x401f_f000, Some(0xa000_0000), 0x2000, rw, &|| ()).unwrap();
        assert_eq!(translate(&t, 0x401f_f000), Some(0xa000_0000));
        assert_eq!(translate(&t, 0x4020_0000), Some(0xa000_1000));
        assert_eq!(translate(&t, 0x4020_1000), Some(0x8020_1000));
        t.mark_inactive();
    }

    /// Too few frames for the worst case: refused before anything changes.
    #[test]
    fn remap_refuses_when_the_pool_is_short() {
        let pool = leaked_pool(3);
        let mut t = new_table(pool, Stage2);
        let rw = stage2_attributes(MemKind::ReadWrite);
        map(&mut t, 0x4000_0000, 0x8000_0000, 0x20_0000, rw).unwrap();
        t.mark_active();
        assert!(remap_stage2_live(&mut t, 0x4000_1000, Some(0x9000_0000), 0x1000, rw, &|| panic!("broke a mapping")).is_err());
        assert_eq!(translate(&t, 0x4000_1000), Some(0x8000_1000));
        t.mark_inactive();
    }

    #[test]
    fn remap_refuses_unaligned_or_empty() {
        let pool = leaked_pool(8);
        let mut t = new_table(pool, Stage2);
        let rw = stage2_attributes(MemKind::ReadWrite);
        assert!(remap_stage2_live(&mut t, 0x4000_0800, Some(0x8000_0000), 0x1000, rw, &|| ()).is_err());
        assert!(remap_stage2_live(&mut t, 0x4000_0000, Some(0x8000_0800), 0x1000, rw, &|| ()).is_err());
        assert!(remap_stage2_live(&mut t, 0x4000_0000, Some(0x8000_0000), 0, rw, &|| ()).is_err());
        assert!(remap_stage2_live(&mut t, usize::MAX & !0xfff, Some(0x8000_0000), 0x2000, rw, &|| ()).is_err());
        // Into an empty table: a plain map.
        remap_stage2_live(&mut t, 0x4000_0000, Some(0x8000_0000), 0x1000, rw, &|| ()).unwrap();
        assert_eq!(translate(&t, 0x4000_0000), Some(0x8000_0000));
    }

    #[test]
    fn stage2_maps_ipa_to_other_pa() {
        let pool = leaked_pool(16);
        let mut t = new_table(pool, SecureStage2);
        map(&mut t, 0x1000_0000, 0x0e30_0000, 0x10_0000, stage2_attributes(MemKind::ReadWriteExec)).unwrap();
        assert_eq!(translate(&t, 0x1000_4000), Some(0x0e30_4000));
        assert_eq!(translate(&t, 0x1010_0000), None);
    }

    #[test]
    fn out_of_range_is_an_error() {
        let pool = leaked_pool(4);
        let mut t = new_table(pool, Stage2);
        assert!(map(&mut t, ADDRESS_SPACE_END, 0, 0x1000, stage2_attributes(MemKind::ReadWrite)).is_err());
        assert!(map(&mut t, usize::MAX - 0xfff, 0, 0x2000, stage2_attributes(MemKind::ReadWrite)).is_err());
    }

    #[test]
    fn ns_bit_only_when_asked() {
        assert!(el2_attributes(MemKind::Device, true).contains(El23Attributes::NS));
        assert!(!el2_attributes(MemKind::ReadWrite, false).contains(El23Attributes::NS));
    }

    #[test]
    fn tcr_fields() {
        assert_eq!(tcr_el2(2) & 0x3f, 25);
        assert_eq!((tcr_el2(2) >> 16) & 7, 2);
        assert_eq!((vtcr_el2(5) >> 6) & 3, 1);
    }
}
