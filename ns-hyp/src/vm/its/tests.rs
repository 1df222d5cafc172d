use super::*;
use crate::vm::layout::GICR_STRIDE;
use crate::vm::virtio_blk::fakes::{Mem, BASE};

/// Guest memory: the command queue at BASE (one page), the LPI
/// configuration table at BASE + 0x10000.
const QUEUE: u64 = BASE;
const PROP: u64 = BASE + 0x1_0000;

struct Rig {
    its: Its,
    vgic: Vgic,
    mem: Mem,
    /// Commands queued so far (bytes).
    at: u64,
}

fn cmd(op: u8, dw0_hi: u32, dw1: u64, dw2: u64) -> [u64; 4] {
    [op as u64 | (dw0_hi as u64) << 32, dw1, dw2, 0]
}

impl Rig {
    /// Two vCPUs with LPIs on, PROPBASER (16 ID bits) at PROP, the ITS
    /// enabled with a one-page queue at QUEUE.
    fn new() -> Self {
        let mut vgic = Vgic::new(2);
        vgic.lpis_offered = true;
        vgic.dist_write(0, 4, 2 | 1 << 4);
        for v in 0..2 {
            vgic.redist_write(v * GICR_STRIDE + 0x70, 8, PROP | 15);
            vgic.redist_write(v * GICR_STRIDE, 4, 1);
        }
        let mut r = Rig { its: Its::new(), vgic, mem: Mem(vec![0; 0x2_0000]), at: 0 };
        r.write(GITS_CBASER, 8, 1 << 63 | QUEUE);
        r.write(GITS_CTLR, 4, 1);
        r
    }

    fn write(&mut self, off: u64, size: u8, val: u64) -> Kick {
        self.its.write(off, size, val, &self.mem, &mut self.vgic)
    }

    /// Queues commands and writes CWRITER past them; returns the kicks.
    fn run(&mut self, cmds: &[[u64; 4]]) -> Kick {
        for c in cmds {
            for (i, d) in c.iter().enumerate() {
                let o = (QUEUE - BASE + self.at) as usize + i * 8;
                self.mem.0[o..o + 8].copy_from_slice(&d.to_le_bytes());
            }
            self.at = (self.at + 32) % 0x1000;
        }
        let k = self.write(GITS_CWRITER, 8, self.at);
        assert_eq!(self.its.read(GITS_CREADR, 8), self.at, "the queue ran to CWRITER");
        k
    }

    fn prop(&mut self, lpi: u32, v: u8) {
        self.mem.0[(PROP - BASE) as usize + (lpi - LPI_BASE) as usize] = v;
    }

    fn lr_intid(&mut self, vcpu: usize) -> Option<u64> {
        let mut lrs = [0u64; 4];
        self.vgic.fill_lrs(vcpu, &mut lrs);
        lrs.iter().find(|&&l| l != 0).map(|l| l & 0xffff_ffff)
    }
}

/// What Linux's ITS driver does for one MSI-X vector of a PCI device:
/// MAPC per CPU, MAPD, MAPTI, then enable the LPI and INV.
#[test]
fn linux_sequence_delivers_the_msi_to_its_collection() {
    let mut r = Rig::new();
    let lpi = LPI_BASE + 5;
    r.prop(lpi, 0xa0 | 1);
    r.run(&[
        cmd(CMD_MAPC, 0, 0, 1 << 63 | 0 << 16 | 0),
        cmd(CMD_MAPC, 0, 0, 1 << 63 | 1 << 16 | 1),
        cmd(CMD_SYNC, 0, 0, 0),
        cmd(CMD_MAPD, 8, 4, 1 << 63 | (BASE + 0x8000)),
        cmd(CMD_MAPTI, 8, 2 | (lpi as u64) << 32, 1),
        cmd(CMD_INV, 8, 2, 0),
    ]);
    // The PCI device's MSI: DeviceID 8 (00:01.0), EventID 2 -> vCPU 1.
    assert_eq!(r.its.translate(8, 2, &mut r.vgic), 1 << 1);
    assert_eq!(r.lr_intid(0), None);
    assert_eq!(r.lr_intid(1), Some(lpi as u64));
    // The guest takes it (its LR empties); MOVI to collection 0: the next
    // one goes to vCPU 0.
    r.vgic.sync_lrs(1, &[0; 4]);
    r.run(&[cmd(CMD_MOVI, 8, 2, 0)]);
    assert_eq!(r.its.translate(8, 2, &mut r.vgic), 1 << 0);
    // Unmapped event, unknown device, ITS disabled: dropped.
    assert_eq!(r.its.translate(8, 3, &mut r.vgic), 0);
    assert_eq!(r.its.translate(9, 2, &mut r.vgic), 0);
    r.write(GITS_CTLR, 4, 0);
    assert_eq!(r.its.translate(8, 2, &mut r.vgic), 0);
}

