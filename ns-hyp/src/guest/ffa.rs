//! The guests' FF-A proxy (`crate::vm::ffa`) on the target: the SMC to the
//! SPMC, ns-hyp's own mailbox, and VM RAM by its slot's PA range.
//!
//! At start ns-hyp asks the SPMC for FF-A v1.2 and maps its own RX/TX pair
//! (the probes of the test flavour may have mapped it already: the SPMC's
//! DENIED then means "mapped"); without an SPMC (no TF-A, or an SPMD that
//! refuses) FF-A stays off and `vm::psci` refuses the guests' FF-A calls.

use super::VMS;
use crate::arch::mailbox::StaticMailbox;
use crate::vm::config::GuestConfig;
use crate::vm::ffa::availability::Availability;
use crate::vm::ffa::{self, Guests, Proxy, Regs, Upstream, PAGE};
use crate::vm::config::GUEST_AREA;
use crate::vm::layout::{RAM_IPA, RAM_PA};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use shared::abi::ffa::{fid, FfaError, Version};
use shared::ffa_client::{CallError, FfaClient};
use shared::smccc::{Conduit, Smc};

static PROXY: Proxy = Proxy::new();
/// An SPMC answered and ns-hyp's mailbox is mapped: guests' FF-A calls come here.
static ON: AtomicBool = AtomicBool::new(false);
/// Direct requests and FFA_RUNs forwarded: in all, in the SPMC now, and
/// the most at once (the log's answer to "did the VMs' requests overlap").
static FORWARDED: AtomicUsize = AtomicUsize::new(0);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MOST_AT_ONCE: AtomicUsize = AtomicUsize::new(0);
/// Schedule Receiver Interrupts taken, and NPIs they pended.
static SRIS: AtomicUsize = AtomicUsize::new(0);
static NPIS: AtomicUsize = AtomicUsize::new(0);

struct Spmc;

impl Upstream for Spmc {
    fn call(&self, r: &Regs) -> Regs {
        let mut a = [0; 17];
        a.copy_from_slice(&r[1..]);
        Smc.call(r[0] as u32, a)
    }

    fn with_hyp_rx<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        StaticMailbox::get().with_rx(f)
    }

    fn write_hyp_tx(&self, bytes: &[u8]) {
        StaticMailbox::get().write_tx(bytes);
    }
}

struct Ram;

impl Guests for Ram {
    fn pages_pa(&self, k: usize, ipa: u64, pages: u64) -> Option<u64> {
        let slot = &VMS[k];
        let (pa, size) = (slot.ram_pa.load(Ordering::Relaxed), slot.ram_size.load(Ordering::Relaxed));
        let end = ipa.checked_add(pages.checked_mul(PAGE)?)?;
        (ipa % PAGE == 0 && ipa >= RAM_IPA && end <= RAM_IPA + size).then(|| pa + (ipa - RAM_IPA))
    }

    fn write(&self, pa: u64, bytes: &[u8]) {
        // SAFETY: `pa` is in a VM's pinned RX buffer (the proxy checked it
        // under that VM's lock): inside its RAM, which is identity-mapped RW
        // at EL2 (the guest area), and not scrubbed while pinned (teardown
        // unpins first, under the same lock).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), pa as *mut u8, bytes.len()) };
    }

    fn read(&self, pa: u64, out: &mut [u8]) {
        // SAFETY: `pa` is in a VM's pinned TX buffer (the proxy took it from
        // that VM's mailbox): inside its RAM, identity-mapped at EL2.  The
        // guest may write it meanwhile; the proxy checks only this copy.
        unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, out.as_mut_ptr(), out.len()) };
    }

    fn ram(&self, k: usize) -> (u64, u64) {
        let slot = &VMS[k];
        (slot.ram_pa.load(Ordering::Relaxed), slot.ram_size.load(Ordering::Relaxed))
    }

    fn set_mapped(&self, k: usize, ipa: u64, pages: u64, present: bool) -> bool {
        super::stage2_pages(k, ipa, pages, present)
    }
    fn pend_npi(&self, k: usize, v: usize) {
        super::pend_virtual(k, v, crate::vm::ffa::notify::NPI_INTID);
    }
}

/// The memory ledger's page map: one byte per 4 KiB page of the guest area
/// (`vm::ffa::memory`), 256 KiB, handed to the proxy once at [`init`].
#[repr(C, align(4096))]
struct PageMap(core::cell::UnsafeCell<[u8; (GUEST_AREA / PAGE) as usize]>);

// SAFETY: the array is reached only through the one `&'static mut` that
// `init` takes (guarded by TAKEN), then only under the proxy's memory lock.
unsafe impl Sync for PageMap {}

static PAGE_MAP: PageMap = PageMap(core::cell::UnsafeCell::new([0; (GUEST_AREA / PAGE) as usize]));
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The page map, the first time only.
fn page_map() -> Option<&'static mut [u8]> {
    // SAFETY: TAKEN makes this the only reference ever made to the array.
    (!TAKEN.swap(true, Ordering::AcqRel)).then(|| unsafe { (&mut *PAGE_MAP.0.get()).as_mut_slice() })
}

