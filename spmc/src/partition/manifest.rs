//! Partition manifest (FF-A manifest binding v1.0, TF-A
//! `docs/components/ffa-manifest-binding.rst`, read the way Hafnium reads it),
//! parsed once into a [`PartitionManifest`].

use crate::manifest::{ManifestError, prop_addr, prop_str, prop_u32};
use crate::name::Name;
use shared::fdt;

/// A partition UUID as the four 32-bit words that FFA_PARTITION_INFO_GET
/// carries in w1..w4 (DEN0077 v1.2, FFA_PARTITION_INFO_GET) and the manifest's `uuid` cells hold.
/// In memory (partition info descriptors) each word is stored little-endian,
/// which gives the RFC 4122 byte order of the UUID string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uuid(pub [u32; 4]);

impl Uuid {
    pub const NIL: Uuid = Uuid([0; 4]);

    pub fn is_nil(&self) -> bool {
        *self == Self::NIL
    }

    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0; 16];
        for (i, w) in self.0.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        b
    }
}

impl core::fmt::Display for Uuid {
    /// The usual 8-4-4-4-12 text form.
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        let b = self.to_bytes();
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// `exception-level` values of the binding.
pub const EL_S_EL1: u32 = 2;
/// `messaging-method` bits (binding; same positions as the partition
/// properties of the DEN0077 partition information descriptor for bits 0, 1, 2, 9, 10).
pub const MSG_DIRECT_REQ_RECV: u32 = 1 << 0;
pub const MSG_DIRECT_REQ_SEND: u32 = 1 << 1;
pub const MSG_INDIRECT: u32 = 1 << 2;
pub const MSG_DIRECT_REQ2_RECV: u32 = 1 << 9;
pub const MSG_DIRECT_REQ2_SEND: u32 = 1 << 10;
const MSG_KNOWN: u32 = MSG_DIRECT_REQ_RECV | MSG_DIRECT_REQ_SEND | MSG_INDIRECT | MSG_DIRECT_REQ2_RECV | MSG_DIRECT_REQ2_SEND;

/// Region `attributes` bits (binding "Memory Regions" / "Device Regions").
pub const ATTR_READ: u32 = 0x1;
pub const ATTR_WRITE: u32 = 0x2;
pub const ATTR_EXEC: u32 = 0x4;
/// Set: the region is in the Non-secure PAS.
pub const ATTR_NS: u32 = 0x8;

/// `ns-interrupts-action` (binding; DEN0077 v1.2, Non-secure interrupt actions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NsInterruptsAction {
    Queued = 0,
    ManagedExit = 1,
    Signaled = 2,
}

/// Most UUIDs, memory regions, device regions and interrupts kept per partition.
pub const MAX_UUIDS: usize = 4;
pub const MAX_MEMORY_REGIONS: usize = 8;
pub const MAX_DEVICE_REGIONS: usize = 4;
pub const MAX_INTERRUPTS: usize = 4;
/// Most ignored property and node names remembered (for the warnings).
pub const MAX_IGNORED: usize = 8;

/// One `memory-regions` child: a physical range the SP gets at the same IPA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryRegion {
    pub base: u64,
    pub pages: u32,
    pub attributes: u32,
}

impl MemoryRegion {
    pub fn size(&self) -> u64 {
        self.pages as u64 * 0x1000
    }
}

/// One `device-regions` child: MMIO mapped at the same IPA, and the
/// interrupts (id, attributes) it owns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceRegion {
    pub region: MemoryRegion,
    pub interrupts: [(u32, u32); MAX_INTERRUPTS],
    pub interrupt_count: usize,
}

