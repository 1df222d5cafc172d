//! REC commands (DEN0137 RMM 1.0, the commands' own sections): RMI_REC_CREATE / DESTROY /
//! AUX_COUNT / ENTER and RMI_PSCI_COMPLETE.  REC_ENTER runs the REC through
//! the [`RealmCpu`] (the R-EL2 world switch on the target, a script in tests)
//! and turns what stops it into an RmiRecExit (A4.3 "REC exit").

use super::{Out, RmiContext};
use crate::granule::GranuleState::*;
use crate::mem::{self, Page};
use crate::measurement;
use crate::realm::{Rd, RealmState};
use crate::rec::{self, Rec, pending};
use crate::rsi;
use shared::abi::rmi::*;

/// What stopped a REC (the EL2 vector taken from the lower EL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitKind {
    Sync,
    Irq,
    Fiq,
    SError,
}

/// The syndrome of an exit, read right after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawExit {
    pub kind: ExitKind,
    pub esr: u64,
    pub far: u64,
    pub hpfar: u64,
    /// ICH_MISR_EL2 at the exit.
    pub gic_misr: u64,
}

/// EL2 configuration of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunConfig {
    pub vttbr: u64,
    pub vtcr: u64,
    pub hcr: u64,
}

/// The CPU side of Realm execution.
pub trait RealmCpu: Sync {
    /// Loads `rec` (GPRs, PC, PSTATE, FP/SIMD, EL1 system registers, EL1
    /// timers, GIC list registers) and runs it at R-EL1 with `cfg` until it
    /// traps to R-EL2; saves it back.  The Host's EL1 state is kept intact.
    fn run(&self, rec: &mut Rec, cfg: &RunConfig) -> RawExit;
    /// Removes cached Stage-2 translations of `ipa` for the Realm with `vttbr`.
    fn invalidate_ipa(&self, vttbr: u64, ipa: u64);
    /// Removes every cached translation of the Realm with `vmid`.
    fn invalidate_vmid(&self, vmid: u64);
}

/// HCR_EL2 while a Realm runs (DDI0487, HCR_EL2): VM, SWIO, FMO/IMO/AMO
/// (physical interrupts come to us, virtual ones go to the Realm), FB, BSU
/// inner-shareable, TSC (SMCs are RSI/PSCI calls for us), TID3? no, TWI/TWE on
/// the Host's request, RW (EL1 is AArch64).
pub const HCR_REALM: u64 = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 9 | 1 << 10 | 1 << 19 | 1 << 31;
pub const HCR_TWI: u64 = 1 << 13;
pub const HCR_TWE: u64 = 1 << 14;

/// ICH_HCR_EL2 bits a Host may set (RmiRecEnter.gicv3_hcr, DEN0137 "GIC
/// virtual CPU interface"): En, UIE, LRENPIE, NPIE, VGrp0EIE/DIE, VGrp1EIE/DIE.
pub const GICV3_HCR_ALLOWED: u64 = 0xff;

#[allow(clippy::mut_from_ref, reason = "callers hold the REC's lock or own it through `running`")]
fn rec_ref<'m>(ctx: &'m RmiContext, pa: u64) -> &'m mut Rec {
    // SAFETY: callers hold the REC's lock, or own it through `running`.
    unsafe { mem::realm::<Rec>(ctx.mem, pa) }
}

