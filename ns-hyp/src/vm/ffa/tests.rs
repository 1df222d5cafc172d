//! The proxy against a fake SPMC and fake VM RAM: every call, every bad input.

extern crate std;

use super::setup::{descriptor_size, properties, COUNT_ONLY, DESCRIPTOR_V1_0, DESCRIPTOR_V1_1, VM_PROPERTIES};
use super::*;
use core::cell::RefCell;
use shared::abi::ffa::{pack_endpoints, QUADRANT_FFA_VERSION};
use std::vec;
use std::vec::Vec;

const RAM_IPA: u64 = crate::vm::layout::RAM_IPA;
const RAM_SIZE: u64 = 16 << 20;
/// VM k's RAM at PA 0x8000_0000 + k * 256 MiB.
fn ram_pa(k: usize) -> u64 {
    0x8000_0000 + k as u64 * 0x1000_0000
}

/// One SP as the fake SPMC lists it.
#[derive(Clone, Copy)]
struct Sp {
    id: u16,
    contexts: u16,
    props: u32,
    uuid: [u8; 16],
}

fn sp(id: u16, contexts: u16) -> Sp {
    Sp { id, contexts, props: properties::DIRECT_REQ_RECV | properties::AARCH64, uuid: [id as u8; 16] }
}

/// The SPMC: partition discovery into ns-hyp's RX buffer, direct requests
/// echoed (or scripted replies), every call recorded.
struct FakeSpmc {
    sps: Vec<Sp>,
    hyp_rx: RefCell<Vec<u8>>,
    hyp_rx_owned: RefCell<bool>,
    script: RefCell<Vec<Regs>>,
    seen: RefCell<Vec<Regs>>,
    /// ns-hyp's TX buffer, and what it held at each memory call.
    hyp_tx: RefCell<Vec<u8>>,
    sent_tx: RefCell<Vec<Vec<u8>>>,
    /// None: the SPMC refuses forwarded FFA_RXTX_MAPs (NOT_SUPPORTED).
    /// Some: it keeps each VM's pair, by id, with whether its RX buffer is
    /// not the SPMC's (an SP's message unread, or acquired by ns-hyp).
    vm_rx: RefCell<Option<std::collections::HashMap<u16, bool>>>,
    /// The endpoint RX/TX descriptors it was sent.
    descriptors: RefCell<Vec<Vec<u8>>>,
}

impl FakeSpmc {
    fn new(sps: Vec<Sp>) -> Self {
        FakeSpmc { sps, hyp_rx: RefCell::new(vec![0; PAGE as usize]), hyp_rx_owned: RefCell::new(false), script: RefCell::new(Vec::new()), seen: RefCell::new(Vec::new()), hyp_tx: RefCell::new(vec![0; PAGE as usize]), sent_tx: RefCell::new(Vec::new()), vm_rx: RefCell::new(None), descriptors: RefCell::new(Vec::new()) }
    }
    fn seen_fids(&self) -> Vec<u32> {
        self.seen.borrow().iter().map(|r| r[0] as u32).collect()
    }
}

