//! Setup and discovery for a VM (DEN0077 v1.2, "Setup and discovery
//! interfaces"): FFA_VERSION, FFA_FEATURES, FFA_SPM_ID_GET, the VM's RX/TX
//! buffers (FFA_RXTX_MAP, FFA_RXTX_UNMAP, FFA_RX_RELEASE) and
//! FFA_PARTITION_INFO_GET.  FFA_ID_GET is answered in the dispatcher.
//!
//! A VM's RX/TX pair is also the SPMC's business: SPs send VMs indirect
//! messages.  ns-hyp forwards each map to the SPMC (FFA_RXTX_MAP with w1,
//! w2, w3 zero and an endpoint RX/TX descriptor in ns-hyp's TX buffer;
//! DEN0077 v1.2, FFA_RXTX_MAP) and each unmap (FFA_RXTX_UNMAP with the VM id
//! in w1[31:16]).  Both are then producers for the VM's RX buffer: the
//! SPMC owns it when ns-hyp does not hold it ([`Mailbox::rx_full`]);
//! ns-hyp takes it with FFA_RX_ACQUIRE (VM id in w1) before writing
//! ([`reserve_rx`]) and gives it back with FFA_RX_RELEASE (VM id in w1)
//! when the VM released it; a guest's FFA_RX_RELEASE of a message the SPMC
//! wrote goes to the SPMC the same way.  An SPMC that refuses the map (no
//! VM support) leaves the pair ns-hyp's alone, as without forwarding.

use super::{error, find, success, Guests, Mailbox, Proxy, Regs, Upstream, MAX_VMS, PAGE};
use shared::abi::ffa::{fid, version_major, version_minor, FfaError, QUADRANT_FFA_VERSION};

/// FFA_RXTX_MAP w3: bits 5:0 the page count of each buffer, bits 31:6 reserved (MBZ).
const PAGE_COUNT_MASK: u32 = 0x3f;

/// A partition information descriptor: v1.0's 8 bytes (id, execution
/// context count, properties), v1.1 and later 24 (the same, then the UUID).
pub const DESCRIPTOR_V1_0: usize = 8;
pub const DESCRIPTOR_V1_1: usize = 24;

/// FFA_PARTITION_INFO_GET w5 bit 0: return the count only (v1.1 on).
pub const COUNT_ONLY: u32 = 1;

/// Partition properties (DEN0077 v1.2, partition information descriptor):
/// the bits a VM's descriptor and the tests name.
#[allow(dead_code)]
pub mod properties {
    pub const DIRECT_REQ_RECV: u32 = 1 << 0;
    pub const DIRECT_REQ_SEND: u32 = 1 << 1;
    pub const INDIRECT_MSG: u32 = 1 << 2;
    pub const NOTIFICATION_RECV: u32 = 1 << 3;
    pub const VM_CREATED_MSG: u32 = 1 << 6;
    pub const VM_DESTROYED_MSG: u32 = 1 << 7;
    pub const AARCH64: u32 = 1 << 8;
}

/// What another VM's descriptor says of it: a Linux VM sends direct
/// requests, may use indirect messages and receive notifications (ns-hyp
/// passes both between VMs), receives no direct request (its driver has no
/// receive path), runs AArch64; its id is a PE endpoint id (bits 5:4 = 0).
pub const VM_PROPERTIES: u32 = properties::DIRECT_REQ_SEND | properties::INDIRECT_MSG | properties::NOTIFICATION_RECV | properties::AARCH64;

/// The descriptor layout for a guest that negotiated `version`.
pub fn descriptor_size(version: u32) -> usize {
    if version_major(version) == 1 && version_minor(version) == 0 { DESCRIPTOR_V1_0 } else { DESCRIPTOR_V1_1 }
}

/// FFA_VERSION: w1 the caller's version (bit 31 MBZ).  The answer is ours,
/// v1.2, in w0 (no FFA_SUCCESS), or NOT_SUPPORTED in w0 for a caller of
/// another major version, with which v1.x is not compatible (DEN0077 v1.2,
/// FFA_VERSION).  The version asked for is kept: it decides the layout of
/// the partition descriptors the VM gets.
pub fn version(p: &Proxy, k: usize, a: &Regs) -> Regs {
    let asked = a[1] as u32;
    let mut r = [0; 18];
    if asked & (1 << 31) != 0 || version_major(asked) != version_major(QUADRANT_FFA_VERSION) {
        r[0] = i32::from(FfaError::NotSupported) as u32 as u64;
        return r;
    }
    p.vms[k].lock().version = asked.min(QUADRANT_FFA_VERSION);
    r[0] = QUADRANT_FFA_VERSION as u64;
    r
}

