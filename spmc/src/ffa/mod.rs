//! The FF-A dispatcher of the SPMC: one [`Spmc`] value holds every partition's
//! state; [`Spmc::handle_ns`] answers one request that the SPMD forwarded from
//! the Normal world, running SPs as needed through a [`Platform`].  All of it is
//! plain logic: the host tests drive it with a fake platform and fake SPs.
//!
//! Every call either world can make is one row of [`calls::CALLS`] (function
//! id, spec name, which worlds may call it, handler); [`Spmc::dispatch`] is the
//! one dispatcher for both worlds, and FFA_FEATURES and the log names come
//! from the same table.  The handlers live with their DEN0077 chapter:
//!
//! - [`setup`] — setup and discovery (FFA_VERSION, FFA_FEATURES, FFA_ID_GET,
//!   FFA_SPM_ID_GET, FFA_PARTITION_INFO_GET(_REGS), FFA_RXTX_*, FFA_RX_*);
//! - [`direct_messaging`] — FFA_MSG_SEND_DIRECT_REQ/RESP(2);
//! - [`cpu_cycles`] — FFA_MSG_WAIT, FFA_YIELD, FFA_RUN, FFA_INTERRUPT and the
//!   loops that run an SP until it gives the CPU back;
//! - [`interrupts`] — interrupt management (Secure and Non-secure interrupts,
//!   Hafnium's paravirtualised HF_INTERRUPT_* calls);
//! - [`framework`] — framework messages from the SPMD;
//! - [`console`] — FFA_CONSOLE_LOG;
//! - [`lifecycle`] — partitions, boot order, FFA_SECONDARY_EP_REGISTER,
//!   aborts and faults;
//! - [`memory`] — memory management (FFA_MEM_SHARE/LEND/DONATE, retrieve,
//!   relinquish, reclaim, fragments);
//! - [`notifications`] — FFA_NOTIFICATION_*, framework notifications, the SRI;
//! - [`indirect_messaging`] — FFA_MSG_SEND2.
//!
//! [`codec`] decodes incoming calls and encodes the common replies with the
//! `arm-ffa` crate, never panicking on hostile registers.
//!
//! What really reaches us from NS (TF-A 2.12.1 `services/std_svc/spmd/spmd_main.c`,
//! `spmd_smc_handler`): the SPMD itself answers FFA_ID_GET (NS id 0),
//! FFA_SPM_ID_GET (our spmc_id), FFA_SECONDARY_EP_REGISTER (secure only),
//! FFA_CONSOLE_LOG (refused) and any unknown id (NOT_SUPPORTED).  It forwards:
//! FFA_VERSION (as a framework direct request, when the manifest's min_ver >= 1),
//! FFA_FEATURES, FFA_RXTX_MAP/UNMAP, FFA_RX_RELEASE, FFA_PARTITION_INFO_GET(_REGS),
//! FFA_MSG_SEND_DIRECT_REQ(2), memory sharing, notifications, FFA_RUN, FFA_MSG_SEND2.
//! Calls made by SPs trap to us (HCR_EL2.TSC) and never reach the SPMD.

pub mod calls;
pub mod codec;
pub mod console;
pub mod context;
pub mod cpu_cycles;
pub mod direct_messaging;
pub mod framework;
pub mod indirect_messaging;
pub mod interrupts;
pub mod lifecycle;
pub mod memory;
pub mod notifications;
pub mod regs_copy;
pub mod setup;

pub use calls::{CALLS, fid_name};
pub use context::{ContextLocked, ExecutionContext};
pub use cpu_cycles::CtxState;
pub use direct_messaging::ReqKind;
pub use lifecycle::{Partition, SpMemory};
pub use setup::{features, version_answer};

use crate::manifest::Ranges;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use setup::rxtx::Mailbox;
use shared::abi::ffa::fid;

/// x0..x17 of a call or of its answer (SMCCC v1.2, DEN0028 §2.6).
pub type Regs = [u64; 18];