impl Upstream for FakeSpmc {
    fn call(&self, r: &Regs) -> Regs {
        self.seen.borrow_mut().push(*r);
        if !self.script.borrow().is_empty() {
            return self.script.borrow_mut().remove(0);
        }
        let f = r[0] as u32;
        if [FuncId::MemShare32, FuncId::MemShare64, FuncId::MemLend32, FuncId::MemLend64, FuncId::MemFragTx].iter().any(|&m| m as u32 == f) {
            let len = if f == FuncId::MemFragTx as u32 { r[3] } else { r[2] } as usize;
            self.sent_tx.borrow_mut().push(self.hyp_tx.borrow()[..len].to_vec());
            let n = self.sent_tx.borrow().len() as u32;
            return success(0x100 + n, 0);
        }
        if f == FuncId::MemReclaim as u32 {
            return success(0, 0);
        }
        if let Some(vms) = self.vm_rx.borrow_mut().as_mut() {
            let id = r[1] as u16;
            match f {
                fid::FFA_RXTX_MAP_64 if r[1..4] == [0, 0, 0] => {
                    let d = self.hyp_tx.borrow()[..80].to_vec();
                    let id = u16::from_le_bytes([d[0], d[1]]);
                    self.descriptors.borrow_mut().push(d);
                    if vms.contains_key(&id) {
                        return error(FfaError::Denied);
                    }
                    vms.insert(id, false);
                    return success(0, 0);
                }
                fid::FFA_RXTX_UNMAP => {
                    return match vms.remove(&((r[1] >> 16) as u16)) {
                        Some(_) => success(0, 0),
                        None => error(FfaError::InvalidParameters),
                    };
                }
                fid::FFA_RX_ACQUIRE => {
                    return match vms.get_mut(&id) {
                        None => error(FfaError::InvalidParameters),
                        Some(full) if *full => error(FfaError::Denied),
                        Some(full) => {
                            *full = true;
                            success(0, 0)
                        }
                    };
                }
                fid::FFA_RX_RELEASE if id != 0 => {
                    return match vms.get_mut(&id) {
                        None => error(FfaError::InvalidParameters),
                        Some(full) if !*full => error(FfaError::Denied),
                        Some(full) => {
                            *full = false;
                            success(0, 0)
                        }
                    };
                }
                _ => {}
            }
        }
        if f == fid::FFA_MSG_SEND2 {
            let len = u32::from_le_bytes(self.hyp_tx.borrow()[8..12].try_into().unwrap()) + u32::from_le_bytes(self.hyp_tx.borrow()[16..20].try_into().unwrap());
            self.sent_tx.borrow_mut().push(self.hyp_tx.borrow()[..len as usize].to_vec());
            return success(0, 0);
        }
        if [fid::FFA_NOTIFICATION_BIND, fid::FFA_NOTIFICATION_UNBIND, fid::FFA_NOTIFICATION_SET, fid::FFA_NOTIFICATION_BITMAP_CREATE, fid::FFA_NOTIFICATION_BITMAP_DESTROY].contains(&f) {
            return success(0, 0);
        }
        if f == fid::FFA_NOTIFICATION_GET {
            // From SPs: notification 5; SPM framework: RX buffer full.
            let mut out = success(0x20, 0);
            out[6] = 1;
            return out;
        }
        match r[0] as u32 {
            fid::FFA_SPM_ID_GET => success(0x8000, 0),
            fid::FFA_PARTITION_INFO_GET => {
                let uuid: Vec<u8> = r[1..5].iter().flat_map(|w| (*w as u32).to_le_bytes()).collect();
                let list: Vec<&Sp> = self.sps.iter().filter(|s| uuid.iter().all(|&b| b == 0) || s.uuid[..] == uuid[..]).collect();
                if list.is_empty() {
                    return error(FfaError::InvalidParameters);
                }
                if r[5] & 1 == 0 {
                    if *self.hyp_rx_owned.borrow() {
                        return error(FfaError::Busy);
                    }
                    *self.hyp_rx_owned.borrow_mut() = true;
                    let mut rx = self.hyp_rx.borrow_mut();
                    rx.resize((list.len() * 24).max(PAGE as usize), 0);
                    for (i, s) in list.iter().enumerate() {
                        let d = &mut rx[i * 24..(i + 1) * 24];
                        d[0..2].copy_from_slice(&s.id.to_le_bytes());
                        d[2..4].copy_from_slice(&s.contexts.to_le_bytes());
                        d[4..8].copy_from_slice(&s.props.to_le_bytes());
                        d[8..24].copy_from_slice(&s.uuid);
                    }
                }
                success(list.len() as u32, 24)
            }
            fid::FFA_RX_RELEASE => {
                if !self.hyp_rx_owned.replace(false) {
                    return error(FfaError::Denied);
                }
                success(0, 0)
            }
            // A VM availability message: the framework response (type + 1).
            fid::FFA_MSG_SEND_DIRECT_REQ_32 if r[2] & (1 << 31) != 0 => {
                let (src, dst) = shared::abi::ffa::unpack_endpoints(r[1]);
                let mut out = [0; 18];
                out[0] = fid::FFA_MSG_SEND_DIRECT_RESP_32 as u64;
                out[1] = pack_endpoints(dst, src);
                out[2] = r[2] + 1;
                out
            }
            fid::FFA_MSG_SEND_DIRECT_REQ_32 | fid::FFA_MSG_SEND_DIRECT_REQ_64 | fid::FFA_MSG_SEND_DIRECT_REQ2 => {
                let (src, dst) = shared::abi::ffa::unpack_endpoints(r[1]);
                let mut out = *r;
                out[0] = (r[0] + 1) as u32 as u64; // REQ -> RESP: the next id in each form
                out[1] = pack_endpoints(dst, src);
                out
            }
            _ => error(FfaError::NotSupported),
        }
    }
    fn with_hyp_rx<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        assert!(*self.hyp_rx_owned.borrow(), "ns-hyp reads its RX buffer only while it owns it");
        f(&self.hyp_rx.borrow())
    }
    fn write_hyp_tx(&self, bytes: &[u8]) {
        self.hyp_tx.borrow_mut()[..bytes.len()].copy_from_slice(bytes);
    }
}

/// Each VM's RAM: RAM_SIZE from IPA RAM_IPA, at `ram_pa(k)`.
struct FakeRam {
    ram: RefCell<Vec<Vec<u8>>>,
    /// Every Stage-2 change: (VM, IPA, pages, mapped).
    stage2: RefCell<Vec<(usize, u64, u64, bool)>>,
    /// Every NPI pended: (VM, vCPU).
    npis: RefCell<Vec<(usize, usize)>>,
}

impl FakeRam {
    fn new() -> Self {
        FakeRam { ram: RefCell::new(vec![vec![0; RAM_SIZE as usize]; config::MAX_VMS]), stage2: RefCell::new(Vec::new()), npis: RefCell::new(Vec::new()) }
    }
    fn read(&self, k: usize, ipa: u64, len: usize) -> Vec<u8> {
        let off = (ipa - RAM_IPA) as usize;
        self.ram.borrow()[k][off..off + len].to_vec()
    }
}

impl Guests for FakeRam {
    fn pages_pa(&self, k: usize, ipa: u64, pages: u64) -> Option<u64> {
        let end = ipa.checked_add(pages * PAGE)?;
        (ipa % PAGE == 0 && ipa >= RAM_IPA && end <= RAM_IPA + RAM_SIZE).then(|| ram_pa(k) + ipa - RAM_IPA)
    }
    fn write(&self, pa: u64, bytes: &[u8]) {
        let k = ((pa - 0x8000_0000) / 0x1000_0000) as usize;
        let off = (pa - ram_pa(k)) as usize;
        assert!(off + bytes.len() <= RAM_SIZE as usize, "a write outside VM {k}'s RAM");
        self.ram.borrow_mut()[k][off..off + bytes.len()].copy_from_slice(bytes);
    }
    fn read(&self, pa: u64, out: &mut [u8]) {
        let k = ((pa - 0x8000_0000) / 0x1000_0000) as usize;
        let off = (pa - ram_pa(k)) as usize;
        out.copy_from_slice(&self.ram.borrow()[k][off..off + out.len()]);
    }
    fn ram(&self, k: usize) -> (u64, u64) {
        (ram_pa(k), RAM_SIZE)
    }
    fn set_mapped(&self, k: usize, ipa: u64, pages: u64, present: bool) -> bool {
        self.stage2.borrow_mut().push((k, ipa, pages, present));
        true
    }
    fn pend_npi(&self, k: usize, v: usize) {
        self.npis.borrow_mut().push((k, v));
    }
}