/// Where and how the SP wants its FF-A boot information (DEN0077, boot information protocol,
/// binding `gp-register-num` + `boot-info` node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfo {
    /// The register (x0..x3) that carries the boot information blob's address.
    pub gp_register: u8,
    /// The blob lists the partition manifest (`boot-info { ffa_manifest; }`).
    pub ffa_manifest: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionManifest {
    pub description: Name,
    pub ffa_version: u32,
    /// The first UUID (the one FFA_PARTITION_INFO_GET reports for the partition).
    pub uuid: Uuid,
    uuids: [Uuid; MAX_UUIDS],
    uuid_count: usize,
    /// The partition id: the manifest's `id` once parsed (0 if absent or
    /// not a secure endpoint id), then the one the SPMC assigns from the
    /// SPMC manifest's order ([`PartitionManifest::assign_id`]), as Hafnium does.
    pub id: u16,
    /// The manifest's `id` as written, if any.
    pub manifest_id: Option<u32>,
    pub execution_ctx_count: u16,
    pub exception_level: u32,
    /// Physical load address from the manifest, if it has one.
    pub load_address: Option<u64>,
    pub entrypoint_offset: Option<u64>,
    pub boot_order: u16,
    pub messaging_method: u32,
    pub ns_interrupts_action: NsInterruptsAction,
    pub notification_support: bool,
    pub power_management_messages: u32,
    /// `vm-availability-messages` (Hafnium's binding): bit 0 the partition
    /// subscribes to VM created messages, bit 1 to VM destroyed messages
    /// (DEN0077 v1.2, framework messages, "VM availability messages").
    pub vm_availability_messages: u32,
    pub boot_info: Option<BootInfo>,
    /// `mem-size`: the partition's memory from its load address as the SP
    /// itself will use it (OP-TEE's extension of the binding, read by
    /// OP-TEE with CFG_CORE_PHYS_RELOCATABLE; not in DEN0077).  It must fit
    /// in the memory the SPMC manifest gives it (`layout::check_mem_size`).
    pub mem_size: Option<u64>,
    /// `gp-register-num` as written (with `boot-info` it is [`Self::boot_info`]).
    pub gp_register: Option<u8>,
    /// Properties and nodes the SPMC does not implement: ignored, with a warning.
    ignored: [Name; MAX_IGNORED],
    ignored_count: usize,
    memory_regions: [MemoryRegion; MAX_MEMORY_REGIONS],
    memory_region_count: usize,
    device_regions: [DeviceRegion; MAX_DEVICE_REGIONS],
    device_region_count: usize,
}

/// `vm-availability-messages` bits: subscribed to VM created / destroyed messages.
pub const VM_CREATED: u32 = 1 << 0;
pub const VM_DESTROYED: u32 = 1 << 1;

/// Root properties of the binding this SPMC understands.  Any other is
/// ignored with a warning, as Hafnium ignores what it does not read (e.g.
/// `stream-endpoint-ids` of Hafnium's DMA support): "what Hafnium boots, we
/// boot"; only invalid values of the properties we read refuse a partition.
const KNOWN_ROOT_PROPERTIES: &[&str] = &[
    "compatible", "description", "ffa-version", "uuid", "id", "auxiliary-id",
    "execution-ctx-count", "exception-level", "execution-state", "load-address",
    "entrypoint-offset", "xlat-granule", "boot-order", "messaging-method",
    "managed-exit", "managed-exit-virq", "ns-interrupts-action",
    "other-s-interrupts-action", "time-slice-mem", "gp-register-num",
    "power-management-messages", "vm-availability-messages", "notification-support",
    "#address-cells", "#size-cells", "mem-size",
];
const KNOWN_REGION_PROPERTIES: &[&str] = &[
    "description", "pages-count", "attributes", "base-address", "load-address-relative-offset",
    "interrupts", "interrupts-target", "exclusive-access", "compatible", "phandle",
];

/// What a manifest has that we ignore, for [`PartitionManifest::ignored`].
#[derive(Default)]
struct Ignored {
    names: [Name; MAX_IGNORED],
    count: usize,
}

impl Ignored {
    fn add(&mut self, name: &str) {
        // Past MAX_IGNORED the rest are still ignored, just not listed.
        if let Some(slot) = self.names.get_mut(self.count) {
            *slot = Name::new(name);
            self.count += 1;
        }
    }

    /// Records the properties of `node` that are not in `known`.
    fn unknown_properties(&mut self, node: &fdt::FdtNode, known: &[&str]) {
        for p in node.properties().filter(|p| !known.contains(&p.name)) {
            self.add(p.name);
        }
    }
}

