//! Target-only half of the SPMC: entry points, the EL2 MMU, Stage-2 for SPs,
//! running an SP's execution context at S-EL1, and the main loop with the SPMD.

mod mem;
mod platform;
mod recover;

use spmc::ffa::setup::partition_info::{LogicalPartitions, MAX_LOGICAL, read_info_regs};
use spmc::ffa::{Partition, Regs, SpMemory, Spmc};
use spmc::manifest::{Range, SpEntry, SpmcManifest};
use spmc::partition::layout::{self, Taken};
use spmc::partition::{PartitionManifest, SpPackage, boot_info, signature};
use platform::{HwPe, HwPlatform};
use shared::abi::ffa::{FfaError, fid};
use shared::arch::ExceptionFrame;
use shared::mm::{self, FramePool, MemKind, PageArea};

/// The SPMC manifest must fit in 4 KiB (TF-A secure-partition-manager.rst).
const MANIFEST_MAX: usize = 0x1000;
const UART: usize = 0x0900_0000;
/// The SPMC's own image region (BL32_BASE, at most 2 MiB: the manifest's binary_size).
const SPMC_BASE: u64 = 0x0e10_0000;
const SPMC_SIZE: u64 = 0x20_0000;

core::arch::global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    // Cold boot from the SPMD: x0 = manifest.  x1 = 1 tells quadrant_main
    // this is the cold (primary) path; x7 = 1: clear .bss.
    "mov x7, #1",
    "mov x1, #1",
    "b spmc_entry_core",
    ".global spmc_secondary_entry",
    "spmc_secondary_entry:",
    // Registered with FFA_SECONDARY_EP_REGISTER; never clear .bss.
    "mov x7, #0",
    "mov x1, #0",
    // The core index (x6: its stack and everything per core) comes from
    // MPIDR_EL1, never from x4: TF-A's SPMD sets x4 to the linear core id
    // only when it initialises the SPMC on that core, so on a core's second
    // CPU_ON x4 holds whatever we left there (issue 11).  The mapping is
    // `platform::MPIDR_CORE_MASK`; affinity levels 1..3 must be 0, else the
    // index is out of range and the common entry parks the core.
    "spmc_entry_core:",
    "mrs x8, mpidr_el1",
    "and x6, x8, #{core_mask}",
    "and x9, x8, #0xffff00",
    "lsr x8, x8, #32",
    "and x8, x8, #0xff",
    "orr x9, x9, x8",
    "cbz x9, 1f",
    "mov x6, #{max_cpus}",
    "1:",
    "b quadrant_entry_common",
    core_mask = const platform::MPIDR_CORE_MASK,
    max_cpus = const shared::percpu::MAX_CPUS,
);

unsafe extern "C" {
    fn spmc_secondary_entry();
}

static TABLE_MEM: PageArea<96> = PageArea::new();
static POOL: spin::Once<spin::Mutex<FramePool>> = spin::Once::new();
static MAP: spin::Once<spin::Mutex<mm::El2Map>> = spin::Once::new();
/// Shared by every PE, unlocked: the SPMC locks per execution context and
/// per endpoint inside ([`spmc::ffa::context`]); nothing is held while an SP runs.
static SPMC: spin::Once<Spmc> = spin::Once::new();
/// Memory transactions (FFA_MEM_*): ~100 KiB, so a static, not on the boot stack.
static MEMORY: spin::Mutex<spmc::ffa::memory::transaction::MemoryStore> = spin::Mutex::new(spmc::ffa::memory::transaction::MemoryStore::new());
/// The notification bitmaps of the hypervisor's VMs: ~4 KiB, a static too.
static VM_NOTIFICATIONS: spmc::ffa::notifications::VmBitmaps = spmc::ffa::notifications::VmBitmaps::new();
/// Fixed once booted; each PE drives it through its own [`HwPe`].
static PLATFORM: spin::Once<HwPlatform> = spin::Once::new();

fn pool() -> &'static spin::Mutex<FramePool> {
    POOL.call_once(|| {
        let (s, e) = TABLE_MEM.range();
        // SAFETY: the area is ours alone and handed to the pool once.
        spin::Mutex::new(unsafe { FramePool::new(s, e) })
    })
}

