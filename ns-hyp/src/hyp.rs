//! The boot CPU's path on the target: console, DTB, MMU, firmware detection,
//! then a Realm (`quadrant.realm`) or the guest, then PSCI SYSTEM_OFF.  The
//! test flavour (`test-modes`) runs its probes or bench first.

use crate::boot;
use crate::firmware::Firmware;
use crate::platform::Platform;
use shared::mm::{self, FramePool, MemKind, PageArea, PAGE_SIZE};
use shared::smccc::Smc;

/// The console before any DTB is read: QEMU virt's PL011 (also what TF-A
/// and the other worlds print on).
const EARLY_UART: usize = crate::platform::qemu_virt::UART;

/// Looks for a DTB at x0, then at the fallback address; returns (address, totalsize).
/// Runs with the MMU off, so any RAM address can be read.
fn find_dtb(x0: u64) -> Option<(usize, usize)> {
    for addr in boot::dtb_candidates(x0).into_iter().flatten() {
        // SAFETY: `dtb_candidates` only returns 8-byte aligned addresses inside
        // QEMU virt's RAM, readable with the MMU off; nothing else runs yet.
        let header = unsafe { core::ptr::read_volatile(addr as *const [u8; 8]) };
        match shared::fdt::total_size(&header) {
            Some(size) if (40..=boot::DTB_MAX_SIZE).contains(&size) => return Some((addr as usize, size)),
            _ => {}
        }
    }
    None
}

pub fn hyp_main(x0: u64, cpu: u64) -> ! {
    static TABLE_MEM: PageArea<64> = PageArea::new();
    static POOL: spin::Once<spin::Mutex<FramePool>> = spin::Once::new();
    static MAP: spin::Once<spin::Mutex<mm::El2Map>> = spin::Once::new();

    if cpu != 0 {
        // A secondary CPU started for the guest's vCPUs (PSCI CPU_ON by the boot CPU).
        let map = MAP.get().expect("secondary before the boot CPU's map");
        // SAFETY: the same identity map as the boot CPU's, complete by now.
        unsafe { shared::arch::mmu::enable_el2(&map.lock()) };
        crate::guest::secondary(cpu as usize)
    }

    // SAFETY: 0x09000000 is QEMU virt's PL011; the MMU is off, so it is device
    // memory, and it is mapped as Device below before the MMU goes on.
    shared::console::init(unsafe { shared::console::Pl011::new(EARLY_UART) }, "ns-hyp", log::LevelFilter::Info);
    log::info!("NS-EL2 up on cpu {}, x0 {:#x}", cpu, x0);
    let dtb = find_dtb(x0);

    let pool = POOL.call_once(|| {
        let (s, e) = TABLE_MEM.range();
        // SAFETY: the area is ours alone and handed to the pool once.
        spin::Mutex::new(unsafe { FramePool::new(s, e) })
    });
    let mut dtb_mapped = None;
    let map = MAP.call_once(|| {
        let mut t = mm::new_table(pool, mm::El2);
        // The image includes .bss, and so our RX/TX buffers.
        shared::arch::image::map_self(&mut t).expect("map image");
        mm::map(&mut t, EARLY_UART, EARLY_UART, PAGE_SIZE, mm::el2_attributes(MemKind::Device, false)).expect("map UART");
        // The guest's RAM (for its DTB, instruction reads on MMIO decode, and
        // virtio DMA).  The other devices are mapped once the DTB says where
        // they are (`map_devices`).
        let ram = (crate::vm::layout::RAM_PA as usize, crate::vm::layout::DEFAULT_RAM_SIZE as usize);
        mm::map(&mut t, ram.0, ram.0, ram.1, mm::el2_attributes(MemKind::ReadWrite, false)).expect("map guest RAM");
        if let Some((addr, size)) = dtb {
            let start = addr & !(PAGE_SIZE - 1);
            let end = (addr + size).next_multiple_of(PAGE_SIZE);
            match mm::map(&mut t, start, start, end - start, mm::el2_attributes(MemKind::ReadOnly, false)) {
                Ok(()) => dtb_mapped = Some((addr, size)),
                Err(e) => log::warn!("cannot map the DTB at {:#x}: {:?}", addr, e),
            }
        }
        spin::Mutex::new(t)
    });
    // SAFETY: the table identity-maps the image (code, data, stacks, RX/TX
    // buffers), the UART and the DTB, and lives in a static.
    unsafe { shared::arch::mmu::enable_el2(&map.lock()) };
    log::info!("MMU on");

    let mut cfg = boot::BootConfig::default();
    match dtb_mapped {
        Some((addr, size)) => {
            // SAFETY: [addr, addr + size) was mapped read-only just above and
            // nothing writes the DTB.
            let blob = unsafe { core::slice::from_raw_parts(addr as *const u8, size) };
            match boot::read_config(blob) {
                Ok(c) => {
                    cfg = c;
                    log::info!("dtb at {:#x} ({} bytes), bootargs \"{}\"", addr, size, cfg.bootargs);
                    for (base, len) in &cfg.banks[..cfg.nbanks] {
                        log::info!("memory {:#x}-{:#x}", base, base + len);
                    }
                }
                Err(e) => log::warn!("DTB at {:#x} is malformed ({:?}): default settings", addr, e),
            }
        }
        None => log::warn!("no DTB found (x0 {:#x}, fallback {:#x}): default settings", x0, boot::DTB_FALLBACK),
    }
    let platform = crate::platform::init(Platform::from_dtb(&cfg.devices));
    map_devices(&mut map.lock(), platform);
    match crate::wallclock::init(platform.rtc) {
        Some(t) => log::info!("wall clock: {} s since the epoch (PL031 at {:#x})", t, platform.rtc),
        None => log::warn!("no PL031 at {:#x}: the guest's RTC starts at 1970", platform.rtc),
    }

    let firmware = Firmware::detect(&Smc);
    log::info!("firmware: {}", firmware.describe());

    if let Some(m) = crate::realm::mode::mode(cfg.bootargs.as_str()) {
        crate::realm::target::run(m, cfg.bootargs.as_str());
    } else {
        test_modes(&cfg, firmware, pool);
    }
    let traps = crate::arch::smc_traps();
    if traps != 0 {
        log::info!("{} smc(s) completed as NOT_SUPPORTED by the EL2 trap", traps);
    }
    match crate::vm::config::parse_all(cfg.bootargs.as_str()) {
        // A Realm alone runs on this CPU; one of several has a CPU of its own (`guest::start`).
        Ok(all) if all.count == 1 && all.iter().all(|g| g.realm) => {
            if let Some(g) = all.iter().next() {
                crate::realm::target::run_linux(g, cfg.bootargs.as_str());
            }
        }
        Ok(all) => crate::guest::start(&all, count_cpus(&cfg), pool),
        Err(crate::vm::config::ConfigError::NoGuest) => {}
        Err(crate::vm::config::ConfigError::Bad(w)) => log::error!("guest: bad {} in bootargs: no guest", w),
        Err(crate::vm::config::ConfigError::TooMany) => log::error!("guest: more VMs, or more VM RAM (a Realm's counted twice, with its pool), than ns-hyp has room for: no guest"),
    }
    let r = shared::smccc::smc(shared::abi::psci::PSCI_SYSTEM_OFF, &[]);
    log::error!("SYSTEM_OFF returned {:#x}", r[0]);
    shared::arch::halt()
}

