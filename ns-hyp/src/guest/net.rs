//! The VMs' network: each VM's virtio-net device (`vm::virtio_net`) is a
//! port of one L2 switch (`vm::net_switch`), and so is the uplink, QEMU's
//! `-device virtio-net-device` when there is one, which ns-hyp drives with
//! the `virtio-drivers` crate.
//!
//! A frame a guest sends is copied out of its RAM under its device's lock,
//! then, with no lock held, copied into each destination's next receive
//! buffer under that device's lock (or sent on the uplink).  No path holds
//! two devices' locks, so VMs sending to each other at once cannot deadlock.
//! A destination with no buffer posted drops the frame, as a NIC does.

use super::virtio::HalImpl;
use super::{deliver, vm_of, VMS};
use crate::vm::config::MAX_VMS;
use crate::vm::layout::{VIRTIO_NET_IPA, VIRTIO_NET_INTID, VIRTIO_NET_SIZE};
use crate::vm::net_switch::{Ports, Switch};
use crate::vm::virtio_net::{Effect, Rx, Tx, VirtioNet, HDR_LEN, MAX_FRAME};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::mmio::MmioTransport;

/// The uplink's switch port (after the VMs').
pub const UPLINK: usize = MAX_VMS;

/// VM k's device (None: it has no network).
static NICS: [spin::Mutex<Option<VirtioNet>>; MAX_VMS] = [const { spin::Mutex::new(None) }; MAX_VMS];
static SWITCH: spin::Mutex<Switch> = spin::Mutex::new(Switch::new());
/// Ports with a device behind them.
static PORTS: AtomicU32 = AtomicU32::new(0);
/// Per VM since its device was last reset: frames sent, received, and
/// dropped for want of a posted receive buffer (logged when it goes off).
static SENT: [AtomicU64; MAX_VMS] = [const { AtomicU64::new(0) }; MAX_VMS];
static RECEIVED: [AtomicU64; MAX_VMS] = [const { AtomicU64::new(0) }; MAX_VMS];
static DROPPED: [AtomicU64; MAX_VMS] = [const { AtomicU64::new(0) }; MAX_VMS];

/// VM k's MAC address: a locally administered one, 52:54:00:51:00:kk.
pub fn mac_of(k: usize) -> [u8; 6] {
    [0x52, 0x54, 0x00, 0x51, 0x00, k as u8]
}

/// VM `k` gets its network device (at power-on).
pub fn attach(k: usize) {
    *NICS[k].lock() = Some(VirtioNet::new(mac_of(k)));
    PORTS.fetch_or(1 << k, Ordering::SeqCst);
}

/// VM `k` powered off or reset: its device as at power-on, so no frame is
/// written into its RAM from now on (a delivery in progress holds the lock
/// this waits for), and the switch forgets its address.
pub fn reset(k: usize) {
    if let Some(n) = NICS[k].lock().as_mut() {
        *n = VirtioNet::new(n.mac());
    }
    SWITCH.lock().forget(k);
    let (s, r, d) = (SENT[k].swap(0, Ordering::Relaxed), RECEIVED[k].swap(0, Ordering::Relaxed), DROPPED[k].swap(0, Ordering::Relaxed));
    if s + r + d != 0 {
        log::info!("vm{}: network: {} frames sent, {} received, {} dropped for want of a receive buffer", k, s, r, d);
    }
}

pub fn contains(k: usize, ipa: u64) -> bool {
    // The port bit, set once at attach, not the device's lock: a transmit
    // in progress on another CPU holds that lock for its copies.
    (VIRTIO_NET_IPA..VIRTIO_NET_IPA + VIRTIO_NET_SIZE).contains(&ipa) && PORTS.load(Ordering::Relaxed) & (1 << k) != 0
}

