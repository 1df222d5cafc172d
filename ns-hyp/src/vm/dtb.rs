//! The guest's device tree, written by ns-hyp: it describes exactly the
//! machine the guest gets (devicetree spec v0.4 §5, flattened format).

use super::config::GuestConfig;
use super::layout::*;

/// A minimal flattened-devicetree writer into a caller's buffer.  Strings are
/// kept in a small table and appended at `finish`.
pub struct FdtWriter<'a> {
    out: &'a mut [u8],
    /// End of the structure block written so far (it starts at HEADER + RSVMAP).
    pos: usize,
    strings: [u8; 1024],
    strings_len: usize,
    overflow: bool,
}

const HEADER: usize = 40;
const RSVMAP: usize = 16; // one terminating (0, 0) entry
const FDT_BEGIN_NODE: u32 = 1;
const FDT_END_NODE: u32 = 2;
const FDT_PROP: u32 = 3;
const FDT_END: u32 = 9;

#[derive(Debug, PartialEq, Eq)]
pub struct TooSmall;

impl<'a> FdtWriter<'a> {
    pub fn new(out: &'a mut [u8]) -> Self {
        Self { out, pos: HEADER + RSVMAP, strings: [0; 1024], strings_len: 0, overflow: false }
    }

    fn put(&mut self, bytes: &[u8]) {
        match self.out.get_mut(self.pos..self.pos + bytes.len()) {
            Some(d) => {
                d.copy_from_slice(bytes);
                self.pos += bytes.len();
            }
            None => self.overflow = true,
        }
    }

    fn align(&mut self) {
        while !self.pos.is_multiple_of(4) && !self.overflow {
            self.put(&[0]);
        }
    }

    fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }

    fn string_offset(&mut self, name: &str) -> u32 {
        let n = name.as_bytes();
        let table = &self.strings[..self.strings_len];
        let mut off = 0;
        for s in table.split(|&b| b == 0) {
            if s == n {
                return off as u32;
            }
            off += s.len() + 1;
        }
        let at = self.strings_len;
        if at + n.len() + 1 > self.strings.len() {
            self.overflow = true;
            return 0;
        }
        self.strings[at..at + n.len()].copy_from_slice(n);
        self.strings[at + n.len()] = 0;
        self.strings_len += n.len() + 1;
        at as u32
    }

    pub fn begin(&mut self, name: &str) {
        self.u32(FDT_BEGIN_NODE);
        self.put(name.as_bytes());
        self.put(&[0]);
        self.align();
    }

    pub fn end(&mut self) {
        self.u32(FDT_END_NODE);
    }

    pub fn prop(&mut self, name: &str, value: &[u8]) {
        let off = self.string_offset(name);
        self.u32(FDT_PROP);
        self.u32(value.len() as u32);
        self.u32(off);
        self.put(value);
        self.align();
    }

    pub fn prop_empty(&mut self, name: &str) {
        self.prop(name, &[]);
    }

    /// A string (or, with NULs inside, a string list) property.
    pub fn prop_str(&mut self, name: &str, value: &str) {
        let off = self.string_offset(name);
        self.u32(FDT_PROP);
        self.u32(value.len() as u32 + 1);
        self.u32(off);
        self.put(value.as_bytes());
        self.put(&[0]);
        self.align();
    }

    pub fn prop_cells(&mut self, name: &str, cells: &[u32]) {
        let off = self.string_offset(name);
        self.u32(FDT_PROP);
        self.u32(cells.len() as u32 * 4);
        self.u32(off);
        for c in cells {
            self.u32(*c);
        }
    }

    pub fn prop_u64(&mut self, name: &str, v: u64) {
        self.prop_cells(name, &[(v >> 32) as u32, v as u32]);
    }

    /// Ends the tree and writes the header; returns the blob's total size.
    pub fn finish(mut self) -> Result<usize, TooSmall> {
        self.u32(FDT_END);
        let struct_size = self.pos - HEADER - RSVMAP;
        let strings_off = self.pos;
        let (len, strings) = (self.strings_len, self.strings);
        self.put(&strings[..len]);
        if self.overflow {
            return Err(TooSmall);
        }
        let total = self.pos;
        let header = [
            0xd00d_feed,
            total as u32,
            (HEADER + RSVMAP) as u32, // off_dt_struct
            strings_off as u32,
            HEADER as u32, // off_mem_rsvmap
            17,            // version
            16,            // last_comp_version
            0,             // boot_cpuid_phys
            len as u32,
            struct_size as u32,
        ];
        for (i, v) in header.iter().enumerate() {
            self.out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        }
        self.out[HEADER..HEADER + RSVMAP].fill(0);
        Ok(total)
    }
}

