//! Granule tracking (DEN0137 RMM 1.0, A2.2 "Granule", its "Granule
//! ownership" and B2 "GranuleState"): one entry per 4 KiB granule of the NS
//! DRAM banks the boot manifest lists, holding the granule's state, a lock bit
//! and a reference count.
//!
//! Locking (safe on any number of cores): each entry is one `AtomicU32`; bit
//! [`LOCK`] is a spin lock taken with an acquire compare-exchange and released
//! with a release store.  A command locks every granule it reads or changes
//! for as long as it needs it; several granules are locked in ascending
//! address order ([`GranuleTable::lock_two`]) so two commands cannot wait on
//! each other.  The RD lock also protects the Realm's RTT tree and its
//! measurements: every RMI/RSI path that walks or changes RTTs holds it.

use core::sync::atomic::{AtomicU32, Ordering::{Acquire, Relaxed, Release}};

pub const GRANULE_SIZE: u64 = 0x1000;
pub const GRANULE_SHIFT: u32 = 12;

/// GranuleState (DEN0137 RMM 1.0).  The encoding is ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum GranuleState {
    Undelegated = 0,
    Delegated = 1,
    Rd = 2,
    Rec = 3,
    RecAux = 4,
    Data = 5,
    Rtt = 6,
}

impl GranuleState {
    fn from_bits(v: u32) -> Self {
        match v & STATE_MASK {
            1 => Self::Delegated,
            2 => Self::Rd,
            3 => Self::Rec,
            4 => Self::RecAux,
            5 => Self::Data,
            6 => Self::Rtt,
            _ => Self::Undelegated,
        }
    }
}

const STATE_MASK: u32 = 0xf;
const LOCK: u32 = 1 << 7;
const REFCOUNT_SHIFT: u32 = 8;

/// Upper bound on tracked granules: 4 GiB of NS DRAM, 4 MiB of table.  A
/// manifest listing more has the excess left untracked (never delegable).
pub const MAX_GRANULES: usize = 1 << 20;

/// Why a granule could not be locked.  Every case is RMI_ERROR_INPUT for
/// the command that names the granule (the `*_align`, `*_bound`, `*_state`
/// failure conditions), but tests tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GranuleError {
    Align,
    Bound,
    State(GranuleState),
}

/// Why [`GranuleTable::lock_two`] failed: which granule (0 for the first
/// named, 1 for the second) and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairError(pub usize, pub GranuleError);

#[derive(Clone, Copy, Debug, Default)]
struct Bank {
    base: u64,
    end: u64,
    first: usize,
}

const MAX_BANKS: usize = crate::manifest::MAX_DRAM_BANKS;

/// The table of every tracked granule.
pub struct GranuleTable<'a> {
    banks: [Bank; MAX_BANKS],
    nbanks: usize,
    entries: &'a [AtomicU32],
}

impl<'a> GranuleTable<'a> {
    /// Tracks the banks `(base, size)` (page aligned, ascending, disjoint: the
    /// manifest parser checked that) with `entries` as storage, all Undelegated.
    /// Banks beyond the storage are cut.
    pub fn new(banks: &[(u64, u64)], entries: &'a [AtomicU32]) -> Self {
        let mut t = Self { banks: [Bank::default(); MAX_BANKS], nbanks: 0, entries };
        let mut first = 0usize;
        for &(base, size) in banks.iter().take(MAX_BANKS) {
            let room = (entries.len() - first) as u64;
            let count = (size >> GRANULE_SHIFT).min(room);
            if count == 0 {
                break;
            }
            t.banks[t.nbanks] = Bank { base, end: base + (count << GRANULE_SHIFT), first };
            t.nbanks += 1;
            first += count as usize;
        }
        for e in &entries[..first] {
            e.store(0, Relaxed);
        }
        t
    }

    /// How many granules are tracked.
    pub fn len(&self) -> usize {
        self.banks[..self.nbanks].iter().map(|b| ((b.end - b.base) >> GRANULE_SHIFT) as usize).sum()
    }

    fn index(&self, addr: u64) -> Result<usize, GranuleError> {
        if addr & (GRANULE_SIZE - 1) != 0 {
            return Err(GranuleError::Align);
        }
        self.banks[..self.nbanks]
            .iter()
            .find(|b| addr >= b.base && addr < b.end)
            .map(|b| b.first + ((addr - b.base) >> GRANULE_SHIFT) as usize)
            .ok_or(GranuleError::Bound)
    }

    #[cfg_attr(not(test), allow(dead_code))]
    /// Whether `addr` is an aligned, tracked granule (the `*_align` and `*_bound` checks).
    pub fn check(&self, addr: u64) -> Result<(), GranuleError> {
        self.index(addr).map(|_| ())
    }