/// FFA_FEATURES: w1 a function id (bit 31 set) or a feature id.  Functions
/// from the call table the proxy implements are present with no properties
/// (for FFA_RXTX_MAP, w2 bits 1:0 = 0: 4 KiB minimum size and alignment).
/// Of the feature ids a VM gets the Notification Pending Interrupt's
/// ([`super::notify::feature`]).
pub fn features(p: &Proxy, _: usize, a: &Regs) -> Regs {
    let id = a[1] as u32;
    if id & (1 << 31) == 0 {
        return super::notify::feature(id);
    }
    match find(id) {
        // Memory calls: only with memory sharing set up.  w2 = 0: no
        // dynamic buffer (the descriptor is in the TX buffer), no NS bit.
        Some(c) if c.handler.is_memory() && p.memory.lock().is_none() => error(FfaError::NotSupported),
        Some(c) if c.handler.supported() => success(0, 0),
        _ => error(FfaError::NotSupported),
    }
}

/// FFA_SPM_ID_GET: the SPMC's own answer.
pub fn spm_id_get<U: Upstream>(up: &U) -> Regs {
    let mut r = [0; 18];
    r[0] = fid::FFA_SPM_ID_GET as u64;
    let reply = up.call(&r);
    match reply[0] as u32 {
        fid::FFA_SUCCESS_32 | fid::FFA_ERROR => reply,
        _ => error(FfaError::NotSupported),
    }
}

/// The endpoint RX/TX descriptor (DEN0077 v1.2, FFA_RXTX_MAP, "Endpoint
/// RX/TX descriptor") ns-hyp puts in its TX buffer for a forwarded map:
/// endpoint id (2 bytes), reserved (2), offset of the RX buffer's composite
/// memory region descriptor (4), offset of the TX buffer's (4), reserved
/// (4); then the two composites, each of one address range (total pages
/// (4), range count (4), reserved (8); address (8), pages (4), reserved (4)).
pub fn endpoint_rxtx_descriptor(id: u16, rx_pa: u64, tx_pa: u64, pages: u64) -> [u8; 80] {
    let mut d = [0u8; 80];
    d[0..2].copy_from_slice(&id.to_le_bytes());
    d[4..8].copy_from_slice(&16u32.to_le_bytes());
    d[8..12].copy_from_slice(&48u32.to_le_bytes());
    for (off, pa) in [(16, rx_pa), (48, tx_pa)] {
        d[off..off + 4].copy_from_slice(&(pages as u32).to_le_bytes());
        d[off + 4..off + 8].copy_from_slice(&1u32.to_le_bytes());
        d[off + 16..off + 24].copy_from_slice(&pa.to_le_bytes());
        d[off + 24..off + 28].copy_from_slice(&(pages as u32).to_le_bytes());
    }
    d
}

fn call2<U: Upstream>(up: &U, f: u32, w1: u64) -> Regs {
    let mut r = [0; 18];
    r[0] = f as u64;
    r[1] = w1;
    up.call(&r)
}

fn is_success(r: &Regs) -> bool {
    matches!(r[0] as u32, fid::FFA_SUCCESS_32 | fid::FFA_SUCCESS_64)
}

/// Tells the SPMC VM `id`'s pair; the caller holds the proxy's memory lock
/// (ns-hyp's TX buffer).  Whether the SPMC took it.
fn forward_map<U: Upstream>(id: u16, m: &Mailbox, up: &U) -> bool {
    up.write_hyp_tx(&endpoint_rxtx_descriptor(id, m.rx_pa, m.tx_pa, m.pages));
    let r = call2(up, fid::FFA_RXTX_MAP_64, 0);
    if !is_success(&r) {
        log::info!("vm id {:#x}: the SPMC did not take its RX/TX pair ({:#x} {:#x}): no indirect messages from SPs", id, r[0], r[2]);
    }
    is_success(&r)
}

/// Drops VM `k`'s pair, first at the SPMC if it knows it (FFA_RXTX_UNMAP
/// with the VM id in w1[31:16]); the pages are unpinned then.  Under the
/// memory lock, as a map is.  The pair it had.
pub(super) fn forget_mailbox<U: Upstream>(p: &Proxy, k: usize, up: &U) -> Option<Mailbox> {
    let _tx = p.memory.lock();
    let (id, m) = {
        let mut vm = p.vms[k].lock();
        (vm.id, vm.mailbox.take()?)
    };
    if m.forwarded {
        let r = call2(up, fid::FFA_RXTX_UNMAP, (id as u64) << 16);
        if !is_success(&r) {
            log::warn!("vm{}: FFA_RXTX_UNMAP at the SPMC: {:#x} {:#x}", k, r[0], r[2]);
        }
    }
    Some(m)
}

