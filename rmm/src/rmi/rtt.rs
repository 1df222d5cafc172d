//! RTT commands (DEN0137 RMM 1.0, the commands' own sections): RMI_RTT_CREATE / DESTROY / FOLD /
//! READ_ENTRY / MAP_UNPROTECTED / UNMAP_UNPROTECTED / INIT_RIPAS / SET_RIPAS.
//! Every one holds the RD lock, which protects the Realm's RTT tree.

use super::{ErrorOut, Out, RmiContext};
use crate::granule::{Guard, GranuleState::*};
use crate::mem::{self, Page};
use crate::measurement;
use crate::realm::{Rd, RealmState};
use crate::rec::{self, Rec};
use crate::rtt::{self, Entry, Ripas, RttConfig, Walk, block_size};
use shared::abi::rmi::{RMI_DESTROYED, RmiError};

/// The locked RD and its contents.
#[allow(clippy::mut_from_ref, reason = "the RD lock (the returned guard) makes the reference exclusive")]
pub(super) fn lock_rd<'c>(ctx: &'c RmiContext, rd: u64) -> Result<(Guard<'c, 'c>, &'c mut Rd), RmiError> {
    let g = ctx.granules.lock(rd, Rd)?;
    // SAFETY: we hold the RD lock.
    let r = unsafe { mem::realm::<Rd>(ctx.mem, rd) };
    Ok((g, r))
}

/// level_bound, ipa_align (to the `align_level` entry), ipa_bound.
fn check_ipa(cfg: &RttConfig, ipa: u64, level: i64, min_level: i64, align_level: i64) -> Result<(), RmiError> {
    if level < min_level || level > 3 {
        return Err(RmiError::Input);
    }
    if ipa % block_size(align_level) != 0 || !cfg.ipa_in_range(ipa) {
        return Err(RmiError::Input);
    }
    Ok(())
}

fn walk(ctx: &RmiContext, cfg: &RttConfig, ipa: u64, level: i64) -> Walk {
    // SAFETY: callers hold the RD lock; ipa is in range.
    unsafe { rtt::walk(ctx.mem, cfg, ipa, level) }
}

fn set(ctx: &RmiContext, w: &Walk, e: Entry) {
    // SAFETY: callers hold the RD lock.
    unsafe { rtt::set(ctx.mem, w, e) }
}

fn vttbr(r: &Rd) -> u64 {
    r.rtt_base | r.vmid << 48
}

/// Top of the IPA range the entry a walk ended at covers.
fn top_of(w: &Walk, ipa: u64) -> u64 {
    w.base(ipa) + block_size(w.level)
}

/// Failure conditions: rd_align/bound/state, rtt_align/bound/state
/// (Delegated) (ERROR_INPUT); level_bound (level_start < level <= 3),
/// ipa_align (to a level-1 entry), ipa_bound (ERROR_INPUT); rtt_walk (the walk
/// to level-1 ends higher: ERROR_RTT at that level); rtte_state (the level-1
/// entry is already a TABLE: ERROR_RTT(level-1)).
pub fn create(ctx: &RmiContext, rd: u64, rtt_pa: u64, ipa: u64, level: i64) -> Result<Out, RmiError> {
    let (grd, grtt) = ctx.granules.lock_two((rd, Rd), (rtt_pa, Delegated))?;
    // SAFETY: we hold the RD lock.
    let r = unsafe { mem::realm::<Rd>(ctx.mem, grd.addr()) };
    let cfg = r.rtt();
    check_ipa(&cfg, ipa, level, cfg.level_start + 1, level - 1)?;
    let w = walk(ctx, &cfg, ipa, level - 1);
    if w.level != level - 1 {
        return Err(RmiError::rtt(w.level));
    }
    if let Entry::Table(_) = w.entry {
        return Err(RmiError::rtt(level - 1));
    }
    // SAFETY: locked Delegated granule, becoming an RTT of this Realm.
    let t = unsafe { rtt::table(ctx.mem, rtt_pa) };
    rtt::unfold(w.entry, level, t);
    set(ctx, &w, Entry::Table(rtt_pa));
    grtt.set_state(Rtt);
    Ok(Out::ok(&[]))
}

