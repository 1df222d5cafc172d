//! Checks on the boot arguments the RMMD hands us (TF-A
//! `docs/components/rmm-el3-comms-spec.rst`, "Cold Boot Interface", "Warm Boot
//! Interface", "Boot error handling and return values").  Each failure is the
//! `E_RMM_BOOT_*` code we report to EL3 with `RMM_BOOT_COMPLETE`.

use crate::platform::{REALM_REGION_END, SHARED_BUFFER_SIZE};
use core::ops::Range;
use shared::abi::rmm_el3::{self, *};
use shared::percpu::MAX_CPUS;

/// What a good cold boot told us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColdBoot {
    /// The core count EL3 reported (x2): every CPU id it will use is below it.
    pub cpus: usize,
    /// Physical address of the EL3<->RMM shared buffer (x3).
    pub shared_buffer: u64,
}

/// The RMM-EL3 interface version check: bit 31 and above are RES0, and the
/// major must be ours (a different major breaks compatibility; any minor of
/// our major is compatible with the register conventions we use, which have
/// not changed since 0.1).
pub fn check_interface_version(version: u64) -> Result<(), i64> {
    if version >> 31 != 0 || ifc_major(version) != ifc_major(rmm_el3::RMM_EL3_IFC_VERSION) {
        return Err(E_RMM_BOOT_VERSION_MISMATCH);
    }
    Ok(())
}

fn check_cpu(cpu: u64, cpus: usize) -> Result<usize, i64> {
    // A CPU we have no stack or per-CPU slot for is refused, whatever EL3's count.
    if cpu >= cpus as u64 || cpu >= MAX_CPUS as u64 {
        return Err(E_RMM_BOOT_CPU_ID_OUT_OF_RANGE);
    }
    Ok(cpu as usize)
}

/// Cold boot: x0 = `cpu`, x1 = interface `version`, x2 = `cpus`, x3 =
/// `shared_buffer`.  `image` is where our own image lies in memory.
///
/// The shared buffer must be a whole page of our Realm PAS region, outside our
/// image: anything else is a pointer we must not follow.  A core count above
/// what we have stacks for is accepted (TF-A's qemu reports its maximum, 32,
/// whatever `-smp` says), but a CPU beyond our stacks is then refused when it
/// boots; a count of zero is nonsense.
pub fn check_cold_boot(cpu: u64, version: u64, cpus: u64, shared_buffer: u64, image: Range<u64>) -> Result<ColdBoot, i64> {
    check_interface_version(version)?;
    if cpus == 0 || cpus > u32::MAX as u64 {
        return Err(E_RMM_BOOT_CPUS_OUT_OF_RANGE);
    }
    check_cpu(cpu, cpus as usize)?;
    let size = SHARED_BUFFER_SIZE as u64;
    let fits = shared_buffer.is_multiple_of(size)
        && shared_buffer >= image.start
        && shared_buffer.checked_add(size).is_some_and(|end| end <= REALM_REGION_END)
        && (shared_buffer >= image.end || shared_buffer + size <= image.start);
    if !fits {
        return Err(E_RMM_BOOT_INVALID_SHARED_BUFFER);
    }
    Ok(ColdBoot { cpus: cpus as usize, shared_buffer })
}

/// Warm boot: x0 = `cpu`, x1..x3 RES0.  `cold` is what the cold boot recorded,
/// `None` if there was none (then EL3 broke the protocol).
pub fn check_warm_boot(cpu: u64, cold: Option<&ColdBoot>) -> Result<usize, i64> {
    let cold = cold.ok_or(E_RMM_BOOT_UNKNOWN)?;
    check_cpu(cpu, cold.cpus)
}

