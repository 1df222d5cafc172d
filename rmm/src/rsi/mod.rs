//! What a REC's exits to R-EL2 mean (DEN0137 RMM 1.0, A4.3 "REC exit", and its
//! "Realm data abort") and the Realm Services Interface (B5.3 "RSI
//! commands"), the SMCs a Realm makes to us.  Plain logic over the
//! [`RealmCpu`](crate::rmi::rec::RealmCpu)'s raw exits, so it runs on the host.
//!
//! Commands answered here and the REC resumes: RSI_VERSION, RSI_FEATURES,
//! RSI_MEASUREMENT_READ/EXTEND, RSI_REALM_CONFIG, RSI_IPA_STATE_GET,
//! RSI_ATTESTATION_TOKEN_INIT/CONTINUE (crate::attest), PSCI_VERSION/FEATURES.  Commands that need the Host end
//! RMI_REC_ENTER: RSI_IPA_STATE_SET (RIPAS_CHANGE), RSI_HOST_CALL
//! (HOST_CALL), PSCI CPU_ON/AFFINITY_INFO/CPU_OFF/SYSTEM_OFF/SYSTEM_RESET/
//! CPU_SUSPEND (PSCI).

use crate::granule::GranuleState;
use crate::mem::{self, Memory};
use crate::measurement;
use crate::realm::{Rd, RealmState};
use crate::rec::{Rec, pending};
use crate::rmi::RmiContext;
use crate::rmi::rec::{ExitKind, RawExit};
use crate::rtt::{self, Entry, Ripas, block_size};
use shared::abi::psci as p;
use shared::abi::rmi::*;
use shared::abi::rsi::*;

pub enum Action {
    /// Back into the Realm.
    Resume,
    /// End RMI_REC_ENTER with this exit (the caller adds GIC and timer state).
    Exit(RmiRecExit),
}

const EC_WFX: u64 = 0x01;
const EC_HVC64: u64 = 0x16;
const EC_SYSREG: u64 = 0x18;
const EC_SMC64: u64 = 0x17;
const EC_IABT_LOW: u64 = 0x20;
const EC_DABT_LOW: u64 = 0x24;
const ESR_ISV: u64 = 1 << 24;
const ESR_WNR: u64 = 1 << 6;
/// ESR bits a Host may see for an emulatable data abort: EC, IL, ISV, SAS,
/// SSE, SF, AR, WnR, DFSC (SRT is hidden: the value travels in gprs[0]).
const ESR_DABT_EMUL_MASK: u64 = (0x3f << 26) | (1 << 25) | ESR_ISV | (3 << 22) | (1 << 21) | (1 << 15) | (1 << 14) | ESR_WNR | 0x3f;
/// ... and for any other data/instruction abort: EC, IL, WnR?, the fault status.
const ESR_ABORT_MASK: u64 = (0x3f << 26) | (1 << 25) | 0x3f;

const NOT_SUPPORTED: u64 = u64::MAX;
/// SMCCC_VERSION's answer: 1.2 (DEN0028), what the RSI needs (SMC64, x0..x17).
const SMCCC_VERSION_1_2: u64 = 0x1_0002;

/// An RmiRecExit with only its reason set.
pub fn exit(reason: u64) -> RmiRecExit {
    let mut e = RmiRecExit::new_zeroed_exit();
    e.exit_reason = reason;
    e
}

trait NewExit {
    fn new_zeroed_exit() -> Self;
}
impl NewExit for RmiRecExit {
    fn new_zeroed_exit() -> Self {
        RmiRecRun::zeroed().exit
    }
}

