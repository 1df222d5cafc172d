//! Saved state of a lower-EL execution context (an SP's vCPU, a guest vCPU, a REC).

/// Registers saved and restored by the enter/exit assembly.  The layout is fixed:
/// the offsets below are used by `exceptions.rs`.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct GuestRegs {
    /// x0..x30.
    pub x: [u64; 31],
    /// Where the guest resumes (ELR_EL2).
    pub elr: u64,
    /// Its PSTATE (SPSR_EL2).
    pub spsr: u64,
    /// Host stack pointer while the guest runs (private to the assembly).
    host_sp: u64,
    /// q0..q31.
    pub q: [u128; 32],
    pub fpsr: u64,
    pub fpcr: u64,
    /// The context's full SVE state ([`SveRegs`]), or 0 while it uses only
    /// FP/SIMD.  When set, the enter/exit assembly saves z0..z31, p0..p15 and
    /// FFR there at every exit, before EL2 code can clobber the upper bits
    /// of the vector registers (a write to Vn zeroes Zn above bit 127,
    /// DDI0487 "SVE and Advanced SIMD register file"), and loads them after
    /// q0..q31 at entry.  CPTR_EL2.TZ must be 0 while it is set.
    pub sve_state: u64,
    _pad: u64,
}

/// A context's SVE register file at the vector length EL2 runs with
/// (ZCR_EL2.LEN = the CPU's largest): z0..z31 at `VL * n`, then p0..p15 at
/// `32 * VL + VL / 8 * n`, then FFR (as `str z/p [.., #n, mul vl]` lay them),
/// and ZCR_EL1 beside, switched in Rust.  Sized for VL = 2048 bits.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct SveRegs {
    pub file: [u8; SVE_FILE_BYTES],
    pub zcr_el1: u64,
}

/// z0..z31 + p0..p15 + FFR at the architectural maximum VL (256 bytes).
pub const SVE_FILE_BYTES: usize = 32 * 256 + 17 * 32;

impl SveRegs {
    pub const fn new() -> Self {
        SveRegs { file: [0; SVE_FILE_BYTES], zcr_el1: 0 }
    }

    /// The state SVE starts with when a context that used FP/SIMD only turns
    /// it on: each Zn's low 128 bits are its Vn (`q`), the rest of the file
    /// is zero, at vector length `vl` bytes (at most 256).  In place: the
    /// file is too large for a small EL2 stack.
    pub fn init_from_fpsimd(&mut self, q: &[u128; 32], vl: usize) {
        self.file.fill(0);
        for (n, v) in q.iter().enumerate() {
            self.file[n * vl..n * vl + 16].copy_from_slice(&v.to_le_bytes());
        }
    }
}

impl Default for SveRegs {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) const OFF_ELR: usize = 248;
pub(crate) const OFF_HOST_SP: usize = 264;
pub(crate) const OFF_Q: usize = 272;
pub(crate) const OFF_FPSR: usize = 784;
pub(crate) const OFF_SVE: usize = 800;
pub(crate) const SIZE: usize = 816;

const _: () = {
    assert!(core::mem::offset_of!(GuestRegs, elr) == OFF_ELR);
    assert!(core::mem::offset_of!(GuestRegs, host_sp) == OFF_HOST_SP);
    assert!(core::mem::offset_of!(GuestRegs, q) == OFF_Q);
    assert!(core::mem::offset_of!(GuestRegs, fpsr) == OFF_FPSR);
    assert!(core::mem::offset_of!(GuestRegs, sve_state) == OFF_SVE);
    assert!(core::mem::size_of::<GuestRegs>() == SIZE);
};

/// SPSR for entering AArch64 EL1h with DAIF masked (DDI0487 C5.2.19).
pub const SPSR_EL1H_DAIF_MASKED: u64 = 0x3c5;

impl GuestRegs {
    pub const fn new() -> Self {
        Self { x: [0; 31], elr: 0, spsr: SPSR_EL1H_DAIF_MASKED, host_sp: 0, q: [0; 32], fpsr: 0, fpcr: 0, sve_state: 0, _pad: 0 }
    }

    /// A context that starts at `entry` in EL1h with `x0 = arg0`.
    pub const fn at_entry(entry: u64, arg0: u64) -> Self {
        let mut r = Self::new();
        r.elr = entry;
        r.x[0] = arg0;
        r
    }
}

impl Default for GuestRegs {
    fn default() -> Self {
        Self::new()
    }
}

