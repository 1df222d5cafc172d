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
use crate::vm::ffa::{self, GuestMemory, Proxy, Regs, Upstream, PAGE};
use crate::vm::layout::RAM_IPA;
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
}

struct Ram;

impl GuestMemory for Ram {
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
}

/// Sets FF-A up for the normal VMs among `cfgs` (before any runs).
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
    let mut n = 0;
    for (k, cfg) in cfgs.enumerate() {
        if cfg.realm {
            continue;
        }
        PROXY.add_vm(k, ffa::vm_id(n), cfg.vcpus);
        log::info!("guest FF-A: vm{} is endpoint {:#06x} ({} vCPU(s))", k, ffa::vm_id(n), cfg.vcpus);
        n += 1;
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

/// The log line at the machine's power-off.
pub fn report() {
    if on() {
        log::info!("guest FF-A: {} direct request(s) and FFA_RUN(s) forwarded, at most {} at once", FORWARDED.load(Ordering::Relaxed), MOST_AT_ONCE.load(Ordering::Relaxed));
    }
}

/// VM `k` is powered off or reset: its buffers are unpinned (before its RAM is scrubbed).
pub fn vm_off(k: usize) {
    PROXY.reset_vm(k);
}

/// Whether `pa` is a page of some VM's RX/TX buffer (for memory sharing, B3 item 2).
#[allow(dead_code)]
pub fn is_mailbox_page(pa: u64) -> Option<usize> {
    PROXY.is_mailbox_page(pa)
}