/// Most partitions, as in the manifest.
pub const MAX_PARTITIONS: usize = crate::manifest::MAX_SPS;
/// Endpoint id of the Normal world (the hypervisor, or the OS without one): DEN0077, partition identification (endpoint ids).
pub const NS_ENDPOINT_ID: u16 = 0;
/// Most VMs of a Normal-world hypervisor that spmc keeps per-endpoint state
/// for (notification bitmaps), besides endpoint 0 itself.  Any Normal-world
/// id ([`shared::abi::ffa::is_ns_endpoint`]: bit 15 clear) may name a VM in a call from
/// the Normal world; this bounds how many of them hold state at once, as
/// Hafnium's SPMC bounds its "other world" VMs (NO_MEMORY past it).
pub const MAX_NS_VMS: usize = 16;

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

/// What the dispatcher needs from the machine, as seen from one PE: each PE
/// hands the dispatcher its own value (`&mut`), so nothing here needs a lock
/// of the SPMC's; what PEs share behind it is the platform's to guard.
pub trait Platform {
    /// Maps `[pa, pa + size)` of the Non-secure PAS into the SPMC's address space.
    #[allow(clippy::result_unit_err)]
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
    /// the partition's own entry point when None (DEN0077 v1.2, FFA_SECONDARY_EP_REGISTER: secondary
    /// contexts start at the FFA_SECONDARY_EP_REGISTER address).
    fn reset_ctx(&mut self, index: usize, ctx: usize, entry: Option<u64>);
    /// Prints one line of an SP's console output under its own prefix.
    fn sp_log(&mut self, prefix: &str, line: &str);
    /// Reads `out.len()` bytes at `pa`, inside a range mapped by `map_ns` or
    /// an SP's memory (a TX buffer).
    fn read(&mut self, pa: u64, out: &mut [u8]);
    /// Maps `[pa, pa + size)` at IPA == PA into SP `index`'s Stage-2: its
    /// Non-secure IPA space for Normal-world memory, else its Secure one.
    #[allow(clippy::result_unit_err)]
    fn map_borrowed(&mut self, index: usize, pa: u64, size: u64, access: memory::BorrowedAccess, non_secure: bool) -> Result<(), ()>;
    /// Undoes `map_borrowed` (and unmaps a lender's own pages it lends),
    /// with the TLB maintenance that makes it take effect on every PE.
    fn unmap_borrowed(&mut self, index: usize, pa: u64, size: u64, non_secure: bool);
    /// Pends the Schedule Receiver Interrupt ([`notifications::SRI_INTID`],
    /// an SGI of Group 1 Non-secure) on this PE, for the Normal world.
    fn send_sri(&mut self);
    /// Zeroes `[pa, pa + size)` of the Non-secure or Secure PAS and cleans
    /// it to the point of coherency (memory management's zero-memory flags).
    #[allow(clippy::result_unit_err)]
    fn zero(&mut self, pa: u64, size: u64, non_secure: bool) -> Result<(), ()>;
    /// Whether a `read` or `write` since the last call faulted (the memory
    /// left its PAS: a Normal-world buffer delegated to the Realm world).
    /// The call that did it is answered ABORTED.
    fn take_access_fault(&mut self) -> bool {
        false
    }
}

/// Who made a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Ns,
    Sp(usize),
}