/// Three VMs of 2, 4 and 1 vCPUs (ids 1, 2, 3) and two SPs.
struct World {
    p: Proxy,
    spmc: FakeSpmc,
    ram: FakeRam,
}

impl World {
    /// An indirect message (v1.2 header, payload right after it) in VM `k`'s TX buffer.
    fn put_message(&self, k: usize, sender: u16, receiver: u16, payload: &[u8]) {
        let mut m = shared::ffa_indirect::header_v1_2(sender, receiver, payload.len() as u32).to_vec();
        m.extend_from_slice(payload);
        self.ram.write(self.ram.pages_pa(k, TX, 1).unwrap(), &m);
    }

    fn new() -> Self {
        Self::with_sps(vec![sp(0x8001, 1), sp(0x8002, 4)])
    }
    fn with_sps(sps: Vec<Sp>) -> Self {
        let p = Proxy::new();
        for (k, vcpus) in [2, 4, 1].into_iter().enumerate() {
            p.add_vm(k, vm_id(k), vcpus);
        }
        World { p, spmc: FakeSpmc::new(sps), ram: FakeRam::new() }
    }
    fn call(&self, k: usize, list: &[u64]) -> Regs {
        let mut r = [0; 18];
        r[..list.len()].copy_from_slice(list);
        self.p.handle(k, &r, &self.spmc, &self.ram)
    }
    /// RXTX_MAP_64 of TX at `tx`, RX at `rx`, one page each.  ns-hyp
    /// forwards it to the SPMC, which (unless `vm_rx` says it keeps VMs'
    /// pairs) refuses: that attempt is dropped from `seen`, the tests of
    /// forwarding look at it (`tests/rx_forwarding.rs`).
    fn map(&self, k: usize, tx: u64, rx: u64) -> Regs {
        let n = self.spmc.seen.borrow().len();
        let r = self.call(k, &[fid::FFA_RXTX_MAP_64 as u64, tx, rx, 1]);
        if self.spmc.vm_rx.borrow().is_none() && self.spmc.seen.borrow().len() == n + 1 {
            let fwd = self.spmc.seen.borrow_mut().pop().unwrap();
            assert_eq!(fwd[..4], [fid::FFA_RXTX_MAP_64 as u64, 0, 0, 0], "the forwarded map");
        }
        r
    }
}

const TX: u64 = RAM_IPA + 0x10_0000;
const RX: u64 = RAM_IPA + 0x10_1000;

fn err(e: FfaError) -> Regs {
    error(e)
}

fn is_success(r: &Regs) -> bool {
    r[0] as u32 == fid::FFA_SUCCESS_32
}

#[test]
fn the_table_is_well_formed() {
    for (i, c) in CALLS.iter().enumerate() {
        assert!(fid::is_ffa(c.fid), "{} {:#x}", c.name, c.fid);
        assert!(c.name.starts_with("FFA_"));
        assert!(CALLS[i + 1..].iter().all(|d| d.fid != c.fid), "{} twice", c.name);
    }
    // Memory management: the lender's calls are proxied, the rest refused.
    for (f, h) in [
        (FuncId::MemShare32, Handler::MemSend),
        (FuncId::MemShare64, Handler::MemSend),
        (FuncId::MemLend64, Handler::MemSend),
        (FuncId::MemReclaim, Handler::MemReclaim),
        (FuncId::MemFragTx, Handler::MemFragTx),
        (FuncId::MemDonate64, Handler::Memory),
        (FuncId::MemFragRx, Handler::Memory),
    ] {
        assert_eq!(find(f as u32).map(|c| c.handler), Some(h));
    }
}

#[test]
fn features_come_from_the_table() {
    let w = World::new();
    for c in CALLS {
        let r = w.call(0, &[fid::FFA_FEATURES as u64, c.fid as u64]);
        // Without a ledger (no memory sharing set up) the memory calls are off.
        if c.handler.supported() && !c.handler.is_memory() {
            assert_eq!(r, success(0, 0), "{}", c.name);
        } else {
            assert_eq!(r, err(FfaError::NotSupported), "{}", c.name);
        }
    }
    // A guest must not create notification bitmaps; memory sharing is not set up here.
    for f in [fid::FFA_NOTIFICATION_BITMAP_CREATE, FuncId::MemShare64 as u32, FuncId::MemLend32 as u32, fid::FFA_PARTITION_INFO_GET_REGS] {
        assert_eq!(w.call(0, &[fid::FFA_FEATURES as u64, f as u64]), err(FfaError::NotSupported), "{f:#x}");
    }
    // The NPI's interrupt id; the SRI, MEI and ids nobody allocated are not offered.
    assert_eq!(w.call(0, &[fid::FFA_FEATURES as u64, 1]), success(notify::NPI_INTID, 0));
    for f in [2u64, 3, 0x8400_00ff, fid::FFA_NOTIFICATION_INFO_GET_64 as u64, fid::FFA_NOTIFICATION_BITMAP_DESTROY as u64] {
        assert_eq!(w.call(0, &[fid::FFA_FEATURES as u64, f]), err(FfaError::NotSupported), "{f:#x}");
    }
    // FFA_FEATURES is SMC32: it sees only w1, so a high word is ignored.
    assert_eq!(w.call(0, &[fid::FFA_FEATURES as u64, 1 << 32 | fid::FFA_RXTX_MAP_64 as u64]), success(0, 0));
}

