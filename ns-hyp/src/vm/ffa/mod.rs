//! ns-hyp as the FF-A hypervisor (DEN0077 v1.2, "partition manager" at
//! NS-EL2): every normal VM is an FF-A endpoint of its own.  A guest's FF-A
//! calls (HVC or SMC, the conduit its DTB's PSCI node names) come here
//! instead of being refused; this module decides each one, forwarding to the
//! SPMC what the SPMC must see (direct requests, FFA_RUN, partition
//! discovery) and answering the rest itself (version, ids, features, the
//! VM's RX/TX buffers).
//!
//! Ids (DEN0077 v1.2, "partition identification"): ns-hyp itself is 0 (the
//! hypervisor's id at the physical FF-A instance), VM k (0-based among the
//! normal VMs; a Realm is no FF-A endpoint) is k + 1.  Secure endpoints have
//! bit 15 set, so a VM id never collides with an SP's.
//!
//! Everything here is plain logic behind two small traits, [`Upstream`]
//! (the SMC to the SPMC, ns-hyp's own RX buffer) and [`Guests`] (IPA to
//! PA inside a VM's RAM, writes into a VM's RX buffer), tested on the host
//! against a fake SPMC (`tests.rs`).  `crate::guest::ffa` is the target glue.
//!
//! One declarative table ([`CALLS`]) names every call the proxy knows, with
//! its spec name and how it is handled; the dispatcher answers NOT_SUPPORTED
//! for anything else, and FFA_FEATURES is answered from the same table.

pub mod availability;
pub mod direct;
pub mod indirect;
pub mod memory;
pub mod notify;
pub mod setup;
#[cfg(test)]
mod tests;

use config::MAX_VMS;
use shared::abi::ffa::{fid, FfaError, FuncId};

use super::config;

/// x0..x17: an FF-A call or reply as the SMCCC v1.2 register set carries it.
pub type Regs = [u64; 18];

/// 4 KiB: the FF-A translation granule for RX/TX buffers (FFA_RXTX_MAP).
pub const PAGE: u64 = 0x1000;

/// The hypervisor's own id (DEN0077 v1.2, FFA_ID_GET at the physical instance).
pub const HYPERVISOR_ID: u16 = 0;

/// VM `k`'s FF-A id, `k` counted among the normal VMs only.
pub const fn vm_id(k: usize) -> u16 {
    k as u16 + 1
}

/// The SPMC and ns-hyp's own mailbox with it.
pub trait Upstream {
    /// One FF-A call to the SPMC through the SPMD (an SMC on the target):
    /// x0..x17 out, x0..x17 back.
    fn call(&self, regs: &Regs) -> Regs;
    /// Runs `f` over ns-hyp's RX buffer, which ns-hyp owns between a
    /// successful FFA_PARTITION_INFO_GET and its FFA_RX_RELEASE.
    fn with_hyp_rx<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R;
    /// Copies `bytes` to the start of ns-hyp's TX buffer (for the call that
    /// follows).  Only memory calls use it, under the proxy's memory lock
    /// ([`Proxy::memory`]).
    fn write_hyp_tx(&self, bytes: &[u8]);
}

/// The VMs as the proxy needs them: their RAM, and their vCPUs' Notification
/// Pending Interrupt.
pub trait Guests {
    /// The PA of `pages` whole 4 KiB pages from IPA `ipa` of VM `k`, when
    /// `ipa` is page aligned and every page lies inside that VM's RAM.
    fn pages_pa(&self, k: usize, ipa: u64, pages: u64) -> Option<u64>;
    /// Writes `bytes` at `pa`, inside a VM's pinned RX buffer.
    fn write(&self, pa: u64, bytes: &[u8]);
    /// Reads `out.len()` bytes at `pa`, inside a VM's pinned TX buffer.
    fn read(&self, pa: u64, out: &mut [u8]);
    /// VM `k`'s RAM: (PA, size); its IPA is `layout::RAM_IPA`.
    fn ram(&self, k: usize) -> (u64, u64);
    /// Takes `pages` pages from `ipa` out of VM `k`'s Stage-2 (`present`
    /// false: an FF-A lend) or maps them back (true); false if the change
    /// failed.
    fn set_mapped(&self, k: usize, ipa: u64, pages: u64, present: bool) -> bool;
    /// Pends the Notification Pending Interrupt ([`notify::NPI_INTID`]) on
    /// vCPU `v` of VM `k`.
    fn pend_npi(&self, k: usize, v: usize);
}