#[unsafe(no_mangle)]
extern "C" fn quadrant_main(x0: u64, cold: u64, _x2: u64, _x3: u64, x4: u64, cpu: u64) -> ! {
    if cold != 0 {
        // SAFETY: QEMU virt's PL011; MMU off, so device memory.
        shared::console::init(unsafe { shared::console::Pl011::new(UART) }, "spmc", log::LevelFilter::Info);
        let answer = match cold_boot(x0 as usize, cpu as usize) {
            Ok(()) => {
                log::info!("init done, FFA_MSG_WAIT to SPMD");
                msg_wait()
            }
            Err(e) => {
                log::error!("init failed: {}", e);
                // DEN0077 / TF-A SPMD: FFA_ERROR at init = SPMC failed to initialise.
                spmc::ffa::error(FfaError::InvalidParameters)
            }
        };
        main_loop(cpu as usize, answer)
    } else {
        secondary_boot(cpu, x4);
        if let (Some(s), Some(p)) = (SPMC.get(), PLATFORM.get()) {
            spmc::gic::configure(s.partitions().map(|p| &p.manifest), cpu as usize, false, &mut platform::HwGic);
            // The Normal world's EL1 state goes back when the HwPe is dropped.
            s.init_secondary(cpu as usize, &mut HwPe::new(p));
        }
        main_loop(cpu as usize, msg_wait())
    }
}

fn msg_wait() -> Regs {
    let mut r = [0; 18];
    r[0] = fid::FFA_MSG_WAIT as u64;
    r
}