/// EL1 system registers of a context, switched in Rust around `enter_guest`
/// when more than one context shares a CPU.
///
/// `repr(C)`: [`El1SysRegs::save`] and [`El1SysRegs::restore`] move the
/// fields in pairs at fixed offsets, in this order.
#[derive(Clone, Copy, Default, Debug)]
#[repr(C)]
pub struct El1SysRegs {
    pub sctlr: u64,
    pub ttbr0: u64,
    pub ttbr1: u64,
    pub tcr: u64,
    pub mair: u64,
    pub amair: u64,
    pub vbar: u64,
    pub sp_el1: u64,
    pub sp_el0: u64,
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
    pub afsr0: u64,
    pub afsr1: u64,
    pub contextidr: u64,
    pub tpidr_el1: u64,
    pub tpidr_el0: u64,
    pub tpidrro_el0: u64,
    pub cpacr: u64,
    pub par: u64,
    pub cntkctl: u64,
    pub csselr: u64,
    pub mdscr: u64,
    pub cntv_ctl: u64,
    pub cntv_cval: u64,
}

impl El1SysRegs {
    /// Reset values for a fresh EL1 context: MMU off, caches off (SCTLR_EL1 RES1 bits only).
    pub const fn reset() -> Self {
        let mut r = Self {
            sctlr: 0x30d0_0800, ttbr0: 0, ttbr1: 0, tcr: 0, mair: 0, amair: 0, vbar: 0, sp_el1: 0,
            sp_el0: 0, elr: 0, spsr: 0, esr: 0, far: 0, afsr0: 0, afsr1: 0, contextidr: 0,
            tpidr_el1: 0, tpidr_el0: 0, tpidrro_el0: 0, cpacr: 0, par: 0, cntkctl: 0, csselr: 0,
            mdscr: 0, cntv_ctl: 0, cntv_cval: 0,
        };
        r.cpacr = 3 << 20; // FPEN: no FP/SIMD traps at EL1/EL0
        r
    }

    /// Captures the current EL1 state.
    ///
    /// One asm block (MRS pairs, STP): separate `read_sysreg!`s and stores
    /// cost ~49 instructions a save, this ~40 (issue P item 3).  The
    /// registers are the fields' EL1 (and EL0) registers, in field order.
    #[inline]
    pub fn save(&mut self) {
        // SAFETY: repr(C), 26 u64 fields (`EL1_SYSREGS_LAYOUT`): the same
        // memory as `[u64; 26]`, borrowed mutably here.
        Self::save_words(unsafe { &mut *(self as *mut Self).cast::<[u64; EL1_SYSREGS_WORDS]>() });
    }

    /// [`El1SysRegs::save`] into its words, in field order (for a context
    /// that keeps them as an array, as rmm's RECs do).
    #[inline]
    pub fn save_words(words: &mut [u64; EL1_SYSREGS_WORDS]) {
        // SAFETY: MRS of EL1 registers has no side effects; the stores go to
        // the 26 words of `words`, which the `&mut` borrow owns.
        unsafe {
            core::arch::asm!(
                "mrs {a}, sctlr_el1", "mrs {b}, ttbr0_el1", "stp {a}, {b}, [{p}, #0]",
                "mrs {a}, ttbr1_el1", "mrs {b}, tcr_el1", "stp {a}, {b}, [{p}, #16]",
                "mrs {a}, mair_el1", "mrs {b}, amair_el1", "stp {a}, {b}, [{p}, #32]",
                "mrs {a}, vbar_el1", "mrs {b}, sp_el1", "stp {a}, {b}, [{p}, #48]",
                "mrs {a}, sp_el0", "mrs {b}, elr_el1", "stp {a}, {b}, [{p}, #64]",
                "mrs {a}, spsr_el1", "mrs {b}, esr_el1", "stp {a}, {b}, [{p}, #80]",
                "mrs {a}, far_el1", "mrs {b}, afsr0_el1", "stp {a}, {b}, [{p}, #96]",
                "mrs {a}, afsr1_el1", "mrs {b}, contextidr_el1", "stp {a}, {b}, [{p}, #112]",
                "mrs {a}, tpidr_el1", "mrs {b}, tpidr_el0", "stp {a}, {b}, [{p}, #128]",
                "mrs {a}, tpidrro_el0", "mrs {b}, cpacr_el1", "stp {a}, {b}, [{p}, #144]",
                "mrs {a}, par_el1", "mrs {b}, cntkctl_el1", "stp {a}, {b}, [{p}, #160]",
                "mrs {a}, csselr_el1", "mrs {b}, mdscr_el1", "stp {a}, {b}, [{p}, #176]",
                "mrs {a}, cntv_ctl_el0", "mrs {b}, cntv_cval_el0", "stp {a}, {b}, [{p}, #192]",
                p = in(reg) words.as_mut_ptr(),
                a = out(reg) _,
                b = out(reg) _,
                options(nostack, preserves_flags),
            );
        }
    }

