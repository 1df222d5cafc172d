//! ns-hyp as the CCA host of a Linux Realm (issue F part 2): the guest that
//! `quadrant.guest=`/`quadrant.initrd=` name (docs/ns-hyp.md) runs as a Realm
//! under the RMM when the bootargs also say `quadrant.realm-vm`.
//!
//! The Realm (DEN0137 RMM 1.0, A2 "Realm lifecycle"):
//! - RmiRealmParams as [`super::host::realm_params`] (IPA width [`S2SZ`]: the
//!   top IPA bit, 1 << 38, is the unprotected half, which Linux learns from
//!   RSI_REALM_CONFIG and ORs into every device mapping and its DMA buffers);
//! - its RAM at IPA [`RAM_IPA`] (the normal guest's address map,
//!   `crate::vm::layout`), RIPAS RAM from RTT_INIT_RIPAS; the DTB (written
//!   here, PSCI through SMC), the kernel Image and the initramfs measured
//!   into it with DATA_CREATE, page by page, from where QEMU's loader put
//!   them; every other RAM page is DATA_CREATE_UNKNOWN on its first touch
//!   (the Realm's abort on an unassigned protected page exits to us);
//! - one REC per vCPU, REC 0 runnable at the Image with x0 = the DTB, the
//!   others started by the Realm's PSCI CPU_ON (RMI_PSCI_COMPLETE);
//! - devices: the same emulated GICv3, PL011 and virtio-mmio slot as the
//!   normal guest (`crate::vm::Vm`), at their usual addresses in the
//!   unprotected half: every access is an emulatable-MMIO REC exit;
//! - shared memory (Linux's swiotlb bounce buffers, after RSI_IPA_STATE_SET
//!   to EMPTY): the unprotected alias of a RAM IPA is mapped on its first
//!   touch with RTT_MAP_UNPROTECTED to NS memory at the VM's RAM PA + the
//!   same offset.
//!
//! The RECs share one physical CPU, round robin: a REC that waits (WFI)
//! is skipped until an interrupt is pending for it or its virtual timer
//! is due.

use super::host::{Failed, realm_params};
use super::rmi::{Ret, Rmi};
use super::{NsMemory, Pages, Report};
use crate::vm::config::{GuestConfig, MAX_VCPUS};
use crate::vm::layout::{RAM_IPA, VIRTIO_INTID, VTIMER_INTID};
use crate::vm::virtio_blk::GuestMemory;
use crate::vm::{Mmio, Vm, sched};
use shared::abi::rmi::*;
use shared::smccc::Conduit;

pub use super::host::S2SZ;
/// The unprotected half of the Realm's IPA space starts here.
pub const SHARED_BIT: u64 = 1 << (S2SZ - 1);
/// Where the Realm's DTB goes (IPA); the kernel and initramfs are at their
/// normal-guest IPAs (2 MiB and 128 MiB into RAM).
pub const DTB_IPA: u64 = RAM_IPA;
/// Where its memory comes from (`GuestConfig::footprint`): the NS memory
/// behind the unprotected alias of Realm RAM is the VM's RAM PA + the same
/// offset (where the payloads were preloaded, measured in from there); the
/// granules delegated to the RMM (RDs, RECs, RTTs and the Realm's RAM) come
/// from the pool above it (`GuestConfig::realm_pool`).
pub use crate::vm::config::REALM_MAX_RAM as MAX_RAM;
const PAGE: u64 = 0x1000;

/// RTT entry of an unprotected mapping: MemAttr Normal write-back (0b1111,
/// bits 5:2), S2AP read/write (bits 7:6), DEN0137 RmiRttEntry / RTT_MAP_UNPROTECTED.
const UNPROTECTED_ATTRS: u64 = 0b1111 << 2 | 0b11 << 6;

/// ICH_HCR_EL2.En and .UIE (IHI0069H).
const ICH_HCR_EN: u64 = 1;
const ICH_HCR_UIE: u64 = 1 << 1;

/// What the run loop needs from the machine (the real UART, the clock, the
/// hyp timer that takes the CPU back from a REC).
pub trait Machine {
    fn uart_tx(&self, b: u8);
    fn uart_rx(&self) -> Option<u8>;
    fn now(&self) -> u64;
    /// Ticks per time slice when several RECs want the CPU.
    fn slice(&self) -> u64;
    /// Arms the EL2 timer for `at` (None: off).
    fn set_timer(&self, at: Option<u64>);
    /// ICH_VTR_EL2.ListRegs + 1.
    fn num_lrs(&self) -> usize;
    /// An access to the virtio-mmio slot at `addr` (the device's IPA, top bit
    /// clear), served by the virtio-blk model with `mem` as the guest's
    /// memory: the value read and whether the device's interrupt rises.
    /// None: no device there (the emulated machine answers).
    fn virtio(&self, addr: u64, size: u8, write: bool, value: u64, mem: &mut dyn GuestMemory) -> Option<(u64, bool)>;
    /// Nothing to run: wait until an interrupt (the timer `set_timer` armed,
    /// console input) is pending.
    fn idle(&self) {
        core::hint::spin_loop();
    }
    /// How many exits to log one line each (`quadrant.realm-trace=<n>`).
    fn trace(&self) -> u64 {
        0
    }
    /// Takes the physical interrupts pending at this CPU, which only wake
    /// the loop (a kick: console input or a device interrupt for the Realm,
    /// posted by another CPU).  True if one was the hyp timer, which is then
    /// off (the loop arms it again).  The Realm alone on the machine has
    /// none but that timer, which `set_timer` handles: nothing to take.
    fn kicks(&self) -> bool {
        false
    }
}

