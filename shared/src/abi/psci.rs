//! PSCI (DEN0022) function ids and return codes, from the `smccc` crate.
pub use smccc::psci::{
    PSCI_AFFINITY_INFO_64, PSCI_CPU_OFF, PSCI_CPU_ON_64, PSCI_CPU_SUSPEND_64, PSCI_FEATURES,
    PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION,
};
pub use smccc::psci::error as status;
// Also the SMC32 forms and MIGRATE_INFO_TYPE, which a hypervisor answers for its guests.
pub use smccc::psci::{PSCI_AFFINITY_INFO_32, PSCI_CPU_ON_32, PSCI_CPU_SUSPEND_32, PSCI_MIGRATE_INFO_TYPE};
