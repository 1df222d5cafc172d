//! Realm Translation Tables (DEN0137 RMM 1.0, A5.5 "Realm Translation
//! Table"): the RTT entries are the Realm's Stage-2 descriptors themselves
//! (VTTBR_EL2 points at the starting-level RTT), and entries the hardware
//! ignores (invalid ones) carry the RMM's state in software bits.
//!
//! Encoding of an entry (4 KiB granule, levels 0..=3):
//! - valid (bit 0 = 1): TABLE (bits[1:0] = 0b11 at levels 0..2); ASSIGNED
//!   with RIPAS RAM (page 0b11 at level 3, block 0b01 at 1..2, NS = 0, Normal
//!   WB, RW, AF); ASSIGNED_NS (same shapes, NS (bit 55, the Realm Stage-2 NS
//!   bit of FEAT_RME) = 1, Host's MemAttr/S2AP).
//! - invalid (bit 0 = 0): bits[4:2] HIPAS (0 UNASSIGNED, 1 ASSIGNED,
//!   2 UNASSIGNED_NS), bits[6:5] RIPAS (0 EMPTY, 1 RAM, 2 DESTROYED), and for
//!   ASSIGNED (RIPAS EMPTY or DESTROYED) the PA in bits[47:12].
//! A zero entry is UNASSIGNED, RIPAS EMPTY.

use crate::mem::{self, Memory};

pub const ENTRIES: usize = 512;
pub type Table = [u64; ENTRIES];

pub const MIN_IPA_BITS: u64 = 32;
pub const MAX_IPA_BITS: u64 = 48;
/// Most concatenated starting-level tables the architecture allows (DDI0487, VTCR_EL2.SL0 and concatenated translation tables).
pub const MAX_START_TABLES: u64 = 16;

/// RIPAS (DEN0137 RMM 1.0, Realm IPA state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ripas {
    Empty = 0,
    Ram = 1,
    Destroyed = 2,
}

impl Ripas {
    pub fn from_bits(v: u64) -> Option<Self> {
        match v {
            0 => Some(Self::Empty),
            1 => Some(Self::Ram),
            2 => Some(Self::Destroyed),
            _ => None,
        }
    }
}

/// One RTT entry, decoded (DEN0137 HIPAS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Unassigned(Ripas),
    Assigned { pa: u64, ripas: Ripas },
    Table(u64),
    UnassignedNs,
    /// `attrs` = the Host's MemAttr (bits 5:2) and S2AP (bits 7:6).
    AssignedNs { pa: u64, attrs: u64 },
}

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const OA_MASK: u64 = 0x0000_ffff_ffff_f000;
const MEMATTR_NORMAL_WB: u64 = 0xf << 2;
const S2AP_RW: u64 = 0b11 << 6;
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const NS: u64 = 1 << 55;
/// The Host-controlled attributes of an unprotected mapping: MemAttr and S2AP.
pub const HOST_ATTR_MASK: u64 = (0xf << 2) | (0b11 << 6);
const HIPAS_SHIFT: u32 = 2;
const RIPAS_SHIFT: u32 = 5;

pub const fn level_shift(level: i64) -> u32 {
    (12 + 9 * (3 - level)) as u32
}

pub const fn block_size(level: i64) -> u64 {
    1 << level_shift(level)
}

impl Entry {
    pub fn decode(raw: u64, level: i64) -> Self {
        if raw & VALID != 0 {
            if level < 3 && raw & TABLE_OR_PAGE != 0 {
                return Self::Table(raw & OA_MASK);
            }
            if raw & NS != 0 {
                return Self::AssignedNs { pa: raw & OA_MASK, attrs: raw & HOST_ATTR_MASK };
            }
            return Self::Assigned { pa: raw & OA_MASK, ripas: Ripas::Ram };
        }
        let ripas = Ripas::from_bits((raw >> RIPAS_SHIFT) & 3).unwrap_or(Ripas::Empty);
        match (raw >> HIPAS_SHIFT) & 7 {
            1 => Self::Assigned { pa: raw & OA_MASK, ripas },
            2 => Self::UnassignedNs,
            _ => Self::Unassigned(ripas),
        }
    }

    pub fn encode(self, level: i64) -> u64 {
        let leaf = if level == 3 { VALID | TABLE_OR_PAGE } else { VALID };
        match self {
            Self::Unassigned(r) => (r as u64) << RIPAS_SHIFT,
            Self::Assigned { pa, ripas: Ripas::Ram } => leaf | pa | MEMATTR_NORMAL_WB | S2AP_RW | SH_INNER | AF,
            Self::Assigned { pa, ripas } => (1 << HIPAS_SHIFT) | ((ripas as u64) << RIPAS_SHIFT) | pa,
            Self::Table(pa) => VALID | TABLE_OR_PAGE | pa,
            Self::UnassignedNs => 2 << HIPAS_SHIFT,
            Self::AssignedNs { pa, attrs } => leaf | pa | (attrs & HOST_ATTR_MASK) | SH_INNER | AF | NS,
        }
    }