/// Failure conditions: rd_*, level_bound, ipa_align, ipa_bound (ERROR_INPUT);
/// rtt_walk (ERROR_RTT at the level reached); rtte_state (not a TABLE:
/// ERROR_RTT(level-1)); rtt_live (the RTT has live entries: ERROR_RTT(level)).
/// x1 = the RTT's address, x2 = top of the non-live range found (also on ERROR_RTT).
pub fn destroy(ctx: &RmiContext, rd: u64, ipa: u64, level: i64) -> Result<Out, ErrorOut> {
    let (_grd, r) = lock_rd(ctx, rd)?;
    let cfg = r.rtt();
    check_ipa(&cfg, ipa, level, cfg.level_start + 1, level - 1)?;
    let w = walk(ctx, &cfg, ipa, level - 1);
    let top = top_of(&w, ipa);
    if w.level != level - 1 {
        return Err(ErrorOut::new(RmiError::rtt(w.level), &[0, top]));
    }
    let Entry::Table(child) = w.entry else {
        return Err(ErrorOut::new(RmiError::rtt(level - 1), &[0, top]));
    };
    // SAFETY: the RD lock protects the Realm's RTTs.
    let t = unsafe { rtt::table(ctx.mem, child) };
    if t.iter().any(|&e| Entry::decode(e, level).is_live()) {
        return Err(ErrorOut::new(RmiError::rtt(level), &[0, ipa]));
    }
    let g = ctx.granules.lock(child, Rtt)?;
    set(ctx, &w, if cfg.is_unprotected(ipa) { Entry::UnassignedNs } else { Entry::Unassigned(Ripas::Destroyed) });
    ctx.cpu.invalidate_ipa(vttbr(r), ipa);
    // SAFETY: locked RTT granule leaving the Realm.
    unsafe { mem::realm::<Page>(ctx.mem, child) }.fill(0);
    g.set_state(Delegated);
    Ok(Out::ok(&[child, top]))
}

/// Failure conditions: rd_*, level_bound, ipa_align, ipa_bound (ERROR_INPUT);
/// rtt_walk (ERROR_RTT at the level reached); rtte_state (the level-1 entry is
/// not a TABLE: ERROR_RTT(level-1)); rtt_homogeneous (the RTT cannot be
/// folded: ERROR_RTT(level)).  x1 = the RTT's address.
pub fn fold(ctx: &RmiContext, rd: u64, ipa: u64, level: i64) -> Result<Out, RmiError> {
    let (_grd, r) = lock_rd(ctx, rd)?;
    let cfg = r.rtt();
    check_ipa(&cfg, ipa, level, cfg.level_start + 1, level - 1)?;
    let w = walk(ctx, &cfg, ipa, level - 1);
    if w.level != level - 1 {
        return Err(RmiError::rtt(w.level));
    }
    let Entry::Table(child) = w.entry else {
        return Err(RmiError::rtt(level - 1));
    };
    // SAFETY: the RD lock protects the Realm's RTTs.
    let folded = rtt::fold(unsafe { rtt::table(ctx.mem, child) }, level).ok_or(RmiError::rtt(level))?;
    // A block mapping needs level 1 or 2 (4 KiB granule, no LPA2).
    if matches!(folded, Entry::Assigned { .. } | Entry::AssignedNs { .. }) && level - 1 < 1 {
        return Err(RmiError::rtt(level));
    }
    let g = ctx.granules.lock(child, Rtt)?;
    // Break-before-make: invalidate, then write the block.
    set(ctx, &w, Entry::Unassigned(Ripas::Empty));
    ctx.cpu.invalidate_ipa(vttbr(r), w.base(ipa));
    set(ctx, &w, folded);
    // SAFETY: locked RTT granule leaving the Realm.
    unsafe { mem::realm::<Page>(ctx.mem, child) }.fill(0);
    g.set_state(Delegated);
    Ok(Out::ok(&[child]))
}

