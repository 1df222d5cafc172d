//! The RMM's life on one CPU: cold or warm boot, `RMM_BOOT_COMPLETE`, then
//! serve RMI requests forever (rmm-el3-comms-spec, "Boot Interface" and
//! "RMM-EL3 Runtime Interface").

use crate::arch::{host::HostFpRegs, mmu as warm};
use crate::boot::{self, ColdBoot};
use crate::manifest::{self, BootManifest};
use crate::platform::{FALLBACK_UART, SHARED_BUFFER_SIZE};
use crate::granule::{GranuleTable, MAX_GRANULES};
use crate::mem::{IdentityMemory, NS_ALIAS_OFFSET};
use crate::realm::VmidSet;
use crate::rmi::{self, RmiCall, RmiContext, features::HwFeatures};
use core::sync::atomic::AtomicU32;
use shared::abi::rmm_el3::{self, E_RMM_BOOT_SUCCESS, E_RMM_BOOT_UNKNOWN};
use shared::console::{self, Pl011};
use shared::mm::{self, El2Map, FramePool, MemKind, PageArea};
use spin::{Mutex, Once};

/// Frames for the EL2 table: image, shared buffer, console, and the NS DRAM
/// banks twice (Realm PAS identity, Non-secure alias), mostly in blocks.
static TABLE_MEM: PageArea<48> = PageArea::new();
/// One entry per tracked granule (4 MiB of .bss for 4 GiB of NS DRAM).
static GRANULE_STORAGE: [AtomicU32; MAX_GRANULES] = [const { AtomicU32::new(0) }; MAX_GRANULES];
static GRANULES: Once<GranuleTable<'static>> = Once::new();
static VMIDS: VmidSet = VmidSet::new();
static MEMORY: IdentityMemory = IdentityMemory;
static EL3: crate::el3::Smc = crate::el3::Smc::new();
static ATTEST: crate::attest::Attest = crate::attest::Attest::new();
static CPU: crate::arch::realm::Cpu = crate::arch::realm::Cpu;
static POOL: Once<Mutex<FramePool>> = Once::new();
static MAP: Once<Mutex<El2Map>> = Once::new();

/// What the cold boot learnt, read by every CPU afterwards.
struct RmmState {
    boot: ColdBoot,
    rmi: RmiContext<'static>,
}
static STATE: Once<RmmState> = Once::new();

const LOG_LEVEL: log::LevelFilter = log::LevelFilter::Info;

pub fn rmm_main(x0: u64, x1: u64, x2: u64, x3: u64) -> ! {
    // The entry assembly cleared .bss only for a cold boot, which x3 != 0 says.
    let result = if x3 != 0 { cold_boot(x0, x1, x2, x3) } else { warm_boot(x0) };
    let code = result.err().unwrap_or(E_RMM_BOOT_SUCCESS);
    serve(code)
}