/// FFA_ERROR with status `e` (DEN0077 v1.2, FFA_ERROR: w2 = the status code).
pub fn error(e: FfaError) -> Regs {
    let mut r = [0; 18];
    r[0] = fid::FFA_ERROR as u64;
    r[2] = i32::from(e) as u32 as u64;
    r
}

/// FFA_SUCCESS_32 with w2, w3.
pub fn success(w2: u32, w3: u32) -> Regs {
    let mut r = [0; 18];
    r[0] = fid::FFA_SUCCESS_32 as u64;
    r[2] = w2 as u64;
    r[3] = w3 as u64;
    r
}

/// How the proxy handles a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    Version,
    Features,
    IdGet,
    SpmIdGet,
    RxTxMap,
    RxTxUnmap,
    RxRelease,
    PartitionInfoGet,
    DirectReq,
    Run,
    /// FFA_MEM_SHARE / FFA_MEM_LEND from a guest ([`memory`]).
    MemSend,
    MemFragTx,
    MemReclaim,
    /// Memory calls a guest gets NOT_SUPPORTED for: donation (ns-hyp scrubs
    /// and reuses a VM's RAM, a donated page cannot leave it), and the
    /// borrower's side (retrieve, relinquish, FRAG_RX): no SP lends to a VM.
    Memory,
    /// FFA_NOTIFICATION_BIND / _UNBIND / _SET / _GET ([`notify`]).
    NotificationBind,
    NotificationUnbind,
    NotificationSet,
    NotificationGet,
    /// FFA_MSG_SEND2 ([`indirect`]).
    MsgSend2,
    /// The hypervisor's alone: it creates and destroys each VM's
    /// notification bitmap (DEN0077 v1.2, FFA_NOTIFICATION_BITMAP_CREATE is
    /// "invoked by the hypervisor") and, as the receivers' scheduler, asks
    /// FFA_NOTIFICATION_INFO_GET; a guest gets NOT_SUPPORTED.
    HypervisorOnly,
    /// Known, not proxied yet: NOT_SUPPORTED.
    NotYet,
}

impl Handler {
    /// The proxy implements it: FFA_FEATURES reports it.
    pub const fn supported(self) -> bool {
        !matches!(self, Handler::Memory | Handler::HypervisorOnly | Handler::NotYet)
    }

    /// A memory call the proxy handles when memory sharing is set up
    /// ([`Proxy::set_ledger`]).
    pub const fn is_memory(self) -> bool {
        matches!(self, Handler::MemSend | Handler::MemFragTx | Handler::MemReclaim)
    }
}

/// One row of the call table.
#[derive(Clone, Copy, Debug)]
pub struct Call {
    pub fid: u32,
    /// The spec's name (DEN0077 v1.2), for logs.
    pub name: &'static str,
    pub handler: Handler,
}

const fn row(f: FuncId, name: &'static str, handler: Handler) -> Call {
    Call { fid: f as u32, name, handler }
}