    /// "Live" entries keep their RTT from being destroyed or the Realm from
    /// being destroyed (DEN0137 RMI_RTT_DESTROY): anything but UNASSIGNED(_NS).
    pub fn is_live(self) -> bool {
        !matches!(self, Self::Unassigned(_) | Self::UnassignedNs)
    }

    /// RmiRttEntryState for RMI_RTT_READ_ENTRY.
    pub fn rmi_state(self) -> u64 {
        use shared::abi::rmi::*;
        match self {
            Self::Unassigned(_) | Self::UnassignedNs => RMI_UNASSIGNED,
            Self::Assigned { .. } | Self::AssignedNs { .. } => RMI_ASSIGNED,
            Self::Table(_) => RMI_TABLE,
        }
    }

    pub fn ripas(self) -> Ripas {
        match self {
            Self::Unassigned(r) | Self::Assigned { ripas: r, .. } => r,
            _ => Ripas::Empty,
        }
    }
}

/// The shape of a Realm's RTT tree (from RmiRealmParams).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RttConfig {
    pub ipa_bits: u64,
    pub level_start: i64,
    pub num_start: u64,
    pub base: u64,
}

/// Number of concatenated starting-level tables for `ipa_bits` starting at
/// `level`, or `None` if the architecture does not allow it (4 KiB granule,
/// no LPA2): the starting level must resolve at least one bit, no more than
/// 16 tables may be concatenated, level 0 cannot be concatenated, and a
/// walk cannot start at level 3.
pub fn start_tables(ipa_bits: u64, level: i64) -> Option<u64> {
    if !(MIN_IPA_BITS..=MAX_IPA_BITS).contains(&ipa_bits) || !(0..=2).contains(&level) {
        return None;
    }
    let shift = level_shift(level) as u64;
    if ipa_bits <= shift {
        return None;
    }
    let bits = ipa_bits - shift;
    let tables = if bits > 9 { 1u64 << (bits - 9) } else { 1 };
    if tables > MAX_START_TABLES || (level == 0 && tables > 1) {
        return None;
    }
    Some(tables)
}

impl RttConfig {
    /// Whether `ipa` is in the unprotected half (IPA bit `ipa_bits - 1` set).
    pub fn is_unprotected(&self, ipa: u64) -> bool {
        ipa & (1 << (self.ipa_bits - 1)) != 0
    }

    pub fn ipa_in_range(&self, ipa: u64) -> bool {
        ipa >> self.ipa_bits == 0
    }

    /// Initial contents of starting-level table `i`: protected half
    /// UNASSIGNED/EMPTY, unprotected half UNASSIGNED_NS.
    pub fn init_start_table(&self, i: u64, t: &mut Table) {
        let size = block_size(self.level_start);
        for (j, e) in t.iter_mut().enumerate() {
            let ipa = (i * ENTRIES as u64 + j as u64) * size;
            *e = if self.is_unprotected(ipa) { Entry::UnassignedNs.encode(self.level_start) } else { 0 };
        }
    }

    /// VTCR_EL2 for this tree: T0SZ, SL0 (4 KiB granule: 0 → level 2, 1 →
    /// level 1, 2 → level 0), inner-shareable write-back walks, PS from
    /// `pa_range`, and the RES1 bit 31.
    pub fn vtcr(&self, pa_range: u64) -> u64 {
        let t0sz = 64 - self.ipa_bits;
        let sl0 = (2 - self.level_start) as u64;
        // VS (bit 19): 16-bit VMIDs.
        t0sz | sl0 << 6 | 1 << 8 | 1 << 10 | 3 << 12 | (pa_range & 7) << 16 | 1 << 19 | 1 << 31
    }
}

/// Where a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// Level of the entry the walk ended at.
    pub level: i64,
    /// PA of the RTT holding it, and its index there.
    pub rtt: u64,
    pub index: usize,
    pub entry: Entry,
}

impl Walk {
    /// IPA range the entry covers.
    pub fn base(&self, ipa: u64) -> u64 {
        ipa & !(block_size(self.level) - 1)
    }
}

