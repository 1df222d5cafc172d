//! The Normal world's side of Realm isolation (DEN0137 RMM 1.0 A2.1 and the
//! RME GPT, DDI0615): once a granule is delegated it is in the Realm PAS,
//! and a Non-secure access to it fails its granule protection check.  TF-A
//! leaves SCR_EL3.GPF = 0, so the fault is not taken to EL3 but reported at
//! our EL as a Data Abort (ESR_EL2.EC 0x25, "taken without a change in
//! Exception level") with a Granule Protection Fault status code
//! (DDI0487 D19 ESR_ELx.ISS.DFSC: 0b101000, not on a translation table walk;
//! 0b100011..0b100111 on a walk, levels -1..3).

pub use crate::trap::is_gpf;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpf_status_codes() {
        assert!(is_gpf(0x9600_0028)); // EC 0x25, IL, DFSC GPF
        assert!(is_gpf(0x9600_0068)); // WnR set
        assert!(is_gpf(0x9600_0025)); // on a walk, level 2
        assert!(!is_gpf(0x9600_0007)); // translation fault level 3
        assert!(!is_gpf(0x9200_0028)); // EC 0x24: from a lower EL
        assert!(!is_gpf(0x9600_0010)); // external abort
    }
}
