//! The SPMC manifest (TF-A's TOS_FW_CONFIG), read once at cold boot.
//!
//! Layout (TF-A `docs/components/secure-partition-manager.rst` "SPMC manifest",
//! and the Hafnium conventions for the parts only the SPMC reads):
//! - `/` compatible `"arm,ffa-core-manifest-1.0"`;
//! - `/attribute`: `spmc_id` (bit 15 set: a secure endpoint, DEN0077 partition identification),
//!   `maj_ver`, `min_ver` (the FF-A version the SPMC was configured for);
//! - `/hypervisor/*` with `is_ffa_partition`: one node per SP package with its
//!   `load_address` (and an optional `debug_name`);
//! - signed SP packages (Quadrant's extension, docs/spmc.md): the property
//!   `quadrant,trusted-keys` (N × 32-byte ed25519 public keys, N = 1..4) in
//!   `/hypervisor` trusts its keys for every SP, in a `/hypervisor/*` node for
//!   that SP only (instead of the list).  With a key anywhere, every SP must be
//!   signed by a key trusted for it; with none, no signature is checked
//!   (Hafnium's behaviour);
//! - `memory@*` nodes: `device_type = "memory"` (Secure DRAM) or `"ns-memory"`
//!   (Normal-world DRAM, where NS RX/TX buffers may live).
//!
//! Everything is copied into plain data ([`SpmcManifest`]); the DTB is not
//! looked at again.  Malformed input gives a [`ManifestError`], never a panic.

use crate::name::Name;
use crate::partition::signature::KeyList;
use shared::fdt::{self, FdtNode};

/// Most SPs this SPMC loads.
pub const MAX_SPS: usize = 8;
/// Most memory ranges of each kind kept from the manifest.
pub const MAX_RANGES: usize = 4;

/// A physical address range `[base, base + size)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    pub base: u64,
    pub size: u64,
}

impl Range {
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// Whether `[base, base + size)` lies entirely inside this range.
    pub fn contains(&self, base: u64, size: u64) -> bool {
        match base.checked_add(size) {
            Some(end) => base >= self.base && end <= self.end(),
            None => false,
        }
    }

    pub fn overlaps(&self, other: &Range) -> bool {
        self.base < other.end() && other.base < self.end()
    }
}

/// Up to `MAX_RANGES` ranges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ranges {
    items: [Range; MAX_RANGES],
    len: usize,
}

impl Ranges {
    pub fn push(&mut self, r: Range) -> Result<(), ManifestError> {
        let slot = self.items.get_mut(self.len).ok_or(ManifestError::TooMany("memory ranges"))?;
        *slot = r;
        self.len += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[Range] {
        &self.items[..self.len]
    }

    /// Whether `[base, base + size)` is inside one of the ranges.
    pub fn contains(&self, base: u64, size: u64) -> bool {
        self.as_slice().iter().any(|r| r.contains(base, size))
    }
}

/// One SP package the SPMC must load, from the `hypervisor` node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpEntry {
    pub debug_name: Name,
    /// Physical address of the SP package (its "SPKG" header).
    pub load_address: u64,
    /// The partition id the SPMC gives it, as Hafnium does: node `vmN` is
    /// partition 0x8000 + N (Hafnium's SPMC numbers its `vm1`, `vm2`, ...
    /// nodes from HF_VM_ID_OFFSET = 0x8001); a node named otherwise gets
    /// 0x8001 + its position among the partitions.
    pub id: u16,
    /// Its memory from `load_address` on (Hafnium's `mem_size`, rounded up to
    /// whole pages): package, image, .bss, stacks, RX/TX; None: not given.
    pub mem_size: Option<u64>,
    /// The keys trusted to sign this SP's package: its own
    /// `quadrant,trusted-keys`, else the `hypervisor` node's (maybe none).
    pub keys: KeyList,
}

/// A partition's memory when the SPMC manifest gives no `mem_size`: sptool's
/// default package size (`sp_layout.json` "size", 1 MiB).
pub const DEFAULT_SP_MEM_SIZE: u64 = 0x10_0000;

impl SpEntry {
    /// Where the partition lives: `[load_address, + mem_size)`, or 1 MiB
    /// ([`DEFAULT_SP_MEM_SIZE`]) without a `mem_size`.
    pub fn region(&self) -> Range {
        Range { base: self.load_address, size: self.mem_size.unwrap_or(DEFAULT_SP_MEM_SIZE) }
    }
}

/// Hafnium's SPMC: the partition of node `vmN` is 0x8000 + N.
pub const HAFNIUM_VM_ID_BASE: u16 = 0x8000;