fn cold_boot(manifest_addr: usize, cpu: usize) -> Result<(), &'static str> {
    let start = shared::arch::timer::cntpct();
    // Copy the manifest out first: it is read with the MMU off, never again.
    if manifest_addr == 0 || manifest_addr % 8 != 0 {
        return Err("no manifest in x0");
    }
    // SAFETY: the SPMD hands us a manifest page at x0 (at most 4 KiB), readable Secure memory.
    let page = unsafe { core::slice::from_raw_parts(manifest_addr as *const u8, MANIFEST_MAX) };
    let size = shared::fdt::total_size(page).ok_or("manifest is not a DTB")?;
    if size > MANIFEST_MAX {
        return Err("manifest larger than 4 KiB");
    }
    let m = match SpmcManifest::parse(&page[..size]) {
        Ok(m) => m,
        Err(e) => {
            log::error!("SPMC manifest: {}", e);
            return Err("bad SPMC manifest");
        }
    };
    log::info!(
        "manifest: spmc_id {:#06x}, FF-A v{}.{}, {} partition(s)",
        m.spmc_id, m.maj_ver, m.min_ver, m.sps().len()
    );

    // EL2 Stage-1: the image, the UART, every SP package region (Secure).
    let map = MAP.call_once(|| spin::Mutex::new(mm::new_table(pool(), mm::El2)));
    {
        let mut t = map.lock();
        shared::arch::image::map_self(&mut t).map_err(|_| "map image")?;
        mm::map(&mut t, UART, UART, 0x1000, mm::el2_attributes(MemKind::Device, false)).map_err(|_| "map uart")?;
        mm::map(&mut t, platform::GICD_BASE, platform::GICD_BASE, 0x1_0000, mm::el2_attributes(MemKind::Device, false)).map_err(|_| "map GICD")?;
        mm::map(&mut t, platform::GICR_BASE, platform::GICR_BASE, platform::GICR_SIZE, mm::el2_attributes(MemKind::Device, false)).map_err(|_| "map GICR")?;
        // Each SP's memory (its package, image, .bss, stacks, RX/TX): the
        // SPMC manifest's `mem_size` from its load address, 1 MiB without
        // one; a region that does not fit is not mapped, its SP is refused below.
        for r in (0..m.sps().len()).filter_map(|i| sp_region(&m, i).ok()) {
            mm::map(&mut t, r.base as usize, r.base as usize, r.size as usize, mm::el2_attributes(MemKind::ReadWrite, false)).map_err(|_| "map SP region")?;
        }
        platform::reserve_zero_window(&mut t).map_err(|_| "map zeroing window")?;
        // SAFETY: the table maps the image, stacks, UART and everything touched later; it lives in a static.
        unsafe { shared::arch::mmu::enable_el2(&t) };
    }

    let mut spmc = Spmc::new(m.spmc_id, m.ns_memory, &MEMORY, &VM_NOTIFICATIONS);
    spmc.set_logical_partitions(spmd_logical_partitions());
    let mut hw = HwPlatform::new(pool());
    // What is already owned: the SPMC image and every SP package region.
    let mut taken = Taken::default();
    taken.push(Range { base: SPMC_BASE, size: SPMC_SIZE })?;
    for r in (0..m.sps().len()).filter_map(|i| sp_region(&m, i).ok()) {
        taken.push(r)?;
    }
    for (i, sp) in m.sps().iter().enumerate() {
        let loaded = sp_region(&m, i).and_then(|own| Ok((own, load_partition(own, sp, &m)?))).and_then(|(own, (mut pm, entry, boot))| {
            adopt_hafnium_forms(&mut pm, sp);
            layout::check_mem_size(&pm, own)?;
            layout::check_regions(&pm, own, &taken, &m.secure_memory, &m.ns_memory)?;
            Ok((own, pm, entry, boot))
        });
        match loaded {
            Ok((own, pm, entry, boot)) => {
                let mem = SpMemory { base: own.base, size: own.size };
                let idx = spmc.add_partition(Partition::new(pm, mem))?;
                hw.add_partition(idx, entry, mem, &pm, boot).map_err(|_| "SP Stage-2")?;
                log::info!("SP {} ({:#06x}): starts with FP/SIMD trapped at EL1 (CPACR_EL1.FPEN = 0), as under Hafnium", sp.debug_name, pm.id);
                let _ = layout::take(&pm, own, &mut taken);
            }
            // A bad SP is skipped, not fatal: the others still run.
            Err(e) => log::error!("SP {} at {:#x} refused: {}", sp.debug_name, sp.load_address, e),
        }
    }
    platform::setup_cpu_virt(hw.ns_root());
    let plat = PLATFORM.call_once(|| hw);

    // Secondary cores enter at our secondary entry (DEN0077 v1.2, FFA_SECONDARY_EP_REGISTER).
    let r = shared::smccc::smc(fid::FFA_SECONDARY_EP_REGISTER_64, &[spmc_secondary_entry as *const () as u64]);
    if r[0] != fid::FFA_SUCCESS_64 as u64 && r[0] != fid::FFA_SUCCESS_32 as u64 {
        log::warn!("FFA_SECONDARY_EP_REGISTER failed: {:#x} {:#x}", r[0], r[2]);
    }

    // Secure interrupts: our timer and every Secure interrupt of the manifests.
    let n = spmc::gic::configure(spmc.partitions().map(|p| &p.manifest), cpu, true, &mut platform::HwGic);
    log::info!("{} Secure interrupt(s) configured (Group 1 Secure)", n);
    let s = SPMC.call_once(|| spmc);
    let mut p = HwPe::new(plat);
    for i in s.boot_sequence().into_iter().flatten() {
        let ctx = s.partition(i).map_or(0, |p| p.ctx_for(cpu));
        if let Err(e) = s.init_partition(i, ctx, cpu, &mut p) {
            log::error!("SP {:#06x}: {}", s.partition(i).map_or(0, |p| p.manifest.id), e);
        }
    }
    p.restore_ns_el1();
    // `cargo xtask bench` reads this line (boot with signature checks ÷ without).
    let end = shared::arch::timer::cntpct();
    log::info!(
        "cold boot: {} counter ticks (at {} since reset), SP signatures {}",
        end.wrapping_sub(start), end, if m.verify_signatures { "checked" } else { "not checked" }
    );
    Ok(())
}