/// Every FF-A call a guest may make that the proxy knows.
pub const CALLS: &[Call] = &[
    row(FuncId::Version, "FFA_VERSION", Handler::Version),
    row(FuncId::Features, "FFA_FEATURES", Handler::Features),
    row(FuncId::IdGet, "FFA_ID_GET", Handler::IdGet),
    row(FuncId::SpmIdGet, "FFA_SPM_ID_GET", Handler::SpmIdGet),
    row(FuncId::RxTxMap32, "FFA_RXTX_MAP_32", Handler::RxTxMap),
    row(FuncId::RxTxMap64, "FFA_RXTX_MAP_64", Handler::RxTxMap),
    row(FuncId::RxTxUnmap, "FFA_RXTX_UNMAP", Handler::RxTxUnmap),
    row(FuncId::RxRelease, "FFA_RX_RELEASE", Handler::RxRelease),
    row(FuncId::PartitionInfoGet, "FFA_PARTITION_INFO_GET", Handler::PartitionInfoGet),
    row(FuncId::PartitionInfoGetRegs, "FFA_PARTITION_INFO_GET_REGS", Handler::NotYet),
    row(FuncId::MsgSendDirectReq32, "FFA_MSG_SEND_DIRECT_REQ_32", Handler::DirectReq),
    row(FuncId::MsgSendDirectReq64, "FFA_MSG_SEND_DIRECT_REQ_64", Handler::DirectReq),
    row(FuncId::MsgSendDirectReq64_2, "FFA_MSG_SEND_DIRECT_REQ2", Handler::DirectReq),
    row(FuncId::Run32, "FFA_RUN", Handler::Run),
    row(FuncId::MemDonate32, "FFA_MEM_DONATE_32", Handler::Memory),
    row(FuncId::MemDonate64, "FFA_MEM_DONATE_64", Handler::Memory),
    row(FuncId::MemLend32, "FFA_MEM_LEND_32", Handler::MemSend),
    row(FuncId::MemLend64, "FFA_MEM_LEND_64", Handler::MemSend),
    row(FuncId::MemShare32, "FFA_MEM_SHARE_32", Handler::MemSend),
    row(FuncId::MemShare64, "FFA_MEM_SHARE_64", Handler::MemSend),
    row(FuncId::MemRetrieveReq32, "FFA_MEM_RETRIEVE_REQ_32", Handler::Memory),
    row(FuncId::MemRetrieveReq64, "FFA_MEM_RETRIEVE_REQ_64", Handler::Memory),
    row(FuncId::MemRelinquish, "FFA_MEM_RELINQUISH", Handler::Memory),
    row(FuncId::MemReclaim, "FFA_MEM_RECLAIM", Handler::MemReclaim),
    row(FuncId::MemFragRx, "FFA_MEM_FRAG_RX", Handler::Memory),
    row(FuncId::MemFragTx, "FFA_MEM_FRAG_TX", Handler::MemFragTx),
    row(FuncId::NotificationBitmapCreate, "FFA_NOTIFICATION_BITMAP_CREATE", Handler::HypervisorOnly),
    row(FuncId::NotificationBitmapDestroy, "FFA_NOTIFICATION_BITMAP_DESTROY", Handler::HypervisorOnly),
    row(FuncId::MsgSend2, "FFA_MSG_SEND2", Handler::MsgSend2),
    row(FuncId::NotificationBind, "FFA_NOTIFICATION_BIND", Handler::NotificationBind),
    row(FuncId::NotificationUnbind, "FFA_NOTIFICATION_UNBIND", Handler::NotificationUnbind),
    row(FuncId::NotificationSet, "FFA_NOTIFICATION_SET", Handler::NotificationSet),
    row(FuncId::NotificationGet, "FFA_NOTIFICATION_GET", Handler::NotificationGet),
    row(FuncId::NotificationInfoGet32, "FFA_NOTIFICATION_INFO_GET_32", Handler::HypervisorOnly),
    row(FuncId::NotificationInfoGet64, "FFA_NOTIFICATION_INFO_GET_64", Handler::HypervisorOnly),
];

/// The table's row for `fid`.
pub fn find(fid: u32) -> Option<&'static Call> {
    CALLS.iter().find(|c| c.fid == fid)
}

