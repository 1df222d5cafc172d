//! Boot configuration from the DTB we were handed: where it is, the mode
//! switch in /chosen/bootargs, and the RAM banks in /memory.
//!
//! Entry contract (arm64 Linux boot protocol, Documentation/arch/arm64/booting.rst
//! in spirit): x0 = physical address of the DTB.  TF-A (BL33, ARM_LINUX_KERNEL_AS_BL33)
//! passes 0x40000000; QEMU `-kernel` passes where it put the blob (after our image).

use crate::line::Line;

/// QEMU virt: RAM starts at 1 GiB; TF-A leaves the DTB at its base.
pub const RAM_BASE: u64 = crate::platform::qemu_virt::RAM_BASE;
/// Fallback DTB address when x0 does not hold one (TF-A qemu's NS DTB).
pub const DTB_FALLBACK: u64 = RAM_BASE;
/// Upper bound for any DTB we accept (QEMU's is < 1 MiB).
pub const DTB_MAX_SIZE: usize = 2 << 20;
/// x0 is only dereferenced if it lies in the first 3 GiB of RAM (QEMU virt's
/// RAM below 4 GiB), so a garbage x0 cannot make us read a device or a hole.
pub const RAM_PROBE_END: u64 = 0x1_0000_0000;

/// The boot-time word "quadrant.bench" in /chosen/bootargs selects bench mode.
pub const BENCH_ARG: &str = "quadrant.bench";

/// Addresses to try for the DTB, in order: x0 if it is a plausible RAM
/// address, then the fallback.  The caller checks each for the FDT magic.
pub fn dtb_candidates(x0: u64) -> [Option<u64>; 2] {
    let plausible = x0.is_multiple_of(8) && x0 >= RAM_BASE && x0.saturating_add(64) <= RAM_PROBE_END;
    [plausible.then_some(x0), (x0 != DTB_FALLBACK).then_some(DTB_FALLBACK)]
}

/// Whether `bootargs` holds the bench switch as a whole word.
pub fn wants_bench(bootargs: &str) -> bool {
    bootargs.split_ascii_whitespace().any(|w| w == BENCH_ARG)
}

pub const MAX_BANKS: usize = 8;

#[derive(Debug, Default)]
pub struct BootConfig {
    pub bootargs: Line<1024>,
    pub bench: bool,
    /// (base, size) of each RAM bank from `device_type = "memory"` nodes.
    pub banks: [(u64, u64); MAX_BANKS],
    pub nbanks: usize,
    /// `cpu@` nodes under /cpus.
    pub ncpus: usize,
    /// The devices ns-hyp drives (`crate::platform`).
    pub devices: DtbDevices,
}

/// Physical addresses of the root's enabled device nodes ns-hyp drives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DtbDevices {
    /// The first `arm,pl011`.
    pub uart: Option<u64>,
    /// `arm,gic-v3`: reg[0] the distributor, reg[1] the redistributors.
    pub gic: Option<(u64, u64)>,
    /// `virtio,mmio` transports: lowest base, highest end.
    pub virtio_mmio: Option<(u64, u64)>,
    /// The first `arm,pl031` (the RTC ns-hyp reads the time from).
    pub rtc: Option<u64>,
}

/// Reads one big-endian number of `cells` 32-bit cells from `b`.
fn read_cells(b: &[u8], cells: usize) -> Option<u64> {
    if cells == 0 || cells > 2 || b.len() < cells * 4 {
        return None;
    }
    let mut v = 0u64;
    for c in b[..cells * 4].chunks_exact(4) {
        v = (v << 32) | u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64;
    }
    Some(v)
}

fn be32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

/// A NUL-terminated UTF-8 string at `off`.
fn cstr(b: &[u8], off: usize) -> Option<&str> {
    let rest = b.get(off..)?;
    core::str::from_utf8(&rest[..rest.iter().position(|&c| c == 0)?]).ok()
}

