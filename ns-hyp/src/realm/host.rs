//! One Realm's life, driven from the Normal world (DEN0137 RMM 1.0, A2
//! "Realm lifecycle" and the command sequences of B4.3): create it around a
//! flat image, run its one REC until it powers off, and tear it down.
//!
//! The layout is fixed and shared with xtask, which recomputes the Realm
//! Initial Measurement from the same numbers (ci/xtask/src/measure.rs):
//! - RmiRealmParams: flags 0, s2sz [`S2SZ`], num_bps [`NUM_BPS`], num_wps
//!   [`NUM_WPS`], hash_algo [`HASH_ALGO`], vmid [`VMID`], RTT start level
//!   [`RTT_LEVEL_START`], one starting RTT;
//! - RTTs at level 2 and 3 for [`IPA_BASE`]; RTT_INIT_RIPAS of the image's
//!   pages [`IPA_BASE`, + n * 4 KiB);
//! - DATA_CREATE of page i at [`IPA_BASE`] + i * 4 KiB with RMI_MEASURE_CONTENT,
//!   in order;
//! - one REC: RmiRecParams flags RUNNABLE, mpidr 0, pc [`IPA_BASE`], x0..x7 = 0,
//!   and as many auxiliary granules as REC_AUX_COUNT asks for (asked before
//!   REC_CREATE, DEN0137 B4.3.13: TF-RMM wants 16, rmm 0).

use super::rmi::{Rmi, Ret, StatusName};
use super::{NsMemory, Pages, Report};
use shared::abi::rmi::*;
use shared::abi::rmi::feature0::{NUM_BPS_SHIFT, NUM_BPS_WPS_MASK, NUM_WPS_SHIFT, S2SZ_MASK};
use shared::smccc::Conduit;

pub const IPA_BASE: u64 = 0x4000_0000;
pub const S2SZ: u64 = 39;
pub const HASH_ALGO: u64 = RMI_HASH_SHA_256 as u64;
pub const VMID: u64 = 1;
pub const RTT_LEVEL_START: i64 = 1;
/// RmiRealmParams num_bps / num_wps: 0 is reserved (DEN0137 RMM 1.0,
/// RmiRealmParams; RealmParamsSupported takes 1 up to RMI_FEATURES'
/// NUM_BPS / NUM_WPS).  1 fits every CPU: the architecture has at least two
/// breakpoints and two watchpoints (ID_AA64DFR0_EL1.BRPs/WRPs >= 1), and a
/// fixed value keeps the RIM independent of the CPU (xtask's measure.rs).
pub const NUM_BPS: u64 = 1;
pub const NUM_WPS: u64 = 1;
pub const PAGE: u64 = 0x1000;
/// Most image pages we load.
pub const MAX_PAGES: usize = 32;
/// QEMU's UART0 at the unprotected alias (the top IPA bit, DEN0137
/// "Protected and unprotected IPA"): an UNASSIGNED_NS address, so the
/// Realm's accesses exit to us as emulatable MMIO.
pub const UART_IPA: u64 = (1 << (S2SZ - 1)) | crate::platform::qemu_virt::UART as u64;
/// An unprotected IPA where the Host has no device: a Realm read there is
/// answered with RmiRecEnter.flags.inject_sea (what a KVM host does for an
/// access it cannot emulate), which realm-guest's isolation probes expect.
pub const NO_DEVICE_IPA: u64 = (1 << (S2SZ - 1)) | 0x6000_1000;
/// Host call immediates realm-guest uses (its own protocol with us).
#[allow(dead_code)]
pub const HOST_CALL_ECHO: u64 = 1;
/// ... asks whether to run the isolation probes: x0 = 1 yes.
pub const HOST_CALL_ISOLATION: u64 = 2;

/// Exits handled before we give up on a Realm that never powers off.
pub const MAX_EXITS: u32 = 100_000;

/// A command that failed while building, running or tearing down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failed {
    pub step: &'static str,
    pub ret: Ret,
}

fn check(step: &'static str, r: Ret) -> Result<Ret, Failed> {
    if r.ok() { Ok(r) } else { Err(Failed { step, ret: r }) }
}

impl core::fmt::Display for Failed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} failed: {} (x0 {:#x})", self.step, StatusName(self.ret.x0), self.ret.x0)
    }
}

/// Where the Realm's image is in Normal-world memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Image {
    /// Page-aligned NS address.
    pub pa: u64,
    /// Length in pages (the image is padded to whole pages).
    pub pages: usize,
}

