//! The guest's virtio-blk (`crate::vm::virtio_blk`) on the hardware: guest
//! RAM as its memory, and as its disk the real virtio-blk device QEMU
//! provides on one of its virtio-mmio slots, driven by ns-hyp with the
//! `virtio-drivers` crate (polled, one request at a time).

use crate::vm::config::MAX_VMS;
use crate::vm::layout::{ram_pa_in, PCIE_ECAM_IPA, VIRTIO_IPA, VIRTIO_SIZE};
use crate::vm::virtio_blk::{Disk, Effect, GuestMemory, VirtioBlk, SECTOR};
use crate::vm::virtio_pci::{Msi, VirtioPci, ECAM_SIZE};
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// Each virtio-mmio transport's register block (QEMU virt: 0x200 bytes apart,
/// from `platform::get().virtio_mmio`).
const SLOT_SIZE: usize = 0x200;

/// Memory for the driver's virtqueues: identity-mapped (it is in our image),
/// so its VA is the PA the device uses.  Never freed (the device lives as long as ns-hyp).
#[repr(C, align(4096))]
struct DmaArea(UnsafeCell<[u8; DMA_SIZE]>);
const DMA_SIZE: usize = 32 * 1024 * (MAX_VMS + 1); // the disks, and the uplink (`guest::net`)
// SAFETY: pages are handed out once each by the bump allocator below.
unsafe impl Sync for DmaArea {}
static DMA: DmaArea = DmaArea(UnsafeCell::new([0; DMA_SIZE]));
static DMA_NEXT: AtomicUsize = AtomicUsize::new(0);

pub(super) struct HalImpl;

// SAFETY: dma_alloc returns zeroed, page-aligned, identity-mapped memory
// owned by nobody else; share/unshare are identity (coherent DMA on QEMU, and
// every buffer we pass is identity-mapped: our image or guest RAM).
unsafe impl Hal for HalImpl {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let off = DMA_NEXT.fetch_add(pages * 4096, Ordering::Relaxed);
        assert!(off + pages * 4096 <= DMA_SIZE, "virtio DMA area exhausted");
        let p = DMA.0.get() as *mut u8;
        // SAFETY: within the static area (checked above).
        let v = unsafe { p.add(off) };
        (v as PhysAddr, NonNull::new(v).unwrap())
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).unwrap()
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