/// Decides what an exit of `rec` (of the Realm whose RD is `rd`) means.
pub fn handle_exit(ctx: &RmiContext, rd: u64, rec: &mut Rec, raw: &RawExit) -> Action {
    match raw.kind {
        ExitKind::Irq => Action::Exit(exit(RMI_EXIT_IRQ)),
        ExitKind::Fiq => Action::Exit(exit(RMI_EXIT_FIQ)),
        ExitKind::SError => {
            let mut e = exit(RMI_EXIT_SERROR);
            e.esr = raw.esr;
            Action::Exit(e)
        }
        ExitKind::Sync => match raw.esr >> 26 {
            EC_SMC64 => {
                // A trapped SMC returns to the SMC itself (DDI0487, "SMC" when trapped by HCR_EL2.TSC): step over it.
                rec.pc += 4;
                handle_smc(ctx, rd, rec)
            }
            EC_HVC64 => {
                rec.x[0] = NOT_SUPPORTED;
                Action::Resume
            }
            EC_DABT_LOW => data_abort(ctx, rd, rec, raw),
            EC_SYSREG => {
                // A trapped MSR/MRS (with HCR_EL2.IMO, ICC_SGI1R_EL1 writes
                // trap: the Host routes the SGI).  The Host sees the ISS
                // without Rt; a write's value is in gprs[0], a read's comes
                // back in RmiRecEnter.gprs[0]; the PC steps over it on the
                // next entry.
                let rt = (raw.esr >> 5) & 0x1f;
                let read = raw.esr & 1 != 0;
                let mut e = exit(RMI_EXIT_SYNC);
                e.esr = raw.esr & !(0x1f << 5) & 0xffff_ffff;
                if !read {
                    e.gprs[0] = if rt == 31 { 0 } else { rec.x[rt as usize] };
                }
                rec.pending = if read { pending::SYSREG_READ } else { pending::SYSREG_WRITE };
                rec.mmio_reg = rt;
                Action::Exit(e)
            }
            EC_IABT_LOW => {
                let mut e = exit(RMI_EXIT_SYNC);
                e.esr = raw.esr & ESR_ABORT_MASK;
                e.hpfar = raw.hpfar;
                Action::Exit(e)
            }
            EC_WFX => {
                rec.pc += 4;
                let mut e = exit(RMI_EXIT_SYNC);
                e.esr = raw.esr;
                Action::Exit(e)
            }
            _ => {
                let mut e = exit(RMI_EXIT_SYNC);
                e.esr = raw.esr & (0x3f << 26 | 1 << 25);
                Action::Exit(e)
            }
        },
    }
}

fn with_rd<T>(ctx: &RmiContext, rd: u64, f: impl FnOnce(&mut Rd) -> T) -> T {
    let _g = ctx.granules.lock(rd, GranuleState::Rd).expect("a running REC's RD exists");
    // SAFETY: RD lock held.
    f(unsafe { mem::realm::<Rd>(ctx.mem, rd) })
}

/// DEN0137 "Realm memory access": an abort at an unprotected IPA with a valid syndrome is an
/// emulatable MMIO access for the Host; a data access to a protected IPA
/// whose RIPAS is EMPTY takes a Synchronous External Abort in the Realm
/// (DEN0137 "Realm data access": the Host is not involved); any other
/// Stage-2 abort goes to the Host without the syndrome details.
fn data_abort(ctx: &RmiContext, rd: u64, rec: &mut Rec, raw: &RawExit) -> Action {
    let ipa = ((raw.hpfar >> 4) << 12) | (raw.far & 0xfff);
    let (unprotected, empty) = with_rd(ctx, rd, |r| {
        let cfg = r.rtt();
        if !cfg.ipa_in_range(ipa) || cfg.is_unprotected(ipa) {
            return (cfg.is_unprotected(ipa), false);
        }
        // SAFETY: RD lock held; ipa in range.
        let w = unsafe { rtt::walk(ctx.mem, &cfg, ipa, 3) };
        (false, matches!(w.entry, Entry::Unassigned(Ripas::Empty) | Entry::Assigned { ripas: Ripas::Empty, .. }))
    });
    if empty {
        inject_sea(rec, raw.far);
        return Action::Resume;
    }
    let mut e = exit(RMI_EXIT_SYNC);
    e.hpfar = raw.hpfar;
    if unprotected {
        rec.sea_allowed = 1;
        rec.sea_far = raw.far;
    }
    if unprotected && raw.esr & ESR_ISV != 0 {
        e.esr = raw.esr & ESR_DABT_EMUL_MASK;
        e.far = raw.far & 0xfff;
        let srt = (raw.esr >> 16) & 0x1f;
        if raw.esr & ESR_WNR != 0 {
            e.gprs[0] = if srt == 31 { 0 } else { rec.x[srt as usize] };
            rec.pending = pending::MMIO_WRITE;
        } else {
            rec.pending = pending::MMIO_READ;
            rec.mmio_reg = srt;
        }
    } else {
        e.esr = raw.esr & ESR_ABORT_MASK;
    }
    Action::Exit(e)
}

