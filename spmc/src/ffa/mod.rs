//! The FF-A dispatcher of the SPMC: one [`Spmc`] value holds every partition's
//! state; [`Spmc::handle_ns`] answers one request that the SPMD forwarded from
//! the Normal world, running SPs as needed through a [`Platform`].  All of it is
//! plain logic: the host tests drive it with a fake platform and fake SPs.
//!
//! What really reaches us from NS (TF-A 2.12.1 `services/std_svc/spmd/spmd_main.c`,
//! `spmd_smc_handler`): the SPMD itself answers FFA_ID_GET (NS id 0),
//! FFA_SPM_ID_GET (our spmc_id), FFA_SECONDARY_EP_REGISTER (secure only),
//! FFA_CONSOLE_LOG (refused) and any unknown id (NOT_SUPPORTED).  It forwards:
//! FFA_VERSION (as a framework direct request, when the manifest's min_ver >= 1),
//! FFA_FEATURES, FFA_RXTX_MAP/UNMAP, FFA_RX_RELEASE, FFA_PARTITION_INFO_GET(_REGS),
//! FFA_MSG_SEND_DIRECT_REQ(2), memory sharing, notifications, FFA_RUN, FFA_MSG_SEND2.
//! Calls made by SPs trap to us (HCR_EL2.TSC) and never reach the SPMD.

pub mod interrupts;
pub mod partition_info;
pub mod rxtx;

use crate::manifest::Ranges;
use crate::partition::manifest::{MSG_DIRECT_REQ_RECV, MSG_DIRECT_REQ_SEND, MSG_DIRECT_REQ2_RECV, MSG_DIRECT_REQ2_SEND};
use crate::partition::{PartitionManifest, Uuid};
use interrupts::{NsAction, SecureAction, Serving, TargetState, VirqQueue};
use rxtx::Mailbox;
use shared::abi::ffa::{self as ffa, FfaError, fid, framework};

/// x0..x17 of a call or of its answer (SMCCC v1.2, DEN0028 §2.6).
pub type Regs = [u64; 18];

/// Most partitions, as in the manifest.
pub const MAX_PARTITIONS: usize = crate::manifest::MAX_SPS;
/// Endpoint id of the Normal world (the hypervisor, or the OS without one): DEN0077 §2.9.
pub const NS_ENDPOINT_ID: u16 = 0;

/// Most execution contexts of one partition: one per PE.
pub const MAX_CONTEXTS: usize = shared::percpu::MAX_CPUS;

/// How an SP run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpExit {
    /// The SP made an FF-A call (a trapped `smc`/`hvc`); x0..x17 as it left them.
    Call(Regs),
    /// Any other exception (abort, undefined instruction, ...): the SP is dead.
    /// `ipa`: the faulting IPA of a Stage-2 abort (HPFAR_EL2), if any.
    Fault { esr: u64, far: u64, elr: u64, ipa: Option<u64> },
    /// A Non-secure interrupt (FIQ in Secure state) stopped the SP; its
    /// registers are saved as they were, resuming continues where it was.
    NsInterrupt,
    /// A Secure interrupt (IRQ in Secure state) stopped the SP; the platform
    /// acknowledged it (priority dropped, not yet deactivated).  Resuming
    /// continues where the SP was.
    SecureInterrupt(u32),
}

/// How to run a context, decided by the dispatcher for each `run_sp`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunFlags {
    /// Non-secure interrupts trap to the SPMC (HCR_EL2.FMO); else they stay
    /// pending while the SP runs.
    pub trap_ns: bool,
    /// A virtual IRQ is pending for the context (HCR_EL2.VI).
    pub virq: bool,
}

/// What the dispatcher needs from the machine.
pub trait Platform {
    /// Maps `[pa, pa + size)` of the Non-secure PAS into the SPMC's address space.
    fn map_ns(&mut self, pa: u64, size: u64) -> Result<(), ()>;
    /// Undoes `map_ns`.
    fn unmap_ns(&mut self, pa: u64, size: u64);
    /// Writes `bytes` at `pa`, which is inside a range mapped by `map_ns` or an SP's memory.
    fn write(&mut self, pa: u64, bytes: &[u8]);
    /// Runs execution context `ctx` of SP `index` until its next FF-A call or
    /// fault.  `answer` is what its last call returns (None: the first run
    /// from its entry point).
    /// With `answer` None the context resumes exactly where it stopped (its
    /// first run, or after an interrupt).
    fn run_sp(&mut self, index: usize, ctx: usize, answer: Option<&Regs>, flags: RunFlags) -> SpExit;
    /// Acknowledges the highest-priority pending Secure Group 1 interrupt and
    /// drops its priority (GICv3 ICC_IAR1_EL1, ICC_EOIR1_EL1 with EOImode 1);
    /// [`interrupts::SPURIOUS_INTID`] if none.  Used when the SPMD enters us
    /// with FFA_INTERRUPT.
    fn acknowledge_interrupt(&mut self) -> u32;
    /// Deactivates a physical interrupt acknowledged earlier (ICC_DIR_EL1).
    fn deactivate_interrupt(&mut self, intid: u32);
    /// After the Secure EL2 physical timer fired: the SP contexts whose
    /// emulated timer expired (each reported once per arming), into `out`;
    /// returns how many.  Stops or re-arms the physical timer for the rest.
    fn timer_expired(&mut self, out: &mut [(usize, usize)]) -> usize;
    /// Puts context `ctx` of SP `index` back at an entry point: `entry`, or
    /// the partition's own entry point when None (DEN0077 §18.2: secondary
    /// contexts start at the FFA_SECONDARY_EP_REGISTER address).
    fn reset_ctx(&mut self, index: usize, ctx: usize, entry: Option<u64>);
    /// Prints one line of an SP's console output under its own prefix.
    fn sp_log(&mut self, prefix: &str, line: &str);
}

/// Which direct message ABI a request used; its response must match
/// (DEN0077 v1.2 §15.2, §15.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqKind {
    Req32,
    Req64,
    Req2,
}