/// A region node's common part.  `load_address` resolves
/// `load-address-relative-offset`; `device` regions need `base-address`.
fn parse_region(node: &fdt::FdtNode, load_address: Option<u64>, device: bool, ignored: &mut Ignored) -> Result<MemoryRegion, ManifestError> {
    ignored.unknown_properties(node, KNOWN_REGION_PROPERTIES);
    if !device && (node.property("interrupts").is_some() || node.property("interrupts-target").is_some() || node.property("exclusive-access").is_some()) {
        return Err(ManifestError::Invalid("memory region with device properties"));
    }
    let pages = prop_u32(node, "pages-count")?.ok_or(ManifestError::Missing("pages-count"))?;
    let attributes = prop_u32(node, "attributes")?.ok_or(ManifestError::Missing("attributes"))?;
    if pages == 0 || pages > 0x4_0000 {
        return Err(ManifestError::Invalid("pages-count"));
    }
    if attributes & !(ATTR_READ | ATTR_WRITE | ATTR_EXEC | ATTR_NS) != 0 || attributes & ATTR_READ == 0 {
        return Err(ManifestError::Invalid("region attributes"));
    }
    if device && attributes & ATTR_EXEC != 0 {
        return Err(ManifestError::Invalid("executable device region"));
    }
    let base = match (prop_addr(node, "base-address")?, prop_addr(node, "load-address-relative-offset")?) {
        (Some(b), None) => b,
        (None, Some(off)) if !device => load_address.ok_or(ManifestError::Missing("load-address (for a relative region)"))?.checked_add(off).ok_or(ManifestError::Invalid("load-address-relative-offset"))?,
        (Some(_), Some(_)) => return Err(ManifestError::Invalid("both base-address and load-address-relative-offset")),
        // The binding lets the SPMC choose an address; we do not allocate yet.
        (None, _) => return Err(ManifestError::Missing("base-address")),
    };
    if base % 0x1000 != 0 || base.checked_add(pages as u64 * 0x1000).is_none() {
        return Err(ManifestError::Invalid("region base-address"));
    }
    Ok(MemoryRegion { base, pages, attributes })
}

