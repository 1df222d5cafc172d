//! System register access.

/// Reads a system register by name: `read_sysreg!(esr_el2)`.
#[macro_export]
macro_rules! read_sysreg {
    ($reg:ident) => {{
        let v: u64;
        // SAFETY: reading a system register has no memory effects.
        unsafe { core::arch::asm!(concat!("mrs {}, ", stringify!($reg)), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// Writes a system register by name: `write_sysreg!(vbar_el2, v)`.
/// Unsafe: the caller states why this write keeps the machine consistent.
#[macro_export]
macro_rules! write_sysreg {
    ($reg:ident, $val:expr) => {{
        let v: u64 = $val;
        core::arch::asm!(concat!("msr ", stringify!($reg), ", {}"), in(reg) v, options(nostack, preserves_flags));
    }};
}

/// `isb`.
pub fn isb() {
    // SAFETY: a barrier has no memory effects.
    unsafe { core::arch::asm!("isb", options(nostack, preserves_flags)) };
}

/// `dsb sy`.
pub fn dsb_sy() {
    // SAFETY: a barrier has no memory effects.
    unsafe { core::arch::asm!("dsb sy", options(nostack, preserves_flags)) };
}
