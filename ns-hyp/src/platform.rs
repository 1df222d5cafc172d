//! The physical machine ns-hyp runs on: where its devices are.  QEMU virt's
//! addresses (hw/arm/virt.c's memory map) are the fallback; where ns-hyp is
//! handed a DTB (`boot::read_config`), its nodes give the addresses
//! (`arm,pl011`, `arm,gic-v3`, `virtio,mmio`, `arm,pl031`).  Every other module asks
//! `platform::get()`; only code that runs before the DTB is read (the first
//! console line, finding the DTB itself) uses the `qemu_virt` constants.
//!
//! The guest's own address map is a different thing: `vm::layout`.

use crate::boot::DtbDevices;

/// QEMU virt's physical addresses.
pub mod qemu_virt {
    /// UART0, a PL011 (also what TF-A and the other worlds print on).
    pub const UART: usize = 0x0900_0000;
    /// GICv3 distributor and the first redistributor.
    pub const GICD: usize = 0x0800_0000;
    pub const GICR: usize = 0x080a_0000;
    /// 32 virtio-mmio transports of 0x200 bytes.
    pub const VIRTIO_MMIO: usize = 0x0a00_0000;
    pub const VIRTIO_MMIO_SIZE: usize = 32 * 0x200;
    /// The PL031 real-time clock (SPI 2); ns-hyp reads the time from it at boot.
    pub const RTC: usize = 0x0901_0000;
    /// RAM starts at 1 GiB; TF-A leaves the NS DTB at its base.
    pub const RAM_BASE: u64 = 0x4000_0000;
    /// Where the guest's RAM lives: the top half of QEMU virt's 2 GiB (`-m 2G`),
    /// above ns-hyp (0x60000000) and TF-A's NS DTB / the RMM carve-out
    /// (0x40000000..).
    pub const GUEST_RAM: u64 = 0x8000_0000;
}

/// The GICv3 register frames (IHI0069H): a 64 KiB distributor, and per CPU
/// a redistributor of two 64 KiB frames (RD_base, SGI_base).
pub const GICD_SIZE: usize = 0x1_0000;
pub const GICR_STRIDE: usize = 0x2_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Platform {
    pub uart: usize,
    pub gicd: usize,
    pub gicr: usize,
    /// The virtio-mmio transports: first one's base, and the span of all.
    pub virtio_mmio: usize,
    pub virtio_mmio_size: usize,
    /// A PL031 RTC, the source of the wall clock (`crate::wallclock`).
    pub rtc: usize,
}

impl Platform {
    pub const QEMU_VIRT: Platform = Platform {
        uart: qemu_virt::UART,
        gicd: qemu_virt::GICD,
        gicr: qemu_virt::GICR,
        virtio_mmio: qemu_virt::VIRTIO_MMIO,
        virtio_mmio_size: qemu_virt::VIRTIO_MMIO_SIZE,
        rtc: qemu_virt::RTC,
    };

    /// The DTB's devices, QEMU virt's for those it does not describe.
    pub fn from_dtb(d: &DtbDevices) -> Self {
        let q = Self::QEMU_VIRT;
        let (virtio_mmio, virtio_mmio_size) = d.virtio_mmio.map_or((q.virtio_mmio, q.virtio_mmio_size), |(s, e)| (s as usize, (e - s) as usize));
        Platform {
            uart: d.uart.map_or(q.uart, |a| a as usize),
            gicd: d.gic.map_or(q.gicd, |g| g.0 as usize),
            gicr: d.gic.map_or(q.gicr, |g| g.1 as usize),
            virtio_mmio,
            virtio_mmio_size,
            rtc: d.rtc.map_or(q.rtc, |a| a as usize),
        }
    }
}

static PLATFORM: spin::Once<Platform> = spin::Once::new();

/// Fixes the platform (once, on the boot CPU, before anything maps or drives a device).
pub fn init(p: Platform) -> &'static Platform {
    PLATFORM.call_once(|| p)
}

/// The platform; QEMU virt's until `init`.
pub fn get() -> &'static Platform {
    PLATFORM.get().unwrap_or(&Platform::QEMU_VIRT)
}