/// A guest access to its virtio-net slot.  Returns the value read and
/// whether its own device's interrupt must be raised.  None: an access the
/// transport does not allow.  `me`: this physical CPU (for kicks to other VMs).
pub fn access(k: usize, ipa: u64, size: u8, write: bool, value: u64, me: usize) -> Option<(u64, bool)> {
    let off = ipa - VIRTIO_NET_IPA;
    if off < 0x100 && size != 4 {
        return None;
    }
    let mut ram = VMS[k].ram();
    let effect = {
        let mut nic = NICS[k].lock();
        let n = nic.as_mut()?;
        if !write {
            return Some((n.read(off, size), false));
        }
        if off >= 0x100 {
            return Some((0, false)); // the MAC is read-only without VIRTIO_NET_F_CTRL_MAC_ADDR
        }
        n.write(off, value as u32)
    };
    match effect {
        Effect::Notify(crate::vm::virtio_net::TX) => {
            let mut buf = [0u8; HDR_LEN + MAX_FRAME];
            loop {
                let tx = NICS[k].lock().as_mut().map_or(Tx::Idle, |n| n.pop_tx(&mut ram, &mut buf));
                match tx {
                    Tx::Idle => break,
                    Tx::Frame(len) => {
                        SENT[k].fetch_add(1, Ordering::Relaxed);
                        forward(k, &buf[HDR_LEN..HDR_LEN + len], me);
                    }
                    Tx::Dropped => {}
                }
            }
            let irq = NICS[k].lock().as_mut().is_some_and(|n| n.tx_done(&mut ram));
            Some((0, irq))
        }
        // New receive buffers: frames are not held back for them (a
        // destination without buffers dropped its frames), so nothing to do.
        Effect::Notify(_) | Effect::None | Effect::Line => Some((0, false)),
    }
}

/// Switches a frame that came in on port `from`.
fn forward(from: usize, frame: &[u8], me: usize) {
    let to: Ports = SWITCH.lock().forward(from, frame, PORTS.load(Ordering::SeqCst));
    for p in (0..=UPLINK).filter(|p| to & (1 << p) != 0) {
        if p == UPLINK {
            uplink_send(frame);
            continue;
        }
        let mut ram = VMS[p].ram();
        let rx = NICS[p].lock().as_mut().map_or(Rx::Down, |n| n.receive(&mut ram, frame));
        match rx {
            Rx::Delivered(_) => RECEIVED[p].fetch_add(1, Ordering::Relaxed),
            Rx::NoBuffer => DROPPED[p].fetch_add(1, Ordering::Relaxed),
            Rx::Down => 0,
        };
        if rx == Rx::Delivered(true) {
            let kick = vm_of(p).vgic.raise(0, VIRTIO_NET_INTID);
            deliver(kick, p, me);
        }
    }
}

// --- The uplink ------------------------------------------------------------

const UPLINK_QUEUE: usize = 32;
/// Room for the device's header and the largest frame.
const UPLINK_BUF: usize = 1536;

/// The receive buffers we post to the uplink: identity-mapped (in our
/// image), so their VA is the PA the device writes.
#[repr(C, align(64))]
struct RxBuffers(UnsafeCell<[[u8; UPLINK_BUF]; UPLINK_QUEUE]>);
// SAFETY: used only under `UPLINK`'s lock.
unsafe impl Sync for RxBuffers {}
static RX_BUFFERS: RxBuffers = RxBuffers(UnsafeCell::new([[0; UPLINK_BUF]; UPLINK_QUEUE]));

struct Uplink {
    dev: VirtIONetRaw<HalImpl, MmioTransport<'static>, UPLINK_QUEUE>,
    /// The receive buffer (index into `RX_BUFFERS`) each token has.
    buffer_of: [u8; UPLINK_QUEUE],
}

// SAFETY: the transport points at device memory that exists for the life of
// the machine; the mutex serialises every use.
unsafe impl Send for Uplink {}

static UPLINK_DEV: spin::Once<Option<spin::Mutex<Uplink>>> = spin::Once::new();
/// The uplink's physical interrupt (0: no uplink), read at every IRQ without the lock.
static UPLINK_INTID: AtomicU32 = AtomicU32::new(0);