/// Takes a Synchronous External Abort on a data access at R-EL1 (or EL0):
/// what the hardware would do (DDI0487, "Exception entry"): ESR_EL1 =
/// data abort (EC 0x25 from EL1, 0x24 from EL0), IL, DFSC 0b010000 (SEA not
/// on a walk); FAR_EL1 = the VA; ELR/SPSR_EL1 = where it happened; the REC
/// continues at VBAR_EL1 + the vector offset in EL1h with DAIF masked.
pub fn inject_sea(rec: &mut Rec, far: u64) {
    let (ec, offset) = match rec.pstate & 0xf {
        0 => (0x24u64, 0x400u64),  // EL0t: lower EL, AArch64
        0b0100 => (0x25, 0x000), // EL1t: current EL, SP_EL0
        _ => (0x25, 0x200),      // EL1h: current EL, SP_ELx
    };
    rec.sysregs[Rec::ESR] = ec << 26 | 1 << 25 | 0b01_0000;
    rec.sysregs[Rec::FAR] = far;
    rec.sysregs[Rec::ELR] = rec.pc;
    rec.sysregs[Rec::SPSR] = rec.pstate;
    rec.pc = rec.sysregs[Rec::VBAR] + offset;
    rec.pstate = crate::rec::INITIAL_PSTATE;
}

/// The PA behind a protected, RAM-assigned `ipa` (RD lock held).
fn ram_pa(m: &dyn Memory, r: &Rd, ipa: u64) -> Option<u64> {
    let cfg = r.rtt();
    if !cfg.ipa_in_range(ipa) || cfg.is_unprotected(ipa) {
        return None;
    }
    // SAFETY: RD lock held by the caller; ipa in range.
    let w = unsafe { rtt::walk(m, &cfg, ipa, 3) };
    match w.entry {
        Entry::Assigned { pa, ripas: Ripas::Ram } => Some(pa + (ipa & (block_size(w.level) - 1))),
        _ => None,
    }
}