/// Life cycle of one execution context (DEN0077 v1.2 §4.1, runtime states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxState {
    /// Not initialised on its PE (yet, or again after CPU_OFF).
    Off,
    /// Blocked in FFA_MSG_WAIT: may receive a direct request.
    Waiting,
    /// Handling a direct request from `from` (and maybe calling further SPs).
    Running { from: u16, kind: ReqKind },
    /// Gave the CPU back with FFA_YIELD while handling a request from the
    /// Normal world; resumed by FFA_RUN.
    Preempted { from: u16, kind: ReqKind },
    /// Preempted by a Non-secure interrupt (`ns-interrupts-action` 2) while
    /// handling a request from the Normal world; FFA_RUN resumes it where it
    /// was (DEN0077 v1.2 §8.3.1.1).
    Interrupted { from: u16, kind: ReqKind },
    /// Resumed from FFA_MSG_WAIT with FFA_INTERRUPT to handle a virtual
    /// interrupt; back to Waiting at its next FFA_MSG_WAIT.
    HandlingInterrupt,
}

/// Where a partition's memory is: its package region, identity mapped at Stage-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpMemory {
    pub base: u64,
    pub size: u64,
}

/// Console characters of one SP not yet ended by a newline.
#[derive(Clone, Copy)]
struct LineBuf {
    bytes: [u8; 128],
    len: usize,
}

impl LineBuf {
    const fn new() -> Self {
        Self { bytes: [0; 128], len: 0 }
    }
}

pub struct Partition {
    pub manifest: PartitionManifest,
    pub memory: SpMemory,
    pub contexts: [CtxState; MAX_CONTEXTS],
    /// Faulted or failed: never run again; callers get ABORTED (DEN0077 v1.2).
    pub aborted: bool,
    /// FF-A version the SP asked for (its manifest's until it calls FFA_VERSION).
    pub version: u32,
    /// Entry of secondary contexts (FFA_SECONDARY_EP_REGISTER), if registered.
    pub secondary_ep: Option<u64>,
    mailbox: Option<Mailbox>,
    line: LineBuf,
    /// Virtual interrupts pending per context.
    pub virqs: [VirqQueue; MAX_CONTEXTS],
    /// A managed exit was signalled to the context and not answered yet.
    pub managed_exit: [bool; MAX_CONTEXTS],
    /// Physical device interrupts of this SP acknowledged and not yet deactivated.
    active: [Option<u32>; 4],
}

impl Partition {
    pub fn new(manifest: PartitionManifest, memory: SpMemory) -> Self {
        Self {
            version: manifest.ffa_version,
            manifest,
            memory,
            contexts: [CtxState::Off; MAX_CONTEXTS],
            aborted: false,
            secondary_ep: None,
            mailbox: None,
            line: LineBuf::new(),
            virqs: [VirqQueue::default(); MAX_CONTEXTS],
            managed_exit: [false; MAX_CONTEXTS],
            active: [None; 4],
        }
    }

    pub fn context_count(&self) -> usize {
        (self.manifest.execution_ctx_count as usize).min(MAX_CONTEXTS)
    }

    /// The context that serves a call on `cpu`: an MP partition's context is
    /// pinned to its PE; a UP partition's one context migrates (DEN0077 §4.1.1).
    pub fn ctx_for(&self, cpu: usize) -> usize {
        if self.manifest.is_mp() { cpu.min(self.context_count() - 1) } else { 0 }
    }
}

/// Who made a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Ns,
    Sp(usize),
}

pub struct Spmc {
    pub id: u16,
    ns_memory: Ranges,
    partitions: [Option<Partition>; MAX_PARTITIONS],
    count: usize,
    /// FF-A version the Normal world negotiated through the SPMD (DEN0077 §13.2).
    ns_version: u32,
    ns_mailbox: Option<Mailbox>,
}

/// FFA_NORMAL_WORLD_RESUME (TF-A ffa_svc.h, function number 0x7C): the SPMC
/// is done with a secure interrupt the SPMD gave it with FFA_INTERRUPT.
pub const FFA_NORMAL_WORLD_RESUME: u32 = 0x8400_007C;

/// FFA_ERROR with `code` in w2 (DEN0077 §13.x FFA_ERROR).
pub fn error(code: FfaError) -> Regs {
    let mut r = [0; 18];
    r[0] = fid::FFA_ERROR as u64;
    r[2] = code as i32 as u32 as u64;
    r
}

/// FFA_SUCCESS_32 with w2.. = `args`.
pub fn success(args: &[u64]) -> Regs {
    let mut r = [0; 18];
    r[0] = fid::FFA_SUCCESS_32 as u64;
    for (d, s) in r[2..].iter_mut().zip(args) {
        *d = *s & 0xffff_ffff;
    }
    r
}

/// Name of a function id for log lines.
pub fn fid_name(f: u32) -> &'static str {
    match f {
        fid::FFA_VERSION => "FFA_VERSION",
        fid::FFA_FEATURES => "FEATURES",
        fid::FFA_RXTX_MAP_32 | fid::FFA_RXTX_MAP_64 => "RXTX_MAP",
        fid::FFA_RXTX_UNMAP => "RXTX_UNMAP",
        fid::FFA_RX_RELEASE => "RX_RELEASE",
        fid::FFA_RX_ACQUIRE => "RX_ACQUIRE",
        fid::FFA_PARTITION_INFO_GET => "PARTITION_INFO_GET",
        fid::FFA_PARTITION_INFO_GET_REGS => "PARTITION_INFO_GET_REGS",
        fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 => "DIRECT_REQ",
        fid::FFA_MSG_SEND_DIRECT_REQ2 => "DIRECT_REQ2",
        fid::FFA_RUN => "RUN",
        _ => "call",
    }
}

pub fn error_name(code: u64) -> &'static str {
    match code as u32 as i32 {
        -1 => "NOT_SUPPORTED",
        -2 => "INVALID_PARAMETERS",
        -3 => "NO_MEMORY",
        -4 => "BUSY",
        -5 => "INTERRUPTED",
        -6 => "DENIED",
        -7 => "RETRY",
        -8 => "ABORTED",
        -9 => "NO_DATA",
        _ => "?",
    }
}

