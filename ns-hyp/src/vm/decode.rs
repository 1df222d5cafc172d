//! Decoding a guest's MMIO access from a Stage-2 data abort.
//!
//! With ESR_EL2.ISS.ISV = 1 the syndrome describes the access (DDI0487
//! ESR_EL2, ISS encoding for a Data Abort: SAS, SSE, SRT, SF, WnR).
//! With ISV = 0 (e.g. LDP/STP, or an access with base writeback) we decode the
//! instruction ourselves, for the general-purpose load/store forms of
//! DDI0487 "Loads and Stores" (A64 instruction set encoding) that a kernel's MMIO accessors can
//! produce; anything else (SIMD/FP registers, exclusives, atomics, prefetch,
//! unallocated or CONSTRAINED UNPREDICTABLE encodings) is refused, and the
//! caller injects an abort into the guest rather than guess.

/// One decoded MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub write: bool,
    /// Bytes per register transferred: 1, 2, 4 or 8.
    pub size: u8,
    /// Transfer register (31 = XZR/WZR).
    pub rt: u8,
    /// Second register of a pair (LDP/STP), transferred at address + size.
    pub rt2: Option<u8>,
    /// Sign-extend a load to the destination width.
    pub sign_extend: bool,
    /// The destination is a 64-bit X register (else a W register: upper half zeroed).
    pub sf: bool,
    /// Base register update, for the pre/post-indexed forms.
    pub writeback: Option<Writeback>,
    /// The address is not the base register: for pairs, the caller computes
    /// the first element's address as base (+ offset unless post-indexed).
    pub base: Base,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Writeback {
    /// Base register (31 = the current stack pointer).
    pub rn: u8,
    /// Added to the base after the access.
    pub offset: i64,
    /// Post-indexed: the access used the old base.
    pub post: bool,
}

/// How the accessed address relates to the base register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Base {
    pub rn: u8,
    /// Offset of the (first) accessed element from the base; 0 for post-index.
    pub offset: i64,
    /// The offset is a register (register-offset form): the address can only be taken from FAR.
    pub register_offset: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// ISV=0 and the instruction is not a form we emulate.
    Unsupported,
    /// An unallocated or CONSTRAINED UNPREDICTABLE encoding.
    Malformed,
}

fn bits(v: u64, hi: u32, lo: u32) -> u64 {
    (v >> lo) & ((1u64 << (hi - lo + 1)) - 1)
}

fn sext(v: u64, width: u32) -> i64 {
    let shift = 64 - width;
    ((v << shift) as i64) >> shift
}

/// From an ISV=1 syndrome (the ISS field of ESR_EL2, bits 24:0).
pub fn from_syndrome(iss: u64) -> Option<Access> {
    if bits(iss, 24, 24) == 0 {
        return None;
    }
    let rt = bits(iss, 20, 16) as u8;
    Some(Access {
        write: bits(iss, 6, 6) == 1,
        size: 1 << bits(iss, 23, 22),
        rt,
        rt2: None,
        sign_extend: bits(iss, 21, 21) == 1,
        sf: bits(iss, 15, 15) == 1,
        writeback: None,
        base: Base { rn: 0, offset: 0, register_offset: true },
    })
}

/// Decodes the A64 instruction `insn` (ISV=0 path).
pub fn from_instruction(insn: u32) -> Result<Access, DecodeError> {
    let i = insn as u64;
    // Load/store pair: op0 x0 1 0 1 V(26)=0 ...: bits 29:27 = 101.
    if bits(i, 29, 27) == 0b101 {
        return pair(i);
    }
    // Single register: bits 29:27 = 111.
    if bits(i, 29, 27) != 0b111 {
        return Err(DecodeError::Unsupported);
    }
    if bits(i, 26, 26) == 1 {
        return Err(DecodeError::Unsupported); // SIMD&FP register
    }
    let size = bits(i, 31, 30);
    let opc = bits(i, 23, 22);
    let rt = bits(i, 4, 0) as u8;
    let rn = bits(i, 9, 5) as u8;
    let (write, sign_extend, sf) = match (opc, size) {
        (0b00, _) => (true, false, size == 3),
        (0b01, _) => (false, false, size == 3),
        (0b10, 0..=2) => (false, true, true),    // LDRSB/LDRSH/LDRSW Xt
        (0b11, 0..=1) => (false, true, false),   // LDRSB/LDRSH Wt
        (0b10, 3) => return Err(DecodeError::Unsupported), // PRFM
        _ => return Err(DecodeError::Malformed),
    };
    let mut a = Access {
        write,
        size: 1 << size,
        rt,
        rt2: None,
        sign_extend,
        sf,
        writeback: None,
        base: Base { rn, offset: 0, register_offset: false },
    };
    match bits(i, 25, 24) {
        0b01 => {
            // Unsigned immediate, scaled.
            a.base.offset = (bits(i, 21, 10) << size) as i64;
        }
        0b00 => {
            let imm9 = sext(bits(i, 20, 12), 9);
            match (bits(i, 21, 21), bits(i, 11, 10)) {
                (0, 0b00) | (0, 0b10) => a.base.offset = imm9, // LDUR/STUR, LDTR/STTR
                (0, 0b01) => a.writeback = Some(Writeback { rn, offset: imm9, post: true }),
                (0, 0b11) => {
                    a.base.offset = imm9;
                    a.writeback = Some(Writeback { rn, offset: imm9, post: false });
                }
                (1, 0b10) => a.base.register_offset = true, // register offset
                _ => return Err(DecodeError::Unsupported),  // atomics, LDRAA, ...
            }
        }
        _ => return Err(DecodeError::Unsupported),
    }
    // Writeback with Rt == Rn (not XZR/SP) is CONSTRAINED UNPREDICTABLE (DDI0487, the load/store writeback cases of "CONSTRAINED UNPREDICTABLE behaviors").
    if a.writeback.is_some() && rt == rn && rn != 31 {
        return Err(DecodeError::Malformed);
    }
    Ok(a)
}

