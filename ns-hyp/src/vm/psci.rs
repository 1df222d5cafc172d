//! The guest's firmware interface: PSCI 1.1 (DEN0022E) over HVC or SMC, plus
//! the few SMCCC (DEN0028) calls a kernel makes.  FF-A calls reach this only
//! when there is no SPMC (else `vm::ffa`, the proxy, takes them) and are
//! refused with FFA_ERROR NOT_SUPPORTED (DEN0077 §7.2); RMI calls and
//! everything else get SMCCC NOT_SUPPORTED.

use shared::abi::ffa::{FfaError, FuncId};
use shared::abi::psci::status;
pub use shared::abi::psci::{
    PSCI_AFFINITY_INFO_32 as AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64 as AFFINITY_INFO_64, PSCI_CPU_OFF as CPU_OFF,
    PSCI_CPU_ON_32 as CPU_ON_32, PSCI_CPU_ON_64 as CPU_ON_64, PSCI_CPU_SUSPEND_32 as CPU_SUSPEND_32,
    PSCI_CPU_SUSPEND_64 as CPU_SUSPEND_64, PSCI_FEATURES, PSCI_MIGRATE_INFO_TYPE as MIGRATE_INFO_TYPE,
    PSCI_SYSTEM_OFF as SYSTEM_OFF, PSCI_SYSTEM_RESET as SYSTEM_RESET, PSCI_VERSION,
};
use shared::abi::smccc_id::{NOT_SUPPORTED, SMCCC_ARCH_FEATURES, SMCCC_VERSION};

/// The null call ns-hyp answers at once (bench: guest null-HVC round trip).
#[cfg(any(test, feature = "test-modes"))]
pub const QUADRANT_NULL_HVC: u32 = 0xc600_0000;

/// PSCI return codes (DEN0022E §5.2.2), as the 64-bit values x0 carries.
pub const SUCCESS: i64 = status::SUCCESS as i64;
pub const INVALID_PARAMETERS: i64 = status::INVALID_PARAMETERS as i64;
pub const ALREADY_ON: i64 = status::ALREADY_ON as i64;
pub const ON_PENDING: i64 = status::ON_PENDING as i64;
/// MIGRATE_INFO_TYPE: "Trusted OS is either not present or does not require migration".
const MIGRATE_NOT_REQUIRED: i64 = 2;

/// FFA_ERROR (SMC32 form).
pub const FFA_ERROR: u64 = FuncId::Error32 as u64;
/// FF-A NOT_SUPPORTED (DEN0077, FF-A status codes), sign-extended as x2 carries it.
pub const FFA_NOT_SUPPORTED: u64 = FfaError::NotSupported as i64 as u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Power {
    Off,
    /// CPU_ON accepted, the vCPU has not run yet.
    OnPending { entry: u64, context: u64 },
    On,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Complete the call with these x0..x3.
    Return([u64; 4]),
    /// Start `target` at `entry` with x0 = `context`, then return SUCCESS.
    Start { target: usize, entry: u64, context: u64 },
    /// The calling vCPU powers down (no return).
    CpuOff,
    /// Like WFI, then return SUCCESS (DEN0022E §5.4: a standby power state
    /// may return at once).
    Suspend,
    SystemOff,
    SystemReset,
}

fn ret(v: i64) -> Action {
    Action::Return([v as u64, 0, 0, 0])
}

/// The vCPU index a PSCI target MPIDR names (guest MPIDRs are Aff0 = index).
fn target(mpidr: u64, nvcpus: usize) -> Option<usize> {
    let m = mpidr & 0xff_00ff_ffff; // Aff3..Aff0
    (m < nvcpus as u64).then_some(m as usize)
}

