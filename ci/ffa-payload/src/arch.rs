//! Target half: entry (boot CPU from TF-A, secondaries from PSCI CPU_ON),
//! MMU, the RX/TX pages, the machine for the checks, panic and exception hooks.

use crate::checks::{self, Job, Machine};
use crate::mode::{self, Mode};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use shared::mm::{self, FramePool, MemKind, PAGE_SIZE, PageArea};
use shared::percpu::MAX_CPUS;
use shared::smccc::Smc;

/// QEMU virt's PL011.
const UART_BASE: usize = 0x0900_0000;
/// QEMU virt's GICv3 distributor and core 0's redistributor SGI/PPI frame.
const GICD_BASE: usize = 0x0800_0000;
const GICR0_SGI_BASE: usize = 0x080a_0000 + 0x1_0000;
/// PPI of the Non-secure EL2 physical timer (CNTHP): our NS interrupt source.
pub const NS_TIMER_INTID: u32 = 26;
/// TF-A (ARM_LINUX_KERNEL_AS_BL33) passes the DTB in x0; on qemu it is at the
/// base of Non-secure DRAM.
const DTB_DEFAULT: u64 = 0x4000_0000;
const DTB_MAX: usize = 1 << 20;
use shared::abi::psci::{PSCI_AFFINITY_INFO_64, PSCI_CPU_OFF, PSCI_CPU_ON_64, PSCI_SYSTEM_OFF};
/// PSCI AFFINITY_INFO_64: 1 = OFF (DEN0022 §5.1.8).
const AFFINITY_OFF: u64 = 1;

core::arch::global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    // Boot CPU: x0 = DTB.  Secondaries (PSCI CPU_ON): x0 = context id.
    "b quadrant_entry_mpidr",
);

unsafe extern "C" {
    fn _start();
}

/// Our FF-A RX/TX pair (DEN0077 v1.2 FFA_RXTX_MAP: page aligned, whole pages).
#[repr(C, align(4096))]
struct Mailbox {
    rx: UnsafeCell<[u8; 4096]>,
    tx: UnsafeCell<[u8; 4096]>,
}

// SAFETY: only core 0 uses the mailbox; the SPMC writes RX between our calls
// (while it owns the buffer) and we read it after the call that handed it over.
unsafe impl Sync for Mailbox {}

/// The first page of memory/FAR_PAGES (read back by the fragmented case).
const FAR_PAGE: usize = 0x9000_0000;

/// A page we share and lend to SPs (spmc_memory_sharing).
#[repr(C, align(4096))]
struct SharedPage(UnsafeCell<[u8; 4096]>);
// SAFETY: touched by core 0 only, and by the SP only while it has it.
unsafe impl Sync for SharedPage {}
static SHARED_PAGE: SharedPage = SharedPage(UnsafeCell::new([0; 4096]));

static MAILBOX: Mailbox = Mailbox { rx: UnsafeCell::new([0; 4096]), tx: UnsafeCell::new([0; 4096]) };
static TABLE_MEM: PageArea<32> = PageArea::new();
static POOL: spin::Once<spin::Mutex<FramePool>> = spin::Once::new();
static MAP: spin::Once<spin::Mutex<mm::El2Map>> = spin::Once::new();

/// Per secondary core: its job (0 none, 1 checks, 2 bench, 3 mp spin, 4 storm), done
/// flag, ticks (bench result; mp spin: ticks asked, then ticks spent).
static JOB: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
static DONE: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
static TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// mp's UUID for the secondaries' REQ2 checks (two halves).
static MP_UUID: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];

fn enable_mmu() {
    let map = MAP.get().expect("core 0 builds the map before starting others");
    // SAFETY: the table identity-maps the image (code, data, stacks, the
    // mailbox), the UART and the DTB, and lives in a static.
    unsafe { shared::arch::mmu::enable_el2(&map.lock()) };
}

/// The DTB's (address, size) if x0 or the default address holds one (MMU off).
fn find_dtb(x0: u64) -> Option<(usize, usize)> {
    for addr in [x0, DTB_DEFAULT] {
        if addr % 8 != 0 || !(0x4000_0000..0x1_0000_0000).contains(&addr) {
            continue;
        }
        // SAFETY: 8-byte aligned, inside QEMU virt's RAM below 4 GiB, read with
        // the MMU off before anything else runs.
        let header = unsafe { core::ptr::read_volatile(addr as *const [u8; 8]) };
        if let Some(size) = shared::fdt::total_size(&header).filter(|s| (40..=DTB_MAX).contains(s)) {
            return Some((addr as usize, size));
        }
    }
    None
}

struct Hw;