/// What the device sees of a Realm's memory: only its shared (unprotected)
/// alias; a DMA address is an IPA with the top bit set (Linux's
/// `dma_addr_unencrypted`), backed by NS memory at `shared_pa` + its RAM offset.
pub struct RealmShared {
    pub ram_size: u64,
    pub shared_pa: u64,
}

impl RealmShared {
    /// The NS PA behind `[ipa, ipa + len)`, if all of it is shared Realm RAM.
    pub fn pa(&self, ipa: u64, len: u64) -> Option<u64> {
        if ipa & SHARED_BIT == 0 {
            return None;
        }
        let a = ipa & !SHARED_BIT;
        let end = a.checked_add(len)?;
        (a >= RAM_IPA && end <= RAM_IPA + self.ram_size).then(|| self.shared_pa + (a - RAM_IPA))
    }
}

/// Host tests: no NS memory behind the window.
#[cfg(not(target_os = "none"))]
impl GuestMemory for RealmShared {
    fn read(&self, _: u64, _: &mut [u8]) -> bool {
        false
    }
    fn write(&mut self, _: u64, _: &[u8]) -> bool {
        false
    }
}

#[cfg(target_os = "none")]
impl GuestMemory for RealmShared {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> bool {
        let Some(pa) = self.pa(ipa, buf.len() as u64) else { return false };
        // SAFETY: NS memory of the shared window, identity-mapped RW at EL2
        // (inside the guest RAM map), never delegated.
        unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, buf.as_mut_ptr(), buf.len()) };
        true
    }
    fn write(&mut self, ipa: u64, buf: &[u8]) -> bool {
        let Some(pa) = self.pa(ipa, buf.len() as u64) else { return false };
        // SAFETY: as above.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), pa as *mut u8, buf.len()) };
        true
    }
    fn slice_mut(&mut self, ipa: u64, len: usize) -> Option<&mut [u8]> {
        let pa = self.pa(ipa, len as u64)?;
        // SAFETY: as above; the identity map makes the VA the PA the disk
        // DMAs to; one polled request while the Realm's REC waits in its exit.
        Some(unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, len) })
    }
}

/// Bytes as lowercase hex.
struct Hex<'a>(&'a [u8]);

impl core::fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Prints the DTB this host wrote for the Realm, 64 bytes a line
/// (`realm-vm: dtb <offset> <hex>`), then `realm-vm: dtb end <size>`.  The
/// DTB is measured into the RIM (DATA_CREATE) and made here at run time
/// from the bootargs, so a verifier that wants to reproduce the RIM needs
/// its bytes: `cargo xtask test realm_linux` takes them from these lines,
/// checks what they say (memory, CPUs, command line, initramfs, PSCI) and
/// measures them itself.  Nothing in it is secret.
pub fn print_dtb(dtb: &[u8], out: &mut dyn Report) {
    for (k, chunk) in dtb.chunks(64).enumerate() {
        out.line(format_args!("realm-vm: dtb {:04x} {}", k * 64, Hex(chunk)));
    }
    out.line(format_args!("realm-vm: dtb end {}", dtb.len()));
}

fn fail(step: &'static str, a: u64, b: u64) -> Failed {
    Failed { step, ret: Ret { x0: u64::MAX, x: [a, b, 0, 0] } }
}

fn check(step: &'static str, r: Ret) -> Result<Ret, Failed> {
    if r.ok() { Ok(r) } else { Err(Failed { step, ret: r }) }
}

/// The Realm's granules and NS pages.
pub struct LinuxRealm {
    pub rd: u64,
    pub recs: [u64; MAX_VCPUS],
    pub runs: [u64; MAX_VCPUS],
    pub nrecs: usize,
    pub ram_size: u64,
    /// NS memory behind the unprotected alias (module comment).
    pub shared_pa: u64,
    pub delegated: usize,
}

/// Where a payload is: its IPA in the Realm and its NS source.
#[derive(Clone, Copy, Debug)]
struct Payload {
    ipa: u64,
    src: u64,
    size: u64,
}

impl LinuxRealm {
    fn delegate<C: Conduit>(&mut self, rmi: &Rmi<C>, pool: &mut Pages) -> Result<u64, Failed> {
        let pa = pool.take().ok_or(fail("delegation pool exhausted", self.delegated as u64, 0))?;
        check("GRANULE_DELEGATE", rmi.granule_delegate(pa))?;
        self.delegated += 1;
        Ok(pa)
    }

