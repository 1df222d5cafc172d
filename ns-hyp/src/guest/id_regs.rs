//! Reading the hardware's ID group 3 registers by encoding (op0=3, op1=0,
//! CRn=0, CRm=1..7, op2=0..7), for the guest's trapped reads (HCR_EL2.TID3).

macro_rules! id_reg {
    ($crm:literal, $op2:literal) => {{
        let v: u64;
        // SAFETY: reading an ID register has no side effects; unallocated
        // encodings in this space read as zero (DDI0487 D19.2 "Reserved ID registers").
        unsafe {
            core::arch::asm!(concat!("mrs {}, S3_0_C0_C", stringify!($crm), "_", stringify!($op2)), out(reg) v, options(nomem, nostack, preserves_flags))
        };
        v
    }};
}

macro_rules! row {
    ($crm:literal, $op2:expr) => {
        match $op2 {
            0 => id_reg!($crm, 0), 1 => id_reg!($crm, 1), 2 => id_reg!($crm, 2), 3 => id_reg!($crm, 3),
            4 => id_reg!($crm, 4), 5 => id_reg!($crm, 5), 6 => id_reg!($crm, 6), _ => id_reg!($crm, 7),
        }
    };
}

/// The hardware value of ID register (CRm, op2), CRm in 1..=7.
pub fn read_id(crm: u8, op2: u8) -> u64 {
    match crm {
        1 => row!(1, op2),
        2 => row!(2, op2),
        3 => row!(3, op2),
        4 => row!(4, op2),
        5 => row!(5, op2),
        6 => row!(6, op2),
        _ => row!(7, op2),
    }
}
