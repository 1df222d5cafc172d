//! Running the guests on the hardware: Stage-2, the EL2 trap configuration,
//! vCPU contexts and their scheduler (vCPU `g` runs on physical CPU
//! `g % npcpus`; several vCPUs on one CPU share it with a timer quantum),
//! exits (WFI/WFE, HVC/SMC, system registers, data aborts) and physical
//! interrupts.  The device model is `crate::vm`.
//!
//! Several VMs: each has its own `Vm` (vGIC, UART, RTC, ITS), Stage-2 with
//! its own VMID, RAM and disk (`VmSlot`).  vCPUs are numbered globally (`g`)
//! for the scheduler and the per-vCPU contexts; a VM's vGIC and PSCI know
//! them by their index in the VM (`v`, `Id`).  The consoles share the UART
//! through `vm::console::ConsoleMux`.
//!
//! A Realm among them (`quadrant.realm-vm`) is not scheduled here: its RECs
//! run on a CPU of their own, the last one started (`crate::realm::target::run_vm`).
//! Its machine (`Vm`) is in its slot like any VM's, so console input, the
//! console multiplexer and the RTC reach it the same way; a kick for it is
//! an SGI to that CPU.

mod cpu_state;
mod ffa;
pub mod gic;
#[cfg(feature = "test-modes")]
pub mod selftest;
mod id_regs;
pub mod virtio;
mod net;

use aarch64_cpu::registers::{Readable, Writeable, ESR_EL2, FAR_EL2, HCR_EL2, HPFAR_EL2, ICH_HCR_EL2};
use crate::vm::config::{GuestConfig, VmConfigs, MAX_VCPUS, MAX_VMS};
use crate::vm::console::{ConsoleMux, Input};
use crate::vm::decode::{self, Access};
use crate::vm::exit::{Esr, ExceptionClass, ExitHandler, ExitStat, ExitTable, ESR_IL};
use crate::vm::layout::*;
use crate::vm::placement;
use crate::vm::psci::{self, Power};
use crate::vm::sched;
use crate::vm::stats::{ExitKind, ExitStats, Phase, Snapshot};
use crate::vm::sysreg::{self, SysRegAccess, SysRegIss};
use crate::vm::teardown::{self, Teardown, Work};
use crate::vm::timer::{self, EmulTimer, TimerReg};
use crate::vm::vgic::{lr, Kick};
use crate::vm::{Mmio, Vm};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::vm::idregs::Offered;
use cpu_state::{MteRegs, PmuRegs, CPTR_SVE_ON, CPTR_SVE_TRAPPED};
use shared::arch::{El1SysRegs, GuestRegs, PacKeys, SveRegs};
use shared::console::{Pl011, PL011_INT_ALL, PL011_INT_RX};
use shared::mm::{self, FramePool, MemKind};
use shared::{read_sysreg, write_sysreg};

/// Scheduler quantum when vCPUs share a physical CPU.
const QUANTUM_US: u64 = 4000;
/// vCPU contexts over all VMs.
const MAX_VCPU_SLOTS: usize = 16;

/// One VM's machine and memory.
struct VmSlot {
    vm: spin::Once<spin::Mutex<Vm>>,
    /// The VM's Stage-2 table.  Marked active: a change to it goes through
    /// `mm::remap_stage2_live` (break-before-make) under this lock.
    stage2: spin::Once<spin::Mutex<mm::NsStage2>>,
    /// VTTBR_EL2: its table and VMID (the VM's index + 1).
    vttbr: AtomicU64,
    ram_pa: AtomicU64,
    ram_size: AtomicU64,
    /// Its vCPU 0's global number, and how many it has.
    first: AtomicUsize,
    nvcpus: AtomicUsize,
    virtio_pci: AtomicBool,
    /// Powered off by its guest (several VMs: the others go on).
    off: AtomicBool,
    /// Off, its teardown (scrub, and a restart after a reset) not finished:
    /// the machine is not powered off while one is.
    tearing_down: AtomicBool,
    /// What it was started with (a reset starts it again from this).
    cfg: spin::Once<GuestConfig>,
}

impl VmSlot {
    const fn new() -> Self {
        VmSlot { vm: spin::Once::new(), stage2: spin::Once::new(), vttbr: AtomicU64::new(0), ram_pa: AtomicU64::new(RAM_PA), ram_size: AtomicU64::new(DEFAULT_RAM_SIZE), first: AtomicUsize::new(0), nvcpus: AtomicUsize::new(0), virtio_pci: AtomicBool::new(false), off: AtomicBool::new(false), tearing_down: AtomicBool::new(false), cfg: spin::Once::new() }
    }

    fn ram(&self) -> virtio::GuestRam {
        virtio::GuestRam { pa: self.ram_pa.load(Ordering::Relaxed), size: self.ram_size.load(Ordering::Relaxed) }
    }
}

static VMS: [VmSlot; MAX_VMS] = [const { VmSlot::new() }; MAX_VMS];
static NVMS: AtomicUsize = AtomicUsize::new(1);
/// The VM of each global vCPU.
static OWNER: [AtomicUsize; MAX_VCPU_SLOTS] = [const { AtomicUsize::new(0) }; MAX_VCPU_SLOTS];
/// vCPU `g` is between the check of its VM's `off` and its exit: a VM being
/// powered off waits for these to clear before its memory is scrubbed.
static IN_GUEST: [AtomicBool; MAX_VCPU_SLOTS] = [const { AtomicBool::new(false) }; MAX_VCPU_SLOTS];
static CONSOLE: spin::Mutex<ConsoleMux> = spin::Mutex::new(ConsoleMux::new());
/// Held through `drain_uart`, before any VM's lock.
static DRAIN: spin::Mutex<()> = spin::Mutex::new(());
static NPCPUS: AtomicUsize = AtomicUsize::new(1);
/// vCPUs of all VMs together.
static NVCPUS: AtomicUsize = AtomicUsize::new(1);
static READY: AtomicBool = AtomicBool::new(false);
static STATS: ExitStats = ExitStats::new();
static PRINT_STATS: AtomicBool = AtomicBool::new(false);
/// The Realm among the VMs, if any: its index and the CPU its RECs run on.
static REALM: spin::Once<(usize, usize)> = spin::Once::new();
/// The real UART's receive interrupt is masked: the VM with the console's
/// input had no room left (`drain_uart`).
static RX_MASKED: AtomicBool = AtomicBool::new(false);
/// CPUs that reached their scheduler loop (`run_cpu`).
static CPUS_RUNNING: AtomicUsize = AtomicUsize::new(0);
/// The CPUs implement pointer authentication: the guest sees it
/// (`vm::idregs`) and each vCPU has its own keys.
static PAC: AtomicBool = AtomicBool::new(false);
/// PMUv3, SVE, MTE: what the guest is offered (`vm::idregs::Offered`), and
/// the PMU's event counter count and the SVE vector length (bytes) with it.
static OFFERED: spin::Once<Offered> = spin::Once::new();
static PMU_COUNTERS: AtomicUsize = AtomicUsize::new(0);
static SVE_VL: AtomicUsize = AtomicUsize::new(0);

fn offered() -> Offered {
    OFFERED.get().copied().unwrap_or_default()
}

struct Vcpu {
    regs: GuestRegs,
    el1: El1SysRegs,
    pac: PacKeys,
    gicif: gic::VcpuIf,
    /// The emulated EL1 physical timer (`vm::timer`).
    ptimer: EmulTimer,
    /// WFI: not runnable until an interrupt or its timer.
    waiting: bool,
    pmu: PmuRegs,
    mte: MteRegs,
    /// The vCPU's SVE register file (`SVE_REGS[v]`) is in use, and
    /// `regs.sve_state` points at it: its first SVE access trapped
    /// (CPTR_EL2.TZ).  A vCPU that never uses SVE costs nothing at its exits.
    sve_live: bool,
    /// Descheduled while its HW-linked virtual timer / PMU interrupt was
    /// still the guest's (the physical one acknowledged and left active):
    /// `load` makes the physical one active again.
    vtimer_hw_active: bool,
    pmu_hw_active: bool,
}

impl Vcpu {
    const fn new() -> Self {
        Vcpu { regs: GuestRegs::new(), el1: El1SysRegs::reset(), pac: PacKeys { keys: [0; 10] }, gicif: gic::VcpuIf { lrs: [0; 16], vmcr: 0, ap0r0: 0, ap1r0: 0 }, ptimer: EmulTimer::new(), waiting: false, pmu: PmuRegs::reset(), mte: MteRegs::reset(), sve_live: false, vtimer_hw_active: false, pmu_hw_active: false }
    }
}

/// `Vm::power[v] == Power::On`, readable without the VM lock.  Only vCPU `v`
/// itself leaves On (CPU_OFF) and only its own CPU enters it (`prepare`), so
/// its CPU may trust a true here without the lock — the hot path of every exit.
static POWERED_ON: [AtomicBool; MAX_VCPU_SLOTS] = [const { AtomicBool::new(false) }; MAX_VCPU_SLOTS];

/// Only the physical CPU a vCPU is pinned to touches its context; the lock
/// makes the static shareable.
static VCPUS: [spin::Mutex<Vcpu>; MAX_VCPU_SLOTS] = [const { spin::Mutex::new(Vcpu::new()) }; MAX_VCPU_SLOTS];

/// Each vCPU's SVE registers (8.7 KiB), apart from `Vcpu` so that they stay
/// in .bss (zero-initialised) rather than in the image.  Locked like
/// `VCPUS`, by the vCPU's own physical CPU only; the enter/exit assembly
/// reaches a live one through `GuestRegs::sve_state` while that CPU runs it.
static SVE_REGS: [spin::Mutex<SveRegs>; MAX_VCPU_SLOTS] = [const { spin::Mutex::new(SveRegs::new()) }; MAX_VCPU_SLOTS];

/// A vCPU by its global number `g`, and as its VM knows it (VM `vm`, vCPU `v`).
#[derive(Clone, Copy)]
struct Id {
    g: usize,
    vm: usize,
    v: usize,
}

fn id(g: usize) -> Id {
    let vm = OWNER[g].load(Ordering::Relaxed);
    Id { g, vm, v: g - VMS[vm].first.load(Ordering::Relaxed) }
}

/// VM `vm`'s vCPU `v`'s global number.
fn global(vm: usize, v: usize) -> usize {
    VMS[vm].first.load(Ordering::Relaxed) + v
}

fn pcpu_of(g: usize) -> usize {
    g % NPCPUS.load(Ordering::Relaxed)
}

fn several() -> bool {
    NVMS.load(Ordering::Relaxed) > 1
}

/// Sends physical kicks for `kick` (a mask of VM `vm`'s vCPUs) to the CPUs running those vCPUs.
fn deliver(kick: Kick, vm: usize, me: usize) {
    if kick == 0 {
        return;
    }
    if let Some(&(realm, cpu)) = REALM.get().filter(|r| r.0 == vm) {
        if cpu != me && !VMS[realm].off.load(Ordering::Relaxed) {
            gic::send_sgi(cpu, gic::SGI_KICK);
        }
        return;
    }
    let mut cpus = 0u32;
    for v in 0..MAX_VCPUS {
        if kick & (1 << v) != 0 {
            cpus |= 1 << pcpu_of(global(vm, v));
        }
    }
    for c in 0..32 {
        if cpus & (1 << c) != 0 && c != me {
            gic::send_sgi(c, gic::SGI_KICK);
        }
    }
}

/// Pends private interrupt `intid` (an SGI or PPI) on vCPU `v` of VM `k`
/// from outside the vGIC's own traps (the FF-A proxy's NPI), and kicks the
/// CPU that runs it (this one too: the caller does not know which it is, and
/// a kick to itself costs one more exit).
pub fn pend_virtual(k: usize, v: usize, intid: u32) {
    if k >= NVMS.load(Ordering::Relaxed) || VMS[k].vm.get().is_none() {
        return;
    }
    let kick = vm_of(k).vgic.raise(v, intid);
    deliver(kick, k, usize::MAX);
}

