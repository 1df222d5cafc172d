//! Where a partition may live: checks a partition manifest's memory and
//! device regions against the machine (the SPMC manifest's memory ranges)
//! and against everything already given out, so that each SP's Stage-2 maps
//! only its own memory: never the SPMC, never another SP (issue C, DEN0077
//! partition isolation).

use super::PartitionManifest;
use super::manifest::ATTR_NS;
use crate::manifest::{Range, Ranges, SpEntry};

/// Most ranges remembered as taken (the SPMC image, SP packages, SP regions).
pub const MAX_TAKEN: usize = 48;

/// Physical ranges already owned by someone.
#[derive(Clone, Copy, Debug)]
pub struct Taken {
    items: [Range; MAX_TAKEN],
    len: usize,
}

impl Default for Taken {
    fn default() -> Self {
        Self { items: [Range::default(); MAX_TAKEN], len: 0 }
    }
}

impl Taken {
    pub fn push(&mut self, r: Range) -> Result<(), &'static str> {
        let slot = self.items.get_mut(self.len).ok_or("too many memory ranges")?;
        *slot = r;
        self.len += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[Range] {
        &self.items[..self.len]
    }

    fn overlaps(&self, r: &Range) -> bool {
        self.as_slice().iter().any(|t| t.overlaps(r))
    }
}

/// Checks where SP `i` of the SPMC manifest lives ([`SpEntry::region`]:
/// its load address and `mem_size`) before anything maps it: inside Secure
/// memory (when the manifest names any), clear of the SPMC's image and of
/// every other SP's region.  A partition that fails is refused, the others boot.
pub fn check_sp_region(sps: &[SpEntry], i: usize, spmc: Range, secure: &Ranges) -> Result<Range, &'static str> {
    let own = sps.get(i).ok_or("no such partition")?.region();
    if own.base.checked_add(own.size).is_none() {
        return Err("partition memory wraps around");
    }
    if !secure.as_slice().is_empty() && !secure.contains(own.base, own.size) {
        return Err("partition memory (load_address + mem_size) outside Secure memory");
    }
    if own.overlaps(&spmc) {
        return Err("partition memory overlaps the SPMC");
    }
    if sps.iter().enumerate().any(|(j, o)| j != i && o.region().overlaps(&own)) {
        return Err("partition memory overlaps another partition's (load_address + mem_size)");
    }
    Ok(own)
}

/// Checks `pm`'s regions.  `own`: the SP's package region (it may put
/// regions inside it); `taken`: ranges of the SPMC and of other SPs;
/// `secure`/`ns`: the SPMC manifest's DRAM ranges.
pub fn check_regions(pm: &PartitionManifest, own: Range, taken: &Taken, secure: &Ranges, ns: &Ranges) -> Result<(), &'static str> {
    for r in pm.memory_regions() {
        let range = Range { base: r.base, size: r.size() };
        if r.attributes & ATTR_NS != 0 {
            // Non-secure memory in a Secure Stage-2 needs the NS descriptor bit; not done yet.
            return Err("memory region in the Non-secure PAS (not supported yet)");
        }
        if own.contains(range.base, range.size) {
            continue;
        }
        if !secure.contains(range.base, range.size) {
            return Err("memory region outside Secure memory");
        }
        if taken.overlaps(&range) {
            return Err("memory region overlaps the SPMC or another partition");
        }
    }
    for d in pm.device_regions() {
        let range = Range { base: d.region.base, size: d.region.size() };
        let in_dram = secure.as_slice().iter().chain(ns.as_slice()).any(|m| m.overlaps(&range));
        if in_dram {
            return Err("device region in DRAM");
        }
        if taken.overlaps(&range) {
            return Err("device region already given to another partition");
        }
    }
    Ok(())
}

/// The SP's own idea of its memory (`mem-size`, OP-TEE's property) must
/// fit in what the SPMC gives it (`own`: load_address + the SPMC manifest
/// node's `mem_size`): beyond it the SP would touch memory its Stage-2 does
/// not map, or that is another partition's.
pub fn check_mem_size(pm: &PartitionManifest, own: Range) -> Result<(), &'static str> {
    match pm.mem_size {
        Some(n) if n > own.size => Err("partition manifest mem-size larger than the partition's memory (SPMC manifest mem_size)"),
        _ => Ok(()),
    }
}

