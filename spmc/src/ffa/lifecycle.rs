//! Partition lifecycle: the partitions and their execution contexts, boot
//! order, initialisation on each PE (FFA_SECONDARY_EP_REGISTER), and what
//! ends a partition: faults and FFA_ERROR from it make it "aborted" (DEN0077
//! v1.2, partition runtime model).

use super::calls::Call;
use super::console::LineBuf;
use super::cpu_cycles::{CtxState, SpStep};
use super::context::ExecutionContext;
use super::setup::rxtx::Mailbox;
use super::{Caller, MAX_CONTEXTS, MAX_PARTITIONS, Platform, Regs, Spmc, error, error_name, success};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use crate::partition::PartitionManifest;
use shared::abi::ffa::interface_args::SecondaryEpRegisterAddr;
use shared::abi::ffa::{FfaError, Interface};

/// Where a partition's memory is: its package region, identity mapped at Stage-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpMemory {
    pub base: u64,
    pub size: u64,
}

pub struct Partition {
    pub manifest: PartitionManifest,
    pub memory: SpMemory,
    /// One lock per execution context ([`super::context`]).
    pub(super) contexts: [spin::Mutex<ExecutionContext>; MAX_CONTEXTS],
    /// Faulted or failed: never run again; callers get ABORTED (DEN0077 v1.2).
    aborted: AtomicBool,
    /// FF-A version the SP asked for (its manifest's until it calls FFA_VERSION).
    version: AtomicU32,
    /// It made an FF-A call other than FFA_VERSION: its version is fixed.
    version_fixed: AtomicBool,
    /// Entry of secondary contexts (FFA_SECONDARY_EP_REGISTER), if registered.
    secondary_ep: spin::Mutex<Option<u64>>,
    pub(super) mailbox: spin::Mutex<Option<Mailbox>>,
    pub(super) line: spin::Mutex<LineBuf>,
    /// Physical device interrupts of this SP acknowledged and not yet deactivated.
    pub(super) active: spin::Mutex<[Option<u32>; 4]>,
    /// Its notification bitmaps (created when its manifest has `notification-support`).
    pub(super) notifications: super::notifications::SpBitmaps,
}

impl Partition {
    pub fn new(manifest: PartitionManifest, memory: SpMemory) -> Self {
        let notifications = if manifest.notification_support {
            super::notifications::Bitmaps::created((manifest.execution_ctx_count as usize).clamp(1, MAX_CONTEXTS))
        } else {
            super::notifications::Bitmaps::new()
        };
        Self {
            notifications: super::notifications::SpBitmaps::new(notifications),
            version: AtomicU32::new(manifest.ffa_version),
            version_fixed: AtomicBool::new(false),
            manifest,
            memory,
            contexts: [const { spin::Mutex::new(ExecutionContext::new()) }; MAX_CONTEXTS],
            aborted: AtomicBool::new(false),
            secondary_ep: spin::Mutex::new(None),
            mailbox: spin::Mutex::new(None),
            line: spin::Mutex::new(LineBuf::new()),
            active: spin::Mutex::new([None; 4]),
        }
    }

    pub fn context_count(&self) -> usize {
        (self.manifest.execution_ctx_count as usize).min(MAX_CONTEXTS)
    }

    /// The context that serves a call on `cpu`: an MP partition's context is
    /// pinned to its PE; a UP partition's one context migrates (DEN0077, UP and MP partitions).
    pub fn ctx_for(&self, cpu: usize) -> usize {
        if self.manifest.is_mp() { cpu.min(self.context_count() - 1) } else { 0 }
    }

    /// The runtime state of context `ctx` now.
    pub fn ctx_state(&self, ctx: usize) -> CtxState {
        self.contexts[ctx].lock().state
    }

    /// Aborted: it never runs again (DEN0077 v1.2, partition runtime model).
    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// The FF-A version it negotiated (its manifest's until it calls FFA_VERSION).
    pub fn version(&self) -> u32 {
        self.version.load(Ordering::Relaxed)
    }

    pub(super) fn set_version(&self, v: u32) {
        self.version.store(v, Ordering::Relaxed);
    }

    /// Its version can no longer change (see [`Spmc::handle_sp_call`]).
    pub fn version_fixed(&self) -> bool {
        self.version_fixed.load(Ordering::Relaxed)
    }

    pub(super) fn fix_version(&self) {
        if !self.version_fixed() {
            self.version_fixed.store(true, Ordering::Relaxed);
        }
    }

    /// Where its secondary contexts start (FFA_SECONDARY_EP_REGISTER), if registered.
    pub fn secondary_ep(&self) -> Option<u64> {
        *self.secondary_ep.lock()
    }
}

impl Spmc {
    /// Boot order (binding `boot-order`; DEN0077 boot order): lowest first, then manifest order.
    pub fn boot_sequence(&self) -> [Option<usize>; MAX_PARTITIONS] {
        let mut order: [Option<usize>; MAX_PARTITIONS] = [None; MAX_PARTITIONS];
        let mut idx: [usize; MAX_PARTITIONS] = core::array::from_fn(|i| i);
        let n = self.count;
        let key = |i: usize| (self.partitions[i].as_ref().map_or(0xffff, |p| p.manifest.boot_order), i);
        // Insertion sort: no `alloc` for `sort_by_key`, and n <= MAX_PARTITIONS.
        for a in 1..n {
            let mut b = a;
            while b > 0 && key(idx[b - 1]) > key(idx[b]) {
                idx.swap(b - 1, b);
                b -= 1;
            }
        }
        for (o, i) in order.iter_mut().zip(&idx[..n]) {
            *o = Some(*i);
        }
        order
    }