/// A VM's RX/TX buffer pair (FFA_RXTX_MAP), translated and pinned: while it
/// is mapped its pages are the VM's mailbox, which memory sharing must not
/// hand out ([`memory`] refuses its pages: DENIED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub tx_pa: u64,
    pub rx_pa: u64,
    pub pages: u64,
    /// ns-hyp holds the RX buffer: it is writing into it, or wrote what the
    /// VM has not released yet (the VM owns it until FFA_RX_RELEASE;
    /// DEN0077 v1.2, "RX/TX buffer ownership").  With `forwarded`, ns-hyp
    /// acquired it from the SPMC first.
    pub rx_full: bool,
    /// The SPMC knows the pair (ns-hyp forwarded the map, [`setup::forward_map`]):
    /// while ns-hyp does not hold the RX buffer the SPMC owns it as its other
    /// producer (it may have written an SP's message the VM has not
    /// released yet: only the SPMC knows), and ns-hyp must FFA_RX_ACQUIRE it
    /// before writing and FFA_RX_RELEASE it afterwards.
    pub forwarded: bool,
}

impl Mailbox {
    fn holds(&self, pa: u64) -> bool {
        let size = self.pages * PAGE;
        (self.tx_pa..self.tx_pa + size).contains(&pa) || (self.rx_pa..self.rx_pa + size).contains(&pa)
    }
}

/// One VM's FF-A state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmFfa {
    /// A normal VM that is an FF-A endpoint (not a Realm, not unused).
    pub endpoint: bool,
    pub id: u16,
    /// Its vCPUs: the execution context count its descriptor gives.
    pub vcpus: u16,
    /// The version it asked for with FFA_VERSION (v1.2 until it asks): it
    /// decides the partition descriptor layout it gets.
    pub version: u32,
    pub mailbox: Option<Mailbox>,
}

impl VmFfa {
    pub const fn none() -> Self {
        VmFfa { endpoint: false, id: 0, vcpus: 0, version: shared::abi::ffa::QUADRANT_FFA_VERSION, mailbox: None }
    }
}

/// An SP execution context the SPMC handed back to the Normal world
/// preempted (FFA_INTERRUPT) or yielding (FFA_YIELD) while it served a VM's
/// request: only that VM may resume it with FFA_RUN, or the SP's response
/// would reach another VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preempted {
    /// w1 of the FFA_INTERRUPT/FFA_YIELD: the SP's id and vCPU.
    pub target: u32,
    pub owner: u16,
}

/// Preempted contexts remembered at once (SPs × their contexts in use by VMs).
pub const MAX_PREEMPTED: usize = 32;

/// The proxy's state: every VM's, and ns-hyp's own RX buffer's lock.
pub struct Proxy {
    vms: [spin::Mutex<VmFfa>; MAX_VMS],
    /// Held from ns-hyp's FFA_PARTITION_INFO_GET to its FFA_RX_RELEASE:
    /// ns-hyp has one RX buffer for every vCPU of every VM.  Lock order:
    /// this lock, then a VM's.
    hyp_rx: spin::Mutex<()>,
    preempted: spin::Mutex<[Option<Preempted>; MAX_PREEMPTED]>,
    /// Which transaction holds each page of the guest area ([`memory`]);
    /// its lock also serialises ns-hyp's TX buffer.  None until
    /// [`Proxy::set_ledger`]: the memory calls are NOT_SUPPORTED then.
    /// Lock order: this lock, then a VM's.
    pub memory: spin::Mutex<Option<memory::Ledger<'static>>>,
    /// Each VM's notifications from other VMs and hypervisor framework ones ([`notify`]).
    notes: notify::VmNotifications,
    /// The SPs that want VM availability messages ([`availability`]), and
    /// each VM's lives so far (its messages' handle).
    subscribers: spin::Mutex<availability::Subscribers>,
    lives: [core::sync::atomic::AtomicU32; MAX_VMS],
}

impl Default for Proxy {
    fn default() -> Self {
        Self::new()
    }
}