    /// Runs `f` until it succeeds, creating the missing RTT each time it says
    /// ERROR_RTT(level < 3) for `ipa` (the walk stopped above the leaf level).
    fn with_rtts<C: Conduit>(&mut self, rmi: &Rmi<C>, pool: &mut Pages, step: &'static str, ipa: u64, mut f: impl FnMut() -> Ret) -> Result<Ret, Failed> {
        for _ in 0..4 {
            let r = f();
            let (status, level) = r.status();
            if r.ok() {
                return Ok(r);
            }
            if status != RmiStatus::ErrorRtt as u8 || level >= 3 {
                return Err(Failed { step, ret: r });
            }
            let new = level as i64 + 1;
            // An RTT at level L covers what one entry of level L - 1 maps.
            let align = if new == 2 { 1u64 << 30 } else { 1u64 << 21 };
            let t = self.delegate(rmi, pool)?;
            check("RTT_CREATE", rmi.rtt_create(self.rd, t, ipa & !(align - 1), new))?;
        }
        Err(fail(step, ipa, 0))
    }

    /// Builds and activates the Realm (module comment).
    pub fn create<C: Conduit, M: NsMemory>(rmi: &Rmi<C>, mem: &M, ns: &mut Pages, pool: &mut Pages, cfg: &GuestConfig, dtb: (u64, usize), out: &mut dyn Report) -> Result<LinuxRealm, Failed> {
        if cfg.ram_size > MAX_RAM || !cfg.ram_size.is_multiple_of(2 << 20) {
            return Err(fail("Realm RAM: at most 256 MiB, whole 2 MiB blocks", cfg.ram_size, 0));
        }
        // `vm::config` sized the pool for RAM + RTTs + RD/RECs; a smaller
        // one fails as "delegation pool exhausted" at DATA_CREATE_UNKNOWN.
        check("RMI_VERSION", rmi.version(RMI_ABI_VERSION))?;
        let f0 = check("RMI_FEATURES", rmi.features(0))?.x(1);
        if !super::host::features_fit(f0) {
            return Err(fail("RMI_FEATURES (s2sz, breakpoints, watchpoints)", f0, 0));
        }
        let mut r = LinuxRealm { rd: 0, recs: [0; MAX_VCPUS], runs: [0; MAX_VCPUS], nrecs: cfg.vcpus, ram_size: cfg.ram_size, shared_pa: cfg.ram_pa, delegated: 0 };
        let params = ns.take().ok_or(fail("NS pages", 0, 0))?;
        for i in 0..r.nrecs {
            r.runs[i] = ns.take().ok_or(fail("NS pages", i as u64, 0))?;
        }
        r.rd = r.delegate(rmi, pool)?;
        let rtt = r.delegate(rmi, pool)?;
        mem.write(params, &realm_params(rtt));
        check("REALM_CREATE", rmi.realm_create(r.rd, params))?;
        let t = r.delegate(rmi, pool)?;
        check("RTT_CREATE", rmi.rtt_create(r.rd, t, RAM_IPA & !((1 << 30) - 1), 2))?;
        let top = RAM_IPA + cfg.ram_size;
        let mut base = RAM_IPA;
        while base < top {
            base = check("RTT_INIT_RIPAS", rmi.rtt_init_ripas(r.rd, base, top))?.x(1);
        }
        let to_src = |ipa: u64| ipa - RAM_IPA + cfg.ram_pa;
        let mut payloads = [Some(Payload { ipa: DTB_IPA, src: dtb.0, size: dtb.1 as u64 }), Some(Payload { ipa: cfg.kernel.ipa, src: to_src(cfg.kernel.ipa), size: cfg.kernel.size }), None];
        if let Some(i) = cfg.initrd {
            payloads[2] = Some(Payload { ipa: i.ipa, src: to_src(i.ipa), size: i.size });
        }
        let mut measured = 0;
        for p in payloads.iter().flatten() {
            let mut off = 0;
            while off < p.size {
                let d = r.delegate(rmi, pool)?;
                let (rd, ipa, src) = (r.rd, p.ipa + off, p.src + off);
                r.with_rtts(rmi, pool, "DATA_CREATE", ipa, || rmi.data_create(rd, d, ipa, src, RMI_MEASURE_CONTENT))?;
                off += PAGE;
                measured += 1;
            }
        }
        // REC_AUX_COUNT before the RECs: each takes that many delegated
        // auxiliary granules (DEN0137 RMI_REC_CREATE, num_aux).
        let naux = super::host::aux_count(rmi, r.rd)?;
        for i in 0..r.nrecs {
            let mut aux = [0u64; MAX_REC_AUX_GRANULES];
            for a in aux.iter_mut().take(naux) {
                *a = r.delegate(rmi, pool)?;
            }
            let mut p = [0u8; 4096];
            super::host::put_aux(&mut p, &aux[..naux]);
            super::host::put(&mut p, 0x000, if i == 0 { RMI_REC_FLAG_RUNNABLE } else { 0 });
            super::host::put(&mut p, 0x100, i as u64); // MPIDR Aff0 = vCPU number (the DTB's cpu@i)
            super::host::put(&mut p, 0x200, cfg.kernel.ipa);
            super::host::put(&mut p, 0x300, if i == 0 { DTB_IPA } else { 0 });
            mem.write(params, &p);
            let rec = r.delegate(rmi, pool)?;
            check("REC_CREATE", rmi.rec_create(r.rd, rec, params))?;
            r.recs[i] = rec;
        }
        check("REALM_ACTIVATE", rmi.realm_activate(r.rd))?;
        out.line(format_args!(
            "realm-vm: created rd {:#x}: {} REC(s), {} MiB RAM at ipa {:#x}, {} page(s) measured (dtb, kernel, initrd), {} granule(s) delegated",
            r.rd, r.nrecs, cfg.ram_size >> 20, RAM_IPA, measured, r.delegated
        ));
        Ok(r)
    }