impl Machine for Hw {
    fn start_on(&mut self, cpu: usize, job: Job) -> Result<(), &'static str> {
        match job {
            Job::Checks(uuid) => {
                set_mp_uuid(uuid);
                JOB[cpu].store(1, Ordering::SeqCst);
            }
            Job::BenchEcho => JOB[cpu].store(2, Ordering::SeqCst),
            Job::MpSpin(ticks) => {
                TICKS[cpu].store(ticks, Ordering::SeqCst);
                JOB[cpu].store(3, Ordering::SeqCst);
            }
            Job::Storm(seed) => {
                TICKS[cpu].store(seed, Ordering::SeqCst);
                JOB[cpu].store(4, Ordering::SeqCst);
            }
        }
        DONE[cpu].store(0, Ordering::SeqCst);
        // QEMU virt: MPIDR Aff0 = CPU index for the first 16 CPUs.
        let r = shared::smccc::smc(PSCI_CPU_ON_64, &[cpu as u64, _start as *const () as u64, 0]);
        if r[0] != 0 {
            return Err("PSCI CPU_ON failed");
        }
        Ok(())
    }
    fn wait_on(&mut self, cpu: usize) -> Result<u64, &'static str> {
        let freq = shared::arch::timer::cntfrq().max(1);
        let start = shared::arch::timer::cntvct();
        while DONE[cpu].load(Ordering::SeqCst) == 0 {
            if shared::arch::timer::cntvct() - start > 120 * freq {
                return Err("core did not finish in 120 s");
            }
            // YIELD, not `spin_loop()` (an ISB on aarch64): QEMU's single-threaded
            // TCG (the bench's -icount runs) switches to the next vCPU on a YIELD,
            // so our waiting costs a few instructions per slice instead of a
            // whole slice that the other core's measured time would include.
            // SAFETY: a hint instruction, no effect on state.
            unsafe { core::arch::asm!("yield", options(nomem, nostack, preserves_flags)) };
        }
        // Wait until the core is really off: its CPU_OFF passes through the SPMD,
        // spmc and rmm, which print on the shared UART; printing from here while
        // they do would interleave the two lines.
        while shared::smccc::smc(PSCI_AFFINITY_INFO_64, &[cpu as u64, 0])[0] != AFFINITY_OFF {
            if shared::arch::timer::cntvct() - start > 120 * freq {
                return Err("core did not power off in 120 s");
            }
            core::hint::spin_loop();
        }
        Ok(TICKS[cpu].load(Ordering::SeqCst))
    }
    fn counter(&self) -> u64 {
        shared::arch::timer::cntvct()
    }
    fn counter_freq(&self) -> u64 {
        shared::arch::timer::cntfrq()
    }
    fn rx_tx(&self) -> (u64, u64) {
        (MAILBOX.rx.get() as u64, MAILBOX.tx.get() as u64)
    }
    fn ns_interrupts_init(&mut self) {
        // SAFETY: GICD / core 0's GICR SGI frame, mapped Device above; we are
        // the Normal world's only GIC user.  Non-secure accesses: TF-A made
        // the PPI Group 1 Non-secure; we set its priority and enable it, enable
        // Group 1 NS in the distributor (GICD_CTLR.EnableGrp1A, bit 1) and the
        // CPU interface, and unmask every priority.  PSTATE.I stays masked:
        // the interrupt is polled with ICC_IAR1_EL1.
        unsafe {
            let prio = (GICR0_SGI_BASE + 0x400 + NS_TIMER_INTID as usize) as *mut u8;
            core::ptr::write_volatile(prio, 0xa0);
            core::ptr::write_volatile((GICR0_SGI_BASE + 0x100) as *mut u32, 1 << NS_TIMER_INTID);
            let ctlr = core::ptr::read_volatile(GICD_BASE as *const u32);
            core::ptr::write_volatile(GICD_BASE as *mut u32, ctlr | (1 << 1));
            core::arch::asm!("msr S3_0_C4_C6_0, {}", in(reg) 0xffu64, options(nostack)); // ICC_PMR_EL1
            core::arch::asm!("msr S3_0_C12_C12_7, {}", "isb", in(reg) 1u64, options(nostack)); // ICC_IGRPEN1_EL1
        }
    }
    fn ns_timer_arm(&mut self, ticks: u64) {
        // SAFETY: CNTHP_TVAL_EL2 / CNTHP_CTL_EL2: the NS EL2 physical timer, ours.
        unsafe { core::arch::asm!("msr cnthp_tval_el2, {}", "msr cnthp_ctl_el2, {}", "isb", in(reg) ticks, in(reg) 1u64, options(nostack)) };
    }
    fn ns_timer_stop(&mut self) {
        // SAFETY: as above.
        unsafe { core::arch::asm!("msr cnthp_ctl_el2, xzr", "isb", options(nostack)) };
    }
    fn ns_interrupt_ack(&mut self, timeout_ticks: u64) -> Option<u32> {
        let start = shared::arch::timer::cntvct();
        loop {
            let id: u64;
            // SAFETY: ICC_IAR1_EL1 of our CPU interface (Group 1 NS from NS-EL2).
            unsafe { core::arch::asm!("mrs {}, S3_0_C12_C12_0", out(reg) id, options(nostack)) };
            if id < 1020 {
                // SAFETY: ICC_EOIR1_EL1 (EOImode 0: drop and deactivate).
                unsafe { core::arch::asm!("msr S3_0_C12_C12_1, {}", "isb", in(reg) id, options(nostack)) };
                return Some(id as u32);
            }
            if shared::arch::timer::cntvct() - start > timeout_ticks {
                return None;
            }
            core::hint::spin_loop();
        }
    }
    fn ns_interrupt_enable(&mut self, intid: u32) {
        if intid >= 32 {
            return;
        }
        // SAFETY: core 0's GICR SGI frame, mapped Device; a Group 1 NS SGI/PPI
        // (spmc made the SRI so): its priority byte and ISENABLER0 bit.
        unsafe {
            core::ptr::write_volatile((GICR0_SGI_BASE + 0x400 + intid as usize) as *mut u8, 0xa0);
            core::ptr::write_volatile((GICR0_SGI_BASE + 0x100) as *mut u32, 1 << intid);
        }
    }
    fn write_tx(&mut self, offset: usize, data: &[u8]) {
        // SAFETY: TX is ours between calls; the SPMC reads it only during one.
        let tx = unsafe { &mut *MAILBOX.tx.get() };
        let end = (offset + data.len()).min(tx.len());
        tx[offset..end].copy_from_slice(&data[..end - offset]);
    }
    fn shared_page(&self) -> u64 {
        SHARED_PAGE.0.get() as u64
    }
    fn read_u64(&self, pa: u64) -> u64 {
        // SAFETY: our shared page or the far pages, mapped Normal memory below;
        // volatile: the SP wrote it.
        unsafe { core::ptr::read_volatile(pa as *const u64) }
    }
    fn write_u64(&mut self, pa: u64, v: u64) {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(pa as *mut u64, v) }
    }
    fn read_rx(&self, out: &mut [u8]) {
        // SAFETY: see `Mailbox`: we own RX after PARTITION_INFO_GET returned.
        let rx = unsafe { &*MAILBOX.rx.get() };
        let n = out.len().min(rx.len());
        out[..n].copy_from_slice(&rx[..n]);
    }
}

