//! Where a guest's payloads sit in its RAM and how it is entered: the rules
//! QEMU's virt machine applies to `-kernel`/`-initrd` (facts read from QEMU's
//! hw/arm/boot.c, `load_aarch64_image` and `arm_setup_direct_kernel_boot`),
//! so that any arm64 payload QEMU boots with `-kernel` finds its DTB where it
//! would there.
//!
//! - **Kernel.**  An arm64 Linux Image (Linux Documentation/arch/arm64/
//!   booting.rst: magic "ARM\x64" at offset 0x38, `text_offset` at 8,
//!   `image_size` at 16) with a non-zero `image_size` goes `text_offset`
//!   bytes above a 2 MiB aligned base (QEMU: RAM + `text_offset`, + 2 MiB when
//!   `text_offset` < 4 KiB, where its boot stub lives).  Anything else (no
//!   header, or `image_size` = 0) is a flat binary: QEMU loads it at RAM +
//!   0x80000.  Either is entered at its first byte (x0 = DTB, x1..x3 = 0).
//!   ns-hyp does not load the kernel itself (it is preloaded, see
//!   `vm::config`): it checks an Image's alignment and enters any payload at
//!   the address it was preloaded at.
//! - **Initrd.**  QEMU puts it at RAM + min(RAM / 2, 128 MiB), or at the
//!   end of the image if that is higher, page aligned.
//! - **DTB.**  Above the initrd (or where the initrd would start), aligned
//!   up to 2 MiB (QEMU: "some AArch64 kernels on early bootup map the fdt
//!   region as [ALIGN_DOWN(fdt, 2MB) .. +2MB]"); it must fit in RAM.  So it
//!   sits above the image, its BSS and any stack it puts after them.

use super::config::Blob;

/// booting.rst: the Image header's magic number, "ARM\x64", at offset 0x38.
pub const IMAGE_MAGIC: [u8; 4] = *b"ARM\x64";
pub const IMAGE_MAGIC_OFFSET: usize = 0x38;
/// The header bytes [`kind`] reads.
pub const HEADER_LEN: usize = 64;
/// QEMU's load offset of a flat aarch64 binary (hw/arm/boot.c KERNEL64_LOAD_ADDR).
pub const FLAT_LOAD_OFFSET: u64 = 0x8_0000;
/// QEMU's boot stub at the bottom of RAM (BOOTLOADER_MAX_SIZE): an Image
/// asking for a smaller `text_offset` goes 2 MiB higher.
const BOOTLOADER_MAX: u64 = 4 << 10;
const MIB_2: u64 = 2 << 20;
const PAGE: u64 = 4 << 10;
/// The initrd goes at most this far into RAM (and at most half of it).
const INITRD_MAX_OFFSET: u64 = 128 << 20;

/// What kind of payload `quadrant.guest` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An arm64 Image with a valid header (`image_size` != 0).
    Image { text_offset: u64, image_size: u64 },
    /// A flat binary (no header, or a header with `image_size` = 0, as
    /// before Linux 3.17: QEMU then ignores `text_offset` too).
    Flat,
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The payload's kind from its first bytes (fewer than [`HEADER_LEN`]: flat).
pub fn kind(header: &[u8]) -> Kind {
    if header.len() < HEADER_LEN || header[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4] != IMAGE_MAGIC {
        return Kind::Flat;
    }
    match le64(header, 16) {
        0 => Kind::Flat,
        image_size => Kind::Image { text_offset: le64(header, 8), image_size },
    }
}

/// Where QEMU virt loads a payload of this kind, as an offset from the start of RAM.
pub fn qemu_load_offset(k: Kind) -> u64 {
    match k {
        Kind::Image { text_offset, .. } if text_offset < BOOTLOADER_MAX => text_offset + MIB_2,
        Kind::Image { text_offset, .. } => text_offset,
        Kind::Flat => FLAT_LOAD_OFFSET,
    }
}

/// How the guest is entered and where its DTB goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The kernel's entry (its first byte); x0 = `dtb`, x1..x3 = 0.
    pub entry: u64,
    /// First byte above the image (its `image_size`, which counts its BSS, or the file's size).
    pub image_end: u64,
    /// Where QEMU would put an initrd for this image.
    pub initrd_start: u64,
    pub dtb: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceError {
    /// An Image not `text_offset` bytes above a 2 MiB boundary (booting.rst), or a flat binary not 4-byte aligned.
    Misaligned,
    /// The image (with its `image_size`) runs past the end of RAM.
    ImageTooBig,
    /// The initrd overlaps the image.
    InitrdOverlapsImage,
    /// No room above the image and initrd for a DTB of this size.
    NoRoomForDtb,
}

const fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// How much of RAM the preloaded kernel spans from its load address (an
/// Image's `image_size`, which counts its BSS, or the file's size), after
/// checking where it sits: an Image `text_offset` above a 2 MiB boundary
/// (booting.rst: "placed text_offset bytes from a 2MB aligned base
/// address"), a flat binary 4-byte aligned.
pub fn kernel_span(kernel: Blob, header: &[u8]) -> Result<u64, PlaceError> {
    match kind(header) {
        Kind::Image { text_offset, .. } if kernel.ipa % MIB_2 != text_offset % MIB_2 => Err(PlaceError::Misaligned),
        Kind::Image { image_size, .. } => Ok(image_size.max(kernel.size)),
        Kind::Flat if kernel.ipa % 4 != 0 => Err(PlaceError::Misaligned),
        Kind::Flat => Ok(kernel.size),
    }
}

/// Where ns-hyp copies payloads kept in the payload store (`vm::config`):
/// where QEMU's `-kernel`/`-initrd` would load them in RAM at `ram_ipa`,
/// `ram_size` bytes long.  `header`: the kernel's first bytes.  `place`
/// then checks the result like any preloaded payload.
pub fn stored_load(ram_ipa: u64, ram_size: u64, header: &[u8], kernel_size: u64, initrd_size: Option<u64>) -> (Blob, Option<Blob>) {
    let k = kind(header);
    let kernel = Blob { ipa: ram_ipa + qemu_load_offset(k), size: kernel_size };
    let span = match k {
        Kind::Image { image_size, .. } => image_size.max(kernel_size),
        Kind::Flat => kernel_size,
    };
    let start = align_up((ram_ipa + (ram_size / 2).min(INITRD_MAX_OFFSET)).max(kernel.ipa.saturating_add(span)), PAGE);
    (kernel, initrd_size.map(|size| Blob { ipa: start, size }))
}