/// Takes VM `k`'s RX buffer for ns-hyp to write into: it must be mapped
/// and not held by ns-hyp already, and if the SPMC knows the pair the SPMC
/// must give it (FFA_RX_ACQUIRE with the VM id: it refuses while an SP's
/// message is unread there).  Else BUSY.  The buffer: (PA, pages).
pub(super) fn reserve_rx<U: Upstream>(p: &Proxy, k: usize, up: &U) -> Result<(u64, u64), FfaError> {
    let (id, m) = {
        let mut vm = p.vms[k].lock();
        let id = vm.id;
        match &mut vm.mailbox {
            Some(m) if !m.rx_full => {
                m.rx_full = true;
                (id, *m)
            }
            _ => return Err(FfaError::Busy),
        }
    };
    if m.forwarded && !is_success(&call2(up, fid::FFA_RX_ACQUIRE, id as u64)) {
        if let Some(mb) = p.vms[k].lock().mailbox.as_mut().filter(|mb| mb.rx_pa == m.rx_pa) {
            mb.rx_full = false;
        }
        return Err(FfaError::Busy);
    }
    Ok((m.rx_pa, m.pages))
}

/// FFA_RXTX_MAP (32 and 64): x1 TX, x2 RX (IPAs), w3 the page count.  Both
/// must be page aligned, apart, and lie whole inside the VM's RAM; they are
/// translated to PAs once and kept (pinned) until unmapped or the VM goes.
/// A second map while one is in place: DENIED, as the SPMC answers.  A VM
/// of v1.1 or later gets its pair forwarded to the SPMC ([`forward_map`]).
pub fn rxtx_map<U: Upstream, M: Guests>(p: &Proxy, k: usize, a: &Regs, up: &U, mem: &M) -> Regs {
    let (tx, rx, w3) = (a[1], a[2], a[3] as u32);
    let pages = (w3 & PAGE_COUNT_MASK) as u64;
    if w3 & !PAGE_COUNT_MASK != 0 || pages == 0 || tx % PAGE != 0 || rx % PAGE != 0 {
        return error(FfaError::InvalidParameters);
    }
    let size = pages * PAGE;
    let (Some(tx_end), Some(rx_end)) = (tx.checked_add(size), rx.checked_add(size)) else {
        return error(FfaError::InvalidParameters);
    };
    if tx < rx_end && rx < tx_end {
        return error(FfaError::InvalidParameters);
    }
    let (Some(tx_pa), Some(rx_pa)) = (mem.pages_pa(k, tx, pages), mem.pages_pa(k, rx, pages)) else {
        return error(FfaError::InvalidParameters);
    };
    // ns-hyp's TX buffer, and one map or unmap of this VM at a time.
    let _tx = p.memory.lock();
    let (id, version, m) = {
        let mut vm = p.vms[k].lock();
        if vm.mailbox.is_some() {
            return error(FfaError::Denied);
        }
        let m = Mailbox { tx_pa, rx_pa, pages, rx_full: false, forwarded: false };
        vm.mailbox = Some(m);
        (vm.id, vm.version, m)
    };
    // Indirect messages (and so the forwarding) are v1.1 on.
    let v1_0 = version_major(version) == 1 && version_minor(version) == 0;
    if !v1_0
        && forward_map(id, &m, up)
        && let Some(mb) = p.vms[k].lock().mailbox.as_mut()
    {
        mb.forwarded = true;
    }
    success(0, 0)
}

/// w1 bits 31:16 of FFA_RXTX_UNMAP, bits 15:0 of FFA_RX_RELEASE: the id a
/// hypervisor puts there at the physical instance; from a VM it is 0 (MBZ),
/// and its own id is accepted too.
fn own_or_zero(p: &Proxy, k: usize, id: u16) -> bool {
    id == 0 || id == p.vms[k].lock().id
}