fn vm_of(vm: usize) -> spin::MutexGuard<'static, Vm> {
    VMS[vm].vm.get().expect("vm").lock()
}

/// How the log names VM `vm`: "guest" when it is the only one.
struct Who(usize);

impl core::fmt::Display for Who {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        if several() { write!(f, "vm{}", self.0) } else { f.write_str("guest") }
    }
}

/// Everything the boot CPU does to start the VMs; returns only when no VM's
/// payloads can be placed (logged; the caller powers off).
pub fn start(cfgs: &VmConfigs, npcpus: usize, pool: &'static spin::Mutex<FramePool>) {
    let Some(first) = cfgs.iter().next() else { return };
    let nvms = cfgs.count;
    NVMS.store(nvms, Ordering::Relaxed);
    CONSOLE.lock().set_vms(nvms);
    // A Realm's RECs are not vCPUs of this scheduler: they have the CPU
    // after the others' (`REALM`).
    let total: usize = cfgs.iter().filter(|c| !c.realm).map(|c| c.vcpus).sum();
    if total > MAX_VCPU_SLOTS {
        log::error!("guest: {} vCPUs in all, more than {}: no guest", total, MAX_VCPU_SLOTS);
        return;
    }
    let realm = cfgs.iter().position(|c| c.realm);
    if realm.is_some() && npcpus < 2 {
        log::error!("guest: a Realm among the VMs needs a CPU of its own and one for the others: no guest");
        return;
    }
    let npcpus = (if realm.is_some() { npcpus - 1 } else { npcpus }).min(total).max(1);
    if let Some(k) = realm {
        REALM.call_once(|| (k, npcpus));
    }
    NPCPUS.store(npcpus, Ordering::Relaxed);
    NVCPUS.store(total, Ordering::Relaxed);
    PRINT_STATS.store(first.exit_stats, Ordering::Relaxed);
    PAC.store(PacKeys::implemented(), Ordering::Relaxed);
    let (pfr0, pfr1, dfr0) = (read_sysreg!(id_aa64pfr0_el1), read_sysreg!(id_aa64pfr1_el1), read_sysreg!(id_aa64dfr0_el1));
    let sve_vl = if (pfr0 >> 32) & 0xf != 0 { cpu_state::sve_setup_el2() } else { 0 };
    let offer = Offered::from_hw(pfr0, pfr1, dfr0, sve_vl);
    OFFERED.call_once(|| offer);
    SVE_VL.store(sve_vl, Ordering::Relaxed);
    if offer.pmu {
        PMU_COUNTERS.store(PmuRegs::counters(), Ordering::Relaxed);
    }
    log::info!("guest: offered PMUv3 {} ({} counters), SVE {} (VL {} bytes), MTE {}", offer.pmu, PMU_COUNTERS.load(Ordering::Relaxed), offer.sve, sve_vl, offer.mte);

    virtio::init_vms(nvms);
    ffa::init(cfgs.iter());
    let mut next = 0;
    for (k, cfg) in cfgs.iter().enumerate() {
        if cfg.realm {
            start_realm(k, cfg);
            continue;
        }
        if !start_vm(k, cfg, next, offer, pool) {
            return;
        }
        next += cfg.vcpus;
    }
    gic::init_distributor();
    gic::enable_spi(UART_INTID, 0);
    net::init_uplink();
    // Real UART: receive interrupts on (RX, RX timeout), UART/TX/RX enabled.
    let uart = real_uart();
    uart.clear_interrupts(PL011_INT_ALL);
    uart.set_interrupt_mask(PL011_INT_RX);
    uart.enable_tx_rx();
    if several() {
        log::info!("console: {} VMs, lines prefixed [vmN]; input to vm0, Ctrl-] then N switches it", nvms);
    }
    READY.store(true, Ordering::Release);

    unsafe extern "C" {
        fn _start();
    }
    for p in (1..npcpus).chain(REALM.get().map(|r| r.1)) {
        let r = shared::smccc::smc(shared::abi::psci::PSCI_CPU_ON_64, &[p as u64, _start as *const () as usize as u64, 0]);
        if r[0] != 0 {
            log::warn!("CPU_ON of cpu {} returned {:#x}", p, r[0]);
        }
    }
    run_cpu(0)
}

/// VM `k`: its Stage-2, DTB and machine, its vCPUs from global number
/// `first` on.  False: its payloads cannot be placed (logged).
#[inline(never)]
fn start_vm(k: usize, cfg: &GuestConfig, first: usize, offer: Offered, pool: &'static spin::Mutex<FramePool>) -> bool {
    let slot = &VMS[k];
    slot.ram_pa.store(cfg.ram_pa, Ordering::Relaxed);
    slot.ram_size.store(cfg.ram_size, Ordering::Relaxed);
    slot.first.store(first, Ordering::Relaxed);
    slot.nvcpus.store(cfg.vcpus, Ordering::Relaxed);
    slot.virtio_pci.store(cfg.virtio_pci, Ordering::Relaxed);
    for g in first..first + cfg.vcpus {
        OWNER[g].store(k, Ordering::Relaxed);
    }
    // A VM that waits for another's RAM (`quadrant.after`) is set up but
    // stays off: that RAM is the other VM's until it is gone.
    let (entry, dtb) = match cfg.after {
        Some(host) => {
            log::info!("{}: {} vCPU(s), starts in vm{}'s RAM when vm{} is gone", Who(k), cfg.vcpus, host, host);
            slot.off.store(true, Ordering::SeqCst);
            (0, 0)
        }
        None => match load_payloads(k, cfg, offer.pmu, false) {
            Some(p) => p,
            None => return false,
        },
    };
    log::info!("{} cmdline: {}", Who(k), cfg.cmdline);

    // Stage-2: the VM's RAM only, 2 MiB blocks (the map function picks
    // blocks where alignment allows); every device access faults to us, and
    // so does every IPA outside its RAM, another VM's PA included.
    let mut s2 = mm::new_table(pool, mm::Stage2);
    mm::map(&mut s2, RAM_IPA as usize, cfg.ram_pa as usize, cfg.ram_size as usize, mm::stage2_attributes(MemKind::ReadWriteExec)).expect("map guest RAM");
    slot.vttbr.store(s2.root_address().0 as u64 | (k as u64 + 1) << 48, Ordering::Relaxed);
    s2.mark_active();
    slot.stage2.call_once(|| spin::Mutex::new(s2));
    slot.cfg.call_once(|| cfg.clone());
    if cfg.virtio_pci {
        virtio::set_pci_mode(k);
    }
    net::attach(k);
    init_vm(k, cfg.vcpus, entry, dtb);
    true
}

/// VM `k`, a Realm: its slot and machine; the Realm itself is built by its
/// CPU (`crate::realm::target::run_vm`, from `secondary`).
fn start_realm(k: usize, cfg: &GuestConfig) {
    let slot = &VMS[k];
    slot.ram_pa.store(cfg.ram_pa, Ordering::Relaxed);
    slot.ram_size.store(cfg.ram_size, Ordering::Relaxed);
    slot.first.store(0, Ordering::Relaxed);
    slot.nvcpus.store(0, Ordering::Relaxed);
    slot.cfg.call_once(|| cfg.clone());
    slot.vm.call_once(|| {
        let mut vm = Vm::new(cfg.vcpus);
        vm.clock = crate::wallclock::now; // the PL031's time source
        spin::Mutex::new(vm)
    });
    log::info!("{} cmdline: {}", Who(k), cfg.cmdline);
}

/// VM `k`'s payloads as they go in its RAM: `cfg` with the IPAs of payloads
/// kept in the store resolved (where QEMU would load them,
/// `vm::placement::stored_load`), the placement, and whether the kernel is an
/// Image.  None: they cannot be placed (logged).
fn plan(k: usize, cfg: &GuestConfig) -> Option<(GuestConfig, placement::Placement, bool)> {
    let mut cfg = cfg.clone();
    let header_len = (cfg.kernel.size as usize).min(placement::HEADER_LEN);
    let header_pa = cfg.kernel_store.unwrap_or(cfg.kernel.ipa - RAM_IPA + cfg.ram_pa);
    // SAFETY: the kernel lies inside the VM's RAM or the payload store
    // (`vm::config` checked it), mapped at EL2 (identity); the VM does not run.
    let header = unsafe { core::slice::from_raw_parts(header_pa as *const u8, header_len) };
    let stored = placement::stored_load(RAM_IPA, cfg.ram_size, header, cfg.kernel.size, cfg.initrd.map(|i| i.size));
    if cfg.kernel_store.is_some() {
        cfg.kernel = stored.0;
    }
    if cfg.initrd_store.is_some() {
        cfg.initrd = stored.1;
    }
    // Where the DTB goes and how the kernel is entered: QEMU virt's
    // `-kernel` rules (`vm::placement`), from the kernel's header.
    match placement::place(RAM_IPA, cfg.ram_size, cfg.kernel, header, cfg.initrd, DTB_MAX as u64) {
        Ok(p) => {
            let image = matches!(placement::kind(header), placement::Kind::Image { .. });
            Some((cfg, p, image))
        }
        Err(e) => {
            log::error!("{}: payloads cannot be placed ({:?}): no guest", Who(k), e);
            None
        }
    }
}

/// The copies from the payload store a start of the VM planned as `cfg`
/// needs: (from PA, to PA, bytes); 0 bytes: none.
fn store_copies(cfg: &GuestConfig) -> [Work; 2] {
    let to_pa = |ipa: u64| ipa - RAM_IPA + cfg.ram_pa;
    let one = |src: Option<u64>, b: Option<crate::vm::config::Blob>| match (src, b) {
        (Some(src), Some(b)) => Work::copy(src, to_pa(b.ipa), b.size),
        _ => Work::zero(0, 0),
    };
    [one(cfg.kernel_store, Some(cfg.kernel)), one(cfg.initrd_store, cfg.initrd)]
}

/// Copies `len` bytes from the payload store into a VM's RAM.
fn copy_from_store(src: u64, dst: u64, len: u64) {
    // SAFETY: from the payload store to the VM's RAM (`place` checked that
    // both payloads fit it, apart); both mapped at EL2, the VM does not run,
    // and nothing else uses either range.
    unsafe { core::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, len as usize) };
}

/// Makes VM `k`'s RAM ready to boot: payloads kept in the store are copied
/// in (unless `copied` says the caller did), the kernel placed and its DTB
/// written above it.  Returns the entry and the DTB's IPA; None: the
/// payloads cannot be placed (logged).
#[inline(never)]
fn load_payloads(k: usize, cfg: &GuestConfig, pmu: bool, copied: bool) -> Option<(u64, u64)> {
    let (cfg, place, image) = plan(k, cfg)?;
    let to_pa = |ipa: u64| ipa - RAM_IPA + cfg.ram_pa;
    for Work { src, dst, len } in store_copies(&cfg) {
        if let Some(src) = src.filter(|_| len != 0) {
            if !copied {
                copy_from_store(src, dst, len);
            }
            // The guest starts with its MMU (and caches) off.
            clean_dcache(dst as usize, len as usize);
        }
    }
    // SAFETY: instruction cache maintenance only (new code in the VM's RAM).
    unsafe { core::arch::asm!("ic ialluis", "dsb ish", "isb", options(nostack, preserves_flags)) };

    // The guest's DTB above its image and initrd, where QEMU would put it.
    let dtb_pa = to_pa(place.dtb);
    // SAFETY: inside the VM's RAM (`placement::place` checked it fits),
    // mapped RW at EL2 (identity), above the payloads; the guest does not run yet.
    let dtb = unsafe { core::slice::from_raw_parts_mut(dtb_pa as *mut u8, DTB_MAX) };
    let n = crate::vm::dtb::build(dtb, &cfg, pmu).expect("guest DTB fits");
    clean_dcache(dtb_pa as usize, n);
    log::info!(
        "{}: {} vCPU(s) on {} CPU(s), {} MiB RAM at PA {:#x}, kernel IPA {:#x} ({} bytes, {}{}), initrd {:?}, dtb IPA {:#x} ({} bytes)",
        Who(k), cfg.vcpus, NPCPUS.load(Ordering::Relaxed).min(cfg.vcpus), cfg.ram_size >> 20, cfg.ram_pa, cfg.kernel.ipa, cfg.kernel.size,
        if image { "Image" } else { "flat" },
        if cfg.kernel_store.is_some() { ", copied from the store" } else { "" },
        cfg.initrd.map(|i| (i.ipa, i.size)), place.dtb, n
    );
    Some((place.entry, place.dtb))
}