/// Short text for an answer, for the one log line per NS request.
pub struct Outcome<'a>(pub &'a Regs);

impl core::fmt::Display for Outcome<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        let r = self.0;
        if r[0] == fid::FFA_ERROR as u64 {
            write!(f, "error {}", error_name(r[2]))
        } else if r[0] == fid::FFA_YIELD as u64 {
            write!(f, "yielded")
        } else {
            write!(f, "ok")
        }
    }
}

const fn version_str(v: u32) -> (u16, u16) {
    (ffa::version_major(v), ffa::version_minor(v))
}

/// Functions this SPMC implements, for FFA_FEATURES (DEN0077 v1.2 FFA_FEATURES).
const SUPPORTED: &[u32] = &[
    fid::FFA_ERROR,
    fid::FFA_SUCCESS_32,
    fid::FFA_INTERRUPT,
    fid::FFA_VERSION,
    fid::FFA_FEATURES,
    fid::FFA_RX_RELEASE,
    fid::FFA_RX_ACQUIRE,
    fid::FFA_RXTX_MAP_32,
    fid::FFA_RXTX_MAP_64,
    fid::FFA_RXTX_UNMAP,
    fid::FFA_PARTITION_INFO_GET,
    fid::FFA_PARTITION_INFO_GET_REGS,
    fid::FFA_ID_GET,
    fid::FFA_SPM_ID_GET,
    fid::FFA_MSG_WAIT,
    fid::FFA_YIELD,
    fid::FFA_RUN,
    fid::FFA_MSG_SEND_DIRECT_REQ_32,
    fid::FFA_MSG_SEND_DIRECT_REQ_64,
    fid::FFA_MSG_SEND_DIRECT_RESP_32,
    fid::FFA_MSG_SEND_DIRECT_RESP_64,
    fid::FFA_MSG_SEND_DIRECT_REQ2,
    fid::FFA_MSG_SEND_DIRECT_RESP2,
    fid::FFA_SECONDARY_EP_REGISTER_64,
    fid::FFA_CONSOLE_LOG_32,
    fid::FFA_CONSOLE_LOG_64,
];

/// What to do after an SP's call was handled.
enum SpStep {
    /// Resume the SP with this answer.
    Resume(Regs),
    /// Resume the SP exactly where it stopped (after an interrupt).
    Continue,
    /// A Non-secure interrupt stopped it (only when trapped: see [`RunFlags`]).
    NsInterrupt,
    /// The SP blocked in FFA_MSG_WAIT.
    Waited,
    /// The SP answered a direct request (the response registers).
    Responded(Regs),
    /// The SP gave the CPU back to the Normal world caller (FFA_YIELD).
    Yielded,
    /// The SP reported a failure (FFA_ERROR) or faulted: it is aborted.
    Failed,
}

/// The direct response function id that answers a request of `kind`.
fn response_fid(kind: ReqKind) -> u32 {
    match kind {
        ReqKind::Req32 => fid::FFA_MSG_SEND_DIRECT_RESP_32,
        ReqKind::Req64 => fid::FFA_MSG_SEND_DIRECT_RESP_64,
        ReqKind::Req2 => fid::FFA_MSG_SEND_DIRECT_RESP2,
    }
}

impl Spmc {
    pub fn new(id: u16, ns_memory: Ranges) -> Self {
        Self {
            id,
            ns_memory,
            partitions: [const { None }; MAX_PARTITIONS],
            count: 0,
            ns_version: ffa::QUADRANT_FFA_VERSION,
            ns_mailbox: None,
        }
    }