/// The SPMC: every partition and the Normal world as endpoints.  Shared by
/// all PEs (`&self`): partitions and their manifests are fixed once booted,
/// and what changes is behind per-context and per-endpoint locks
/// ([`context`] says which, and in what order).
pub struct Spmc {
    pub id: u16,
    ns_memory: Ranges,
    partitions: [Option<Partition>; MAX_PARTITIONS],
    count: usize,
    /// The SPMD's EL3 logical partitions, as it reported them at boot
    /// ([`setup::partition_info`]): listed by FFA_PARTITION_INFO_GET(_REGS).
    logical: setup::partition_info::LogicalPartitions,
    /// FF-A version the Normal world negotiated through the SPMD (DEN0077 v1.2, FFA_VERSION).
    ns_version: AtomicU32,
    /// The Normal world made an FF-A call other than FFA_VERSION: its version
    /// can no longer change ([`framework`]).
    ns_version_fixed: AtomicBool,
    ns_mailbox: spin::Mutex<Option<Mailbox>>,
    /// The RX/TX pairs of the hypervisor's VMs, as it forwarded them
    /// ([`setup::rxtx`]): where SPs' indirect messages to VMs go.
    vm_mailboxes: setup::rxtx::VmMailboxes,
    /// Memory transactions (a leaf lock like the mailboxes; taken before
    /// them when both are needed).  A static of the binary's: the store is
    /// ~100 KiB, more than a boot stack holds.
    memory: &'static spin::Mutex<memory::transaction::MemoryStore>,
    /// The notification bitmaps of the Normal world's endpoint 0 (the
    /// hypervisor, or the OS without one; FFA_NOTIFICATION_BITMAP_CREATE).
    ns_notifications: spin::Mutex<notifications::Bitmaps>,
    /// Those of up to [`MAX_NS_VMS`] VMs of the hypervisor: a static of the
    /// binary's like `memory` (~4 KiB; the boot stack holds this value).
    vm_notifications: &'static notifications::VmBitmaps,
    /// Per PE: the SRI is owed to the Normal world (sent on the way back to it).
    sri_owed: [AtomicBool; MAX_CONTEXTS],
}

pub use codec::{error, success};

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

impl Spmc {
    pub fn new(
        id: u16,
        ns_memory: Ranges,
        memory: &'static spin::Mutex<memory::transaction::MemoryStore>,
        vm_notifications: &'static notifications::VmBitmaps,
    ) -> Self {
        Self {
            id,
            ns_memory,
            partitions: [const { None }; MAX_PARTITIONS],
            count: 0,
            logical: Default::default(),
            ns_version: AtomicU32::new(shared::abi::ffa::QUADRANT_FFA_VERSION),
            ns_version_fixed: AtomicBool::new(false),
            ns_mailbox: spin::Mutex::new(None),
            vm_mailboxes: setup::rxtx::VmMailboxes::new(),
            memory,
            ns_notifications: spin::Mutex::new(notifications::Bitmaps::new()),
            vm_notifications,
            sri_owed: [const { AtomicBool::new(false) }; MAX_CONTEXTS],
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

    /// The memory transaction store (tests, fuzz targets).
    pub fn memory_store(&self) -> &spin::Mutex<memory::transaction::MemoryStore> {
        self.memory
    }

    pub fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.partitions[..self.count].iter().flatten()
    }

    pub fn partition(&self, i: usize) -> Option<&Partition> {
        self.partitions.get(i)?.as_ref()
    }

    fn part(&self, i: usize) -> &Partition {
        self.partitions[i].as_ref().expect("index from find/add_partition")
    }

    fn find(&self, id: u16) -> Option<usize> {
        (0..self.count).find(|&i| self.partitions[i].as_ref().is_some_and(|p| p.manifest.id == id))
    }

    /// The caller's RX/TX pair, behind its own (leaf) lock.
    fn mailbox(&self, caller: Caller) -> &spin::Mutex<Option<Mailbox>> {
        match caller {
            Caller::Ns => &self.ns_mailbox,
            Caller::Sp(i) => &self.part(i).mailbox,
        }
    }

    fn caller_id(&self, caller: Caller) -> u16 {
        match caller {
            Caller::Ns => NS_ENDPOINT_ID,
            Caller::Sp(i) => self.partitions[i].as_ref().map_or(0, |p| p.manifest.id),
        }
    }

    /// The FF-A version `caller` negotiated (its manifest's until it calls FFA_VERSION).
    fn version_of(&self, caller: Caller) -> u32 {
        match caller {
            Caller::Ns => self.ns_version(),
            Caller::Sp(i) => self.part(i).version(),
        }
    }

    /// The FF-A version the Normal world negotiated.
    pub fn ns_version(&self) -> u32 {
        self.ns_version.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