#[test]
fn unknown_and_refused_calls() {
    let w = World::new();
    for f in [0x8400_00ffu64, 0x8400_006a, fid::FFA_MSG_WAIT as u64, fid::FFA_NOTIFICATION_BITMAP_CREATE as u64, fid::FFA_NOTIFICATION_INFO_GET_32 as u64, FuncId::MemShare64 as u64, 1 << 32 | fid::FFA_VERSION as u64, fid::FFA_PARTITION_INFO_GET_REGS as u64] {
        assert_eq!(w.call(0, &[f, 0x1_0002]), err(FfaError::NotSupported), "{f:#x}");
    }
    // Nothing reached the SPMC.
    assert!(w.spmc.seen.borrow().is_empty());
    // A VM that is no endpoint (a Realm, an unused slot) gets NOT_SUPPORTED for everything.
    assert_eq!(w.call(3, &[fid::FFA_ID_GET as u64]), err(FfaError::NotSupported));
}

#[test]
fn version_and_ids() {
    let w = World::new();
    assert_eq!(w.call(0, &[fid::FFA_VERSION as u64, 0x1_0002])[..2], [QUADRANT_FFA_VERSION as u64, 0]);
    assert_eq!(w.p.vm(0).version, 0x1_0002);
    // A newer minor version: ours is the answer, the VM gets v1.2 layouts.
    assert_eq!(w.call(1, &[fid::FFA_VERSION as u64, 0x1_0009])[0], QUADRANT_FFA_VERSION as u64);
    assert_eq!(w.p.vm(1).version, 0x1_0002);
    assert_eq!(w.call(2, &[fid::FFA_VERSION as u64, 0x1_0000])[0], QUADRANT_FFA_VERSION as u64);
    assert_eq!(descriptor_size(w.p.vm(2).version), DESCRIPTOR_V1_0);
    // Bit 31 set, or another major version: NOT_SUPPORTED in w0.
    for v in [0x8001_0002u64, 0x2_0000, 0] {
        assert_eq!(w.call(0, &[fid::FFA_VERSION as u64, v])[0], u32::MAX as u64, "{v:#x}");
    }
    assert_eq!(w.p.vm(0).version, 0x1_0002, "a refused FFA_VERSION changes nothing");
    for k in 0..3 {
        assert_eq!(w.call(k, &[fid::FFA_ID_GET as u64]), success(k as u32 + 1, 0));
    }
    assert_eq!(w.call(0, &[fid::FFA_SPM_ID_GET as u64]), success(0x8000, 0));
}

#[test]
fn rxtx_map_translates_and_pins() {
    let w = World::new();
    assert_eq!(w.map(0, TX, RX), success(0, 0));
    let m = w.p.vm(0).mailbox.unwrap();
    assert_eq!((m.tx_pa, m.rx_pa, m.pages, m.rx_full), (ram_pa(0) + 0x10_0000, ram_pa(0) + 0x10_1000, 1, false));
    assert_eq!(w.p.is_mailbox_page(ram_pa(0) + 0x10_1abc), Some(0));
    assert_eq!(w.p.is_mailbox_page(ram_pa(0) + 0x10_2000), None);
    assert_eq!(w.map(0, TX + 0x4000, RX + 0x4000), err(FfaError::Denied), "a second pair");
    // The same IPAs in another VM are that VM's pages.
    assert_eq!(w.map(1, TX, RX), success(0, 0));
    assert_eq!(w.p.is_mailbox_page(ram_pa(1) + 0x10_0000), Some(1));
    assert!(w.spmc.seen.borrow().is_empty(), "an SPMC that refuses the forwarded pair is not asked again");
    assert!(!w.p.vm(0).mailbox.unwrap().forwarded);
}

#[test]
fn rxtx_map_bad_input() {
    let w = World::new();
    let end = RAM_IPA + RAM_SIZE;
    let bad: &[(&str, [u64; 4])] = &[
        ("unaligned TX", [fid::FFA_RXTX_MAP_64 as u64, TX + 8, RX, 1]),
        ("unaligned RX", [fid::FFA_RXTX_MAP_64 as u64, TX, RX + 0x800, 1]),
        ("no pages", [fid::FFA_RXTX_MAP_64 as u64, TX, RX, 0]),
        ("reserved w3 bits", [fid::FFA_RXTX_MAP_64 as u64, TX, RX, 1 | 1 << 6]),
        ("TX below RAM", [fid::FFA_RXTX_MAP_64 as u64, RAM_IPA - PAGE, RX, 1]),
        ("RX past RAM", [fid::FFA_RXTX_MAP_64 as u64, TX, end, 1]),
        ("RX across the end of RAM", [fid::FFA_RXTX_MAP_64 as u64, TX, end - PAGE, 2]),
        ("a device IPA", [fid::FFA_RXTX_MAP_64 as u64, 0x0900_0000, RX, 1]),
        ("overlapping buffers", [fid::FFA_RXTX_MAP_64 as u64, TX, TX + PAGE, 2]),
        ("the same page twice", [fid::FFA_RXTX_MAP_64 as u64, TX, TX, 1]),
        ("wrapping around", [fid::FFA_RXTX_MAP_64 as u64, u64::MAX & !0xfff, RX, 2]),
        ("another VM's PA as an IPA", [fid::FFA_RXTX_MAP_64 as u64, ram_pa(1), RX, 1]),
    ];
    for (what, r) in bad {
        assert_eq!(w.call(0, r), err(FfaError::InvalidParameters), "{what}");
        assert_eq!(w.p.vm(0).mailbox, None, "{what}");
    }
    // SMC32: only the low words count, so a high word does not move the buffer.
    assert_eq!(w.call(0, &[fid::FFA_RXTX_MAP_32 as u64, 1 << 32 | TX, 1 << 40 | RX, 1 << 32 | 1]), success(0, 0));
    assert_eq!(w.p.vm(0).mailbox.unwrap().tx_pa, ram_pa(0) + 0x10_0000);
}

