//! EL2 configuration for running the guest, as values built from the
//! register fields' names (`aarch64-cpu`); `crate::guest` writes them.

use aarch64_cpu::registers::HCR_EL2;

/// HCR_EL2 for a Linux guest (DDI0487, HCR_EL2): Stage-2 on (VM), set/way
/// invalidation as clean+invalidate (SWIO), physical FIQ/IRQ/SError to EL2
/// (FMO/IMO/AMO, which also enables the virtual interrupts), broadcast TLB and
/// cache maintenance (FB, BSU = inner shareable), trap WFI/WFE (TWI/TWE), ID
/// group 3 (TID3), SMC (TSC), ACTLR (TACR); EL1 is AArch64 (RW); pointer
/// authentication instructions and keys not trapped (API/APK); with `mte`,
/// EL1/EL0 may access Allocation Tags (ATA, FEAT_MTE2; without it every tag
/// access traps and tags read as zero).
pub fn hcr(mte: bool) -> u64 {
    (HCR_EL2::VM::SET
        + HCR_EL2::SWIO::SET
        + HCR_EL2::FMO::SET
        + HCR_EL2::IMO::SET
        + HCR_EL2::AMO::SET
        + HCR_EL2::FB::SET
        + HCR_EL2::BSU::InnerShareable
        + HCR_EL2::TWI::SET
        + HCR_EL2::TWE::SET
        + HCR_EL2::TID3::SET
        + HCR_EL2::TSC::SET
        + HCR_EL2::TACR::SET
        + HCR_EL2::RW::SET
        + HCR_EL2::APK::SET
        + HCR_EL2::API::SET)
        .value
        | if mte { HCR_EL2::ATA::SET.value } else { 0 }
}

#[cfg(test)]
mod tests {
    /// The bits ns-hyp has always set (VM, SWIO, FMO, IMO, AMO, FB, BSU = 0b01,
    /// TWI, TWE, TID3, TSC, TACR, RW, APK, API).
    #[test]
    fn hcr_bits() {
        let bits = [0, 1, 3, 4, 5, 9, 10, 13, 14, 18, 19, 21, 31, 40, 41];
        let hcr = bits.iter().fold(0u64, |v, b| v | 1 << b);
        assert_eq!(super::hcr(false), hcr);
        assert_eq!(super::hcr(true), hcr | 1 << 56, "ATA with MTE");
    }
}