/// The granules of one Realm.
#[derive(Clone, Copy, Debug)]
pub struct Realm {
    pub rd: u64,
    pub rtt: [u64; 3],
    pub rec: u64,
    pub data: [u64; MAX_PAGES],
    pub pages: usize,
    /// NS pages: parameters, RmiRecRun.
    pub params: u64,
    pub run: u64,
    /// The REC's auxiliary granules (REC_AUX_COUNT of them).
    pub aux: [u64; MAX_REC_AUX_GRANULES],
    pub naux: usize,
    /// Granules delegated so far (undelegated at teardown).
    pub delegated: [u64; MAX_PAGES + 8 + MAX_REC_AUX_GRANULES],
    pub ndelegated: usize,
    /// REALM_CREATE succeeded (so REALM_DESTROY is due).
    pub created: bool,
}

impl Default for Realm {
    fn default() -> Self {
        Realm {
            rd: 0,
            rtt: [0; 3],
            rec: 0,
            data: [0; MAX_PAGES],
            pages: 0,
            params: 0,
            run: 0,
            aux: [0; MAX_REC_AUX_GRANULES],
            naux: 0,
            delegated: [0; MAX_PAGES + 8 + MAX_REC_AUX_GRANULES],
            ndelegated: 0,
            created: false,
        }
    }
}