/// The SPMD's EL3 logical partitions (TF-A `ENABLE_SPMD_LP=1`), asked with
/// FFA_PARTITION_INFO_GET_REGS as Hafnium's SPMC asks them (TF-A
/// `spmd_el3_populate_logical_partition_info` answers it for the Secure
/// world; NOT_SUPPORTED when there are none).  They are fixed in EL3's
/// image, so once at boot is enough.
fn spmd_logical_partitions() -> LogicalPartitions {
    let mut lps = LogicalPartitions::default();
    let mut start = 0u16;
    // Bounded: each answer holds at least one descriptor.
    for _ in 0..MAX_LOGICAL {
        let r = shared::smccc::smc(fid::FFA_PARTITION_INFO_GET_REGS, &[0, 0, start as u64]);
        match read_info_regs(&r, &mut lps) {
            Some(next) => start = next,
            None => break,
        }
    }
    for lp in lps.as_slice() {
        log::info!("SPMD logical partition {:#06x}: uuid {}, properties {:#x}", lp.id, lp.uuid, lp.properties);
    }
    lps
}

/// SP `i`'s memory, checked (`layout::check_sp_region`).
fn sp_region(m: &SpmcManifest, i: usize) -> Result<Range, &'static str> {
    layout::check_sp_region(m.sps(), i, Range { base: SPMC_BASE, size: SPMC_SIZE }, &m.secure_memory)
}

/// Checks the SP package at the start of `own` (the partition's memory,
/// checked by [`sp_region`]; the package must fit in it, as Hafnium wants
/// its size below `mem_size`), and its signature if the SPMC manifest
/// trusts keys, and parses its manifest; returns it and the entry point.
fn load_partition(own: Range, sp: &SpEntry, m: &SpmcManifest) -> Result<(PartitionManifest, u64, Option<(u8, u64)>), &'static str> {
    let (base, name) = (own.base, sp.debug_name.as_str());
    // SAFETY: `own` was checked and mapped (Secure, RW) above and BL2 loaded the package there.
    let region = unsafe { core::slice::from_raw_parts(base as *const u8, own.size as usize) };
    let pkg = SpPackage::parse(region).map_err(|e| {
        log::error!("SP {}: {}", name, e);
        "bad SP package"
    })?;
    // Before anything else in the package is read, and long before its
    // Stage-2 maps it executable (docs/spmc.md, "Signed SP packages").
    if m.verify_signatures {
        let key = signature::verify(region, &pkg, sp.keys.as_slice()).map_err(|e| {
            if let signature::SignatureError::Malformed(why) = e {
                log::error!("SP {}: signature block: {}", name, why);
            }
            e.as_str()
        })?;
        log::info!("SP {}: signature ok (ed25519 key {:02x}{:02x}{:02x}{:02x}..)", name, key[0], key[1], key[2], key[3]);
    }
    let pm = PartitionManifest::parse(pkg.manifest(region), shared::percpu::MAX_CPUS).map_err(|e| {
        log::error!("SP {}: partition manifest: {}", name, e);
        "bad partition manifest"
    })?;
    if pm.load_address.is_some_and(|a| a != base) {
        return Err("partition manifest load-address differs from the package address");
    }
    let offset = pm.entrypoint_offset.unwrap_or(pkg.img_offset as u64);
    if offset < pkg.img_offset as u64 || offset >= own.size {
        return Err("entrypoint-offset outside the image");
    }
    let entry = base + offset;
    log::info!(
        "SP {}: uuid {}, id {:#06x}, load address {:#x}, entry {:#x}",
        pm.description, pm.uuid, pm.id, base, entry
    );
    // The FF-A boot information blob (DEN0077A v1.1 §5.4), as Hafnium: at the
    // package base, over the header read above (and, signed, verified above),
    // below the signature block and the manifest it lists.
    let boot = match pm.boot_info {
        None => None,
        Some(bi) => {
            let room = (pkg.pm_offset as usize).min(signature::BLOCK_OFFSET);
            // SAFETY: the header page of this SP's package, mapped RW at EL2
            // above; `region` is not used after this point.
            let head = unsafe { core::slice::from_raw_parts_mut(base as *mut u8, room) };
            let manifest = bi.ffa_manifest.then_some((base + pkg.pm_offset as u64, pkg.pm_size));
            let n = boot_info::write_blob(head, pm.ffa_version, manifest).map_err(|e| e.as_str())?;
            log::info!("SP {}: boot information blob ({} bytes) at {:#x} in x{}", name, n, base, bi.gp_register);
            Some((bi.gp_register, base))
        }
    };
    Ok((pm, entry, boot))
}

