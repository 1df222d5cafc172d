//! What to do with an exception taken at EL2 from ns-hyp itself.
//!
//! The one expected case: with `--no-tfa` there is no EL3, and QEMU only
//! emulates `smc` for PSCI function ids; any other `smc #0` is UNDEFINED
//! (DDI0487 D1.x: SMC with no EL3 implemented), taken to EL2 as a synchronous
//! exception with ESR_EL2.EC = 0 ("Unknown reason") and ELR_EL2 pointing at
//! the `smc`.  We complete it as the SMCCC says an unimplemented id completes:
//! x0 = NOT_SUPPORTED (-1) (DEN0028 §5.2), and resume after the instruction.
//! Anything else is a bug: it is logged and the CPU halts.

/// ESR_ELx.EC (bits 31:26), DDI0487 D19 ESR_EL2.
pub fn esr_ec(esr: u64) -> u64 {
    (esr >> 26) & 0x3f
}

/// EC value "Unknown reason" (also UNDEFINED instructions).
pub const EC_UNKNOWN: u64 = 0x00;
/// The encoding of `smc #0`.
pub const SMC_0: u32 = 0xd400_0003;

/// ESR_EL2.EC of a data abort taken at EL2 from EL2.
const EC_DABT_SAME: u64 = 0x25;

/// Whether `esr` is a granule protection fault on a data access at EL2
/// (RME, DDI0615; TF-A leaves SCR_EL3.GPF = 0 so it is reported at our EL):
/// EC 0x25 with DFSC 0b101000 (GPF not on a walk) or 0b100011..0b100111
/// (GPF on a translation table walk, levels -1..3), DDI0487 D19 ESR_ELx.ISS.
/// Always fatal in the product image, with its own report.
pub fn is_gpf(esr: u64) -> bool {
    let dfsc = esr & 0x3f;
    esr_ec(esr) == EC_DABT_SAME && (dfsc == 0b10_1000 || (0b10_0011..=0b10_0111).contains(&dfsc))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrapAction {
    /// Return SMCCC NOT_SUPPORTED in x0 and skip the 4-byte `smc`.
    CompleteSmcNotSupported,
    /// Log ESR/ELR/FAR and halt.
    Fatal,
}

/// Decides on a synchronous exception from EL2.  `insn` is the instruction at
/// ELR_EL2 if ELR points into our own text (the caller checks), else `None`.
pub fn classify_sync(esr: u64, insn: Option<u32>) -> TrapAction {
    if esr_ec(esr) == EC_UNKNOWN && insn == Some(SMC_0) {
        TrapAction::CompleteSmcNotSupported
    } else {
        TrapAction::Fatal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_smc_completes_with_not_supported() {
        assert_eq!(classify_sync(0x0200_0000, Some(SMC_0)), TrapAction::CompleteSmcNotSupported);
    }

    #[test]
    fn everything_else_is_fatal() {
        // An UNDEFINED instruction that is not `smc #0` (e.g. `smc #1`, `hvc #0`).
        assert_eq!(classify_sync(0x0200_0000, Some(0xd400_0023)), TrapAction::Fatal);
        assert_eq!(classify_sync(0x0200_0000, Some(0xd400_0002)), TrapAction::Fatal);
        // ELR outside our text: we do not read it.
        assert_eq!(classify_sync(0x0200_0000, None), TrapAction::Fatal);
        // A data abort at EL2 (EC 0x25) whose ELR happens to hold an smc.
        assert_eq!(classify_sync(0x9600_0045, Some(SMC_0)), TrapAction::Fatal);
        // A trapped SMC (EC 0x17) is not expected at EL2 from EL2.
        assert_eq!(classify_sync(0x5e00_0000, Some(SMC_0)), TrapAction::Fatal);
        // A granule protection fault is fatal too (reported as such by the hook).
        assert_eq!(classify_sync(0x9600_0028, None), TrapAction::Fatal);
        assert!(is_gpf(0x9600_0028));
    }
}