    #[cfg_attr(not(test), allow(dead_code))]
    /// The state of `addr` without locking it (diagnostics and tests only).
    pub fn state(&self, addr: u64) -> Option<GranuleState> {
        self.index(addr).ok().map(|i| GranuleState::from_bits(self.entries[i].load(Acquire)))
    }

    fn lock_index(&self, i: usize) {
        let e = &self.entries[i];
        loop {
            let v = e.load(Relaxed);
            if v & LOCK == 0 && e.compare_exchange_weak(v, v | LOCK, Acquire, Relaxed).is_ok() {
                return;
            }
            core::hint::spin_loop();
        }
    }

    /// Locks `addr` whatever its state.
    pub fn lock_any(&self, addr: u64) -> Result<Guard<'_, 'a>, GranuleError> {
        let idx = self.index(addr)?;
        self.lock_index(idx);
        Ok(Guard { table: self, idx, addr })
    }

    /// Locks `addr` if it is in state `expected`.
    pub fn lock(&self, addr: u64, expected: GranuleState) -> Result<Guard<'_, 'a>, GranuleError> {
        let g = self.lock_any(addr)?;
        match g.state() {
            s if s == expected => Ok(g),
            s => Err(GranuleError::State(s)),
        }
    }

    /// Locks `addr` in state `expected` while this CPU already holds `held`:
    /// a granule named twice by one command fails its state check (it cannot
    /// be in both states) instead of waiting for itself forever.
    pub fn lock_also(&self, addr: u64, expected: GranuleState, held: &[&Guard]) -> Result<Guard<'_, 'a>, GranuleError> {
        if let Some(g) = held.iter().find(|g| g.addr == addr) {
            return Err(GranuleError::State(g.state()));
        }
        self.lock(addr, expected)
    }

    /// Locks two distinct granules in ascending address order, each in its
    /// expected state.  Errors are reported for `a` before `b`, as the
    /// spec's failure conditions list the first-named granule first; a
    /// granule named twice fails the second's state check.
    pub fn lock_two(
        &self,
        a: (u64, GranuleState),
        b: (u64, GranuleState),
    ) -> Result<(Guard<'_, 'a>, Guard<'_, 'a>), PairError> {
        let ia = self.index(a.0).map_err(|e| PairError(0, e))?;
        let ib = self.index(b.0).map_err(|e| PairError(1, e))?;
        if ia == ib {
            // The granule cannot be in both states: report as the state check of `b`.
            let s = GranuleState::from_bits(self.entries[ia].load(Acquire));
            return Err(if s != a.1 { PairError(0, GranuleError::State(s)) } else { PairError(1, GranuleError::State(s)) });
        }
        let (first, second) = if ia < ib { (ia, ib) } else { (ib, ia) };
        self.lock_index(first);
        self.lock_index(second);
        let ga = Guard { table: self, idx: ia, addr: a.0 };
        let gb = Guard { table: self, idx: ib, addr: b.0 };
        if ga.state() != a.1 {
            return Err(PairError(0, GranuleError::State(ga.state())));
        }
        if gb.state() != b.1 {
            return Err(PairError(1, GranuleError::State(gb.state())));
        }
        Ok((ga, gb))
    }
}

/// A locked granule; dropping it unlocks.
pub struct Guard<'t, 'a> {
    table: &'t GranuleTable<'a>,
    idx: usize,
    addr: u64,
}

impl Guard<'_, '_> {
    pub fn addr(&self) -> u64 {
        self.addr
    }

    fn entry(&self) -> &AtomicU32 {
        &self.table.entries[self.idx]
    }

    pub fn state(&self) -> GranuleState {
        GranuleState::from_bits(self.entry().load(Relaxed))
    }

    pub fn set_state(&self, s: GranuleState) {
        let v = self.entry().load(Relaxed);
        self.entry().store((v & !STATE_MASK) | s as u32, Relaxed);
    }

    /// The granule's reference count (RD: RECs of the Realm).
    pub fn refcount(&self) -> u32 {
        self.entry().load(Relaxed) >> REFCOUNT_SHIFT
    }

    pub fn refcount_add(&self, delta: i32) {
        let v = self.entry().load(Relaxed);
        let rc = ((v >> REFCOUNT_SHIFT) as i64 + delta as i64).max(0) as u32;
        self.entry().store((v & ((1 << REFCOUNT_SHIFT) - 1)) | (rc << REFCOUNT_SHIFT), Relaxed);
    }
}