/// FFA_RXTX_UNMAP: w1 bits 31:16 the id (0 or the VM's own), bits 15:0 MBZ.
/// No pair mapped: INVALID_PARAMETERS, as the SPMC answers.
/// The SPMC forgets it too when it knew it ([`forget_mailbox`]).
pub fn rxtx_unmap<U: Upstream>(p: &Proxy, k: usize, a: &Regs, up: &U) -> Regs {
    let w1 = a[1] as u32;
    if w1 & 0xffff != 0 || !own_or_zero(p, k, (w1 >> 16) as u16) {
        return error(FfaError::InvalidParameters);
    }
    match forget_mailbox(p, k, up) {
        Some(_) => success(0, 0),
        None => error(FfaError::InvalidParameters),
    }
}

/// FFA_RX_RELEASE: the VM gives its RX buffer back.  It must own it: a
/// message ns-hyp wrote (then the buffer goes back to the SPMC too, if it
/// knows the pair), or one the SPMC wrote (the release goes to the SPMC
/// with the VM id, and its answer is the VM's).  Else DENIED.
pub fn rx_release<U: Upstream>(p: &Proxy, k: usize, a: &Regs, up: &U) -> Regs {
    if !own_or_zero(p, k, a[1] as u16) || (a[1] as u32) >> 16 != 0 {
        return error(FfaError::InvalidParameters);
    }
    let (id, held, forwarded) = {
        let mut vm = p.vms[k].lock();
        let id = vm.id;
        match &mut vm.mailbox {
            Some(m) => (id, core::mem::replace(&mut m.rx_full, false), m.forwarded),
            None => return error(FfaError::Denied),
        }
    };
    if !forwarded {
        return if held { success(0, 0) } else { error(FfaError::Denied) };
    }
    let r = call2(up, fid::FFA_RX_RELEASE, id as u64);
    if held {
        if !is_success(&r) {
            log::warn!("vm{}: FFA_RX_RELEASE to the SPMC: {:#x} {:#x}", k, r[0], r[2]);
        }
        return success(0, 0);
    }
    match r[0] as u32 {
        fid::FFA_SUCCESS_32 | fid::FFA_SUCCESS_64 => success(0, 0),
        fid::FFA_ERROR => r,
        _ => error(FfaError::Denied),
    }
}

/// Gives VM `k`'s RX buffer back after a reservation that wrote nothing
/// (to the SPMC too, if ns-hyp acquired it from it).
pub(super) fn unreserve<U: Upstream>(p: &Proxy, k: usize, rx_pa: u64, up: &U) {
    let give_back = {
        let mut vm = p.vms[k].lock();
        let id = vm.id;
        match vm.mailbox.as_mut().filter(|m| m.rx_pa == rx_pa && m.rx_full) {
            Some(m) => {
                m.rx_full = false;
                m.forwarded.then_some(id)
            }
            None => None,
        }
    };
    if let Some(id) = give_back {
        call2(up, fid::FFA_RX_RELEASE, id as u64);
    }
}

/// One descriptor as a VM gets it: `size` bytes of `[id, count, properties, uuid]`.
fn descriptor(id: u16, count: u16, props: u32, uuid: &[u8]) -> [u8; DESCRIPTOR_V1_1] {
    let mut d = [0; DESCRIPTOR_V1_1];
    d[0..2].copy_from_slice(&id.to_le_bytes());
    d[2..4].copy_from_slice(&count.to_le_bytes());
    d[4..8].copy_from_slice(&props.to_le_bytes());
    let n = uuid.len().min(16);
    d[8..8 + n].copy_from_slice(&uuid[..n]);
    d
}