    /// Loads this state into the EL1 registers.
    ///
    /// One asm block (LDP, MSR pairs, ISB): a separate load per
    /// `write_sysreg!` (each asm statement orders memory) cost ~76
    /// instructions a restore, this ~40 (issue P item 3).
    ///
    /// # Safety
    /// Only while no EL1 code of another context is meant to run on this CPU.
    #[inline]
    pub unsafe fn restore(&self) {
        // SAFETY: repr(C), 26 u64 fields (`EL1_SYSREGS_LAYOUT`): the same
        // memory as `[u64; 26]`; the caller's promise is passed on.
        unsafe { Self::restore_words(&*(self as *const Self).cast::<[u64; EL1_SYSREGS_WORDS]>()) }
    }

    /// [`El1SysRegs::restore`] from its words, in field order.
    ///
    /// # Safety
    /// As [`El1SysRegs::restore`].
    #[inline]
    pub unsafe fn restore_words(words: &[u64; EL1_SYSREGS_WORDS]) {
        // SAFETY: each register written is one of the fields' EL1 (or
        // EL0) registers, which EL2 may write; the new values only take effect
        // for EL1/EL0, which the caller guarantees belong to this context
        // now.  The loads read the 26 words of `words`.
        unsafe {
            core::arch::asm!(
                "ldp {a}, {b}, [{p}, #0]", "msr sctlr_el1, {a}", "msr ttbr0_el1, {b}",
                "ldp {a}, {b}, [{p}, #16]", "msr ttbr1_el1, {a}", "msr tcr_el1, {b}",
                "ldp {a}, {b}, [{p}, #32]", "msr mair_el1, {a}", "msr amair_el1, {b}",
                "ldp {a}, {b}, [{p}, #48]", "msr vbar_el1, {a}", "msr sp_el1, {b}",
                "ldp {a}, {b}, [{p}, #64]", "msr sp_el0, {a}", "msr elr_el1, {b}",
                "ldp {a}, {b}, [{p}, #80]", "msr spsr_el1, {a}", "msr esr_el1, {b}",
                "ldp {a}, {b}, [{p}, #96]", "msr far_el1, {a}", "msr afsr0_el1, {b}",
                "ldp {a}, {b}, [{p}, #112]", "msr afsr1_el1, {a}", "msr contextidr_el1, {b}",
                "ldp {a}, {b}, [{p}, #128]", "msr tpidr_el1, {a}", "msr tpidr_el0, {b}",
                "ldp {a}, {b}, [{p}, #144]", "msr tpidrro_el0, {a}", "msr cpacr_el1, {b}",
                "ldp {a}, {b}, [{p}, #160]", "msr par_el1, {a}", "msr cntkctl_el1, {b}",
                "ldp {a}, {b}, [{p}, #176]", "msr csselr_el1, {a}", "msr mdscr_el1, {b}",
                "ldp {a}, {b}, [{p}, #192]", "msr cntv_ctl_el0, {a}", "msr cntv_cval_el0, {b}",
                "isb",
                p = in(reg) words.as_ptr(),
                a = out(reg) _,
                b = out(reg) _,
                options(nostack, preserves_flags, readonly),
            );
        }
    }
}

/// How many registers [`El1SysRegs`] holds.
pub const EL1_SYSREGS_WORDS: usize = 26;