impl PartitionManifest {
    pub fn parse(blob: &[u8], max_cpus: usize) -> Result<Self, ManifestError> {
        let dt = fdt::parse(blob).map_err(|_| ManifestError::BadDtb)?;
        let root = dt.find_node("/").ok_or(ManifestError::BadDtb)?;
        match prop_str(&root, "compatible")? {
            Some("arm,ffa-manifest-1.0") => {}
            _ => return Err(ManifestError::NotCompatible),
        }
        let mut ignored = Ignored::default();
        ignored.unknown_properties(&root, KNOWN_ROOT_PROPERTIES);
        let description = Name::new(prop_str(&root, "description")?.unwrap_or("sp"));
        let ffa_version = prop_u32(&root, "ffa-version")?.ok_or(ManifestError::Missing("ffa-version"))?;
        if ffa_version >> 16 != 1 || ffa_version & 0x8000_0000 != 0 {
            return Err(ManifestError::Invalid("ffa-version"));
        }
        // One or more UUIDs (v1.2 multi-service partitions: binding `uuid`
        // holds several groups of 4 cells).
        let uuid_prop = root.property("uuid").ok_or(ManifestError::Missing("uuid"))?;
        if uuid_prop.value.is_empty() || uuid_prop.value.len() % 16 != 0 {
            return Err(ManifestError::Invalid("uuid"));
        }
        let mut uuids = [Uuid::NIL; MAX_UUIDS];
        let uuid_count = uuid_prop.value.len() / 16;
        if uuid_count > MAX_UUIDS {
            return Err(ManifestError::TooMany("uuids"));
        }
        for (u, chunk) in uuids.iter_mut().zip(uuid_prop.value.chunks_exact(16)) {
            let mut words = [0u32; 4];
            for (i, w) in words.iter_mut().enumerate() {
                *w = u32::from_be_bytes(chunk[i * 4..i * 4 + 4].try_into().map_err(|_| ManifestError::Invalid("uuid"))?);
            }
            *u = Uuid(words);
            if u.is_nil() {
                return Err(ManifestError::Invalid("uuid"));
            }
        }
        // Optional: Hafnium assigns each SP its id from the SPMC manifest's
        // order and reads no `id` (see `assign_id`).  A usable one is a
        // secure endpoint id (bit 15, DEN0077 partition identification),
        // not the SPMD's 0xffff; anything else is kept only for the warning.
        let manifest_id = prop_u32(&root, "id")?;
        let id = match manifest_id {
            Some(id) if id <= 0xffff && id & 0x8000 != 0 && id != 0xffff => id as u16,
            _ => 0,
        };
        let ctx = prop_u32(&root, "execution-ctx-count")?.ok_or(ManifestError::Missing("execution-ctx-count"))?;
        // 1: UP (migratable); more: MP, one context per PE (binding), so at
        // most as many as this SPMC supports PEs.
        if ctx == 0 || ctx as usize > max_cpus {
            return Err(ManifestError::Invalid("execution-ctx-count"));
        }
        let exception_level = prop_u32(&root, "exception-level")?.ok_or(ManifestError::Missing("exception-level"))?;
        if exception_level != EL_S_EL1 {
            // S-EL0 partitions need an S-EL1 shim; only S-EL1 SPs are supported.
            return Err(ManifestError::Invalid("exception-level (only S-EL1 = 2 supported)"));
        }
        if prop_u32(&root, "execution-state")?.ok_or(ManifestError::Missing("execution-state"))? != 0 {
            return Err(ManifestError::Invalid("execution-state (only AArch64 supported)"));
        }
        if prop_u32(&root, "xlat-granule")?.unwrap_or(0) != 0 {
            return Err(ManifestError::Invalid("xlat-granule (only 4 KiB supported)"));
        }
        let load_address = prop_addr(&root, "load-address")?;
        if load_address.is_some_and(|a| a % 0x1000 != 0) {
            return Err(ManifestError::Invalid("load-address"));
        }
        let entrypoint_offset = prop_addr(&root, "entrypoint-offset")?;
        if entrypoint_offset.is_some_and(|o| o % 4 != 0) {
            return Err(ManifestError::Invalid("entrypoint-offset"));
        }
        let boot_order = prop_u32(&root, "boot-order")?.unwrap_or(0xffff);
        if boot_order > 0xffff {
            return Err(ManifestError::Invalid("boot-order"));
        }
        let messaging_method = prop_u32(&root, "messaging-method")?.ok_or(ManifestError::Missing("messaging-method"))?;
        if messaging_method & !MSG_KNOWN != 0 {
            return Err(ManifestError::Invalid("messaging-method"));
        }
        // Optional, signalled by default; the FF-A v1.0 boolean
        // `managed-exit` means managed exit (and wins), as Hafnium reads them.
        let mut ns_interrupts_action = match prop_u32(&root, "ns-interrupts-action")?.unwrap_or(2) {
            0 => NsInterruptsAction::Queued,
            1 => NsInterruptsAction::ManagedExit,
            2 => NsInterruptsAction::Signaled,
            _ => return Err(ManifestError::Invalid("ns-interrupts-action")),
        };
        match root.property("managed-exit") {
            None => {}
            Some(p) if p.value.is_empty() => ns_interrupts_action = NsInterruptsAction::ManagedExit,
            Some(_) => return Err(ManifestError::Invalid("managed-exit (an empty property)")),
        }
        if prop_u32(&root, "other-s-interrupts-action")?.unwrap_or(0) > 1 {
            return Err(ManifestError::Invalid("other-s-interrupts-action"));
        }
        let notification_support = match root.property("notification-support") {
            None => false,
            Some(p) if p.value.is_empty() => true,
            Some(_) => return Err(ManifestError::Invalid("notification-support (an empty property)")),
        };
        let power_management_messages = prop_u32(&root, "power-management-messages")?.unwrap_or(0);
        if power_management_messages & !0x7 != 0 {
            return Err(ManifestError::Invalid("power-management-messages"));
        }
        let vm_availability_messages = prop_u32(&root, "vm-availability-messages")?.unwrap_or(0);
        if vm_availability_messages & !(VM_CREATED | VM_DESTROYED) != 0 {
            return Err(ManifestError::Invalid("vm-availability-messages"));
        }
        let mem_size = prop_addr(&root, "mem-size")?;
        if mem_size == Some(0) {
            return Err(ManifestError::Invalid("mem-size"));
        }
        let gp_register = prop_u32(&root, "gp-register-num")?;
        if gp_register.is_some_and(|g| g > 3) {
            return Err(ManifestError::Invalid("gp-register-num (x0..x3)"));
        }

        let mut m = Self {
            description,
            ffa_version,
            uuid: uuids[0],
            uuids,
            uuid_count,
            id,
            manifest_id,
            execution_ctx_count: ctx as u16,
            exception_level,
            load_address,
            entrypoint_offset,
            boot_order: boot_order as u16,
            messaging_method,
            ns_interrupts_action,
            notification_support,
            power_management_messages,
            vm_availability_messages,
            boot_info: None,
            mem_size,
            gp_register: gp_register.map(|g| g as u8),
            ignored: [Name::default(); MAX_IGNORED],
            ignored_count: 0,
            memory_regions: [MemoryRegion::default(); MAX_MEMORY_REGIONS],
            memory_region_count: 0,
            device_regions: [DeviceRegion::default(); MAX_DEVICE_REGIONS],
            device_region_count: 0,
        };
        let mut ffa_manifest = false;
        let mut boot_info_node = false;
        for node in root.children() {
            match node.name {
                "memory-regions" => {
                    if prop_str(&node, "compatible")? != Some("arm,ffa-manifest-memory-regions") {
                        return Err(ManifestError::Invalid("memory-regions compatible"));
                    }
                    for r in node.children() {
                        let region = parse_region(&r, load_address, false, &mut ignored)?;
                        let slot = m.memory_regions.get_mut(m.memory_region_count).ok_or(ManifestError::TooMany("memory regions"))?;
                        *slot = region;
                        m.memory_region_count += 1;
                    }
                }
                "device-regions" => {
                    if prop_str(&node, "compatible")? != Some("arm,ffa-manifest-device-regions") {
                        return Err(ManifestError::Invalid("device-regions compatible"));
                    }
                    for r in node.children() {
                        let region = parse_region(&r, load_address, true, &mut ignored)?;
                        let mut d = DeviceRegion { region, ..Default::default() };
                        if let Some(p) = r.property("interrupts") {
                            if p.value.len() % 8 != 0 {
                                return Err(ManifestError::Invalid("interrupts"));
                            }
                            let cells: [u32; 2 * MAX_INTERRUPTS] = {
                                let mut c = [0; 2 * MAX_INTERRUPTS];
                                if p.value.len() / 4 > c.len() {
                                    return Err(ManifestError::TooMany("interrupts"));
                                }
                                for (d, v) in c.iter_mut().zip(p.cells()) {
                                    *d = v;
                                }
                                c
                            };
                            d.interrupt_count = p.value.len() / 8;
                            for (n, irq) in d.interrupts[..d.interrupt_count].iter_mut().enumerate() {
                                *irq = (cells[2 * n], cells[2 * n + 1]);
                                // GIC INTIDs below 1020; attributes use bits 11:0.
                                if irq.0 >= 1020 || irq.1 & !0xfff != 0 {
                                    return Err(ManifestError::Invalid("interrupts"));
                                }
                            }
                        }
                        let slot = m.device_regions.get_mut(m.device_region_count).ok_or(ManifestError::TooMany("device regions"))?;
                        *slot = d;
                        m.device_region_count += 1;
                    }
                }
                "boot-info" => {
                    if prop_str(&node, "compatible")? != Some("arm,ffa-manifest-boot-info") {
                        return Err(ManifestError::Invalid("boot-info compatible"));
                    }
                    ignored.unknown_properties(&node, &["compatible", "ffa_manifest"]);
                    boot_info_node = true;
                    ffa_manifest = node.property("ffa_manifest").is_some();
                }
                // A node we do not implement: ignored, as Hafnium ignores it.
                other => ignored.add(other),
            }
        }
        // A boot information blob is asked for by `gp-register-num` together
        // with a `boot-info` node (Hafnium builds it only then).  Either
        // alone asks for nothing: `gp-register-num = <0>` without `boot-info`
        // boots with nothing passed (x0 = 0), `boot-info` alone is ignored.
        m.boot_info = match (gp_register, boot_info_node) {
            (Some(g), true) => Some(BootInfo { gp_register: g as u8, ffa_manifest }),
            (None, true) => {
                ignored.add("boot-info");
                None
            }
            (_, false) => None,
        };
        m.ignored = ignored.names;
        m.ignored_count = ignored.count;
        Ok(m)
    }