/// FFA_PARTITION_INFO_GET: w1..w4 a UUID (nil: every partition), w5 flags
/// (bit 0: count only, v1.1 on; the rest MBZ).
///
/// The SPs come from the SPMC: ns-hyp asks it with its own RX buffer (one
/// for all vCPUs of all VMs, so under a lock), copies the descriptors into
/// the VM's RX buffer in the layout the VM negotiated and releases its own
/// buffer.  A nil UUID then lists the other normal VMs.  The caller itself
/// is not listed: a VM learns its own id from FFA_ID_GET, and Linux's driver
/// registers its own partition device whether the list names it or not
/// (`ffa_setup_partitions`: it only adds one when its id is missing), so the
/// list is what only discovery can tell it.  A non-nil UUID names an SP
/// service (VMs have none): it goes to the SPMC as it is.
///
/// With the descriptors written the VM owns its RX buffer until
/// FFA_RX_RELEASE.  Errors: a RX buffer not mapped or still the VM's: BUSY
/// (as Hafnium and our spmc answer); descriptors that do not fit it:
/// NO_MEMORY; the SPMC's own errors (INVALID_PARAMETERS for an unknown UUID) as they are.
pub fn partition_info_get<U: Upstream, M: Guests>(p: &Proxy, k: usize, a: &Regs, up: &U, mem: &M) -> Regs {
    let uuid = [a[1] as u32, a[2] as u32, a[3] as u32, a[4] as u32];
    let flags = a[5] as u32;
    let vm = p.vm(k);
    let size = descriptor_size(vm.version);
    // v1.0 has no flags (w5 MBZ); v1.1 on only bit 0.
    if flags & !COUNT_ONLY != 0 || (size == DESCRIPTOR_V1_0 && flags != 0) {
        return error(FfaError::InvalidParameters);
    }
    let count_only = flags & COUNT_ONLY != 0;
    let nil = uuid == [0; 4];
    // The VM's RX buffer, reserved for the answer: a second call on
    // another vCPU of the VM meanwhile finds it busy.
    let mut rx = None;
    if !count_only {
        match reserve_rx(p, k, up) {
            Ok(b) => rx = Some(b),
            Err(e) => return error(e),
        }
    }
    // The other VMs, read before any lock of VM k's is held (one VM's
    // lock is never taken while another's is).
    let mut list = [(0u16, 0u16); MAX_VMS];
    let mut others = 0;
    if nil {
        for (id, vcpus) in p.other_vms(k) {
            list[others] = (id, vcpus);
            others += 1;
        }
    }
    let others_list = &list[..others];

    let _hyp_rx = p.hyp_rx.lock();
    let mut req = [0; 18];
    req[0] = fid::FFA_PARTITION_INFO_GET as u64;
    for (i, w) in uuid.iter().enumerate() {
        req[1 + i] = *w as u64;
    }
    req[5] = flags as u64;
    let reply = up.call(&req);
    if reply[0] as u32 != fid::FFA_SUCCESS_32 {
        if let Some((pa, _)) = rx {
            unreserve(p, k, pa, up);
        }
        return if reply[0] as u32 == fid::FFA_ERROR { reply } else { error(FfaError::NotSupported) };
    }
    let (sps, sp_size) = (reply[2] as u32, reply[3] as usize);
    let total = sps.saturating_add(others as u32);
    let w3 = if size == DESCRIPTOR_V1_0 { 0 } else { size as u32 };
    let Some((rx_pa, pages)) = rx else {
        return success(total, w3);
    };
    let fits = (total as u64).checked_mul(size as u64).is_some_and(|n| n <= pages * PAGE);
    let out = if !fits {
        error(FfaError::NoMemory)
    } else if sp_size < DESCRIPTOR_V1_0 && sps != 0 {
        // The SPMC negotiated v1.2 with ns-hyp: 24-byte descriptors.
        error(FfaError::Aborted)
    } else {
        // Write under the VM's lock, and only while the same buffer is
        // still mapped: an unmap or a teardown on another CPU meanwhile
        // must not find ns-hyp writing into a page that is no longer the mailbox.
        let v = p.vms[k].lock();
        if v.mailbox.is_none_or(|m| m.rx_pa != rx_pa) {
            error(FfaError::Aborted)
        } else {
            let ok = up.with_hyp_rx(|hyp| {
                for i in 0..sps as usize {
                    let Some(d) = hyp.get(i * sp_size..(i + 1) * sp_size) else { return false };
                    let id = u16::from_le_bytes([d[0], d[1]]);
                    let count = u16::from_le_bytes([d[2], d[3]]);
                    let props = u32::from_le_bytes([d[4], d[5], d[6], d[7]]);
                    let out = descriptor(id, count, props, d.get(8..24).unwrap_or(&[]));
                    mem.write(rx_pa + (i * size) as u64, &out[..size]);
                }
                true
            });
            if ok {
                for (i, &(id, vcpus)) in others_list.iter().enumerate() {
                    let out = descriptor(id, vcpus, VM_PROPERTIES, &[]);
                    mem.write(rx_pa + ((sps as usize + i) * size) as u64, &out[..size]);
                }
                drop(v);
                success(total, w3)
            } else {
                error(FfaError::Aborted)
            }
        }
    };
    // ns-hyp's RX buffer back to the SPMC (DEN0077 v1.2, FFA_RX_RELEASE).
    let mut rel = [0; 18];
    rel[0] = fid::FFA_RX_RELEASE as u64;
    up.call(&rel);
    if out[0] as u32 == fid::FFA_ERROR {
        unreserve(p, k, rx_pa, up);
    }
    out
}