#[unsafe(no_mangle)]
extern "C" fn quadrant_main(x0: u64, _x1: u64, _x2: u64, _x3: u64, _x4: u64, cpu: u64) -> ! {
    if cpu != 0 {
        secondary(cpu as usize)
    }
    // SAFETY: QEMU virt's PL011; MMU off (device memory), mapped as Device below.
    shared::console::init(unsafe { shared::console::Pl011::new(UART_BASE) }, "ffa-payload", log::LevelFilter::Info);
    let dtb = find_dtb(x0);
    let pool = POOL.call_once(|| {
        let (s, e) = TABLE_MEM.range();
        // SAFETY: the area is ours alone and handed to the pool once.
        spin::Mutex::new(unsafe { FramePool::new(s, e) })
    });
    let mut dtb_mapped = None;
    MAP.call_once(|| {
        let mut t = mm::new_table(pool, mm::El2);
        shared::arch::image::map_self(&mut t).expect("map image");
        mm::map(&mut t, UART_BASE, UART_BASE, PAGE_SIZE, mm::el2_attributes(MemKind::Device, false)).expect("map UART");
        mm::map(&mut t, GICD_BASE, GICD_BASE, 0x1_0000, mm::el2_attributes(MemKind::Device, false)).expect("map GICD");
        mm::map(&mut t, GICR0_SGI_BASE, GICR0_SGI_BASE, 0x1_0000, mm::el2_attributes(MemKind::Device, false)).expect("map GICR");
        // The first of the far pages that spmc_memory_sharing shares in 1,200 pieces.
        mm::map(&mut t, FAR_PAGE, FAR_PAGE, PAGE_SIZE, mm::el2_attributes(MemKind::ReadWrite, false)).expect("map far page");
        if let Some((addr, size)) = dtb {
            let start = addr & !(PAGE_SIZE - 1);
            let end = (addr + size).next_multiple_of(PAGE_SIZE);
            if mm::map(&mut t, start, start, end - start, mm::el2_attributes(MemKind::ReadOnly, false)).is_ok() {
                dtb_mapped = Some((addr, size));
            }
        }
        spin::Mutex::new(t)
    });
    enable_mmu();
    let mut bootargs = "";
    if let Some((addr, size)) = dtb_mapped {
        // SAFETY: mapped read-only just above; nothing writes the DTB.
        let blob = unsafe { core::slice::from_raw_parts(addr as *const u8, size) };
        if let Ok(fdt) = shared::fdt::parse(blob) {
            bootargs = fdt.find_node("/chosen").and_then(|n| n.property("bootargs")).and_then(|p| p.as_str()).unwrap_or("");
        }
    }
    let mode = mode::from_bootargs(bootargs);
    log::info!("NS-EL2 FF-A test payload up, bootargs \"{}\", mode {:?}", bootargs, mode);
    let mut hw = Hw;
    match mode {
        Mode::Checks => checks::run_checks(&Smc, &mut hw),
        Mode::Isolation(addr) => checks::run_isolation(&Smc, &mut hw, addr),
        Mode::Bench => checks::run_bench(&Smc, &mut hw),
        Mode::Interrupts => checks::run_interrupts(&Smc, &mut hw),
        Mode::Concurrency => checks::run_concurrency(&Smc, &mut hw),
        Mode::CpuOnTwice => checks::run_cpu_on_twice(&Smc, &mut hw),
        Mode::VersionLocked => checks::run_version_locked(&Smc, &mut hw),
        Mode::HafniumManifests => checks::run_hafnium_manifests(&Smc, &mut hw),
        Mode::SpmdLsp => checks::run_spmd_lsp(&Smc, &mut hw),
        Mode::SpSizing => checks::run_sp_sizing(&Smc, &mut hw),
        Mode::Memory => crate::memory::run_memory(&Smc, &mut hw),
        Mode::Notifications => crate::notif::run_notifications(&Smc, &mut hw),
        Mode::IndirectMessaging => crate::notif::run_indirect_messaging(&Smc, &mut hw),
        Mode::Storm(seed) => crate::storm::run_storm(&Smc, &mut hw, seed),
        Mode::SpStorm(seed) => crate::storm::run_sp_storm(&Smc, &mut hw, seed),
    }
    if mode != Mode::Bench {
        let (ok, failed) = checks::TALLY.counts();
        log::info!("checks: {} ok, {} failed", ok, failed);
    }
    let r = shared::smccc::smc(PSCI_SYSTEM_OFF, &[]);
    log::error!("SYSTEM_OFF returned {:#x}", r[0]);
    shared::arch::halt()
}

