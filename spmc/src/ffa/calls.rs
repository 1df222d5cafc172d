//! The FF-A call table: one row per function id the SPMC knows, with its
//! spec name (DEN0077 v1.2, the interface's own section), which worlds may call
//! it and its handler.  [`Spmc::dispatch`] is the one dispatcher for both
//! worlds; FFA_FEATURES ([`super::features`]) and the log names
//! ([`fid_name`]) come from this table too.  (The shape of TF-RMM's
//! `runtime/core/handler.c` table: to add a call, add a row.)

use super::cpu_cycles::SpStep;
use super::interrupts::{HF_INTERRUPT_DEACTIVATE, HF_INTERRUPT_ENABLE, HF_INTERRUPT_GET, HF_INTERRUPT_RECONFIGURE};
use super::memory::{self, ids::*};
use super::{Caller, Outcome, Platform, Regs, Spmc, codec, console, cpu_cycles, direct_messaging, error, indirect_messaging, interrupts, lifecycle, notifications, setup};
use core::sync::atomic::Ordering;
use shared::abi::ffa::{self as ffa, FfaError, Interface, fid};

/// Which worlds may make a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Worlds {
    /// The Normal world, through the SPMD (or the SPMD itself).
    pub ns: bool,
    /// A secure partition (its `smc`/`hvc` traps to us).
    pub sp: bool,
}

/// Callable by the Normal world (via the SPMD) only.
pub const NS: Worlds = Worlds { ns: true, sp: false };
/// Callable by SPs only.
pub const SP: Worlds = Worlds { ns: false, sp: true };
/// Callable by both.
pub const BOTH: Worlds = Worlds { ns: true, sp: true };
/// Not a request anybody makes to the SPMC: a reply, listed for FFA_FEATURES.
pub const NONE: Worlds = Worlds { ns: false, sp: false };

impl Worlds {
    pub const fn allows(self, caller: Caller) -> bool {
        match caller {
            Caller::Ns => self.ns,
            Caller::Sp(_) => self.sp,
        }
    }
}

/// Which ABI a function id belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    /// FF-A (DEN0077): FFA_FEATURES reports it.
    Ffa,
    /// Hafnium's paravirtualised interface (not FF-A; FFA_FEATURES does not know it).
    Hafnium,
}

/// One call as the dispatcher hands it to its handler.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub caller: Caller,
    /// The calling context of an SP caller (0 for the Normal world).
    pub ctx: usize,
    /// The PE the call was made on.
    pub cpu: usize,
    /// x0..x17 as the caller left them.
    pub regs: &'a Regs,
    /// The call as `arm-ffa` decodes it ([`codec::decode`]); None for the
    /// rows that are not decoded (see [`CallDef::decoded`]) and for
    /// framework messages.
    pub decoded: Option<Interface>,
}

impl Call<'_> {
    /// x0 as a function id.
    pub fn fid(&self) -> u32 {
        self.regs[0] as u32
    }
}

/// What a handler does.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Answers the caller with these registers.
    Reply(fn(&Spmc, &Call, &mut dyn Platform) -> Regs),
    /// Decides what happens to the calling SP (block, respond, abort, ...).
    Step(fn(&Spmc, &Call, &mut dyn Platform) -> SpStep),
    /// Nothing to handle: see [`NONE`].
    None,
}

/// One row of the call table.
#[derive(Clone, Copy)]
pub struct CallDef {
    pub id: u32,
    /// The interface's name as DEN0077 (or Hafnium) spells it.
    pub name: &'static str,
    pub abi: Abi,
    pub from: Worlds,
    /// The dispatcher decodes the call with [`codec::decode`] first and
    /// answers its decode error as FFA_ERROR; false where the spec answers a
    /// malformed call otherwise (see the rows).
    pub decoded: bool,
    pub handler: Handler,
}

const fn ffa(id: u32, name: &'static str, from: Worlds, handler: Handler) -> CallDef {
    CallDef { id, name, abi: Abi::Ffa, from, decoded: true, handler }
}