/// One step of the structure block walk.
enum Event<'a> {
    Begin { depth: usize, name: &'a str },
    End { depth: usize },
    Prop { depth: usize, name: &'a str, value: &'a [u8] },
}

/// Walks the structure block token by token (devicetree spec v0.4 §5.4),
/// calling `f` per node start/end and per property.  `FDT_NOP` may appear
/// between any tokens: TF-A's BL2 leaves 18 of them among the root's
/// properties after editing QEMU's DTB.  (The `fdt` 0.1 crate's `find_node`
/// stops at such a NOP and finds nothing, and its node skipping asserts on
/// one, hence this walker.)  Every access is bounds-checked; a malformed blob
/// just ends the walk.
fn walk<'a>(blob: &'a [u8], mut f: impl FnMut(Event<'a>)) {
    let (Some(off_struct), Some(off_strings), Some(size_strings), Some(size_struct)) =
        (be32(blob, 8), be32(blob, 12), be32(blob, 32), be32(blob, 36))
    else {
        return;
    };
    let (off_struct, size_struct) = (off_struct as usize, size_struct as usize);
    let (off_strings, size_strings) = (off_strings as usize, size_strings as usize);
    let Some(st) = off_struct.checked_add(size_struct).and_then(|e| blob.get(off_struct..e)) else { return };
    let Some(strings) = off_strings.checked_add(size_strings).and_then(|e| blob.get(off_strings..e)) else { return };
    let mut off = 0usize;
    let mut depth = 0usize;
    while let Some(token) = be32(st, off) {
        off += 4;
        match token {
            1 => {
                let Some(name) = cstr(st, off) else { return };
                off = (off + name.len() + 1 + 3) & !3;
                depth += 1;
                f(Event::Begin { depth, name });
            }
            2 => {
                if depth == 0 {
                    return;
                }
                f(Event::End { depth });
                depth -= 1;
            }
            3 => {
                let (Some(len), Some(nameoff)) = (be32(st, off), be32(st, off + 4)) else { return };
                off += 8;
                let (Some(value), Some(name)) =
                    (off.checked_add(len as usize).and_then(|e| st.get(off..e)), cstr(strings, nameoff as usize))
                else {
                    return;
                };
                off = (off + len as usize + 3) & !3;
                f(Event::Prop { depth, name, value });
            }
            4 => {}
            _ => return, // FDT_END or garbage
        }
    }
}

/// A property value as a string without its NUL.
fn prop_str(v: &[u8]) -> Option<&str> {
    core::str::from_utf8(v.strip_suffix(&[0])?).ok()
}