/// The emulated machine, vCPU 0 about to power on at the kernel.  Not
/// inlined: the `Vm` is built on the stack before it moves into its lock, and
/// `start`'s frame stays live under the guest for good.
#[inline(never)]
fn init_vm(k: usize, nvcpus: usize, entry: u64, dtb: u64) {
    VMS[k].vm.call_once(|| {
        let mut vm = fresh_vm(k, nvcpus, entry, dtb);
        if VMS[k].off.load(Ordering::SeqCst) {
            vm.power[0] = Power::Off; // waits (`quadrant.after`)
        }
        spin::Mutex::new(vm)
    });
}

/// VM `k`'s machine as at power-on, vCPU 0 about to start at `entry`.
fn fresh_vm(k: usize, nvcpus: usize, entry: u64, dtb: u64) -> Vm {
    let mut vm = Vm::new(nvcpus);
    vm.clock = crate::wallclock::now; // the PL031's time source
    vm.vgic.lpis_offered = VMS[k].virtio_pci.load(Ordering::Relaxed);
    // x0 = the DTB, x1..x3 = 0 (booting.rst; QEMU's boot stub does the same).
    vm.power[0] = Power::OnPending { entry, context: dtb };
    vm
}

/// A secondary physical CPU (started by `start` with PSCI CPU_ON).
pub fn secondary(cpu: usize) -> ! {
    while !READY.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
    if let Some(&(k, _)) = REALM.get().filter(|r| r.1 == cpu) {
        // The other CPUs first (at most a second): their warm boot through
        // EL3, spmc and rmm prints on the same UART, and the Realm's first
        // lines (its measured DTB, which a verifier reads back) would come
        // out interleaved with theirs character by character.
        let (start, second) = (shared::arch::timer::cntpct(), shared::arch::timer::cntfrq());
        while CPUS_RUNNING.load(Ordering::Acquire) < NPCPUS.load(Ordering::Relaxed) && shared::arch::timer::cntpct().wrapping_sub(start) < second {
            core::hint::spin_loop();
        }
        let slot = &VMS[k];
        crate::realm::target::run_vm(k, cpu, slot.cfg.get().expect("realm cfg"), slot.vm.get().expect("realm vm"))
    }
    run_cpu(cpu)
}

/// The Realm's loop on CPU `me` found room in its PL011's receive FIFO: if
/// the input was held back for want of room (the receive interrupt masked),
/// take it now.  A normal VM's vCPU does the same after reading its data
/// register (`data_abort`); the Realm's loop asks before every entry, and
/// this costs one load unless input is held back.
pub fn console_room(me: usize) {
    if RX_MASKED.load(Ordering::Relaxed) {
        drain_uart(me);
    }
}

/// One byte of VM `vm`'s console (the Realm's, from its CPU) through the multiplexer.
pub fn console_output(vm: usize, b: u8) {
    with_mux(|mux, mut tx| mux.output(vm, b, &mut tx));
}

