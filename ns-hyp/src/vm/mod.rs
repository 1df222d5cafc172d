//! The virtual machine ns-hyp runs: its configuration, address map, device
//! tree, and the emulated devices (vGICv3, PL011, virtio-blk) with the
//! firmware interface (PSCI).  Everything here is plain state and logic,
//! tested on the host; `crate::guest` runs it on the hardware.

pub mod config;
pub mod decode;
pub mod dtb;
pub mod el2;
pub mod exit;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod idregs;
pub mod its;
pub mod layout;
pub mod pl011;
pub mod placement;
pub mod psci;
pub mod sched;
pub mod stats;
pub mod sysreg;
pub mod timer;
pub mod vgic;
pub mod virtio_blk;
pub mod virtio_pci;

use config::MAX_VCPUS;
use layout::*;
use psci::Power;
use vgic::{Kick, Vgic};

/// The emulated machine, shared by every vCPU (one lock).
pub struct Vm {
    pub nvcpus: usize,
    pub vgic: Vgic,
    pub uart: pl011::Pl011,
    pub power: [Power; MAX_VCPUS],
    /// The guest's ITS (used with `quadrant.virtio=pci`).
    pub its: its::Its,
}

/// Result of an emulated MMIO access.
#[derive(Debug, PartialEq, Eq)]
pub enum Mmio {
    /// Done; for a read, the value.  `kick`: vCPUs with new interrupts; `tx`: a byte for the real UART.
    Ok { value: u64, kick: Kick, tx: Option<u8> },
    /// Nothing there (or an access size the device does not allow): the
    /// guest gets a synchronous external abort.
    Abort,
}

impl Vm {
    pub fn new(nvcpus: usize) -> Self {
        let mut power = [Power::Off; MAX_VCPUS];
        power[0] = Power::On;
        Vm { nvcpus, vgic: Vgic::new(nvcpus), uart: pl011::Pl011::new(), power, its: its::Its::new() }
    }

    fn uart_line(&mut self) -> Kick {
        let l = self.uart.line();
        self.vgic.set_level(UART_INTID, l)
    }

    /// A byte arrived on the real UART for the guest.
    pub fn uart_rx_room(&self) -> bool {
        self.uart.has_room()
    }

    pub fn uart_rx(&mut self, b: u8) -> Kick {
        self.uart.receive(b);
        self.uart_line()
    }

    pub fn mmio(&mut self, ipa: u64, size: u8, write: bool, value: u64) -> Mmio {
        let ok = |value, kick| Mmio::Ok { value, kick, tx: None };
        if !matches!(size, 1 | 2 | 4 | 8) || ipa % size as u64 != 0 {
            return Mmio::Abort;
        }
        let in_range = |base: u64, len: u64| ipa >= base && ipa.checked_add(size as u64).is_some_and(|e| e <= base + len);
        if in_range(GICD_IPA, GICD_SIZE) {
            let off = ipa - GICD_IPA;
            return if write { ok(0, self.vgic.dist_write(off, size, value)) } else { ok(self.vgic.dist_read(off, size), 0) };
        }
        if in_range(GICR_IPA, GICR_STRIDE * self.nvcpus as u64) {
            let off = ipa - GICR_IPA;
            return if write { ok(0, self.vgic.redist_write(off, size, value)) } else { ok(self.vgic.redist_read(off, size), 0) };
        }
        if in_range(UART_IPA, UART_SIZE) {
            let off = ipa - UART_IPA;
            if size == 8 {
                return Mmio::Abort;
            }
            // Byte/halfword accesses see the low part of the 32-bit register.
            let aligned = off & !3;
            let shift = (off & 3) * 8;
            return if write {
                let e = self.uart.write(aligned, (value << shift) as u32);
                let kick = self.uart_line();
                Mmio::Ok { value: 0, kick, tx: e.tx }
            } else {
                let v = (self.uart.read(aligned) >> shift) as u64;
                let kick = self.uart_line();
                ok(v, kick)
            };
        }
        if in_range(VIRTIO_IPA, VIRTIO_SIZE) {
            // No backing device yet: a virtio-mmio slot with DeviceID 0 ("no device", virtio 1.2 §4.2.2).
            let off = ipa - VIRTIO_IPA;
            let v = match off {
                0x000 => 0x7472_6976, // "virt"
                0x004 => 2,
                _ => 0,
            };
            return ok(if write { 0 } else { v }, 0);
        }
        Mmio::Abort
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_accesses() {
        let mut vm = Vm::new(2);
        assert!(matches!(vm.mmio(GICD_IPA + 0xffe8, 4, false, 0), Mmio::Ok { value: 0x3b, .. }));
        assert!(matches!(vm.mmio(GICR_IPA + GICR_STRIDE + 8, 8, false, 0), Mmio::Ok { value: v, .. } if v >> 32 == 1));
        assert_eq!(vm.mmio(GICR_IPA + 2 * GICR_STRIDE, 4, false, 0), Mmio::Abort, "no third redistributor");
        assert_eq!(vm.mmio(UART_IPA, 4, true, b'h' as u64), Mmio::Ok { value: 0, kick: 0, tx: Some(b'h') });
        assert!(matches!(vm.mmio(UART_IPA + 0xfe0, 4, false, 0), Mmio::Ok { value: 0x11, .. }));
        assert!(matches!(vm.mmio(UART_IPA + 0xfe0, 1, false, 0), Mmio::Ok { value: 0x11, .. }));
        assert_eq!(vm.mmio(UART_IPA, 8, false, 0), Mmio::Abort);
        assert_eq!(vm.mmio(0x2000_0000, 4, false, 0), Mmio::Abort);
        assert_eq!(vm.mmio(GICD_IPA + 2, 4, false, 0), Mmio::Abort, "misaligned");
        assert_eq!(vm.mmio(GICD_IPA, 3, false, 0), Mmio::Abort);
        assert_eq!(vm.mmio(u64::MAX - 3, 4, false, 0), Mmio::Abort);
    }

    #[test]
    fn uart_rx_interrupt_reaches_the_vgic() {
        let mut vm = Vm::new(1);
        vm.mmio(GICD_IPA, 4, true, 2);
        vm.mmio(GICD_IPA + 0x84, 4, true, !0);
        vm.mmio(GICD_IPA + 0x104, 4, true, 1 << 1);
        vm.mmio(UART_IPA + pl011::IMSC, 4, true, (pl011::INT_RX | pl011::INT_RT) as u64);
        assert_eq!(vm.uart_rx(b'x'), 1);
        assert!(vm.vgic.has_deliverable(0));
        assert!(matches!(vm.mmio(UART_IPA, 4, false, 0), Mmio::Ok { value: 0x78, .. }));
        assert!(!vm.vgic.irq(0, UART_INTID).unwrap().level);
    }
}