    /// Adds a partition; its id must be new.  Returns its index.
    pub fn add_partition(&mut self, p: Partition) -> Result<usize, &'static str> {
        if p.manifest.id == self.id || self.find(p.manifest.id).is_some() {
            return Err("duplicate partition id");
        }
        let i = self.count;
        *self.partitions.get_mut(i).ok_or("too many partitions")? = Some(p);
        self.count += 1;
        Ok(i)
    }

    pub fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.partitions[..self.count].iter().flatten()
    }

    pub fn partition(&self, i: usize) -> Option<&Partition> {
        self.partitions.get(i)?.as_ref()
    }

    fn part_mut(&mut self, i: usize) -> &mut Partition {
        self.partitions[i].as_mut().expect("index from find/add_partition")
    }

    fn part(&self, i: usize) -> &Partition {
        self.partitions[i].as_ref().expect("index from find/add_partition")
    }

    fn find(&self, id: u16) -> Option<usize> {
        (0..self.count).find(|&i| self.partitions[i].as_ref().is_some_and(|p| p.manifest.id == id))
    }

    /// Boot order (DEN0077 §5.3 / binding `boot-order`): lowest first, then manifest order.
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
    pub fn init_partition(&mut self, i: usize, ctx: usize, cpu: usize, platform: &mut dyn Platform) -> Result<(), &'static str> {
        if self.part(i).aborted {
            return Err("partition is aborted");
        }
        if self.run_until_wait(i, ctx, cpu, None, platform) {
            Ok(())
        } else {
            self.abort(i, "failed its initialisation");
            Err("partition failed its initialisation")
        }
    }

    /// Runs context `ctx` of SP `i` (first with `answer` in its registers, if
    /// any) until it calls FFA_MSG_WAIT, which leaves the context Waiting.  A
    /// response with no request or a yield with no caller is refused with
    /// DENIED and the SP goes on.  Returns false if the SP failed (its fault or
    /// an invalid exit); the caller decides what that means.
    fn run_until_wait(&mut self, i: usize, ctx: usize, cpu: usize, mut answer: Option<Regs>, platform: &mut dyn Platform) -> bool {
        loop {
            let flags = self.run_flags(i, ctx);
            let exit = platform.run_sp(i, ctx, answer.as_ref(), flags);
            match self.sp_exit(i, ctx, cpu, exit, platform) {
                SpStep::Resume(r) => answer = Some(r),
                SpStep::Continue | SpStep::NsInterrupt => answer = None,
                SpStep::Waited => {
                    self.part_mut(i).contexts[ctx] = CtxState::Waiting;
                    return true;
                }
                SpStep::Responded(_) | SpStep::Yielded => answer = Some(error(FfaError::Denied)),
                SpStep::Failed => return false,
            }
        }
    }

    /// Secondary-core boot (cold or warm): initialise each MP partition's
    /// context for this PE at its secondary entry point, in boot order
    /// (DEN0077 §18.2 FFA_SECONDARY_EP_REGISTER; Hafnium does the same).
    pub fn init_secondary(&mut self, cpu: usize, platform: &mut dyn Platform) {
        for i in self.boot_sequence().into_iter().flatten() {
            let p = self.part(i);
            if !p.manifest.is_mp() || p.aborted || cpu >= p.context_count() {
                continue;
            }
            let ep = p.secondary_ep;
            platform.reset_ctx(i, cpu, ep);
            self.part_mut(i).contexts[cpu] = CtxState::Off;
            match self.init_partition(i, cpu, cpu, platform) {
                Ok(()) => log::info!("SP {} ({:#06x}): context {} ready on cpu {}", self.part(i).manifest.description, self.part(i).manifest.id, cpu, cpu),
                Err(e) => log::error!("SP {:#06x} context {}: {}", self.part(i).manifest.id, cpu, e),
            }
        }
    }

    /// Marks partition `i` aborted (DEN0077 v1.2 "aborted" partition state):
    /// it never runs again and every caller gets FFA_ERROR(ABORTED).
    fn abort(&mut self, i: usize, why: &str) {
        let p = self.part_mut(i);
        if !p.aborted {
            p.aborted = true;
            log::error!("SP {} ({:#06x}) aborted: {}", p.manifest.description, p.manifest.id, why);
        }
    }

    fn sp_exit(&mut self, i: usize, ctx: usize, cpu: usize, exit: SpExit, platform: &mut dyn Platform) -> SpStep {
        match exit {
            SpExit::Fault { esr, far, elr, ipa } => {
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
            SpExit::Call(regs) => self.handle_sp_call(i, ctx, cpu, &regs, platform),
            SpExit::NsInterrupt => SpStep::NsInterrupt,
            SpExit::SecureInterrupt(intid) => {
                self.secure_interrupt(intid, cpu, Some((i, ctx)), platform);
                SpStep::Continue
            }
        }
    }

    /// Who context `ctx` of SP `i` serves, for the NS interrupt decision.
    fn serving(&self, i: usize, ctx: usize) -> Serving {
        match self.part(i).contexts[ctx] {
            CtxState::Running { from, .. } if !ffa::is_secure_endpoint(from) => Serving::Normal,
            CtxState::Running { .. } => Serving::Secure,
            _ => Serving::Nobody,
        }
    }

    /// How to run context `ctx` of SP `i` now (see [`interrupts::trap_ns_interrupts`]).
    fn run_flags(&self, i: usize, ctx: usize) -> RunFlags {
        let p = self.part(i);
        RunFlags {
            trap_ns: interrupts::trap_ns_interrupts(p.manifest.ns_interrupts_action, self.serving(i, ctx), p.managed_exit[ctx]),
            virq: !p.virqs[ctx].is_empty(),
        }
    }

    /// The partition whose manifest claims physical interrupt `intid` (device-regions).
    fn interrupt_owner(&self, intid: u32) -> Option<usize> {
        (0..self.count).find(|&i| {
            self.partitions[i].as_ref().is_some_and(|p| {
                !p.aborted && p.manifest.device_regions().iter().any(|d| d.interrupts[..d.interrupt_count].iter().any(|irq| irq.0 == intid))
            })
        })
    }

    /// A Secure interrupt `intid` (acknowledged, priority dropped) on PE
    /// `cpu`; `current` is the context it stopped, if an SP was running.
    /// Turns it into a virtual interrupt for its SP (DEN0077 v1.2 §8.3.2).
    pub fn secure_interrupt(&mut self, intid: u32, cpu: usize, current: Option<(usize, usize)>, platform: &mut dyn Platform) {
        if intid == interrupts::SEL2_PHYS_TIMER_INTID {
            // Our own timer, backing the SPs' emulated EL1 physical timers.
            let mut expired = [(0usize, 0usize); 8];
            let n = platform.timer_expired(&mut expired);
            platform.deactivate_interrupt(intid);
            for &(i, ctx) in &expired[..n] {
                if i < self.count {
                    self.deliver(i, ctx, interrupts::VIRTUAL_TIMER_INTID, cpu, current, platform);
                }
            }
            return;
        }
        let Some(i) = self.interrupt_owner(intid) else {
            log::warn!("secure interrupt {} has no partition: ignored", intid);
            platform.deactivate_interrupt(intid);
            return;
        };
        // Deactivated when the SP says it is done (HF_INTERRUPT_DEACTIVATE).
        let p = self.part_mut(i);
        if let Some(slot) = p.active.iter_mut().find(|a| a.is_none() || **a == Some(intid)) {
            *slot = Some(intid);
        } else {
            platform.deactivate_interrupt(intid);
        }
        let ctx = self.part(i).ctx_for(cpu);
        self.deliver(i, ctx, intid, cpu, current, platform);
    }

    /// Makes virtual interrupt `vint` pending for context `ctx` of SP `i`
    /// and acts on the context's state.
    fn deliver(&mut self, i: usize, ctx: usize, vint: u32, cpu: usize, current: Option<(usize, usize)>, platform: &mut dyn Platform) {
        let state = self.part(i).contexts[ctx];
        let target = if current == Some((i, ctx)) {
            TargetState::Current
        } else {
            match state {
                CtxState::Waiting => TargetState::Waiting,
                CtxState::Off => TargetState::Off,
                _ => TargetState::Busy,
            }
        };
        let action = interrupts::secure_action(target);
        if action == SecureAction::Drop || self.part(i).aborted {
            log::warn!("virtual interrupt {} for SP {:#06x} ctx {} dropped: context not running", vint, self.part(i).manifest.id, ctx);
            return;
        }
        if !self.part_mut(i).virqs[ctx].push(vint) {
            log::warn!("virtual interrupt {} for SP {:#06x} lost: too many pending", vint, self.part(i).manifest.id);
        }
        if action == SecureAction::RunWithFfaInterrupt {
            self.run_interrupt_handler(i, ctx, cpu, platform);
        }
    }

    /// Runs a waiting context with FFA_INTERRUPT (DEN0077 v1.2 §8.4.x: the
    /// SP's handling of a virtual interrupt while it waits) until its next
    /// FFA_MSG_WAIT.
    fn run_interrupt_handler(&mut self, i: usize, ctx: usize, cpu: usize, platform: &mut dyn Platform) {
        self.part_mut(i).contexts[ctx] = CtxState::HandlingInterrupt;
        let mut first = [0u64; 18];
        first[0] = fid::FFA_INTERRUPT as u64;
        // w1: target information, endpoint id [31:16] | vCPU id [15:0].
        first[1] = ((self.part(i).manifest.id as u64) << 16) | ctx as u64;
        if !self.run_until_wait(i, ctx, cpu, Some(first), platform) {
            self.part_mut(i).contexts[ctx] = CtxState::Off;
        }
    }

    fn handle_sp_call(&mut self, i: usize, ctx: usize, cpu: usize, r: &Regs, platform: &mut dyn Platform) -> SpStep {
        let f = r[0] as u32;
        let sp_id = self.part(i).manifest.id;
        let state = self.part(i).contexts[ctx];
        match f {
            fid::FFA_MSG_WAIT => match state {
                // During a direct request the SP must answer it first (DEN0077 §15.2).
                CtxState::Running { .. } | CtxState::Preempted { .. } | CtxState::Interrupted { .. } => SpStep::Resume(error(FfaError::Denied)),
                _ => SpStep::Waited,
            },
            interrupts::HF_INTERRUPT_GET => {
                let mut a = [0u64; 18];
                a[0] = self.part_mut(i).virqs[ctx].pop().map_or(interrupts::HF_INVALID_INTID, u64::from);
                SpStep::Resume(a)
            }
            interrupts::HF_INTERRUPT_DEACTIVATE => {
                // x1 = virtual id, x2 = physical id (Hafnium); only an active
                // interrupt of this SP is deactivated physically.
                let mut a = [0u64; 18];
                let phys = r[2] as u32;
                let p = self.part_mut(i);
                match p.active.iter_mut().find(|s| **s == Some(phys)) {
                    Some(slot) => {
                        *slot = None;
                        platform.deactivate_interrupt(phys);
                    }
                    // Virtual-only interrupts (timer, managed exit) need nothing.
                    None if r[1] as u32 == interrupts::VIRTUAL_TIMER_INTID || r[1] as u32 == interrupts::MANAGED_EXIT_INTID => {}
                    None => a[0] = u64::MAX, // -1: not an active interrupt of this SP
                }
                SpStep::Resume(a)
            }
            interrupts::HF_INTERRUPT_ENABLE => {
                // Interrupts are enabled from the manifest at boot; accept the call.
                SpStep::Resume([0u64; 18])
            }
            fid::FFA_MSG_SEND_DIRECT_RESP_32 | fid::FFA_MSG_SEND_DIRECT_RESP_64 | fid::FFA_MSG_SEND_DIRECT_RESP2 => {
                let CtxState::Running { from, .. } = state else {
                    return SpStep::Responded(*r);
                };
                let (src, dst) = ffa::unpack_endpoints(r[1]);
                if src != sp_id || dst != from {
                    return SpStep::Resume(error(FfaError::InvalidParameters));
                }
                SpStep::Responded(*r)
            }
            fid::FFA_YIELD => match state {
                // Only a Normal-world caller can resume us with FFA_RUN.
                CtxState::Running { from, .. } if !ffa::is_secure_endpoint(from) => SpStep::Yielded,
                _ => SpStep::Resume(error(FfaError::Denied)),
            },
            fid::FFA_ERROR => {
                log::error!("SP {:#06x} reported error {}", sp_id, error_name(r[2]));
                self.abort(i, "reported FFA_ERROR");
                SpStep::Failed
            }
            fid::FFA_CONSOLE_LOG_32 | fid::FFA_CONSOLE_LOG_64 => SpStep::Resume(self.console_log(i, r, platform)),
            fid::FFA_VERSION => {
                let (answer, negotiated) = version_answer(r[1] as u32);
                if let Some(v) = negotiated {
                    self.part_mut(i).version = v;
                }
                SpStep::Resume(answer)
            }
            fid::FFA_ID_GET => SpStep::Resume(success(&[sp_id as u64])),
            fid::FFA_SPM_ID_GET => SpStep::Resume(success(&[self.id as u64])),
            fid::FFA_SECONDARY_EP_REGISTER_64 => SpStep::Resume(self.secondary_ep_register(i, state, r[1])),
            fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2 => {
                if !matches!(state, CtxState::Running { .. }) {
                    // Direct requests only from a running context (not during init or waiting).
                    return SpStep::Resume(error(FfaError::Denied));
                }
                SpStep::Resume(self.direct_request(Caller::Sp(i), cpu, r, platform))
            }
            _ => SpStep::Resume(self.common_call(Caller::Sp(i), r, platform)),
        }
    }

    /// FFA_SECONDARY_EP_REGISTER from an SP (DEN0077 v1.2 §18.2): only during
    /// its initialisation, only for an MP partition, inside its own memory.
    fn secondary_ep_register(&mut self, i: usize, state: CtxState, entry: u64) -> Regs {
        let p = self.part_mut(i);
        if state != CtxState::Off || !p.manifest.is_mp() {
            return error(FfaError::Denied);
        }
        let m = p.memory;
        if entry % 4 != 0 || entry < m.base || entry >= m.base + m.size {
            return error(FfaError::InvalidParameters);
        }
        p.secondary_ep = Some(entry);
        success(&[])
    }

    /// FFA_CONSOLE_LOG (DEN0077 v1.2 §13.x FFA_CONSOLE_LOG): w1 = character
    /// count, characters packed little-endian from w2 (SMC32: w2..w7, at most
    /// 24) or x2 (SMC64: x2..x17, at most 128).
    fn console_log(&mut self, i: usize, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let is64 = r[0] as u32 == fid::FFA_CONSOLE_LOG_64;
        let (regs, per) = if is64 { (&r[2..18], 8) } else { (&r[2..8], 4) };
        let count = r[1] as usize;
        if count == 0 || count > regs.len() * per {
            return error(FfaError::InvalidParameters);
        }
        let p = self.partitions[i].as_mut().expect("valid index");
        let prefix = p.manifest.description;
        for n in 0..count {
            let c = regs[n / per].to_le_bytes()[n % per];
            if c == b'\n' || c == 0 || p.line.len == p.line.bytes.len() {
                flush_line(&prefix, &mut p.line, platform);
                if c == b'\n' || c == 0 {
                    continue;
                }
            }
            p.line.bytes[p.line.len] = c;
            p.line.len += 1;
        }
        success(&[])
    }

    /// Calls that both worlds make the same way.
    fn common_call(&mut self, caller: Caller, r: &Regs, platform: &mut dyn Platform) -> Regs {
        match r[0] as u32 {
            fid::FFA_FEATURES => features(r[1] as u32),
            fid::FFA_RXTX_MAP_32 | fid::FFA_RXTX_MAP_64 => self.rxtx_map(caller, r, platform),
            fid::FFA_RXTX_UNMAP => self.rxtx_unmap(caller, r, platform),
            fid::FFA_RX_RELEASE => self.rx_release(caller, r),
            fid::FFA_PARTITION_INFO_GET => self.partition_info_get(caller, r, platform),
            fid::FFA_PARTITION_INFO_GET_REGS => self.partition_info_get_regs(caller, r),
            _ => error(FfaError::NotSupported),
        }
    }

    /// Answers one request from the Normal world (relayed by the SPMD) on
    /// PE `cpu` and logs one line about it.
    pub fn handle_ns(&mut self, r: &Regs, cpu: usize, platform: &mut dyn Platform) -> Regs {
        let f = r[0] as u32;
        let answer = match f {
            fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2 => {
                let (src, dst) = ffa::unpack_endpoints(r[1]);
                if f != fid::FFA_MSG_SEND_DIRECT_REQ2 && src == ffa::SPMD_ENDPOINT_ID && dst == self.id {
                    return self.framework_message(r);
                }
                let a = self.direct_request(Caller::Ns, cpu, r, platform);
                shared::request_log!("{} {:#06x} -> {:#06x}: {}", fid_name(f), src, dst, Outcome(&a));
                return a;
            }
            fid::FFA_RUN => {
                let a = self.run(r, cpu, platform);
                shared::request_log!("RUN {:#06x} vcpu {}: {}", (r[1] >> 16) & 0xffff, r[1] & 0xffff, Outcome(&a));
                return a;
            }
            fid::FFA_PARTITION_INFO_GET => {
                let a = self.partition_info_get(Caller::Ns, r, platform);
                if a[0] == fid::FFA_SUCCESS_32 as u64 {
                    shared::request_log!("PARTITION_INFO_GET: {} partition(s)", a[2]);
                } else {
                    shared::request_log!("PARTITION_INFO_GET: {}", Outcome(&a));
                }
                return a;
            }
            fid::FFA_RX_ACQUIRE => self.rx_acquire(r),
            fid::FFA_INTERRUPT => {
                // Only the SPMD sends this (it refuses it from NS): a Secure
                // interrupt fired while the Normal world ran (TF-A
                // spmd_secure_interrupt_handler).  Handle it, then let NS go on.
                let intid = platform.acknowledge_interrupt();
                if intid != interrupts::SPURIOUS_INTID {
                    self.secure_interrupt(intid, cpu, None, platform);
                }
                shared::request_log!("secure interrupt {} while NS ran: handled", intid);
                let mut a = [0u64; 18];
                a[0] = FFA_NORMAL_WORLD_RESUME as u64;
                return a;
            }
            fid::FFA_FEATURES
            | fid::FFA_RXTX_MAP_32
            | fid::FFA_RXTX_MAP_64
            | fid::FFA_RXTX_UNMAP
            | fid::FFA_RX_RELEASE
            | fid::FFA_PARTITION_INFO_GET_REGS => self.common_call(Caller::Ns, r, platform),
            _ => error(FfaError::NotSupported),
        };
        if f == fid::FFA_FEATURES {
            shared::request_log!("FEATURES from NS ({:#x}) for {:#x}: {}", f, r[1] as u32, Outcome(&answer));
        } else {
            shared::request_log!("{} from NS ({:#x}): {}", fid_name(f), f, Outcome(&answer));
        }
        answer
    }

    /// Framework messages from the SPMD (DEN0077 §18.3; TF-A `spmd_build_spmc_message`).
    fn framework_message(&mut self, r: &Regs) -> Regs {
        let mut a = [0u64; 18];
        a[0] = fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64;
        a[1] = ffa::pack_endpoints(self.id, ffa::SPMD_ENDPOINT_ID);
        match r[2] {
            framework::VERSION_REQ_W2 => {
                let asked = r[3] as u32;
                let (v, negotiated) = version_answer(asked);
                if let Some(n) = negotiated {
                    self.ns_version = n;
                }
                a[2] = framework::VERSION_RESP_W2;
                a[3] = v[0] & 0xffff_ffff;
                let (am, an) = version_str(asked);
                if negotiated.is_some() {
                    let (rm, rn) = version_str(v[0] as u32);
                    shared::request_log!("FFA_VERSION from NS: {}.{} -> {}.{}", am, an, rm, rn);
                } else {
                    shared::request_log!("FFA_VERSION from NS: {:#x} -> NOT_SUPPORTED", asked);
                }
            }
            w2 if w2 == framework::FLAG | framework::PSCI_REQ => {
                // PSCI power messages (CPU_OFF on this core): nothing to tear down
                // yet; answer PSCI SUCCESS (DEN0077 §18.3.2, PSCI_RESP = 0x2).
                shared::request_log!("PSCI framework message {:#x} from SPMD", r[3]);
                a[2] = framework::FLAG | 0x2;
                a[3] = 0;
            }
            other => {
                log::warn!("unknown framework message {:#x} from SPMD", other);
                return error(FfaError::InvalidParameters);
            }
        }
        a
    }

    /// FFA_MSG_SEND_DIRECT_REQ_{32,64} and FFA_MSG_SEND_DIRECT_REQ2 from the
    /// Normal world or an SP on PE `cpu` (DEN0077 v1.2 §15.2, §15.4): checks
    /// the endpoints, then runs the receiver until its direct response.
    ///
    /// Call chains (SP to SP) nest: the caller's context stays Running while
    /// the callee runs, so a request to any context already in the chain (a
    /// cycle) or otherwise busy gets BUSY, as Hafnium answers.
    fn direct_request(&mut self, caller: Caller, cpu: usize, r: &Regs, platform: &mut dyn Platform) -> Regs {
        let f = r[0] as u32;
        let kind = match f {
            fid::FFA_MSG_SEND_DIRECT_REQ_32 => ReqKind::Req32,
            fid::FFA_MSG_SEND_DIRECT_REQ_64 => ReqKind::Req64,
            _ => ReqKind::Req2,
        };
        let (src, dst) = ffa::unpack_endpoints(r[1]);
        let version = match caller {
            Caller::Ns => {
                // The SPMD checks this too; a secure source id from NS is a lie.
                if ffa::is_secure_endpoint(src) {
                    return error(FfaError::InvalidParameters);
                }
                self.ns_version
            }
            Caller::Sp(ci) => {
                let p = self.part(ci);
                if src != p.manifest.id {
                    return error(FfaError::InvalidParameters);
                }
                let send = if kind == ReqKind::Req2 { MSG_DIRECT_REQ2_SEND } else { MSG_DIRECT_REQ_SEND };
                if p.manifest.messaging_method & send == 0 {
                    return error(FfaError::Denied);
                }
                p.version
            }
        };
        // FFA_MSG_SEND_DIRECT_REQ2 is a v1.2 interface (DEN0077 v1.2 §15.4).
        if kind == ReqKind::Req2 && version < 0x1_0002 {
            return error(FfaError::NotSupported);
        }
        let Some(i) = self.find(dst) else {
            return error(FfaError::InvalidParameters);
        };
        if kind != ReqKind::Req2 && r[2] & framework::FLAG != 0 {
            // Framework messages to SPs (VM created/destroyed) are not supported.
            return error(FfaError::InvalidParameters);
        }
        let p = self.part(i);
        if kind == ReqKind::Req2 {
            // x2/x3: the UUID of the service; Nil = the partition's (first) one.
            let uuid = Uuid([r[2] as u32, (r[2] >> 32) as u32, r[3] as u32, (r[3] >> 32) as u32]);
            if !uuid.is_nil() && !p.manifest.uuids().contains(&uuid) {
                return error(FfaError::InvalidParameters);
            }
        }
        let recv = if kind == ReqKind::Req2 { MSG_DIRECT_REQ2_RECV } else { MSG_DIRECT_REQ_RECV };
        if p.manifest.messaging_method & recv == 0 {
            return error(FfaError::Denied);
        }
        if p.aborted {
            return error(FfaError::Aborted);
        }
        let ctx = p.ctx_for(cpu);
        match p.contexts[ctx] {
            CtxState::Waiting => {}
            CtxState::Running { .. } | CtxState::Preempted { .. } | CtxState::Interrupted { .. } | CtxState::HandlingInterrupt | CtxState::Off => {
                return error(FfaError::Busy);
            }
        }
        self.part_mut(i).contexts[ctx] = CtxState::Running { from: src, kind };
        let mut req = *r;
        if kind == ReqKind::Req32 {
            // SMC32: only w0..w7 are defined (DEN0028 §2.6); upper halves and x8.. MBZ.
            for (n, x) in req.iter_mut().enumerate() {
                *x = if n < 8 { *x & 0xffff_ffff } else { 0 };
            }
        } else if kind == ReqKind::Req64 {
            for x in req[8..].iter_mut() {
                *x = 0;
            }
        }
        self.run_until_response(i, ctx, cpu, Some(req), platform)
    }

    /// Runs context `ctx` of SP `i`, handling its calls, until it answers the
    /// request it is Running for, yields, or dies.
    fn run_until_response(&mut self, i: usize, ctx: usize, cpu: usize, first: Option<Regs>, platform: &mut dyn Platform) -> Regs {
        let mut answer = first;
        loop {
            let flags = self.run_flags(i, ctx);
            let exit = platform.run_sp(i, ctx, answer.as_ref(), flags);
            match self.sp_exit(i, ctx, cpu, exit, platform) {
                SpStep::Resume(a) => answer = Some(a),
                SpStep::Continue => answer = None,
                SpStep::NsInterrupt => {
                    answer = None;
                    let CtxState::Running { from, kind } = self.part(i).contexts[ctx] else { continue };
                    let p = self.part(i);
                    match interrupts::ns_action(p.manifest.ns_interrupts_action, self.serving(i, ctx), p.managed_exit[ctx]) {
                        // Not trapped for these (RunFlags); if one comes anyway, go on.
                        NsAction::Queue => {}
                        NsAction::ManagedExit => {
                            // The SP answers its caller itself (direct response);
                            // NS interrupts stay pending until then.
                            let p = self.part_mut(i);
                            p.managed_exit[ctx] = true;
                            p.virqs[ctx].push(interrupts::MANAGED_EXIT_INTID);
                            log::info!("NS interrupt: managed exit for SP {:#06x} ctx {}", p.manifest.id, ctx);
                        }
                        NsAction::Signal => {
                            self.part_mut(i).contexts[ctx] = CtxState::Interrupted { from, kind };
                            log::info!("NS interrupt: SP {:#06x} ctx {} preempted, FFA_INTERRUPT to NS", self.part(i).manifest.id, ctx);
                            // FFA_INTERRUPT to the caller: w1 = SP id [31:16] | vCPU [15:0];
                            // it resumes the SP with FFA_RUN (DEN0077 v1.2 §8.3.1.1).
                            let mut y = [0u64; 18];
                            y[0] = fid::FFA_INTERRUPT as u64;
                            y[1] = ((self.part(i).manifest.id as u64) << 16) | ctx as u64;
                            return y;
                        }
                    }
                }
                SpStep::Responded(resp) => {
                    let CtxState::Running { kind, .. } = self.part(i).contexts[ctx] else {
                        answer = Some(error(FfaError::Denied));
                        continue;
                    };
                    if resp[0] as u32 != response_fid(kind) {
                        // The response must use the request's ABI and width (§15.2, §15.4).
                        answer = Some(error(FfaError::InvalidParameters));
                        continue;
                    }
                    self.part_mut(i).contexts[ctx] = CtxState::Waiting;
                    self.part_mut(i).managed_exit[ctx] = false;
                    let mut out = resp;
                    match kind {
                        ReqKind::Req32 => out.iter_mut().skip(8).for_each(|x| *x = 0),
                        ReqKind::Req64 => out.iter_mut().skip(8).for_each(|x| *x = 0),
                        // RESP2: x4..x17 carry the payload; x2/x3 MBZ.
                        ReqKind::Req2 => {
                            out[2] = 0;
                            out[3] = 0;
                        }
                    }
                    return out;
                }
                SpStep::Yielded => {
                    let CtxState::Running { from, kind } = self.part(i).contexts[ctx] else {
                        answer = Some(error(FfaError::Denied));
                        continue;
                    };
                    self.part_mut(i).contexts[ctx] = CtxState::Preempted { from, kind };
                    // FFA_YIELD to the caller: w1 = SP id [31:16] | vCPU [15:0] (DEN0077 §13.x FFA_YIELD).
                    let mut y = [0u64; 18];
                    y[0] = fid::FFA_YIELD as u64;
                    y[1] = ((self.part(i).manifest.id as u64) << 16) | ctx as u64;
                    return y;
                }
                SpStep::Waited => answer = Some(error(FfaError::Denied)),
                SpStep::Failed => {
                    // The context is gone with its partition; the caller learns why.
                    self.part_mut(i).contexts[ctx] = CtxState::Off;
                    return error(FfaError::Aborted);
                }
            }
        }
    }

    /// FFA_RUN from the Normal world (DEN0077 v1.2 §13.x FFA_RUN): w1 = target
    /// id [31:16] | vCPU [15:0].  Resumes a context that yielded.
    fn run(&mut self, r: &Regs, cpu: usize, platform: &mut dyn Platform) -> Regs {
        let id = ((r[1] >> 16) & 0xffff) as u16;
        let vcpu = (r[1] & 0xffff) as usize;
        let Some(i) = self.find(id) else {
            return error(FfaError::InvalidParameters);
        };
        let p = self.part(i);
        if vcpu >= p.context_count() || (p.manifest.is_mp() && vcpu != cpu) {
            // An MP partition's context runs only on its own PE.
            return error(FfaError::InvalidParameters);
        }
        if p.aborted {
            return error(FfaError::Aborted);
        }
        match p.contexts[vcpu] {
            CtxState::Preempted { from, kind } => {
                self.part_mut(i).contexts[vcpu] = CtxState::Running { from, kind };
                // FFA_YIELD returns FFA_SUCCESS to the SP when it is run again.
                self.run_until_response(i, vcpu, cpu, Some(success(&[])), platform)
            }
            CtxState::Interrupted { from, kind } => {
                self.part_mut(i).contexts[vcpu] = CtxState::Running { from, kind };
                // Preempted asynchronously: it continues where it was, registers untouched.
                self.run_until_response(i, vcpu, cpu, None, platform)
            }
            CtxState::Running { .. } | CtxState::HandlingInterrupt => error(FfaError::Busy),
            // Nothing to run: it waits for a message.
            CtxState::Waiting | CtxState::Off => error(FfaError::Denied),
        }
    }

    fn mailbox(&mut self, caller: Caller) -> &mut Option<Mailbox> {
        match caller {
            Caller::Ns => &mut self.ns_mailbox,
            Caller::Sp(i) => &mut self.part_mut(i).mailbox,
        }
    }

    fn caller_id(&self, caller: Caller) -> u16 {
        match caller {
            Caller::Ns => NS_ENDPOINT_ID,
            Caller::Sp(i) => self.partitions[i].as_ref().map_or(0, |p| p.manifest.id),
        }
    }
}