/// The Realm VM `k` is gone (destroyed and scrubbed by its CPU, the
/// caller): the VM is off, and if it was the last the machine powers off.
/// Its CPU then waits for good, taking no interrupt.
pub fn realm_gone(k: usize) -> ! {
    with_mux(|mux, mut tx| mux.flush(k, &mut tx));
    VMS[k].off.store(true, Ordering::SeqCst);
    log::info!("{}: off", Who(k));
    power_off_if_last();
    let cpu = REALM.get().map_or(0, |r| r.1);
    gic::disable_private(cpu, &[gic::SGI_KICK, gic::PPI_HYP_TIMER]);
    loop {
        while read_sysreg!(isr_el1) & (1 << 7) != 0 {
            let i = gic::ack();
            if i >= 1020 {
                break;
            }
            gic::eoi(i);
            gic::deactivate(i);
        }
        // SAFETY: waits for an interrupt, none of which is enabled here any more.
        unsafe { core::arch::asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
    }
}

/// The last VM gone (none still being torn down, here or elsewhere) powers the machine off.
fn power_off_if_last() {
    if (0..NVMS.load(Ordering::Relaxed)).all(|k| VMS[k].off.load(Ordering::SeqCst) && !VMS[k].tearing_down.load(Ordering::SeqCst)) {
        log::info!("guest: SYSTEM_OFF");
        ffa::report();
        log::info!("guest {}", STATS.snapshot());
        let _ = shared::smccc::smc(shared::abi::psci::PSCI_SYSTEM_OFF, &[]);
        shared::arch::halt()
    }
}

/// `dc cvac` over a range, so the guest sees it with its MMU and caches off.
fn clean_dcache(start: usize, len: usize) {
    let mut a = start & !63;
    while a < start + len {
        // SAFETY: cache maintenance by VA on mapped memory.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack, preserves_flags)) };
        a += 64;
    }
    // SAFETY: barrier.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}

/// EL2 state for running guests on this CPU.
fn setup_el2(cpu: usize) {
    let mmfr0 = read_sysreg!(id_aa64mmfr0_el1);
    let mmfr1 = read_sysreg!(id_aa64mmfr1_el1);
    let pmcr_n = (read_sysreg!(pmcr_el0) >> 11) & 0x1f;
    // SAFETY: these registers only configure how lower ELs run; no guest runs yet on this CPU.
    unsafe {
        write_sysreg!(vtcr_el2, shared::arch::mmu::vtcr());
        write_sysreg!(vttbr_el2, VMS[0].vttbr.load(Ordering::Relaxed));
        HCR_EL2.set(crate::vm::el2::hcr(offered().mte));
        // EL1 may read the physical counter; its physical timer traps and is
        // emulated (CNTHCTL_EL2.EL1PCTEN only; `vm::timer`).
        write_sysreg!(cnthctl_el2, CNTHCTL_EL1PCTEN);
        write_sysreg!(cntvoff_el2, 0);
        write_sysreg!(cnthp_ctl_el2, 0);
        write_sysreg!(vpidr_el2, read_sysreg!(midr_el1));
        // All event counters to EL1 (HPMN = PMCR_EL0.N), no debug/PMU traps.
        write_sysreg!(mdcr_el2, pmcr_n);
        if (mmfr0 >> 56) & 0xf != 0 {
            // FEAT_FGT: no fine-grained traps.
            core::arch::asm!("msr S3_4_C1_C1_4, xzr", "msr S3_4_C1_C1_5, xzr", "msr S3_4_C1_C1_6, xzr", "msr S3_4_C3_C1_4, xzr", "msr S3_4_C3_C1_5, xzr", options(nostack));
        }
        if (mmfr1 >> 40) & 0xf != 0 {
            core::arch::asm!("msr S3_4_C1_C2_2, xzr", options(nostack)); // HCRX_EL2
        }
        // Every VMID: each VM has its own.
        core::arch::asm!("dsb ish", "tlbi alle1is", "dsb ish", "isb", options(nostack));
    }
    if offered().sve {
        // ZCR_EL2 is per CPU: every vCPU may use the longest vector.
        cpu_state::sve_setup_el2();
    }
    gic::init_cpu(cpu);
}

/// CNTHCTL_EL2 (E2H = 0, DDI0487): EL1PCTEN (bit 0), and EL1TVT (bit 13,
/// FEAT_ECV: EL0/EL1 accesses to the virtual timer's registers trap to EL2).
const CNTHCTL_EL1PCTEN: u64 = 1 << 0;
const CNTHCTL_EL1TVT: u64 = 1 << 13;
/// The guest's EL1 physical timer PPI (BSA: INTID 30), emulated.
const PTIMER_INTID: u32 = 30;

/// The CPU has FEAT_ECV (ID_AA64MMFR0_EL1.ECV, bits [63:60]).
fn has_ecv() -> bool {
    read_sysreg!(id_aa64mmfr0_el1) >> 60 & 0xf != 0
}

/// Per physical CPU scheduler state.
struct Cpu {
    id: usize,
    loaded: Option<usize>,
    /// The physical vtimer interrupt was acknowledged (priority dropped) and
    /// left active for the guest to deactivate through a HW-linked LR.
    vtimer_active: bool,
    /// The same for the PMU overflow interrupt.
    pmu_active: bool,
    /// CPTR_EL2 as written: SVE trapped, or not for a vCPU using it.
    cptr: u64,
    /// The vCPU (of this CPU) the running one just sent an IPI: it runs
    /// next when the sender gives up its slice (`sched::decide_directed`).
    yield_to: Option<usize>,
    nlrs: usize,
    /// The vCPU that ran last (round robin goes on after it) and the end of its slice.
    current: Option<usize>,
    slice_end: u64,
    quantum: u64,
    /// Counter value when the current phase (guest, hyp, idle) began.
    mark: u64,
    /// What this CPU's ICH_LR<n>_EL2 and ICH_HCR_EL2 hold.  Each access to
    /// them is a system-register access (under QEMU's TCG, one that takes its
    /// global lock): entry writes only the LRs that change, exit reads only
    /// the ones that were not empty (only software fills an LR).
    hw_lrs: [u64; 16],
    hw_hcr: u64,
    /// What CNTHP_CVAL/CTL_EL2 are set to (`None`: off).  The scheduler
    /// decides the hyp timer after every exit but it rarely changes; a timer
    /// register write is costly (in QEMU: its global lock and a host timer).
    hyp_timer: Option<u64>,
    /// CNTHCTL_EL2 as written (EL1TVT set while the loaded vCPU's virtual
    /// timer interrupt waits pending in an LR), and whether EL1TVT exists.
    cnthctl: u64,
    ecv: bool,
    /// VTTBR_EL2 as written: the loaded vCPU's VM's.
    vttbr: u64,
    /// The VMs this CPU is scrubbing (they powered off or reset here), a
    /// chunk at a time between its vCPU runs (`vm::teardown`).
    teardown: teardown::Queue,
    /// The last exit was a firmware call (HVC/SMC) handled in place: the
    /// vCPU may go straight back in (`fast_reentry`).
    firmware_exit: bool,
    /// Until when the fast re-entry may skip the scheduler loop: one
    /// quantum past its last pass, so its periodic duties still run.
    fast_until: u64,
}

/// 4 MiB: about 20 ms under TCG.
const SCRUB_CHUNK: u64 = 4 << 20;

enum Exit {
    /// Keep running this vCPU (the scheduler still decides at every exit).
    Continue,
    /// WFI/CPU_SUSPEND: wait for an interrupt.
    Wait,
    /// WFE: give up the rest of the slice.
    Yield,
    /// CPU_OFF.
    Off,
}

fn run_cpu(cpu: usize) -> ! {
    setup_el2(cpu);
    CPUS_RUNNING.fetch_add(1, Ordering::Release);
    let mut c = Cpu { id: cpu, loaded: None, vtimer_active: false, pmu_active: false, cptr: CPTR_SVE_TRAPPED, yield_to: None, nlrs: gic::num_lrs().min(16), current: None, slice_end: 0, quantum: shared::arch::timer::cntfrq() * QUANTUM_US / 1_000_000, mark: shared::arch::timer::cntpct(), hw_lrs: [0; 16], hw_hcr: 1, hyp_timer: Some(0), cnthctl: CNTHCTL_EL1PCTEN, ecv: has_ecv(), vttbr: VMS[0].vttbr.load(Ordering::Relaxed), teardown: teardown::Queue::new(), firmware_exit: false, fast_until: 0 };
    for n in 0..c.nlrs {
        gic::write_lr(n, 0);
    }
    let npcpus = NPCPUS.load(Ordering::Relaxed);
    let nvcpus = NVCPUS.load(Ordering::Relaxed);
    // This CPU's vCPUs: slot k is vCPU cpu + k * npcpus.
    let mine = |k: usize| cpu + k * npcpus;
    let count = (nvcpus - cpu).div_ceil(npcpus);
    if cpu == 0 {
        log::info!("vGIC: {} list registers; starting vCPU 0", c.nlrs);
    }
    let mut states = [sched::State::Off; MAX_VCPU_SLOTS];
    let print_stats = cpu == 0 && PRINT_STATS.load(Ordering::Relaxed);
    let second = shared::arch::timer::cntfrq();
    let (mut last_print, mut printed) = (shared::arch::timer::cntpct(), Snapshot::default());
    let mut last_rtc = last_print;
    // Several VMs: CPU 0 ticks their consoles this often (a partial line
    // idle for a whole tick, a prompt, goes out), and wakes for it.
    let flush_every = if cpu == 0 && several() { Some(second / 4) } else { None };
    let mut last_flush = last_print;
    loop {
        handle_irqs(&mut c);
        if c.teardown.front().is_some_and(|t| t.due(shared::arch::timer::cntpct())) {
            teardown_step(&mut c);
        }
        let now = shared::arch::timer::cntpct();
        // The guests' PL031 match interrupts (`vm::pl031`), looked at once a second.
        if cpu == 0 && now.wrapping_sub(last_rtc) >= second {
            last_rtc = now;
            for k in 0..NVMS.load(Ordering::Relaxed) {
                if !VMS[k].off.load(Ordering::Relaxed) {
                    let kick = vm_of(k).rtc_poll();
                    deliver(kick, k, cpu);
                }
            }
        }
        if let Some(every) = flush_every {
            if now.wrapping_sub(last_flush) >= every {
                last_flush = now;
                with_mux(|mux, mut tx| mux.tick(&mut tx));
            }
        }
        if print_stats && now.wrapping_sub(last_print) >= second {
            let s = STATS.snapshot();
            log::info!("{}", s.since(&printed));
            (last_print, printed) = (now, s);
        }
        for k in 0..count {
            states[k] = state(&c, mine(k));
        }
        let hint = c.yield_to.take().filter(|&t| pcpu_of(t) == cpu).map(|t| (t - cpu) / npcpus);
        let d = sched::decide_directed(&states[..count], c.current, c.slice_end, now, c.quantum, hint);
        // The vCPU about to run exits when its emulated physical timer fires.
        let ptimer = d.run.and_then(|k| VCPUS[mine(k)].lock().ptimer.wake_at(now));
        let flush = flush_every.map(|every| last_flush + every);
        let chunk = c.teardown.front().map(|t| t.next_at);
        set_hyp_timer(&mut c, [d.timer, ptimer, flush, chunk].into_iter().flatten().min());
        c.slice_end = d.slice_end;
        c.fast_until = now.saturating_add(c.quantum);
        let Some(k) = d.run else {
            if let Some(t) = c.teardown.front_mut() {
                // Nothing to run: the next chunk now, not a wait.
                t.next_at = 0;
                continue;
            }
            // SAFETY: waits for an interrupt (EL2 runs with IRQs masked; `wfi`
            // still wakes on a pending one, which the loop then handles).
            unsafe { core::arch::asm!("dsb sy", "wfi", options(nostack, preserves_flags)) };
            if cfg!(feature = "bench-split") || PRINT_STATS.load(Ordering::Relaxed) {
                let after = shared::arch::timer::cntpct();
                STATS.time(c.id, Phase::Hyp, now.saturating_sub(c.mark));
                STATS.time(c.id, Phase::Idle, after.saturating_sub(now));
                c.mark = after;
            }
            continue;
        };
        let v = mine(k);
        c.current = Some(k);
        prepare(&mut c, v);
        if c.loaded != Some(v) {
            if let Some(o) = c.loaded {
                save(&mut c, o);
            }
            load(&mut c, v);
        }
        let mut exit = run_once(&mut c, v);
        while matches!(exit, Exit::Continue) && fast_reentry(&c, count) {
            exit = run_once(&mut c, v);
        }
        match exit {
            Exit::Continue => {}
            Exit::Wait => {
                VCPUS[v].lock().waiting = true;
                c.slice_end = 0;
            }
            Exit::Yield => c.slice_end = 0,
            Exit::Off => {
                save(&mut c, v);
                c.slice_end = 0;
            }
        }
    }
}

/// After a firmware call handled in place, the vCPU goes straight back in
/// without a pass of the scheduler loop (KVM's fast path around
/// `handle_exit`) when that pass could change nothing: no physical
/// interrupt pending (a kick, the hyp timer for a slice's end, a timer
/// deadline or the console flush, each shows here), no teardown chunk to
/// do, and the vCPU would keep the CPU: its slice is not over, or it is the
/// CPU's only vCPU.  A firmware call changes no timer the loop programs;
/// a vCPU it powers on here waits for the slice's end, as in the loop.
/// Bounded by `fast_until`, so the loop's once-a-second duties still run.
///
/// A guest null HVC under -icount: 2,538 → 2,249 instructions.
fn fast_reentry(c: &Cpu, count: usize) -> bool {
    if !c.firmware_exit || read_sysreg!(isr_el1) & (1 << 7) != 0 || c.teardown.front().is_some() {
        return false;
    }
    let now = shared::arch::timer::cntpct();
    now < c.fast_until && (now < c.slice_end || count == 1)
}

/// What the scheduler needs to know of vCPU `v` (of this CPU) now.
fn state(c: &Cpu, g: usize) -> sched::State {
    let Id { vm: k, v, .. } = id(g);
    if VMS[k].off.load(Ordering::Relaxed) {
        return sched::State::Off;
    }
    if POWERED_ON[g].load(Ordering::Relaxed) && !VCPUS[g].lock().waiting {
        return sched::State::Ready;
    }
    let vm = vm_of(k);
    match vm.power[v] {
        Power::Off => sched::State::Off,
        Power::OnPending { .. } => sched::State::Ready,
        Power::On => {
            let vc = VCPUS[g].lock();
            if !vc.waiting {
                return sched::State::Ready;
            }
            // The loaded vCPU's timer is live in the hardware.
            let (ctl, cval) = if c.loaded == Some(g) { (read_sysreg!(cntv_ctl_el0), read_sysreg!(cntv_cval_el0)) } else { (vc.el1.cntv_ctl, vc.el1.cntv_cval) };
            let lr_pending = vc.gicif.lrs[..c.nlrs].iter().any(|&l| lr::state(l) & 1 != 0);
            // The earlier of its two timers (one count: CNTVOFF_EL2 = 0).
            let deadline = match (timer::deadline(ctl, cval), timer::deadline(vc.ptimer.ctl, vc.ptimer.cval)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            sched::State::Waiting { wake: vm.vgic.has_deliverable(v) || lr_pending, deadline }
        }
    }
}

/// vCPU `v` was picked: a pending power-on resets its context; a waiting
/// vCPU picked to run has its wake-up (interrupt or timer).
fn prepare(c: &mut Cpu, g: usize) {
    if POWERED_ON[g].load(Ordering::Relaxed) {
        VCPUS[g].lock().waiting = false;
        return;
    }
    let Id { vm: k, v, .. } = id(g);
    let mut vm = vm_of(k);
    match vm.power[v] {
        Power::OnPending { entry, context } => {
            vm.power[v] = Power::On;
            POWERED_ON[g].store(true, Ordering::Relaxed);
            vm.vgic.reset_lrs(v);
            drop(vm);
            // Still loaded here from its previous life (CPU_OFF, or its VM
            // reset): saved like any descheduled vCPU first, which also
            // deactivates a timer or PMU interrupt that life left active.
            if c.loaded == Some(g) {
                save(c, g);
            }
            let mut vc = VCPUS[g].lock();
            vc.regs = GuestRegs::at_entry(entry, context);
            vc.el1 = El1SysRegs::reset();
            vc.pac = PacKeys::default();
            vc.gicif = gic::VcpuIf::default();
            vc.ptimer = EmulTimer::new();
            vc.waiting = false;
            vc.pmu = PmuRegs::reset();
            vc.mte = MteRegs::reset();
            vc.sve_live = false; // regs.sve_state = 0 (at_entry)
            vc.vtimer_hw_active = false;
            vc.pmu_hw_active = false;
        }
        _ => {
            drop(vm);
            VCPUS[g].lock().waiting = false;
        }
    }
}

fn set_hyp_timer(c: &mut Cpu, at: Option<u64>) {
    if c.hyp_timer == at {
        return;
    }
    c.hyp_timer = at;
    // SAFETY: the EL2 physical timer is ns-hyp's own.
    unsafe {
        match at {
            Some(t) => {
                write_sysreg!(cnthp_cval_el2, t);
                write_sysreg!(cnthp_ctl_el2, 1);
            }
            None => write_sysreg!(cnthp_ctl_el2, 0),
        }
    }
    shared::arch::regs::isb();
}

fn load(c: &mut Cpu, g: usize) {
    let Id { vm: k, v, .. } = id(g);
    let vttbr = VMS[k].vttbr.load(Ordering::Relaxed);
    if vttbr != c.vttbr {
        // Another VM: its Stage-2 and VMID (TLB entries are tagged with
        // the VMID, so nothing is invalidated).
        // SAFETY: no guest runs on this CPU while it changes.
        unsafe { write_sysreg!(vttbr_el2, vttbr) };
        shared::arch::regs::isb();
        c.vttbr = vttbr;
    }
    let mut vc = VCPUS[g].lock();
    // Its HW-linked interrupts the guest still holds: active again before its
    // timer and PMU run (`save`).
    if core::mem::take(&mut vc.vtimer_hw_active) {
        gic::set_active(c.id, gic::PPI_VTIMER);
        c.vtimer_active = true;
    }
    if core::mem::take(&mut vc.pmu_hw_active) {
        gic::set_active(c.id, gic::PPI_PMU);
        c.pmu_active = true;
    }
    // SAFETY: this CPU now runs vCPU `v`'s EL1 context.
    unsafe {
        vc.el1.restore();
        if PAC.load(Ordering::Relaxed) {
            vc.pac.restore();
        }
        let o = offered();
        if o.pmu {
            vc.pmu.restore(PMU_COUNTERS.load(Ordering::Relaxed));
        }
        if o.mte {
            vc.mte.restore();
        }
        let cptr = if vc.sve_live { CPTR_SVE_ON } else { CPTR_SVE_TRAPPED };
        if cptr != c.cptr {
            cpu_state::set_cptr(cptr);
            c.cptr = cptr;
        }
        if vc.sve_live {
            cpu_state::write_zcr_el1(SVE_REGS[g].lock().zcr_el1);
        }
        write_sysreg!(vmpidr_el2, 0x8000_0000 | v as u64);
    }
    vc.gicif.restore_aprs();
    c.loaded = Some(g);
}

/// Saves the loaded vCPU `v` and parks its timer.  A physical timer or PMU
/// interrupt the guest still holds through a HW-linked LR is deactivated
/// (the next vCPU needs it) and made active again when this one is loaded
/// (`load`): the LR stays HW-linked.  Converting it to a software LR
/// instead left the physical interrupt active for good when it fired again
/// before the guest was done (its second instance merged into the software
/// LR, whose deactivation deactivates nothing): that vCPU got no timer
/// interrupt again while it stayed loaded.
fn save(c: &mut Cpu, g: usize) {
    let Id { vm: k, v, .. } = id(g);
    let mut vc = VCPUS[g].lock();
    vc.el1.save();
    if PAC.load(Ordering::Relaxed) {
        vc.pac.save();
    }
    let o = offered();
    if o.pmu {
        // Saving stops its counters and lowers the PMU's interrupt request,
        // so its physical interrupt, if taken, can be deactivated below.
        vc.pmu.save(PMU_COUNTERS.load(Ordering::Relaxed));
    }
    if o.mte {
        vc.mte.save();
    }
    if vc.sve_live {
        SVE_REGS[g].lock().zcr_el1 = cpu_state::read_zcr_el1();
    }
    vc.gicif.save_aprs();
    // SAFETY: the timer belongs to the vCPU being descheduled (saved above).
    unsafe { write_sysreg!(cntv_ctl_el0, 0) };
    shared::arch::regs::isb();
    let mut vm = vm_of(k);
    let vc = &mut *vc;
    for (active, held, intid, ppi) in [(&mut c.vtimer_active, &mut vc.vtimer_hw_active, VTIMER_INTID, gic::PPI_VTIMER), (&mut c.pmu_active, &mut vc.pmu_hw_active, PMU_INTID, gic::PPI_PMU)] {
        // Still the guest's: an LR linked to it that the guest has not
        // deactivated (the LRs were read back at the exit), or raised and
        // waiting for an LR.  Otherwise the guest's deactivation already
        // deactivated it and only the flag was left.
        let linked = vc.gicif.lrs.iter().any(|&l| l & lr::HW != 0 && lr::state(l) != 0 && (l >> lr::PINTID_SHIFT) & 0x3ff == ppi as u64);
        let was_active = core::mem::take(active);
        if was_active {
            gic::deactivate(ppi);
        }
        if was_active && (linked || vm.vgic.hw_latched(v, intid)) {
            *held = true;
        } else {
            // Nothing physical is held: no LR may stay linked to it.
            for l in vc.gicif.lrs.iter_mut() {
                if *l & lr::HW != 0 && (*l >> lr::PINTID_SHIFT) & 0x3ff == ppi as u64 {
                    *l &= !(lr::HW | 0x3ff << lr::PINTID_SHIFT);
                }
            }
            vm.vgic.unlink_hw(v, intid);
        }
    }
    c.loaded = None;
}

/// Acknowledges every pending physical interrupt.  The hyp timer (end of a
/// slice, or a waiting vCPU's deadline) needs nothing more: the scheduler
/// decides again after every exit.
fn handle_irqs(c: &mut Cpu) {
    // ISR_EL1.I: a physical IRQ is pending (DDI0487, ISR_EL1).  Reading it is
    // cheap where an ICC_IAR1_EL1 read that finds nothing is not (under
    // QEMU's TCG every GIC system register access takes its global lock).
    while read_sysreg!(isr_el1) & (1 << 7) != 0 {
        let i = gic::ack();
        if i >= 1020 {
            break;
        }
        STATS.exit(c.id, match i {
            gic::PPI_VTIMER => ExitKind::IrqVtimer,
            gic::PPI_HYP_TIMER => ExitKind::IrqHypTimer,
            gic::PPI_MAINTENANCE => ExitKind::IrqMaintenance,
            UART_INTID => ExitKind::IrqUart,
            gic::SGI_KICK => ExitKind::IrqKick,
            _ => ExitKind::Other,
        });
        match i {
            gic::PPI_VTIMER => {
                gic::eoi(i);
                match c.loaded.map(id) {
                    Some(Id { vm: k, v, .. }) => {
                        c.vtimer_active = true;
                        let kick = vm_of(k).vgic.raise_hw(v, VTIMER_INTID);
                        deliver(kick, k, c.id);
                    }
                    None => gic::deactivate(i),
                }
            }
            gic::PPI_PMU => {
                // Level, like the vtimer: left active, HW-linked to the
                // loaded vCPU's virtual PPI 23 (its PMU raised it).
                gic::eoi(i);
                match c.loaded.map(id) {
                    Some(Id { vm: k, v, .. }) => {
                        c.pmu_active = true;
                        let kick = vm_of(k).vgic.raise_hw(v, PMU_INTID);
                        deliver(kick, k, c.id);
                    }
                    None => gic::deactivate(i),
                }
            }
            gic::PPI_HYP_TIMER => {
                set_hyp_timer(c, None);
                gic::eoi(i);
                gic::deactivate(i);
            }
            UART_INTID => {
                drain_uart(c.id);
                gic::eoi(i);
                gic::deactivate(i);
            }
            gic::SGI_SRI => {
                // The SPMC's Schedule Receiver Interrupt (an edge): EOI first,
                // so one sent while the proxy asks is taken again.
                gic::eoi(i);
                gic::deactivate(i);
                ffa::sri();
            }
            i if Some(i) == net::uplink_intid() => {
                net::uplink_interrupt(c.id);
                gic::eoi(i);
                gic::deactivate(i);
            }
            gic::PPI_MAINTENANCE => {
                // The maintenance interrupt is a level: clear its causes now
                // (ICH_MISR_EL2: EOI of an LR with the EOI bit, underflow).
                // The vCPU's LR values were saved at its exit; the next
                // entry's sync sees these LRs as free.
                for n in 0..c.nlrs {
                    if c.hw_lrs[n] != 0 {
                        c.hw_lrs[n] = gic::read_lr(n);
                        if lr::state(c.hw_lrs[n]) == 0 {
                            gic::write_lr(n, 0);
                            c.hw_lrs[n] = 0;
                        }
                    }
                }
                // The virtual CPU interface; UIE is re-armed at the next entry if needed.
                ICH_HCR_EL2.set(1);
                c.hw_hcr = 1;
                gic::eoi(i);
                gic::deactivate(i);
            }
            _ => {
                // SGI kick, or anything unexpected.
                gic::eoi(i);
                gic::deactivate(i);
            }
        }
    }
}

/// Runs vCPU `v` (loaded) until one exit, and handles it.
fn run_once(c: &mut Cpu, g: usize) -> Exit {
    let Id { vm: k, v, .. } = id(g);
    let mut vc = VCPUS[g].lock();
    let n = c.nlrs;
    {
        let mut vm = vm_of(k);
        sync_timer_lines(c, g, &mut vc, &mut vm);
        let overflow = vm.vgic.fill_lrs(v, &mut vc.gicif.lrs[..n]);
        // While the virtual timer's interrupt waits pending in an LR, the
        // guest's accesses to its registers trap: a write that takes the
        // output low withdraws it before the guest can take it.
        let tvt = c.ecv && vm.vgic.pending_in_lr(v, VTIMER_INTID, &vc.gicif.lrs[..n]);
        let cnthctl = CNTHCTL_EL1PCTEN | if tvt { CNTHCTL_EL1TVT } else { 0 };
        if cnthctl != c.cnthctl {
            // SAFETY: only which EL1 timer accesses trap to EL2.
            unsafe { write_sysreg!(cnthctl_el2, cnthctl) };
            c.cnthctl = cnthctl;
        }
        // ICH_HCR_EL2: En, and UIE (maintenance when the LRs run nearly empty) if some wait.
        let hcr = 1 | if overflow { 2 } else { 0 };
        if hcr != c.hw_hcr {
            // The virtual CPU interface of the vCPU about to run.
            ICH_HCR_EL2.set(hcr);
            c.hw_hcr = hcr;
        }
    }
    for (i, &l) in vc.gicif.lrs[..n].iter().enumerate() {
        if l != c.hw_lrs[i] {
            gic::write_lr(i, l);
            c.hw_lrs[i] = l;
        }
    }
    // Where the time goes is measured only when it is printed (two counter
    // reads per exit are a visible part of a null HVC's round trip), and
    // always in a `bench-split` build (`vm::boot_split`).
    let timed = cfg!(feature = "bench-split") || PRINT_STATS.load(Ordering::Relaxed);
    let entry = if timed { shared::arch::timer::cntpct() } else { 0 };
    #[cfg(feature = "bench-split")]
    if split::FIRST_ENTRY.compare_exchange(0, entry, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        // Counted from the guest's first entry on: what came before is
        // ns-hyp's own start (`first-entry` in the split's line).
        c.mark = entry;
    }
    // A VM powered off meanwhile does not run again: its memory is about to
    // be scrubbed (`vm_off` sets `off`, then waits for IN_GUEST to clear;
    // both sides SeqCst, so one of them sees the other).
    IN_GUEST[g].store(true, Ordering::SeqCst);
    if VMS[k].off.load(Ordering::SeqCst) {
        IN_GUEST[g].store(false, Ordering::SeqCst);
        return Exit::Off;
    }
    // SAFETY: Stage-2 confines the guest to its RAM, HCR_EL2 traps what we
    // emulate; EL2 interrupts are masked.
    let vector = unsafe { shared::arch::enter_guest(&mut vc.regs) };
    IN_GUEST[g].store(false, Ordering::SeqCst);
    if timed {
        let exit = shared::arch::timer::cntpct();
        STATS.time(c.id, Phase::Hyp, entry.saturating_sub(c.mark));
        STATS.time(c.id, Phase::Guest, exit.saturating_sub(entry));
        c.mark = exit;
    }
    // With no LR in use there is nothing to read back or sync (the model
    // holds nothing in this vCPU's LRs either), and no VM lock to take.
    if c.hw_lrs[..n].iter().any(|&l| l != 0) {
        for i in 0..n {
            if c.hw_lrs[i] != 0 {
                c.hw_lrs[i] = gic::read_lr(i);
            }
            vc.gicif.lrs[i] = c.hw_lrs[i];
        }
        // The model learns at once what the guest did with its LRs: deciding
        // whether a vCPU that exits on WFI has something to wake for needs it.
        vm_of(k).vgic.sync_lrs(v, &vc.gicif.lrs[..n]);
        for l in vc.gicif.lrs[..n].iter_mut() {
            if lr::state(*l) == 0 {
                *l = 0;
            }
        }
    }
    let esr = Esr(ESR_EL2.get());
    c.firmware_exit = vector == 8 && (esr.ec() == ExceptionClass::HVC64 as u8 || esr.ec() == ExceptionClass::SMC64 as u8);
    match vector {
        8 => sync_exit(c, g, &mut vc, esr),
        9 => {
            drop(vc);
            handle_irqs(c);
            Exit::Continue
        }
        _ => {
            log::warn!("vCPU {}: exception vector {} from the guest, esr {:#x}", g, vector, esr.0);
            Exit::Continue
        }
    }
}

fn reg(r: &GuestRegs, n: u8) -> u64 {
    if n == 31 { 0 } else { r.x[n as usize] }
}

fn set_reg(r: &mut GuestRegs, n: u8, v: u64) {
    if n != 31 {
        r.x[n as usize] = v;
    }
}

/// A base register of a load/store: 31 is the stack pointer of the guest's current EL.
fn base_reg(r: &GuestRegs, n: u8) -> u64 {
    if n != 31 {
        r.x[n as usize]
    } else if r.spsr & 1 != 0 {
        read_sysreg!(sp_el1)
    } else {
        read_sysreg!(sp_el0)
    }
}

fn set_base_reg(r: &mut GuestRegs, n: u8, v: u64) {
    if n != 31 {
        r.x[n as usize] = v;
    } else if r.spsr & 1 != 0 {
        // SAFETY: the guest's own stack pointer (its EL1 state is loaded).
        unsafe { write_sysreg!(sp_el1, v) };
    } else {
        // SAFETY: as above.
        unsafe { write_sysreg!(sp_el0, v) };
    }
}

/// A guest exit handler: the vCPU's context and the exit's syndrome.
type ExitFn = fn(&mut Cpu, usize, &mut Vcpu, Esr) -> Exit;

/// ESR_EL2.EC → handler and exit counter (KVM's `arm_exit_handlers[]`).  The
/// statistics and the handling both read this one table.
static EXIT_HANDLERS: ExitTable<ExitFn> = ExitTable::new(
    &[
        ExitHandler { ec: ExceptionClass::WFx, stat: ExitStat::WfiOrWfe, handle: handle_wfx },
        ExitHandler { ec: ExceptionClass::HVC64, stat: ExitStat::Kind(ExitKind::Hvc), handle: handle_hvc },
        ExitHandler { ec: ExceptionClass::SMC64, stat: ExitStat::Kind(ExitKind::Smc), handle: handle_smc },
        ExitHandler { ec: ExceptionClass::SysReg, stat: ExitStat::Kind(ExitKind::SysReg), handle: handle_sysreg },
        // Counted by the device the access hits (`data_abort`).
        ExitHandler { ec: ExceptionClass::DataAbortLowerEL, stat: ExitStat::ByHandler, handle: handle_data_abort },
        ExitHandler { ec: ExceptionClass::InstrAbortLowerEL, stat: ExitStat::Kind(ExitKind::Other), handle: handle_instr_abort },
        ExitHandler { ec: ExceptionClass::SVEAccess, stat: ExitStat::Kind(ExitKind::Other), handle: handle_sve },
    ],
    handle_unknown,
);

/// `esr`: ESR_EL2 of this exit, read once by `run_once` (a system-register
/// read is not free under TCG).
fn sync_exit(c: &mut Cpu, v: usize, vc: &mut Vcpu, esr: Esr) -> Exit {
    let row = EXIT_HANDLERS.get(esr);
    if let Some(k) = row.stat.kind(esr.iss()) {
        STATS.exit(c.id, k);
    }
    (row.handle)(c, v, vc, esr)
}

/// WFI/WFE (ISS.TI bit 0): wait for an interrupt, or give up the slice.
fn handle_wfx(_: &mut Cpu, _: usize, vc: &mut Vcpu, esr: Esr) -> Exit {
    vc.regs.elr += 4;
    if esr.iss() & 1 == 0 { Exit::Wait } else { Exit::Yield }
}

/// The vCPU's first SVE instruction or ZCR_EL1 access (CPTR_EL2.TZ): from
/// now on its SVE state is its own, saved at every exit and switched with
/// it; the instruction runs again (ELR_EL2 points at it).  Without SVE on
/// offer the guest gets UNDEFINED, as on a CPU without SVE.
fn handle_sve(c: &mut Cpu, v: usize, vc: &mut Vcpu, esr: Esr) -> Exit {
    if !offered().sve {
        return handle_unknown(c, v, vc, esr);
    }
    let mut sve = SVE_REGS[v].lock();
    if !vc.sve_live {
        sve.init_from_fpsimd(&vc.regs.q, SVE_VL.load(Ordering::Relaxed));
        sve.zcr_el1 = 0xf;
        // The static outlives every run; only this CPU runs vCPU `v`.
        vc.regs.sve_state = sve.file.as_ptr() as u64;
        vc.sve_live = true;
    }
    // SAFETY: the vCPU's SVE state is saved by the exit path from now on
    // (`regs.sve_state`); ZCR_EL1 starts at the longest vector.
    unsafe {
        cpu_state::set_cptr(CPTR_SVE_ON);
        cpu_state::write_zcr_el1(sve.zcr_el1);
    }
    c.cptr = CPTR_SVE_ON;
    Exit::Continue
}

fn handle_hvc(c: &mut Cpu, v: usize, vc: &mut Vcpu, _: Esr) -> Exit {
    firmware_call(c, v, &mut vc.regs)
}

fn handle_smc(c: &mut Cpu, v: usize, vc: &mut Vcpu, _: Esr) -> Exit {
    vc.regs.elr += 4; // SMC: the preferred return is the SMC itself
    firmware_call(c, v, &mut vc.regs)
}

fn handle_sysreg(c: &mut Cpu, v: usize, vc: &mut Vcpu, esr: Esr) -> Exit {
    sysreg_trap(c, v, vc, esr.iss())
}

fn handle_data_abort(_: &mut Cpu, g: usize, vc: &mut Vcpu, esr: Esr) -> Exit {
    data_abort(g, &mut vc.regs, esr.iss());
    Exit::Continue
}

fn handle_instr_abort(_: &mut Cpu, g: usize, vc: &mut Vcpu, _: Esr) -> Exit {
    if transient_fault(id(g).vm) {
        return Exit::Continue;
    }
    // Instruction fetch from an IPA with nothing mapped: the guest gets an
    // external abort on the fetch (Instruction Abort, IFSC 0b010000).
    let r = &mut vc.regs;
    let from_el0 = r.spsr & 0xf == 0;
    let ec = if from_el0 { ExceptionClass::InstrAbortLowerEL } else { ExceptionClass::InstrAbortSameEL };
    inject_sync(r, ec.esr() | ESR_IL | 0x10, Some(FAR_EL2.get()));
    Exit::Continue
}

fn handle_unknown(_: &mut Cpu, v: usize, vc: &mut Vcpu, esr: Esr) -> Exit {
    log::warn!("vCPU {}: unhandled trap esr {:#x} ({:?}) at {:#x}: UNDEFINED to the guest", v, esr.0, ExceptionClass::from_ec(esr.ec()), vc.regs.elr);
    inject_undef(&mut vc.regs);
    Exit::Continue
}

fn firmware_call(c: &mut Cpu, g: usize, r: &mut GuestRegs) -> Exit {
    let me = id(g);
    // FF-A (DEN0077 v1.2) goes to the proxy when an SPMC is there, without
    // the VM's lock: a direct request runs an SP before it returns.
    if r.x[0] >> 32 == 0 && shared::abi::ffa::fid::is_ffa(r.x[0] as u32) && ffa::on() {
        let mut regs = [0; 18];
        regs.copy_from_slice(&r.x[..18]);
        let out = ffa::call(me.vm, &regs);
        r.x[..18].copy_from_slice(&out);
        return Exit::Continue;
    }
    let v = me.v;
    let mut vm = vm_of(me.vm);
    let nv = vm.nvcpus;
    let action = psci::handle(r.x[0], [r.x[1], r.x[2], r.x[3]], &vm.power[..nv]);
    match action {
        psci::Action::Return(x) => {
            r.x[..4].copy_from_slice(&x);
            Exit::Continue
        }
        psci::Action::Start { target, entry, context } => {
            vm.power[target] = Power::OnPending { entry, context };
            drop(vm);
            r.x[0] = psci::SUCCESS as u64;
            deliver(1 << target, me.vm, c.id);
            Exit::Continue
        }
        psci::Action::Suspend => {
            r.x[0] = psci::SUCCESS as u64;
            Exit::Wait
        }
        psci::Action::CpuOff => {
            vm.power[v] = Power::Off;
            POWERED_ON[g].store(false, Ordering::Relaxed);
            vm.vgic.reset_lrs(v);
            Exit::Off
        }
        psci::Action::SystemOff if several() => {
            drop(vm);
            vm_off(c, me, false)
        }
        psci::Action::SystemReset if several() => {
            drop(vm);
            vm_off(c, me, true)
        }
        psci::Action::SystemOff => {
            drop(vm);
            log::info!("guest: SYSTEM_OFF");
            log::info!("guest {}", STATS.snapshot());
            let _ = shared::smccc::smc(shared::abi::psci::PSCI_SYSTEM_OFF, &[]);
            shared::arch::halt()
        }
        psci::Action::SystemReset => {
            drop(vm);
            log::info!("guest: SYSTEM_RESET");
            log::info!("guest {}", STATS.snapshot());
            let _ = shared::smccc::smc(shared::abi::psci::PSCI_SYSTEM_RESET, &[]);
            shared::arch::halt()
        }
    }
}

/// A trapped MSR/MRS, emulated by its row in `vm::sysreg::SYS_REGS`.
fn sysreg_trap(c: &mut Cpu, g: usize, vc: &mut Vcpu, iss: u64) -> Exit {
    let Id { vm: k, v, .. } = id(g);
    let i = SysRegIss::decode(iss);
    let r = &mut vc.regs;
    let Some(row) = sysreg::find(&i) else {
        log::warn!("vCPU {}: system register trap op0 {} op1 {} CRn {} CRm {} op2 {} ({}): UNDEFINED", v, i.op0, i.op1, i.crn, i.crm, i.op2, if i.read { "read" } else { "write" });
        inject_undef(r);
        return Exit::Continue;
    };
    let mut exit = Exit::Continue;
    match row.access {
        SysRegAccess::GenerateSgi1 => {
            let kick = vm_of(k).vgic.send_sgi(v, reg(r, i.rt));
            deliver(kick, k, c.id);
            // An IPI to a vCPU that shares this CPU: give it the CPU now
            // (the rest of the sender's slice), so it is not delivered a
            // 4 ms slice later while the sender spins waiting for its answer
            // (QEMU's TCG does not trap WFE, so a spinning wait never
            // yields by itself).  The (first) target runs next: a directed
            // yield, not the round robin's next vCPU.
            if let Some(t) = (0..MAX_VCPUS).find(|&t| t != v && kick & (1 << t) != 0 && pcpu_of(global(k, t)) == c.id) {
                c.yield_to = Some(global(k, t));
                exit = Exit::Yield;
            }
        }
        SysRegAccess::WriteIgnored => {}
        SysRegAccess::IdRegister => {
            let val = crate::vm::idregs::sanitize(i.crm, i.op2, id_regs::read_id(i.crm, i.op2), offered());
            set_reg(r, i.rt, val);
        }
        SysRegAccess::Raz => {
            if i.read {
                set_reg(r, i.rt, 0);
            }
        }
        SysRegAccess::PhysTimer(t) => {
            let now = shared::arch::timer::cntpct();
            if i.read {
                let val = vc.ptimer.read(t, now);
                set_reg(&mut vc.regs, i.rt, val);
            } else {
                let val = reg(&vc.regs, i.rt);
                vc.ptimer.write(t, val, now);
                sync_timer_lines(c, g, vc, &mut vm_of(k));
            }
        }
        SysRegAccess::VirtTimer(t) => {
            // The vCPU's timer is live in the hardware: the access itself.
            if i.read {
                let val = match t {
                    TimerReg::Ctl => read_sysreg!(cntv_ctl_el0),
                    TimerReg::Cval => read_sysreg!(cntv_cval_el0),
                    TimerReg::Tval => read_sysreg!(cntv_tval_el0),
                };
                set_reg(&mut vc.regs, i.rt, val);
            } else {
                let val = reg(&vc.regs, i.rt);
                // SAFETY: the loaded vCPU's own virtual timer, as the guest asked.
                unsafe {
                    match t {
                        TimerReg::Ctl => write_sysreg!(cntv_ctl_el0, val),
                        TimerReg::Cval => write_sysreg!(cntv_cval_el0, val),
                        TimerReg::Tval => write_sysreg!(cntv_tval_el0, val),
                    }
                }
                shared::arch::regs::isb();
                sync_timer_lines(c, g, vc, &mut vm_of(k));
            }
        }
    }
    vc.regs.elr += 4;
    exit
}

/// The loaded vCPU `v`'s timer interrupts follow their outputs (`vm::timer`):
/// the emulated physical timer drives PPI 30 as a level; the virtual timer's
/// PPI 27, injected when the physical one fired, is withdrawn once its
/// output is low (disabled, masked, or CVAL moved ahead) and the guest has
/// not acknowledged it yet, as KVM re-samples its level-triggered timer line.
/// A withdrawn HW-linked instance's physical interrupt is deactivated.
fn sync_timer_lines(c: &mut Cpu, g: usize, vc: &mut Vcpu, vm: &mut Vm) {
    let Id { vm: k, v, .. } = id(g);
    let n = c.nlrs;
    let now = shared::arch::timer::cntpct();
    if vc.ptimer.output(now) {
        deliver(vm.vgic.set_private_level(v, PTIMER_INTID, true), k, c.id);
    } else {
        vm.vgic.lower_level(v, PTIMER_INTID, &mut vc.gicif.lrs[..n]);
    }
    // CNTVOFF_EL2 = 0: the virtual count is the physical one.
    if !timer::output(read_sysreg!(cntv_ctl_el0), read_sysreg!(cntv_cval_el0), now) && vm.vgic.lower_level(v, VTIMER_INTID, &mut vc.gicif.lrs[..n]) && c.vtimer_active {
        gic::deactivate(gic::PPI_VTIMER);
        c.vtimer_active = false;
    }
    // The PMU's line falls when the guest clears the overflow flag or its
    // interrupt enable (it writes them without trapping): withdraw an
    // instance it has not acknowledged yet.
    if c.pmu_active && !PmuRegs::irq_asserted() && vm.vgic.lower_level(v, PMU_INTID, &mut vc.gicif.lrs[..n]) {
        gic::deactivate(gic::PPI_PMU);
        c.pmu_active = false;
    }
}

/// Translates a guest VA with the guest's own Stage-1 and our Stage-2 (AT S12E1R).
fn guest_va_to_pa(va: u64) -> Option<u64> {
    let saved = read_sysreg!(par_el1);
    // SAFETY: address translation writes only PAR_EL1, restored below.
    let par = unsafe {
        core::arch::asm!("at s12e1r, {}", "isb", in(reg) va, options(nostack, preserves_flags));
        let p = read_sysreg!(par_el1);
        write_sysreg!(par_el1, saved);
        p
    };
    (par & 1 == 0).then(|| (par & 0x000f_ffff_ffff_f000) | (va & 0xfff))
}

/// A Stage-2 fault on an IPA that Stage-2 maps (now): it was taken while a
/// break-before-make on the guest's table had the leaf invalid.  Waiting for
/// the table's lock lets that change finish; the guest then retries the
/// access (ELR unchanged).
/// Only a translation fault (DFSC/IFSC 0b0001xx) can be one: a permission
/// fault on a mapped page would retry forever.
fn transient_fault(k: usize) -> bool {
    let translation_fault = ESR_EL2.get() & 0x3c == 0x04;
    let ipa = (HPFAR_EL2.get() >> 4 & 0xff_ffff_ffff) << 12;
    let slot = &VMS[k];
    translation_fault
        && (RAM_IPA..RAM_IPA + slot.ram_size.load(Ordering::Relaxed)).contains(&ipa)
        && slot.stage2.get().is_some_and(|t| mm::translate(&t.lock(), ipa as usize).is_some())
}

/// A message from the emulated PCI function: one to the ITS's
/// GITS_TRANSLATER is translated (DeviceID = its requester ID); any other
/// address is not an interrupt controller, so the write goes nowhere.
fn send_msi(k: usize, m: crate::vm::virtio_pci::Msi) -> Kick {
    if m.address != ITS_IPA + crate::vm::its::GITS_TRANSLATER {
        return 0;
    }
    let mut vm = vm_of(k);
    let Vm { its, vgic, .. } = &mut *vm;
    its.translate(crate::vm::virtio_pci::REQUESTER_ID, m.data, vgic)
}

fn data_abort(g: usize, r: &mut GuestRegs, iss: u64) {
    let Id { vm: k, v, .. } = id(g);
    let slot = &VMS[k];
    if transient_fault(k) {
        return;
    }
    let far = FAR_EL2.get();
    let hpfar = HPFAR_EL2.get();
    let ipa = ((hpfar >> 4) & 0xff_ffff_ffff) << 12 | (far & 0xfff);
    let write = iss & (1 << 6) != 0;
    let from_el0 = r.spsr & 0xf == 0;
    let abort = |r: &mut GuestRegs, why: &str| {
        if several() {
            log::info!("vm{} vCPU {}: data abort at IPA {:#x} (pc {:#x}, {}): external abort to the guest", k, v, ipa, r.elr, why);
        } else {
            log::info!("vCPU {}: data abort at IPA {:#x} (pc {:#x}, {}): external abort to the guest", v, ipa, r.elr, why);
        }
        let ec = if from_el0 { ExceptionClass::DataAbortLowerEL } else { ExceptionClass::DataAbortSameEL };
        inject_sync(r, ec.esr() | ESR_IL | if write { 1 << 6 } else { 0 } | 0x10, Some(far));
    };
    // Stage-2 fault on the guest's own table walk (S1PTW): its tables are outside RAM.
    if iss & (1 << 7) != 0 {
        return abort(r, "stage-1 walk");
    }
    // Its own RAM, not mapped: a page it lent through FF-A (`vm::ffa::memory`),
    // out of its reach until it reclaims it.  Nothing is emulated there.
    if (RAM_IPA..RAM_IPA + slot.ram_size.load(Ordering::Relaxed)).contains(&ipa) {
        return abort(r, "a page it lent (FF-A), not reclaimed");
    }
    let access: Access = match decode::from_syndrome(iss) {
        Some(a) => a,
        None => {
            let (base, ram) = (slot.ram_pa.load(Ordering::Relaxed), slot.ram_size.load(Ordering::Relaxed));
            let insn = guest_va_to_pa(r.elr).filter(|&pa| pa >= base && pa + 4 <= base + ram).map(|pa| {
                // SAFETY: inside guest RAM, mapped at EL2.
                unsafe { core::ptr::read_volatile(pa as *const u32) }
            });
            match insn.map(decode::from_instruction) {
                Some(Ok(a)) => a,
                Some(Err(e)) => return abort(r, if e == decode::DecodeError::Malformed { "malformed instruction" } else { "instruction not emulated" }),
                None => return abort(r, "instruction unreadable"),
            }
        }
    };
    // First element's IPA: a pair's is computed from its base register and
    // must lie in the faulting page, as must the second element.
    let first = if access.rt2.is_some() {
        let va = base_reg(r, access.base.rn).wrapping_add(access.base.offset as u64);
        let span = 2 * access.size as u64;
        if va & !0xfff != far & !0xfff || (va + span - 1) & !0xfff != va & !0xfff {
            return abort(r, "pair across pages");
        }
        (ipa & !0xfff) | (va & 0xfff)
    } else {
        ipa
    };
    STATS.exit(pcpu_of(g), if virtio::contains(k, first) || virtio::pci_contains(k, first) || net::contains(k, first) {
        ExitKind::MmioVirtio
    } else {
        let inside = |base: u64, len: u64| (base..base + len).contains(&first);
        if inside(GICD_IPA, GICD_SIZE) {
            ExitKind::MmioGicd
        } else if inside(GICR_IPA, GICR_STRIDE * MAX_VCPUS as u64) {
            ExitKind::MmioGicr
        } else if inside(UART_IPA, UART_SIZE) {
            ExitKind::MmioUart
        } else {
            ExitKind::MmioOther
        }
    });
    let regs = [Some(access.rt), access.rt2];
    let mut kick = 0;
    for (n, rt) in regs.iter().enumerate() {
        let Some(rt) = *rt else { continue };
        let a = first + n as u64 * access.size as u64;
        let value = if access.write { decode::store_value(&access, reg(r, rt)) } else { 0 };
        let res = if virtio::contains(k, a) {
            match virtio::access(k, a, access.size, access.write, value, slot.ram()) {
                Some((value, irq)) => Mmio::Ok { value, kick: if irq { vm_of(k).vgic.raise(0, VIRTIO_INTID) } else { 0 }, tx: None },
                None => Mmio::Abort,
            }
        } else if net::contains(k, a) {
            match net::access(k, a, access.size, access.write, value, pcpu_of(g)) {
                Some((value, irq)) => Mmio::Ok { value, kick: if irq { vm_of(k).vgic.raise(0, VIRTIO_NET_INTID) } else { 0 }, tx: None },
                None => Mmio::Abort,
            }
        } else if virtio::pci_contains(k, a) {
            match virtio::pci_access(k, a, access.size, access.write, value, slot.ram()) {
                Some((value, msi)) => Mmio::Ok { value, kick: msi.map_or(0, |m| send_msi(k, m)), tx: None },
                None => Mmio::Abort,
            }
        } else if slot.virtio_pci.load(Ordering::Relaxed) && (ITS_IPA..ITS_IPA + crate::vm::its::FRAME_SIZE).contains(&a) {
            let mut vm = vm_of(k);
            let Vm { its, vgic, .. } = &mut *vm;
            let off = a - ITS_IPA;
            if access.write {
                Mmio::Ok { value: 0, kick: its.write(off, access.size, value, &slot.ram(), vgic), tx: None }
            } else {
                Mmio::Ok { value: its.read(off, access.size), kick: 0, tx: None }
            }
        } else {
            vm_of(k).mmio(a, access.size, access.write, value)
        };

        match res {
            Mmio::Ok { value, kick: k2, tx } => {
                kick |= k2;
                if let Some(b) = tx {
                    with_mux(|mux, mut tx| mux.output(k, b, &mut tx));
                    #[cfg(feature = "bench-split")]
                    split::console_byte(b);
                }
                if !access.write {
                    set_reg(r, rt, decode::load_value(&access, value));
                }
            }
            Mmio::Abort => return abort(r, "no device"),
        }
    }
    // A read of the guest's data register may have made room for more input.
    if !access.write && first & !0xfff == UART_IPA && first & 0xfff == 0 {
        drain_uart(pcpu_of(g));
    }
    if let Some(wb) = access.writeback {
        let b = base_reg(r, wb.rn);
        set_base_reg(r, wb.rn, b.wrapping_add(wb.offset as u64));
    }
    r.elr += 4;
    deliver(kick, k, pcpu_of(g));
}

/// Boots VM `k` again after its reset (its RAM scrubbed, none of its vCPUs
/// in the guest): payloads from the store, a fresh machine, its disk's
/// device state reset, its TLB entries (its VMID's) gone, vCPU 0 pending.
/// Not inlined: the fresh `Vm` (12 KiB) is built on the stack.
#[inline(never)]
fn restart(c: &mut Cpu, k: usize, cfg: &GuestConfig) -> bool {
    let Some((entry, dtb)) = load_payloads(k, cfg, offered().pmu, true) else { return false };
    *vm_of(k) = fresh_vm(k, cfg.vcpus, entry, dtb);
    virtio::reset(k);
    invalidate_vmid(c, VMS[k].vttbr.load(Ordering::Relaxed));
    VMS[k].off.store(false, Ordering::SeqCst);
    log::info!("{}: restarted", Who(k));
    deliver(1, k, c.id);
    true
}

/// Takes `pages` pages of VM `k`'s RAM from IPA `ipa` out of its Stage-2
/// (`present` false: an FF-A lend) or maps them back (true), break-before-make
/// under the table's lock; false if the table could not be changed.  Its
/// vCPUs on other CPUs that touch the range meanwhile wait for the lock
/// (`transient_fault`), and afterwards fault on a page that stays unmapped.
pub(crate) fn stage2_pages(k: usize, ipa: u64, pages: u64, present: bool) -> bool {
    let slot = &VMS[k];
    let Some(table) = slot.stage2.get() else { return false };
    let (base, ram) = (slot.ram_pa.load(Ordering::Relaxed), slot.ram_size.load(Ordering::Relaxed));
    let size = pages.saturating_mul(4096);
    if ipa < RAM_IPA || ipa.checked_add(size).is_none_or(|end| end > RAM_IPA + ram) {
        return false;
    }
    let vttbr = slot.vttbr.load(Ordering::Relaxed);
    let invalidate = || {
        let current = read_sysreg!(vttbr_el2);
        // SAFETY: VTTBR_EL2 selects the VMID TLBI VMALLS12E1IS acts on (every
        // CPU, inner shareable); it is put back at once and this CPU does not
        // enter a guest meanwhile.
        unsafe {
            write_sysreg!(vttbr_el2, vttbr);
            core::arch::asm!("isb", "tlbi vmalls12e1is", "dsb ish", options(nostack, preserves_flags));
            write_sysreg!(vttbr_el2, current);
        }
        shared::arch::regs::isb();
    };
    let pa = present.then(|| (ipa - RAM_IPA + base) as usize);
    let attrs = mm::stage2_attributes(MemKind::ReadWriteExec);
    mm::remap_stage2_live(&mut table.lock(), ipa as usize, pa, size as usize, attrs, &invalidate).is_ok()
}

/// Drops every TLB entry of the VMID in `vttbr` (stage 1 and 2, all CPUs):
/// a restarted VM must not hit its previous life's translations.
fn invalidate_vmid(c: &Cpu, vttbr: u64) {
    // SAFETY: VTTBR_EL2 selects the VMID TLBI VMALLS12E1IS acts on; it is
    // put back at once, and no guest runs on this CPU meanwhile.
    unsafe {
        write_sysreg!(vttbr_el2, vttbr);
        core::arch::asm!("isb", "tlbi vmalls12e1is", "dsb ish", options(nostack, preserves_flags));
        write_sysreg!(vttbr_el2, c.vttbr);
    }
    shared::arch::regs::isb();
}

/// Moves received bytes from the real UART into the guest's PL011 while they
/// fit.  If the guest's FIFO is full, the real UART's receive interrupt is
/// masked (the bytes wait in its FIFO) until the guest reads.
fn drain_uart(me: usize) {
    // One drainer at a time (the bytes reach the VMs in order), then a VM's
    // lock.  `CONSOLE` is taken only briefly and alone: `with_mux` takes it
    // under the shared console's lock, and code holding a VM's lock logs.
    let _drain = DRAIN.lock();
    let uart = real_uart();
    // Clear the receive interrupts (UARTICR RXIC|RTIC) BEFORE emptying the
    // FIFO: a byte that lands after the last RXFE check raises them again.
    // Cleared after the loop, that byte's interrupt would be lost and it
    // would sit in the FIFO while the guest waits for input.
    uart.clear_interrupts(PL011_INT_RX);
    // Bytes go to the VM with the console's input (`ConsoleMux`), while
    // its FIFO has room.
    loop {
        let focus = CONSOLE.lock().focus();
        if !vm_of(focus).uart_rx_room() {
            break;
        }
        let Some(b) = uart.read_byte() else { break };
        let input = CONSOLE.lock().input(b);
        match input {
            Input::Byte { vm, byte } => {
                let kick = vm_of(vm).uart_rx(byte);
                deliver(kick, vm, me);
            }
            Input::Focus(vm) => log::info!("console: input to vm{}", vm),
            Input::Nothing => {}
        }
    }
    let focus = CONSOLE.lock().focus();
    let room = vm_of(focus).uart_rx_room();
    uart.set_interrupt_mask(if room { PL011_INT_RX } else { 0 });
    RX_MASKED.store(!room, Ordering::Relaxed);
}

/// VM `me.vm` powered itself off or reset, one of several: its vCPUs stop,
/// and once none of them is in the guest its RAM is scrubbed; the others
/// go on.  A reset then boots it again from its payloads in the store (a
/// VM whose payloads were preloaded in its RAM has none left: it stays
/// off).  The last VM to go powers the machine off.
fn vm_off(c: &mut Cpu, me: Id, reset: bool) -> Exit {
    let why = if reset { "SYSTEM_RESET" } else { "SYSTEM_OFF" };
    let slot = &VMS[me.vm];
    if slot.off.swap(true, Ordering::SeqCst) {
        return Exit::Off; // another of its vCPUs got here first
    }
    let (first, n) = (slot.first.load(Ordering::Relaxed), slot.nvcpus.load(Ordering::Relaxed));
    {
        let mut vm = vm_of(me.vm);
        for v in 0..n {
            vm.power[v] = Power::Off;
            vm.vgic.reset_lrs(v);
            POWERED_ON[first + v].store(false, Ordering::Relaxed);
        }
    }
    log::info!("{}: {}", Who(me.vm), why);
    // Its vCPUs on other CPUs exit at the kick and are not run again.
    deliver(((1u32 << n) - 1) & !(1 << me.v), me.vm, c.id);
    for g in first..first + n {
        while g != me.g && IN_GUEST[g].load(Ordering::SeqCst) {
            core::hint::spin_loop();
        }
    }
    // No frame lands in its RAM from here on, nor an FF-A message in its
    // RX buffer (unpinned before the scrub).
    net::reset(me.vm);
    ffa::vm_off(me.vm, reset);
    let (pa, size) = (slot.ram_pa.load(Ordering::Relaxed), slot.ram_size.load(Ordering::Relaxed));
    let scrub = Work::zero(pa, size);
    // A reset boots it again from the payload store, copied in after the
    // scrub (a VM whose payloads were preloaded in its RAM has none left).
    let cfg = slot.cfg.get().filter(|c| reset && c.boots_from_store());
    if reset && cfg.is_none() {
        log::warn!("{}: its payloads were preloaded in its RAM, not kept in the store: it stays off", Who(me.vm));
    }
    let t = match cfg.and_then(|cfg| plan(me.vm, cfg)) {
        Some((planned, _, _)) => {
            let [a, b] = store_copies(&planned);
            Teardown::new(me.vm, true, &[scrub, a, b])
        }
        None => Teardown::new(me.vm, false, &[scrub]),
    };
    slot.tearing_down.store(true, Ordering::SeqCst);
    // Behind any this CPU is still doing: each goes a chunk at a time.
    // `off` is set once per VM (swap above), so it is queued once; a full
    // queue would leave the VM off and unscrubbed, never a crash.
    if !c.teardown.push(t) {
        log::error!("{}: the teardown queue is full: its RAM is not scrubbed", Who(me.vm));
        slot.tearing_down.store(false, Ordering::SeqCst);
    }
    Exit::Off
}

/// One chunk of this CPU's first teardown; the last one finishes it.
fn teardown_step(c: &mut Cpu) {
    let Some(t) = c.teardown.front_mut() else { return };
    let start = shared::arch::timer::cntpct();
    if let Some(chunk) = t.next_chunk(SCRUB_CHUNK) {
        let Work { src, dst, len } = chunk.work;
        match src {
            // SAFETY: the VM's RAM, mapped RW at EL2; none of its vCPUs runs
            // (`vm_off` waited for them) and none will (`off`); no other VM maps it.
            None => unsafe { core::ptr::write_bytes(dst as *mut u8, 0, len as usize) },
            Some(src) => copy_from_store(src, dst, len),
        }
        t.took(start, shared::arch::timer::cntpct());
        if chunk.scrubbed {
            let size = VMS[t.vm].ram_size.load(Ordering::Relaxed);
            log::info!("{}: {} MiB at PA {:#x} scrubbed and returned", Who(t.vm), size >> 20, VMS[t.vm].ram_pa.load(Ordering::Relaxed));
        }
        return;
    }
    let Some(t) = c.teardown.pop() else { return };
    let slot = &VMS[t.vm];
    with_mux(|mux, mut tx| mux.flush(t.vm, &mut tx));
    // A restart clears `off` before `tearing_down` goes: never both unset.
    let restarted = t.boot && slot.cfg.get().is_some_and(|cfg| restart(c, t.vm, cfg));
    slot.tearing_down.store(false, Ordering::SeqCst);
    if restarted {
        return;
    }
    // A VM waiting for this one's RAM (`quadrant.after`) starts in it now:
    // its payloads are copied in from the store like a reset's.
    let waiting = (0..NVMS.load(Ordering::Relaxed)).find(|&w| VMS[w].cfg.get().is_some_and(|cfg| cfg.after == Some(t.vm)) && VMS[w].off.load(Ordering::SeqCst) && !VMS[w].tearing_down.load(Ordering::SeqCst));
    if let Some((w, cfg)) = waiting.and_then(|w| Some((w, VMS[w].cfg.get()?))) {
        if let Some((planned, _, _)) = plan(w, cfg) {
            log::info!("{}: starts in vm{}'s freed RAM", Who(w), t.vm);
            VMS[w].tearing_down.store(true, Ordering::SeqCst);
            let [a, b] = store_copies(&planned);
            c.teardown.push(Teardown::new(w, true, &[a, b]));
            return;
        }
    }
    power_off_if_last();
}

/// The real PL011 (`platform`), shared with ns-hyp's console.
fn real_uart() -> Pl011 {
    // SAFETY: the platform's PL011, mapped as Device memory at EL2 (hyp.rs).
    unsafe { Pl011::new(crate::platform::get().uart) }
}

/// One byte of the guest's console to the real PL011.  UARTFR is checked
/// before every byte: the UART is shared (ns-hyp's own log on every CPU, and
/// under TF-A the other worlds), so no earlier look at its FIFO stays true.
/// Runs `f` on the console multiplexer, its bytes going out with ns-hyp's
/// console to themselves (`shared::console::exclusive`): an ns-hyp log line
/// cannot land inside a VM's line (seen once: `[` of `[vm1] ` on one line,
/// `vm1] VM1_PROBED` on the next).  Lock order: the shared console, then
/// `CONSOLE`, which is taken under nothing else (`drain_uart`).
fn with_mux<R>(f: impl FnOnce(&mut ConsoleMux, &mut dyn FnMut(u8)) -> R) -> R {
    shared::console::exclusive(|tx| f(&mut CONSOLE.lock(), tx))
}

/// A `bench-split` build's boot split (`vm::boot_split`): never in the product image.
#[cfg(feature = "bench-split")]
mod split {
    use super::STATS;
    use crate::vm::boot_split::{self, LineMarker, MARKER};
    use core::sync::atomic::AtomicU64;

    /// The counter at the guest's first entry (0: not yet).
    pub static FIRST_ENTRY: AtomicU64 = AtomicU64::new(0);
    static LINE: spin::Mutex<LineMarker> = spin::Mutex::new(LineMarker::new(MARKER));

    /// A byte of the guest's console: at the end of its marker line, the totals.
    pub fn console_byte(b: u8) {
        if LINE.lock().byte(b) {
            let now = shared::arch::timer::cntpct();
            let first = FIRST_ENTRY.load(core::sync::atomic::Ordering::Relaxed);
            boot_split::lines(now, first, &STATS.snapshot(), &mut |a| log::info!("{}", a));
        }
    }
}

/// Takes a synchronous exception to the guest's EL1 (DDI0487 D1.10: vector
/// offset by the EL and stack pointer it came from, PSTATE to EL1h with DAIF masked).
fn inject_sync(r: &mut GuestRegs, esr: u64, far: Option<u64>) {
    let vbar = read_sysreg!(vbar_el1);
    let offset = match r.spsr & 0xf {
        0b0000 => 0x400, // from EL0 (AArch64)
        0b0100 => 0x000, // EL1t
        _ => 0x200,      // EL1h
    };
    let sctlr = read_sysreg!(sctlr_el1);
    // SAFETY: the guest's EL1 exception registers (its EL1 state is loaded).
    unsafe {
        write_sysreg!(elr_el1, r.elr);
        write_sysreg!(spsr_el1, r.spsr);
        write_sysreg!(esr_el1, esr);
        if let Some(f) = far {
            write_sysreg!(far_el1, f);
        }
    }
    r.elr = vbar + offset;
    // PAN is set on exception entry unless SCTLR_EL1.SPAN (bit 23) says otherwise.
    let pan = if sctlr & (1 << 23) == 0 { 1 << 22 } else { r.spsr & (1 << 22) };
    r.spsr = 0x3c5 | pan;
}

fn inject_undef(r: &mut GuestRegs) {
    inject_sync(r, ExceptionClass::Unknown.esr() | ESR_IL, None);
}