/// Extracts the configuration from a DTB (validated by `shared::fdt::validate`
/// first).  Missing or odd pieces (no /chosen, no bootargs, `reg` of an
/// unexpected length, strange cell counts) leave defaults, never a panic.
pub fn read_config(blob: &[u8]) -> Result<BootConfig, shared::fdt::FdtError> {
    shared::fdt::validate(blob)?;
    let mut cfg = BootConfig::default();
    // Pass 1: the root's #address-cells/#size-cells (devicetree spec §2.3.5:
    // defaults 2 and 1), which give the layout of the memory nodes' `reg`.
    let (mut ac, mut sc) = (2usize, 1usize);
    walk(blob, |e| {
        if let Event::Prop { depth: 1, name, value } = e {
            match name {
                "#address-cells" => ac = read_cells(value, 1).unwrap_or(0) as usize,
                "#size-cells" => sc = read_cells(value, 1).unwrap_or(0) as usize,
                _ => {}
            }
        }
    });
    // Pass 2: /chosen/bootargs and the root's `device_type = "memory"` children.
    let mut in_chosen = false;
    let mut in_cpus = false;
    let mut node = (false, true, None::<&[u8]>); // (is memory, enabled, reg)
    let mut compatible: Option<&[u8]> = None;
    walk(blob, |e| match e {
        Event::Begin { depth: 3, name } if in_cpus && name.starts_with("cpu@") => cfg.ncpus += 1,
        Event::Begin { depth: 2, name } => {
            in_chosen = name == "chosen";
            in_cpus = name == "cpus";
            node = (false, true, None);
            compatible = None;
        }
        Event::Prop { depth: 2, name, value } => match name {
            "bootargs" if in_chosen => {
                if let Some(a) = prop_str(value) {
                    let _ = core::fmt::Write::write_str(&mut cfg.bootargs, a);
                    cfg.bench = wants_bench(a);
                }
            }
            "device_type" => node.0 = prop_str(value) == Some("memory"),
            // QEMU with secure=on adds the Secure RAM as a `memory` node with
            // status = "disabled" (devicetree spec §2.3.4): not ours.
            "status" => node.1 = matches!(prop_str(value), Some("okay" | "ok")),
            "reg" => node.2 = Some(value),
            "compatible" => compatible = Some(value),
            _ => {}
        },
        Event::End { depth: 2 } => {
            in_chosen = false;
            in_cpus = false;
            if let (true, true, Some(reg)) = node {
                add_banks(&mut cfg, reg, ac, sc);
            }
            if let (Some(c), true, Some(reg)) = (compatible, node.1, node.2) {
                add_device(&mut cfg.devices, c, reg, ac, sc);
            }
        }
        _ => {}
    });
    Ok(cfg)
}

fn add_banks(cfg: &mut BootConfig, reg: &[u8], ac: usize, sc: usize) {
    if ac == 0 || ac > 2 || sc == 0 || sc > 2 {
        return;
    }
    for e in reg.chunks_exact((ac + sc) * 4) {
        let (Some(base), Some(size)) = (read_cells(e, ac), read_cells(&e[ac * 4..], sc)) else { continue };
        if cfg.nbanks < MAX_BANKS && size != 0 {
            cfg.banks[cfg.nbanks] = (base, size);
            cfg.nbanks += 1;
        }
    }
}

/// Whether a `compatible` string list names `what`.
fn is_compatible(list: &[u8], what: &str) -> bool {
    list.split(|&b| b == 0).any(|s| s == what.as_bytes())
}

/// The `n`th (base, size) of a `reg` with `ac` address and `sc` size cells.
fn reg_entry(reg: &[u8], n: usize, ac: usize, sc: usize) -> Option<(u64, u64)> {
    if ac == 0 || ac > 2 || sc == 0 || sc > 2 {
        return None;
    }
    let e = reg.chunks_exact((ac + sc) * 4).nth(n)?;
    Some((read_cells(e, ac)?, read_cells(&e[ac * 4..], sc)?))
}