fn pair(i: u64) -> Result<Access, DecodeError> {
    if bits(i, 26, 26) == 1 {
        return Err(DecodeError::Unsupported); // SIMD&FP pair
    }
    let opc = bits(i, 31, 30);
    let load = bits(i, 22, 22) == 1;
    let (size, sign_extend) = match (opc, load) {
        (0b00, _) => (4u8, false),
        (0b10, _) => (8, false),
        (0b01, true) => (4, true), // LDPSW
        _ => return Err(DecodeError::Malformed), // STGP, unallocated
    };
    let rt = bits(i, 4, 0) as u8;
    let rt2 = bits(i, 14, 10) as u8;
    let rn = bits(i, 9, 5) as u8;
    let imm = sext(bits(i, 21, 15), 7) * size as i64;
    let (offset, writeback) = match bits(i, 25, 23) {
        0b000 | 0b010 => (imm, None), // LDNP/STNP, signed offset
        0b001 => (0, Some(Writeback { rn, offset: imm, post: true })),
        0b011 => (imm, Some(Writeback { rn, offset: imm, post: false })),
        _ => return Err(DecodeError::Malformed),
    };
    // CONSTRAINED UNPREDICTABLE: a load pair into one register, or writeback onto a transfer register.
    if load && rt == rt2 {
        return Err(DecodeError::Malformed);
    }
    if writeback.is_some() && rn != 31 && (rt == rn || rt2 == rn) {
        return Err(DecodeError::Malformed);
    }
    Ok(Access {
        write: !load,
        size,
        rt,
        rt2: Some(rt2),
        sign_extend,
        sf: size == 8 || sign_extend,
        writeback,
        base: Base { rn, offset, register_offset: false },
    })
}

/// The value a load of `raw` (the `size`-byte read) puts in its register.
pub fn load_value(a: &Access, raw: u64) -> u64 {
    let bits = a.size as u32 * 8;
    let raw = if bits == 64 { raw } else { raw & ((1u64 << bits) - 1) };
    let v = if a.sign_extend && bits < 64 { sext(raw, bits) as u64 } else { raw };
    if a.sf { v } else { v & 0xffff_ffff }
}