/// The id of the partition of node `name`, the `index`-th partition.
fn assigned_id(name: &str, index: usize) -> u16 {
    let from_name = name.strip_prefix("vm").and_then(|n| n.parse::<u16>().ok()).filter(|n| (1..0x7fff).contains(n));
    match from_name {
        Some(n) => HAFNIUM_VM_ID_BASE + n,
        None => HAFNIUM_VM_ID_BASE + 1 + index as u16,
    }
}

/// The property listing trusted SP signing keys.
pub const TRUSTED_KEYS: &str = "quadrant,trusted-keys";

fn prop_keys(node: &FdtNode) -> Result<Option<KeyList>, ManifestError> {
    match node.property(TRUSTED_KEYS) {
        None => Ok(None),
        Some(p) => KeyList::from_bytes(p.value).map(Some).ok_or(ManifestError::Invalid(TRUSTED_KEYS)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpmcManifest {
    pub spmc_id: u16,
    pub maj_ver: u16,
    pub min_ver: u16,
    sps: [SpEntry; MAX_SPS],
    sp_count: usize,
    pub secure_memory: Ranges,
    pub ns_memory: Ranges,
    /// Whether the manifest lists any trusted key: then every SP package
    /// must carry a signature by a key trusted for it.
    pub verify_signatures: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// The blob is not a well-formed DTB.
    BadDtb,
    /// Root `compatible` is not the one the binding requires.
    NotCompatible,
    /// A mandatory node or property is missing.
    Missing(&'static str),
    /// A property has a value outside what the binding allows.
    Invalid(&'static str),
    /// More entries than this implementation supports.
    TooMany(&'static str),
    /// A property or node the binding does not define (or we do not implement).
    Unknown(Name),
}

impl core::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            Self::BadDtb => write!(f, "not a valid DTB"),
            Self::NotCompatible => write!(f, "wrong or missing compatible"),
            Self::Missing(what) => write!(f, "missing {what}"),
            Self::Invalid(what) => write!(f, "invalid {what}"),
            Self::TooMany(what) => write!(f, "too many {what}"),
            Self::Unknown(name) => write!(f, "unknown or unsupported field `{name}`"),
        }
    }
}

/// A u32 property (one cell).
pub(crate) fn prop_u32(node: &FdtNode, name: &'static str) -> Result<Option<u32>, ManifestError> {
    match node.property(name) {
        None => Ok(None),
        Some(p) => match p.value.try_into() {
            Ok(b) => Ok(Some(u32::from_be_bytes(b))),
            Err(_) => Err(ManifestError::Invalid(name)),
        },
    }
}

/// A u64 property of one or two cells.
pub(crate) fn prop_addr(node: &FdtNode, name: &'static str) -> Result<Option<u64>, ManifestError> {
    match node.property(name) {
        None => Ok(None),
        Some(_) => fdt::prop_u64(node, name).map(Some).ok_or(ManifestError::Invalid(name)),
    }
}

pub(crate) fn prop_str<'a>(node: &FdtNode<'_, 'a>, name: &'static str) -> Result<Option<&'a str>, ManifestError> {
    match node.property(name) {
        None => Ok(None),
        Some(p) => p.as_str().map(Some).ok_or(ManifestError::Invalid(name)),
    }
}

fn be_cells(bytes: &[u8], cells: usize) -> Option<u64> {
    match cells {
        1 => Some(u32::from_be_bytes(bytes.try_into().ok()?) as u64),
        2 => Some(u64::from_be_bytes(bytes.try_into().ok()?)),
        _ => None,
    }
}

impl SpmcManifest {
    /// Parses a manifest blob (already copied or mapped by the caller).
    pub fn parse(blob: &[u8]) -> Result<Self, ManifestError> {
        let dt = fdt::parse(blob).map_err(|_| ManifestError::BadDtb)?;
        let root = dt.find_node("/").ok_or(ManifestError::BadDtb)?;
        match prop_str(&root, "compatible")? {
            Some(c) if c == "arm,ffa-core-manifest-1.0" => {}
            _ => return Err(ManifestError::NotCompatible),
        }
        let attr = dt.find_node("/attribute").ok_or(ManifestError::Missing("attribute node"))?;
        let spmc_id = prop_u32(&attr, "spmc_id")?.ok_or(ManifestError::Missing("spmc_id"))?;
        // DEN0077 partition identification: secure endpoint ids have bit 15 set; ids are 16 bits.
        if spmc_id > 0xffff || spmc_id & 0x8000 == 0 {
            return Err(ManifestError::Invalid("spmc_id"));
        }
        let maj_ver = prop_u32(&attr, "maj_ver")?.ok_or(ManifestError::Missing("maj_ver"))?;
        let min_ver = prop_u32(&attr, "min_ver")?.ok_or(ManifestError::Missing("min_ver"))?;
        if maj_ver != 1 || min_ver > 0xffff {
            return Err(ManifestError::Invalid("maj_ver/min_ver"));
        }
        let mut m = SpmcManifest {
            spmc_id: spmc_id as u16,
            maj_ver: maj_ver as u16,
            min_ver: min_ver as u16,
            sps: [SpEntry::default(); MAX_SPS],
            sp_count: 0,
            secure_memory: Ranges::default(),
            ns_memory: Ranges::default(),
            verify_signatures: false,
        };
        if let Some(hyp) = dt.find_node("/hypervisor") {
            let all = prop_keys(&hyp)?;
            m.verify_signatures |= all.is_some();
            for vm in hyp.children() {
                if vm.property("is_ffa_partition").is_none() {
                    continue;
                }
                let load_address = prop_addr(&vm, "load_address")?.ok_or(ManifestError::Missing("load_address"))?;
                if load_address % 0x1000 != 0 {
                    return Err(ManifestError::Invalid("load_address"));
                }
                let name = prop_str(&vm, "debug_name")?.unwrap_or(vm.name);
                // Hafnium: the partition's memory size, rounded up to pages
                // (one or two cells here).
                let mem_size = match prop_addr(&vm, "mem_size")? {
                    None => None,
                    Some(0) => return Err(ManifestError::Invalid("mem_size")),
                    Some(n) => Some(n.checked_next_multiple_of(0x1000).filter(|&n| load_address.checked_add(n).is_some()).ok_or(ManifestError::Invalid("mem_size"))?),
                };
                let own = prop_keys(&vm)?;
                m.verify_signatures |= own.is_some();
                let keys = own.or(all).unwrap_or_default();
                let slot = m.sps.get_mut(m.sp_count).ok_or(ManifestError::TooMany("partitions"))?;
                *slot = SpEntry { debug_name: Name::new(name), load_address, id: assigned_id(vm.name, m.sp_count), mem_size, keys };
                m.sp_count += 1;
            }
        }
        let cells = root.cell_sizes();
        let (ac, sc) = (cells.address_cells, cells.size_cells);
        if !(1..=2).contains(&ac) || !(1..=2).contains(&sc) {
            return Err(ManifestError::Invalid("#address-cells/#size-cells"));
        }
        for node in root.children() {
            let kind = match prop_str(&node, "device_type")? {
                Some("memory") => &mut m.secure_memory,
                Some("ns-memory") => &mut m.ns_memory,
                _ => continue,
            };
            let reg = node.property("reg").ok_or(ManifestError::Missing("memory reg"))?;
            let entry = (ac + sc) * 4;
            if reg.value.is_empty() || reg.value.len() % entry != 0 {
                return Err(ManifestError::Invalid("memory reg"));
            }
            for chunk in reg.value.chunks_exact(entry) {
                let base = be_cells(&chunk[..ac * 4], ac).ok_or(ManifestError::Invalid("memory reg"))?;
                let size = be_cells(&chunk[ac * 4..], sc).ok_or(ManifestError::Invalid("memory reg"))?;
                if base.checked_add(size).is_none() {
                    return Err(ManifestError::Invalid("memory reg"));
                }
                kind.push(Range { base, size })?;
            }
        }
        Ok(m)
    }

    pub fn sps(&self) -> &[SpEntry] {
        &self.sps[..self.sp_count]
    }

    /// The FF-A version encoding of `maj_ver.min_ver` (DEN0077 v1.2, FFA_VERSION).
    pub fn version(&self) -> u32 {
        ((self.maj_ver as u32) << 16) | self.min_ver as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] = include_bytes!("../tests/data/spmc_manifest.dtb");

    #[test]
    fn parses_the_project_manifest() {
        let m = SpmcManifest::parse(GOOD).unwrap();
        assert_eq!(m.spmc_id, 0x8000);
        assert_eq!((m.maj_ver, m.min_ver), (1, 2));
        assert_eq!(m.sps().len(), 3);
        let names: Vec<(&str, u64)> = m.sps().iter().map(|s| (s.debug_name.as_str(), s.load_address)).collect();
        assert_eq!(names, [("echo", 0x0e30_0000), ("mp", 0x0e40_0000), ("isolation", 0x0e50_0000)]);
        assert!(m.secure_memory.contains(0x0e30_0000, 0x10_0000));
        assert!(m.ns_memory.contains(0x6000_0000, 0x1000));
        assert!(!m.ns_memory.contains(0x4010_0000, 0x1000), "realm PAS is not NS memory");
        let ids: Vec<u16> = m.sps().iter().map(|s| s.id).collect();
        assert_eq!(ids, [0x8001, 0x8002, 0x8003], "vm1.. are 0x8001.., as Hafnium numbers them");
        assert!(!m.verify_signatures, "no key: Hafnium's behaviour, no signature checked");
        assert!(m.sps().iter().all(|s| s.keys.is_empty()));
    }

    #[test]
    fn mem_size_sizes_the_partition() {
        let b = include_bytes!("../tests/data/spmc_mem_size.dtb");
        let m = SpmcManifest::parse(b).unwrap();
        let r: Vec<(u64, Option<u64>, u64)> = m.sps().iter().map(|s| (s.load_address, s.mem_size, s.region().size)).collect();
        assert_eq!(r, [(0x0e30_0000, None, 0x10_0000), (0x0e40_0000, Some(0x20_0000), 0x20_0000), (0x0e60_0000, Some(0x2000), 0x2000)], "none, 2 MiB, 0x1234 rounded up");
        assert_eq!(SpmcManifest::parse(include_bytes!("../tests/data/spmc_mem_size_zero.dtb")), Err(ManifestError::Invalid("mem_size")));
        assert_eq!(SpmcManifest::parse(include_bytes!("../tests/data/spmc_mem_size_huge.dtb")), Err(ManifestError::Invalid("mem_size")));
    }

    #[test]
    fn ids_come_from_the_node_names_as_hafnium_assigns_them() {
        assert_eq!(assigned_id("vm1", 0), 0x8001);
        assert_eq!(assigned_id("vm7", 0), 0x8007);
        assert_eq!(assigned_id("echo", 2), 0x8003, "not a vmN node: its position");
        assert_eq!(assigned_id("vm0", 1), 0x8002);
        assert_eq!(assigned_id("vm99999", 0), 0x8001);
        assert_eq!(assigned_id("vmx", 0), 0x8001);
    }

    /// `spmc_keys.dts`: two keys for every SP, and echo with a key of its own.
    #[test]
    fn trusted_keys_per_list_and_per_partition() {
        let m = SpmcManifest::parse(include_bytes!("../tests/data/spmc_keys.dtb")).unwrap();
        assert!(m.verify_signatures);
        let k = |b: u8| [b; 32];
        let keys: Vec<(&str, Vec<[u8; 32]>)> = m.sps().iter().map(|s| (s.debug_name.as_str(), s.keys.as_slice().to_vec())).collect();
        assert_eq!(keys, [("echo", vec![k(0x33)]), ("mp", vec![k(0x11), k(0x22)])]);
    }

    /// Only one SP has a key: signatures are still required of all (the others
    /// have no trusted key and are refused at load).
    #[test]
    fn one_partition_key_turns_checking_on() {
        let m = SpmcManifest::parse(include_bytes!("../tests/data/spmc_one_key.dtb")).unwrap();
        assert!(m.verify_signatures);
        assert_eq!(m.sps()[0].keys.as_slice().len(), 1);
        assert!(m.sps()[1].keys.is_empty());
    }

    #[test]
    fn malformed_key_lists_are_errors() {
        for b in [&include_bytes!("../tests/data/spmc_bad_keys.dtb")[..], &include_bytes!("../tests/data/spmc_too_many_keys.dtb")[..], &include_bytes!("../tests/data/spmc_empty_keys.dtb")[..]] {
            assert_eq!(SpmcManifest::parse(b), Err(ManifestError::Invalid(TRUSTED_KEYS)));
        }
    }

    #[test]
    fn missing_attribute_is_an_error() {
        let b = include_bytes!("../tests/data/spmc_no_attribute.dtb");
        assert_eq!(SpmcManifest::parse(b), Err(ManifestError::Missing("attribute node")));
    }

    #[test]
    fn non_secure_spmc_id_is_rejected() {
        let b = include_bytes!("../tests/data/spmc_bad_id.dtb");
        assert_eq!(SpmcManifest::parse(b), Err(ManifestError::Invalid("spmc_id")));
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(SpmcManifest::parse(&[0u8; 64]), Err(ManifestError::BadDtb));
        assert_eq!(SpmcManifest::parse(&GOOD[..100]), Err(ManifestError::BadDtb));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_handled() {
        for len in 0..GOOD.len() {
            let _ = SpmcManifest::parse(&GOOD[..len]);
        }
        for i in 0..GOOD.len() {
            for bit in 0..8 {
                let mut c = GOOD.to_vec();
                c[i] ^= 1 << bit;
                let _ = SpmcManifest::parse(&c);
            }
        }
    }
}
