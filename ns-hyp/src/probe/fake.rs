//! A fake of everything above ns-hyp (EL3 SPMD/RMMD, spmc with the echo SP,
//! rmm), answering like the real ones, with knobs that make it misbehave so
//! each error path of the probes can be exercised on the host.

use super::Mailbox;
use shared::abi::ffa::interface_args::{DirectMsgArgs, SuccessArgs, TargetInfo};
use shared::abi::ffa::partition_info::{PartitionIdType, PartitionInfo, PartitionProperties};
use shared::abi::ffa::{FfaError, Interface, UuidHelper, Version};
use shared::abi::rmi;
use shared::smccc::{Conduit, SmcResult};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

pub const SPMC_ID: u16 = 0x8000;
pub const ECHO_ID: u16 = 0x8001;
pub const ECHO_UUID: [u8; 16] = [
    0xd4, 0xff, 0x19, 0x55, 0xd0, 0x86, 0x47, 0x22, 0x89, 0x23, 0xd8, 0xbd, 0x89, 0xeb, 0x38, 0xb3,
];
pub const RX_PA: u64 = 0x6010_0000;
pub const TX_PA: u64 = 0x6010_1000;

/// How the fake misbehaves; `Default` is a correct firmware stack.
#[derive(Clone, Default)]
pub struct Knobs {
    /// No EL3 at all: every call returns SMCCC NOT_SUPPORTED (what our trap does).
    pub no_el3: bool,
    /// EL3 but no RMMD/RMM: RMI ids return SMCCC NOT_SUPPORTED.
    pub no_rmm: bool,
    /// The SPMD refuses unknown FF-A ids itself with SMCCC NOT_SUPPORTED.
    pub spmd_rejects_unknown: bool,
    /// PARTITION_INFO_GET without RX buffer answers this instead of BUSY (None: succeeds).
    pub info_before_rxtx: Option<Option<FfaError>>,
    /// Descriptor size reported by PARTITION_INFO_GET (default 24).
    pub desc_size: Option<u32>,
    /// Partition count reported (default: the real one).
    pub count: Option<u32>,
    /// The echo SP corrupts x5 in its answer.
    pub echo_corrupts: bool,
    /// A direct request to a missing partition succeeds.
    pub missing_partition_answers: bool,
    /// After the first FF-A error the SPMC stops answering (returns garbage).
    pub dies_after_error: bool,
    /// FFA_VERSION returns this instead of 1.2.
    pub ffa_version: Option<u32>,
    /// FFA_ID_GET returns this id.
    pub own_id: Option<u16>,
    /// RMI_VERSION status.
    pub rmi_status: Option<u64>,
    /// RMI_FEATURES status.
    pub rmi_features_status: Option<u64>,
}

pub struct FakeFirmware {
    pub knobs: Knobs,
    pub rx: Rc<RefCell<Vec<u8>>>,
    mapped: Cell<bool>,
    rx_held_by_caller: Cell<bool>,
    dead: Cell<bool>,
    pub releases: Cell<u32>,
    pub calls: RefCell<Vec<u32>>,
}

pub struct FakeMailbox {
    pub rx: Rc<RefCell<Vec<u8>>>,
}

impl Mailbox for FakeMailbox {
    fn rx_tx_pa(&self) -> (u64, u64) {
        (RX_PA, TX_PA)
    }
    fn pages(&self) -> u32 {
        1
    }
    fn with_rx<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        f(&self.rx.borrow())
    }
}

const V: Version = Version(1, 2);

fn regs(i: Interface) -> SmcResult {
    let mut r = [0u64; 18];
    i.to_regs(V, &mut r);
    r
}

fn error(e: FfaError) -> SmcResult {
    regs(Interface::Error { target_info: TargetInfo { endpoint_id: 0, vcpu_id: 0 }, error_code: e, error_arg: 0, is_32bit: true })
}

fn success32(a: [u32; 6]) -> SmcResult {
    regs(Interface::Success { target_info: TargetInfo { endpoint_id: 0, vcpu_id: 0 }, args: SuccessArgs::Args32(a) })
}

fn not_supported() -> SmcResult {
    let mut r = [0u64; 18];
    r[0] = u64::MAX;
    r
}

impl FakeFirmware {
    pub fn new(knobs: Knobs) -> (Self, FakeMailbox) {
        let rx = Rc::new(RefCell::new(vec![0u8; 4096]));
        let fw = Self {
            knobs,
            rx: rx.clone(),
            mapped: Cell::new(false),
            rx_held_by_caller: Cell::new(false),
            dead: Cell::new(false),
            releases: Cell::new(0),
            calls: RefCell::new(Vec::new()),
        };
        (fw, FakeMailbox { rx })
    }

    fn ffa_error(&self, e: FfaError) -> SmcResult {
        if self.knobs.dies_after_error {
            self.dead.set(true);
        }
        error(e)
    }