fn handle_smc(ctx: &RmiContext, rd: u64, rec: &mut Rec) -> Action {
    let fid = rec.x[0] as u32;
    let a = |n: usize| rec.x[n];
    let status = |s: RsiStatus| s as u64;
    match fid {
        RSI_VERSION => {
            rec.x[0] = if a(1) == RSI_ABI_VERSION { 0 } else { status(RsiStatus::ErrorInput) };
            rec.x[1] = RSI_ABI_VERSION;
            rec.x[2] = RSI_ABI_VERSION;
        }
        RSI_FEATURES => {
            rec.x[0] = 0;
            rec.x[1] = 0;
        }
        RSI_MEASUREMENT_READ => {
            let idx = a(1);
            if idx as usize >= MEASUREMENT_SLOTS {
                rec.x[0] = status(RsiStatus::ErrorInput);
            } else {
                let m = with_rd(ctx, rd, |r| r.measurements[idx as usize]);
                rec.x[0] = 0;
                for (i, chunk) in m.chunks_exact(8).enumerate() {
                    rec.x[1 + i] = u64::from_le_bytes(chunk.try_into().unwrap());
                }
            }
        }
        RSI_MEASUREMENT_EXTEND => {
            let (idx, size) = (a(1), a(2));
            if idx == 0 || idx as usize >= MEASUREMENT_SLOTS || size > 64 {
                rec.x[0] = status(RsiStatus::ErrorInput);
            } else {
                let mut value = [0u8; 64];
                for i in 0..8 {
                    value[8 * i..8 * i + 8].copy_from_slice(&rec.x[3 + i].to_le_bytes());
                }
                with_rd(ctx, rd, |r| {
                    let algo = r.algo();
                    measurement::extend_rem(algo, &mut r.measurements[idx as usize], &value[..size as usize])
                });
                rec.x[0] = 0;
            }
        }
        RSI_ATTESTATION_TOKEN_INIT => attestation_token_init(ctx, rd, rec),
        RSI_ATTESTATION_TOKEN_CONTINUE => attestation_token_continue(ctx, rd, rec),
        RSI_REALM_CONFIG => {
            let addr = a(1);
            let ok = addr % 0x1000 == 0
                && with_rd(ctx, rd, |r| match ram_pa(ctx.mem, r, addr) {
                    Some(pa) => {
                        // SAFETY: a DATA granule of this Realm; the RD lock keeps it mapped.
                        let c: &mut RsiRealmConfig = unsafe { mem::realm(ctx.mem, pa) };
                        c.ipa_width = r.ipa_bits;
                        c.hash_algo = r.hash_algo;
                        c.rpv = r.rpv;
                        true
                    }
                    None => false,
                });
            rec.x[0] = if ok { 0 } else { status(RsiStatus::ErrorInput) };
        }
        RSI_IPA_STATE_GET => {
            let (base, top) = (a(1), a(2));
            match with_rd(ctx, rd, |r| ipa_state_get(ctx.mem, r, base, top)) {
                Some((reached, ripas)) => {
                    rec.x[0] = 0;
                    rec.x[1] = reached;
                    rec.x[2] = ripas;
                }
                None => rec.x[0] = status(RsiStatus::ErrorInput),
            }
        }
        RSI_IPA_STATE_SET => {
            let (base, top, ripas, flags) = (a(1), a(2), a(3), a(4));
            let prot_end = with_rd(ctx, rd, |r| 1u64 << (r.ipa_bits - 1));
            if base % 0x1000 != 0 || top % 0x1000 != 0 || top <= base || top > prot_end || ripas > RSI_RAM || flags & !RSI_CHANGE_DESTROYED != 0 {
                rec.x[0] = status(RsiStatus::ErrorInput);
            } else {
                rec.pending = pending::RIPAS;
                rec.ripas_base = base;
                rec.ripas_top = top;
                rec.ripas_value = ripas;
                rec.ripas_destroyed = flags & RSI_CHANGE_DESTROYED;
                let mut e = exit(RMI_EXIT_RIPAS_CHANGE);
                e.ripas_base = base;
                e.ripas_top = top;
                e.ripas_value = ripas;
                return Action::Exit(e);
            }
        }
        RSI_HOST_CALL => {
            let addr = a(1);
            let call = with_rd(ctx, rd, |r| {
                let pa = ram_pa(ctx.mem, r, addr).filter(|_| addr % 0x100 == 0)?;
                // SAFETY: inside a DATA granule of this Realm (0x100-aligned,
                // 0x100 long); the RD lock keeps it mapped.
                let c: &mut RsiHostCall = unsafe { &mut *(ctx.mem.realm_va(pa) as *mut RsiHostCall) };
                Some(c.clone())
            });
            match call {
                None => rec.x[0] = status(RsiStatus::ErrorInput),
                Some(c) => {
                    rec.pending = pending::HOST_CALL;
                    rec.host_call = addr;
                    let mut e = exit(RMI_EXIT_HOST_CALL);
                    e.imm = c.imm & 0xffff;
                    e.gprs = c.gprs;
                    return Action::Exit(e);
                }
            }
        }
        shared::abi::smccc_id::SMCCC_VERSION => rec.x[0] = SMCCC_VERSION_1_2,
        shared::abi::smccc_id::SMCCC_ARCH_FEATURES => {
            // Only the two architecture calls answered here; the
            // ARCH_WORKAROUND_* calls and the rest are not implemented for a Realm.
            let f = a(1) as u32;
            rec.x[0] = if f == shared::abi::smccc_id::SMCCC_VERSION || f == shared::abi::smccc_id::SMCCC_ARCH_FEATURES { 0 } else { NOT_SUPPORTED };
        }
        _ if is_psci(fid) => return psci(ctx, rd, rec, fid),
        _ => rec.x[0] = NOT_SUPPORTED,
    }
    Action::Resume
}