/// The test flavour's boot-time modes, before the guests (if the bootargs
/// name any): the bench, or the FF-A/RMI probes and the Stage-2 self-test.
/// A bench boot with a guest measures the same calls from the guest after
/// ns-hyp's own rows (issue B3's bench: a guest's direct request ÷ ns-hyp's).
#[cfg(feature = "test-modes")]
#[inline(never)]
fn test_modes(cfg: &boot::BootConfig, firmware: Firmware, pool: &'static spin::Mutex<FramePool>) {
    let mut out = crate::report::Console;
    if cfg.bench {
        log::info!("mode: bench");
        let counter = shared::arch::timer::cntvct;
        crate::bench::run(&Smc, &mut out, firmware, &counter, shared::arch::timer::cntfrq());
        return;
    }
    log::info!("mode: probes");
    let mailbox = crate::arch::mailbox::StaticMailbox::get();
    crate::probe::Prober::new(&Smc, mailbox, &mut out, firmware).run_all();
    match crate::guest::selftest::stage2_break_before_make(pool) {
        Ok(()) => log::info!("self-test stage2_break_before_make: ok (live 2 MiB block split, page remapped, no stale TLB entry)"),
        Err(why) => log::error!("self-test stage2_break_before_make: FAIL: {}", why),
    }
}

/// The product image has no test modes: `quadrant.bench` and the probes do not exist.
#[cfg(not(feature = "test-modes"))]
fn test_modes(_: &boot::BootConfig, _: Firmware, _: &'static spin::Mutex<FramePool>) {}

/// Maps the platform's devices (identity, Device memory) into the live EL2
/// map: each range is new, so no break-before-make is needed (aarch64-paging
/// maps unmapped ranges of an active table).  A UART other than the early one
/// becomes the console.
fn map_devices(map: &mut mm::El2Map, p: &Platform) {
    let dev = mm::el2_attributes(MemKind::Device, false);
    if p.uart != EARLY_UART {
        mm::map(map, p.uart, p.uart, PAGE_SIZE, dev).expect("map UART");
        // SAFETY: the DTB's PL011, mapped as Device memory just above.
        shared::console::init(unsafe { shared::console::Pl011::new(p.uart) }, "ns-hyp", log::LevelFilter::Info);
    }
    // The virtio-mmio slots: ns-hyp drives the virtio-blk device behind the guest's disk.
    mm::map(map, p.virtio_mmio, p.virtio_mmio, p.virtio_mmio_size.next_multiple_of(PAGE_SIZE), dev).expect("map virtio-mmio");
    // The PL031 RTC: read once at boot for the wall clock (`crate::wallclock`).
    mm::map(map, p.rtc, p.rtc, PAGE_SIZE, dev).expect("map PL031");
    // The physical GIC: the distributor and 8 CPUs' redistributors.
    mm::map(map, p.gicd, p.gicd, crate::platform::GICD_SIZE, dev).expect("map GICD");
    mm::map(map, p.gicr, p.gicr, crate::platform::GICR_STRIDE * 8, dev).expect("map GICR");
}

/// Physical CPUs available for vCPUs: from the DTB's /cpus when we read it, else 1.
fn count_cpus(cfg: &boot::BootConfig) -> usize {
    cfg.ncpus.max(1)
}