    /// Runs context `ctx` of SP `i` from its entry point until it calls
    /// FFA_MSG_WAIT (init done on that PE).
    pub fn init_partition(&self, i: usize, ctx: usize, cpu: usize, platform: &mut dyn Platform) -> Result<(), &'static str> {
        if self.part(i).is_aborted() {
            return Err("partition is aborted");
        }
        if self.run_until_wait(i, ctx, cpu, None, platform) {
            Ok(())
        } else {
            self.abort(i, "failed its initialisation");
            Err("partition failed its initialisation")
        }
    }

    /// Secondary-core boot (cold or warm): initialise each MP partition's
    /// context for this PE at its secondary entry point, in boot order
    /// (DEN0077 v1.2, FFA_SECONDARY_EP_REGISTER; Hafnium does the same).
    pub fn init_secondary(&self, cpu: usize, platform: &mut dyn Platform) {
        for i in self.boot_sequence().into_iter().flatten() {
            let p = self.part(i);
            if !p.manifest.is_mp() || p.is_aborted() || cpu >= p.context_count() {
                continue;
            }
            platform.reset_ctx(i, cpu, p.secondary_ep());
            self.lock_context(i, cpu).state = CtxState::Off;
            match self.init_partition(i, cpu, cpu, platform) {
                Ok(()) => log::info!("SP {} ({:#06x}): context {} ready on cpu {}", self.part(i).manifest.description, self.part(i).manifest.id, cpu, cpu),
                Err(e) => log::error!("SP {:#06x} context {}: {}", self.part(i).manifest.id, cpu, e),
            }
        }
    }

    /// Marks partition `i` aborted (DEN0077 v1.2 "aborted" partition state):
    /// it never runs again and every caller gets FFA_ERROR(ABORTED).
    pub(super) fn abort(&self, i: usize, why: &str) {
        let p = self.part(i);
        // Once, whichever PE sees its failure first.
        if !p.aborted.swap(true, Ordering::AcqRel) {
            log::error!("SP {} ({:#06x}) aborted: {}", p.manifest.description, p.manifest.id, why);
        }
    }

    /// Context `ctx` of SP `i` took an exception that is not a call: report
    /// it and abort the partition.
    pub(super) fn fault(&self, i: usize, ctx: usize, esr: u64, far: u64, elr: u64, ipa: Option<u64>) -> SpStep {
        let ec = esr >> 26;
        let what = match ec {
            0x20 | 0x21 => "instruction abort",
            0x24 | 0x25 => "data abort",
            _ => "exception",
        };
        let p = self.part(i);
        match ipa {
            Some(ipa) => log::error!(
                "SP {} ({:#06x}) ctx {}: Stage-2 {} at IPA {:#x} (far {:#x}, esr {:#x}, elr {:#x})",
                p.manifest.description, p.manifest.id, ctx, what, ipa, far, esr, elr
            ),
            None => log::error!(
                "SP {} ({:#06x}) ctx {}: {} (esr {:#x}, far {:#x}, elr {:#x})",
                p.manifest.description, p.manifest.id, ctx, what, esr, far, elr
            ),
        }
        self.abort(i, what);
        SpStep::Failed
    }

    /// FFA_SECONDARY_EP_REGISTER from an SP (DEN0077 v1.2, FFA_SECONDARY_EP_REGISTER): only during
    /// its initialisation, only for an MP partition, inside its own memory.
    fn secondary_ep_register(&self, i: usize, state: CtxState, entry: u64) -> Regs {
        let p = self.part(i);
        if state != CtxState::Off || !p.manifest.is_mp() {
            return error(FfaError::Denied);
        }
        let m = p.memory;
        if entry % 4 != 0 || entry < m.base || entry >= m.base + m.size {
            return error(FfaError::InvalidParameters);
        }
        *p.secondary_ep.lock() = Some(entry);
        success(&[])
    }
}

pub(super) fn ffa_secondary_ep_register(s: &Spmc, c: &Call, _: &mut dyn Platform) -> Regs {
    let Caller::Sp(i) = c.caller else { return error(FfaError::NotSupported) };
    let Some(Interface::SecondaryEpRegister { entrypoint }) = c.decoded else { return error(FfaError::InvalidParameters) };
    let entry = match entrypoint {
        SecondaryEpRegisterAddr::Addr32(a) => a as u64,
        SecondaryEpRegisterAddr::Addr64(a) => a,
    };
    // The calling context is this PE's alone while it runs: a copy of its state is current.
    let state = s.part(i).ctx_state(c.ctx);
    s.secondary_ep_register(i, state, entry)
}

/// FFA_ERROR from an SP: it failed (DEN0077 v1.2, FFA_ERROR); it is aborted.
pub(super) fn ffa_error(s: &Spmc, c: &Call, _: &mut dyn Platform) -> SpStep {
    let Caller::Sp(i) = c.caller else { return SpStep::Resume(error(FfaError::NotSupported)) };
    log::error!("SP {:#06x} reported error {}", s.part(i).manifest.id, error_name(c.regs[2]));
    s.abort(i, "reported FFA_ERROR");
    SpStep::Failed
}