/// RSI_ATTESTATION_TOKEN_INIT(x1..x8 = challenge): starts (or restarts) a
/// token for this REC and returns in x1 an upper bound of its size.  The
/// measurements are captured now; EL3 is not involved until CONTINUE.
fn attestation_token_init(ctx: &RmiContext, rd: u64, rec: &mut Rec) {
    for i in 0..8 {
        rec.attest_challenge[8 * i..8 * i + 8].copy_from_slice(&rec.x[1 + i].to_le_bytes());
    }
    rec.attest_measurements = with_rd(ctx, rd, |r| r.measurements);
    rec.attest_offset = 0;
    rec.attest_in_progress = 1;
    rec.x[0] = RsiStatus::Success as u64;
    rec.x[1] = crate::attest::TOKEN_SIZE_BOUND as u64;
}

/// RSI_ATTESTATION_TOKEN_CONTINUE(x1 = addr, x2 = offset, x3 = size):
/// writes the token's next bytes (at most `size`) to the Realm granule at
/// IPA `addr`, from byte `offset` of that granule; x1 = bytes written.
/// RSI_INCOMPLETE while bytes remain, RSI_SUCCESS with the last ones.
///
/// RSI_ERROR_INPUT: `addr` not granule-aligned, outside the protected IPA
/// space, or not RAM-backed (we answer this one too: no Host exit to map
/// it); `offset` not inside the granule or `offset + size` past its end.
/// RSI_ERROR_STATE: no INIT before.  RSI_ERROR_UNKNOWN: EL3 gave no usable
/// key or platform token (the token in progress is abandoned).
fn attestation_token_continue(ctx: &RmiContext, rd: u64, rec: &mut Rec) {
    const GRANULE: u64 = 0x1000;
    let (addr, offset, size) = (rec.x[1], rec.x[2], rec.x[3]);
    let input_ok = addr.is_multiple_of(GRANULE) && offset < GRANULE && size <= GRANULE - offset;
    let protected = input_ok && with_rd(ctx, rd, |r| ram_pa(ctx.mem, r, addr).is_some());
    if !protected {
        rec.x[0] = RsiStatus::ErrorInput as u64;
        return;
    }
    if rec.attest_in_progress != 1 {
        rec.x[0] = RsiStatus::ErrorState as u64;
        return;
    }
    let (algo, rpv) = with_rd(ctx, rd, |r| (r.algo(), r.rpv));
    let algo = match algo {
        measurement::HashAlgo::Sha256 => cca_token::HashAlgo::Sha256,
        measurement::HashAlgo::Sha512 => cca_token::HashAlgo::Sha512,
    };
    let m = &rec.attest_measurements;
    let n = algo.size();
    let claims = cca_token::RealmClaims {
        challenge: &rec.attest_challenge,
        personalization_value: &rpv,
        hash_algo: algo,
        rim: &m[0][..n],
        rems: [&m[1][..n], &m[2][..n], &m[3][..n], &m[4][..n]],
    };
    let token = match ctx.attest.token(ctx.el3, &claims) {
        Ok(t) => t,
        Err(e) => {
            log::error!("attestation token: {e:?}");
            rec.attest_in_progress = 0;
            rec.x[0] = RsiStatus::ErrorUnknown as u64;
            return;
        }
    };
    // The token cannot change between calls (see crate::attest), so the offset stays valid.
    let done = (rec.attest_offset as usize).min(token.len());
    let part = &token[done..token.len().min(done + size as usize)];
    let written = with_rd(ctx, rd, |r| {
        // Checked again under this lock: the RTT may have changed while we signed.
        let pa = ram_pa(ctx.mem, r, addr)?;
        let dst = ctx.mem.realm_va(pa) + offset as usize;
        for (i, b) in part.iter().enumerate() {
            // SAFETY: a DATA granule of this Realm, mapped, kept by the RD
            // lock; offset + part.len() <= offset + size <= the granule size.
            unsafe { core::ptr::write_volatile((dst + i) as *mut u8, *b) };
        }
        Some(part.len())
    });
    let Some(written) = written else {
        rec.x[0] = RsiStatus::ErrorInput as u64;
        return;
    };
    rec.attest_offset = (done + written) as u64;
    rec.x[1] = written as u64;
    if done + written == token.len() {
        rec.attest_in_progress = 0;
        rec.x[0] = RsiStatus::Success as u64;
    } else {
        rec.x[0] = RsiStatus::Incomplete as u64;
    }
}