/// A console MMIO window from the manifest must not cover our Realm region:
/// mapping it as Device memory over our own image or the shared buffer would
/// break us.  Refused as manifest data error.
pub fn check_console_window(base: u64, size: u64) -> Result<(), i64> {
    use crate::platform::RMM_BASE;
    let end = base.checked_add(size).ok_or(E_RMM_BOOT_MANIFEST_DATA_ERROR)?;
    if end > RMM_BASE && base < REALM_REGION_END {
        return Err(E_RMM_BOOT_MANIFEST_DATA_ERROR);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: Range<u64> = 0x4010_0000..0x4020_0000;
    const BUF: u64 = 0x418f_f000;

    #[test]
    fn qemu_cold_boot_is_accepted() {
        let c = check_cold_boot(0, 0x4, 0x20, BUF, IMAGE).unwrap();
        assert_eq!(c, ColdBoot { cpus: 32, shared_buffer: BUF });
        // Another minor of major 0 is fine too.
        assert!(check_cold_boot(0, 0x2, 4, BUF, IMAGE).is_ok());
    }

    #[test]
    fn interface_major_must_match() {
        for v in [0x1_0004u64, 0x8000_0004, 0x1_0000_0004] {
            assert_eq!(check_cold_boot(0, v, 4, BUF, IMAGE), Err(E_RMM_BOOT_VERSION_MISMATCH), "{v:#x}");
        }
    }

    #[test]
    fn cpu_counts_and_ids() {
        assert_eq!(check_cold_boot(0, 4, 0, BUF, IMAGE), Err(E_RMM_BOOT_CPUS_OUT_OF_RANGE));
        assert_eq!(check_cold_boot(4, 4, 4, BUF, IMAGE), Err(E_RMM_BOOT_CPU_ID_OUT_OF_RANGE));
        assert_eq!(check_cold_boot(MAX_CPUS as u64, 4, 32, BUF, IMAGE), Err(E_RMM_BOOT_CPU_ID_OUT_OF_RANGE));
    }

    #[test]
    fn shared_buffer_must_be_a_realm_page_outside_the_image() {
        for buf in [0, BUF + 8, 0x4015_0000, 0x4000_0000, REALM_REGION_END, !0xfffu64, 0x9000_0000] {
            assert_eq!(check_cold_boot(0, 4, 4, buf, IMAGE), Err(E_RMM_BOOT_INVALID_SHARED_BUFFER), "{buf:#x}");
        }
        assert!(check_cold_boot(0, 4, 4, REALM_REGION_END - 0x1000, IMAGE).is_ok());
    }

    #[test]
    fn console_window_stays_out_of_the_realm_region() {
        assert_eq!(check_console_window(0x0900_0000, 0x1000), Ok(()));
        assert_eq!(check_console_window(REALM_REGION_END, 0x1000), Ok(()));
        assert_eq!(check_console_window(0x4010_0000 - 0x1000, 0x1000), Ok(()));
        for (base, size) in [(0x4010_0000, 0x1000), (0x4000_0000, 0x20_0000), (REALM_REGION_END - 0x1000, 0x1000), (!0xfffu64, 0x2000)] {
            assert_eq!(check_console_window(base, size), Err(E_RMM_BOOT_MANIFEST_DATA_ERROR), "{base:#x}");
        }
    }

    #[test]
    fn warm_boot() {
        let cold = ColdBoot { cpus: 4, shared_buffer: BUF };
        assert_eq!(check_warm_boot(3, Some(&cold)), Ok(3));
        assert_eq!(check_warm_boot(4, Some(&cold)), Err(E_RMM_BOOT_CPU_ID_OUT_OF_RANGE));
        assert_eq!(check_warm_boot(u64::MAX, Some(&cold)), Err(E_RMM_BOOT_CPU_ID_OUT_OF_RANGE));
        assert_eq!(check_warm_boot(1, None), Err(E_RMM_BOOT_UNKNOWN));
        let big = ColdBoot { cpus: 32, shared_buffer: BUF };
        assert_eq!(check_warm_boot(MAX_CPUS as u64, Some(&big)), Err(E_RMM_BOOT_CPU_ID_OUT_OF_RANGE));
    }
}