impl Proxy {
    pub const fn new() -> Self {
        Proxy { vms: [const { spin::Mutex::new(VmFfa::none()) }; MAX_VMS], hyp_rx: spin::Mutex::new(()), preempted: spin::Mutex::new([None; MAX_PREEMPTED]), memory: spin::Mutex::new(None), notes: notify::VmNotifications::new(), subscribers: spin::Mutex::new(availability::Subscribers::new()), lives: [const { core::sync::atomic::AtomicU32::new(0) }; MAX_VMS] }
    }

    /// VM `k` becomes endpoint `id` with `vcpus` execution contexts.
    /// Its notification bitmaps in ns-hyp exist from now on; the SPMC's
    /// come with [`Proxy::create_bitmaps`].
    pub fn add_vm(&self, k: usize, id: u16, vcpus: usize) {
        *self.vms[k].lock() = VmFfa { endpoint: true, id, vcpus: vcpus as u16, ..VmFfa::none() };
        notify::add_vm(self, k, vcpus);
    }

    /// VM `k` is torn down or reset: its buffers are unpinned and its
    /// negotiated version forgotten; it stays an endpoint (a reset boots it again).
    pub fn reset_vm(&self, k: usize) {
        let mut vm = self.vms[k].lock();
        let id = vm.id;
        *vm = VmFfa { endpoint: vm.endpoint, id, vcpus: vm.vcpus, ..VmFfa::none() };
        drop(vm);
        for p in self.preempted.lock().iter_mut() {
            if p.is_some_and(|p| p.owner == id) {
                *p = None;
            }
        }
    }

    /// Guests may share and lend memory, with `ledger` over the guest area.
    pub fn set_ledger(&self, ledger: memory::Ledger<'static>) {
        *self.memory.lock() = Some(ledger);
    }

    /// VM `k` is powered off or reset: its memory transactions are reclaimed
    /// ([`memory::teardown`]), then its buffers unpinned ([`Proxy::reset_vm`]).
    pub fn vm_gone<U: Upstream, M: Guests>(&self, k: usize, up: &U, mem: &M) {
        memory::vm_gone(self, k, up, mem);
        // The SPMC forgets its pair first: no SP message lands in it (nor
        // its notification) once the pages are unpinned.
        setup::forget_mailbox(self, k, up);
        notify::vm_gone(self, k, up);
        self.reset_vm(k);
    }

    /// VM `k`'s notification bitmaps, here and at the SPMC, once it is an
    /// endpoint ([`Proxy::add_vm`]); the SPMC's answer.
    pub fn create_bitmaps<U: Upstream>(&self, k: usize, up: &U) -> Regs {
        notify::create_bitmaps(self, k, up)
    }

    /// Learns which SPs want VM availability messages (partition discovery
    /// through ns-hyp's RX buffer); returns how many do.
    pub fn discover_subscribers<U: Upstream>(&self, up: &U) -> usize {
        let _hyp_rx = self.hyp_rx.lock();
        let mut req = [0; 18];
        req[0] = fid::FFA_PARTITION_INFO_GET as u64;
        let reply = up.call(&req);
        if reply[0] as u32 != fid::FFA_SUCCESS_32 {
            return 0;
        }
        let subs = up.with_hyp_rx(|rx| availability::Subscribers::from_descriptors(rx, reply[2] as u32 as usize, reply[3] as u32 as usize));
        let mut rel = [0; 18];
        rel[0] = fid::FFA_RX_RELEASE as u64;
        up.call(&rel);
        *self.subscribers.lock() = subs;
        subs.wanting(availability::Availability::Created).count().max(subs.wanting(availability::Availability::Destroyed).count())
    }

    /// Tells the subscribed SPs that VM `k` starts (a new life: a new
    /// handle) or is gone; returns (answered, sent).
    pub fn announce<U: Upstream>(&self, k: usize, what: availability::Availability, up: &U) -> (usize, usize) {
        use core::sync::atomic::Ordering;
        let vm = self.vm(k);
        if !vm.endpoint {
            return (0, 0);
        }
        let life = match what {
            availability::Availability::Created => self.lives[k].fetch_add(1, Ordering::Relaxed) + 1,
            availability::Availability::Destroyed => self.lives[k].load(Ordering::Relaxed),
        };
        let subs = *self.subscribers.lock();
        availability::send(up, &subs, what, vm.id, (life as u64) << 16 | vm.id as u64)
    }