/// The field offsets `save`/`restore` use: field n at word n.
const EL1_SYSREGS_LAYOUT: () = {
    assert!(core::mem::offset_of!(El1SysRegs, sctlr) == 0);
    assert!(core::mem::offset_of!(El1SysRegs, ttbr0) == 8);
    assert!(core::mem::offset_of!(El1SysRegs, ttbr1) == 16);
    assert!(core::mem::offset_of!(El1SysRegs, tcr) == 24);
    assert!(core::mem::offset_of!(El1SysRegs, mair) == 32);
    assert!(core::mem::offset_of!(El1SysRegs, amair) == 40);
    assert!(core::mem::offset_of!(El1SysRegs, vbar) == 48);
    assert!(core::mem::offset_of!(El1SysRegs, sp_el1) == 56);
    assert!(core::mem::offset_of!(El1SysRegs, sp_el0) == 64);
    assert!(core::mem::offset_of!(El1SysRegs, elr) == 72);
    assert!(core::mem::offset_of!(El1SysRegs, spsr) == 80);
    assert!(core::mem::offset_of!(El1SysRegs, esr) == 88);
    assert!(core::mem::offset_of!(El1SysRegs, far) == 96);
    assert!(core::mem::offset_of!(El1SysRegs, afsr0) == 104);
    assert!(core::mem::offset_of!(El1SysRegs, afsr1) == 112);
    assert!(core::mem::offset_of!(El1SysRegs, contextidr) == 120);
    assert!(core::mem::offset_of!(El1SysRegs, tpidr_el1) == 128);
    assert!(core::mem::offset_of!(El1SysRegs, tpidr_el0) == 136);
    assert!(core::mem::offset_of!(El1SysRegs, tpidrro_el0) == 144);
    assert!(core::mem::offset_of!(El1SysRegs, cpacr) == 152);
    assert!(core::mem::offset_of!(El1SysRegs, par) == 160);
    assert!(core::mem::offset_of!(El1SysRegs, cntkctl) == 168);
    assert!(core::mem::offset_of!(El1SysRegs, csselr) == 176);
    assert!(core::mem::offset_of!(El1SysRegs, mdscr) == 184);
    assert!(core::mem::offset_of!(El1SysRegs, cntv_ctl) == 192);
    assert!(core::mem::offset_of!(El1SysRegs, cntv_cval) == 200);
    assert!(core::mem::size_of::<El1SysRegs>() == EL1_SYSREGS_WORDS * 8);
};
const _: () = EL1_SYSREGS_LAYOUT;

/// Pointer authentication keys of an EL1 context (DDI0487, pointer authentication: APIAKey,
/// APIBKey, APDAKey, APDBKey, APGAKey, Lo/Hi each).  The registers exist only
/// when the CPU implements FEAT_PAuth: check [`PacKeys::implemented`] first.
/// EL3 must leave their use untrapped (SCR_EL3.APK/API, as TF-A does and
/// Linux's boot protocol asks).  Note: spmc switches the Normal world's other
/// EL1 registers around an SP but not these keys; our SPs do not use them.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct PacKeys {
    /// APIAKeyLo/Hi, APIBKeyLo/Hi, APDAKeyLo/Hi, APDBKeyLo/Hi, APGAKeyLo/Hi.
    pub keys: [u64; 10],
}

macro_rules! pac_keys {
    ($m:ident) => {
        $m!(0, S3_0_C2_C1_0); $m!(1, S3_0_C2_C1_1); $m!(2, S3_0_C2_C1_2); $m!(3, S3_0_C2_C1_3);
        $m!(4, S3_0_C2_C2_0); $m!(5, S3_0_C2_C2_1); $m!(6, S3_0_C2_C2_2); $m!(7, S3_0_C2_C2_3);
        $m!(8, S3_0_C2_C3_0); $m!(9, S3_0_C2_C3_1);
    };
}

impl PacKeys {
    /// Whether this CPU has the key registers: any of ID_AA64ISAR1_EL1.APA,
    /// API, GPA, GPI or ID_AA64ISAR2_EL1.APA3, GPA3 non-zero.
    pub fn implemented() -> bool {
        let isar1 = crate::read_sysreg!(id_aa64isar1_el1);
        // ID_AA64ISAR2_EL1 (S3_0_C0_C6_2) reads as zero where it is not implemented.
        let isar2 = crate::read_sysreg!(S3_0_C0_C6_2);
        let f = |v: u64, shift: u32| (v >> shift) & 0xf != 0;
        f(isar1, 4) || f(isar1, 8) || f(isar1, 24) || f(isar1, 28) || f(isar2, 8) || f(isar2, 12)
    }

    /// Captures the current keys.  Only where [`PacKeys::implemented`].
    pub fn save(&mut self) {
        macro_rules! rd { ($i:expr, $r:ident) => { self.keys[$i] = crate::read_sysreg!($r); }; }
        pac_keys!(rd);
    }

    /// Loads these keys.  Only where [`PacKeys::implemented`].
    ///
    /// # Safety
    /// Only where [`PacKeys::implemented`] (the key registers are UNDEFINED
    /// otherwise), and only while no EL1/EL0 code of another context is meant
    /// to run on this CPU (its signed pointers would no longer authenticate).
    pub unsafe fn restore(&self) {
        macro_rules! wr {
            ($i:expr, $r:ident) => {
                // SAFETY: the caller checked FEAT_PAuth (the key registers
                // exist) and guarantees no other context's EL1/EL0 code will
                // use the old keys; the keys only affect EL1/EL0 pointer
                // authentication, not this EL2 code.
                unsafe { crate::write_sysreg!($r, self.keys[$i]) };
            };
        }
        pac_keys!(wr);
        crate::arch::regs::isb();
    }
}