/// Applies the rules of this module to a preloaded kernel (`header`: its
/// first bytes) and initrd in RAM at `ram_ipa`, `ram_size` bytes long, for a
/// DTB of at most `dtb_size` bytes.
pub fn place(ram_ipa: u64, ram_size: u64, kernel: Blob, header: &[u8], initrd: Option<Blob>, dtb_size: u64) -> Result<Placement, PlaceError> {
    let ram_end = ram_ipa + ram_size;
    let span = kernel_span(kernel, header)?;
    let image_end = kernel.ipa.checked_add(span).filter(|&e| e <= ram_end).ok_or(PlaceError::ImageTooBig)?;
    let initrd_start = align_up((ram_ipa + (ram_size / 2).min(INITRD_MAX_OFFSET)).max(image_end), PAGE);
    let mut above = initrd_start;
    if let Some(i) = initrd {
        if i.ipa < image_end && kernel.ipa < i.ipa + i.size {
            return Err(PlaceError::InitrdOverlapsImage);
        }
        above = above.max(i.ipa + i.size);
    }
    let dtb = align_up(above, MIB_2);
    if dtb + dtb_size > ram_end {
        return Err(PlaceError::NoRoomForDtb);
    }
    Ok(Placement { entry: kernel.ipa, image_end, initrd_start, dtb })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x4000_0000;
    const GIB: u64 = 1 << 30;

    fn image_header(text_offset: u64, image_size: u64) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[8..16].copy_from_slice(&text_offset.to_le_bytes());
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4].copy_from_slice(&IMAGE_MAGIC);
        h
    }

    #[test]
    fn kinds_and_qemu_load_offsets() {
        // A modern Linux Image (text_offset 0): 2 MiB in, above QEMU's stub.
        let k = kind(&image_header(0, 40 << 20));
        assert_eq!(k, Kind::Image { text_offset: 0, image_size: 40 << 20 });
        assert_eq!(qemu_load_offset(k), 2 << 20);
        // An old Image's text_offset 0x80000 is used as it is.
        assert_eq!(qemu_load_offset(kind(&image_header(0x8_0000, 1 << 20))), 0x8_0000);
        // image_size 0: the header is not trusted, a flat binary.
        assert_eq!(kind(&image_header(0x20_0000, 0)), Kind::Flat);
        assert_eq!(kind(&[0x14u8; 64]), Kind::Flat);
        assert_eq!(kind(&[0u8; 8]), Kind::Flat);
        assert_eq!(qemu_load_offset(Kind::Flat), 0x8_0000);
    }

    #[test]
    fn linux_image_with_initrd_as_qemu() {
        // Debian's Image at RAM + 2 MiB, image_size 40 MiB, a 20 MiB initrd at 128 MiB (xtask's layout).
        let h = image_header(0, 40 << 20);
        let k = Blob { ipa: RAM + (2 << 20), size: 30 << 20 };
        let i = Blob { ipa: RAM + (128 << 20), size: (20 << 20) + 5 };
        let p = place(RAM, GIB, k, &h, Some(i), 64 << 10).unwrap();
        assert_eq!(p.entry, RAM + (2 << 20));
        assert_eq!(p.image_end, RAM + (42 << 20), "image_size, not the file size, counts (BSS)");
        assert_eq!(p.initrd_start, RAM + (128 << 20));
        // Above the initrd, on the next 2 MiB boundary.
        assert_eq!(p.dtb, RAM + (150 << 20));
    }

    #[test]
    fn flat_binary_without_initrd() {
        // QEMU: a flat binary at RAM + 0x80000, the DTB where the initrd would start (128 MiB).
        let k = Blob { ipa: RAM + FLAT_LOAD_OFFSET, size: 0x3000 };
        let p = place(RAM, GIB, k, &[0u8; 64], None, 64 << 10).unwrap();
        assert_eq!(p, Placement { entry: RAM + 0x8_0000, image_end: RAM + 0x8_3000, initrd_start: RAM + (128 << 20), dtb: RAM + (128 << 20) });
        // 64 MiB of RAM: half of it.
        assert_eq!(place(RAM, 64 << 20, k, &[0u8; 64], None, 64 << 10).unwrap().dtb, RAM + (32 << 20));
        // An image larger than 128 MiB pushes it up, page then 2 MiB aligned.
        let big = Blob { ipa: RAM + FLAT_LOAD_OFFSET, size: (130 << 20) + 1 };
        let p = place(RAM, GIB, big, &[0u8; 64], None, 64 << 10).unwrap();
        assert_eq!(p.initrd_start, RAM + 0x8_0000 + (130 << 20) + 0x1000);
        assert_eq!(p.dtb, RAM + (132 << 20));
        assert!(p.dtb >= p.image_end);
    }

    #[test]
    fn refusals() {
        let h = image_header(0, 1 << 20);
        // An Image 4 KiB off its 2 MiB boundary.
        assert_eq!(place(RAM, GIB, Blob { ipa: RAM + (2 << 20) + 0x1000, size: 16 }, &h, None, 4096), Err(PlaceError::Misaligned));
        // text_offset 0x80000 wants the image 0x80000 above a 2 MiB boundary.
        assert!(place(RAM, GIB, Blob { ipa: RAM + 0x8_0000, size: 16 }, &image_header(0x8_0000, 16), None, 4096).is_ok());
        assert_eq!(place(RAM, GIB, Blob { ipa: RAM + 2, size: 16 }, &[0u8; 64], None, 4096), Err(PlaceError::Misaligned));
        assert_eq!(kernel_span(Blob { ipa: RAM + (2 << 20), size: 16 }, &h), Ok(1 << 20));
        assert_eq!(kernel_span(Blob { ipa: RAM + (3 << 20), size: 16 }, &h), Err(PlaceError::Misaligned));
        // image_size past the end of RAM.
        assert_eq!(place(RAM, 64 << 20, Blob { ipa: RAM + (2 << 20), size: 16 }, &image_header(0, 64 << 20), None, 4096), Err(PlaceError::ImageTooBig));
        // Initrd inside the image's BSS.
        assert_eq!(place(RAM, GIB, Blob { ipa: RAM + (2 << 20), size: 16 }, &image_header(0, 8 << 20), Some(Blob { ipa: RAM + (4 << 20), size: 16 }), 4096), Err(PlaceError::InitrdOverlapsImage));
        // Initrd reaching the end of RAM: no room for the DTB.
        assert_eq!(place(RAM, 256 << 20, Blob { ipa: RAM + (2 << 20), size: 16 }, &h, Some(Blob { ipa: RAM + (128 << 20), size: 127 << 20 }), 2 << 20), Err(PlaceError::NoRoomForDtb));
    }

    #[test]
    fn stored_payloads_go_where_qemu_loads_them() {
        let (k, i) = stored_load(RAM, 256 << 20, &image_header(0, 40 << 20), 30 << 20, Some(4096));
        assert_eq!(k, Blob { ipa: RAM + (2 << 20), size: 30 << 20 });
        assert_eq!(i, Some(Blob { ipa: RAM + (128 << 20), size: 4096 }));
        let p = place(RAM, 256 << 20, k, &image_header(0, 40 << 20), i, 64 << 10).unwrap();
        assert_eq!(p.entry, RAM + (2 << 20));
        // A flat binary at 0x80000; a big Image pushes the initrd above its end.
        let (k, _) = stored_load(RAM, 256 << 20, &[0u8; 16], 4096, None);
        assert_eq!(k.ipa, RAM + FLAT_LOAD_OFFSET);
        let (_, i) = stored_load(RAM, 256 << 20, &image_header(0x80000, 200 << 20), 100 << 20, Some(1));
        assert_eq!(i.unwrap().ipa, RAM + 0x80000 + (200 << 20));
        // Too big for RAM: `place` refuses it.
        let (k, i) = stored_load(RAM, 64 << 20, &image_header(0, 100 << 20), 100 << 20, None);
        assert_eq!(place(RAM, 64 << 20, k, &image_header(0, 100 << 20), i, 64 << 10).unwrap_err(), PlaceError::ImageTooBig);
    }
}