const fn hafnium(id: u32, name: &'static str, handler: Handler) -> CallDef {
    CallDef { id, name, abi: Abi::Hafnium, from: SP, decoded: false, handler }
}

impl CallDef {
    /// The handler reads the raw registers; no FFA_ERROR for a decode error.
    const fn raw(self) -> Self {
        Self { decoded: false, ..self }
    }
}

use Handler::{Reply, Step};

/// Every call the SPMC knows.  Ids not here get FFA_ERROR(NOT_SUPPORTED), and
/// so does a row's id from a world its row does not allow.
// The calls of every round trip (direct messaging, MSG_WAIT, YIELD) are
// `.raw()`: their handlers read the registers they forward and check them
// themselves.  arm-ffa 0.5's decode costs ~1,300 instructions per call at
// S-EL2 (`cargo xtask bench`'s -icount rows: a direct request NS -> echo
// took 8,710 instructions before these rows were decoded and 11,756 after,
// 27.1x -> 36.6x the null SMC).  Every other call is decoded.
pub const CALLS: &[CallDef] = &[
    // Direct messaging and FFA_MSG_WAIT first: the calls of every round
    // trip, and `lookup` scans in order.
    ffa(fid::FFA_MSG_SEND_DIRECT_REQ_32, "FFA_MSG_SEND_DIRECT_REQ_32", BOTH, Reply(direct_messaging::ffa_msg_send_direct_req)).raw(),
    ffa(fid::FFA_MSG_SEND_DIRECT_REQ_64, "FFA_MSG_SEND_DIRECT_REQ_64", BOTH, Reply(direct_messaging::ffa_msg_send_direct_req)).raw(),
    ffa(fid::FFA_MSG_SEND_DIRECT_RESP_32, "FFA_MSG_SEND_DIRECT_RESP_32", SP, Step(direct_messaging::ffa_msg_send_direct_resp)).raw(),
    ffa(fid::FFA_MSG_SEND_DIRECT_RESP_64, "FFA_MSG_SEND_DIRECT_RESP_64", SP, Step(direct_messaging::ffa_msg_send_direct_resp)).raw(),
    ffa(fid::FFA_MSG_SEND_DIRECT_REQ2, "FFA_MSG_SEND_DIRECT_REQ2", BOTH, Reply(direct_messaging::ffa_msg_send_direct_req)).raw(),
    ffa(fid::FFA_MSG_SEND_DIRECT_RESP2, "FFA_MSG_SEND_DIRECT_RESP2", SP, Step(direct_messaging::ffa_msg_send_direct_resp)).raw(),
    ffa(fid::FFA_MSG_WAIT, "FFA_MSG_WAIT", SP, Step(cpu_cycles::ffa_msg_wait)).raw(),
    // Status reporting.
    // An SP that reports FFA_ERROR is aborted whatever its error code.
    ffa(fid::FFA_ERROR, "FFA_ERROR", SP, Step(lifecycle::ffa_error)).raw(),
    ffa(fid::FFA_SUCCESS_32, "FFA_SUCCESS_32", NONE, Handler::None),
    ffa(fid::FFA_INTERRUPT, "FFA_INTERRUPT", NS, Reply(cpu_cycles::ffa_interrupt)),
    // Setup and discovery.
    // A bad FFA_VERSION input is answered NOT_SUPPORTED in w0, not FFA_ERROR.
    ffa(fid::FFA_VERSION, "FFA_VERSION", SP, Reply(setup::ffa_version)).raw(),
    ffa(fid::FFA_FEATURES, "FFA_FEATURES", BOTH, Reply(setup::ffa_features)),
    ffa(fid::FFA_RX_ACQUIRE, "FFA_RX_ACQUIRE", NS, Reply(setup::rxtx::ffa_rx_acquire)),
    ffa(fid::FFA_RX_RELEASE, "FFA_RX_RELEASE", BOTH, Reply(setup::rxtx::ffa_rx_release)),
    ffa(fid::FFA_RXTX_MAP_32, "FFA_RXTX_MAP_32", BOTH, Reply(setup::rxtx::ffa_rxtx_map)),
    ffa(fid::FFA_RXTX_MAP_64, "FFA_RXTX_MAP_64", BOTH, Reply(setup::rxtx::ffa_rxtx_map)),
    ffa(fid::FFA_RXTX_UNMAP, "FFA_RXTX_UNMAP", BOTH, Reply(setup::rxtx::ffa_rxtx_unmap)),
    ffa(fid::FFA_PARTITION_INFO_GET, "FFA_PARTITION_INFO_GET", BOTH, Reply(setup::partition_info::ffa_partition_info_get)),
    ffa(fid::FFA_PARTITION_INFO_GET_REGS, "FFA_PARTITION_INFO_GET_REGS", BOTH, Reply(setup::partition_info::ffa_partition_info_get_regs)),
    ffa(fid::FFA_ID_GET, "FFA_ID_GET", SP, Reply(setup::ffa_id_get)),
    ffa(fid::FFA_SPM_ID_GET, "FFA_SPM_ID_GET", SP, Reply(setup::ffa_spm_id_get)),
    ffa(fid::FFA_SECONDARY_EP_REGISTER_64, "FFA_SECONDARY_EP_REGISTER_64", SP, Reply(lifecycle::ffa_secondary_ep_register)),
    // CPU cycle management.
    ffa(fid::FFA_YIELD, "FFA_YIELD", SP, Step(cpu_cycles::ffa_yield)).raw(),
    ffa(fid::FFA_RUN, "FFA_RUN", NS, Reply(cpu_cycles::ffa_run)),
    // Memory management.  Raw: the handlers read their registers themselves
    // (a buffer address in w3/w4 is NOT_SUPPORTED, not a decode error).
    ffa(FFA_MEM_DONATE_32, "FFA_MEM_DONATE_32", BOTH, Reply(memory::ffa_mem_send)).raw(),
    ffa(FFA_MEM_DONATE_64, "FFA_MEM_DONATE_64", BOTH, Reply(memory::ffa_mem_send)).raw(),
    ffa(FFA_MEM_LEND_32, "FFA_MEM_LEND_32", BOTH, Reply(memory::ffa_mem_send)).raw(),
    ffa(FFA_MEM_LEND_64, "FFA_MEM_LEND_64", BOTH, Reply(memory::ffa_mem_send)).raw(),
    ffa(FFA_MEM_SHARE_32, "FFA_MEM_SHARE_32", BOTH, Reply(memory::ffa_mem_send)).raw(),
    ffa(FFA_MEM_SHARE_64, "FFA_MEM_SHARE_64", BOTH, Reply(memory::ffa_mem_send)).raw(),
    ffa(FFA_MEM_RETRIEVE_REQ_32, "FFA_MEM_RETRIEVE_REQ_32", BOTH, Reply(memory::ffa_mem_retrieve_req)).raw(),
    ffa(FFA_MEM_RETRIEVE_REQ_64, "FFA_MEM_RETRIEVE_REQ_64", BOTH, Reply(memory::ffa_mem_retrieve_req)).raw(),
    ffa(FFA_MEM_RETRIEVE_RESP, "FFA_MEM_RETRIEVE_RESP", NONE, Handler::None),
    ffa(FFA_MEM_RELINQUISH, "FFA_MEM_RELINQUISH", SP, Reply(memory::ffa_mem_relinquish)).raw(),
    ffa(FFA_MEM_RECLAIM, "FFA_MEM_RECLAIM", BOTH, Reply(memory::ffa_mem_reclaim)).raw(),
    ffa(FFA_MEM_FRAG_RX, "FFA_MEM_FRAG_RX", BOTH, Reply(memory::ffa_mem_frag_rx)).raw(),
    ffa(FFA_MEM_FRAG_TX, "FFA_MEM_FRAG_TX", BOTH, Reply(memory::ffa_mem_frag_tx)).raw(),
    // Console.
    ffa(fid::FFA_CONSOLE_LOG_32, "FFA_CONSOLE_LOG_32", SP, Reply(console::ffa_console_log)),
    ffa(fid::FFA_CONSOLE_LOG_64, "FFA_CONSOLE_LOG_64", SP, Reply(console::ffa_console_log)),
    // Notifications (DEN0077 v1.2 chapter "Notifications") and indirect
    // messaging (chapter "Indirect messaging").
    ffa(fid::FFA_NOTIFICATION_BITMAP_CREATE, "FFA_NOTIFICATION_BITMAP_CREATE", NS, Reply(notifications::ffa_notification_bitmap_create)),
    ffa(fid::FFA_NOTIFICATION_BITMAP_DESTROY, "FFA_NOTIFICATION_BITMAP_DESTROY", NS, Reply(notifications::ffa_notification_bitmap_destroy)),
    ffa(fid::FFA_NOTIFICATION_BIND, "FFA_NOTIFICATION_BIND", BOTH, Reply(notifications::ffa_notification_bind)),
    ffa(fid::FFA_NOTIFICATION_UNBIND, "FFA_NOTIFICATION_UNBIND", BOTH, Reply(notifications::ffa_notification_bind)),
    ffa(fid::FFA_NOTIFICATION_SET, "FFA_NOTIFICATION_SET", BOTH, Reply(notifications::ffa_notification_set)),
    ffa(fid::FFA_NOTIFICATION_GET, "FFA_NOTIFICATION_GET", BOTH, Reply(notifications::ffa_notification_get)),
    ffa(fid::FFA_NOTIFICATION_INFO_GET_32, "FFA_NOTIFICATION_INFO_GET_32", NS, Reply(notifications::ffa_notification_info_get)),
    ffa(fid::FFA_NOTIFICATION_INFO_GET_64, "FFA_NOTIFICATION_INFO_GET_64", NS, Reply(notifications::ffa_notification_info_get)),
    ffa(fid::FFA_MSG_SEND2, "FFA_MSG_SEND2", BOTH, Reply(indirect_messaging::ffa_msg_send2)),
    // Hafnium's paravirtualised interrupt interface.
    hafnium(HF_INTERRUPT_ENABLE, "HF_INTERRUPT_ENABLE", Reply(interrupts::hf_interrupt_enable)),
    hafnium(HF_INTERRUPT_GET, "HF_INTERRUPT_GET", Reply(interrupts::hf_interrupt_get)),
    hafnium(HF_INTERRUPT_DEACTIVATE, "HF_INTERRUPT_DEACTIVATE", Reply(interrupts::hf_interrupt_deactivate)),
    hafnium(HF_INTERRUPT_RECONFIGURE, "HF_INTERRUPT_RECONFIGURE", Reply(interrupts::hf_interrupt_reconfigure)),
];