/// Records what `pm` now owns (its package region and its regions).
pub fn take(pm: &PartitionManifest, own: Range, taken: &mut Taken) -> Result<(), &'static str> {
    taken.push(own)?;
    for r in pm.memory_regions() {
        let range = Range { base: r.base, size: r.size() };
        if !own.contains(range.base, range.size) {
            taken.push(range)?;
        }
    }
    for d in pm.device_regions() {
        taken.push(Range { base: d.region.base, size: d.region.size() })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::PartitionManifest;

    const MP: &[u8] = include_bytes!("../../tests/data/mp.dtb");

    fn machine() -> (Ranges, Ranges) {
        let mut s = Ranges::default();
        s.push(Range { base: 0x0e10_0000, size: 0xdf_b000 }).unwrap();
        let mut n = Ranges::default();
        n.push(Range { base: 0x4000_0000, size: 0x10_0000 }).unwrap();
        (s, n)
    }

    #[test]
    fn partition_memory_is_checked_before_it_is_mapped() {
        let (s, _) = machine();
        let spmc = Range { base: 0x0e10_0000, size: 0x20_0000 };
        let m = crate::manifest::SpmcManifest::parse(include_bytes!("../../tests/data/spmc_mem_size.dtb")).unwrap();
        let sps = m.sps();
        assert_eq!(check_sp_region(sps, 0, spmc, &s), Ok(Range { base: 0x0e30_0000, size: 0x10_0000 }));
        assert_eq!(check_sp_region(sps, 1, spmc, &s), Ok(Range { base: 0x0e40_0000, size: 0x20_0000 }), "2 MiB");
        assert_eq!(check_sp_region(sps, 2, spmc, &s), Ok(Range { base: 0x0e60_0000, size: 0x2000 }));
        // 2 MiB from 0x0e300000 runs into the next partition.
        let mut big = [sps[0], sps[1]];
        big[0].mem_size = Some(0x20_0000);
        assert!(check_sp_region(&big, 0, spmc, &s).is_err());
        assert!(check_sp_region(&big, 1, spmc, &s).is_err(), "both ways");
        // Past the end of Secure memory; over the SPMC.
        let mut far = [sps[0]];
        far[0].mem_size = Some(0x100_0000);
        assert_eq!(check_sp_region(&far, 0, spmc, &s), Err("partition memory (load_address + mem_size) outside Secure memory"));
        far[0].load_address = 0x0e20_0000;
        far[0].mem_size = Some(0x1000);
        assert_eq!(check_sp_region(&far, 0, spmc, &s), Err("partition memory overlaps the SPMC"));
        assert!(check_sp_region(&far, 1, spmc, &s).is_err());
    }

    /// OP-TEE's `mem-size` (6 MiB) against the memory the SPMC manifest gives it.
    #[test]
    fn sp_mem_size_fits_its_partition() {
        let pm = PartitionManifest::parse(include_bytes!("../../tests/data/optee.dtb"), 4).unwrap();
        assert_eq!(check_mem_size(&pm, Range { base: 0x0e80_0000, size: 0x60_0000 }), Ok(()));
        assert_eq!(check_mem_size(&pm, Range { base: 0x0e80_0000, size: 0x70_0000 }), Ok(()), "smaller is fine");
        assert!(check_mem_size(&pm, Range { base: 0x0e80_0000, size: 0x10_0000 }).is_err(), "the 1 MiB default");
        assert_eq!(check_mem_size(&PartitionManifest::parse(MP, 4).unwrap(), Range { base: 0, size: 0x1000 }), Ok(()), "none: nothing to check");
    }

    #[test]
    fn regions_are_checked_against_others() {
        let pm = PartitionManifest::parse(MP, 4).unwrap();
        let (s, n) = machine();
        let own = Range { base: 0x0e40_0000, size: 0x10_0000 };
        let mut taken = Taken::default();
        taken.push(Range { base: 0x0e10_0000, size: 0x20_0000 }).unwrap(); // the SPMC
        taken.push(Range { base: 0x0e30_0000, size: 0x10_0000 }).unwrap(); // echo
        assert_eq!(check_regions(&pm, own, &taken, &s, &n), Ok(()));
        take(&pm, own, &mut taken).unwrap();
        // The same manifest again (another SP claiming the same regions) is refused.
        assert!(check_regions(&pm, Range { base: 0x0e50_0000, size: 0x10_0000 }, &taken, &s, &n).is_err());
        // A region over the SPMC's image.
        let mut t2 = Taken::default();
        t2.push(Range { base: 0x0e60_0000, size: 0x1000 }).unwrap();
        assert_eq!(check_regions(&pm, own, &t2, &s, &n), Err("memory region overlaps the SPMC or another partition"));
        // Outside Secure memory.
        let mut tiny = Ranges::default();
        tiny.push(Range { base: 0x0e10_0000, size: 0x1000 }).unwrap();
        assert_eq!(check_regions(&pm, own, &Taken::default(), &tiny, &n), Err("memory region outside Secure memory"));
    }
}