/// Failure conditions: rd_*, level_bound (level_start <= level <= 3),
/// ipa_align (to a level entry), ipa_bound (ERROR_INPUT).  x1 = level the walk
/// reached, x2 = RmiRttEntryState, x3 = the entry's output address (and Host
/// attributes for an unprotected mapping), x4 = RIPAS (protected IPAs only).
pub fn read_entry(ctx: &RmiContext, rd: u64, ipa: u64, level: i64) -> Result<Out, RmiError> {
    let (_grd, r) = lock_rd(ctx, rd)?;
    let cfg = r.rtt();
    check_ipa(&cfg, ipa, level, cfg.level_start, level)?;
    let w = walk(ctx, &cfg, ipa, level);
    let desc = match w.entry {
        Entry::Assigned { pa, .. } | Entry::Table(pa) => pa,
        Entry::AssignedNs { pa, attrs } => pa | attrs,
        _ => 0,
    };
    let ripas = if cfg.is_unprotected(ipa) { 0 } else { w.entry.ripas() as u64 };
    Ok(Out::ok(&[w.level as u64, w.entry.rmi_state(), desc, ripas]))
}

/// Failure conditions: rd_*, level_bound (a leaf level, 1..=3, not above the
/// start), ipa_align, ipa_bound (in range and unprotected), desc_valid (only
/// MemAttr, S2AP and an output address aligned to the level) (ERROR_INPUT);
/// rtt_walk (ERROR_RTT at the level reached); rtte_state (not
/// UNASSIGNED_NS: ERROR_RTT(level)).
pub fn map_unprotected(ctx: &RmiContext, rd: u64, ipa: u64, level: i64, desc: u64) -> Result<Out, RmiError> {
    let (_grd, r) = lock_rd(ctx, rd)?;
    let cfg = r.rtt();
    check_ipa(&cfg, ipa, level, cfg.level_start.max(1), level)?;
    if !cfg.is_unprotected(ipa) {
        return Err(RmiError::Input);
    }
    const OA: u64 = 0x0000_ffff_ffff_f000;
    let pa = desc & OA;
    if desc & !(rtt::HOST_ATTR_MASK | OA) != 0 || pa % block_size(level) != 0 {
        return Err(RmiError::Input);
    }
    let w = walk(ctx, &cfg, ipa, level);
    if w.level != level {
        return Err(RmiError::rtt(w.level));
    }
    if w.entry != Entry::UnassignedNs {
        return Err(RmiError::rtt(level));
    }
    set(ctx, &w, Entry::AssignedNs { pa, attrs: desc & rtt::HOST_ATTR_MASK });
    Ok(Out::ok(&[]))
}

/// Failure conditions: rd_*, level_bound, ipa_align, ipa_bound (unprotected)
/// (ERROR_INPUT); rtt_walk (ERROR_RTT at the level reached); rtte_state (not
/// ASSIGNED_NS: ERROR_RTT(level)).  x1 = top of the non-live range.
pub fn unmap_unprotected(ctx: &RmiContext, rd: u64, ipa: u64, level: i64) -> Result<Out, ErrorOut> {
    let (_grd, r) = lock_rd(ctx, rd)?;
    let cfg = r.rtt();
    check_ipa(&cfg, ipa, level, cfg.level_start.max(1), level)?;
    if !cfg.is_unprotected(ipa) {
        return Err(RmiError::Input.into());
    }
    let w = walk(ctx, &cfg, ipa, level);
    let top = top_of(&w, ipa);
    if w.level != level {
        return Err(ErrorOut::new(RmiError::rtt(w.level), &[top]));
    }
    if !matches!(w.entry, Entry::AssignedNs { .. }) {
        return Err(ErrorOut::new(RmiError::rtt(level), &[top]));
    }
    set(ctx, &w, Entry::UnassignedNs);
    ctx.cpu.invalidate_ipa(vttbr(r), ipa);
    Ok(Out::ok(&[top]))
}