/// The row of function id `id`, if any.
pub fn lookup(id: u32) -> Option<&'static CallDef> {
    CALLS.iter().find(|c| c.id == id)
}

/// Name of a function id for log lines: its spec name without the `FFA_`
/// and `MSG_SEND_` prefixes and the `_32`/`_64` width ("DIRECT_REQ",
/// "RXTX_MAP"); "call" for an id the table does not know.
pub fn fid_name(f: u32) -> &'static str {
    let Some(c) = lookup(f) else { return "call" };
    let n = c.name;
    let n = n.strip_prefix("FFA_").unwrap_or(n);
    let n = n.strip_prefix("MSG_SEND_").unwrap_or(n);
    n.strip_suffix("_32").or_else(|| n.strip_suffix("_64")).unwrap_or(n)
}

impl Spmc {
    /// The one dispatcher: finds the call's row, checks the caller's world
    /// may make it, decodes it ([`codec::decode`]: unknown or too new ids get
    /// NOT_SUPPORTED, malformed arguments INVALID_PARAMETERS), and runs its
    /// handler.
    pub fn dispatch(&self, call: &Call, platform: &mut dyn Platform) -> SpStep {
        let Some(row) = lookup(call.fid()).filter(|row| row.from.allows(call.caller)) else {
            return SpStep::Resume(error(FfaError::NotSupported));
        };
        // A framework message's own answers say what was wrong with it
        // (an FFA_VERSION request it carries, for one): see `framework`.
        let framework = call.caller == Caller::Ns && direct_messaging::is_framework_message(self, call.regs);
        let mut call = Call { decoded: None, ..*call };
        if row.decoded && !framework {
            match codec::decode(self.version_of(call.caller), call.regs) {
                Ok(i) => call.decoded = Some(i),
                Err(e) => return SpStep::Resume(error(e)),
            }
        }
        let call = &call;
        match row.handler {
            Reply(h) => SpStep::Resume(h(self, call, platform)),
            Step(h) => h(self, call, platform),
            Handler::None => SpStep::Resume(error(FfaError::NotSupported)),
        }
    }