#[test]
fn rxtx_unmap_and_rx_release() {
    let w = World::new();
    assert_eq!(w.call(0, &[fid::FFA_RXTX_UNMAP as u64]), err(FfaError::InvalidParameters), "nothing mapped");
    assert_eq!(w.call(0, &[fid::FFA_RX_RELEASE as u64]), err(FfaError::Denied), "no buffer to release");
    w.map(0, TX, RX);
    assert_eq!(w.call(0, &[fid::FFA_RX_RELEASE as u64]), err(FfaError::Denied), "RX is not the VM's");
    assert_eq!(w.call(0, &[fid::FFA_RX_RELEASE as u64, 2]), err(FfaError::InvalidParameters), "another VM's id");
    // Another VM's id, or reserved bits.
    assert_eq!(w.call(0, &[fid::FFA_RXTX_UNMAP as u64, 2 << 16]), err(FfaError::InvalidParameters));
    assert_eq!(w.call(0, &[fid::FFA_RXTX_UNMAP as u64, 1]), err(FfaError::InvalidParameters));
    assert!(w.p.vm(0).mailbox.is_some());
    // Its own id is accepted like 0.
    assert_eq!(w.call(0, &[fid::FFA_RXTX_UNMAP as u64, 1 << 16]), success(0, 0));
    assert_eq!(w.p.is_mailbox_page(ram_pa(0) + 0x10_0000), None);
    assert_eq!(w.map(0, TX, RX), success(0, 0), "mapped again after the unmap");
    assert_eq!(w.call(0, &[fid::FFA_RXTX_UNMAP as u64]), success(0, 0));
}

/// The descriptors in VM `k`'s RX buffer.
fn descriptors(w: &World, k: usize, n: usize, size: usize) -> Vec<(u16, u16, u32, Vec<u8>)> {
    let b = w.ram.read(k, RX, n * size);
    b.chunks(size)
        .map(|d| (u16::from_le_bytes([d[0], d[1]]), u16::from_le_bytes([d[2], d[3]]), u32::from_le_bytes([d[4], d[5], d[6], d[7]]), d[8..].to_vec()))
        .collect()
}

#[test]
fn partition_info_lists_sps_then_the_other_vms() {
    let w = World::new();
    w.map(1, TX, RX);
    let r = w.call(1, &[fid::FFA_PARTITION_INFO_GET as u64]);
    assert_eq!(r, success(4, DESCRIPTOR_V1_1 as u32));
    let d = descriptors(&w, 1, 4, DESCRIPTOR_V1_1);
    assert_eq!(d[0], (0x8001, 1, properties::DIRECT_REQ_RECV | properties::AARCH64, vec![0x01; 16]));
    assert_eq!(d[1].0, 0x8002);
    assert_eq!(d[1].3, vec![0x02; 16]);
    // VM 1 (id 2) sees VMs 0 and 2, not itself: their vCPU counts, a Linux VM's properties, nil UUIDs.
    assert_eq!(d[2], (1, 2, VM_PROPERTIES, vec![0; 16]));
    assert_eq!(d[3], (3, 1, VM_PROPERTIES, vec![0; 16]));
    assert_eq!(VM_PROPERTIES & properties::DIRECT_REQ_RECV, 0, "Linux VMs receive no direct requests");
    // ns-hyp asked with its own buffer and gave it back.
    assert_eq!(w.spmc.seen_fids(), [fid::FFA_PARTITION_INFO_GET, fid::FFA_RX_RELEASE]);
    assert!(!*w.spmc.hyp_rx_owned.borrow());
    // The VM owns its RX until it releases it: BUSY meanwhile.
    assert!(w.p.vm(1).mailbox.unwrap().rx_full);
    assert_eq!(w.call(1, &[fid::FFA_PARTITION_INFO_GET as u64]), err(FfaError::Busy));
    assert_eq!(w.call(1, &[fid::FFA_RX_RELEASE as u64]), success(0, 0));
    assert_eq!(w.call(1, &[fid::FFA_RX_RELEASE as u64]), err(FfaError::Denied), "released twice");
    assert!(is_success(&w.call(1, &[fid::FFA_PARTITION_INFO_GET as u64])));
}

