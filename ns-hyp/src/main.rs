//! ns-hyp: Quadrant's Non-secure EL2 hypervisor.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod arch;

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
fn hyp_main(dtb: u64, cpu: u64) -> ! {
    use shared::mm::{self, FramePool, MemKind, PageArea};
    static TABLE_MEM: PageArea<64> = PageArea::new();
    static POOL: spin::Once<spin::Mutex<FramePool>> = spin::Once::new();
    static MAP: spin::Once<spin::Mutex<mm::El2Map>> = spin::Once::new();

    // SAFETY: 0x09000000 is QEMU virt's PL011; the MMU is off, so it is device memory.
    shared::console::init(unsafe { shared::console::Pl011::new(0x0900_0000) }, "ns-hyp", log::LevelFilter::Info);
    log::info!("cpu {} up, dtb {:#x}", cpu, dtb);
    let pool = POOL.call_once(|| {
        let (s, e) = TABLE_MEM.range();
        // SAFETY: the area is ours alone and handed to the pool once.
        spin::Mutex::new(unsafe { FramePool::new(s, e) })
    });
    let map = MAP.call_once(|| {
        let mut t = mm::new_table(pool, mm::El2);
        shared::arch::image::map_self(&mut t).unwrap();
        mm::map(&mut t, 0x0900_0000, 0x0900_0000, 0x1000, mm::el2_attributes(MemKind::Device, false)).unwrap();
        spin::Mutex::new(t)
    });
    // SAFETY: the table maps the image, its stacks and the UART, and lives in a static.
    unsafe { shared::arch::mmu::enable_el2(&map.lock()) };
    log::info!("MMU on");
    let r = shared::smccc::smc(shared::abi::psci::PSCI_SYSTEM_OFF, &[]);
    log::error!("SYSTEM_OFF returned {:#x}", r[0]);
    shared::arch::halt()
}