/// Failure conditions: rd_* (ERROR_INPUT); base_align, top_align (4 KiB),
/// top_bound (base < top <= the protected range's end) (ERROR_INPUT);
/// realm_state (not New: ERROR_REALM); base not aligned to the entry the
/// walk ends at, or no entry could be changed (ERROR_RTT at that level).
/// Changes UNASSIGNED entries of the RTT the walk ends in to RIPAS RAM, in
/// order, until one does not fit below `top`; measures each (see
/// `measurement`).  x1 = top of the range done.
pub fn init_ripas(ctx: &RmiContext, rd: u64, base: u64, top: u64) -> Result<Out, RmiError> {
    let (_grd, r) = lock_rd(ctx, rd)?;
    let cfg = r.rtt();
    let prot_end = 1u64 << (cfg.ipa_bits - 1);
    if base % 0x1000 != 0 || top % 0x1000 != 0 || top <= base || top > prot_end {
        return Err(RmiError::Input);
    }
    if r.state() != RealmState::New {
        return Err(RmiError::Realm);
    }
    let w = walk(ctx, &cfg, base, 3);
    let size = block_size(w.level);
    if base % size != 0 {
        return Err(RmiError::rtt(w.level));
    }
    let algo = r.algo();
    // SAFETY: the RD lock protects the Realm's RTTs.
    let t = unsafe { rtt::table(ctx.mem, w.rtt) };
    let mut addr = base;
    for e in t[w.index..].iter_mut() {
        let next = addr + size;
        if next > top {
            break;
        }
        match Entry::decode(*e, w.level) {
            Entry::Unassigned(Ripas::Empty) | Entry::Unassigned(Ripas::Ram) => {
                *e = Entry::Unassigned(Ripas::Ram).encode(w.level);
            }
            _ => break,
        }
        measurement::extend_ripas(algo, &mut r.measurements[0], addr, next);
        addr = next;
    }
    if addr == base {
        return Err(RmiError::rtt(w.level));
    }
    Ok(Out::ok(&[addr]))
}

/// Failure conditions: rd_*, rec_align/bound/state (ERROR_INPUT); rec_owner
/// (ERROR_REC); the REC is running or has no RIPAS change pending (ERROR_REC);
/// base_align, top_align, base != the REC's next address, top beyond the
/// requested range (ERROR_INPUT); base not aligned to the entry the walk ends
/// at, or no entry changed (ERROR_RTT at that level).  Changes entries from
/// `base` (not DESTROYED ones unless the Realm allowed it) in the RTT the walk
/// ends in.  x1 = top of the range done, also recorded in the REC.
pub fn set_ripas(ctx: &RmiContext, rd: u64, rec_pa: u64, base: u64, top: u64) -> Result<Out, RmiError> {
    let (_grd, grec) = ctx.granules.lock_two((rd, Rd), (rec_pa, Rec))?;
    // SAFETY: we hold both locks.
    let (r, rc) = unsafe { (mem::realm::<Rd>(ctx.mem, rd), mem::realm::<Rec>(ctx.mem, grec.addr())) };
    if rc.owner != rd {
        return Err(RmiError::Rec);
    }
    if rc.running != 0 || rc.pending != rec::pending::RIPAS {
        return Err(RmiError::Rec);
    }
    if base % 0x1000 != 0 || top % 0x1000 != 0 || base != rc.ripas_base || top <= base || top > rc.ripas_top {
        return Err(RmiError::Input);
    }
    let cfg = r.rtt();
    let w = walk(ctx, &cfg, base, 3);
    let size = block_size(w.level);
    if base % size != 0 {
        return Err(RmiError::rtt(w.level));
    }
    let target = Ripas::from_bits(rc.ripas_value).unwrap_or(Ripas::Empty);
    let allow_destroyed = rc.ripas_destroyed != 0;
    // SAFETY: the RD lock protects the Realm's RTTs.
    let t = unsafe { rtt::table(ctx.mem, w.rtt) };
    let mut addr = base;
    let mut flush = false;
    for e in t[w.index..].iter_mut() {
        let next = addr + size;
        if next > top {
            break;
        }
        let cur = Entry::decode(*e, w.level);
        if cur.ripas() == Ripas::Destroyed && !allow_destroyed && cur.ripas() as u64 == RMI_DESTROYED {
            break;
        }
        let new = match cur {
            Entry::Unassigned(_) => Entry::Unassigned(target),
            Entry::Assigned { pa, ripas } => {
                flush |= ripas == Ripas::Ram;
                Entry::Assigned { pa, ripas: target }
            }
            _ => break,
        };
        *e = new.encode(w.level);
        addr = next;
    }
    if flush {
        ctx.cpu.invalidate_vmid(r.vmid);
    }
    if addr == base {
        return Err(RmiError::rtt(w.level));
    }
    rc.ripas_base = addr;
    Ok(Out::ok(&[addr]))
}
