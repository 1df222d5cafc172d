//! The guest's physical (IPA) address map and where its RAM lives in PA.
//!
//! The guest sees a small QEMU-virt-like machine, so an unmodified distribution
//! kernel finds familiar addresses: GICv3 distributor and redistributors at
//! QEMU virt's addresses, the PL011 at 0x09000000, the PL031 RTC at
//! 0x09010000, one virtio-mmio slot at
//! 0x0a000000, RAM from 1 GiB.  Nothing but RAM is mapped at Stage-2: every
//! device access faults to ns-hyp, which emulates it.

/// Guest RAM starts at this IPA (as on QEMU virt).
pub const RAM_IPA: u64 = 0x4000_0000;
/// Default guest RAM size (`quadrant.mem=` in ns-hyp's bootargs changes it).
pub const DEFAULT_RAM_SIZE: u64 = 1 << 30;
/// Physical base of guest RAM (`platform::qemu_virt::GUEST_RAM`).
pub const RAM_PA: u64 = crate::platform::qemu_virt::GUEST_RAM;
/// The largest guest DTB ns-hyp writes; where it goes is `vm::placement`'s.
pub const DTB_MAX: usize = 64 << 10;

pub const GICD_IPA: u64 = 0x0800_0000;
pub const GICD_SIZE: u64 = 0x1_0000;
pub const GICR_IPA: u64 = 0x080a_0000;
/// One RD_base + SGI_base frame pair per vCPU (IHI0069H, the redistributor
/// memory map: two 64 KiB frames).
pub const GICR_STRIDE: u64 = 0x2_0000;
pub const UART_IPA: u64 = 0x0900_0000;
pub const UART_SIZE: u64 = 0x1000;
/// The PL031 real-time clock (`vm::pl031`), where QEMU virt has its own.
pub const RTC_IPA: u64 = 0x0901_0000;
pub const RTC_SIZE: u64 = 0x1000;
/// The ITS (with `quadrant.virtio=pci`), where QEMU virt has its ITS.
pub const ITS_IPA: u64 = 0x0808_0000;
/// PCIe (with `quadrant.virtio=pci`), at QEMU virt's places: ECAM for bus 0
/// only, and the 32-bit MMIO window the guest assigns BARs from.
pub const PCIE_ECAM_IPA: u64 = 0x3f00_0000;
pub const PCIE_MMIO_IPA: u64 = 0x1000_0000;
pub const PCIE_MMIO_SIZE: u64 = 0x2eff_0000;
pub const VIRTIO_IPA: u64 = 0x0a00_0000;
pub const VIRTIO_SIZE: u64 = 0x200;
/// The network device (`vm::virtio_net`): the next virtio-mmio slot.
pub const VIRTIO_NET_IPA: u64 = 0x0a00_0200;
pub const VIRTIO_NET_SIZE: u64 = 0x200;

/// Guest INTIDs of the virtual devices.
pub const UART_INTID: u32 = 33; // SPI 1, as on QEMU virt
pub const RTC_INTID: u32 = 34; // SPI 2, as on QEMU virt
pub const VIRTIO_INTID: u32 = 48; // SPI 16
pub const VIRTIO_NET_INTID: u32 = 49; // SPI 17
/// Virtual timer PPI (GICv3 / BSA: INTID 27), HW-linked to the physical one.
pub const VTIMER_INTID: u32 = 27;
/// PMU overflow PPI (BSA: INTID 23, QEMU virt's), HW-linked to the physical one.
pub const PMU_INTID: u32 = 23;

/// IPA → PA for a VM's RAM at PA `base`, or `None` outside it.
pub fn ram_pa_in(ipa: u64, len: u64, base: u64, ram_size: u64) -> Option<u64> {
    let end = ipa.checked_add(len)?;
    (ipa >= RAM_IPA && end <= RAM_IPA + ram_size).then(|| ipa - RAM_IPA + base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_translation() {
        assert_eq!(ram_pa_in(RAM_IPA, 4, RAM_PA, DEFAULT_RAM_SIZE), Some(RAM_PA));
        assert_eq!(ram_pa_in(RAM_IPA + DEFAULT_RAM_SIZE - 4, 4, RAM_PA, DEFAULT_RAM_SIZE), Some(RAM_PA + DEFAULT_RAM_SIZE - 4));
        assert_eq!(ram_pa_in(RAM_IPA + DEFAULT_RAM_SIZE - 4, 8, RAM_PA, DEFAULT_RAM_SIZE), None);
        assert_eq!(ram_pa_in(RAM_IPA - 1, 1, RAM_PA, DEFAULT_RAM_SIZE), None);
        assert_eq!(ram_pa_in(u64::MAX, 2, RAM_PA, DEFAULT_RAM_SIZE), None);
        // A second VM's RAM: the same IPAs, another PA.
        assert_eq!(ram_pa_in(RAM_IPA + 8, 4, 0xa000_0000, 512 << 20), Some(0xa000_0008));
        assert_eq!(ram_pa_in(RAM_IPA + (512 << 20), 4, 0xa000_0000, 512 << 20), None);
    }
}
