//! Which physical interrupts the SPMC makes Secure, from the partition
//! manifests, behind a small trait so the plan is host-tested; the target
//! implements it with the `arm-gic` crate (GICD/GICR programming,
//! `arch/platform.rs`).
//!
//! Binding (TF-A docs/components/ffa-manifest-binding.rst, device-regions
//! `interrupts = <id attributes>`): attributes [7:0] priority, [8] security
//! state (1 Secure), [9] 1 level / 0 edge, [11:10] type (0 SGI, 1 PPI, 2 SPI).

use crate::ffa::interrupts::SEL2_PHYS_TIMER_INTID;
use crate::partition::PartitionManifest;

/// Priority of the SPMC's own timer: high in the Secure half (Secure
/// priorities are below 0x80, TF-A's GIC_HIGHEST_SEC_PRIORITY is 0x00).
pub const TIMER_PRIORITY: u8 = 0x10;

/// One interrupt to configure as Group 1 Secure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecureInterrupt {
    pub intid: u32,
    pub priority: u8,
    pub level: bool,
}

impl SecureInterrupt {
    /// SGIs and PPIs are per PE (redistributor), SPIs global (distributor).
    pub fn is_private(&self) -> bool {
        self.intid < 32
    }
}

pub trait SecureInterruptController {
    /// Makes `irq` Group 1 Secure, with its priority and trigger, enabled;
    /// a private interrupt on PE `cpu`'s redistributor, an SPI routed to `cpu`.
    #[allow(clippy::result_unit_err)]
    fn configure_secure(&mut self, irq: SecureInterrupt, cpu: usize) -> Result<(), ()>;
    /// Makes private interrupt `intid` of PE `cpu` Group 1 Non-secure (the
    /// SRI: TF-A's QEMU platform makes SGIs 8..15 Secure).
    #[allow(clippy::result_unit_err)]
    fn configure_non_secure(&mut self, _intid: u32, _cpu: usize) -> Result<(), ()> {
        Ok(())
    }
}

/// Decodes a manifest interrupt; None if the manifest says Non-secure (bit 8
/// clear): the SPMC leaves those alone.
pub fn from_manifest(intid: u32, attributes: u32) -> Option<SecureInterrupt> {
    if attributes & (1 << 8) == 0 {
        return None;
    }
    Some(SecureInterrupt { intid, priority: (attributes & 0xff) as u8, level: attributes & (1 << 9) != 0 })
}

/// Configures, on PE `cpu`: the SPMC's Secure EL2 physical timer (backs the
/// SPs' emulated timers) and every Secure interrupt of every manifest
/// (private ones on this PE; SPIs only from the boot PE, routed to it).
/// Returns how many were configured; failures are logged and skipped.
pub fn configure<'a>(manifests: impl Iterator<Item = &'a PartitionManifest>, cpu: usize, boot_cpu: bool, gic: &mut dyn SecureInterruptController) -> usize {
    let mut n = 0;
    let timer = SecureInterrupt { intid: SEL2_PHYS_TIMER_INTID, priority: TIMER_PRIORITY, level: true };
    if gic.configure_secure(timer, cpu).is_ok() {
        n += 1;
    }
    // The Schedule Receiver Interrupt is the Normal world's (notifications).
    if gic.configure_non_secure(crate::ffa::notifications::SRI_INTID, cpu).is_err() {
        log::warn!("SRI (SGI {}) could not be made Non-secure", crate::ffa::notifications::SRI_INTID);
    }
    for m in manifests {
        for d in m.device_regions() {
            for &(intid, attributes) in &d.interrupts[..d.interrupt_count] {
                let Some(irq) = from_manifest(intid, attributes) else { continue };
                if !irq.is_private() && !boot_cpu {
                    continue;
                }
                match gic.configure_secure(irq, cpu) {
                    Ok(()) => n += 1,
                    Err(()) => log::warn!("SP {:#06x}: interrupt {} could not be made Secure", m.id, intid),
                }
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::Uuid;

    struct Fake(Vec<(SecureInterrupt, usize)>);
    impl SecureInterruptController for Fake {
        fn configure_secure(&mut self, irq: SecureInterrupt, cpu: usize) -> Result<(), ()> {
            self.0.push((irq, cpu));
            Ok(())
        }
    }

    #[test]
    fn timer_and_manifest_interrupts() {
        let a = PartitionManifest::for_test("a", 0x8001, Uuid([1, 1, 1, 1]), 1, 1)
            // SPI 60, Secure, level, priority 0x20
            .with_device_interrupt_for_test(0x0910_0000, 60)
            .with_attributes_for_test(0, (2 << 10) | (1 << 9) | (1 << 8) | 0x20);
        let b = PartitionManifest::for_test("b", 0x8002, Uuid([2, 2, 2, 2]), 1, 1)
            // Non-secure: left alone.
            .with_device_interrupt_for_test(0x0911_0000, 61)
            .with_attributes_for_test(0, 0x20);
        let mut f = Fake(Vec::new());
        assert_eq!(configure([&a, &b].into_iter(), 0, true, &mut f), 2);
        assert_eq!(f.0[0].0, SecureInterrupt { intid: 20, priority: TIMER_PRIORITY, level: true });
        assert_eq!(f.0[1].0, SecureInterrupt { intid: 60, priority: 0x20, level: true });
        // On a secondary PE only private interrupts (here: the timer).
        let mut f = Fake(Vec::new());
        assert_eq!(configure([&a, &b].into_iter(), 2, false, &mut f), 1);
        assert_eq!(f.0, vec![(SecureInterrupt { intid: 20, priority: TIMER_PRIORITY, level: true }, 2)]);
        assert!(from_manifest(30, 0x80).is_none());
    }
}