#[test]
fn partition_info_count_only_and_v1_0() {
    let w = World::new();
    // Count only: no buffer needed, none written or owned.
    assert_eq!(w.call(0, &[fid::FFA_PARTITION_INFO_GET as u64, 0, 0, 0, 0, COUNT_ONLY as u64]), success(4, 24));
    assert_eq!(w.spmc.seen_fids(), [fid::FFA_PARTITION_INFO_GET], "no RX_RELEASE: the SPMC wrote nothing");
    // Without a buffer a full answer is BUSY (as the SPMC answers); nothing goes up.
    assert_eq!(w.call(0, &[fid::FFA_PARTITION_INFO_GET as u64]), err(FfaError::Busy));
    assert_eq!(w.spmc.seen.borrow().len(), 1);
    // Reserved flag bits.
    w.map(0, TX, RX);
    assert_eq!(w.call(0, &[fid::FFA_PARTITION_INFO_GET as u64, 0, 0, 0, 0, 2]), err(FfaError::InvalidParameters));
    assert!(!w.p.vm(0).mailbox.unwrap().rx_full);
    // A v1.0 guest: 8-byte descriptors, w3 = 0, and no flags at all.
    w.call(0, &[fid::FFA_VERSION as u64, 0x1_0000]);
    assert_eq!(w.call(0, &[fid::FFA_PARTITION_INFO_GET as u64, 0, 0, 0, 0, COUNT_ONLY as u64]), err(FfaError::InvalidParameters));
    assert_eq!(w.call(0, &[fid::FFA_PARTITION_INFO_GET as u64]), success(4, 0));
    let d = descriptors(&w, 0, 4, DESCRIPTOR_V1_0);
    assert_eq!(d.iter().map(|d| (d.0, d.1)).collect::<Vec<_>>(), [(0x8001, 1), (0x8002, 4), (2, 4), (3, 1)]);
    // The 9th byte is untouched: nothing past 4 x 8 bytes.
    assert_eq!(w.ram.read(0, RX + 32, 8), [0; 8]);
}

#[test]
fn partition_info_with_a_uuid_and_errors() {
    let w = World::new();
    w.map(0, TX, RX);
    // An SP's UUID: forwarded as it is; that SP only, no VM.
    let u = [0x0202_0202u64; 4];
    assert_eq!(w.call(0, &[fid::FFA_PARTITION_INFO_GET as u64, u[0], u[1], u[2], u[3]]), success(1, 24));
    assert_eq!(descriptors(&w, 0, 1, 24)[0].0, 0x8002);
    assert_eq!(&w.spmc.seen.borrow()[0][1..5], &u);
    w.call(0, &[fid::FFA_RX_RELEASE as u64]);
    // A UUID nobody has: the SPMC's INVALID_PARAMETERS, and the VM's RX stays free.
    assert_eq!(w.call(0, &[fid::FFA_PARTITION_INFO_GET as u64, 7, 7, 7, 7]), err(FfaError::InvalidParameters));
    assert!(!w.p.vm(0).mailbox.unwrap().rx_full);
    // The SPMC busy (ns-hyp's own buffer not free): BUSY, the VM's RX stays free.
    w.spmc.script.borrow_mut().push(err(FfaError::Busy));
    assert_eq!(w.call(0, &[fid::FFA_PARTITION_INFO_GET as u64]), err(FfaError::Busy));
    assert!(!w.p.vm(0).mailbox.unwrap().rx_full);
}

#[test]
fn partition_info_too_big_for_the_buffer() {
    let w = World::with_sps((0..200).map(|i| sp(0x8001 + i, 1)).collect());
    w.map(0, TX, RX);
    assert_eq!(w.call(0, &[fid::FFA_PARTITION_INFO_GET as u64]), err(FfaError::NoMemory));
    assert!(!w.p.vm(0).mailbox.unwrap().rx_full);
    assert!(!*w.spmc.hyp_rx_owned.borrow(), "ns-hyp released its own buffer all the same");
    // The count alone is fine.
    assert_eq!(w.call(0, &[fid::FFA_PARTITION_INFO_GET as u64, 0, 0, 0, 0, 1]), success(202, 24));
}

#[test]
fn direct_requests_go_to_sps_under_the_vms_id() {
    let w = World::new();
    let req = [fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, pack_endpoints(2, 0x8001), 0, 3, 4, 5, 6, 7, 0xdead];
    let r = w.call(1, &req);
    assert_eq!(r[0] as u32, fid::FFA_MSG_SEND_DIRECT_RESP_64);
    assert_eq!(r[1], pack_endpoints(0x8001, 2));
    assert_eq!(&r[3..8], &[3, 4, 5, 6, 7]);
    // Forwarded unchanged, x8 on not passed.
    let seen = w.spmc.seen.borrow()[0];
    assert_eq!(&seen[..8], &req[..8]);
    assert_eq!(seen[8], 0);
    // REQ_32: the low words only.
    let r = w.call(0, &[fid::FFA_MSG_SEND_DIRECT_REQ_32 as u64, 1 << 32 | pack_endpoints(1, 0x8002), 0, 1 << 32 | 9]);
    assert_eq!(r[0] as u32, fid::FFA_MSG_SEND_DIRECT_RESP_32);
    assert_eq!(w.spmc.seen.borrow()[1][3], 9);
    // REQ2: the UUID and payload in x2..x17 pass.
    let mut req2 = [7u64; 18];
    req2[0] = fid::FFA_MSG_SEND_DIRECT_REQ2 as u64;
    req2[1] = pack_endpoints(3, 0x8001);
    let r = w.call(2, &req2);
    assert_eq!(r[0] as u32, fid::FFA_MSG_SEND_DIRECT_RESP2);
    assert_eq!(w.spmc.seen.borrow()[2][2..], req2[2..]);
}