/// Sets FF-A up for the normal VMs among `cfgs` (before any runs).  Never
/// inlined: the ledger it builds (about 10 KiB) must not stay in the frame
/// of ns-hyp's main function, which lives as long as the CPU runs (a
/// single Realm's loop overflowed CPU 0's 64 KiB stack that way).
#[inline(never)]
pub fn init<'a>(cfgs: impl Iterator<Item = &'a GuestConfig>) {
    let client = FfaClient::new(&Smc);
    match client.version(shared::ffa_client::REQUESTED_VERSION) {
        Ok(Version(1, minor)) if minor >= 1 => {}
        Ok(v) => {
            log::info!("guest FF-A: the SPMC speaks {}: guests' FF-A calls refused", v);
            return;
        }
        Err(_) => {
            log::info!("guest FF-A: no SPMC: guests' FF-A calls refused");
            return;
        }
    }
    let mb = StaticMailbox::get();
    let (rx, tx) = mb.rx_tx_pa();
    match client.rxtx_map(rx, tx, mb.pages()) {
        Ok(()) | Err(CallError::Ffa(FfaError::Denied)) => {}
        Err(e) => {
            log::warn!("guest FF-A: ns-hyp's RX/TX map failed ({}): guests' FF-A calls refused", e);
            return;
        }
    }
    let subscribers = PROXY.discover_subscribers(&Spmc);
    let mut n = 0;
    for (k, cfg) in cfgs.enumerate() {
        if cfg.realm {
            continue;
        }
        PROXY.add_vm(k, ffa::vm_id(n), cfg.vcpus);
        // Its notification bitmaps at the SPMC: without them SPs cannot
        // notify it (the SPMC answers NO_MEMORY past its VM slots).
        let created = PROXY.create_bitmaps(k, &Spmc);
        let notifications = if created[0] as u32 == fid::FFA_SUCCESS_32 { "notification bitmaps created" } else { "no notification bitmaps at the SPMC" };
        log::info!("guest FF-A: vm{} is endpoint {:#06x} ({} vCPU(s)), {}", k, ffa::vm_id(n), cfg.vcpus, notifications);
        if subscribers > 0 {
            announce(k, Availability::Created);
        }
        n += 1;
    }
    if let Some(pages) = page_map() {
        PROXY.set_ledger(crate::vm::ffa::memory::Ledger::new(RAM_PA, pages));
    }
    ON.store(true, Ordering::Release);
}

/// The proxy takes the guests' FF-A calls.
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// VM `k`'s FF-A call in x0..x17; returns the guest's x0..x17.
pub fn call(k: usize, r: &Regs) -> Regs {
    let f = r[0] as u32;
    let forwarded = matches!(f, fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2 | fid::FFA_RUN);
    if !forwarded {
        return PROXY.handle(k, r, &Spmc, &Ram);
    }
    let now = IN_FLIGHT.fetch_add(1, Ordering::Relaxed) + 1;
    MOST_AT_ONCE.fetch_max(now, Ordering::Relaxed);
    FORWARDED.fetch_add(1, Ordering::Relaxed);
    let out = PROXY.handle(k, r, &Spmc, &Ram);
    IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    out
}

/// The physical Schedule Receiver Interrupt: the SPMC has notifications
/// pending for some VMs; their vCPUs get the Notification Pending Interrupt.
pub fn sri() {
    if on() {
        let n = PROXY.sri(&Spmc, &Ram);
        SRIS.fetch_add(1, Ordering::Relaxed);
        NPIS.fetch_add(n, Ordering::Relaxed);
    }
}

/// The log line at the machine's power-off.
pub fn report() {
    if on() {
        log::info!("guest FF-A: {} direct request(s) and FFA_RUN(s) forwarded, at most {} at once", FORWARDED.load(Ordering::Relaxed), MOST_AT_ONCE.load(Ordering::Relaxed));
        log::info!("guest FF-A: {} Schedule Receiver Interrupt(s) taken, {} NPI(s) pended from them", SRIS.load(Ordering::Relaxed), NPIS.load(Ordering::Relaxed));
    }
}

/// VM `k` is powered off or reset (none of its vCPUs runs): the SPs that
/// subscribed hear that it is gone first (they drop its state, e.g. OP-TEE
/// the shared memory it still holds, before ns-hyp reclaims that memory),
/// then the memory it shared or lent is reclaimed and its buffers are
/// unpinned, before its RAM is scrubbed; after a reset the SPs hear that it
/// is back.
pub fn vm_off(k: usize, reset: bool) {
    if !on() {
        return;
    }
    announce(k, Availability::Destroyed);
    PROXY.vm_gone(k, &Spmc, &Ram);
    if reset {
        announce(k, Availability::Created);
    }
}

/// Sends VM availability message `what` about VM `k`, and logs it.
fn announce(k: usize, what: Availability) {
    let (answered, sent) = PROXY.announce(k, what, &Spmc);
    if sent > 0 {
        let w = if what == Availability::Created { "created" } else { "destroyed" };
        log::info!("guest FF-A: vm{}: VM {} message to {} SP(s), {} answered", k, w, sent, answered);
    }
}