/// Failure conditions, in order: rd_align/bound/state, rec_align/bound/state
/// (Delegated), params_align/bound/pas (ERROR_INPUT); realm_state (not New:
/// ERROR_REALM); num_aux (not RecAuxCount, 0 here), mpidr_index (the MPIDR is
/// not the Realm's next RecIndex), flags (only RUNNABLE) (ERROR_INPUT).
pub fn create(ctx: &RmiContext, rd: u64, rec_pa: u64, params_ptr: u64) -> Result<Out, RmiError> {
    let (grd, grec) = ctx.granules.lock_two((rd, Rd), (rec_pa, Delegated))?;
    let gp = ctx.granules.lock_also(params_ptr, Undelegated, &[&grd, &grec])?;
    let mut p = RmiRecParams::zeroed();
    // SAFETY: locked, Undelegated.
    unsafe { mem::read_ns(ctx.mem, params_ptr, &mut p) };
    drop(gp);
    // SAFETY: RD lock held.
    let r = unsafe { mem::realm::<Rd>(ctx.mem, rd) };
    if r.state() != RealmState::New {
        return Err(RmiError::Realm);
    }
    if p.num_aux != REC_AUX_COUNT || rec::mpidr_to_index(p.mpidr) != Some(r.rec_index) || p.flags & !RMI_REC_FLAG_RUNNABLE != 0 {
        return Err(RmiError::Input);
    }
    // SAFETY: locked Delegated granule, becoming the REC.
    unsafe { mem::realm::<Page>(ctx.mem, rec_pa) }.fill(0);
    let rc = rec_ref(ctx, rec_pa);
    rc.owner = rd;
    rc.mpidr = p.mpidr;
    rc.index = r.rec_index;
    rc.runnable = p.flags & RMI_REC_FLAG_RUNNABLE;
    rc.x[..REC_CREATE_NR_GPRS].copy_from_slice(&p.gprs);
    rc.pc = p.pc;
    rc.pstate = rec::INITIAL_PSTATE;
    rc.sysregs[Rec::SCTLR] = rec::SCTLR_EL1_RESET;
    rc.sysregs[Rec::CPACR] = rec::CPACR_EL1_FPEN;
    r.rec_index += 1;
    let algo = r.algo();
    measurement::extend_rec(algo, &mut r.measurements[0], &p);
    grec.set_state(Rec);
    grd.refcount_add(1);
    Ok(Out::ok(&[]))
}

/// Failure conditions: rec_align/bound/state (ERROR_INPUT); rec running
/// (ERROR_REC).  The REC is scrubbed and Delegated; its Realm loses a REC.
pub fn destroy(ctx: &RmiContext, rec_pa: u64) -> Result<Out, RmiError> {
    let owner = {
        let _g = ctx.granules.lock(rec_pa, Rec)?;
        rec_ref(ctx, rec_pa).owner
    };
    // RD before REC, as everywhere (lock_two orders them by address).
    let (grd, grec) = ctx.granules.lock_two((owner, Rd), (rec_pa, Rec))?;
    let rc = rec_ref(ctx, rec_pa);
    if rc.owner != owner {
        return Err(RmiError::Input);
    }
    if rc.running != 0 {
        return Err(RmiError::Rec);
    }
    // SAFETY: locked REC granule leaving the Realm.
    unsafe { mem::realm::<Page>(ctx.mem, rec_pa) }.fill(0);
    grec.set_state(Delegated);
    grd.refcount_add(-1);
    Ok(Out::ok(&[]))
}

/// RecAuxCount: 0.  A REC's whole state (GPRs, EL1 system registers,
/// FP/SIMD, GIC and timer state, the attestation context) fits in its own
/// granule, because rmm offers Realms neither SVE nor the PMU (RMI_FEATURES
/// SVE_EN = PMU_EN = 0), the state TF-RMM keeps in its 16 aux granules.
pub const REC_AUX_COUNT: u64 = 0;

/// Failure conditions: rd_align/bound/state (ERROR_INPUT).  x1 =
/// [`REC_AUX_COUNT`].
pub fn aux_count(ctx: &RmiContext, rd: u64) -> Result<Out, RmiError> {
    let _g = ctx.granules.lock(rd, Rd)?;
    Ok(Out::ok(&[REC_AUX_COUNT]))
}