impl Drop for Guard<'_, '_> {
    fn drop(&mut self) {
        let e = self.entry();
        let v = e.load(Relaxed);
        e.store(v & !LOCK, Release);
    }
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod test_support {
    use super::*;

    /// Storage for a test table, leaked.
    pub fn storage(n: usize) -> &'static [AtomicU32] {
        Box::leak((0..n).map(|_| AtomicU32::new(0)).collect::<Vec<_>>().into_boxed_slice())
    }

    impl GranuleTable<'_> {
        /// Every granule Undelegated and unlocked again (a fuzz input's fresh
        /// machine without a new allocation).
        pub fn reset(&self) {
            for e in self.entries {
                e.store(0, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::storage;
    use super::*;
    use GranuleState::*;

    fn table() -> GranuleTable<'static> {
        GranuleTable::new(&[(0x8000_0000, 0x4000), (0x9000_0000, 0x2000)], storage(64))
    }

    #[test]
    fn banks_align_and_bounds() {
        let t = table();
        assert_eq!(t.len(), 6);
        assert_eq!(t.check(0x8000_0000), Ok(()));
        assert_eq!(t.check(0x8000_3000), Ok(()));
        assert_eq!(t.check(0x8000_4000), Err(GranuleError::Bound));
        assert_eq!(t.check(0x9000_1000), Ok(()));
        assert_eq!(t.check(0x8000_0008), Err(GranuleError::Align));
        assert_eq!(t.check(0), Err(GranuleError::Bound));
        assert_eq!(t.check(u64::MAX & !0xfff), Err(GranuleError::Bound));
        assert_eq!(t.state(0x9000_1000), Some(Undelegated));
    }

    #[test]
    fn storage_cap_cuts_banks() {
        let t = GranuleTable::new(&[(0x8000_0000, 0x10_0000), (0x9000_0000, 0x1000)], storage(8));
        assert_eq!(t.len(), 8);
        assert_eq!(t.check(0x8000_8000), Err(GranuleError::Bound));
        assert_eq!(t.check(0x9000_0000), Err(GranuleError::Bound));
    }

    #[test]
    fn state_machine_and_refcount() {
        let t = table();
        {
            let g = t.lock(0x8000_1000, Undelegated).unwrap();
            g.set_state(Delegated);
            g.refcount_add(2);
            g.refcount_add(-1);
            assert_eq!(g.refcount(), 1);
            assert_eq!(g.state(), Delegated);
        }
        assert_eq!(t.lock(0x8000_1000, Undelegated).err(), Some(GranuleError::State(Delegated)));
        // A failed lock leaves the granule unlocked.
        assert!(t.lock(0x8000_1000, Delegated).is_ok());
        assert_eq!(t.state(0x8000_1000), Some(Delegated));
    }

    #[test]
    fn lock_two_orders_and_reports_aliases() {
        let t = table();
        t.lock(0x8000_2000, Undelegated).unwrap().set_state(Rd);
        t.lock(0x8000_1000, Undelegated).unwrap().set_state(Delegated);
        let (a, b) = t.lock_two((0x8000_2000, Rd), (0x8000_1000, Delegated)).unwrap();
        assert_eq!((a.addr(), b.addr()), (0x8000_2000, 0x8000_1000));
        drop((a, b));
        assert_eq!(t.lock_two((0x8000_2000, Rd), (0x8000_2000, Delegated)).err(), Some(PairError(1, GranuleError::State(Rd))));
        assert_eq!(t.lock_two((0x8000_1000, Rd), (0x8000_2000, Delegated)).err(), Some(PairError(0, GranuleError::State(Delegated))));
        assert_eq!(t.lock_two((0x8000_2000, Rd), (0x8000_0010, Delegated)).err(), Some(PairError(1, GranuleError::Align)));
        // Everything unlocked again.
        assert!(t.lock(0x8000_2000, Rd).is_ok() && t.lock(0x8000_1000, Delegated).is_ok());
    }

    #[test]
    fn lock_also_refuses_held_granules() {
        let t = table();
        let a = t.lock(0x8000_0000, Undelegated).unwrap();
        assert_eq!(t.lock_also(0x8000_0000, Undelegated, &[&a]).err(), Some(GranuleError::State(Undelegated)));
        assert!(t.lock_also(0x8000_1000, Undelegated, &[&a]).is_ok());
    }

    #[test]
    fn lock_is_exclusive_across_threads() {
        let t: &'static GranuleTable<'static> = Box::leak(Box::new(table()));
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let g = t.lock_any(0x8000_0000).unwrap();
                        // Non-atomic read-modify-write under the lock.
                        let v = c.load(Relaxed);
                        g.refcount_add(1);
                        c.store(v + 1, Relaxed);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        assert_eq!(counter.load(Relaxed), 4000);
        assert_eq!(t.lock_any(0x8000_0000).unwrap().refcount(), 4000);
    }
}
