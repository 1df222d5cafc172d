//! The realm modes on the target: NS pages in our .bss (identity-mapped by
//! `map_self`), the console, the counter, the granule-protection-fault hook.

use super::host::{Image, RunOptions};
use super::mode::{self, Mode};
use super::{NsMemory, Pages, Report};
#[cfg(feature = "test-modes")]
use core::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "test-modes")]
use shared::arch::ExceptionFrame;
use shared::mm::PageArea;
use shared::console::ConsoleOut;
use shared::smccc::Smc;

/// NS pages for RMI parameters, RmiRecRun and the granules we delegate.
const NS_PAGES: usize = 80;
static PAGES: PageArea<NS_PAGES> = PageArea::new();

/// Identity-mapped Normal-world memory.
struct Identity;

impl NsMemory for Identity {
    fn write(&self, pa: u64, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            // SAFETY: callers pass pages of PAGES (ours, mapped, Undelegated);
            // volatile so each store happens before the SMC that reads them.
            unsafe { core::ptr::write_volatile((pa as usize + i) as *mut u8, *b) };
        }
    }
    fn read(&self, pa: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            // SAFETY: as in `write`; the RMM wrote the page during the SMC.
            *b = unsafe { core::ptr::read_volatile((pa as usize + i) as *const u8) };
        }
    }
}

struct Console;

impl Report for Console {
    fn line(&mut self, args: core::fmt::Arguments) {
        log::info!("{}", args);
    }
    fn raw(&mut self, args: core::fmt::Arguments) {
        shared::println!("{}", args);
    }
}

/// Granule protection faults taken (and skipped) by the exception hook.
#[cfg(feature = "test-modes")]
static GPFS: AtomicU64 = AtomicU64::new(0);

#[cfg(feature = "test-modes")]
/// Called by ns-hyp's EL2 exception handler for a synchronous exception;
/// true if it was a granule protection fault on a data access, which is
/// logged and skipped (the load or store does not happen) so we carry on.
pub fn on_el2_sync(frame: &mut ExceptionFrame, esr: u64, far: u64) -> bool {
    if !super::isolation::is_gpf(esr) {
        return false;
    }
    GPFS.fetch_add(1, Ordering::Relaxed);
    log::info!("granule protection fault: esr {:#x} far {:#x} elr {:#x}; access skipped", esr, far, frame.elr);
    frame.elr += 4;
    true
}

fn image(bootargs: &str, out: &mut dyn Report) -> Option<Image> {
    match mode::image(bootargs) {
        Some((pa, pages)) => Some(Image { pa, pages }),
        None => {
            out.line(format_args!("realm: no valid {}<addr>,<bytes> in bootargs", mode::IMAGE));
            None
        }
    }
}

/// Runs the mode, then returns (the caller powers off).
#[inline(never)]
pub fn run(m: Mode, bootargs: &str) {
    let mut out = Console;
    let (start, _) = PAGES.range();
    let mut pages = Pages::new(start as u64, NS_PAGES);
    let counter = shared::arch::timer::cntvct;
    log::info!("mode: realm ({:?})", m);
    match m {
        Mode::Boot => {
            if let Some(img) = image(bootargs, &mut out) {
                super::realm_boot(&Smc, &Identity, &mut pages, img, RunOptions::default(), &counter, &mut out);
            }
        }
        #[cfg(feature = "test-modes")]
        Mode::RmiTests => {
            super::bad_input::run(&Smc, &Identity, &mut pages, &mut out);
        }
        #[cfg(feature = "test-modes")]
        Mode::Isolation => {
            touch_delegated(&mut pages, &mut out);
            if let Some(img) = image(bootargs, &mut out) {
                let opts = RunOptions { isolation: true, ..RunOptions::default() };
                super::realm_boot(&Smc, &Identity, &mut pages, img, opts, &counter, &mut out);
            }
        }
        #[cfg(feature = "test-modes")]
        Mode::RsiTests => {
            if let Some(img) = image(bootargs, &mut out) {
                let opts = RunOptions { rsi_tests: true, ..RunOptions::default() };
                super::realm_boot(&Smc, &Identity, &mut pages, img, opts, &counter, &mut out);
            }
        }
        #[cfg(feature = "test-modes")]
        Mode::RsiStorm => {
            if let Some(img) = image(bootargs, &mut out) {
                let seed = super::mode::storm_seed(bootargs).unwrap_or(1);
                let opts = RunOptions { storm_calls: super::host::STORM_CALLS, storm_seed: seed, ..RunOptions::default() };
                super::realm_boot(&Smc, &Identity, &mut pages, img, opts, &counter, &mut out);
            }
        }
        #[cfg(feature = "test-modes")]
        Mode::Bench => {
            if let Some(img) = image(bootargs, &mut out) {
                super::bench::run(&Smc, &Identity, &mut pages, img, &counter, shared::arch::timer::cntfrq(), &mut out);
            }
        }
    }
}