    /// Tears the Realm down (DEN0137 A2.2 "Realm lifecycle", its objects in
    /// the reverse order of creation) and undelegates every granule it took
    /// from `pool`, which was `Pages::new(pool_base, ..)`: its RECs, every
    /// DATA granule of its RAM (the walk skips what has no RTT), the
    /// unprotected mappings, the level 3 and then level 2 RTTs, the RD.
    /// Whatever an earlier step missed shows as a granule that does not
    /// undelegate.  Returns (undelegated, failed).
    pub fn destroy<C: Conduit>(&mut self, rmi: &Rmi<C>, pool: &Pages, pool_base: u64) -> (usize, usize) {
        for rec in &self.recs[..self.nrecs] {
            let _ = rmi.rec_destroy(*rec);
        }
        let ram = RAM_IPA..RAM_IPA + self.ram_size;
        let rd = self.rd;
        // Each step is asked for only where RTT_READ_ENTRY shows its object
        // (a call that fails is one the RMM logs): (walk level, state).
        let entry = |ipa: u64, level: i64| {
            let r = rmi.rtt_read_entry(rd, ipa, level);
            r.ok().then(|| (r.x(1) as i64, r.x(2)))
        };
        // The leaves, a 4 KiB page at a time; a 2 MiB block without a level
        // 3 RTT (the walk stops above it) has none.
        for alias in [0, SHARED_BIT] {
            let mut ipa = ram.start;
            while ipa < ram.end {
                match entry(ipa | alias, 3) {
                    Some((3, state)) => {
                        if state == RMI_ASSIGNED {
                            let _ = if alias == 0 { rmi.data_destroy(rd, ipa) } else { rmi.rtt_unmap_unprotected(rd, ipa | alias, 3) };
                        }
                        ipa += PAGE;
                    }
                    _ => ipa = (ipa | ((2 << 20) - 1)) + 1,
                }
            }
        }
        // Then the RTTs, level 3 before level 2: each where its parent's entry is a table.
        for (level, size) in [(3i64, 2u64 << 20), (2, 1 << 30)] {
            for alias in [0, SHARED_BIT] {
                let mut ipa = ram.start & !(size - 1);
                while ipa < ram.end {
                    if entry(ipa | alias, level - 1) == Some((level - 1, RMI_TABLE)) {
                        let _ = rmi.rtt_destroy(rd, ipa | alias, level);
                    }
                    ipa += size;
                }
            }
        }
        let _ = rmi.realm_destroy(rd);
        self.delegated = 0;
        undelegate_pool(rmi, pool, pool_base)
    }

    fn in_ram(&self, ipa: u64) -> bool {
        ipa >= RAM_IPA && ipa < RAM_IPA + self.ram_size
    }
}

/// GRANULE_UNDELEGATE for every granule handed out of `pool` (which was
/// `Pages::new(pool_base, ..)`): (undelegated, failed).  A granule that
/// still belongs to a Realm object fails and stays delegated.
pub fn undelegate_pool<C: Conduit>(rmi: &Rmi<C>, pool: &Pages, pool_base: u64) -> (usize, usize) {
    let (mut ok, mut failed) = (0, 0);
    for pa in pool.used(pool_base).step_by(PAGE as usize) {
        if rmi.granule_undelegate(pa).ok() { ok += 1 } else { failed += 1 }
    }
    (ok, failed)
}

/// One REC as the run loop sees it.
#[derive(Clone, Copy, Debug, Default)]
struct RecState {
    on: bool,
    waiting: bool,
    flags: u64,
    gpr0: u64,
    lrs: [u64; 16],
    cntv_ctl: u64,
    cntv_cval: u64,
}

fn timer_asserted(ctl: u64) -> bool {
    ctl & 0b111 == 0b101
}