    /// The physical Schedule Receiver Interrupt ([`notify::sri`]).
    pub fn sri<U: Upstream, M: Guests>(&self, up: &U, mem: &M) -> usize {
        notify::sri(self, up, mem)
    }

    /// VM `k`'s state (a copy).
    pub fn vm(&self, k: usize) -> VmFfa {
        *self.vms[k].lock()
    }

    /// Whether `pa` is a page of some VM's mapped RX or TX buffer, and whose
    /// (for memory sharing: a guest must not share, lend or donate its mailbox).
    #[cfg(test)]
    pub fn is_mailbox_page(&self, pa: u64) -> Option<usize> {
        (0..MAX_VMS).find(|&k| self.vms[k].lock().mailbox.is_some_and(|m| m.holds(pa)))
    }

    /// The other normal VMs than `k`: (id, vCPUs), for partition discovery.
    fn other_vms(&self, k: usize) -> impl Iterator<Item = (u16, u16)> + '_ {
        (0..MAX_VMS).filter(move |&j| j != k).filter_map(|j| {
            let v = self.vms[j].lock();
            v.endpoint.then_some((v.id, v.vcpus))
        })
    }

    /// The endpoint VM with id `id`, if any.
    fn vm_by_id(&self, id: u16) -> Option<usize> {
        (0..MAX_VMS).find(|&j| {
            let v = self.vms[j].lock();
            v.endpoint && v.id == id
        })
    }

    /// Decides VM `k`'s FF-A call `r` (x0 = function id); returns what the
    /// guest gets in x0..x17.
    pub fn handle<U: Upstream, M: Guests>(&self, k: usize, r: &Regs, up: &U, mem: &M) -> Regs {
        if !self.vms[k].lock().endpoint {
            return error(FfaError::NotSupported);
        }
        // SMCCC: a function id is 32 bits; set upper bits are no call we know.
        let Some(call) = (r[0] >> 32 == 0).then(|| find(r[0] as u32)).flatten() else {
            return error(FfaError::NotSupported);
        };
        // SMC32 forms see only the low words of their arguments (DEN0028, "SMC32/HVC32").
        let mut a = *r;
        if call.fid & (1 << 30) == 0 {
            for x in a.iter_mut().skip(1) {
                *x &= 0xffff_ffff;
            }
        }
        match call.handler {
            Handler::Version => setup::version(self, k, &a),
            Handler::Features => setup::features(self, k, &a),
            Handler::IdGet => success(self.vm(k).id as u32, 0),
            Handler::SpmIdGet => setup::spm_id_get(up),
            Handler::RxTxMap => setup::rxtx_map(self, k, &a, up, mem),
            Handler::RxTxUnmap => setup::rxtx_unmap(self, k, &a, up),
            Handler::RxRelease => setup::rx_release(self, k, &a, up),
            Handler::PartitionInfoGet => setup::partition_info_get(self, k, &a, up, mem),
            Handler::DirectReq => direct::direct_req(self, k, &a, up),
            Handler::Run => direct::run(self, k, &a, up),
            Handler::MemSend | Handler::MemFragTx | Handler::MemReclaim => memory::call(self, k, call.handler, &a, up, mem),
            Handler::NotificationBind => notify::bind(self, k, &a, up, false),
            Handler::NotificationUnbind => notify::bind(self, k, &a, up, true),
            Handler::NotificationSet => notify::set(self, k, &a, up, mem),
            Handler::NotificationGet => notify::get(self, k, &a, up),
            Handler::MsgSend2 => indirect::msg_send2(self, k, &a, up, mem),
            Handler::Memory | Handler::HypervisorOnly | Handler::NotYet => {
                log::debug!("vm{}: {} not proxied: NOT_SUPPORTED", k, call.name);
                error(FfaError::NotSupported)
            }
        }
    }
}