#[cfg(feature = "test-modes")]
/// Delegates one of our pages, reads and writes it (each access must take a
/// GPF that the hook skips), undelegates it and reads it again (no fault).
fn touch_delegated(pages: &mut Pages, out: &mut dyn Report) {
    let rmi = super::rmi::Rmi::new(&Smc);
    let Some(pa) = pages.take() else { return };
    Identity.write(pa, &[0x5a; 8]);
    let d = rmi.granule_delegate(pa);
    if !d.ok() {
        out.line(format_args!("isolation: FAIL GRANULE_DELEGATE {:#x} -> {:#x}", pa, d.x0));
        return;
    }
    let before = GPFS.load(Ordering::Relaxed);
    // SAFETY: a page of ours, mapped; the GPF each access takes is skipped by
    // `on_el2_sync` (the load's destination keeps its value, the store does nothing).
    let v = unsafe {
        let p = pa as *mut u64;
        let mut v: u64 = 0xdead;
        core::arch::asm!("ldr {v}, [{p}]", p = in(reg) p, v = inout(reg) v, options(nostack));
        core::arch::asm!("str {v}, [{p}]", p = in(reg) p, v = in(reg) 0x1111u64, options(nostack));
        v
    };
    let faults = GPFS.load(Ordering::Relaxed) - before;
    let u = rmi.granule_undelegate(pa);
    let mut back = [0u8; 8];
    Identity.read(pa, &mut back);
    let ok = faults == 2 && v == 0xdead && u.ok();
    out.line(format_args!(
        "isolation ns_touch_delegated: {} {} fault(s) on load+store of delegated {:#x}, load gave {:#x}; after UNDELEGATE ({:#x}) it reads {:#x}",
        if ok { "ok" } else { "FAIL" },
        faults,
        pa,
        v,
        u.x0,
        u64::from_le_bytes(back)
    ));
}

/// The guest's DTB before it is measured into the Realm (64 KiB, NS).
static REALM_DTB: PageArea<16> = PageArea::new();

/// The machine under the Linux Realm's run loop: the real PL011 (alone) or
/// VM `vm`'s console in the multiplexer (one VM of several), the physical
/// counter, the EL2 physical timer (PPI 26) for time slices.
struct RealMachine {
    trace: u64,
    /// One VM of several (`crate::guest`): its index, and this CPU.
    vm: Option<usize>,
    cpu: usize,
}

fn real_uart() -> shared::console::Pl011 {
    // SAFETY: the platform's PL011, mapped as Device memory at EL2 (hyp.rs).
    unsafe { shared::console::Pl011::new(crate::platform::get().uart) }
}

