//! RMI_REALM_CREATE / ACTIVATE / DESTROY (DEN0137 RMM 1.0, the commands' own sections).

use super::{Out, RmiContext};
use crate::granule::{Guard, GranuleState::*};
use crate::mem::{self, Page};
use crate::measurement;
use crate::realm::{self, Rd, RealmState};
use crate::rtt::{self, Entry, Table};
use shared::abi::rmi::{RmiError, RmiRealmParams};

/// Failure conditions, in order (all ERROR_INPUT): rd_align, rd_bound,
/// rd_state (Delegated), params_align, params_bound, params_pas (the params
/// granule is the Host's), params_supp (RealmParamsSupported), rtt_num_level
/// (RttConfigIsValid), rtt_align (rtt_base aligned to the starting tables'
/// size), rtt_alias (RD among the starting tables), rtt_state (each starting
/// table Delegated), vmid_valid (VMID valid and free).
pub fn create(ctx: &RmiContext, rd: u64, params_ptr: u64) -> Result<Out, RmiError> {
    let (grd, gp) = ctx.granules.lock_two((rd, Delegated), (params_ptr, Undelegated))?;
    let mut p = RmiRealmParams::zeroed();
    // SAFETY: the params granule is locked and Undelegated (Non-secure PAS).
    unsafe { mem::read_ns(ctx.mem, params_ptr, &mut p) };
    drop(gp);
    if !realm::params_supported(&p, &ctx.hw) {
        return Err(RmiError::Input);
    }
    let cfg = realm::rtt_config(&p).ok_or(RmiError::Input)?;
    let span = cfg.num_start * 0x1000;
    if cfg.base % span != 0 {
        return Err(RmiError::Input);
    }
    if rd >= cfg.base && rd < cfg.base + span {
        return Err(RmiError::Input);
    }
    let mut rtts: [Option<Guard>; rtt::MAX_START_TABLES as usize] = Default::default();
    for (i, slot) in rtts.iter_mut().take(cfg.num_start as usize).enumerate() {
        *slot = Some(ctx.granules.lock(cfg.base + i as u64 * 0x1000, Delegated)?);
    }
    if !ctx.vmids.reserve(p.vmid) {
        return Err(RmiError::Input);
    }
    // Success: nothing below can fail.
    for (i, g) in rtts.iter().flatten().enumerate() {
        // SAFETY: locked Delegated granule, becoming this Realm's RTT.
        let t: &mut Table = unsafe { mem::realm(ctx.mem, g.addr()) };
        cfg.init_start_table(i as u64, t);
        g.set_state(Rtt);
    }
    // SAFETY: locked Delegated granule, becoming the RD.
    unsafe { mem::realm::<Page>(ctx.mem, rd) }.fill(0);
    // SAFETY: still the locked granule `rd`; the `Page` reference above was a
    // temporary, so this is the only reference into it.
    let r: &mut Rd = unsafe { mem::realm(ctx.mem, rd) };
    let algo = measurement::HashAlgo::from_rmi(p.hash_algo as u8 as u64).unwrap_or(measurement::HashAlgo::Sha256);
    r.state = RealmState::New as u64;
    r.hash_algo = algo.to_rmi() as u64;
    r.ipa_bits = cfg.ipa_bits;
    r.level_start = cfg.level_start;
    r.num_start = cfg.num_start;
    r.rtt_base = cfg.base;
    r.vmid = p.vmid;
    r.flags = p.flags;
    r.num_bps = p.num_bps as u8 as u64;
    r.num_wps = p.num_wps as u8 as u64;
    r.rpv = p.rpv;
    r.measurements[0] = measurement::rim_init(algo, &p);
    grd.set_state(Rd);
    log::info!("realm {rd:#x} created: IPA {} bits, RTT level {} x{}, VMID {}, {:?}", cfg.ipa_bits, cfg.level_start, cfg.num_start, p.vmid, algo);
    Ok(Out::ok(&[]))
}

/// Failure conditions: rd_align, rd_bound, rd_state (ERROR_INPUT);
/// realm_state: not New (ERROR_REALM).
pub fn activate(ctx: &RmiContext, rd: u64) -> Result<Out, RmiError> {
    let _g = ctx.granules.lock(rd, Rd)?;
    // SAFETY: locked RD granule.
    let r: &mut Rd = unsafe { mem::realm(ctx.mem, rd) };
    if r.state() != RealmState::New {
        return Err(RmiError::Realm);
    }
    r.set_state(RealmState::Active);
    log::info!("realm {rd:#x} activated");
    Ok(Out::ok(&[]))
}

/// Failure conditions: rd_align, rd_bound, rd_state (ERROR_INPUT);
/// realm_live: the Realm has RECs or a live starting-level RTT entry
/// (ERROR_REALM).  The RD and starting tables go back to Delegated, scrubbed.
pub fn destroy(ctx: &RmiContext, rd: u64) -> Result<Out, RmiError> {
    let grd = ctx.granules.lock(rd, Rd)?;
    // SAFETY: locked RD granule.
    let r: &mut Rd = unsafe { mem::realm(ctx.mem, rd) };
    let cfg = r.rtt();
    if grd.refcount() != 0 {
        return Err(RmiError::Realm);
    }
    for i in 0..cfg.num_start {
        // SAFETY: the RD lock protects the Realm's RTTs.
        let t = unsafe { rtt::table(ctx.mem, cfg.base + i * 0x1000) };
        if t.iter().any(|&e| Entry::decode(e, cfg.level_start).is_live()) {
            return Err(RmiError::Realm);
        }
    }
    for i in 0..cfg.num_start {
        let g = ctx.granules.lock(cfg.base + i * 0x1000, Rtt)?;
        // SAFETY: locked RTT granule leaving the Realm.
        unsafe { mem::realm::<Page>(ctx.mem, g.addr()) }.fill(0);
        g.set_state(Delegated);
    }
    ctx.vmids.release(r.vmid);
    ctx.cpu.invalidate_vmid(r.vmid);
    // SAFETY: locked RD granule.
    unsafe { mem::realm::<Page>(ctx.mem, rd) }.fill(0);
    grd.set_state(Delegated);
    log::info!("realm {rd:#x} destroyed");
    Ok(Out::ok(&[]))
}