    /// A call made by context `ctx` of SP `i` on PE `cpu`.
    pub(super) fn handle_sp_call(&self, i: usize, ctx: usize, cpu: usize, r: &Regs, platform: &mut dyn Platform) -> SpStep {
        let call = Call { caller: Caller::Sp(i), ctx, cpu, regs: r, decoded: None };
        // An SP's first FF-A call other than FFA_VERSION fixes its version,
        // as the Normal world's (DEN0077 v1.2 §13.2, FFA_VERSION: negotiated
        // before any other call; Hafnium refuses a later change).
        if r[0] as u32 != fid::FFA_VERSION {
            self.part(i).fix_version();
        }
        let step = match r[0] as u32 {
            // The round trip's fast path, as in `handle_ns`: the rows' own handler.
            fid::FFA_MSG_SEND_DIRECT_RESP_32 | fid::FFA_MSG_SEND_DIRECT_RESP_64 | fid::FFA_MSG_SEND_DIRECT_RESP2 => {
                direct_messaging::ffa_msg_send_direct_resp(self, &call, platform)
            }
            fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2 => {
                SpStep::Resume(direct_messaging::ffa_msg_send_direct_req(self, &call, platform))
            }
            _ => self.dispatch(&call, platform),
        };
        match step {
            SpStep::Resume(_) if platform.take_access_fault() => {
                log::warn!("{} from SP {:#06x}: a buffer it named faulted (left its PAS): ABORTED", fid_name(r[0] as u32), self.part(i).manifest.id);
                SpStep::Resume(error(FfaError::Aborted))
            }
            s => s,
        }
    }

