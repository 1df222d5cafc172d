//! AArch64 EL2 support shared by the three EL2 images (NS-EL2, S-EL2, R-EL2):
//! entry, exception vectors, the guest (lower EL) enter/exit path, EL1 context,
//! MMU enable, counters.  Compiled only for `target_os = "none"`.

pub mod context;
pub mod entry;
pub mod exceptions;
pub mod image;
pub mod mmu;
pub mod regs;
pub mod timer;

pub use context::{El1SysRegs, GuestRegs, PacKeys, SveRegs};
pub use exceptions::{ExceptionFrame, ExceptionKind, enter_guest, unexpected_el2_exception};

/// Defines an image's panic handler: the message on the console, then the CPU parks.
#[macro_export]
macro_rules! quadrant_panic_handler {
    () => {
        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            $crate::console::panic_print(info);
            $crate::arch::halt()
        }
    };
}

/// Parks this CPU forever.
pub fn halt() -> ! {
    loop {
        // SAFETY: `wfe` only waits for an event.
        unsafe { core::arch::asm!("wfe", options(nomem, nostack)) };
    }
}