/// The counter value at which a REC's virtual timer fires, if armed.
fn timer_deadline(s: &RecState) -> Option<u64> {
    (s.cntv_ctl & 0b11 == 0b01).then_some(s.cntv_cval)
}

/// The value of an ICC_SGI1R_EL1 write, if a system register exit (EC
/// 0x18) is one: the encoding looked up in the normal guest's table
/// (`crate::vm::sysreg`, DDI0487 ISS for MSR/MRS).  The first version
/// compared a hand-made mask that kept Op0 in the ISS but not in the
/// constant, so no IPI ever reached a REC: a REC woke only at its next timer
/// tick, irq_work (Linux's self-IPI) never ran, and once printk handed the
/// console to its kthread the Realm's output stopped.
fn sgi1r_write(esr: u64, value: u64) -> Option<u64> {
    use crate::vm::sysreg::{self, SysRegAccess, SysRegIss};
    let iss = SysRegIss::decode(esr & 0x1ff_ffff);
    matches!(sysreg::find(&iss), Some(r) if r.access == SysRegAccess::GenerateSgi1).then_some(value)
}

/// What the scheduler (`crate::vm::sched`) knows of a REC: off, ready, or
/// waiting in WFI, woken by an interrupt for it (`deliverable`: one the vGIC
/// has not yet put in a list register; or one still pending in its list
/// registers) or by its virtual timer's deadline.
fn sched_state(s: &RecState, deliverable: bool) -> sched::State {
    if !s.on {
        sched::State::Off
    } else if !s.waiting {
        sched::State::Ready
    } else {
        let in_lr = s.lrs.iter().any(|lr| (lr >> 62) & 1 != 0);
        sched::State::Waiting { wake: deliverable || in_lr, deadline: timer_deadline(s) }
    }
}

fn get(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// What ended the Realm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    SystemOff,
    SystemReset,
}