    /// Answers one request from the Normal world (relayed by the SPMD) on
    /// PE `cpu` and logs one line about it.
    pub fn handle_ns(&self, r: &Regs, cpu: usize, platform: &mut dyn Platform) -> Regs {
        // A framework message is the SPMD's own request to us (FFA_VERSION on
        // the Normal world's behalf), not a call of the table's worlds: it is
        // answered here, before the table (going through the dispatcher cost
        // FFA_VERSION ~420 more instructions in the -icount bench).
        let f = r[0] as u32;
        // The Normal world's first FF-A call other than FFA_VERSION fixes its
        // version (see `framework`).  FFA_INTERRUPT is the SPMD's, not a call
        // of the Normal world's.
        let framework = matches!(f, fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64) && direct_messaging::is_framework_message(self, r);
        if !framework && !matches!(f, fid::FFA_INTERRUPT | fid::FFA_VERSION) && !self.ns_version_fixed.load(Ordering::Relaxed) {
            self.ns_version_fixed.store(true, Ordering::Relaxed);
        }
        let mut answer = match f {
            _ if framework => {
                return self.framework_message(r);
            }
            // The round trip's fast path: straight to the handler that
            // `dispatch` would find in these rows (raw, callable from NS;
            // `fast_paths_are_the_rows_handlers` checks it), without the
            // table walk and the `Call` it builds.
            fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2 => self.direct_request(Caller::Ns, 0, cpu, r, platform),
            _ => match self.dispatch(&Call { caller: Caller::Ns, ctx: 0, cpu, regs: r, decoded: None }, platform) {
                SpStep::Resume(a) => a,
                // Only SP-only rows decide anything else.
                _ => error(FfaError::NotSupported),
            },
        };
        // A Normal-world buffer that left the NS PAS under us (delegated to
        // the Realm world): the access faulted and was survived; the call is
        // ABORTED, as Hafnium answers after its trapped copy.
        // Replaced in place, not moved through an `if`: one 144-byte copy
        // less per call (issue P item 3).
        if platform.take_access_fault() {
            log::warn!("{} from NS: a buffer it named faulted (left the NS PAS): ABORTED", fid_name(f));
            answer = error(FfaError::Aborted);
        }
        self.log_ns(r, &answer);
        // Notifications set while serving this call owe the Normal world the SRI.
        self.flush_sri(cpu, platform);
        answer
    }