    /// Properties and nodes of the manifest that the SPMC ignores (the
    /// first [`MAX_IGNORED`]); the caller logs a warning for each.
    pub fn ignored(&self) -> &[Name] {
        &self.ignored[..self.ignored_count]
    }

    /// Gives the partition the id the SPMC assigned it from the SPMC
    /// manifest (Hafnium: node `vmN` is partition 0x8000 + N; it reads no
    /// `id` from the partition manifest).  Returns the manifest's own `id`
    /// when it said something else (absent, not a secure endpoint id, or
    /// another one), for a warning.
    pub fn assign_id(&mut self, assigned: u16) -> Option<Option<u32>> {
        self.id = assigned;
        (self.manifest_id != Some(assigned as u32)).then_some(self.manifest_id)
    }

    /// Every UUID of the partition (one per service it implements).
    pub fn uuids(&self) -> &[Uuid] {
        &self.uuids[..self.uuid_count]
    }

    pub fn memory_regions(&self) -> &[MemoryRegion] {
        &self.memory_regions[..self.memory_region_count]
    }

    pub fn device_regions(&self) -> &[DeviceRegion] {
        &self.device_regions[..self.device_region_count]
    }

    /// Whether this is an MP partition (one execution context per PE).
    pub fn is_mp(&self) -> bool {
        self.execution_ctx_count > 1
    }