/// Failure conditions: calling_align/bound/state, target_align/bound/state
/// (REC), alias (ERROR_INPUT); either REC running (ERROR_REC); no PSCI
/// request pending on the caller, target in another Realm, target not the
/// MPIDR the request named, a status the request cannot complete with
/// (ERROR_INPUT).  Completes CPU_ON (making the target runnable at the
/// requested entry point, or ALREADY_ON) and AFFINITY_INFO.
pub fn psci_complete(ctx: &RmiContext, calling: u64, target: u64, status: u64) -> Result<Out, RmiError> {
    use shared::abi::psci::{PSCI_AFFINITY_INFO_64, PSCI_CPU_ON_64};
    let (_gc, _gt) = ctx.granules.lock_two((calling, Rec), (target, Rec))?;
    let (c, t) = (rec_ref(ctx, calling), rec_ref(ctx, target));
    if c.running != 0 || t.running != 0 {
        return Err(RmiError::Rec);
    }
    if c.pending != pending::PSCI || c.owner != t.owner || t.mpidr != c.psci_target {
        return Err(RmiError::Input);
    }
    const PSCI_SUCCESS: u64 = 0;
    const PSCI_DENIED: u64 = (-3i64) as u64;
    const PSCI_ALREADY_ON: u64 = (-4i64) as u64;
    match c.psci_fid as u32 {
        PSCI_CPU_ON_64 => {
            if status != PSCI_SUCCESS && status != PSCI_DENIED {
                return Err(RmiError::Input);
            }
            if status != PSCI_SUCCESS {
                c.x[0] = status;
            } else if t.runnable != 0 {
                c.x[0] = PSCI_ALREADY_ON;
            } else {
                // DEN0137 PSCI_CPU_ON from a Realm: the target starts at the entry point with x0 = context id.
                t.runnable = 1;
                t.pc = c.x[2];
                t.x = [0; 31];
                t.x[0] = c.x[3];
                t.pstate = rec::INITIAL_PSTATE;
                t.sysregs = [0; rec::NUM_SYSREGS];
                t.sysregs[Rec::SCTLR] = rec::SCTLR_EL1_RESET;
                t.sysregs[Rec::CPACR] = rec::CPACR_EL1_FPEN;
                // A CPU that was off has no interrupt active.
                t.gic_ap0r = [0; 4];
                t.gic_ap1r = [0; 4];
                c.x[0] = PSCI_SUCCESS;
            }
        }
        PSCI_AFFINITY_INFO_64 => {
            if status != PSCI_SUCCESS {
                return Err(RmiError::Input);
            }
            c.x[0] = if t.runnable != 0 { 0 } else { 1 };
        }
        _ => return Err(RmiError::Input),
    }
    c.pending = pending::NONE;
    Ok(Out::ok(&[]))
}

/// Failure conditions, in order: rec_align/bound/state, run_ptr
/// align/bound/pas (ERROR_INPUT); realm_state (New or SystemOff:
/// ERROR_REALM); rec not runnable, running, or waiting for PSCI_COMPLETE
/// (ERROR_REC); gicv3_hcr with bits the Host may not set (ERROR_REC).
/// Then completes what the last exit asked the Host for (emulated MMIO read,
/// host call results, RIPAS change response), runs the REC until an exit the
/// Host must see, and writes RmiRecExit.
pub fn enter(ctx: &RmiContext, rec_pa: u64, run_pa: u64) -> Result<Out, RmiError> {
    let owner = {
        let _g = ctx.granules.lock(rec_pa, Rec)?;
        rec_ref(ctx, rec_pa).owner
    };
    let (grd, grec) = ctx.granules.lock_two((owner, Rd), (rec_pa, Rec))?;
    let mut run = RmiRecRun::zeroed();
    {
        let _grun = ctx.granules.lock_also(run_pa, Undelegated, &[&grd, &grec])?;
        // SAFETY: locked, Undelegated; only the entry half is read.
        unsafe { mem::read_ns(ctx.mem, run_pa, &mut run.enter) };
    }
    // SAFETY: RD lock held.
    let r = unsafe { mem::realm::<Rd>(ctx.mem, owner) };
    let rc = rec_ref(ctx, rec_pa);
    if rc.owner != owner {
        return Err(RmiError::Input);
    }
    if r.state() != RealmState::Active {
        return Err(RmiError::Realm);
    }
    if rc.runnable == 0 || rc.running != 0 || rc.pending == pending::PSCI {
        return Err(RmiError::Rec);
    }
    if run.enter.gicv3_hcr & !GICV3_HCR_ALLOWED != 0 {
        return Err(RmiError::Rec);
    }
    // The Host may ask for a Synchronous External Abort only after a Data
    // Abort at an Unprotected IPA, and (unless it asks for that abort, which
    // takes precedence) complete an MMIO access only after an Emulatable
    // Data Abort exit (DEN0137 "REC exit"; TF-RMM answers both with
    // RMI_ERROR_REC).  Checked before anything changes.
    let inject_sea = run.enter.flags & RMI_REC_ENTER_INJECT_SEA != 0;
    let mmio_pending = matches!(rc.pending, pending::MMIO_READ | pending::MMIO_WRITE);
    if inject_sea && rc.sea_allowed == 0 {
        return Err(RmiError::Rec);
    }
    if run.enter.flags & RMI_REC_ENTER_EMUL_MMIO != 0 && !inject_sea && !mmio_pending {
        return Err(RmiError::Rec);
    }
    complete_pending(ctx, r, rc, &run.enter);
    rc.gic_hcr = run.enter.gicv3_hcr;
    rc.gic_lrs = run.enter.gicv3_lrs;
    let mut hcr = HCR_REALM;
    if run.enter.flags & RMI_REC_ENTER_TRAP_WFI != 0 {
        hcr |= HCR_TWI;
    }
    if run.enter.flags & RMI_REC_ENTER_TRAP_WFE != 0 {
        hcr |= HCR_TWE;
    }
    let cfg = RunConfig { vttbr: r.rtt_base | r.vmid << 48, vtcr: r.rtt().vtcr(ctx.hw.pa_range.min(5) as u64), hcr };
    rc.running = 1;
    drop((grd, grec));

    // The REC is ours through `running` until we clear it.
    let exit = loop {
        let timers = rc.timers_asserted();
        let raw = ctx.cpu.run(rc, &cfg);
        if let rsi::Action::Exit(e) = rsi::handle_exit(ctx, owner, rc, &raw) {
            break e;
        }
        // A timer output that changed (asserted or retired) goes to the Host,
        // which injects or retires its virtual interrupt (RmiRecExit.cntv_ctl).
        if rc.timers_asserted() != timers {
            break rsi::exit(RMI_EXIT_IRQ);
        }
    };

    {
        let _g = ctx.granules.lock(rec_pa, Rec)?;
        rc.running = 0;
    }
    let mut x = exit;
    x.gicv3_hcr = rc.gic_hcr;
    x.gicv3_lrs = rc.gic_lrs;
    x.gicv3_vmcr = rc.gic_vmcr;
    x.cntv_ctl = rc.sysregs[Rec::CNTV_CTL];
    x.cntv_cval = rc.sysregs[Rec::CNTV_CVAL];
    x.cntp_ctl = rc.cntp_ctl;
    x.cntp_cval = rc.cntp_cval;
    let grun = ctx.granules.lock(run_pa, Undelegated);
    if let Ok(_g) = grun {
        // SAFETY: locked, Undelegated; the exit half is at offset 0x800.
        unsafe { mem::write_ns(ctx.mem, run_pa + 0x800, &x) };
    }
    Ok(Out::ok(&[]))
}

