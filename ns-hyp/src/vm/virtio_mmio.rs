//! The registers every virtio-mmio version 2 device shares (Virtio 1.2
//! §4.2.2): identification, feature negotiation, device status, queue
//! set-up and the interrupt status.  `vm::virtio_blk` and
//! `vm::virtio_net` each hold one `Transport` and add their own
//! configuration space (from offset 0x100) and queue processing.

use super::virtio_blk::{hi, lo};

pub const MAGIC: u32 = 0x7472_6976; // "virt"
pub const VERSION: u32 = 2;
pub const VENDOR_ID: u32 = 0x5141_5544; // "QUAD"

/// §6 VIRTIO_F_VERSION_1: every device offers it and needs it.
pub const F_VERSION_1: u64 = 1 << 32;

/// Device status bits (§2.1).
pub const STATUS_DRIVER_OK: u32 = 4;
pub const STATUS_FEATURES_OK: u32 = 8;
pub const STATUS_NEEDS_RESET: u32 = 64;

/// Interrupt status bits (§4.2.2): used buffer, configuration change.
pub const INT_VRING: u32 = 1;
pub const INT_CONFIG: u32 = 2;

/// One split virtqueue's set-up (§2.7) and where the device is in it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Queue {
    pub num: u16,
    pub ready: bool,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    /// Next avail ring index the device will read.
    pub last_avail: u16,
}

/// What a register write asks of the device model.
#[derive(Debug, PartialEq, Eq)]
pub enum Write {
    None,
    /// QueueNotify of this queue, which is running.
    Notify(usize),
    /// InterruptACK: the interrupt line is now `interrupt_status != 0`.
    Line,
    /// Status 0: the device resets (§2.1.1), keeping only what outlives a reset.
    Reset,
}

#[derive(Debug)]
pub struct Transport<const N: usize> {
    pub status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    pub driver_features: u64,
    queue_sel: u32,
    pub queues: [Queue; N],
    pub interrupt_status: u32,
}

impl<const N: usize> Default for Transport<N> {
    fn default() -> Self {
        Self { status: 0, device_features_sel: 0, driver_features_sel: 0, driver_features: 0, queue_sel: 0, queues: [Queue::default(); N], interrupt_status: 0 }
    }
}

impl<const N: usize> Transport<N> {
    /// A register below 0x100, for a device `device_id` that offers `features`
    /// and queues of at most `queue_size`.
    pub fn read(&self, off: u64, device_id: u32, features: u64, queue_size: u16) -> u32 {
        let q = self.queues.get(self.queue_sel as usize);
        match off {
            0x000 => MAGIC,
            0x004 => VERSION,
            0x008 => device_id,
            0x00c => VENDOR_ID,
            0x010 => match self.device_features_sel {
                0 => features as u32,
                1 => (features >> 32) as u32,
                _ => 0,
            },
            0x034 => if q.is_some() { queue_size as u32 } else { 0 },
            0x044 => q.is_some_and(|q| q.ready) as u32,
            0x060 => self.interrupt_status,
            0x070 => self.status,
            _ => 0, // ConfigGeneration (0x0fc) too: no device's config ever changes
        }
    }

    pub fn write(&mut self, off: u64, val: u32, features: u64, queue_size: u16) -> Write {
        let sel = self.queue_sel as usize;
        // Queue registers are only writable while that queue is not ready (§4.2.2.2).
        let qw = self.queues.get(sel).is_some_and(|q| !q.ready);
        match off {
            0x014 => self.device_features_sel = val,
            0x020 => match self.driver_features_sel {
                0 => lo(&mut self.driver_features, val),
                1 => hi(&mut self.driver_features, val),
                _ => {}
            },
            0x024 => self.driver_features_sel = val,
            0x030 => self.queue_sel = val,
            0x038 if qw => self.queues[sel].num = val.min(queue_size as u32) as u16,
            0x044 if sel < N => {
                let q = &mut self.queues[sel];
                q.ready = val & 1 != 0;
                if q.ready {
                    q.last_avail = 0;
                }
            }
            0x050 => {
                let n = val as usize;
                return if n < N && self.running(n) { Write::Notify(n) } else { Write::None };
            }
            0x064 => {
                self.interrupt_status &= !val;
                return Write::Line;
            }
            0x070 => {
                if val == 0 {
                    return Write::Reset;
                }
                // FEATURES_OK only for a subset of what is offered that includes VERSION_1 (§3.1.1).
                let mut s = val;
                if s & STATUS_FEATURES_OK != 0 && (self.driver_features & !features != 0 || self.driver_features & F_VERSION_1 == 0) {
                    s &= !STATUS_FEATURES_OK;
                }
                self.status = s;
            }
            0x080 if qw => lo(&mut self.queues[sel].desc, val),
            0x084 if qw => hi(&mut self.queues[sel].desc, val),
            0x090 if qw => lo(&mut self.queues[sel].avail, val),
            0x094 if qw => hi(&mut self.queues[sel].avail, val),
            0x0a0 if qw => lo(&mut self.queues[sel].used, val),
            0x0a4 if qw => hi(&mut self.queues[sel].used, val),
            _ => {}
        }
        Write::None
    }

    /// The driver runs queue `q`: DRIVER_OK, not broken, the queue ready with a usable size.
    pub fn running(&self, q: usize) -> bool {
        let q = &self.queues[q];
        self.status & STATUS_DRIVER_OK != 0 && self.status & STATUS_NEEDS_RESET == 0 && q.ready && q.num.is_power_of_two()
    }

    /// The driver broke the rules of a ring: DEVICE_NEEDS_RESET and a
    /// configuration change notification (§2.1.1); no more processing.
    pub fn broken(&mut self) {
        self.status |= STATUS_NEEDS_RESET;
        self.interrupt_status |= INT_CONFIG;
    }
}