    /// Host tests: adds a device region at `base` owning interrupt `intid`.
    #[cfg(test)]
    pub fn with_device_interrupt_for_test(mut self, base: u64, intid: u32) -> Self {
        let mut d = DeviceRegion { region: MemoryRegion { base, pages: 1, attributes: ATTR_READ | ATTR_WRITE }, ..Default::default() };
        d.interrupts[0] = (intid, 0);
        d.interrupt_count = 1;
        self.device_regions[self.device_region_count] = d;
        self.device_region_count += 1;
        self
    }

    /// Host tests: sets the attributes of the last device region's interrupt `n`.
    #[cfg(test)]
    pub fn with_attributes_for_test(mut self, n: usize, attributes: u32) -> Self {
        self.device_regions[self.device_region_count - 1].interrupts[n].1 = attributes;
        self
    }

    /// A manifest for host tests of the dispatcher (and the coverage-guided
    /// fuzz targets in ci/fuzz, feature `fuzzing`).
    #[cfg(any(test, feature = "fuzzing"))]
    pub fn for_test(description: &str, id: u16, uuid: Uuid, ctx: u16, messaging_method: u32) -> Self {
        let mut uuids = [Uuid::NIL; MAX_UUIDS];
        uuids[0] = uuid;
        Self {
            description: Name::new(description),
            ffa_version: 0x10002,
            uuid,
            uuids,
            uuid_count: 1,
            id,
            manifest_id: Some(id as u32),
            execution_ctx_count: ctx,
            exception_level: EL_S_EL1,
            load_address: None,
            entrypoint_offset: None,
            boot_order: 0,
            messaging_method,
            ns_interrupts_action: NsInterruptsAction::Queued,
            notification_support: false,
            power_management_messages: 0,
            vm_availability_messages: 0,
            boot_info: None,
            mem_size: None,
            gp_register: None,
            ignored: [Name::default(); MAX_IGNORED],
            ignored_count: 0,
            memory_regions: [MemoryRegion::default(); MAX_MEMORY_REGIONS],
            memory_region_count: 0,
            device_regions: [DeviceRegion::default(); MAX_DEVICE_REGIONS],
            device_region_count: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: &[u8] = include_bytes!("../../tests/data/echo.dtb");

    #[test]
    fn parses_the_echo_manifest() {
        let m = PartitionManifest::parse(ECHO, 4).unwrap();
        assert_eq!(m.description.as_str(), "echo");
        assert_eq!(m.id, 0x8001);
        assert_eq!(m.ffa_version, 0x10002);
        assert_eq!(m.execution_ctx_count, 1);
        assert_eq!(m.load_address, Some(0x0e30_0000));
        assert_eq!(m.entrypoint_offset, Some(0x4000));
        assert_eq!(m.messaging_method, 0x603);
        assert_eq!(m.uuid.to_string(), "d4ff1955-d086-4722-8923-d8bd89eb38b3");
    }

    fn parse(b: &[u8]) -> Result<PartitionManifest, ManifestError> {
        PartitionManifest::parse(b, 4)
    }

    /// OP-TEE's manifest (issue D2): an MP S-EL1 SP that asks for the boot
    /// information blob with the manifest in x0; its `mem-size` (OP-TEE's
    /// own property) is ignored with a warning.
    #[test]
    fn parses_the_optee_manifest() {
        let m = parse(include_bytes!("../../tests/data/optee.dtb")).unwrap();
        assert_eq!(m.description.as_str(), "op-tee");
        assert_eq!(m.uuid.to_string(), "486178e0-e7f8-11e3-bc5e-0002a5d5c51b");
        assert_eq!((m.id, m.execution_ctx_count, m.boot_order, m.ffa_version), (0x8005, 4, 4, 0x10002));
        assert_eq!((m.load_address, m.entrypoint_offset), (Some(0x0e80_0000), Some(0x4000)));
        assert_eq!(m.ns_interrupts_action, NsInterruptsAction::Queued);
        assert_eq!(m.boot_info, Some(BootInfo { gp_register: 0, ffa_manifest: true }));
        assert_eq!(m.mem_size, Some(0x60_0000));
        assert!(m.ignored().is_empty());
    }

    #[test]
    fn parses_the_mp_and_isolation_manifests() {
        let m = parse(include_bytes!("../../tests/data/mp.dtb")).unwrap();
        assert_eq!((m.id, m.execution_ctx_count, m.boot_order), (0x8002, 4, 1));
        assert!(m.is_mp());
        assert_eq!(m.ns_interrupts_action, NsInterruptsAction::Queued);
        assert_eq!(m.power_management_messages, 1);
        assert_eq!(m.memory_regions(), &[MemoryRegion { base: 0x0e60_0000, pages: 4, attributes: 3 }]);
        assert!(m.device_regions().is_empty() && m.boot_info.is_none() && !m.notification_support);
        let i = parse(include_bytes!("../../tests/data/isolation.dtb")).unwrap();
        assert_eq!((i.id, i.execution_ctx_count, i.boot_order, i.messaging_method), (0x8003, 1, 2, 1));
    }

    #[test]
    fn every_field_of_the_binding() {
        let m = parse(include_bytes!("../../tests/data/sp_full.dtb")).unwrap();
        assert_eq!(m.vm_availability_messages, VM_CREATED | VM_DESTROYED);
        // Bits past 1 of vm-availability-messages: refused.
        assert!(matches!(parse(include_bytes!("../../tests/data/sp_bad_vm_availability.dtb")), Err(ManifestError::Invalid("vm-availability-messages"))));
        assert_eq!(m.uuids().len(), 2);
        assert_eq!(m.uuids()[1], Uuid([0x11111111, 0x22222222, 0x33333333, 0x44444444]));
        assert_eq!(m.uuid, m.uuids()[0]);
        assert!(m.notification_support);
        assert_eq!(m.boot_info, Some(BootInfo { gp_register: 0, ffa_manifest: true }));
        let d = m.device_regions();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].region, MemoryRegion { base: 0x0904_0000, pages: 1, attributes: 3 });
        assert_eq!(&d[0].interrupts[..d[0].interrupt_count], &[(40, 0x900)]);
    }