fn ipa_state_get(m: &dyn Memory, r: &Rd, base: u64, top: u64) -> Option<(u64, u64)> {
    let cfg = r.rtt();
    let prot_end = 1u64 << (cfg.ipa_bits - 1);
    if base % 0x1000 != 0 || top % 0x1000 != 0 || top <= base || top > prot_end {
        return None;
    }
    // SAFETY: the caller holds the RD lock (protecting the RTTs); `base` is
    // below `prot_end`, so in range.
    let first = unsafe { rtt::walk(m, &cfg, base, 3) };
    let ripas = first.entry.ripas();
    let mut addr = first.base(base) + block_size(first.level);
    while addr < top {
        // SAFETY: RD lock held as above; `addr < top <= prot_end`, so in range.
        let w = unsafe { rtt::walk(m, &cfg, addr, 3) };
        if w.entry.ripas() != ripas {
            break;
        }
        addr = w.base(addr) + block_size(w.level);
    }
    Some((addr.min(top), ripas as u64))
}

/// RSI_HOST_CALL completion at the next REC_ENTER: the Host's x0..x30 go
/// back into the Realm's RsiHostCall (RD lock held by the caller).
pub fn complete_host_call(ctx: &RmiContext, r: &mut Rd, rec: &mut Rec, gprs: &[u64; 31]) {
    if let Some(pa) = ram_pa(ctx.mem, r, rec.host_call) {
        // SAFETY: as in RSI_HOST_CALL.
        let c: &mut RsiHostCall = unsafe { &mut *(ctx.mem.realm_va(pa) as *mut RsiHostCall) };
        c.gprs = *gprs;
    }
    rec.x[0] = 0;
}

/// PSCI status codes (DEN0022) as the 64-bit register values a Realm reads.
fn psci_status(code: i32) -> u64 {
    code as i64 as u64
}

/// The answers to PSCI_CPU_ON / PSCI_AFFINITY_INFO that need no Host (the
/// failure conditions of DEN0137's PSCI_CPU_ON and PSCI_AFFINITY_INFO, as
/// TF-RMM's `runtime/rsi/psci.c` also applies them), or None: exit to the
/// Host, which completes the call with RMI_PSCI_COMPLETE.
/// - CPU_ON(target, entry, context): PSCI_INVALID_ADDRESS if `entry` is not
///   a protected IPA of the Realm; PSCI_INVALID_PARAMETERS if `target` is
///   not the MPIDR of a REC of this Realm; PSCI_ALREADY_ON if it is the
///   caller's own.
/// - AFFINITY_INFO(target, lowest_level): PSCI_INVALID_PARAMETERS if
///   `lowest_level` is not 0 or `target` is not a REC of this Realm; ON (0)
///   for the caller itself.
///
/// Without these a Realm naming itself would wait for a completion the Host
/// cannot give (RMI_PSCI_COMPLETE refuses a REC as its own target), and one
/// naming no REC would leave the Host nothing to complete it with.
pub fn psci_answer_here(ctx: &RmiContext, rd: u64, rec: &Rec, fid: u32) -> Option<u64> {
    let (target, arg2) = (rec.x[1], rec.x[2]);
    let (recs, par_end) = with_rd(ctx, rd, |r| (r.rec_index, 1u64 << (r.ipa_bits - 1)));
    if fid == p::PSCI_CPU_ON_64 && arg2 >= par_end {
        return Some(psci_status(p::status::INVALID_ADDRESS));
    }
    if fid == p::PSCI_AFFINITY_INFO_64 && arg2 != 0 {
        return Some(psci_status(p::status::INVALID_PARAMETERS));
    }
    match crate::rec::mpidr_to_index(target) {
        Some(i) if i < recs => {
            if i != rec.index {
                None
            } else if fid == p::PSCI_CPU_ON_64 {
                Some(psci_status(p::status::ALREADY_ON))
            } else {
                Some(0) // AFFINITY_INFO: ON
            }
        }
        _ => Some(psci_status(p::status::INVALID_PARAMETERS)),
    }
}