/// Walks the tree for `ipa` down to `target` level at most, stopping at the
/// first entry that is not a TABLE.
///
/// # Safety
/// The caller holds the Realm's RD lock (which protects its RTTs); `ipa` is in range.
pub unsafe fn walk(m: &dyn Memory, cfg: &RttConfig, ipa: u64, target: i64) -> Walk {
    let mut level = cfg.level_start;
    let idx = (ipa >> level_shift(level)) as usize;
    let mut rtt = cfg.base + (idx / ENTRIES) as u64 * 0x1000;
    let mut index = idx % ENTRIES;
    loop {
        // SAFETY: RTT granules of this Realm, protected by the RD lock held by the caller.
        let t: &mut Table = unsafe { mem::realm(m, rtt) };
        let entry = Entry::decode(t[index], level);
        match entry {
            Entry::Table(next) if level < target => {
                level += 1;
                rtt = next;
                index = ((ipa >> level_shift(level)) as usize) % ENTRIES;
            }
            _ => return Walk { level, rtt, index, entry },
        }
    }
}

/// Writes the entry a walk found.
///
/// # Safety
/// As [`walk`].
pub unsafe fn set(m: &dyn Memory, w: &Walk, e: Entry) {
    // SAFETY: per the contract.
    let t: &mut Table = unsafe { mem::realm(m, w.rtt) };
    t[w.index] = e.encode(w.level);
}

/// The table at `pa`.
///
/// # Safety
/// As [`walk`], and `pa` is one of the Realm's RTTs.
#[allow(clippy::mut_from_ref, reason = "exclusivity comes from the RD/RTT locks the caller holds (# Safety), not from `m`")]
pub unsafe fn table<'m>(m: &'m dyn Memory, pa: u64) -> &'m mut Table {
    // SAFETY: per the contract.
    unsafe { mem::realm(m, pa) }
}

/// Contents of a new RTT at `level` that replaces the parent entry `parent`
/// covering `base` (DEN0137 "RTT unfold"): the parent's state in every entry,
/// a block split into contiguous pages.
pub fn unfold(parent: Entry, level: i64, t: &mut Table) {
    let size = block_size(level);
    for (i, e) in t.iter_mut().enumerate() {
        let off = i as u64 * size;
        *e = match parent {
            Entry::Assigned { pa, ripas } => Entry::Assigned { pa: pa + off, ripas },
            Entry::AssignedNs { pa, attrs } => Entry::AssignedNs { pa: pa + off, attrs },
            other => other,
        }
        .encode(level);
    }
}