/// Runs the Realm's RECs until it powers off (module comment).
#[allow(clippy::too_many_arguments)]
///
/// `vm` (the emulated GIC, PL011, PL031) is locked only for each use, never
/// across a REC_ENTER or a console write: with several VMs, another CPU
/// feeds its PL011 console input (`crate::guest`, console lock first, then
/// the VM's).
pub fn run<C: Conduit, M: NsMemory>(rmi: &Rmi<C>, mem: &M, pool: &mut Pages, r: &mut LinuxRealm, vm: &spin::Mutex<Vm>, mach: &dyn Machine, out: &mut dyn Report) -> Result<End, Failed> {
    let n = r.nrecs;
    let nlrs = mach.num_lrs().min(16);
    let mut st = [RecState::default(); MAX_VCPUS];
    st[0].on = true;
    let mut current: Option<usize> = None;
    let mut slice_end = 0u64;
    let mut armed: Option<Option<u64>> = None;
    let mut exits: u64 = 0;
    let mut traced: u64 = 0;
    let mut per_rec = [(0u64, 0u64, 0u64); MAX_VCPUS];
    let mut next_status = mach.now() + 200 * mach.slice();
    loop {
        if mach.kicks() {
            armed = None;
        }
        if mach.trace() > 0 && mach.now() >= next_status {
            next_status = mach.now() + 200 * mach.slice();
            for (k, s) in st.iter().enumerate().take(n) {
                let lrs = s.lrs.iter().filter(|l| **l != 0).count();
                out.line(format_args!(
                    "realm-vm: status REC {} on {} waiting {} exits {} last reason {} esr {:#x} cntv {:#x} cval-now {} lrs {} {:#x} deliverable {}",
                    k, s.on, s.waiting, per_rec[k].0, per_rec[k].1, per_rec[k].2, s.cntv_ctl, s.cntv_cval as i64 - mach.now() as i64, lrs, s.lrs[0], vm.lock().vgic.has_deliverable(k)
                ));
            }
        }
        // Console input for the emulated PL011.
        while vm.lock().uart_rx_room() {
            let Some(b) = mach.uart_rx() else { break };
            let kick = vm.lock().uart_rx(b);
            wake(&mut st, kick);
        }
        // Who runs next (`crate::vm::sched`, the normal guest's rules): the
        // running REC keeps the CPU until its slice ends, however often it
        // exits.  Picking the next REC after *every* exit, as this loop did,
        // gave a REC spinning with interrupts masked (Linux's multi_cpu_stop
        // on CPU 1) a whole slice per exit of the other: REC 0, which exits
        // twice per timer tick (the timer, then the maintenance interrupt of
        // its EOI), only ever got to its next tick and never read the
        // stop_machine state that CPU 1 waited on (soft lockup).
        let now = mach.now();
        let mut states = [sched::State::Off; MAX_VCPUS];
        {
            let vm = vm.lock();
            for (k, s) in st.iter().enumerate().take(n) {
                states[k] = sched_state(s, vm.vgic.has_deliverable(k));
            }
        }
        let d = sched::decide(&states[..n], current, slice_end, now, mach.slice());
        // The hyp timer is reprogrammed only when the decision changes it
        // (under TCG every write reschedules QEMU's timer).  With nothing
        // to run it is armed for the earliest deadline, at most a slice
        // away so console input is polled at least that often.
        let timer = if d.run.is_none() { Some(d.timer.map_or(now + mach.slice(), |t| t.min(now + mach.slice()))) } else { d.timer };
        if armed != Some(timer) {
            mach.set_timer(timer);
            armed = Some(timer);
        }
        slice_end = d.slice_end;
        let Some(i) = d.run else {
            // Nothing to run: wait for that timer or input.
            mach.idle();
            armed = None;
            continue;
        };
        current = Some(i);
        st[i].waiting = false;

        // The virtual timer as a level-sensitive PPI of this vCPU.
        let mut g = vm.lock();
        let kick = g.vgic.set_private_level(i, VTIMER_INTID, timer_asserted(st[i].cntv_ctl));
        wake(&mut st, kick);
        let s = &mut st[i];
        let more = g.vgic.fill_lrs(i, &mut s.lrs[..nlrs]);
        drop(g);
        let mut enter = [0u8; 0x800];
        // WFI traps (a REC waiting for an interrupt gives the CPU back).
        super::host::put(&mut enter, 0x000, s.flags | RMI_REC_ENTER_TRAP_WFI);
        super::host::put(&mut enter, 0x200, s.gpr0);
        super::host::put(&mut enter, 0x300, ICH_HCR_EN | if more { ICH_HCR_UIE } else { 0 });
        for (k, lr) in s.lrs[..nlrs].iter().enumerate() {
            super::host::put(&mut enter, 0x308 + 8 * k, *lr);
        }
        s.flags = 0;
        s.gpr0 = 0;
        mem.write(r.runs[i], &enter);
        check("REC_ENTER", rmi.rec_enter(r.recs[i], r.runs[i]))?;
        exits += 1;
        let mut b = [0u8; 0x800];
        mem.read(r.runs[i] + 0x800, &mut b);
        for k in 0..nlrs {
            s.lrs[k] = get(&b, 0x308 + 8 * k);
        }
        vm.lock().vgic.sync_lrs(i, &s.lrs[..nlrs]);
        // A finished LR is cleared: an invalid one with EOI set would keep
        // the maintenance interrupt (ICH_EISR_EL2) asserted at every entry.
        for lr in s.lrs[..nlrs].iter_mut() {
            if *lr >> 62 == 0 {
                *lr = 0;
            }
        }
        s.cntv_ctl = get(&b, 0x410);
        s.cntv_cval = get(&b, 0x418);
        let reason = get(&b, 0);
        let esr = get(&b, 0x100);
        let gpr = |k: usize| get(&b, 0x200 + 8 * k);
        per_rec[i] = (per_rec[i].0 + 1, reason, esr);
        let mem_fault = (reason == RMI_EXIT_SYNC && matches!(esr >> 26, 0x20 | 0x24)) || reason == RMI_EXIT_IRQ;
        if !mem_fault && traced < mach.trace() {
            traced += 1;
            out.line(format_args!(
                "realm-vm: exit {} REC {} reason {} esr {:#x} far {:#x} hpfar {:#x} x0 {:#x} x1 {:#x} cntv {:#x}",
                exits, i, reason, esr, get(&b, 0x108), get(&b, 0x110), gpr(0), gpr(1), s.cntv_ctl
            ));
        }
        match reason {
            RMI_EXIT_SYNC => {
                let ec = esr >> 26;
                match ec {
                    0x24 | 0x20 => {
                        let far = get(&b, 0x108);
                        let hpfar = get(&b, 0x110);
                        let ipa = ((hpfar >> 4) << 12) | (far & 0xfff);
                        let page = ipa & !(PAGE - 1);
                        if ipa & SHARED_BIT != 0 {
                            let addr = ipa & !SHARED_BIT;
                            if r.in_ram(addr) {
                                // Shared memory: back the alias with NS memory on first touch.
                                let desc = (r.shared_pa + (addr & !(PAGE - 1)) - RAM_IPA) | UNPROTECTED_ATTRS;
                                let rd = r.rd;
                                r.with_rtts(rmi, pool, "RTT_MAP_UNPROTECTED", page, || rmi.rtt_map_unprotected(rd, page, 3, desc))?;
                            } else if ec == 0x24 && esr & (1 << 24) != 0 {
                                let size = 1u8 << ((esr >> 22) & 3);
                                let write = esr & (1 << 6) != 0;
                                let mut shared = RealmShared { ram_size: r.ram_size, shared_pa: r.shared_pa };
                                let res = match mach.virtio(addr, size, write, gpr(0), &mut shared) {
                                    Some((value, irq)) => Mmio::Ok { value, kick: if irq { vm.lock().vgic.raise(0, VIRTIO_INTID) } else { 0 }, tx: None },
                                    None => vm.lock().mmio(addr, size, write, gpr(0)),
                                };
                                match res {
                                    Mmio::Ok { value, kick, tx } => {
                                        if let Some(c) = tx {
                                            mach.uart_tx(c);
                                        }
                                        wake(&mut st, kick);
                                        st[i].flags = RMI_REC_ENTER_EMUL_MMIO;
                                        st[i].gpr0 = value;
                                    }
                                    Mmio::Abort => st[i].flags = RMI_REC_ENTER_INJECT_SEA,
                                }
                            } else {
                                st[i].flags = RMI_REC_ENTER_INJECT_SEA;
                            }
                        } else if r.in_ram(page) {
                            // Protected RAM the Realm touches first: back it.
                            let d = r.delegate(rmi, pool)?;
                            let rd = r.rd;
                            r.with_rtts(rmi, pool, "DATA_CREATE_UNKNOWN", page, || rmi.data_create_unknown(rd, d, page))?;
                        } else {
                            out.line(format_args!("realm-vm: REC {} abort at protected ipa {:#x} outside RAM (esr {:#x})", i, ipa, esr));
                            return Err(fail("abort outside Realm RAM", ipa, esr));
                        }
                    }
                    0x18 => {
                        // MSR/MRS trapped by the RMM (its ISS without Rt; a
                        // write's value in gprs[0]): ICC_SGI1R_EL1 is an IPI.
                        if let Some(v) = sgi1r_write(esr, gpr(0)) {
                            let kick = vm.lock().vgic.send_sgi(i, v);
                            wake(&mut st, kick);
                        }
                    }
                    0x01 => {
                        // WFI waits for an interrupt; WFE, and WFIT/WFET (ISS.TI
                        // 0b10/0b11: Linux's `__delay` once it sees FEAT_WFxT)
                        // whose timeout we do not track, are a yield.
                        if esr & 0b11 == 0 {
                            st[i].waiting = true;
                        }
                        // Either way the rest of the slice goes to the others.
                        slice_end = 0;
                    }
                    _ => {
                        out.line(format_args!("realm-vm: REC {} sync exit esr {:#x}: stopping", i, esr));
                        return Err(fail("REC exit", esr, 0));
                    }
                }
            }
            RMI_EXIT_IRQ | RMI_EXIT_FIQ => {}
            RMI_EXIT_RIPAS_CHANGE => {
                let (base, top) = (get(&b, 0x500), get(&b, 0x508));
                let mut at = base;
                let (rd, rec) = (r.rd, r.recs[i]);
                while at < top {
                    let a = at;
                    at = r.with_rtts(rmi, pool, "RTT_SET_RIPAS", a, || rmi.rtt_set_ripas(rd, rec, a, top))?.x(1);
                }
            }
            RMI_EXIT_HOST_CALL => {}
            RMI_EXIT_PSCI => {
                let fid = gpr(0);
                let target = (gpr(1) & 0xff) as usize;
                match fid as u32 {
                    shared::abi::psci::PSCI_SYSTEM_OFF => {
                        out.line(format_args!("realm-vm: PSCI SYSTEM_OFF after {} exits", exits));
                        return Ok(End::SystemOff);
                    }
                    shared::abi::psci::PSCI_SYSTEM_RESET => {
                        out.line(format_args!("realm-vm: PSCI SYSTEM_RESET after {} exits", exits));
                        return Ok(End::SystemReset);
                    }
                    shared::abi::psci::PSCI_CPU_ON_64 | shared::abi::psci::PSCI_CPU_ON_32 | shared::abi::psci::PSCI_AFFINITY_INFO_64 | shared::abi::psci::PSCI_AFFINITY_INFO_32 => {
                        // The RMM answered bad targets itself: this one is a REC of ours.
                        if target >= n {
                            return Err(fail("PSCI exit for no REC", fid, gpr(1)));
                        }
                        let on = matches!(fid as u32, shared::abi::psci::PSCI_CPU_ON_64 | shared::abi::psci::PSCI_CPU_ON_32);
                        let status = if on && st[target].on { shared::abi::psci::status::ALREADY_ON as i64 as u64 } else { 0 };
                        check("PSCI_COMPLETE", rmi.psci_complete(r.recs[i], r.recs[target], status))?;
                        if on && status == 0 {
                            vm.lock().vgic.reset_lrs(target);
                            st[target] = RecState { on: true, ..RecState::default() };
                        }
                    }
                    shared::abi::psci::PSCI_CPU_OFF => {
                        st[i].on = false;
                        slice_end = 0;
                    }
                    _ => {}
                }
            }
            other => {
                out.line(format_args!("realm-vm: REC {} exit reason {} (esr {:#x}): stopping", i, other, esr));
                return Err(fail("REC exit reason", other, esr));
            }
        }
    }
}