/// Writes little-endian `v` at `off` of a page image.
pub fn put(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn get(buf: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(buf[off..off + 8].try_into().unwrap())
}

/// RmiRealmParams (DEN0137, RmiRealmParams type) as this Host fills it in.
pub fn realm_params(rtt_base: u64) -> [u8; 4096] {
    let mut p = [0u8; 4096];
    put(&mut p, 0x000, 0); // flags
    put(&mut p, 0x008, S2SZ);
    put(&mut p, 0x018, NUM_BPS);
    put(&mut p, 0x020, NUM_WPS);
    put(&mut p, 0x030, HASH_ALGO);
    put(&mut p, 0x800, VMID);
    put(&mut p, 0x808, rtt_base);
    put(&mut p, 0x810, RTT_LEVEL_START as u64);
    put(&mut p, 0x818, 1); // rtt_num_start
    p
}

/// RmiRecParams (DEN0137, RmiRecParams type): runnable, MPIDR 0, entry at
/// the image's first byte, the auxiliary granules `aux`.
pub fn rec_params(aux: &[u64]) -> [u8; 4096] {
    let mut p = [0u8; 4096];
    put(&mut p, 0x000, RMI_REC_FLAG_RUNNABLE);
    put(&mut p, 0x100, 0); // mpidr
    put(&mut p, 0x200, IPA_BASE); // pc
    put_aux(&mut p, aux);
    p
}

/// RmiRecParams num_aux (0x800) and aux[] (0x808).
pub fn put_aux(p: &mut [u8; 4096], aux: &[u64]) {
    put(p, 0x800, aux.len() as u64);
    for (i, &g) in aux.iter().enumerate() {
        put(p, 0x808 + 8 * i, g);
    }
}

/// The REALM_CREATE parameters this Host uses fit what RMI_FEATURES
/// register 0 (`f0`) offers: the IPA width, and [`NUM_BPS`]/[`NUM_WPS`].
pub fn features_fit(f0: u64) -> bool {
    f0 & S2SZ_MASK >= S2SZ && (f0 >> NUM_BPS_SHIFT) & NUM_BPS_WPS_MASK >= NUM_BPS && (f0 >> NUM_WPS_SHIFT) & NUM_BPS_WPS_MASK >= NUM_WPS
}

/// REC_AUX_COUNT, bounded by what RmiRecParams can carry.
pub fn aux_count<C: Conduit>(rmi: &Rmi<C>, rd: u64) -> Result<usize, Failed> {
    let n = check("REC_AUX_COUNT", rmi.rec_aux_count(rd))?.x(1);
    if n > MAX_REC_AUX_GRANULES as u64 {
        return Err(Failed { step: "REC_AUX_COUNT (more than RmiRecParams holds)", ret: Ret { x0: u64::MAX, x: [n, 0, 0, 0] } });
    }
    Ok(n as usize)
}

impl Realm {
    fn delegate<C: Conduit>(&mut self, rmi: &Rmi<C>, pages: &mut Pages, step: &'static str) -> Result<u64, Failed> {
        let pa = pages.take().ok_or(Failed { step, ret: Ret { x0: u64::MAX, x: [0; 4] } })?;
        check(step, rmi.granule_delegate(pa))?;
        self.delegated[self.ndelegated] = pa;
        self.ndelegated += 1;
        Ok(pa)
    }

    /// Builds and activates the Realm around `image` (the command sequence in
    /// the module comment).  On failure, what was built is torn down.
    pub fn create<C: Conduit, M: NsMemory>(rmi: &Rmi<C>, mem: &M, pages: &mut Pages, image: Image, out: &mut dyn Report) -> Result<Realm, Failed> {
        let mut r = Realm::default();
        match r.build(rmi, mem, pages, image, out) {
            Ok(()) => Ok(r),
            Err(e) => {
                let _ = r.destroy(rmi);
                Err(e)
            }
        }
    }

    fn build<C: Conduit, M: NsMemory>(&mut self, rmi: &Rmi<C>, mem: &M, pages: &mut Pages, image: Image, out: &mut dyn Report) -> Result<(), Failed> {
        if image.pages == 0 || image.pages > MAX_PAGES {
            return Err(Failed { step: "image size", ret: Ret { x0: u64::MAX, x: [image.pages as u64, 0, 0, 0] } });
        }
        check("RMI_VERSION", rmi.version(RMI_ABI_VERSION))?;
        let f0 = check("RMI_FEATURES", rmi.features(0))?.x(1);
        if !features_fit(f0) {
            return Err(Failed { step: "RMI_FEATURES (s2sz, breakpoints, watchpoints)", ret: Ret { x0: u64::MAX, x: [f0, 0, 0, 0] } });
        }
        self.params = pages.take().ok_or(Failed { step: "NS pages", ret: Ret { x0: u64::MAX, x: [0; 4] } })?;
        self.run = pages.take().ok_or(Failed { step: "NS pages", ret: Ret { x0: u64::MAX, x: [0; 4] } })?;
        self.rd = self.delegate(rmi, pages, "GRANULE_DELEGATE rd")?;
        self.rtt[0] = self.delegate(rmi, pages, "GRANULE_DELEGATE rtt")?;
        mem.write(self.params, &realm_params(self.rtt[0]));
        check("REALM_CREATE", rmi.realm_create(self.rd, self.params))?;
        self.created = true;
        for level in 2..=3 {
            let t = self.delegate(rmi, pages, "GRANULE_DELEGATE rtt")?;
            check("RTT_CREATE", rmi.rtt_create(self.rd, t, IPA_BASE, level))?;
            self.rtt[level as usize - 1] = t;
        }
        let top = IPA_BASE + image.pages as u64 * PAGE;
        let mut base = IPA_BASE;
        while base < top {
            base = check("RTT_INIT_RIPAS", rmi.rtt_init_ripas(self.rd, base, top))?.x(1);
        }
        for i in 0..image.pages {
            let d = self.delegate(rmi, pages, "GRANULE_DELEGATE data")?;
            let ipa = IPA_BASE + i as u64 * PAGE;
            check("DATA_CREATE", rmi.data_create(self.rd, d, ipa, image.pa + i as u64 * PAGE, RMI_MEASURE_CONTENT))?;
            self.data[i] = d;
            self.pages = i + 1;
        }
        // REC_AUX_COUNT before REC_CREATE: the REC takes that many delegated
        // auxiliary granules (DEN0137 RMI_REC_CREATE, failure condition
        // num_aux), which return to Delegated at REC_DESTROY.
        for _ in 0..aux_count(rmi, self.rd)? {
            self.aux[self.naux] = self.delegate(rmi, pages, "GRANULE_DELEGATE rec aux")?;
            self.naux += 1;
        }
        mem.write(self.params, &rec_params(&self.aux[..self.naux]));
        let rec = self.delegate(rmi, pages, "GRANULE_DELEGATE rec")?;
        check("REC_CREATE", rmi.rec_create(self.rd, rec, self.params))?;
        self.rec = rec;
        check("REALM_ACTIVATE", rmi.realm_activate(self.rd))?;
        out.line(format_args!(
            "realm: created rd {:#x}, {} data page(s) at ipa {:#x}, rec {:#x} with {} aux granule(s), {} granule(s) delegated",
            self.rd, self.pages, IPA_BASE, self.rec, self.naux, self.ndelegated
        ));
        Ok(())
    }

    /// Tears down everything built (in reverse dependency order) and
    /// undelegates every granule; returns the first failure.
    pub fn destroy<C: Conduit>(&mut self, rmi: &Rmi<C>) -> Result<(), Failed> {
        let mut first = Ok(());
        let mut note = |step: &'static str, r: Ret| {
            if !r.ok() && first.is_ok() {
                first = Err(Failed { step, ret: r });
            }
        };
        for i in 0..self.pages {
            note("DATA_DESTROY", rmi.data_destroy(self.rd, IPA_BASE + i as u64 * PAGE));
        }
        if self.rec != 0 {
            note("REC_DESTROY", rmi.rec_destroy(self.rec));
        }
        for level in [3i64, 2] {
            if self.rtt[level as usize - 1] != 0 {
                note("RTT_DESTROY", rmi.rtt_destroy(self.rd, IPA_BASE, level));
            }
        }
        if self.created {
            note("REALM_DESTROY", rmi.realm_destroy(self.rd));
        }
        for &g in &self.delegated[..self.ndelegated] {
            note("GRANULE_UNDELEGATE", rmi.granule_undelegate(g));
        }
        *self = Realm { params: self.params, run: self.run, ..Realm::default() };
        first
    }
}

