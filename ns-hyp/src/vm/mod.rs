//! The virtual machine ns-hyp runs: its configuration, address map, device
//! tree, and the emulated devices (vGICv3, PL011, PL031, virtio-blk) with the
//! firmware interface (PSCI).  Everything here is plain state and logic,
//! tested on the host; `crate::guest` runs it on the hardware.

pub mod boot_split;
pub mod config;
pub mod console;
pub mod decode;
pub mod dtb;
pub mod el2;
pub mod exit;
pub mod ffa;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod idregs;
pub mod its;
pub mod layout;
pub mod pl011;
pub mod pl031;
pub mod placement;
pub mod psci;
pub mod sched;
pub mod stats;
pub mod sysreg;
pub mod teardown;
pub mod timer;
pub mod vgic;
pub mod net_switch;
pub mod virtio_blk;
pub mod virtio_mmio;
pub mod virtio_net;
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
    pub rtc: pl031::Pl031,
    /// Seconds since the epoch: the RTC's time source (`crate::wallclock`
    /// on the target; 0 until set).
    pub clock: fn() -> u64,
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
        Vm { nvcpus, vgic: Vgic::new(nvcpus), uart: pl011::Pl011::new(), rtc: pl031::Pl031::new(), clock: || 0, power, its: its::Its::new() }
    }

    fn uart_line(&mut self) -> Kick {
        let l = self.uart.line();
        self.vgic.set_level(UART_INTID, l)
    }

    /// Looks at the RTC's match interrupt without a guest access; returns
    /// the vCPUs to kick if its line changed.
    pub fn rtc_poll(&mut self) -> Kick {
        let l = self.rtc.poll((self.clock)());
        self.vgic.set_level(RTC_INTID, l)
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
        if in_range(RTC_IPA, RTC_SIZE) {
            // PL031: 32-bit registers; any other access is RAZ/WI in the model.
            let (off, now) = (ipa - RTC_IPA, (self.clock)());
            let v = if write {
                self.rtc.write(off, size, value as u32, now);
                0
            } else {
                self.rtc.read(off, size, now) as u64
            };
            let kick = self.vgic.set_level(RTC_INTID, self.rtc.line());
            return ok(v, kick);
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

    static NOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_767_225_600);
    fn test_clock() -> u64 {
        NOW.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn rtc_reads_the_clock_and_its_match_reaches_the_vgic() {
        let mut vm = Vm::new(1);
        vm.clock = test_clock;
        let t0 = test_clock();
        assert_eq!(vm.mmio(RTC_IPA + pl031::DR, 4, false, 0), Mmio::Ok { value: t0, kick: 0, tx: None });
        assert!(matches!(vm.mmio(RTC_IPA + 0xfe0, 4, false, 0), Mmio::Ok { value: 0x31, .. }));
        assert!(matches!(vm.mmio(RTC_IPA + 0xffc, 4, false, 0), Mmio::Ok { value: 0xb1, .. }));
        // Odd sizes and offsets: RAZ/WI, not an abort.
        assert_eq!(vm.mmio(RTC_IPA + 0xfe0, 1, false, 0), Mmio::Ok { value: 0, kick: 0, tx: None });
        assert_eq!(vm.mmio(RTC_IPA + pl031::DR, 8, false, 0), Mmio::Ok { value: 0, kick: 0, tx: None });
        assert_eq!(vm.mmio(RTC_IPA + 2, 2, true, 0xffff), Mmio::Ok { value: 0, kick: 0, tx: None });
        assert_eq!(vm.mmio(RTC_IPA + 3, 4, false, 0), Mmio::Abort, "misaligned, as for every device");
        // Enable SPI 2 at the vGIC, arm the match 2 s ahead and unmask it.
        vm.mmio(GICD_IPA, 4, true, 2);
        vm.mmio(GICD_IPA + 0x84, 4, true, !0);
        vm.mmio(GICD_IPA + 0x104, 4, true, 1 << (RTC_INTID - 32));
        vm.mmio(RTC_IPA + pl031::MR, 4, true, t0 + 2);
        vm.mmio(RTC_IPA + pl031::IMSC, 4, true, pl031::INT as u64);
        assert_eq!(vm.rtc_poll(), 0);
        NOW.store(t0 + 2, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(vm.rtc_poll(), 1);
        assert!(vm.vgic.irq(0, RTC_INTID).unwrap().level);
        vm.mmio(RTC_IPA + pl031::ICR, 4, true, 1);
        assert!(!vm.vgic.irq(0, RTC_INTID).unwrap().level);
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