    /// The one log line about a Normal-world request and its answer.
    fn log_ns(&self, r: &Regs, answer: &Regs) {
        let f = r[0] as u32;
        match f {
            fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2 => {
                let (src, dst) = ffa::unpack_endpoints(r[1]);
                if !direct_messaging::is_framework_message(self, r) {
                    shared::request_log!("{} {:#06x} -> {:#06x}: {}", fid_name(f), src, dst, Outcome(answer));
                }
            }
            fid::FFA_RUN => {
                shared::request_log!("RUN {:#06x} vcpu {}: {}", (r[1] >> 16) & 0xffff, r[1] & 0xffff, Outcome(answer));
            }
            fid::FFA_PARTITION_INFO_GET => {
                if answer[0] == fid::FFA_SUCCESS_32 as u64 {
                    shared::request_log!("PARTITION_INFO_GET: {} partition(s)", answer[2]);
                } else {
                    shared::request_log!("PARTITION_INFO_GET: {}", Outcome(answer));
                }
            }
            // Its handler says what happened.
            fid::FFA_INTERRUPT => {}
            fid::FFA_FEATURES => {
                shared::request_log!("FEATURES from NS ({:#x}) for {:#x}: {}", f, r[1] as u32, Outcome(answer));
            }
            // Where the buffers are: under pKVM they are its own (in the
            // hypervisor's memory), not the host kernel's (issue G).
            fid::FFA_RXTX_MAP_32 | fid::FFA_RXTX_MAP_64 => {
                let (tx, rx) = if f == fid::FFA_RXTX_MAP_32 { (r[1] as u32 as u64, r[2] as u32 as u64) } else { (r[1], r[2]) };
                if tx == 0 && rx == 0 && r[3] as u32 == 0 {
                    shared::request_log!("{} from NS ({:#x}): forwarded for a VM (endpoint RX/TX descriptor): {}", fid_name(f), f, Outcome(answer));
                    return;
                }
                shared::request_log!("{} from NS ({:#x}): tx {:#x} rx {:#x}, {} page(s): {}", fid_name(f), f, tx, rx, r[3] as u32 & 0x3f, Outcome(answer));
            }
            // The VM the hypervisor names (0: its own buffers).
            fid::FFA_RX_ACQUIRE | fid::FFA_RX_RELEASE => {
                shared::request_log!("{} from NS ({:#x}) for endpoint {:#x}: {}", fid_name(f), f, r[1] as u16, Outcome(answer));
            }
            fid::FFA_RXTX_UNMAP => {
                shared::request_log!("{} from NS ({:#x}) for endpoint {:#x}: {}", fid_name(f), f, (r[1] >> 16) as u16, Outcome(answer));
            }
            _ => shared::request_log!("{} from NS ({:#x}): {}", fid_name(f), f, Outcome(answer)),
        }
    }
}
