//! Host tests of the guests' FF-A memory calls against a fake SPMC and Stage-2.

use super::*;
use std::vec;
use std::vec::Vec;

const AREA: u64 = 0x8000_0000;
const AREA_PAGES: usize = (64 << 20) / PAGE as usize;
const RAM: GuestRam = GuestRam { ipa: 0x4000_0000, pa: 0x8100_0000, size: 16 << 20 };
const OTHER_RAM: GuestRam = GuestRam { ipa: 0x4000_0000, pa: 0x8200_0000, size: 16 << 20 };
const ME: u16 = 1;
const SP: u16 = 0x8001;
/// The VM's RX/TX pages (IPA 0x4000_0000 and 0x4000_1000).
const RXTX: [u64; 2] = [RAM.pa, RAM.pa + PAGE];
const V1_2: u32 = 0x1_0002;

fn not_rxtx(pa: u64) -> bool {
    RXTX.contains(&pa)
}

fn sender(vm: usize, id: u16, ram: GuestRam) -> Sender<'static> {
    Sender { vm, id, version: V1_2, ram, pinned: &not_rxtx }
}

/// A v1.1+ descriptor (48-byte header, one 16-byte EMAD, composite at 64)
/// from `sender` to `receiver` of `constituents` (IPA, pages); `total_pages`
/// as the composite says.
pub(in crate::vm::ffa) fn descriptor(sender: u16, receiver: u16, constituents: &[(u64, u32)]) -> Vec<u8> {
    let mut d = vec![0u8; 80];
    d[0..2].copy_from_slice(&sender.to_le_bytes());
    d[2..4].copy_from_slice(&0x2fu16.to_le_bytes()); // Normal, write-back, inner shareable
    d[24..28].copy_from_slice(&16u32.to_le_bytes());
    d[28..32].copy_from_slice(&1u32.to_le_bytes());
    d[32..36].copy_from_slice(&48u32.to_le_bytes());
    d[48..50].copy_from_slice(&receiver.to_le_bytes());
    d[50] = 0b0110; // read/write, not executable
    d[52..56].copy_from_slice(&64u32.to_le_bytes());
    let total: u32 = constituents.iter().map(|c| c.1).sum();
    d[64..68].copy_from_slice(&total.to_le_bytes());
    d[68..72].copy_from_slice(&(constituents.len() as u32).to_le_bytes());
    for &(a, n) in constituents {
        d.extend_from_slice(&a.to_le_bytes());
        d.extend_from_slice(&n.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
    }
    d
}

fn constituents_at(buf: &[u8], from: usize) -> Vec<(u64, u32)> {
    buf[from..].chunks_exact(16).map(|c| (u64::from_le_bytes(c[0..8].try_into().unwrap()), u32::from_le_bytes(c[8..12].try_into().unwrap()))).collect()
}

#[derive(Debug, PartialEq)]
enum Event {
    Call([u64; 8], Vec<u8>),
    Unmap(usize, u64, u64),
    Map(usize, u64, u64),
}

struct Fake {
    tx: Vec<u8>,
    replies: Vec<[u64; 8]>,
    events: Vec<Event>,
    /// Unmaps of this IPA fail (no memory for a split table).
    unmap_fails: Option<u64>,
}

impl Fake {
    fn new(replies: &[[u64; 8]]) -> Self {
        Fake { tx: vec![0; 4096], replies: replies.iter().rev().copied().collect(), events: Vec::new(), unmap_fails: None }
    }
    fn calls(&self) -> Vec<&[u64; 8]> {
        self.events.iter().filter_map(|e| if let Event::Call(r, _) = e { Some(r) } else { None }).collect()
    }
}

impl MemWorld for Fake {
    fn hyp_tx(&mut self) -> &mut [u8] {
        &mut self.tx
    }
    fn call(&mut self, regs: [u64; 8]) -> [u64; 8] {
        let len = if regs[0] as u32 == FuncId::MemFragTx as u32 { regs[3] } else { regs[2] } as usize;
        self.events.push(Event::Call(regs, self.tx[..len.min(4096)].to_vec()));
        self.replies.pop().expect("an SPMC reply")
    }
    fn unmap(&mut self, vm: usize, ipa: u64, pages: u64) -> bool {
        self.events.push(Event::Unmap(vm, ipa, pages));
        self.unmap_fails != Some(ipa)
    }
    fn map(&mut self, vm: usize, ipa: u64, pages: u64) {
        self.events.push(Event::Map(vm, ipa, pages));
    }
}

fn success(handle: u64) -> [u64; 8] {
    [fid::FFA_SUCCESS_32 as u64, 0, handle & 0xffff_ffff, handle >> 32, 0, 0, 0, 0]
}

fn frag_rx(handle: u64, offset: u64) -> [u64; 8] {
    [FFA_MEM_FRAG_RX as u64, handle & 0xffff_ffff, handle >> 32, offset, 0, 0, 0, 0]
}

fn send_regs(f: FuncId, d: &[u8]) -> [u64; 8] {
    [f as u64, d.len() as u64, d.len() as u64, 0, 0, 0, 0, 0]
}

fn is_error(r: &[u64; 8], e: FfaError) -> bool {
    r[0] as u32 == fid::FFA_ERROR && r[2] as i32 == e as i32
}

fn with_ledger(f: impl FnOnce(&mut Ledger<'_>)) {
    let mut pages = vec![0u8; AREA_PAGES];
    let mut l = Ledger::new(AREA, &mut pages);
    f(&mut l);
}

#[test]
fn share_goes_to_the_spmc_with_pas_and_keeps_the_pages_mapped() {
    with_ledger(|l| {
        let d = descriptor(ME, SP, &[(0x4010_0000, 2), (0x4020_0000, 1)]);
        let mut w = Fake::new(&[success(0x77)]);
        let r = mem_send(l, &sender(0, ME, RAM), &d, &send_regs(FuncId::MemShare64, &d), &mut w);
        assert_eq!(r, success(0x77));
        let Event::Call(regs, sent) = &w.events[0] else { panic!("{:?}", w.events) };
        assert_eq!(regs[..3], [FuncId::MemShare64 as u64, d.len() as u64, d.len() as u64]);
        assert_eq!(sent[..80], d[..80], "header, EMAD and composite unchanged");
        assert_eq!(constituents_at(sent, 80), vec![(RAM.pa + 0x10_0000, 2), (RAM.pa + 0x20_0000, 1)]);
        assert_eq!(w.events.len(), 1, "a share unmaps nothing");
        let slot = l.find(0, 0x77).unwrap();
        assert_eq!(l.owner(RAM.pa + 0x10_1000), Some(slot));
        assert_eq!(l.owner(RAM.pa + 0x10_2000), None);
    });
}

#[test]
fn lend_unmaps_before_the_spmc_sees_it_and_reclaim_maps_back() {
    with_ledger(|l| {
        let s = sender(0, ME, RAM);
        let d = descriptor(ME, SP, &[(0x4010_0000, 2), (0x4010_2000, 1), (0x4030_0000, 1)]);
        let mut w = Fake::new(&[success(0x5), success(0)]);
        assert_eq!(mem_send(l, &s, &d, &send_regs(FuncId::MemLend32, &d), &mut w), success(0x5));
        assert_eq!(w.events[0], Event::Unmap(0, 0x4010_0000, 3), "adjacent constituents are one run");
        assert_eq!(w.events[1], Event::Unmap(0, 0x4030_0000, 1));
        assert!(matches!(w.events[2], Event::Call(..)));
        let r = reclaim(l, &s, &[FuncId::MemReclaim as u64, 5, 0, 0, 0, 0, 0, 0], &mut w);
        assert_eq!(r, success(0));
        assert_eq!(w.events[3], Event::Call([FuncId::MemReclaim as u64, 5, 0, 0, 0, 0, 0, 0], w.tx[..0].to_vec()));
        assert_eq!(w.events[4..], [Event::Map(0, 0x4010_0000, 3), Event::Map(0, 0x4030_0000, 1)]);
        assert_eq!(l.owner(RAM.pa + 0x10_0000), None);
        assert_eq!(l.find(0, 5), None);
    });
}

/// A lend whose pages cannot all leave the VM's Stage-2 is refused before
/// the SPMC sees it, and every page is mapped again.
#[test]
fn a_lend_that_cannot_unmap_is_refused_before_the_spmc() {
    with_ledger(|l| {
        let s = sender(0, ME, RAM);
        let d = descriptor(ME, SP, &[(0x4010_0000, 2), (0x4030_0000, 1)]);
        let mut w = Fake::new(&[]);
        w.unmap_fails = Some(0x4030_0000);
        let r = mem_send(l, &s, &d, &send_regs(FuncId::MemLend32, &d), &mut w);
        assert!(is_error(&r, FfaError::NoMemory), "{r:x?}");
        assert!(w.calls().is_empty(), "the SPMC heard nothing");
        assert_eq!(w.events[2..], [Event::Map(0, 0x4010_0000, 2), Event::Map(0, 0x4030_0000, 1)]);
        assert_eq!(l.owner(RAM.pa + 0x10_0000), None, "nothing stays marked");
        // The same pages lend once the Stage-2 can change again.
        let mut w = Fake::new(&[success(0x9)]);
        assert_eq!(mem_send(l, &s, &d, &send_regs(FuncId::MemLend32, &d), &mut w), success(0x9));
    });
}

/// Every refusal of a VM's own making: the SPMC hears nothing, nothing stays marked.
#[test]
fn bad_sends_are_refused_without_a_call() {
    with_ledger(|l| {
        let s = sender(0, ME, RAM);
        let cases: Vec<(&str, Vec<u8>, [u64; 8], FfaError)> = {
            let ok = descriptor(ME, SP, &[(0x4010_0000, 1)]);
            let mut v = vec![
                ("IPA below RAM", descriptor(ME, SP, &[(0x3fff_f000, 1)]), FuncId::MemShare64, FfaError::Denied),
                ("IPA past RAM", descriptor(ME, SP, &[(0x40ff_f000, 2)]), FuncId::MemShare64, FfaError::Denied),
                ("RX/TX page", descriptor(ME, SP, &[(0x4000_1000, 1)]), FuncId::MemLend64, FfaError::Denied),
                ("a page twice", descriptor(ME, SP, &[(0x4010_0000, 2), (0x4010_1000, 1)]), FuncId::MemShare64, FfaError::InvalidParameters),
                ("another sender id", descriptor(2, SP, &[(0x4010_0000, 1)]), FuncId::MemShare64, FfaError::InvalidParameters),
                ("a VM receiver", descriptor(ME, 2, &[(0x4010_0000, 1)]), FuncId::MemShare64, FfaError::InvalidParameters),
                ("unaligned IPA", descriptor(ME, SP, &[(0x4010_0800, 1)]), FuncId::MemShare64, FfaError::InvalidParameters),
                ("zero pages", descriptor(ME, SP, &[(0x4010_0000, 0)]), FuncId::MemShare64, FfaError::InvalidParameters),
                ("wrapping range", descriptor(ME, SP, &[(0xffff_ffff_ffff_f000, 2)]), FuncId::MemShare64, FfaError::InvalidParameters),
                ("donate", ok.clone(), FuncId::MemDonate64, FfaError::NotSupported),
            ]
            .into_iter()
            .map(|(n, d, f, e)| {
                let r = send_regs(f, &d);
                (n, d, r, e)
            })
            .collect::<Vec<_>>();
            let mut r = send_regs(FuncId::MemShare64, &ok);
            r[3] = 0x4000_2000; // a buffer other than TX
            v.push(("x3 buffer address", ok.clone(), r, FfaError::InvalidParameters));
            let mut r = send_regs(FuncId::MemShare64, &ok);
            r[1] = 16; // total shorter than the fragment
            v.push(("fragment longer than total", ok.clone(), r, FfaError::InvalidParameters));
            let mut r = send_regs(FuncId::MemShare64, &ok);
            r[2] = 8192; // longer than the TX buffer
            v.push(("fragment longer than TX", ok.clone(), r, FfaError::InvalidParameters));
            v.push(("truncated header", ok[..40].to_vec(), send_regs(FuncId::MemShare64, &ok[..40]), FfaError::InvalidParameters));
            v
        };
        for (name, d, regs, want) in cases {
            let mut tx = d.clone();
            tx.resize(4096, 0);
            let mut w = Fake::new(&[]);
            let r = mem_send(l, &s, &tx, &regs, &mut w);
            assert!(is_error(&r, want), "{name}: {r:#x?}");
            assert!(w.events.is_empty(), "{name}: {:?}", w.events);
            assert!((0..(RAM.size / PAGE)).all(|p| l.owner(RAM.pa + p * PAGE).is_none()), "{name}: a page stayed marked");
        }
    });
}

#[test]
fn a_page_already_shared_or_lent_is_denied() {
    with_ledger(|l| {
        let s = sender(0, ME, RAM);
        let d = descriptor(ME, SP, &[(0x4010_0000, 4)]);
        let mut w = Fake::new(&[success(1)]);
        assert_eq!(mem_send(l, &s, &d, &send_regs(FuncId::MemLend64, &d), &mut w), success(1));
        for f in [FuncId::MemShare64, FuncId::MemLend64] {
            let again = descriptor(ME, SP, &[(0x4020_0000, 1), (0x4010_3000, 1)]);
            let mut w = Fake::new(&[]);
            assert!(is_error(&mem_send(l, &s, &again, &send_regs(f, &again), &mut w), FfaError::Denied));
            assert!(w.events.is_empty());
            assert_eq!(l.owner(RAM.pa + 0x20_0000), None, "the free page of the refused one is not held");
        }
    });
}

#[test]
fn the_spmc_refusing_gives_the_pages_back() {
    with_ledger(|l| {
        let s = sender(0, ME, RAM);
        let d = descriptor(ME, SP, &[(0x4010_0000, 2)]);
        let mut w = Fake::new(&[error(FfaError::Denied)]);
        assert!(is_error(&mem_send(l, &s, &d, &send_regs(FuncId::MemLend64, &d), &mut w), FfaError::Denied));
        assert_eq!(w.events.last(), Some(&Event::Map(0, 0x4010_0000, 2)));
        assert_eq!(l.owner(RAM.pa + 0x10_0000), None);
        assert_eq!(l.slots_of(0).count(), 0);
    });
}

#[test]
fn fragments_are_translated_and_forwarded_with_the_vm_id() {
    with_ledger(|l| {
        let s = sender(0, ME, RAM);
        let whole = descriptor(ME, SP, &[(0x4010_0000, 1), (0x4020_0000, 1), (0x4030_0000, 1)]);
        let total = whole.len() as u64;
        let mut tx = whole[..96].to_vec(); // header part + the first constituent
        tx.resize(4096, 0);
        let mut w = Fake::new(&[frag_rx(0x99, 96)]);
        let r = mem_send(l, &s, &tx, &[FuncId::MemLend64 as u64, total, 96, 0, 0, 0, 0, 0], &mut w);
        assert_eq!(r, frag_rx(0x99, 96));
        // A bad fragment (an RX/TX page): refused here, the transaction waits.
        let mut bad = (0x4000_0000u64).to_le_bytes().to_vec();
        bad.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        bad.resize(4096, 0);
        let mut w = Fake::new(&[]);
        assert!(is_error(&frag_tx(l, &s, &bad, &[FuncId::MemFragTx as u64, 0x99, 0, 16, 0, 0, 0, 0], &mut w), FfaError::Denied));
        assert!(w.events.is_empty());
        // The rest, from the VM's TX buffer at offset 0.
        let mut rest = whole[96..].to_vec();
        rest.resize(4096, 0);
        let mut w = Fake::new(&[success(0x99)]);
        let r = frag_tx(l, &s, &rest, &[FuncId::MemFragTx as u64, 0x99, 0, 32, 0, 0, 0, 0], &mut w);
        assert_eq!(r, success(0x99));
        let calls = w.calls();
        assert_eq!(*calls[0], [FuncId::MemFragTx as u64, 0x99, 0, 32, (ME as u64) << 16, 0, 0, 0]);
        let Some(Event::Call(_, sent)) = w.events.iter().find(|e| matches!(e, Event::Call(..))) else { panic!() };
        assert_eq!(constituents_at(sent, 0), vec![(RAM.pa + 0x20_0000, 1), (RAM.pa + 0x30_0000, 1)]);
        assert!(w.events.contains(&Event::Unmap(0, 0x4030_0000, 1)));
        let slot = l.find(0, 0x99).unwrap();
        assert!(l.transaction(slot).unwrap().complete);
        // Past the total length, or for a complete one: refused.
        let mut w = Fake::new(&[]);
        assert!(is_error(&frag_tx(l, &s, &rest, &[FuncId::MemFragTx as u64, 0x99, 0, 16, 0, 0, 0, 0], &mut w), FfaError::InvalidParameters));
        assert!(w.events.is_empty());
    });
}

#[test]
fn reclaim_is_for_the_vms_own_complete_handles() {
    with_ledger(|l| {
        let (a, b) = (sender(0, 1, RAM), sender(1, 2, OTHER_RAM));
        let d = descriptor(1, SP, &[(0x4010_0000, 1)]);
        let mut w = Fake::new(&[success(0x10)]);
        assert_eq!(mem_send(l, &a, &d, &send_regs(FuncId::MemLend64, &d), &mut w), success(0x10));
        let mut w = Fake::new(&[]);
        for (who, h) in [(&b, 0x10u64), (&a, 0x11)] {
            let r = reclaim(l, who, &[FuncId::MemReclaim as u64, h, 0, 0, 0, 0, 0, 0], &mut w);
            assert!(is_error(&r, FfaError::InvalidParameters));
        }
        assert!(w.events.is_empty());
        // The SPMC says no (a borrower still holds it): the pages stay lent.
        let mut w = Fake::new(&[error(FfaError::Denied)]);
        assert!(is_error(&reclaim(l, &a, &[FuncId::MemReclaim as u64, 0x10, 0, 0, 0, 0, 0, 0], &mut w), FfaError::Denied));
        assert!(!w.events.iter().any(|e| matches!(e, Event::Map(..))));
        assert!(l.owner(RAM.pa + 0x10_0000).is_some());
    });
}

#[test]
fn teardown_reclaims_what_it_can_and_keeps_what_a_borrower_holds() {
    with_ledger(|l| {
        let s = sender(0, ME, RAM);
        let mut w = Fake::new(&[success(1), success(2), frag_rx(3, 96)]);
        for (f, ipa) in [(FuncId::MemShare64, 0x4010_0000u64), (FuncId::MemLend64, 0x4020_0000)] {
            let d = descriptor(ME, SP, &[(ipa, 1)]);
            mem_send(l, &s, &d, &send_regs(f, &d), &mut w);
        }
        // A fragmented one never finished.
        let whole = descriptor(ME, SP, &[(0x4030_0000, 1), (0x4040_0000, 1)]);
        let mut tx = whole[..96].to_vec();
        tx.resize(4096, 0);
        mem_send(l, &s, &tx, &[FuncId::MemShare64 as u64, whole.len() as u64, 96, 0, 0, 0, 0, 0], &mut w);
        // Another VM's transaction is not touched.
        let other = sender(1, 2, OTHER_RAM);
        let d = descriptor(2, SP, &[(0x4010_0000, 1)]);
        let mut w = Fake::new(&[success(9)]);
        mem_send(l, &other, &d, &send_regs(FuncId::MemShare64, &d), &mut w);

        // Handle 1 comes back, handle 2 is held by its borrower, 3 was never complete.
        let mut w = Fake::new(&[success(0), error(FfaError::Denied), error(FfaError::InvalidParameters)]);
        assert_eq!(teardown(l, 0, RAM, &mut w), (2, 1));
        assert_eq!(w.calls().len(), 3);
        assert!(!w.events.iter().any(|e| matches!(e, Event::Map(..))), "the held lend stays unmapped");
        assert!(l.owner(RAM.pa + 0x10_0000).is_none());
        assert!(l.owner(RAM.pa + 0x20_0000).is_some(), "a page a borrower holds stays out of use");
        assert!(l.owner(RAM.pa + 0x30_0000).is_none());
        assert!(l.owner(OTHER_RAM.pa + 0x10_0000).is_some());
        // A reclaimed lend is mapped back for the VM's next life.
        let d = descriptor(ME, SP, &[(0x4050_0000, 1)]);
        let mut w = Fake::new(&[success(5)]);
        mem_send(l, &s, &d, &send_regs(FuncId::MemLend64, &d), &mut w);
        // (Slot order: the new lend took the first slot, freed above.)
        let mut w = Fake::new(&[success(0), error(FfaError::Denied)]);
        assert_eq!(teardown(l, 0, RAM, &mut w), (1, 1), "the held one is asked again");
        assert!(w.events.contains(&Event::Map(0, 0x4050_0000, 1)));
        // The VM's next life can share the reclaimed pages again, not the held one.
        let s = sender(0, ME, RAM);
        let d = descriptor(ME, SP, &[(0x4010_0000, 1), (0x4030_0000, 1)]);
        let mut w = Fake::new(&[success(4)]);
        assert_eq!(mem_send(l, &s, &d, &send_regs(FuncId::MemShare64, &d), &mut w), success(4));
        let d = descriptor(ME, SP, &[(0x4020_0000, 1)]);
        assert!(is_error(&mem_send(l, &s, &d, &send_regs(FuncId::MemShare64, &d), &mut Fake::new(&[])), FfaError::Denied));
    });
}
