//! Facts about the one platform this RMM runs on: TF-A 2.12.1's `qemu` platform
//! on QEMU `virt` (`plat/qemu/qemu/include/platform_def.h`, `qemu_pas_def.h`).

/// Where BL2 loads us and the RMMD enters us (REALM_DRAM_BASE).
pub const RMM_BASE: u64 = 0x4010_0000;
/// The Realm PAS region the GPT gives the RMM: our image plus, in its last
/// 4 KiB, the EL3<->RMM shared buffer (REALM_DRAM_SIZE, 24 MiB).
pub const REALM_REGION_SIZE: u64 = 0x0180_0000;
pub const REALM_REGION_END: u64 = RMM_BASE + REALM_REGION_SIZE;

/// Size of the EL3<->RMM shared buffer (rmm-el3-comms-spec "Cold Boot Interface": one 4 KiB page).
pub const SHARED_BUFFER_SIZE: usize = 0x1000;

/// QEMU virt's PL011 (UART0): the console when the boot manifest names none,
/// and the one we print early boot errors to.  Its GPT entry is GPI_ANY, so
/// R-EL2 may reach it with the MMU off.
pub const FALLBACK_UART: u64 = 0x0900_0000;