/// The bytes a store of register value `reg` writes.
pub fn store_value(a: &Access, reg: u64) -> u64 {
    let bits = a.size as u32 * 8;
    if bits == 64 { reg } else { reg & ((1u64 << bits) - 1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(write: bool, size: u8, rt: u8, rn: u8, offset: i64) -> Access {
        Access { write, size, rt, rt2: None, sign_extend: false, sf: size == 8, writeback: None, base: Base { rn, offset, register_offset: false } }
    }

    #[test]
    fn syndrome_forms() {
        // ISV, SAS=2 (word), SRT=1, WnR=0.
        let a = from_syndrome((1 << 24) | (2 << 22) | (1 << 16)).unwrap();
        assert_eq!((a.write, a.size, a.rt, a.sign_extend, a.sf), (false, 4, 1, false, false));
        let a = from_syndrome((1 << 24) | (3 << 22) | (5 << 16) | (1 << 15) | (1 << 6)).unwrap();
        assert_eq!((a.write, a.size, a.rt, a.sf), (true, 8, 5, true));
        assert_eq!(from_syndrome(3 << 22), None);
    }

    #[test]
    fn single_register_forms() {
        assert_eq!(from_instruction(0xb940_0001), Ok(acc(false, 4, 1, 0, 0))); // ldr w1, [x0]
        assert_eq!(from_instruction(0xf900_0462), Ok(acc(true, 8, 2, 3, 8))); // str x2, [x3, #8]
        assert_eq!(from_instruction(0x3940_0020), Ok(acc(false, 1, 0, 1, 0))); // ldrb w0, [x1]
        assert_eq!(from_instruction(0x7900_0483), Ok(acc(true, 2, 3, 4, 2))); // strh w3, [x4, #2]
        let a = from_instruction(0x7980_0020).unwrap(); // ldrsh x0, [x1]
        assert!(a.sign_extend && a.sf && a.size == 2);
        let a = from_instruction(0x79c0_0020).unwrap(); // ldrsh w0, [x1]
        assert!(a.sign_extend && !a.sf);
        let a = from_instruction(0xb980_04c5).unwrap(); // ldrsw x5, [x6, #4]
        assert!(a.sign_extend && a.sf && a.size == 4 && a.base.offset == 4 && a.rt == 5);
        let a = from_instruction(0xf840_8420).unwrap(); // ldr x0, [x1], #8
        assert_eq!(a.writeback, Some(Writeback { rn: 1, offset: 8, post: true }));
        assert_eq!(a.base.offset, 0);
        let a = from_instruction(0xb800_4c20).unwrap(); // str w0, [x1, #4]!
        assert_eq!(a.writeback, Some(Writeback { rn: 1, offset: 4, post: false }));
        assert!(a.write);
        assert_eq!(from_instruction(0xb85f_c020), Ok(acc(false, 4, 0, 1, -4))); // ldur w0, [x1, #-4]
        assert!(from_instruction(0xb862_6820).unwrap().base.register_offset); // ldr w0, [x1, x2]
        assert_eq!(from_instruction(0xb840_0820), Ok(acc(false, 4, 0, 1, 0))); // ldtr w0, [x1]
    }

    #[test]
    fn pair_forms() {
        let a = from_instruction(0xa940_0440).unwrap(); // ldp x0, x1, [x2]
        assert_eq!((a.write, a.size, a.rt, a.rt2, a.base.rn, a.base.offset), (false, 8, 0, Some(1), 2, 0));
        let a = from_instruction(0x2901_0440).unwrap(); // stp w0, w1, [x2, #8]
        assert_eq!((a.write, a.size, a.base.offset, a.sf), (true, 4, 8, false));
        let a = from_instruction(0xa8c1_0440).unwrap(); // ldp x0, x1, [x2], #16
        assert_eq!(a.writeback, Some(Writeback { rn: 2, offset: 16, post: true }));
        let a = from_instruction(0x6940_0440).unwrap(); // ldpsw x0, x1, [x2]
        assert!(a.sign_extend && a.sf && a.size == 4);
        let a = from_instruction(0xa9bf_07e0).unwrap(); // stp x0, x1, [sp, #-16]!
        assert_eq!(a.writeback, Some(Writeback { rn: 31, offset: -16, post: false }));
        assert_eq!(a.base.offset, -16);
        assert!(from_instruction(0xa840_0440).is_ok()); // ldnp x0, x1, [x2]
    }

    #[test]
    fn refused_forms() {
        use DecodeError::*;
        assert_eq!(from_instruction(0x3dc0_0000), Err(Unsupported)); // ldr q0, [x0]
        assert_eq!(from_instruction(0xc85f_7c20), Err(Unsupported)); // ldxr x0, [x1]
        assert_eq!(from_instruction(0xf980_0020), Err(Unsupported)); // prfm
        assert_eq!(from_instruction(0xb9c0_0020), Err(Malformed)); // opc=11 size=2: unallocated
        assert_eq!(from_instruction(0xf840_8400), Err(Malformed)); // ldr x0, [x0], #8
        assert_eq!(from_instruction(0xa940_0040), Err(Malformed)); // ldp x0, x0, [x2]
        assert_eq!(from_instruction(0xa8c1_0441), Err(Malformed)); // ldp x1, x1, [x2], #16
        assert_eq!(from_instruction(0xa8c1_0822), Err(Malformed)); // ldp x2, x2.. writeback onto rt
        assert_eq!(from_instruction(0xe940_0440), Err(Malformed)); // opc=11 pair
        assert_eq!(from_instruction(0x6900_0440), Err(Malformed)); // "stpsw"
        assert_eq!(from_instruction(0xd503_201f), Err(Unsupported)); // nop
        assert_eq!(from_instruction(0), Err(Unsupported));
        assert_eq!(from_instruction(0xffff_ffff), Err(Unsupported));
        // No instruction word makes the decoder panic.
        for x in (0..=u32::MAX).step_by(65_521) {
            let _ = from_instruction(x);
        }
    }

    #[test]
    fn values() {
        let a = from_instruction(0x79c0_0020).unwrap(); // ldrsh w0
        assert_eq!(load_value(&a, 0xffff_8001), 0xffff_8001);
        assert_eq!(load_value(&a, 0x8001), 0xffff_8001);
        let a = from_instruction(0x7980_0020).unwrap(); // ldrsh x0
        assert_eq!(load_value(&a, 0x8001), 0xffff_ffff_ffff_8001);
        let a = from_instruction(0x3940_0020).unwrap(); // ldrb w0
        assert_eq!(load_value(&a, 0x1ff), 0xff);
        let a = from_instruction(0x7900_0483).unwrap(); // strh
        assert_eq!(store_value(&a, 0x1234_5678), 0x5678);
    }
}