/// The single entry that can replace RTT `t` at `level` in its parent
/// (DEN0137 "RTT fold"): all entries the same unassigned state, or all
/// assigned to contiguous, aligned memory with the same RIPAS/attributes.
pub fn fold(t: &Table, level: i64) -> Option<Entry> {
    let first = Entry::decode(t[0], level);
    let size = block_size(level);
    let parent_size = size * ENTRIES as u64;
    let same = |f: &dyn Fn(usize, Entry) -> bool| t.iter().enumerate().all(|(i, &r)| f(i, Entry::decode(r, level)));
    match first {
        Entry::Unassigned(_) | Entry::UnassignedNs => same(&|_, e| e == first).then_some(first),
        Entry::Assigned { pa, ripas } if pa % parent_size == 0 => {
            same(&|i, e| e == Entry::Assigned { pa: pa + i as u64 * size, ripas }).then_some(first)
        }
        Entry::AssignedNs { pa, attrs } if pa % parent_size == 0 => {
            same(&|i, e| e == Entry::AssignedNs { pa: pa + i as u64 * size, attrs }).then_some(first)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip() {
        for level in 1..=3 {
            for e in [
                Entry::Unassigned(Ripas::Empty),
                Entry::Unassigned(Ripas::Ram),
                Entry::Unassigned(Ripas::Destroyed),
                Entry::Assigned { pa: 0x8020_0000, ripas: Ripas::Ram },
                Entry::Assigned { pa: 0x8020_0000, ripas: Ripas::Empty },
                Entry::Assigned { pa: 0x8020_0000, ripas: Ripas::Destroyed },
                Entry::UnassignedNs,
                Entry::AssignedNs { pa: 0x0900_0000 & !0x1f_ffff, attrs: 0b11 << 6 },
            ] {
                assert_eq!(Entry::decode(e.encode(level), level), e, "{e:?} level {level}");
            }
            if level < 3 {
                assert_eq!(Entry::decode(Entry::Table(0x8000_1000).encode(level), level), Entry::Table(0x8000_1000));
            }
        }
        assert_eq!(Entry::decode(0, 3), Entry::Unassigned(Ripas::Empty));
        // Hardware view: RAM is valid, the rest invalid; NS mappings carry NS.
        assert_eq!(Entry::Assigned { pa: 0x8000_0000, ripas: Ripas::Ram }.encode(3) & 3, 3);
        assert_eq!(Entry::Assigned { pa: 0x8000_0000, ripas: Ripas::Empty }.encode(3) & 1, 0);
        assert_ne!(Entry::AssignedNs { pa: 0x9000_0000, attrs: 0 }.encode(3) & NS, 0);
        assert_eq!(Entry::Assigned { pa: 0x4000_0000, ripas: Ripas::Ram }.encode(1) & 3, 1);
    }

    #[test]
    fn starting_levels() {
        assert_eq!(start_tables(40, 1), Some(2));
        assert_eq!(start_tables(39, 1), Some(1));
        assert_eq!(start_tables(48, 0), Some(1));
        assert_eq!(start_tables(44, 1), None); // 32 tables
        assert_eq!(start_tables(43, 1), Some(16));
        assert_eq!(start_tables(40, 0), Some(1));
        assert_eq!(start_tables(39, 0), None); // level 0 resolves no bit
        assert_eq!(start_tables(32, 2), Some(4));
        assert_eq!(start_tables(40, 2), None); // 512 tables
        assert_eq!(start_tables(40, 3), None);
        assert_eq!(start_tables(31, 1), None);
        assert_eq!(start_tables(49, 0), None);
    }

    #[test]
    fn fold_and_unfold_agree() {
        let mut t = [0u64; ENTRIES];
        let block = Entry::Assigned { pa: 0x8020_0000, ripas: Ripas::Ram };
        unfold(block, 3, &mut t);
        assert_eq!(Entry::decode(t[5], 3), Entry::Assigned { pa: 0x8020_5000, ripas: Ripas::Ram });
        assert_eq!(fold(&t, 3), Some(block));
        t[7] = Entry::Assigned { pa: 0x8020_7000, ripas: Ripas::Empty }.encode(3);
        assert_eq!(fold(&t, 3), None);
        unfold(Entry::Unassigned(Ripas::Ram), 3, &mut t);
        assert_eq!(fold(&t, 3), Some(Entry::Unassigned(Ripas::Ram)));
        // Unaligned assigned memory does not fold.
        unfold(Entry::Assigned { pa: 0x8020_0000, ripas: Ripas::Ram }, 3, &mut t);
        for (i, e) in t.iter_mut().enumerate() {
            *e = Entry::Assigned { pa: 0x8020_1000 + i as u64 * 0x1000, ripas: Ripas::Ram }.encode(3);
        }
        assert_eq!(fold(&t, 3), None);
    }

    #[test]
    fn vtcr_fields() {
        let c = RttConfig { ipa_bits: 40, level_start: 1, num_start: 2, base: 0 };
        let v = c.vtcr(5);
        assert_eq!(v & 0x3f, 24);
        assert_eq!((v >> 6) & 3, 1);
        assert_eq!((v >> 16) & 7, 5);
        assert!(c.is_unprotected(1 << 39));
        assert!(!c.is_unprotected((1 << 39) - 1));
        assert!(!c.ipa_in_range(1 << 40));
    }
}

/// Property tests: encoding and decoding RTT entries agree on every entry
/// the RMM can make, and decoding any 64-bit value gives an entry that
/// encodes back to the same decoding (no raw value makes the state
/// machine see two different entries).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn ripas() -> impl Strategy<Value = Ripas> {
        prop_oneof![Just(Ripas::Empty), Just(Ripas::Ram), Just(Ripas::Destroyed)]
    }

    fn entry(level: i64) -> impl Strategy<Value = Entry> {
        let pa = (0u64..1 << 36).prop_map(move |p| (p << 12) & OA_MASK & !(block_size(level) - 1));
        // No tables at level 3: there a table descriptor's shape is a page.
        let table_pa = (0u64..1 << 36).prop_map(move |p| if level < 3 { Entry::Table((p << 12) & OA_MASK) } else { Entry::UnassignedNs });
        let attrs = any::<u64>().prop_map(|a| a & HOST_ATTR_MASK);
        prop_oneof![
            ripas().prop_map(Entry::Unassigned),
            (pa.clone(), ripas()).prop_map(|(pa, ripas)| Entry::Assigned { pa, ripas }),
            table_pa,
            Just(Entry::UnassignedNs),
            (pa, attrs).prop_map(|(pa, attrs)| Entry::AssignedNs { pa, attrs }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        #[test]
        fn round_trip((level, e) in (0i64..=3).prop_flat_map(|l| (Just(l), entry(l)))) {
            prop_assert_eq!(Entry::decode(e.encode(level), level), e);
        }

        #[test]
        fn decode_is_stable(raw in any::<u64>(), level in 0i64..=3) {
            let e = Entry::decode(raw, level);
            prop_assert_eq!(Entry::decode(e.encode(level), level), e);
        }
    }
}