    #[test]
    fn malformed_or_unknown_fields_refuse_the_partition() {
        let cases: &[(&[u8], ManifestError)] = &[
            (include_bytes!("../../tests/data/sp_bad_ns_action.dtb"), ManifestError::Invalid("ns-interrupts-action")),
            (include_bytes!("../../tests/data/sp_bad_messaging.dtb"), ManifestError::Invalid("messaging-method")),
            (include_bytes!("../../tests/data/sp_region_no_pages.dtb"), ManifestError::Missing("pages-count")),
            (include_bytes!("../../tests/data/sp_region_two_bases.dtb"), ManifestError::Invalid("both base-address and load-address-relative-offset")),
            (include_bytes!("../../tests/data/sp_bad_ctx_count.dtb"), ManifestError::Invalid("execution-ctx-count")),
        ];
        for (blob, want) in cases {
            assert_eq!(parse(blob), Err(*want));
        }
        // Invalid values of what we read still refuse the partition.
        assert_eq!(parse(include_bytes!("../../tests/data/sp_bad_managed_exit.dtb")), Err(ManifestError::Invalid("managed-exit (an empty property)")));
    }

    #[test]
    fn full_manifest_survives_truncation_and_bit_flips() {
        let full = include_bytes!("../../tests/data/sp_full.dtb");
        for len in 0..full.len() {
            let _ = parse(&full[..len]);
        }
        for i in 0..full.len() {
            for bit in 0..8 {
                let mut c = full.to_vec();
                c[i] ^= 1 << bit;
                let _ = parse(&c);
            }
        }
    }