/// What Hafnium boots, we boot: the partition gets the id the SPMC manifest's
/// order gives it, and each manifest property we ignore is a warning.
fn adopt_hafnium_forms(pm: &mut PartitionManifest, sp: &SpEntry) {
    for name in pm.ignored() {
        log::warn!("SP {}: partition manifest property or node `{}` ignored (not implemented)", sp.debug_name, name);
    }
    if pm.gp_register.is_some() && pm.boot_info.is_none() {
        log::warn!("SP {}: gp-register-num without a boot-info node: no boot information passed", sp.debug_name);
    }
    match pm.assign_id(sp.id) {
        None => {}
        Some(None) => log::warn!("SP {}: no usable `id` in its manifest: id {:#06x} from the SPMC manifest", sp.debug_name, sp.id),
        Some(Some(own)) => log::warn!("SP {}: manifest `id` {:#x} ignored: id {:#06x} from the SPMC manifest", sp.debug_name, own, sp.id),
    }
}

fn secondary_boot(cpu: u64, x4: u64) {
    if let Some(map) = MAP.get() {
        // SAFETY: the same table as the primary's, complete by now.
        unsafe { shared::arch::mmu::enable_el2(&map.lock()) };
    }
    if let Some(p) = PLATFORM.get() {
        platform::setup_cpu_virt(p.ns_root());
    }
    // x4 is shown only to tell a stale one in the log: the core is MPIDR's.
    log::info!("cpu {} up (MPIDR_EL1 {:#x}, x4 {:#x})", cpu, shared::read_sysreg!(mpidr_el1), x4);
}

/// The Normal world's FP/SIMD registers while the SPMC runs on a core.
///
/// With the SPMC at S-EL2 TF-A does not switch FP/SIMD state between worlds
/// (CTX_INCLUDE_FPREGS=0; the SPMC "must ensure the FPU register contexts are
/// properly managed", lib/el3_runtime/aarch64/context_mgmt.c), and Rust code
/// uses the SIMD registers, so each request from the SPMD saves them on
/// arrival and restores them just before the answering SMC.
/// Not handled yet: the SVE Z/P/FFR state beyond the low 128 bits.
#[repr(C, align(16))]
struct NsFpState {
    q: [u128; 32],
    fpsr: u64,
    fpcr: u64,
}

struct PerCpuFp([core::cell::UnsafeCell<NsFpState>; shared::percpu::MAX_CPUS]);
// SAFETY: each CPU only touches its own slot, from its own main loop.
unsafe impl Sync for PerCpuFp {}

static NS_FP: PerCpuFp = PerCpuFp([const { core::cell::UnsafeCell::new(NsFpState { q: [0; 32], fpsr: 0, fpcr: 0 }) }; shared::percpu::MAX_CPUS]);