/// Decides one guest call `fid` with arguments x1..x3.
pub fn handle(fid: u64, x: [u64; 3], power: &[Power]) -> Action {
    // SMC32 calls carry their arguments in w registers (DEN0028 §3.1).
    let fid32 = fid as u32;
    let smc64 = fid32 & (1 << 30) != 0;
    let arg = |i: usize| if smc64 { x[i] } else { x[i] & 0xffff_ffff };
    if fid >> 32 != 0 {
        return ret(NOT_SUPPORTED as i64);
    }
    match fid32 {
        PSCI_VERSION => ret(0x1_0001), // 1.1
        // SMCCC 1.2: ARCH_FEATURES exists, and x0..x17 carry FF-A's arguments
        // and results (Linux's FF-A driver wants 1.2 at least).
        SMCCC_VERSION => ret(0x1_0002),
        SMCCC_ARCH_FEATURES => ret(NOT_SUPPORTED as i64),
        CPU_SUSPEND_32 | CPU_SUSPEND_64 => Action::Suspend,
        CPU_OFF => Action::CpuOff,
        CPU_ON_32 | CPU_ON_64 => match target(arg(0), power.len()) {
            None => ret(INVALID_PARAMETERS),
            Some(t) => match power[t] {
                Power::On => ret(ALREADY_ON),
                Power::OnPending { .. } => ret(ON_PENDING),
                Power::Off => Action::Start { target: t, entry: arg(1), context: arg(2) },
            },
        },
        AFFINITY_INFO_32 | AFFINITY_INFO_64 => {
            // Only level 0 (one vCPU) is answerable (§5.7.1).
            if arg(1) != 0 {
                return ret(INVALID_PARAMETERS);
            }
            match target(arg(0), power.len()) {
                None => ret(INVALID_PARAMETERS),
                Some(t) => ret(match power[t] {
                    Power::On => 0,
                    Power::Off => 1,
                    Power::OnPending { .. } => 2,
                }),
            }
        }
        MIGRATE_INFO_TYPE => ret(MIGRATE_NOT_REQUIRED),
        SYSTEM_OFF => Action::SystemOff,
        SYSTEM_RESET => Action::SystemReset,
        PSCI_FEATURES => {
            let f = arg(0) as u32;
            // SMCCC_VERSION too: a caller learns from PSCI_FEATURES that it
            // may ask it (DEN0028 §7.2.1); Linux takes SMCCC v1.0 otherwise,
            // and then has no SMCCC conduit for its FF-A driver.
            let known = matches!(
                f,
                PSCI_VERSION | CPU_SUSPEND_32 | CPU_SUSPEND_64 | CPU_OFF | CPU_ON_32 | CPU_ON_64 | AFFINITY_INFO_32
                    | AFFINITY_INFO_64 | MIGRATE_INFO_TYPE | SYSTEM_OFF | SYSTEM_RESET | PSCI_FEATURES | SMCCC_VERSION
            );
            // CPU_SUSPEND: flags 0 = original power_state format, no OS-initiated mode (§5.15.2).
            ret(if known { SUCCESS } else { NOT_SUPPORTED as i64 })
        }
        // The bench's null call exists only in the test flavour.
        #[cfg(any(test, feature = "test-modes"))]
        QUADRANT_NULL_HVC => ret(SUCCESS),
        // FF-A (DEN0077 §13: 0x84000060..0x840000FF and their SMC64 forms).
        // FFA_VERSION answers NOT_SUPPORTED in w0 itself, not as FFA_ERROR (DEN0077 v1.2, FFA_VERSION).
        f if f == FuncId::Version as u32 => Action::Return([NOT_SUPPORTED as u32 as u64, 0, 0, 0]),
        f if (0x60..=0xff).contains(&(f & 0xffff)) && (f & !0x4000_0000) >> 16 == 0x8400 => {
            Action::Return([FFA_ERROR, 0, FFA_NOT_SUPPORTED, 0])
        }
        _ => ret(NOT_SUPPORTED as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_OFF: [Power; 4] = [Power::On, Power::Off, Power::Off, Power::Off];

    #[test]
    fn version_and_features() {
        assert_eq!(handle(PSCI_VERSION as u64, [0; 3], &ALL_OFF), Action::Return([0x1_0001, 0, 0, 0]));
        assert_eq!(handle(PSCI_FEATURES as u64, [CPU_ON_64 as u64, 0, 0], &ALL_OFF), Action::Return([0, 0, 0, 0]));
        assert_eq!(handle(PSCI_FEATURES as u64, [0x8400_0012, 0, 0], &ALL_OFF), Action::Return([u64::MAX, 0, 0, 0]));
        assert_eq!(handle(PSCI_FEATURES as u64, [SMCCC_VERSION as u64, 0, 0], &ALL_OFF), Action::Return([0, 0, 0, 0]));
    }

    #[test]
    fn cpu_on_and_affinity() {
        assert_eq!(handle(CPU_ON_64 as u64, [2, 0x4020_0000, 7], &ALL_OFF), Action::Start { target: 2, entry: 0x4020_0000, context: 7 });
        assert_eq!(handle(CPU_ON_64 as u64, [0, 0x4020_0000, 7], &ALL_OFF), Action::Return([ALREADY_ON as u64, 0, 0, 0]));
        let pending = [Power::On, Power::OnPending { entry: 1, context: 2 }, Power::Off, Power::Off];
        assert_eq!(handle(CPU_ON_64 as u64, [1, 0, 0], &pending), Action::Return([ON_PENDING as u64, 0, 0, 0]));
        assert_eq!(handle(CPU_ON_64 as u64, [4, 0, 0], &ALL_OFF), Action::Return([INVALID_PARAMETERS as u64, 0, 0, 0]));
        assert_eq!(handle(CPU_ON_64 as u64, [0x100, 0, 0], &ALL_OFF), Action::Return([INVALID_PARAMETERS as u64, 0, 0, 0]));
        // SMC32 CPU_ON only sees the low words.
        assert_eq!(handle(CPU_ON_32 as u64, [1 | (1 << 32), 0x1_4020_0000, 0], &ALL_OFF), Action::Start { target: 1, entry: 0x4020_0000, context: 0 });
        assert_eq!(handle(AFFINITY_INFO_64 as u64, [0, 0, 0], &ALL_OFF), Action::Return([0, 0, 0, 0]));
        assert_eq!(handle(AFFINITY_INFO_64 as u64, [1, 0, 0], &ALL_OFF), Action::Return([1, 0, 0, 0]));
        assert_eq!(handle(AFFINITY_INFO_64 as u64, [1, 0, 0], &pending), Action::Return([2, 0, 0, 0]));
        assert_eq!(handle(AFFINITY_INFO_64 as u64, [1, 1, 0], &ALL_OFF), Action::Return([INVALID_PARAMETERS as u64, 0, 0, 0]));
    }

    #[test]
    fn power_calls() {
        assert_eq!(handle(CPU_OFF as u64, [0; 3], &ALL_OFF), Action::CpuOff);
        assert_eq!(handle(SYSTEM_OFF as u64, [0; 3], &ALL_OFF), Action::SystemOff);
        assert_eq!(handle(SYSTEM_RESET as u64, [0; 3], &ALL_OFF), Action::SystemReset);
        assert_eq!(handle(CPU_SUSPEND_64 as u64, [0; 3], &ALL_OFF), Action::Suspend);
    }

    #[test]
    fn ffa_rmi_and_unknown_are_refused() {
        assert_eq!(handle(0x8400_0063, [0x1_0002, 0, 0], &ALL_OFF), Action::Return([u32::MAX as u64, 0, 0, 0]), "FFA_VERSION");
        for f in [0x8400_0069u64, 0xc400_006f, 0x8400_00ff] {
            assert_eq!(handle(f, [0; 3], &ALL_OFF), Action::Return([FFA_ERROR, 0, FFA_NOT_SUPPORTED, 0]), "{f:#x}");
        }
        for f in [0xc400_0150u64, 0xc400_0190, 0x8400_0050, 0xdead_beef, 0x1_8400_0000, u64::MAX] {
            assert_eq!(handle(f, [0; 3], &ALL_OFF), Action::Return([u64::MAX, 0, 0, 0]), "{f:#x}");
        }
    }
}