    #[test]
    fn unsupported_exception_level_is_an_error() {
        let b = include_bytes!("../../tests/data/sp_bad_el.dtb");
        assert!(matches!(PartitionManifest::parse(b, 4), Err(ManifestError::Invalid(_))));
    }

    /// What Hafnium boots, we boot: unknown properties and nodes are
    /// ignored (listed for a warning), not refused.
    #[test]
    fn unknown_properties_and_nodes_are_ignored() {
        let m = parse(include_bytes!("../../tests/data/sp_unknown_prop.dtb")).unwrap();
        assert_eq!(m.ignored(), &[Name::new("fancy-feature")]);
        let m = parse(include_bytes!("../../tests/data/sp_unknown_node.dtb")).unwrap();
        assert_eq!(m.ignored(), &[Name::new("frobnicators")]);
        assert!(parse(include_bytes!("../../tests/data/mp.dtb")).unwrap().ignored().is_empty());
    }

    /// The forms third-party partitions written for Hafnium use
    /// (sp_hafnium_forms.dts): no `id`, `managed-exit` instead of
    /// `ns-interrupts-action`, `gp-register-num = <0>` without `boot-info`,
    /// and Hafnium's `stream-endpoint-ids`.
    #[test]
    fn hafnium_forms_boot() {
        let mut m = parse(include_bytes!("../../tests/data/sp_hafnium_forms.dtb")).unwrap();
        assert_eq!((m.id, m.manifest_id), (0, None));
        assert_eq!(m.ns_interrupts_action, NsInterruptsAction::ManagedExit, "legacy managed-exit honoured");
        assert_eq!((m.gp_register, m.boot_info), (Some(0), None), "nothing to pass: no boot-info node");
        assert_eq!(m.ignored(), &[Name::new("stream-endpoint-ids")]);
        assert_eq!(m.assign_id(0x8001), Some(None), "no id of its own: warn");
        assert_eq!(m.id, 0x8001);
    }

    #[test]
    fn ids_and_defaults() {
        // No `id`: the SPMC assigns one.
        let mut m = parse(include_bytes!("../../tests/data/sp_no_id.dtb")).unwrap();
        assert_eq!((m.id, m.manifest_id), (0, None));
        assert_eq!(m.assign_id(0x8005), Some(None));
        // Without bit 15 (or the SPMD's 0xffff): kept for the warning only.
        let mut m = parse(include_bytes!("../../tests/data/sp_id_no_bit15.dtb")).unwrap();
        assert_eq!((m.id, m.manifest_id), (0, Some(0x2)));
        assert_eq!(m.assign_id(0x8002), Some(Some(0x2)));
        assert_eq!(m.id, 0x8002);
        // The same id as assigned: nothing to say; another one: the assigned one wins.
        let mut m = parse(include_bytes!("../../tests/data/mp.dtb")).unwrap();
        assert_eq!(m.assign_id(0x8002), None);
        assert_eq!(m.assign_id(0x8004), Some(Some(0x8002)));
        assert_eq!(m.id, 0x8004);
        // No ns-interrupts-action: signalled, Hafnium's default.
        let m = parse(include_bytes!("../../tests/data/sp_no_ns_action.dtb")).unwrap();
        assert_eq!(m.ns_interrupts_action, NsInterruptsAction::Signaled);
    }

    #[test]
    fn too_many_contexts_for_this_machine() {
        assert_eq!(PartitionManifest::parse(ECHO, 0), Err(ManifestError::Invalid("execution-ctx-count")));
    }

    #[test]
    fn wrong_compatible_and_garbage() {
        let spmc = include_bytes!("../../tests/data/spmc_manifest.dtb");
        assert_eq!(PartitionManifest::parse(spmc, 4), Err(ManifestError::NotCompatible));
        assert_eq!(PartitionManifest::parse(&ECHO[..64], 4), Err(ManifestError::BadDtb));
    }

    #[test]
    fn every_truncation_and_bit_flip_is_handled() {
        for len in 0..ECHO.len() {
            let _ = PartitionManifest::parse(&ECHO[..len], 4);
        }
        for i in 0..ECHO.len() {
            for bit in 0..8 {
                let mut c = ECHO.to_vec();
                c[i] ^= 1 << bit;
                let _ = PartitionManifest::parse(&c, 4);
            }
        }
    }
}