#[test]
fn direct_request_bad_input() {
    let w = World::new();
    let req = |src: u16, dst: u16, w2: u64| [fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, pack_endpoints(src, dst), w2];
    let cases: &[(&str, [u64; 3], FfaError)] = &[
        ("another VM's id as the sender", req(2, 0x8001, 0), FfaError::InvalidParameters),
        ("the hypervisor's id as the sender", req(0, 0x8001, 0), FfaError::InvalidParameters),
        ("an SP's id as the sender", req(0x8002, 0x8001, 0), FfaError::InvalidParameters),
        ("a framework message", req(1, 0x8001, 1 << 31 | 4), FfaError::InvalidParameters),
        ("reserved w2 bits", req(1, 0x8001, 1), FfaError::InvalidParameters),
        ("to itself", req(1, 1, 0), FfaError::InvalidParameters),
        ("to the hypervisor", req(1, 0, 0), FfaError::InvalidParameters),
        ("to no endpoint", req(1, 9, 0), FfaError::InvalidParameters),
        ("to another VM, which receives none", req(1, 2, 0), FfaError::Denied),
        ("to a third VM", req(1, 3, 0), FfaError::Denied),
    ];
    for (what, r, e) in cases {
        assert_eq!(w.call(0, r), err(*e), "{what}");
    }
    // Upper bits of w1 in the SMC64 form.
    assert_eq!(w.call(0, &[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, 1 << 32 | pack_endpoints(1, 0x8001)]), err(FfaError::InvalidParameters));
    assert!(w.spmc.seen.borrow().is_empty(), "nothing reached the SPMC");
    // The SPMC's own error comes back as it is.
    w.spmc.script.borrow_mut().push(err(FfaError::Busy));
    assert_eq!(w.call(0, &req(1, 0x8001, 0)), err(FfaError::Busy));
}

fn unfinished(f: u32, target: u32) -> Regs {
    let mut r = [0; 18];
    r[0] = f as u64;
    r[1] = target as u64;
    r
}

#[test]
fn run_resumes_only_the_vms_own_preempted_context() {
    let w = World::new();
    let target = 0x8002_0001u32;
    // VM 0's request is preempted: the guest gets FFA_INTERRUPT.
    w.spmc.script.borrow_mut().push(unfinished(fid::FFA_INTERRUPT, target));
    let r = w.call(0, &[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, pack_endpoints(1, 0x8002)]);
    assert_eq!(r[..2], [fid::FFA_INTERRUPT as u64, target as u64]);
    assert_eq!(direct::preempted_count(&w.p), 1);
    // VM 1 may not resume it.
    assert_eq!(w.call(1, &[fid::FFA_RUN as u64, target as u64]), err(FfaError::Denied));
    // VM 0 does; the SP yields once, then answers.
    w.spmc.script.borrow_mut().push(unfinished(fid::FFA_YIELD, target));
    assert_eq!(w.call(0, &[fid::FFA_RUN as u64, target as u64, 5, 5])[0] as u32, fid::FFA_YIELD);
    let mut resp = [0; 18];
    resp[0] = fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64;
    resp[1] = pack_endpoints(0x8002, 1);
    w.spmc.script.borrow_mut().push(resp);
    assert_eq!(w.call(0, &[fid::FFA_RUN as u64, target as u64]), resp);
    assert_eq!(direct::preempted_count(&w.p), 0);
    // FFA_RUN's reserved w2..w7 were not passed on.
    assert_eq!(w.spmc.seen.borrow()[1][..3], [fid::FFA_RUN as u64, target as u64, 0]);
    // A VM's or the hypervisor's context: ns-hyp schedules those itself.
    for t in [0x0002_0000u64, 0x0001_0000, 0] {
        assert_eq!(w.call(0, &[fid::FFA_RUN as u64, t]), err(FfaError::Denied), "{t:#x}");
    }
}

#[test]
fn a_torn_down_vms_response_reaches_nobody_else() {
    let w = World::new();
    let target = 0x8002_0000u32;
    w.spmc.script.borrow_mut().push(unfinished(fid::FFA_INTERRUPT, target));
    w.call(0, &[fid::FFA_MSG_SEND_DIRECT_REQ_64 as u64, pack_endpoints(1, 0x8002)]);
    w.map(0, TX, RX);
    w.p.reset_vm(0);
    assert_eq!(direct::preempted_count(&w.p), 0);
    assert_eq!(w.p.vm(0).mailbox, None, "teardown unpins the buffers");
    assert_eq!(w.p.is_mailbox_page(ram_pa(0) + 0x10_0000), None);
    assert_eq!(w.call(0, &[fid::FFA_ID_GET as u64]), success(1, 0), "a reset VM keeps its id");
    // VM 1 runs the context; the SP's answer to VM 0 is not handed to VM 1.
    let mut resp = [0; 18];
    resp[0] = fid::FFA_MSG_SEND_DIRECT_RESP_64 as u64;
    resp[1] = pack_endpoints(0x8002, 1);
    resp[3] = 0x5ec7e7;
    w.spmc.script.borrow_mut().push(resp);
    assert_eq!(w.call(1, &[fid::FFA_RUN as u64, target as u64]), err(FfaError::Aborted));
}

// B3 item 2: memory sharing through the proxy (the ledger's own rules are
// tested in `memory/tests.rs`; here the path from a VM's TX buffer).

use super::memory::tests::descriptor;

impl World {
    /// Guests may share: a ledger over every VM's RAM.
    fn with_memory(self) -> Self {
        let pages = std::boxed::Box::leak(vec![0u8; (config::MAX_VMS << 28) / PAGE as usize].into_boxed_slice());
        self.p.set_ledger(super::memory::Ledger::new(0x8000_0000, pages));
        self
    }
    /// Writes `d` into VM k's TX buffer (at IPA TX).
    fn put_tx(&self, k: usize, d: &[u8]) {
        self.ram.write(ram_pa(k) + TX - RAM_IPA, d);
    }
}