#[test]
fn a_disabled_lpi_waits_until_inv_reads_it_enabled() {
    let mut r = Rig::new();
    let lpi = LPI_BASE + 1;
    r.run(&[cmd(CMD_MAPC, 0, 0, 1 << 63), cmd(CMD_MAPD, 3, 1, 1 << 63), cmd(CMD_MAPI, 3, (lpi - LPI_BASE) as u64 | 0, 0)]);
    // MAPI maps EventID = LPI: event 1 is not an LPI (< 8192): ignored.
    assert_eq!(r.its.translate(3, 1, &mut r.vgic), 0);
    r.run(&[cmd(CMD_MAPTI, 3, 1 | (lpi as u64) << 32, 0)]);
    assert_eq!(r.its.translate(3, 1, &mut r.vgic), 0, "pending but disabled in the table");
    r.prop(lpi, 0x81);
    assert_eq!(r.run(&[cmd(CMD_INV, 3, 1, 0)]), 1, "INV reads the table: vCPU 0 kicked");
    assert_eq!(r.lr_intid(0), Some(lpi as u64));
    // INVALL with the LPI disabled again, DISCARD: nothing more arrives.
    r.prop(lpi, 0);
    r.run(&[cmd(CMD_INVALL, 0, 0, 0), cmd(CMD_DISCARD, 3, 1, 0)]);
    assert_eq!(r.its.translate(3, 1, &mut r.vgic), 0);
}

#[test]
fn registers_read_as_linux_expects() {
    let r = Rig::new();
    assert_eq!(r.its.read(GITS_PIDR2, 4) & 0xf0, 0x30, "ArchRev 3");
    let typer = r.its.read(GITS_TYPER, 8);
    assert_eq!(typer & 1, 1, "Physical");
    assert_eq!(typer >> 4 & 0xf, 7, "8-byte ITT entries");
    assert_eq!(typer >> 19 & 1, 0, "PTA = 0");
    assert_eq!(r.its.read(GITS_TYPER + 4, 4), typer >> 32);
    assert_eq!(r.its.read(GITS_CTLR, 4), 1 | 1 << 31);
    assert_eq!(r.its.read(GITS_BASER0, 8) >> 56 & 7, 1, "a Device table");
    assert_eq!(r.its.read(GITS_BASER0 + 8, 8), 0, "the rest unimplemented");
}

#[test]
fn baser_keeps_its_read_only_fields_and_cbaser_is_fixed_while_enabled() {
    let mut r = Rig::new();
    r.write(GITS_BASER0, 8, u64::MAX);
    let b = r.its.read(GITS_BASER0, 8);
    assert_eq!(b >> 56 & 7, 1);
    assert_eq!(b >> 48 & 0x1f, 7);
    assert_eq!(b >> 62 & 1, 0, "Indirect RAZ");
    r.write(GITS_BASER0 + 8, 8, u64::MAX);
    assert_eq!(r.its.read(GITS_BASER0 + 8, 8), 0);
    r.write(GITS_CBASER, 8, 0);
    assert_eq!(r.its.read(GITS_CBASER, 8), 1 << 63 | QUEUE);
}

/// Hostile queues: CWRITER beyond the queue, queue outside guest memory,
/// commands with every field at its maximum, unknown opcodes.  No panic,
/// and CREADR never passes CWRITER.
#[test]
fn hostile_commands_and_pointers_are_harmless() {
    let mut r = Rig::new();
    r.write(GITS_CWRITER, 8, 0xf_ffe0);
    assert_eq!(r.its.read(GITS_CREADR, 8), 0, "a CWRITER outside the queue stalls it");
    let all = [u64::MAX; 4];
    let mut cmds = vec![all];
    for op in 0..=255u8 {
        cmds.push([op as u64 | 0xffff_ffff_0000_0000, u64::MAX, u64::MAX, u64::MAX]);
        cmds.push([op as u64, 0, 0, 0]);
    }
    r.write(GITS_CWRITER, 8, 0);
    for chunk in cmds.chunks(100) {
        r.run(chunk);
    }
    // A queue at an address that is not guest memory: nothing runs.
    let mut r = Rig::new();
    r.write(GITS_CTLR, 4, 0);
    r.write(GITS_CBASER, 8, 1 << 63 | 0xf_ffff_ffff_f000 | 0xff);
    r.write(GITS_CTLR, 4, 1);
    r.write(GITS_CWRITER, 8, 0x20);
    assert_eq!(r.its.read(GITS_CREADR, 8), 0);
    // Odd sizes and offsets read as zero.
    for off in [1, 2, 3, 0x9, 0x8a, 0xfff0, 0x1_0040] {
        let _ = r.its.read(off, 1);
        let _ = r.its.read(off, 2);
    }
}

#[test]
fn more_devices_than_the_model_holds_are_ignored() {
    let mut r = Rig::new();
    let mut cmds = vec![cmd(CMD_MAPC, 0, 0, 1 << 63)];
    for d in 0..(MAX_DEVICES as u32 + 4) {
        cmds.push(cmd(CMD_MAPD, d, 4, 1 << 63));
        cmds.push(cmd(CMD_MAPTI, d, 0 | ((LPI_BASE + d) as u64) << 32, 0));
    }
    r.run(&cmds);
    for d in 0..(MAX_DEVICES as u32 + 4) {
        r.prop(LPI_BASE + d, 1);
    }
    r.run(&[cmd(CMD_INVALL, 0, 0, 0)]);
    assert_ne!(r.its.translate(0, 0, &mut r.vgic), 0);
    assert_eq!(r.its.translate(MAX_DEVICES as u32 + 1, 0, &mut r.vgic), 0);
    // MAPD with V = 0 frees a slot for another device.
    r.run(&[cmd(CMD_MAPD, 0, 0, 0), cmd(CMD_MAPD, 100, 4, 1 << 63), cmd(CMD_MAPTI, 100, 0 | ((LPI_BASE + 40) as u64) << 32, 0)]);
    assert_eq!(r.its.translate(0, 0, &mut r.vgic), 0);
    r.prop(LPI_BASE + 40, 1);
    r.run(&[cmd(CMD_INV, 100, 0, 0)]);
    assert_ne!(r.its.translate(100, 0, &mut r.vgic), 0);
}