fn cold_boot(cpu: u64, version: u64, cpus: u64, shared_buffer: u64) -> Result<(), i64> {
    // Until the manifest names our console, print to QEMU's UART0 (GPI_ANY in
    // the GPT, so reachable from R-EL2 with the MMU off).
    // SAFETY: FALLBACK_UART is QEMU virt's PL011; the MMU is off, so it is device memory.
    console::init(unsafe { Pl011::new(FALLBACK_UART as usize) }, "rmm", LOG_LEVEL);
    let (start, _, _, end) = shared::arch::image::layout();
    let cold = boot::check_cold_boot(cpu, version, cpus, shared_buffer, start as u64..end as u64).inspect_err(|e| {
        log::error!("cold boot refused ({e}): cpu {cpu} interface {version:#x} cpus {cpus} shared buffer {shared_buffer:#x}")
    })?;
    log::info!(
        "cold boot on cpu {cpu}: RMM-EL3 interface {}.{}, {cpus} cpus, shared buffer {shared_buffer:#x}",
        rmm_el3::ifc_major(version),
        rmm_el3::ifc_minor(version)
    );
    if cold.cpus > shared::percpu::MAX_CPUS {
        // TF-A's qemu reports its PLATFORM_CORE_COUNT (32), not -smp.
        log::info!("serving cpu ids 0..{} of the {} EL3 reports", shared::percpu::MAX_CPUS - 1, cold.cpus);
    }

    // Parse a private copy: EL3 reuses the buffer, and a copy cannot change
    // between the checks and the use.
    let mut copy = [0u8; SHARED_BUFFER_SIZE];
    for (i, word) in copy.chunks_exact_mut(8).enumerate() {
        // SAFETY: check_cold_boot proved the buffer is a whole page of our
        // Realm region, outside our image; the MMU is off, so this reads memory.
        let v = unsafe { core::ptr::read_volatile((shared_buffer as usize + i * 8) as *const u64) };
        word.copy_from_slice(&v.to_le_bytes());
    }
    let manifest = manifest::parse(&copy, shared_buffer).inspect_err(|e| log::error!("{e}")).map_err(|e| e.boot_error())?;
    let (uart, uart_size) = choose_console(&manifest)?;
    if uart != FALLBACK_UART {
        // SAFETY: a PL011 the manifest lists, outside our region; MMU still off.
        console::init(unsafe { Pl011::new(uart as usize) }, "rmm", LOG_LEVEL);
    }
    log_manifest(&manifest);

    let hw = HwFeatures::from_id_regs(shared::read_sysreg!(id_aa64mmfr0_el1), shared::read_sysreg!(id_aa64dfr0_el1));
    let pool = POOL.call_once(|| {
        let (s, e) = TABLE_MEM.range();
        // SAFETY: the area is ours alone and handed to the pool once.
        Mutex::new(unsafe { FramePool::new(s, e) })
    });
    let map = MAP.call_once(|| {
        let mut t = mm::new_table(pool, mm::El2);
        let sb = shared_buffer as usize;
        let mapped = shared::arch::image::map_self(&mut t)
            .and_then(|_| mm::map(&mut t, sb, sb, SHARED_BUFFER_SIZE, mm::el2_attributes(MemKind::ReadWrite, false)))
            // The UART is in the Non-secure PAS: NS = 1 in the descriptor.
            .and_then(|_| mm::map(&mut t, uart as usize, uart as usize, uart_size as usize, mm::el2_attributes(MemKind::Device, true)))
            .and_then(|_| {
                // Granule contents: Realm PAS at the identity address, the
                // Host's (NS) memory at the alias (crate::mem).
                for &(base, size) in tracked_banks(&manifest).as_slice() {
                    let (base, size) = (base as usize, size as usize);
                    mm::map(&mut t, base, base, size, mm::el2_attributes(MemKind::ReadWrite, false))?;
                    mm::map(&mut t, base + NS_ALIAS_OFFSET as usize, base, size, mm::el2_attributes(MemKind::ReadWrite, true))?;
                }
                Ok(())
            });
        if let Err(e) = mapped {
            panic!("cannot build the EL2 table: {e:?}");
        }
        Mutex::new(t)
    });
    // SAFETY: the table identity-maps the image (code, data, .bss, stacks), the
    // shared buffer and the console, and lives in a static.
    unsafe { shared::arch::mmu::enable_el2(&map.lock()) };
    log::info!("MMU on");

    let banks = tracked_banks(&manifest);
    let granules = GRANULES.call_once(|| GranuleTable::new(banks.as_slice(), &GRANULE_STORAGE));
    for &(base, size) in banks.as_slice() {
        log::info!("granules tracked: {:#x}..{:#x}", base, base + size);
    }
    log::info!("tracking {} granules", granules.len());
    crate::heap::init();
    EL3.set_shared_buffer(shared_buffer as usize);
    STATE.call_once(|| RmmState {
        boot: cold,
        rmi: RmiContext { hw, granules, mem: &MEMORY, el3: &EL3, vmids: &VMIDS, cpu: &CPU, attest: &ATTEST },
    });
    warm::publish_for_warm_boot();
    log::info!("boot complete");
    Ok(())
}

/// The NS DRAM we track and map: the manifest's banks minus our own Realm
/// region (TF-A's qemu lists all of DRAM as one bank, our carve-out
/// included; those granules are never the Host's to delegate).
fn tracked_banks(m: &BootManifest) -> heapless_banks::Banks {
    use crate::platform::{REALM_REGION_END, RMM_BASE};
    let mut out = heapless_banks::Banks::default();
    for b in m.dram_banks() {
        if b.end() <= RMM_BASE || b.base >= REALM_REGION_END {
            out.push((b.base, b.size));
            continue;
        }
        if b.base < RMM_BASE {
            out.push((b.base, RMM_BASE - b.base));
        }
        if b.end() > REALM_REGION_END {
            out.push((REALM_REGION_END, b.end() - REALM_REGION_END));
        }
    }
    out
}