fn wake(st: &mut [RecState; MAX_VCPUS], kick: u32) {
    for (i, s) in st.iter_mut().enumerate() {
        if kick & (1 << i) != 0 {
            s.waiting = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_memory_is_the_unprotected_alias_of_ram_only() {
        const SHARED_PA: u64 = 0x9800_0000;
        let m = RealmShared { ram_size: 64 << 20, shared_pa: SHARED_PA };
        assert_eq!(m.pa(SHARED_BIT | RAM_IPA, 16), Some(SHARED_PA));
        assert_eq!(m.pa(SHARED_BIT | (RAM_IPA + 0x12_3000), 0x1000), Some(SHARED_PA + 0x12_3000));
        assert_eq!(m.pa(RAM_IPA, 16), None, "protected: never the device's");
        assert_eq!(m.pa(SHARED_BIT | (RAM_IPA + (64 << 20) - 8), 16), None, "crosses the end of RAM");
        assert_eq!(m.pa(SHARED_BIT | 0x0900_0000, 4), None, "a device, not RAM");
        assert_eq!(m.pa(u64::MAX, 2), None);
    }

    #[test]
    fn ipis_from_system_register_exits() {
        // What rmm reported for Linux's `msr icc_sgi1r_el1, x1` (Rt hidden).
        assert_eq!(sgi1r_write(0x623a_3016, 0x0100_0002), Some(0x0100_0002));
        // A read of it, and the neighbours ICC_ASGI1R_EL1 / ICC_SGI0R_EL1: not an IPI.
        assert_eq!(sgi1r_write(0x623a_3017, 0), None);
        assert_eq!(sgi1r_write(0x623c_3016, 1), None);
        assert_eq!(sgi1r_write(0x623e_3016, 1), None);
        // Another Op1 with the same CRn/CRm/Op2 is another register.
        assert_eq!(sgi1r_write(0x623a_7016, 1), None);
    }

    #[test]
    fn rec_scheduling_states() {
        let on = RecState { on: true, ..RecState::default() };
        assert_eq!(sched_state(&RecState::default(), true), sched::State::Off);
        assert_eq!(sched_state(&on, false), sched::State::Ready);
        let wfi = RecState { waiting: true, cntv_ctl: 0b001, cntv_cval: 700, ..on };
        assert_eq!(sched_state(&wfi, false), sched::State::Waiting { wake: false, deadline: Some(700) });
        assert_eq!(sched_state(&wfi, true), sched::State::Waiting { wake: true, deadline: Some(700) });
        let mut lr = wfi;
        lr.lrs[2] = 1 << 62 | 27;
        assert_eq!(sched_state(&lr, false), sched::State::Waiting { wake: true, deadline: Some(700) }, "pending in a list register");
        lr.lrs[2] = 2 << 62 | 27;
        assert_eq!(sched_state(&lr, false), sched::State::Waiting { wake: false, deadline: Some(700) }, "only active");
    }

    #[test]
    fn a_rec_keeps_its_slice_across_exits() {
        // REC 0 exits often (timer, maintenance, MMIO); REC 1 spins with
        // interrupts masked and exits only when its slice ends.  REC 0 keeps
        // the CPU for its whole slice, exit after exit.
        let st = [RecState { on: true, ..RecState::default() }; 2];
        let states: Vec<_> = st.iter().map(|s| sched_state(s, false)).collect();
        let q = 100;
        let d = sched::decide(&states, Some(0), 150, 100, q);
        assert_eq!((d.run, d.slice_end, d.timer), (Some(0), 150, Some(150)));
        let d = sched::decide(&states, Some(0), 150, 149, q);
        assert_eq!(d.run, Some(0));
        let d = sched::decide(&states, Some(0), 150, 150, q);
        assert_eq!((d.run, d.slice_end), (Some(1), 250));
    }

    #[test]
    fn dtb_printed_as_hex_lines() {
        struct Lines(Vec<String>);
        impl Report for Lines {
            fn line(&mut self, args: core::fmt::Arguments) {
                self.0.push(format!("{args}"));
            }
            fn raw(&mut self, _: core::fmt::Arguments) {}
        }
        let dtb: Vec<u8> = (0..70u8).collect();
        let mut out = Lines(Vec::new());
        print_dtb(&dtb, &mut out);
        let hex: String = (0..64u8).map(|b| format!("{b:02x}")).collect();
        assert_eq!(out.0, vec![format!("realm-vm: dtb 0000 {hex}"), "realm-vm: dtb 0040 404142434445".to_string(), "realm-vm: dtb end 70".to_string()]);
    }

    #[test]
    fn timers() {
        let s = |ctl, cval| RecState { cntv_ctl: ctl, cntv_cval: cval, ..RecState::default() };
        assert_eq!(timer_deadline(&s(0b001, 500)), Some(500));
        assert_eq!(timer_deadline(&s(0b011, 500)), None, "masked");
        assert_eq!(timer_deadline(&s(0b000, 500)), None, "off");
        assert!(timer_asserted(0b101));
        assert!(!timer_asserted(0b111));
        assert!(!timer_asserted(0b100));
    }
}