impl super::linux::Machine for RealMachine {
    fn uart_tx(&self, b: u8) {
        match self.vm {
            Some(k) => crate::guest::console_output(k, b),
            None => real_uart().put_byte(b),
        }
    }
    fn uart_rx(&self) -> Option<u8> {
        // One VM of several: CPU 0 feeds the input to its PL011 and kicks us;
        // input held back while its FIFO was full is taken here.
        if self.vm.is_some() {
            crate::guest::console_room(self.cpu);
            None
        } else {
            real_uart().read_byte()
        }
    }
    fn now(&self) -> u64 {
        shared::arch::timer::cntpct()
    }
    fn slice(&self) -> u64 {
        shared::arch::timer::cntfrq() / 100
    }
    fn set_timer(&self, at: Option<u64>) {
        set_hyp_timer(at);
    }
    fn num_lrs(&self) -> usize {
        crate::guest::gic::num_lrs()
    }
    fn idle(&self) {
        // SAFETY: waits for an interrupt; EL2 runs with IRQs masked, `wfi`
        // still wakes on a pending one (the hyp timer armed by the run loop,
        // the UART, a kick), which stays pending until the loop takes it.
        unsafe { core::arch::asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
    }
    fn trace(&self) -> u64 {
        self.trace
    }
    fn virtio(&self, addr: u64, size: u8, write: bool, value: u64, mem: &mut dyn crate::vm::virtio_blk::GuestMemory) -> Option<(u64, bool)> {
        let k = self.vm.unwrap_or(0);
        if !crate::guest::virtio::contains(k, addr) {
            return None;
        }
        // An access the transport refuses is answered as the model's abort.
        Some(crate::guest::virtio::access_with(k, addr, size, write, value, mem).unwrap_or((0, false)))
    }
    fn kicks(&self) -> bool {
        use crate::guest::gic;
        if self.vm.is_none() {
            return false;
        }
        let mut timer = false;
        // ISR_EL1.I first: an ICC_IAR1_EL1 read that finds nothing is the
        // costly one under TCG.  Only the kick SGI and the hyp timer are
        // enabled here (`run_vm`); the timer is turned off before its EOI, so
        // its level does not pend it again.
        while shared::read_sysreg!(isr_el1) & (1 << 7) != 0 {
            let i = gic::ack();
            if i >= 1020 {
                break;
            }
            if i == gic::PPI_HYP_TIMER {
                set_hyp_timer(None);
                timer = true;
            }
            gic::eoi(i);
            gic::deactivate(i);
        }
        timer
    }
}

fn set_hyp_timer(at: Option<u64>) {
    // SAFETY: the EL2 physical timer is ns-hyp's own; its interrupt
    // (PPI 26) only makes the running REC exit to us.
    unsafe {
        match at {
            Some(t) => {
                shared::write_sysreg!(cnthp_cval_el2, t);
                shared::write_sysreg!(cnthp_ctl_el2, 1);
            }
            None => shared::write_sysreg!(cnthp_ctl_el2, 0),
        }
    }
    shared::arch::regs::isb();
}

/// The Realm's DTB in REALM_DTB (checked kernel placement, logged and
/// printed for the verifier): its size, or None (logged).
fn realm_dtb(cfg: &crate::vm::config::GuestConfig) -> Option<(u64, usize)> {
    use super::linux;
    let mut out = Console;
    // The kernel must sit where its kind asks (an Image text_offset above a
    // 2 MiB boundary, `vm::placement`; `vm::config` no longer checks it).
    // The Realm's DTB stays at the start of its RAM (the measured layout, docs/rmm.md).
    let header_len = (cfg.kernel.size as usize).min(crate::vm::placement::HEADER_LEN);
    let kernel_pa = cfg.kernel.ipa - crate::vm::layout::RAM_IPA + cfg.ram_pa;
    // SAFETY: the kernel lies inside the VM's RAM (`vm::config` checked it), identity-mapped at EL2, read only.
    let header = unsafe { core::slice::from_raw_parts(kernel_pa as *const u8, header_len) };
    if let Err(e) = crate::vm::placement::kernel_span(cfg.kernel, header) {
        log::error!("realm-vm: the kernel cannot run where it is ({:?})", e);
        return None;
    }
    let (dtb_start, dtb_end) = REALM_DTB.range();
    // SAFETY: our own .bss area, identity-mapped, used by nothing else (one Realm).
    let dtb = unsafe { core::slice::from_raw_parts_mut(dtb_start as *mut u8, dtb_end - dtb_start) };
    let Ok(n) = crate::vm::dtb::build_with(dtb, cfg, "smc", false, false) else {
        log::error!("realm-vm: the DTB does not fit");
        return None;
    };
    log::info!(
        "realm-vm: {} REC(s), {} MiB RAM, kernel ipa {:#x} ({} bytes), initrd {:?}, dtb {} bytes; cmdline: {}",
        cfg.vcpus, cfg.ram_size >> 20, cfg.kernel.ipa, cfg.kernel.size, cfg.initrd.map(|i| (i.ipa, i.size)), n, cfg.cmdline
    );
    linux::print_dtb(&dtb[..n], &mut out);
    Some((dtb_start as u64, n))
}

/// Builds the Realm, runs it until it ends, destroys it: how it ended
/// (None: it could not be built or failed, logged).
fn realm_life(cfg: &crate::vm::config::GuestConfig, vm: &spin::Mutex<crate::vm::Vm>, mach: &RealMachine) -> Option<super::linux::End> {
    use super::linux;
    let mut out = Console;
    let dtb = realm_dtb(cfg)?;
    let (start, _) = PAGES.range();
    let mut ns = Pages::new(start as u64, NS_PAGES);
    let (pool_base, pool_pages) = cfg.realm_pool();
    let mut pool = Pages::new(pool_base, pool_pages);
    let rmi = super::rmi::Rmi::new(&Smc);
    let mut realm = match linux::LinuxRealm::create(&rmi, &Identity, &mut ns, &mut pool, cfg, dtb, &mut out) {
        Ok(r) => r,
        Err(e) => {
            log::error!("realm-vm: FAIL {}", e);
            // What it delegated goes back, all but what a Realm object
            // created before the failure still holds.
            let _ = linux::undelegate_pool(&rmi, &pool, pool_base);
            return None;
        }
    };
    let end = match linux::run(&rmi, &Identity, &mut pool, &mut realm, vm, mach, &mut out) {
        Ok(end) => {
            log::info!("realm-vm: realm ended ({:?})", end);
            Some(end)
        }
        Err(e) => {
            log::error!("realm-vm: FAIL {}", e);
            None
        }
    };
    let (undelegated, failed) = realm.destroy(&rmi, &pool, pool_base);
    let who: crate::line::Line<16> = match mach.vm {
        Some(k) => crate::line::Line::from_fmt(format_args!("vm{}", k)),
        None => crate::line::Line::from_fmt(format_args!("realm-vm")),
    };
    if failed == 0 {
        log::info!("{}: realm destroyed: {} granule(s) undelegated", who, undelegated);
    } else {
        log::error!("{}: realm destroyed: {} granule(s) undelegated, {} still delegated (kept out of use)", who, undelegated, failed);
    }
    // Its NS memory: the shared window always, the pool only if every
    // granule came back (a delegated one would fault at EL2).
    let len = if failed == 0 { cfg.footprint() } else { cfg.ram_size };
    // SAFETY: the VM's part of the guest area, identity-mapped RW at EL2;
    // the Realm is gone and no device DMAs there (its disk is idle).
    unsafe { core::ptr::write_bytes(cfg.ram_pa as *mut u8, 0, len as usize) };
    log::info!("{}: {} MiB at PA {:#x} scrubbed and returned", who, len >> 20, cfg.ram_pa);
    end
}

/// `quadrant.realm-vm` alone: the guest `cfg` names, as a Realm
/// (realm/linux.rs), on this CPU with the real UART; returns when it ends
/// (the caller powers off).
#[inline(never)]
pub fn run_linux(cfg: &crate::vm::config::GuestConfig, bootargs: &str) {
    crate::guest::virtio::init();
    crate::guest::virtio::for_realm(0);
    crate::guest::gic::init_distributor();
    crate::guest::gic::init_cpu(0);
    real_uart().enable_tx_rx();
    let mut vm = crate::vm::Vm::new(cfg.vcpus);
    vm.clock = crate::wallclock::now; // the PL031's time source
    let vm = spin::Mutex::new(vm);
    realm_life(cfg, &vm, &RealMachine { trace: mode::trace(bootargs), vm: None, cpu: 0 });
}

/// VM `k` of several is this Realm (`crate::guest::start`): its RECs run on
/// this CPU, `cpu`, which no normal vCPU uses; its console is VM k's in the
/// multiplexer, its machine (`vm`) is in VM k's slot, where CPU 0 feeds it
/// console input and kicks us.  When it ends it is destroyed, its memory
/// scrubbed, and the VM is off (the last VM off powers the machine off).
pub fn run_vm(k: usize, cpu: usize, cfg: &crate::vm::config::GuestConfig, vm: &'static spin::Mutex<crate::vm::Vm>) -> ! {
    use crate::guest::gic;
    gic::init_cpu(cpu);
    gic::disable_private(cpu, &[gic::PPI_VTIMER, gic::PPI_MAINTENANCE, gic::PPI_PMU]);
    crate::guest::virtio::for_realm(k);
    log::info!("vm{}: a Realm of {} REC(s) on cpu {}", k, cfg.vcpus, cpu);
    let end = realm_life(cfg, vm, &RealMachine { trace: 0, vm: Some(k), cpu });
    if end == Some(super::linux::End::SystemReset) {
        // Its payloads were measured in from its shared window, which the
        // Realm wrote to and which is now scrubbed: nothing to boot again.
        log::warn!("vm{}: a Realm restarts only as a new Realm: it stays off", k);
    }
    crate::guest::realm_gone(k)
}