/// The part of RmiRecExit (DEN0137, RmiRecExit type) a Host acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exit {
    pub reason: u64,
    pub esr: u64,
    pub far: u64,
    pub hpfar: u64,
    pub gprs: [u64; 8],
    pub ripas_base: u64,
    pub ripas_top: u64,
    pub ripas_value: u64,
    pub imm: u64,
}

impl Exit {
    /// Decodes the exit half of RmiRecRun (the granule's bytes 0x800..0x1000).
    pub fn parse(b: &[u8; 0x800]) -> Self {
        let mut gprs = [0; 8];
        for (i, g) in gprs.iter_mut().enumerate() {
            *g = get(b, 0x200 + 8 * i);
        }
        Exit {
            reason: get(b, 0),
            esr: get(b, 0x100),
            far: get(b, 0x108),
            hpfar: get(b, 0x110),
            gprs,
            ripas_base: get(b, 0x500),
            ripas_top: get(b, 0x508),
            ripas_value: get(b, 0x510),
            imm: get(b, 0x600),
        }
    }

    /// The faulting IPA of a data abort exit: HPFAR_EL2.FIPA (bits 43:4 =
    /// IPA 55:12) and the page offset from FAR (DEN0137, RmiRecExit.hpfar/far: the RMM exposes
    /// FAR[11:0] only).
    pub fn fault_ipa(&self) -> u64 {
        ((self.hpfar >> 4) << 12) | (self.far & 0xfff)
    }
}

/// RmiRecEnter (DEN0137, RmiRecEnter type): flags and x0..x7 (the rest zero: no GIC list
/// registers in use, ICH_HCR 0).
pub fn rec_enter(flags: u64, gprs: &[u64]) -> [u8; 0x800] {
    let mut b = [0u8; 0x800];
    put(&mut b, 0, flags);
    for (i, g) in gprs.iter().enumerate() {
        put(&mut b, 0x200 + 8 * i, *g);
    }
    b
}

const EC_DABT_LOWER: u64 = 0x24;
const ESR_ISV: u64 = 1 << 24;
const ESR_WNR: u64 = 1 << 6;
const PSCI_SYSTEM_OFF: u64 = shared::abi::psci::PSCI_SYSTEM_OFF as u64;
const PSCI_SYSTEM_RESET: u64 = shared::abi::psci::PSCI_SYSTEM_RESET as u64;

/// What happened while the Realm ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub exits: u32,
    pub mmio: u32,
    pub host_calls: u32,
    pub ripas_changes: u32,
    pub irqs: u32,
    /// Data aborts that were not emulatable MMIO (isolation probes).
    pub aborts: u32,
    pub system_off: bool,
    /// Timed REC_ENTER -> host-call exit round trips and their counter ticks.
    pub bench_rounds: u64,
    pub bench_ticks: u64,
    /// What the Realm reported with HOST_CALL_TOKEN_RESULT: tokens, ticks.
    pub token_rounds: u64,
    pub token_ticks: u64,
}

/// Collects the Realm's UART bytes into lines.
struct LineBuf {
    buf: [u8; 200],
    len: usize,
}