/// The Host's answer to the previous exit, applied before the REC runs again.
fn complete_pending(ctx: &RmiContext, r: &mut Rd, rc: &mut Rec, e: &RmiRecEnter) {
    if e.flags & RMI_REC_ENTER_INJECT_SEA != 0 {
        // The abort is taken at the access itself: no emulation, the
        // destination register and the PC stay as they were.
        rsi::inject_sea(rc, rc.sea_far);
        rc.pending = pending::NONE;
        rc.sea_allowed = 0;
        return;
    }
    match rc.pending {
        pending::MMIO_READ => {
            if e.flags & RMI_REC_ENTER_EMUL_MMIO != 0 {
                if rc.mmio_reg < 31 {
                    rc.x[rc.mmio_reg as usize] = e.gprs[0];
                }
                rc.pc += 4;
            }
        }
        pending::MMIO_WRITE => {
            if e.flags & RMI_REC_ENTER_EMUL_MMIO != 0 {
                rc.pc += 4;
            }
        }
        pending::SYSREG_READ => {
            if rc.mmio_reg < 31 {
                rc.x[rc.mmio_reg as usize] = e.gprs[0];
            }
            rc.pc += 4;
        }
        pending::SYSREG_WRITE => rc.pc += 4,
        pending::HOST_CALL => {
            rsi::complete_host_call(ctx, r, rc, &e.gprs);
        }
        pending::RIPAS => {
            // RSI_IPA_STATE_SET returns: x1 = where the change stopped, x2 = response.
            let reject = e.flags & RMI_REC_ENTER_RIPAS_RESPONSE != 0;
            rc.x[0] = 0;
            rc.x[1] = rc.ripas_base;
            rc.x[2] = if reject { shared::abi::rsi::RSI_REJECT } else { shared::abi::rsi::RSI_ACCEPT };
        }
        _ => {}
    }
    rc.pending = pending::NONE;
    rc.sea_allowed = 0;
}