fn is_psci(fid: u32) -> bool {
    (0x8400_0000..=0x8400_001f).contains(&fid) || (0xc400_0000..=0xc400_001f).contains(&fid)
}

/// PSCI from a Realm (DEN0137 "Realm PSCI"): answered here when we can,
/// otherwise a PSCI exit with the call's x0..x3 for the Host.
fn psci(ctx: &RmiContext, rd: u64, rec: &mut Rec, fid: u32) -> Action {
    let psci_exit = |rec: &mut Rec| {
        let mut e = exit(RMI_EXIT_PSCI);
        e.gprs[..4].copy_from_slice(&rec.x[..4]);
        Action::Exit(e)
    };
    match fid {
        p::PSCI_VERSION => rec.x[0] = 0x1_0001,
        p::PSCI_FEATURES => {
            let f = rec.x[1] as u32;
            // SMCCC_VERSION too (DEN0022 PSCI_FEATURES; DEN0028: how a caller
            // learns SMCCC_VERSION exists — Linux then uses SMCCC 1.1+ calls,
            // which its Realm support needs: `arm_smccc_1_1_get_conduit`).
            let known = [shared::abi::smccc_id::SMCCC_VERSION, p::PSCI_VERSION, p::PSCI_FEATURES, p::PSCI_CPU_ON_64, p::PSCI_CPU_OFF, p::PSCI_AFFINITY_INFO_64, p::PSCI_SYSTEM_OFF, p::PSCI_SYSTEM_RESET, p::PSCI_CPU_SUSPEND_64];
            rec.x[0] = if known.contains(&f) { 0 } else { NOT_SUPPORTED };
        }
        p::PSCI_CPU_ON_64 | p::PSCI_AFFINITY_INFO_64 => {
            if let Some(answer) = psci_answer_here(ctx, rd, rec, fid) {
                rec.x[0] = answer;
                return Action::Resume;
            }
            rec.pending = pending::PSCI;
            rec.psci_fid = fid as u64;
            rec.psci_target = rec.x[1];
            return psci_exit(rec);
        }
        p::PSCI_CPU_OFF => {
            rec.runnable = 0;
            return psci_exit(rec);
        }
        p::PSCI_SYSTEM_OFF | p::PSCI_SYSTEM_RESET => {
            with_rd(ctx, rd, |r| r.set_state(RealmState::SystemOff));
            rec.runnable = 0;
            return psci_exit(rec);
        }
        p::PSCI_CPU_SUSPEND_64 => {
            let e = psci_exit(rec);
            rec.x[0] = 0;
            return e;
        }
        _ => rec.x[0] = NOT_SUPPORTED,
    }
    Action::Resume
}

#[cfg(test)]
mod sea_tests {
    use super::*;
    use zerocopy::FromZeros;

    #[test]
    fn sea_goes_to_the_current_el_vector() {
        let mut rec = Rec::new_zeroed();
        rec.pc = 0x4000_1234;
        rec.pstate = 0x3c5; // EL1h
        rec.sysregs[Rec::VBAR] = 0x4000_0800;
        inject_sea(&mut rec, 0x6000_0000);
        assert_eq!(rec.pc, 0x4000_0a00);
        assert_eq!(rec.sysregs[Rec::ELR], 0x4000_1234);
        assert_eq!(rec.sysregs[Rec::SPSR], 0x3c5);
        assert_eq!(rec.sysregs[Rec::ESR], 0x9600_0010);
        assert_eq!(rec.sysregs[Rec::FAR], 0x6000_0000);
        assert_eq!(rec.pstate, crate::rec::INITIAL_PSTATE);
        // From EL0: the lower-EL vector and EC.
        rec.pstate = 0;
        rec.pc = 0x1000;
        inject_sea(&mut rec, 0);
        assert_eq!(rec.pc, 0x4000_0c00);
        assert_eq!(rec.sysregs[Rec::ESR] >> 26, 0x24);
    }
}