fn flush_line(prefix: &crate::name::Name, line: &mut LineBuf, platform: &mut dyn Platform) {
    if line.len == 0 {
        return;
    }
    let text = match core::str::from_utf8(&line.bytes[..line.len]) {
        Ok(s) => s,
        Err(e) => core::str::from_utf8(&line.bytes[..e.valid_up_to()]).unwrap_or(""),
    };
    platform.sp_log(prefix.as_str(), text);
    line.len = 0;
}

/// FFA_VERSION (DEN0077 v1.2 §13.2): bit 31 of the input MBZ; a caller of the
/// same major version gets our version and may use min(its, ours).  Returns the
/// answer and the version the caller will use, if compatible.
pub fn version_answer(asked: u32) -> (Regs, Option<u32>) {
    let mut a = [0u64; 18];
    if asked & 0x8000_0000 != 0 || ffa::version_major(asked) != ffa::version_major(ffa::QUADRANT_FFA_VERSION) {
        a[0] = FfaError::NotSupported as i32 as u32 as u64;
        return (a, None);
    }
    a[0] = ffa::QUADRANT_FFA_VERSION as u64;
    (a, Some(asked.min(ffa::QUADRANT_FFA_VERSION)))
}

/// FFA_FEATURES (DEN0077 v1.2 §13.3): w1 bit 31 set = a function id, clear = a
/// feature id (none of which we implement yet: notification and managed-exit
/// interrupt ids get NOT_SUPPORTED).
pub fn features(id: u32) -> Regs {
    if id & 0x8000_0000 != 0 && SUPPORTED.contains(&id) {
        // For RXTX_MAP w2 bits 1:0 = 0: 4 KiB minimum buffer size and alignment.
        success(&[0])
    } else {
        error(FfaError::NotSupported)
    }
}

#[cfg(test)]
mod tests;