impl LineBuf {
    fn push(&mut self, b: u8, out: &mut dyn Report) {
        match b {
            b'\r' => {}
            b'\n' => self.flush(out),
            _ => {
                if self.len == self.buf.len() {
                    self.flush(out);
                }
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }
    fn flush(&mut self, out: &mut dyn Report) {
        let text = core::str::from_utf8(&self.buf[..self.len]).unwrap_or("<non-UTF-8 output>");
        out.raw(format_args!("[realm] {}", text));
        self.len = 0;
    }
}

/// ... asks how many timed host calls to make (x0 = N, 0 = none).
pub const HOST_CALL_BENCH: u64 = 3;
/// ... one timed host call.
pub const HOST_CALL_BENCH_ROUND: u64 = 4;
/// ... asks whether to run the RSI bad-input cases: x0 = 1 yes.
pub const HOST_CALL_RSI_TESTS: u64 = 5;
/// ... asks how many attestation tokens to time (x0 = N, 0 = none).
pub const HOST_CALL_TOKEN_BENCH: u64 = 6;
/// ... reports them: x0 = N tokens took x1 counter ticks (0: one failed).
pub const HOST_CALL_TOKEN_RESULT: u64 = 7;
/// ... asks how many random RSI calls to fire (x0 = N, 0 = none; `hostile_realm_storm`).
pub const HOST_CALL_STORM: u64 = 8;
/// ... asks the storm's seed (x0).
pub const HOST_CALL_STORM_SEED: u64 = 9;
/// How many calls `hostile_realm_storm` asks for.
#[cfg(any(test, feature = "test-modes"))]
pub const STORM_CALLS: u64 = 12_000;

/// Options of one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Answer HOST_CALL_ISOLATION with "yes".
    pub isolation: bool,
    /// Answer HOST_CALL_BENCH with this many rounds.
    pub bench_rounds: u64,
    /// Answer HOST_CALL_RSI_TESTS with "yes".
    pub rsi_tests: bool,
    /// Answer HOST_CALL_TOKEN_BENCH with this many tokens.
    pub token_rounds: u64,
    /// Answer HOST_CALL_STORM with this many calls, HOST_CALL_STORM_SEED with the seed.
    pub storm_calls: u64,
    pub storm_seed: u64,
}

/// Enters the REC until the Realm powers off (PSCI SYSTEM_OFF/RESET), handling
/// each exit as A4.3 "REC exit" says a Host does.
pub fn run<C: Conduit, M: NsMemory>(rmi: &Rmi<C>, mem: &M, r: &Realm, opts: RunOptions, counter: &dyn Fn() -> u64, out: &mut dyn Report) -> Result<RunSummary, Failed> {
    let mut s = RunSummary::default();
    let mut bench_start = 0;
    let mut line = LineBuf { buf: [0; 200], len: 0 };
    let mut enter = rec_enter(0, &[]);
    while s.exits < MAX_EXITS {
        mem.write(r.run, &enter);
        check("REC_ENTER", rmi.rec_enter(r.rec, r.run))?;
        s.exits += 1;
        let mut b = [0u8; 0x800];
        mem.read(r.run + 0x800, &mut b);
        let e = Exit::parse(&b);
        enter = rec_enter(0, &[]);
        match e.reason {
            RMI_EXIT_SYNC if (e.esr >> 26) == EC_DABT_LOWER && e.esr & ESR_ISV != 0 => {
                // An emulatable access at an unprotected IPA (DEN0137, Realm memory: unprotected IPA space).
                let ipa = e.fault_ipa();
                s.mmio += 1;
                if e.esr & ESR_WNR != 0 {
                    if ipa == UART_IPA {
                        line.push(e.gprs[0] as u8, out);
                    }
                    enter = rec_enter(RMI_REC_ENTER_EMUL_MMIO, &[]);
                } else if ipa & !0xfff == NO_DEVICE_IPA {
                    out.line(format_args!("realm: read at ipa {:#x}, no device there: inject_sea", ipa));
                    enter = rec_enter(RMI_REC_ENTER_INJECT_SEA, &[]);
                } else {
                    // Reads: 0 (for UARTFR: transmit FIFO not full).
                    enter = rec_enter(RMI_REC_ENTER_EMUL_MMIO, &[0]);
                    if ipa & !0xfff != UART_IPA {
                        out.line(format_args!("realm: emulated read at unmapped unprotected ipa {:#x} -> 0", ipa));
                    }
                }
            }
            RMI_EXIT_SYNC => {
                s.aborts += 1;
                out.line(format_args!("realm: sync exit esr {:#x} hpfar {:#x} (ipa {:#x})", e.esr, e.hpfar, (e.hpfar >> 4) << 12));
                if s.aborts > 16 {
                    return Err(Failed { step: "REC_ENTER: repeated sync exits", ret: Ret { x0: 0, x: [e.esr, e.hpfar, 0, 0] } });
                }
            }
            RMI_EXIT_IRQ | RMI_EXIT_FIQ => s.irqs += 1,
            RMI_EXIT_RIPAS_CHANGE => {
                // Accept: apply the whole range (RTT_SET_RIPAS may stop early).
                s.ripas_changes += 1;
                let mut base = e.ripas_base;
                while base < e.ripas_top {
                    base = check("RTT_SET_RIPAS", rmi.rtt_set_ripas(r.rd, r.rec, base, e.ripas_top))?.x(1);
                }
                out.line(format_args!("realm: RIPAS change {:#x}..{:#x} to {} accepted", e.ripas_base, e.ripas_top, e.ripas_value));
            }
            RMI_EXIT_HOST_CALL if e.imm == HOST_CALL_BENCH_ROUND => {
                // Timed rounds: from the REC_ENTER that answered
                // HOST_CALL_BENCH to the last round's exit.
                s.bench_rounds += 1;
                if s.bench_rounds == opts.bench_rounds {
                    s.bench_ticks = counter().wrapping_sub(bench_start);
                }
            }
            RMI_EXIT_HOST_CALL => {
                s.host_calls += 1;
                let x0 = match e.imm {
                    HOST_CALL_ISOLATION => opts.isolation as u64,
                    HOST_CALL_BENCH => opts.bench_rounds,
                    HOST_CALL_RSI_TESTS => opts.rsi_tests as u64,
                    HOST_CALL_TOKEN_BENCH => opts.token_rounds,
                    HOST_CALL_STORM => opts.storm_calls,
                    HOST_CALL_STORM_SEED => opts.storm_seed,
                    HOST_CALL_TOKEN_RESULT => {
                        s.token_rounds = e.gprs[0];
                        s.token_ticks = e.gprs[1];
                        0
                    }
                    // HOST_CALL_ECHO and anything else: x0 + 1.
                    _ => e.gprs[0].wrapping_add(1),
                };
                out.line(format_args!("realm: host call imm {} x0 {:#x} -> {:#x}", e.imm, e.gprs[0], x0));
                enter = rec_enter(0, &[x0]);
                if e.imm == HOST_CALL_BENCH && opts.bench_rounds != 0 {
                    mem.write(r.run, &enter);
                    bench_start = counter();
                    check("REC_ENTER", rmi.rec_enter(r.rec, r.run))?;
                    s.exits += 1;
                    let mut b = [0u8; 0x800];
                    mem.read(r.run + 0x800, &mut b);
                    let e = Exit::parse(&b);
                    if e.reason != RMI_EXIT_HOST_CALL || e.imm != HOST_CALL_BENCH_ROUND {
                        return Err(Failed { step: "bench: expected a timed host call", ret: Ret { x0: e.reason, x: [e.imm, 0, 0, 0] } });
                    }
                    s.bench_rounds = 1;
                    if opts.bench_rounds == 1 {
                        s.bench_ticks = counter().wrapping_sub(bench_start);
                    }
                    enter = rec_enter(0, &[0]);
                }
            }
            RMI_EXIT_PSCI => match e.gprs[0] {
                PSCI_SYSTEM_OFF | PSCI_SYSTEM_RESET => {
                    s.system_off = true;
                    line.flush_if_pending(out);
                    out.line(format_args!("realm: PSCI {:#x}: realm off after {} exits", e.gprs[0], s.exits));
                    return Ok(s);
                }
                fid => {
                    // CPU_ON/AFFINITY_INFO name another REC; this Realm has
                    // one, so complete the request on itself with DENIED
                    // only if it names us, else stop.
                    if e.gprs[1] != 0 {
                        return Err(Failed { step: "PSCI exit for another REC", ret: Ret { x0: fid, x: [e.gprs[1], 0, 0, 0] } });
                    }
                    check("PSCI_COMPLETE", rmi.psci_complete(r.rec, r.rec, 0))?;
                }
            },
            other => {
                return Err(Failed { step: "REC exit reason", ret: Ret { x0: other, x: [e.esr, 0, 0, 0] } });
            }
        }
    }
    Err(Failed { step: "REC_ENTER: Realm did not power off", ret: Ret { x0: 0, x: [s.exits as u64, 0, 0, 0] } })
}

impl LineBuf {
    fn flush_if_pending(&mut self, out: &mut dyn Report) {
        if self.len != 0 {
            self.flush(out);
        }
    }
}