/// A secondary core, started by PSCI CPU_ON: its job, then CPU_OFF.
fn secondary(cpu: usize) -> ! {
    enable_mmu();
    match JOB[cpu].load(Ordering::SeqCst) {
        1 => {
            let mut uuid = [0u8; 16];
            uuid[..8].copy_from_slice(&MP_UUID[0].load(Ordering::SeqCst).to_le_bytes());
            uuid[8..].copy_from_slice(&MP_UUID[1].load(Ordering::SeqCst).to_le_bytes());
            checks::core_checks(&Smc, cpu, uuid);
        }
        2 => TICKS[cpu].store(checks::bench_echo(&Smc, &shared::arch::timer::cntvct), Ordering::SeqCst),
        3 => TICKS[cpu].store(checks::mp_spin_job(&Smc, TICKS[cpu].load(Ordering::SeqCst)), Ordering::SeqCst),
        4 => {
            let seed = TICKS[cpu].load(Ordering::SeqCst);
            let n = crate::storm::fire::<_, Hw>(&Smc, seed, crate::storm::CALLS_PER_CORE, None);
            TICKS[cpu].store(n.calls, Ordering::SeqCst);
        }
        _ => {}
    }
    DONE[cpu].store(1, Ordering::SeqCst);
    let r = shared::smccc::smc(PSCI_CPU_OFF, &[]);
    log::error!("cpu {}: CPU_OFF returned {:#x}", cpu, r[0]);
    shared::arch::halt()
}

/// Makes mp's UUID known to the secondaries.
fn set_mp_uuid(uuid: [u8; 16]) {
    MP_UUID[0].store(u64::from_le_bytes(uuid[..8].try_into().unwrap_or([0; 8])), Ordering::SeqCst);
    MP_UUID[1].store(u64::from_le_bytes(uuid[8..].try_into().unwrap_or([0; 8])), Ordering::SeqCst);
}

#[unsafe(no_mangle)]
extern "C" fn quadrant_el2_exception(frame: &mut shared::arch::ExceptionFrame, vector: u64) {
    shared::arch::unexpected_el2_exception(frame, vector)
}

shared::quadrant_panic_handler!();