fn rx_buffer(i: usize) -> &'static mut [u8] {
    // SAFETY: buffer i is touched only under UPLINK_DEV's lock, by the one
    // caller that owns its token at that moment.
    unsafe { &mut *(RX_BUFFERS.0.get() as *mut [u8; UPLINK_BUF]).add(i) }
}

/// Finds QEMU's virtio-net device on the virtio-mmio slots and makes it the
/// switch's uplink port.  Its interrupt goes to CPU 0.
pub fn init_uplink() {
    UPLINK_DEV.call_once(|| {
        let mut from = 0;
        while let Some((slot, t)) = super::virtio::find_slot(from, crate::vm::virtio_net::DEVICE_ID_NET) {
            from = slot + 1;
            let mut dev = match VirtIONetRaw::<HalImpl, _, UPLINK_QUEUE>::new(t) {
                Ok(d) => d,
                Err(e) => {
                    log::warn!("virtio-net at slot {}: {:?}", slot, e);
                    continue;
                }
            };
            let mut buffer_of = [0u8; UPLINK_QUEUE];
            for i in 0..UPLINK_QUEUE {
                // SAFETY: buffer i stays ours, untouched, until its token completes.
                match unsafe { dev.receive_begin(rx_buffer(i)) } {
                    Ok(token) => buffer_of[token as usize] = i as u8,
                    Err(e) => log::warn!("uplink receive buffer {}: {:?}", i, e),
                }
            }
            dev.enable_interrupts();
            // QEMU virt: virtio-mmio slot n raises SPI 16 + n.
            let intid = 32 + 16 + slot as u32;
            super::gic::enable_spi(intid, 0);
            log::info!("network uplink: virtio-net at slot {} ({:#x}), MAC {:02x?}, INTID {}", slot, crate::platform::get().virtio_mmio + slot * 0x200, dev.mac_address(), intid);
            PORTS.fetch_or(1 << UPLINK, Ordering::SeqCst);
            UPLINK_INTID.store(intid, Ordering::SeqCst);
            return Some(spin::Mutex::new(Uplink { dev, buffer_of }));
        }
        None
    });
}

fn uplink() -> Option<&'static spin::Mutex<Uplink>> {
    UPLINK_DEV.get()?.as_ref()
}

/// The uplink's physical interrupt, if there is an uplink.
pub fn uplink_intid() -> Option<u32> {
    Some(UPLINK_INTID.load(Ordering::Relaxed)).filter(|&i| i != 0)
}

fn uplink_send(frame: &[u8]) {
    if let Some(u) = uplink()
        && let Err(e) = u.lock().dev.send(frame)
    {
        log::warn!("uplink: send: {:?}", e);
    }
}

/// The uplink's interrupt: every frame it received goes into the switch.
pub fn uplink_interrupt(me: usize) {
    let Some(u) = uplink() else { return };
    // Acknowledge first: a frame that arrives while we drain raises it again.
    u.lock().dev.ack_interrupt();
    let mut frame = [0u8; UPLINK_BUF];
    loop {
        let len = {
            let mut u = u.lock();
            let Some(token) = u.dev.poll_receive() else { break };
            let i = u.buffer_of[token as usize] as usize;
            let buf = rx_buffer(i);
            // SAFETY: `buf` is the buffer this token was posted with.
            let got = unsafe { u.dev.receive_complete(token, buf) };
            let len = match got {
                Ok((hdr, len)) if hdr + len <= UPLINK_BUF => {
                    frame[..len].copy_from_slice(&buf[hdr..hdr + len]);
                    len
                }
                _ => 0,
            };
            // SAFETY: as at init: the buffer is free again and stays untouched until its token completes.
            match unsafe { u.dev.receive_begin(buf) } {
                Ok(token) => u.buffer_of[token as usize] = i as u8,
                Err(e) => log::warn!("uplink: receive buffer {}: {:?}", i, e),
            }
            len
        };
        if len > 0 {
            forward(UPLINK, &frame[..len], me);
        }
    }
}
