//! RMI_DATA_CREATE / DATA_CREATE_UNKNOWN / DATA_DESTROY (DEN0137 RMM 1.0,
//! the commands' own sections): Realm memory at protected IPAs, always 4 KiB pages at level 3.

use super::{ErrorOut, Out, RmiContext};
use crate::granule::GranuleState::*;
use crate::mem::{self, Page};
use crate::measurement;
use crate::realm::{Rd, RealmState};
use crate::rtt::{self, Entry, Ripas};
use shared::abi::rmi::{RMI_MEASURE_CONTENT, RmiError};

fn check_ipa(r: &Rd, ipa: u64) -> Result<(), RmiError> {
    let cfg = r.rtt();
    if ipa % 0x1000 != 0 || !cfg.ipa_in_range(ipa) || cfg.is_unprotected(ipa) {
        return Err(RmiError::Input);
    }
    Ok(())
}

/// Shared part of the two creates: checks from ipa_align on, then maps.
fn create_common(ctx: &RmiContext, r: &mut Rd, data: u64, ipa: u64, need_new: bool) -> Result<rtt::Walk, RmiError> {
    check_ipa(r, ipa)?;
    if need_new && r.state() != RealmState::New {
        return Err(RmiError::Realm);
    }
    let cfg = r.rtt();
    // SAFETY: the caller holds the RD lock; ipa is in range.
    let w = unsafe { rtt::walk(ctx.mem, &cfg, ipa, 3) };
    if w.level != 3 {
        return Err(RmiError::rtt(w.level));
    }
    let Entry::Unassigned(_) = w.entry else {
        return Err(RmiError::rtt(3));
    };
    let _ = data;
    Ok(w)
}

/// Failure conditions, in order: rd_align/bound/state, data_align/bound/state
/// (Delegated), src_align/bound/pas (the Host's), flags (only
/// RMI_MEASURE_CONTENT), ipa_align, ipa_bound (protected) (ERROR_INPUT);
/// realm_state (not New: ERROR_REALM); rtt_walk (the walk stops above level 3:
/// ERROR_RTT at that level); rtte_state (not UNASSIGNED: ERROR_RTT(3)).
/// Copies the source into the granule, maps it ASSIGNED with the entry's
/// RIPAS kept, and extends the RIM.
pub fn create(ctx: &RmiContext, rd: u64, data: u64, ipa: u64, src: u64, flags: u64) -> Result<Out, RmiError> {
    let (grd, gdata) = ctx.granules.lock_two((rd, Rd), (data, Delegated))?;
    let gsrc = ctx.granules.lock_also(src, Undelegated, &[&grd, &gdata])?;
    if flags & !RMI_MEASURE_CONTENT != 0 {
        return Err(RmiError::Input);
    }
    // SAFETY: we hold the RD lock.
    let r = unsafe { mem::realm::<Rd>(ctx.mem, grd.addr()) };
    let w = create_common(ctx, r, data, ipa, true)?;
    // SAFETY: data is locked and Delegated; src is locked and Undelegated.
    let page = unsafe { mem::realm::<Page>(ctx.mem, data) };
    // SAFETY: `gsrc` holds src's lock and lock_also saw it Undelegated, so it
    // stays in the Non-secure PAS for the whole copy; `page` is the distinct
    // Realm granule `data`, so the copy does not alias it.
    unsafe { mem::read_ns(ctx.mem, src, page) };
    drop(gsrc);
    let algo = r.algo();
    measurement::extend_data(algo, &mut r.measurements[0], ipa, flags, page);
    // SAFETY: RD lock held.
    unsafe { rtt::set(ctx.mem, &w, Entry::Assigned { pa: data, ripas: w.entry.ripas() }) };
    gdata.set_state(Data);
    Ok(Out::ok(&[]))
}

/// As [`create`] without src/flags, measurement, or the realm_state check;
/// the granule is zeroed.
pub fn create_unknown(ctx: &RmiContext, rd: u64, data: u64, ipa: u64) -> Result<Out, RmiError> {
    let (grd, gdata) = ctx.granules.lock_two((rd, Rd), (data, Delegated))?;
    // SAFETY: we hold the RD lock.
    let r = unsafe { mem::realm::<Rd>(ctx.mem, grd.addr()) };
    let w = create_common(ctx, r, data, ipa, false)?;
    // SAFETY: data is locked and Delegated.
    unsafe { mem::realm::<Page>(ctx.mem, data) }.fill(0);
    // SAFETY: `grd` holds the RD lock, which protects this Realm's RTTs, and
    // `w` is a walk of those RTTs made under the same lock.
    unsafe { rtt::set(ctx.mem, &w, Entry::Assigned { pa: data, ripas: w.entry.ripas() }) };
    gdata.set_state(Data);
    Ok(Out::ok(&[]))
}

/// Failure conditions: rd_*, ipa_align, ipa_bound (protected) (ERROR_INPUT);
/// rtt_walk (the walk stops above level 3: ERROR_RTT at that level, x2 = top);
/// rtte_state (not ASSIGNED: ERROR_RTT(3), x2 = top).  The entry becomes
/// UNASSIGNED, RIPAS DESTROYED if it was RAM (else kept); the granule is
/// scrubbed and Delegated.  x1 = the granule, x2 = top of the non-live range.
pub fn destroy(ctx: &RmiContext, rd: u64, ipa: u64) -> Result<Out, ErrorOut> {
    let (grd, r) = super::rtt::lock_rd(ctx, rd)?;
    check_ipa(r, ipa)?;
    let cfg = r.rtt();
    // SAFETY: RD lock held; ipa in range.
    let w = unsafe { rtt::walk(ctx.mem, &cfg, ipa, 3) };
    let top = w.base(ipa) + rtt::block_size(w.level);
    if w.level != 3 {
        return Err(ErrorOut::new(RmiError::rtt(w.level), &[0, top]));
    }
    let Entry::Assigned { pa, ripas } = w.entry else {
        return Err(ErrorOut::new(RmiError::rtt(3), &[0, top]));
    };
    let gdata = ctx.granules.lock(pa, Data)?;
    let after = if ripas == Ripas::Ram { Ripas::Destroyed } else { ripas };
    // SAFETY: RD lock held.
    unsafe { rtt::set(ctx.mem, &w, Entry::Unassigned(after)) };
    ctx.cpu.invalidate_ipa(r.rtt_base | r.vmid << 48, ipa);
    // SAFETY: the DATA granule is locked and leaves the Realm.
    unsafe { mem::realm::<Page>(ctx.mem, pa) }.fill(0);
    gdata.set_state(Delegated);
    drop(grd);
    Ok(Out::ok(&[pa, top]))
}