mod heapless_banks {
    use crate::manifest::MAX_DRAM_BANKS;
    /// A fixed-capacity list of (base, size).
    #[derive(Default)]
    pub struct Banks {
        v: [(u64, u64); MAX_DRAM_BANKS],
        n: usize,
    }
    impl Banks {
        pub fn as_slice(&self) -> &[(u64, u64)] {
            &self.v[..self.n]
        }
        pub fn push(&mut self, x: (u64, u64)) {
            if self.n < MAX_DRAM_BANKS {
                self.v[self.n] = x;
                self.n += 1;
            }
        }
    }
    impl FromIterator<(u64, u64)> for Banks {
        fn from_iter<I: IntoIterator<Item = (u64, u64)>>(it: I) -> Self {
            let mut b = Self::default();
            for x in it.into_iter().take(MAX_DRAM_BANKS) {
                b.v[b.n] = x;
                b.n += 1;
            }
            b
        }
    }
}

/// The first PL011 the manifest lists, or QEMU's UART0 if it lists none.
fn choose_console(m: &BootManifest) -> Result<(u64, u64), i64> {
    let (base, size) = match m.consoles().iter().find(|c| c.name() == "pl011") {
        Some(c) => (c.base, c.map_size()),
        None => (FALLBACK_UART, 0x1000),
    };
    boot::check_console_window(base, size).inspect_err(|_| log::error!("console window {base:#x}+{size:#x} overlaps the RMM"))?;
    Ok((base, size))
}

fn log_manifest(m: &BootManifest) {
    log::info!("boot manifest {}.{}: {} NS DRAM bank(s), {} console(s)", m.major(), m.minor(), m.dram_banks().len(), m.consoles().len());
    for (i, b) in m.dram_banks().iter().enumerate() {
        log::info!("NS DRAM bank {i}: {:#x}..{:#x} ({} MiB)", b.base, b.end(), b.size >> 20);
    }
    for c in m.consoles() {
        log::info!("console {} at {:#x} ({} page(s), {} baud)", c.name(), c.base, c.map_pages, c.baud_rate);
    }
}

fn warm_boot(cpu: u64) -> Result<(), i64> {
    // Nothing in .bss is valid without a completed cold boot, not even the
    // console: refuse silently.
    if !warm::cold_boot_done() {
        return Err(E_RMM_BOOT_UNKNOWN);
    }
    // SAFETY: the cold boot is done, so the table it published is complete.
    unsafe { warm::enable_like_cold_boot() };
    let cpu = boot::check_warm_boot(cpu, STATE.get().map(|s| &s.boot)).inspect_err(|e| log::error!("warm boot of cpu {cpu} refused ({e})"))?;
    log::info!("cpu {cpu}: warm boot complete");
    Ok(())
}

/// Reports the boot result; on success, serves RMI requests forever.
fn serve(code: i64) -> ! {
    let mut host_fp = HostFpRegs::new();
    let mut regs = host_fp.switch_to_host(rmm_el3::RMM_BOOT_COMPLETE, &[code as u64]);
    let Some(state) = STATE.get().filter(|_| code == E_RMM_BOOT_SUCCESS) else {
        // EL3 never enters an RMM that failed to boot (it marks the boot failed).
        shared::arch::halt()
    };
    loop {
        shared::split::enter();
        if shared::split::ENABLED && regs[0] == shared::abi::rmi::RMI_FEATURES as u64 && regs[1] == shared::split::RMI_MARKER {
            let (calls, own, inner) = shared::split::take();
            log::info!("split rmm calls {} own {} inner {}", calls, own, inner);
        }
        let ret = rmi::handle(&RmiCall::from_regs(&regs), &state.rmi);
        shared::split::leave();
        regs = host_fp.switch_to_host(rmm_el3::RMM_RMI_REQ_COMPLETE, &ret.regs);
    }
}