const PHANDLE_GIC: u32 = 1;
const PHANDLE_CLK: u32 = 2;
const PHANDLE_ITS: u32 = 3;
/// GIC interrupt specifier types and flags (bindings/interrupt-controller/arm,gic-v3.yaml).
const SPI: u32 = 0;
const PPI: u32 = 1;
const EDGE_RISING: u32 = 1;
const LEVEL_HIGH: u32 = 4;

fn reg(w: &mut FdtWriter, base: u64, size: u64) {
    w.prop_cells("reg", &[(base >> 32) as u32, base as u32, (size >> 32) as u32, size as u32]);
}

/// Writes the guest's DTB into `out`; returns its size.
// Not inlined into `guest::start`, whose frame lives as long as the guest.
#[inline(never)]
pub fn build(out: &mut [u8], cfg: &GuestConfig, pmu: bool) -> Result<usize, TooSmall> {
    build_with(out, cfg, "hvc", pmu, true)
}

/// [`build`] with the PSCI conduit given: "smc" for a Realm (its PSCI calls
/// go to the RMM, DEN0137 "PSCI in a Realm"), and a PMUv3 node if `pmu`
/// (ns-hyp offers the guest the CPU's PMU, `vm::idregs::Offered`), and the
/// network device (`vm::virtio_net`) if `net`.
#[inline(never)]
pub fn build_with(out: &mut [u8], cfg: &GuestConfig, psci_method: &str, pmu: bool, net: bool) -> Result<usize, TooSmall> {
    let mut w = FdtWriter::new(out);
    macro_rules! node {
        ($($arg:tt)*) => {{
            let name = crate::line::Line::<32>::from_fmt(format_args!($($arg)*));
            w.begin(name.as_str());
        }};
    }
    w.begin("");
    w.prop_cells("#address-cells", &[2]);
    w.prop_cells("#size-cells", &[2]);
    w.prop_str("compatible", "linux,dummy-virt");
    w.prop_str("model", "Quadrant ns-hyp guest");
    w.prop_cells("interrupt-parent", &[PHANDLE_GIC]);

    w.begin("chosen");
    w.prop_str("bootargs", cfg.cmdline.as_str());
    w.prop_str("stdout-path", "/pl011@9000000");
    if let Some(i) = cfg.initrd {
        w.prop_u64("linux,initrd-start", i.ipa);
        w.prop_u64("linux,initrd-end", i.ipa + i.size);
    }
    w.end();

    node!("memory@{:x}", RAM_IPA);
    w.prop_str("device_type", "memory");
    reg(&mut w, RAM_IPA, cfg.ram_size);
    w.end();

    w.begin("cpus");
    w.prop_cells("#address-cells", &[1]);
    w.prop_cells("#size-cells", &[0]);
    for i in 0..cfg.vcpus {
        node!("cpu@{}", i);
        w.prop_str("device_type", "cpu");
        w.prop_str("compatible", "arm,armv8");
        w.prop_cells("reg", &[i as u32]); // MPIDR Aff0 (VMPIDR_EL2)
        w.prop_str("enable-method", "psci");
        w.end();
    }
    w.end();

    w.begin("psci");
    w.prop("compatible", b"arm,psci-1.0\0arm,psci-0.2\0");
    w.prop_str("method", psci_method);
    w.end();

    node!("intc@{:x}", GICD_IPA);
    w.prop_str("compatible", "arm,gic-v3");
    w.prop_cells("#interrupt-cells", &[3]);
    w.prop_empty("interrupt-controller");
    w.prop_cells("#redistributor-regions", &[1]);
    let gicr = GICR_STRIDE * cfg.vcpus as u64;
    w.prop_cells("reg", &[0, GICD_IPA as u32, 0, GICD_SIZE as u32, 0, GICR_IPA as u32, 0, gicr as u32]);
    w.prop_cells("phandle", &[PHANDLE_GIC]);
    if cfg.virtio_pci {
        // The ITS as the GIC's child (Documentation/devicetree/bindings/
        // interrupt-controller/arm,gic-v3.yaml): MSI specifier = DeviceID.
        w.prop_cells("#address-cells", &[2]);
        w.prop_cells("#size-cells", &[2]);
        w.prop_empty("ranges");
        node!("msi-controller@{:x}", ITS_IPA);
        w.prop_str("compatible", "arm,gic-v3-its");
        w.prop_empty("msi-controller");
        w.prop_cells("#msi-cells", &[1]);
        reg(&mut w, ITS_IPA, crate::vm::its::FRAME_SIZE);
        w.prop_cells("phandle", &[PHANDLE_ITS]);
        w.end();
    }
    w.end();

    w.begin("timer");
    w.prop_str("compatible", "arm,armv8-timer");
    // Secure phys, NS phys, virtual, hyp phys (PPIs 13, 14, 11, 10).
    w.prop_cells("interrupts", &[PPI, 13, LEVEL_HIGH, PPI, 14, LEVEL_HIGH, PPI, 11, LEVEL_HIGH, PPI, 10, LEVEL_HIGH]);
    w.prop_empty("always-on");
    w.end();

    if pmu {
        // The PMU overflow interrupt: PPI 7 (INTID 23), where QEMU virt wires
        // it and ns-hyp forwards the physical one (Documentation/devicetree/
        // bindings/arm/pmu.yaml; BSA recommends INTID 23).
        w.begin("pmu");
        w.prop_str("compatible", "arm,armv8-pmuv3");
        w.prop_cells("interrupts", &[PPI, PMU_INTID - 16, LEVEL_HIGH]);
        w.end();
    }

    w.begin("apb-pclk");
    w.prop_str("compatible", "fixed-clock");
    w.prop_cells("#clock-cells", &[0]);
    w.prop_cells("clock-frequency", &[24_000_000]);
    w.prop_str("clock-output-names", "clk24mhz");
    w.prop_cells("phandle", &[PHANDLE_CLK]);
    w.end();

    node!("pl011@{:x}", UART_IPA);
    w.prop("compatible", b"arm,pl011\0arm,primecell\0");
    reg(&mut w, UART_IPA, UART_SIZE);
    w.prop_cells("interrupts", &[SPI, UART_INTID - 32, LEVEL_HIGH]);
    w.prop_cells("clocks", &[PHANDLE_CLK, PHANDLE_CLK]);
    w.prop("clock-names", b"uartclk\0apb_pclk\0");
    w.end();

    // The PL031 RTC (`vm::pl031`), as QEMU virt describes its own:
    // bindings/rtc/arm,pl031.yaml and the AMBA bus's primecell binding.
    node!("pl031@{:x}", RTC_IPA);
    w.prop("compatible", b"arm,pl031\0arm,primecell\0");
    reg(&mut w, RTC_IPA, RTC_SIZE);
    w.prop_cells("interrupts", &[SPI, RTC_INTID - 32, LEVEL_HIGH]);
    w.prop_cells("clocks", &[PHANDLE_CLK]);
    w.prop_str("clock-names", "apb_pclk");
    w.end();

    if cfg.virtio_pci {
        // A generic ECAM host bridge (bindings/pci/host-generic-pci.yaml),
        // bus 0 only; requester ID = ITS DeviceID (msi-map identity, 16 bits).
        node!("pcie@{:x}", PCIE_ECAM_IPA);
        w.prop_str("compatible", "pci-host-ecam-generic");
        w.prop_str("device_type", "pci");
        w.prop_cells("#address-cells", &[3]);
        w.prop_cells("#size-cells", &[2]);
        w.prop_cells("bus-range", &[0, 0]);
        w.prop_cells("linux,pci-domain", &[0]);
        reg(&mut w, PCIE_ECAM_IPA, crate::vm::virtio_pci::ECAM_SIZE);
        // 32-bit non-prefetchable memory, PCI address = CPU address.
        w.prop_cells("ranges", &[0x0200_0000, 0, PCIE_MMIO_IPA as u32, 0, PCIE_MMIO_IPA as u32, 0, PCIE_MMIO_SIZE as u32]);
        w.prop_cells("msi-map", &[0, PHANDLE_ITS, 0, 0x1_0000]);
        w.prop_empty("dma-coherent");
        w.end();
    } else {
        node!("virtio_mmio@{:x}", VIRTIO_IPA);
        w.prop_str("compatible", "virtio,mmio");
        reg(&mut w, VIRTIO_IPA, VIRTIO_SIZE);
        w.prop_cells("interrupts", &[SPI, VIRTIO_INTID - 32, EDGE_RISING]);
        w.prop_empty("dma-coherent");
        w.end();
    }
    if net {
        // The switch port (`guest::net`), on virtio-mmio whichever transport the disk has.
        node!("virtio_mmio@{:x}", VIRTIO_NET_IPA);
        w.prop_str("compatible", "virtio,mmio");
        reg(&mut w, VIRTIO_NET_IPA, VIRTIO_NET_SIZE);
        w.prop_cells("interrupts", &[SPI, VIRTIO_NET_INTID - 32, EDGE_RISING]);
        w.prop_empty("dma-coherent");
        w.end();
    }

    w.end();
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_tree_parses_and_says_what_we_emulate() {
        let cfg = super::super::config::parse("quadrant.guest=0x80200000,16 quadrant.initrd=0x88000000,0x1000 quadrant.vcpus=4").unwrap();
        let mut buf = vec![0u8; DTB_MAX];
        let n = build(&mut buf, &cfg, false).unwrap();
        let fdt = shared::fdt::parse(&buf[..n]).unwrap();
        assert!(fdt.find_node("/pmu").is_none(), "no PMU node unless the PMU is offered");
        let chosen = fdt.find_node("/chosen").unwrap();
        assert_eq!(chosen.property("bootargs").unwrap().as_str(), Some(super::super::config::DEFAULT_CMDLINE));
        assert_eq!(shared::fdt::prop_u64(&chosen, "linux,initrd-start"), Some(0x4800_0000));
        assert_eq!(shared::fdt::prop_u64(&chosen, "linux,initrd-end"), Some(0x4800_1000));
        let cpus = fdt.find_node("/cpus").unwrap();
        assert_eq!(cpus.children().count(), 4);
        let gic = fdt.find_node("/intc@8000000").unwrap();
        let reg: Vec<u32> = gic.property("reg").unwrap().cells().collect();
        assert_eq!(reg, [0, 0x0800_0000, 0, 0x1_0000, 0, 0x080a_0000, 0, 0x8_0000]);
        let mem = fdt.find_node("/memory@40000000").unwrap();
        let reg: Vec<u32> = mem.property("reg").unwrap().cells().collect();
        assert_eq!(reg, [0, 0x4000_0000, 0, 0x4000_0000]);
        assert!(fdt.find_node("/pl011@9000000").is_some());
        assert_eq!(fdt.find_node("/psci").unwrap().property("method").unwrap().as_str(), Some("hvc"));
        // Our own boot-config reader agrees on the memory.
        let c = crate::boot::read_config(&buf[..n]).unwrap();
        assert_eq!(&c.banks[..c.nbanks], &[(0x4000_0000, 0x4000_0000)]);
    }

    #[test]
    fn pl031_node_for_the_amba_driver() {
        let cfg = super::super::config::parse("quadrant.guest=0x80200000,16").unwrap();
        let mut buf = vec![0u8; DTB_MAX];
        let n = build(&mut buf, &cfg, false).unwrap();
        let fdt = shared::fdt::parse(&buf[..n]).unwrap();
        let rtc = fdt.find_node("/pl031@9010000").unwrap();
        assert_eq!(rtc.property("compatible").unwrap().value, b"arm,pl031\0arm,primecell\0");
        let reg: Vec<u32> = rtc.property("reg").unwrap().cells().collect();
        assert_eq!(reg, [0, 0x0901_0000, 0, 0x1000]);
        let irq: Vec<u32> = rtc.property("interrupts").unwrap().cells().collect();
        assert_eq!(irq, [0, 2, 4], "SPI 2 (INTID 34), level high");
        let clocks: Vec<u32> = rtc.property("clocks").unwrap().cells().collect();
        assert_eq!(clocks, [PHANDLE_CLK]);
        assert_eq!(rtc.property("clock-names").unwrap().as_str(), Some("apb_pclk"));
        let clk = fdt.find_node("/apb-pclk").unwrap();
        assert_eq!(clk.property("phandle").unwrap().cells().collect::<Vec<u32>>(), [PHANDLE_CLK]);
    }

    #[test]
    fn too_small_buffer_is_an_error() {
        let cfg = super::super::config::parse("quadrant.guest=0x80200000,16").unwrap();
        for len in [0, 10, 100, 1000] {
            let mut buf = vec![0u8; len];
            assert_eq!(build(&mut buf, &cfg, true), Err(TooSmall));
        }
    }

    #[test]
    fn virtio_pci_brings_an_its_and_a_host_bridge_instead_of_the_mmio_slot() {
        let cfg = super::super::config::parse("quadrant.guest=0x80200000,16 quadrant.virtio=pci").unwrap();
        let mut buf = vec![0u8; DTB_MAX];
        let n = build(&mut buf, &cfg, false).unwrap();
        let fdt = shared::fdt::parse(&buf[..n]).unwrap();
        assert!(fdt.find_node("/virtio_mmio@a000000").is_none());
        assert!(fdt.find_node("/virtio_mmio@a000200").is_some(), "the network stays on virtio-mmio");
        let its = fdt.find_node("/intc@8000000/msi-controller@8080000").unwrap();
        assert_eq!(its.property("compatible").unwrap().as_str(), Some("arm,gic-v3-its"));
        let pcie = fdt.find_node("/pcie@3f000000").unwrap();
        assert_eq!(pcie.property("compatible").unwrap().as_str(), Some("pci-host-ecam-generic"));
        let map: Vec<u32> = pcie.property("msi-map").unwrap().cells().collect();
        let phandle: Vec<u32> = its.property("phandle").unwrap().cells().collect();
        assert_eq!(map, [0, phandle[0], 0, 0x10000]);
        // Without it: the mmio slot, no ITS.
        let cfg = super::super::config::parse("quadrant.guest=0x80200000,16").unwrap();
        let n = build(&mut buf, &cfg, false).unwrap();
        let fdt = shared::fdt::parse(&buf[..n]).unwrap();
        assert!(fdt.find_node("/virtio_mmio@a000000").is_some());
        assert!(fdt.find_node("/intc@8000000/msi-controller@8080000").is_none());
    }

    #[test]
    fn pmu_node_names_ppi_7() {
        let cfg = super::super::config::parse("quadrant.guest=0x80200000,16").unwrap();
        let mut buf = vec![0u8; DTB_MAX];
        let n = build(&mut buf, &cfg, true).unwrap();
        let fdt = shared::fdt::parse(&buf[..n]).unwrap();
        let pmu = fdt.find_node("/pmu").unwrap();
        assert_eq!(pmu.property("compatible").unwrap().as_str(), Some("arm,armv8-pmuv3"));
        let irq: Vec<u32> = pmu.property("interrupts").unwrap().cells().collect();
        assert_eq!(irq, [1, 7, 4], "PPI 7 (INTID 23), level high");
    }
}