struct RealDisk(VirtIOBlk<HalImpl, MmioTransport<'static>>);

impl Disk for RealDisk {
    fn sectors(&self) -> u64 {
        self.0.capacity()
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> bool {
        self.0.read_blocks(sector as usize, buf).is_ok()
    }
    fn write(&mut self, sector: u64, buf: &[u8]) -> bool {
        self.0.write_blocks(sector as usize, buf).is_ok()
    }
    fn flush(&mut self) -> bool {
        self.0.flush().is_ok()
    }
}

/// A VM's RAM as device models see it (by IPA): `size` bytes at PA `pa`.
pub struct GuestRam {
    pub pa: u64,
    pub size: u64,
}

impl GuestMemory for GuestRam {
    fn read(&self, ipa: u64, buf: &mut [u8]) -> bool {
        let Some(pa) = ram_pa_in(ipa, buf.len() as u64, self.pa, self.size) else { return false };
        // SAFETY: inside guest RAM, identity-mapped RW at EL2.
        unsafe { core::ptr::copy_nonoverlapping(pa as *const u8, buf.as_mut_ptr(), buf.len()) };
        true
    }
    fn write(&mut self, ipa: u64, buf: &[u8]) -> bool {
        let Some(pa) = ram_pa_in(ipa, buf.len() as u64, self.pa, self.size) else { return false };
        // SAFETY: as above.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), pa as *mut u8, buf.len()) };
        true
    }
    fn slice_mut(&mut self, ipa: u64, len: usize) -> Option<&mut [u8]> {
        let pa = ram_pa_in(ipa, len as u64, self.pa, self.size)?;
        // SAFETY: inside guest RAM, identity-mapped RW at EL2, so the VA is
        // the PA the device DMAs to; used only as the buffer of one polled
        // disk request while the requesting vCPU is stopped in its trap
        // (other vCPUs touching it concurrently is the guest's own race, as with real DMA).
        Some(unsafe { core::slice::from_raw_parts_mut(pa as *mut u8, len) })
    }
}

struct Device {
    model: VirtioBlk,
    /// The same disk on the PCI transport (`quadrant.virtio=pci`).
    pci: VirtioPci,
    disk: RealDisk,
}

/// Per VM: the guest has the PCI transport (its DTB says so), not the mmio slot.
static PCI_MODE: [AtomicBool; MAX_VMS] = [const { AtomicBool::new(false) }; MAX_VMS];
/// Per VM: where the guest put BAR 0 (0: nowhere, or memory decoding off),
/// readable without the device lock: every data abort asks.
static BAR0: [AtomicU64; MAX_VMS] = [const { AtomicU64::new(0) }; MAX_VMS];

// SAFETY: the MMIO transport points at device memory that exists for the
// life of the machine; the mutex serialises every use.
unsafe impl Send for Device {}

/// VM k's disk: the k-th virtio-blk device QEMU has, in slot order.
static DEVICE: [spin::Once<Option<spin::Mutex<Device>>>; MAX_VMS] = [const { spin::Once::new() }; MAX_VMS];

/// The backend for one VM (a Realm, or the only VM).
pub fn init() {
    init_vms(1);
}

/// Finds QEMU's virtio-blk devices (`-device virtio-blk-device`) and brings
/// up one for each of the first `nvms` VMs, in slot order.  A VM without
/// one has an empty slot.
pub fn init_vms(nvms: usize) {
    let mut slot = 0;
    for (vm, dev) in DEVICE.iter().enumerate().take(nvms) {
        dev.call_once(|| {
            let found = next_backend(&mut slot);
            if found.is_none() {
                log::info!("no virtio-blk backend for vm{}: the guest gets none", vm);
            }
            found
        });
    }
}

/// The next virtio-blk device from slot `*slot` on.
fn next_backend(slot: &mut usize) -> Option<spin::Mutex<Device>> {
    while let Some((here, t)) = find_slot(*slot, crate::vm::virtio_blk::DEVICE_ID_BLOCK) {
        *slot = here + 1;
        match VirtIOBlk::<HalImpl, _>::new(t) {
            Ok(b) => {
                log::info!("virtio-blk backend: slot {} at {:#x}, {} sectors", here, crate::platform::get().virtio_mmio + here * SLOT_SIZE, b.capacity());
                return Some(spin::Mutex::new(Device { model: VirtioBlk::new(), pci: VirtioPci::new(), disk: RealDisk(b) }));
            }
            Err(e) => log::warn!("virtio-blk at slot {}: {:?}", here, e),
        }
    }
    None
}

/// The first of the platform's virtio-mmio slots from `from` on that holds a
/// device of type `device_id` (virtio 1.2 §5: 2 block, 1 network), with its
/// transport: ns-hyp's own backends (`next_backend`, `net::init_uplink`).
pub fn find_slot(from: usize, device_id: u32) -> Option<(usize, MmioTransport<'static>)> {
    let p = crate::platform::get();
    for slot in from..p.virtio_mmio_size / SLOT_SIZE {
        let base = p.virtio_mmio + slot * SLOT_SIZE;
        // SAFETY: the slots are mapped as Device memory at EL2; magic and
        // DeviceID are read-only registers with no side effects.
        let (magic, id) = unsafe { (core::ptr::read_volatile(base as *const u32), core::ptr::read_volatile((base + 8) as *const u32)) };
        if magic != crate::vm::virtio_mmio::MAGIC || id != device_id {
            continue;
        }
        // SAFETY: a virtio-mmio register block of SLOT_SIZE bytes, mapped for
        // ns-hyp's lifetime; each slot is handed out once (callers move past it).
        match unsafe { MmioTransport::new(NonNull::new(base as *mut VirtIOHeader).unwrap(), SLOT_SIZE) } {
            Ok(t) => return Some((slot, t)),
            Err(e) => log::warn!("virtio slot {}: {:?}", slot, e),
        }
    }
    None
}

/// VM `vm`'s device serves a Realm: offer VIRTIO_F_ACCESS_PLATFORM
/// (`VirtioBlk::set_access_platform`).
pub fn for_realm(vm: usize) {
    if let Some(d) = device(vm) {
        d.lock().model.set_access_platform(true);
    }
}

fn device(vm: usize) -> Option<&'static spin::Mutex<Device>> {
    DEVICE.get(vm)?.get()?.as_ref()
}

/// VM `vm` restarted: its disk's transport state as at power-on (the disk's
/// contents stay, as a real disk's do).
pub fn reset(vm: usize) {
    if let Some(d) = device(vm) {
        let mut d = d.lock();
        d.model = VirtioBlk::new();
        d.pci = VirtioPci::new();
    }
    BAR0[vm].store(0, Ordering::Relaxed);
}

/// Whether VM `vm`'s virtio slot has a device behind it.
pub fn present(vm: usize) -> bool {
    device(vm).is_some()
}

pub fn contains(vm: usize, ipa: u64) -> bool {
    present(vm) && !PCI_MODE[vm].load(Ordering::Relaxed) && (VIRTIO_IPA..VIRTIO_IPA + VIRTIO_SIZE).contains(&ipa)
}

/// VM `vm`'s disk goes on the PCI transport (`vm::virtio_pci`) from now on.
pub fn set_pci_mode(vm: usize) {
    PCI_MODE[vm].store(true, Ordering::Relaxed);
}

/// The ECAM window or BAR 0 of VM `vm`'s virtio-pci function.
pub fn pci_contains(vm: usize, ipa: u64) -> bool {
    if !present(vm) || !PCI_MODE[vm].load(Ordering::Relaxed) {
        return false;
    }
    let bar = BAR0[vm].load(Ordering::Relaxed);
    (PCIE_ECAM_IPA..PCIE_ECAM_IPA + ECAM_SIZE).contains(&ipa) || crate::vm::virtio_pci::bar0_contains(bar, ipa)
}

/// A guest access to the PCIe ECAM window or the function's BAR 0.
/// Returns the value read and a message the function sends (MSI-X).
/// None: an access size the region does not take.
pub fn pci_access(vm: usize, ipa: u64, size: u8, write: bool, value: u64, ram: GuestRam) -> Option<(u64, Option<Msi>)> {
    let dev = device(vm)?;
    let mut d = dev.lock();
    if (PCIE_ECAM_IPA..PCIE_ECAM_IPA + ECAM_SIZE).contains(&ipa) {
        if size == 8 {
            return None; // configuration accesses are at most 32-bit
        }
        let off = ipa - PCIE_ECAM_IPA;
        if !write {
            return Some((d.pci.config_read(off, size), None));
        }
        d.pci.config_write(off, size, value);
        BAR0[vm].store(d.pci.bar0().unwrap_or(0), Ordering::Relaxed);
        return Some((0, None));
    }
    let off = ipa.checked_sub(d.pci.bar0()?)?;
    let sectors = d.disk.sectors();
    let o = d.pci.bar_access(off, size, write, value, sectors);
    let mut msi = o.msi;
    if o.notify {
        let Device { pci, disk, .. } = &mut *d;
        if pci.blk.process(&mut { ram }, disk) {
            msi = msi.or(pci.used());
        }
    }
    Some((o.value, msi))
}

/// A guest access to its virtio-mmio slot.  Returns the value read and
/// whether the device's interrupt (an edge) must be raised.  None: an access
/// the transport does not allow (not 32-bit outside the config space).
pub fn access(vm: usize, ipa: u64, size: u8, write: bool, value: u64, mut ram: GuestRam) -> Option<(u64, bool)> {
    access_with(vm, ipa, size, write, value, &mut ram)
}

/// [`access`] with the guest's memory as `mem` says (a Realm's: its shared
/// memory, `crate::realm::linux::RealmShared`).
pub fn access_with(vm: usize, ipa: u64, size: u8, write: bool, value: u64, mem: &mut dyn GuestMemory) -> Option<(u64, bool)> {
    let dev = device(vm)?;
    let mut d = dev.lock();
    let off = ipa - VIRTIO_IPA;
    if off < 0x100 && size != 4 {
        return None;
    }
    if !write {
        let sectors = d.disk.sectors();
        return Some((d.model.read(off, size, sectors), false));
    }
    if off >= 0x100 {
        return Some((0, false)); // the config space is read-only for a block device without features
    }
    match d.model.write(off, value as u32) {
        Effect::Notify => {
            let Device { model, disk, .. } = &mut *d;
            // An extra edge while the status is still set is harmless (the
            // driver finds nothing new); a missing one would stall it.
            let irq = model.process(mem, disk);
            Some((0, irq))
        }
        Effect::None | Effect::Line => Some((0, false)),
    }
}

const _: () = assert!(SECTOR == virtio_drivers::device::blk::SECTOR_SIZE);