/// One SMC to the SPMD carrying `answer`; returns the next request.  The
/// Normal world's FP/SIMD state is restored just before and saved just after.
fn smc_to_spmd(cpu: usize, answer: &Regs) -> Regs {
    let fp = NS_FP.0[cpu.min(shared::percpu::MAX_CPUS - 1)].get();
    // The answer goes to x0..x17 straight from `answer` and the request
    // comes back in `r`: no copy of the block on the way (issue P item 3).
    let mut r: Regs = [0; 18];
    // SAFETY: `fp` is this CPU's save area; x0..x17 follow SMCCC v1.2; every
    // SIMD register is declared clobbered, x18..x30 are preserved by EL3.
    unsafe {
        core::arch::asm!(
            "ldp q0, q1, [x21, #0]", "ldp q2, q3, [x21, #32]", "ldp q4, q5, [x21, #64]",
            "ldp q6, q7, [x21, #96]", "ldp q8, q9, [x21, #128]", "ldp q10, q11, [x21, #160]",
            "ldp q12, q13, [x21, #192]", "ldp q14, q15, [x21, #224]", "ldp q16, q17, [x21, #256]",
            "ldp q18, q19, [x21, #288]", "ldp q20, q21, [x21, #320]", "ldp q22, q23, [x21, #352]",
            "ldp q24, q25, [x21, #384]", "ldp q26, q27, [x21, #416]", "ldp q28, q29, [x21, #448]",
            "ldp q30, q31, [x21, #480]",
            "ldr x22, [x21, #512]", "msr fpsr, x22",
            "ldr x22, [x21, #520]", "msr fpcr, x22",
            "smc #0",
            "stp q0, q1, [x21, #0]", "stp q2, q3, [x21, #32]", "stp q4, q5, [x21, #64]",
            "stp q6, q7, [x21, #96]", "stp q8, q9, [x21, #128]", "stp q10, q11, [x21, #160]",
            "stp q12, q13, [x21, #192]", "stp q14, q15, [x21, #224]", "stp q16, q17, [x21, #256]",
            "stp q18, q19, [x21, #288]", "stp q20, q21, [x21, #320]", "stp q22, q23, [x21, #352]",
            "stp q24, q25, [x21, #384]", "stp q26, q27, [x21, #416]", "stp q28, q29, [x21, #448]",
            "stp q30, q31, [x21, #480]",
            "mrs x22, fpsr", "str x22, [x21, #512]",
            "mrs x22, fpcr", "str x22, [x21, #520]",
            in("x21") fp,
            out("x22") _,
            inout("x0") answer[0] => r[0], inout("x1") answer[1] => r[1], inout("x2") answer[2] => r[2], inout("x3") answer[3] => r[3],
            inout("x4") answer[4] => r[4], inout("x5") answer[5] => r[5], inout("x6") answer[6] => r[6], inout("x7") answer[7] => r[7],
            inout("x8") answer[8] => r[8], inout("x9") answer[9] => r[9], inout("x10") answer[10] => r[10], inout("x11") answer[11] => r[11],
            inout("x12") answer[12] => r[12], inout("x13") answer[13] => r[13], inout("x14") answer[14] => r[14], inout("x15") answer[15] => r[15],
            inout("x16") answer[16] => r[16], inout("x17") answer[17] => r[17],
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _,
            out("v6") _, out("v7") _, out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _, out("v16") _, out("v17") _,
            out("v18") _, out("v19") _, out("v20") _, out("v21") _, out("v22") _, out("v23") _,
            out("v24") _, out("v25") _, out("v26") _, out("v27") _, out("v28") _, out("v29") _,
            out("v30") _, out("v31") _,
            options(nostack),
        );
    }
    r
}

/// `req = smc(answer)` forever: each SMC to the SPMD carries our answer to the
/// previous request and returns with the next one (TF-A `spmd_smc_forward`).
fn main_loop(cpu: usize, mut answer: Regs) -> ! {
    let (Some(s), Some(p)) = (SPMC.get(), PLATFORM.get()) else {
        // Init failed: refuse everything.
        loop {
            let _ = smc_to_spmd(cpu, &answer);
            answer = spmc::ffa::error(FfaError::NotSupported);
        }
    };
    let mut pe = HwPe::new(p);
    shared::split::leave();
    let mut req = smc_to_spmd(cpu, &answer);
    loop {
        shared::split::enter();
        if shared::split::ENABLED && req[0] == fid::FFA_FEATURES as u64 && req[1] == shared::split::FFA_MARKER {
            let (calls, own, inner) = shared::split::take();
            log::info!("split spmc calls {} own {} inner {}", calls, own, inner);
        }
        // A fresh block each time round: the handler writes its answer in
        // place, where assigning to one `answer` kept across iterations cost
        // a 144-byte copy per call (issue P item 3).
        let answer = s.handle_ns(&req, cpu, &mut pe);
        pe.restore_ns_el1();
        shared::split::leave();
        req = smc_to_spmd(cpu, &answer);
    }
}

#[unsafe(no_mangle)]
extern "C" fn quadrant_el2_exception(frame: &mut ExceptionFrame, vector: u64) {
    // A guarded access to another world's memory that faulted (recover.rs).
    if vector & 3 == 0 && recover::on_exception(frame, shared::read_sysreg!(esr_el2)) {
        return;
    }
    shared::arch::unexpected_el2_exception(frame, vector)
}

shared::quadrant_panic_handler!();