const ECHO: u16 = 0x8001;

#[test]
fn memory_calls_are_refused_without_a_ledger_and_features_say_which_are_proxied() {
    let w = World::new();
    assert!(is_success(&w.map(0, TX, RX)));
    let d = descriptor(vm_id(0), ECHO, &[(RAM_IPA + 0x20_0000, 1)]);
    w.put_tx(0, &d);
    assert_eq!(w.call(0, &[FuncId::MemShare64 as u64, d.len() as u64, d.len() as u64]), err(FfaError::NotSupported));
    assert_eq!(w.call(0, &[fid::FFA_FEATURES as u64, FuncId::MemShare64 as u64]), err(FfaError::NotSupported));
    let w = w.with_memory();
    for (f, ok) in [(FuncId::MemShare64, true), (FuncId::MemLend32, true), (FuncId::MemFragTx, true), (FuncId::MemReclaim, true), (FuncId::MemDonate64, false), (FuncId::MemRetrieveReq64, false), (FuncId::MemFragRx, false)] {
        assert_eq!(is_success(&w.call(0, &[fid::FFA_FEATURES as u64, f as u64])), ok, "{f:?}");
    }
}

#[test]
fn a_guest_shares_and_lends_from_its_tx_buffer_and_reclaims() {
    let w = World::new().with_memory();
    // No TX buffer yet: nothing to read the descriptor from.
    let d = descriptor(vm_id(1), ECHO, &[(RAM_IPA + 0x20_0000, 2)]);
    assert_eq!(w.call(1, &[FuncId::MemShare64 as u64, d.len() as u64, d.len() as u64]), err(FfaError::Denied));
    assert!(is_success(&w.map(1, TX, RX)));
    w.put_tx(1, &d);
    let r = w.call(1, &[FuncId::MemShare64 as u64, d.len() as u64, d.len() as u64]);
    assert!(is_success(&r), "{r:#x?}");
    let sent = w.spmc.sent_tx.borrow()[0].clone();
    assert_eq!(u64::from_le_bytes(sent[80..88].try_into().unwrap()), ram_pa(1) + 0x20_0000, "the SPMC sees the PA");
    assert!(w.ram.stage2.borrow().is_empty(), "a share leaves Stage-2 alone");
    // Lend: out of Stage-2, then back at reclaim.
    let d = descriptor(vm_id(1), ECHO, &[(RAM_IPA + 0x30_0000, 1)]);
    w.put_tx(1, &d);
    let r = w.call(1, &[FuncId::MemLend32 as u64, d.len() as u64, d.len() as u64]);
    assert!(is_success(&r));
    assert_eq!(*w.ram.stage2.borrow(), vec![(1, RAM_IPA + 0x30_0000, 1, false)]);
    // Another VM cannot reclaim it; the lender can.
    assert!(is_success(&w.map(0, TX, RX)));
    assert_eq!(w.call(0, &[FuncId::MemReclaim as u64, r[2], r[3], 0]), err(FfaError::InvalidParameters));
    assert!(is_success(&w.call(1, &[FuncId::MemReclaim as u64, r[2], r[3], 0])));
    assert_eq!(w.ram.stage2.borrow()[1], (1, RAM_IPA + 0x30_0000, 1, true));
}

#[test]
fn a_guest_cannot_share_its_mailbox_another_vms_id_or_a_fragment_past_ns_hyps_tx() {
    let w = World::new().with_memory();
    assert!(is_success(&w.map(0, TX, RX)));
    for (d, want) in [
        (descriptor(vm_id(0), ECHO, &[(RX, 1)]), FfaError::Denied),
        (descriptor(vm_id(0), ECHO, &[(TX, 1)]), FfaError::Denied),
        (descriptor(vm_id(1), ECHO, &[(RAM_IPA + 0x20_0000, 1)]), FfaError::InvalidParameters),
        (descriptor(vm_id(0), ECHO, &[(RAM_IPA + RAM_SIZE, 1)]), FfaError::Denied),
    ] {
        w.put_tx(0, &d);
        assert_eq!(w.call(0, &[FuncId::MemShare64 as u64, d.len() as u64, d.len() as u64]), err(want));
    }
    assert_eq!(w.call(0, &[FuncId::MemShare64 as u64, 8192, 8192]), err(FfaError::InvalidParameters));
    assert!(w.spmc.sent_tx.borrow().is_empty(), "the SPMC heard none of them");
}

#[test]
fn a_vm_going_away_gives_its_memory_back() {
    let w = World::new().with_memory();
    assert!(is_success(&w.map(2, TX, RX)));
    let d = descriptor(vm_id(2), ECHO, &[(RAM_IPA + 0x20_0000, 4)]);
    w.put_tx(2, &d);
    assert!(is_success(&w.call(2, &[FuncId::MemLend64 as u64, d.len() as u64, d.len() as u64])));
    w.p.vm_gone(2, &w.spmc, &w.ram);
    assert!(w.spmc.seen_fids().contains(&(FuncId::MemReclaim as u32)));
    assert_eq!(w.ram.stage2.borrow().last(), Some(&(2, RAM_IPA + 0x20_0000, 4, true)));
    assert_eq!(w.p.vm(2).mailbox, None, "its buffers are unpinned too");
    // Its next life lends the same pages again.
    assert!(is_success(&w.map(2, TX, RX)));
    w.put_tx(2, &d);
    assert!(is_success(&w.call(2, &[FuncId::MemLend64 as u64, d.len() as u64, d.len() as u64])));
}

mod notifications;
mod availability;
mod rx_forwarding;