    fn partition_info(&self) -> SmcResult {
        let echo = PartitionInfo {
            uuid: UuidHelper::from_bytes(ECHO_UUID),
            partition_id: ECHO_ID,
            partition_id_type: PartitionIdType::PeEndpoint { execution_ctx_count: 1 },
            props: PartitionProperties {
                support_direct_req_rec: true,
                support_direct_req_send: true,
                is_aarch64: true,
                // v1.2 descriptors must say whether DIRECT_REQ2 is supported.
                support_direct_req2_rec: Some(true),
                support_direct_req2_send: Some(false),
                ..Default::default()
            },
        };
        if !self.mapped.get() {
            match self.knobs.info_before_rxtx {
                None => return self.ffa_error(FfaError::Busy),
                Some(Some(e)) => return self.ffa_error(e),
                Some(None) => {}
            }
        }
        if self.rx_held_by_caller.get() {
            return self.ffa_error(FfaError::Busy);
        }
        PartitionInfo::pack(V, &[echo], &mut self.rx.borrow_mut(), true);
        self.rx_held_by_caller.set(true);
        let size = self.knobs.desc_size.unwrap_or(PartitionInfo::DESC_SIZE as u32);
        success32([self.knobs.count.unwrap_or(1), size, 0, 0, 0, 0])
    }

    fn ffa(&self, fid: u32, r: &[u64; 18]) -> SmcResult {
        if self.dead.get() {
            let mut g = [0xdead_beefu64; 18];
            g[0] = 0x1234;
            return g;
        }
        if fid == 0x8400_0063 {
            let mut out = [0u64; 18];
            out[0] = self.knobs.ffa_version.unwrap_or(0x0001_0002) as u64;
            return out;
        }
        let Ok(req) = Interface::from_regs(V, r) else {
            if self.knobs.spmd_rejects_unknown {
                return not_supported();
            }
            return self.ffa_error(FfaError::NotSupported);
        };
        match req {
            Interface::IdGet => success32([self.knobs.own_id.unwrap_or(0) as u32, 0, 0, 0, 0, 0]),
            Interface::SpmIdGet => success32([SPMC_ID as u32, 0, 0, 0, 0, 0]),
            Interface::RxTxMap { .. } => {
                if self.mapped.get() {
                    return self.ffa_error(FfaError::Denied);
                }
                self.mapped.set(true);
                success32([0; 6])
            }
            Interface::RxRelease { .. } => {
                if !self.rx_held_by_caller.get() {
                    return self.ffa_error(FfaError::Denied);
                }
                self.rx_held_by_caller.set(false);
                self.releases.set(self.releases.get() + 1);
                success32([0; 6])
            }
            Interface::PartitionInfoGet { .. } => self.partition_info(),
            Interface::MsgSendDirectReq { src_id, dst_id, args: DirectMsgArgs::Args64(mut a) } => {
                if dst_id != ECHO_ID && !self.knobs.missing_partition_answers {
                    return self.ffa_error(FfaError::InvalidParameters);
                }
                if self.knobs.echo_corrupts {
                    a[2] ^= 1;
                }
                regs(Interface::MsgSendDirectResp { src_id: dst_id, dst_id: src_id, args: DirectMsgArgs::Args64(a) })
            }
            _ => self.ffa_error(FfaError::NotSupported),
        }
    }

    fn rmi(&self, fid: u32, _r: &[u64; 18]) -> SmcResult {
        if self.knobs.no_rmm {
            return not_supported();
        }
        let mut out = [0u64; 18];
        match fid {
            rmi::RMI_VERSION => {
                out[0] = self.knobs.rmi_status.unwrap_or(0);
                out[1] = rmi::RMI_ABI_VERSION;
                out[2] = rmi::RMI_ABI_VERSION;
            }
            rmi::RMI_FEATURES => {
                out[0] = self.knobs.rmi_features_status.unwrap_or(0);
                out[1] = 0x30; // S2SZ 48
            }
            _ => return not_supported(),
        }
        out
    }
}

impl Conduit for FakeFirmware {
    fn call(&self, fid: u32, args: [u64; 17]) -> SmcResult {
        self.calls.borrow_mut().push(fid);
        if self.knobs.no_el3 {
            return not_supported();
        }
        let mut r = [0u64; 18];
        r[0] = fid as u64;
        r[1..].copy_from_slice(&args);
        match fid {
            crate::firmware::SMCCC_VERSION => {
                let mut out = [0u64; 18];
                out[0] = 0x1_0005; // SMCCC 1.5
                out
            }
            f if shared::abi::ffa::fid::is_ffa(f) => self.ffa(f, &r),
            f if rmi::is_rmi(f) => self.rmi(f, &r),
            _ => not_supported(),
        }
    }
}