fn add_device(d: &mut DtbDevices, compatible: &[u8], reg: &[u8], ac: usize, sc: usize) {
    if is_compatible(compatible, "arm,pl011") && d.uart.is_none() {
        d.uart = reg_entry(reg, 0, ac, sc).map(|r| r.0);
    } else if is_compatible(compatible, "arm,pl031") && d.rtc.is_none() {
        d.rtc = reg_entry(reg, 0, ac, sc).map(|r| r.0);
    } else if is_compatible(compatible, "arm,gic-v3") && d.gic.is_none() {
        if let (Some(gicd), Some(gicr)) = (reg_entry(reg, 0, ac, sc), reg_entry(reg, 1, ac, sc)) {
            d.gic = Some((gicd.0, gicr.0));
        }
    } else if is_compatible(compatible, "virtio,mmio")
        && let Some((base, size)) = reg_entry(reg, 0, ac, sc)
    {
        let end = base.saturating_add(size);
        d.virtio_mmio = Some(d.virtio_mmio.map_or((base, end), |(s, e)| (s.min(base), e.max(end))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a small DTB: a root with the given cells, an optional /chosen
    /// with bootargs, and /memory with `reg`.
    fn dtb(bootargs: Option<&str>, ac: u32, sc: u32, reg: &[u32]) -> Vec<u8> {
        dtb_with_secure(bootargs, ac, sc, reg, false)
    }

    /// As `dtb`, plus (if `secure`) QEMU's disabled Secure RAM node.
    fn dtb_with_secure(bootargs: Option<&str>, ac: u32, sc: u32, reg: &[u32], secure: bool) -> Vec<u8> {
        let mut st: Vec<u8> = Vec::new();
        let mut strings: Vec<u8> = Vec::new();
        fn w(v: &mut Vec<u8>, x: u32) {
            v.extend_from_slice(&x.to_be_bytes());
        }
        fn name(v: &mut Vec<u8>, n: &str) {
            v.extend_from_slice(n.as_bytes());
            v.push(0);
            while !v.len().is_multiple_of(4) {
                v.push(0);
            }
        }
        let prop = |st: &mut Vec<u8>, strings: &mut Vec<u8>, n: &str, val: &[u8]| {
            let off = strings.len() as u32;
            strings.extend_from_slice(n.as_bytes());
            strings.push(0);
            w(st, 3);
            w(st, val.len() as u32);
            w(st, off);
            st.extend_from_slice(val);
            while !st.len().is_multiple_of(4) {
                st.push(0);
            }
        };
        w(&mut st, 1);
        name(&mut st, "");
        prop(&mut st, &mut strings, "#address-cells", &ac.to_be_bytes());
        prop(&mut st, &mut strings, "#size-cells", &sc.to_be_bytes());
        if let Some(a) = bootargs {
            w(&mut st, 1);
            name(&mut st, "chosen");
            let mut v = a.as_bytes().to_vec();
            v.push(0);
            prop(&mut st, &mut strings, "bootargs", &v);
            w(&mut st, 2);
        }
        w(&mut st, 1);
        name(&mut st, "memory@40000000");
        prop(&mut st, &mut strings, "device_type", b"memory\0");
        let r: Vec<u8> = reg.iter().flat_map(|c| c.to_be_bytes()).collect();
        prop(&mut st, &mut strings, "reg", &r);
        w(&mut st, 2);
        if secure {
            w(&mut st, 1);
            name(&mut st, "secram@e000000");
            prop(&mut st, &mut strings, "status", b"disabled\0");
            prop(&mut st, &mut strings, "device_type", b"memory\0");
            let r: Vec<u8> = [0u32, 0x0e00_0000, 0, 0x0100_0000].iter().flat_map(|c| c.to_be_bytes()).collect();
            prop(&mut st, &mut strings, "reg", &r);
            w(&mut st, 2);
        }
        w(&mut st, 2);
        w(&mut st, 9);
        let off_struct = 40 + 16;
        let off_strings = off_struct + st.len();
        let total = off_strings + strings.len();
        let mut b = Vec::new();
        for v in [0xd00d_feed, total as u32, off_struct as u32, off_strings as u32, 40, 17, 16, 0, strings.len() as u32, st.len() as u32] {
            w(&mut b, v);
        }
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&st);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn candidates() {
        assert_eq!(dtb_candidates(0x6020_0000), [Some(0x6020_0000), Some(DTB_FALLBACK)]);
        assert_eq!(dtb_candidates(0x4000_0000), [Some(0x4000_0000), None]);
        assert_eq!(dtb_candidates(0), [None, Some(DTB_FALLBACK)]);
        assert_eq!(dtb_candidates(0x0900_0000), [None, Some(DTB_FALLBACK)]); // the UART
        assert_eq!(dtb_candidates(0x6020_0004), [None, Some(DTB_FALLBACK)]); // misaligned
        assert_eq!(dtb_candidates(u64::MAX - 7), [None, Some(DTB_FALLBACK)]);
    }

    #[test]
    fn bench_switch_is_a_whole_word() {
        assert!(wants_bench("quadrant.bench"));
        assert!(wants_bench("console=ttyAMA0  quadrant.bench rw"));
        assert!(!wants_bench("quadrant.benchmark"));
        assert!(!wants_bench("xquadrant.bench"));
        assert!(!wants_bench(""));
    }

    #[test]
    fn reads_bootargs_and_memory() {
        let b = dtb(Some("earlycon quadrant.bench"), 2, 2, &[0, 0x4000_0000, 0, 0x8000_0000]);
        let c = read_config(&b).unwrap();
        assert!(c.bench);
        assert_eq!(c.bootargs.as_str(), "earlycon quadrant.bench");
        assert_eq!(&c.banks[..c.nbanks], &[(0x4000_0000, 0x8000_0000)]);
    }

    /// QEMU's DTB (secure=on, -dtb with bootargs) as TF-A's BL2 leaves it at
    /// 0x40000000 for BL33: NOP tokens among the root's properties, a
    /// disabled Secure memory node.  Dumped from guest memory (QMP pmemsave).
    #[test]
    fn tfa_edited_qemu_dtb() {
        let b = include_bytes!("testdata/tfa-qemu-bench.dtb");
        let c = read_config(b).unwrap();
        assert!(c.bench);
        assert_eq!(c.bootargs.as_str(), "quadrant.bench");
        assert_eq!(&c.banks[..c.nbanks], &[(0x4000_0000, 0x8000_0000)]);
        // QEMU virt's devices; the Secure UART (status = "disabled") is not ours.
        let d = DtbDevices { uart: Some(0x0900_0000), gic: Some((0x0800_0000, 0x080a_0000)), virtio_mmio: Some((0x0a00_0000, 0x0a00_4000)), rtc: Some(0x0901_0000) };
        assert_eq!(c.devices, d);
        let p = crate::platform::Platform::from_dtb(&c.devices);
        assert_eq!(p, crate::platform::Platform::QEMU_VIRT);
        assert_eq!(crate::platform::Platform::from_dtb(&DtbDevices::default()), crate::platform::Platform::QEMU_VIRT);
        // Truncations never panic.
        for len in (0..b.len()).step_by(7) {
            let _ = read_config(&b[..len]);
        }
    }

    #[test]
    fn disabled_memory_nodes_are_skipped() {
        let b = dtb_with_secure(None, 2, 2, &[0, 0x4000_0000, 0, 0x8000_0000], true);
        let c = read_config(&b).unwrap();
        assert_eq!(&c.banks[..c.nbanks], &[(0x4000_0000, 0x8000_0000)]);
    }

    #[test]
    fn one_cell_and_two_banks() {
        let b = dtb(None, 1, 1, &[0x4000_0000, 0x1000_0000, 0x8000_0000, 0x2000_0000]);
        let c = read_config(&b).unwrap();
        assert!(!c.bench);
        assert_eq!(c.bootargs.as_str(), "");
        assert_eq!(&c.banks[..c.nbanks], &[(0x4000_0000, 0x1000_0000), (0x8000_0000, 0x2000_0000)]);
    }

    #[test]
    fn odd_cells_and_short_reg_do_not_panic() {
        for (ac, sc, reg) in [(3u32, 2u32, vec![1u32, 2, 3]), (2, 2, vec![1, 2, 3]), (0, 1, vec![]), (2, 0, vec![1, 2])] {
            let b = dtb(Some("quadrant.bench"), ac, sc, &reg);
            let c = read_config(&b).unwrap();
            assert!(c.bench);
            assert_eq!(c.nbanks, 0, "{ac} {sc} {reg:?}");
        }
    }

    #[test]
    fn every_bit_flip_is_handled() {
        let b = dtb(Some("quadrant.bench"), 2, 2, &[0, 0x4000_0000, 0, 0x8000_0000]);
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut c = b.clone();
                c[i] ^= 1 << bit;
                let _ = read_config(&c);
            }
        }
    }
}
