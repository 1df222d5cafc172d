//! Partition manifest (FF-A manifest binding v1.0, TF-A
//! `docs/components/ffa-manifest-binding.rst`, read the way Hafnium reads it),
//! parsed once into a [`PartitionManifest`].

use crate::manifest::{ManifestError, prop_addr, prop_str, prop_u32};
use crate::name::Name;
use shared::fdt;

/// A partition UUID as the four 32-bit words that FFA_PARTITION_INFO_GET
/// carries in w1..w4 (DEN0077 §13.8) and the manifest's `uuid` cells hold.
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
/// properties of DEN0077 §6.2.1 table 6.2 for bits 0, 1, 2, 9, 10).
pub const MSG_DIRECT_REQ_RECV: u32 = 1 << 0;
pub const MSG_DIRECT_REQ_SEND: u32 = 1 << 1;
pub const MSG_INDIRECT: u32 = 1 << 2;
pub const MSG_DIRECT_REQ2_RECV: u32 = 1 << 9;
pub const MSG_DIRECT_REQ2_SEND: u32 = 1 << 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionManifest {
    pub description: Name,
    pub ffa_version: u32,
    pub uuid: Uuid,
    pub id: u16,
    pub execution_ctx_count: u16,
    pub exception_level: u32,
    /// Physical load address from the manifest, if it has one.
    pub load_address: Option<u64>,
    pub entrypoint_offset: Option<u64>,
    pub boot_order: u16,
    pub messaging_method: u32,
}

impl PartitionManifest {
    pub fn parse(blob: &[u8], max_cpus: usize) -> Result<Self, ManifestError> {
        let dt = fdt::parse(blob).map_err(|_| ManifestError::BadDtb)?;
        let root = dt.find_node("/").ok_or(ManifestError::BadDtb)?;
        match prop_str(&root, "compatible")? {
            Some("arm,ffa-manifest-1.0") => {}
            _ => return Err(ManifestError::NotCompatible),
        }
        let description = Name::new(prop_str(&root, "description")?.unwrap_or("sp"));
        let ffa_version = prop_u32(&root, "ffa-version")?.ok_or(ManifestError::Missing("ffa-version"))?;
        if ffa_version >> 16 != 1 || ffa_version & 0x8000_0000 != 0 {
            return Err(ManifestError::Invalid("ffa-version"));
        }
        // The binding allows a list of UUIDs (v1.2 multi-UUID partitions); we use the first.
        let uuid_prop = root.property("uuid").ok_or(ManifestError::Missing("uuid"))?;
        if uuid_prop.value.is_empty() || uuid_prop.value.len() % 16 != 0 {
            return Err(ManifestError::Invalid("uuid"));
        }
        let mut words = [0u32; 4];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u32::from_be_bytes(uuid_prop.value[i * 4..i * 4 + 4].try_into().map_err(|_| ManifestError::Invalid("uuid"))?);
        }
        let uuid = Uuid(words);
        if uuid.is_nil() {
            return Err(ManifestError::Invalid("uuid"));
        }
        let id = prop_u32(&root, "id")?.ok_or(ManifestError::Missing("id"))?;
        // An SP's id is a secure endpoint id (bit 15, DEN0077 §2.9); 0xffff is the SPMD's.
        if id > 0xffff || id & 0x8000 == 0 || id == 0xffff {
            return Err(ManifestError::Invalid("id"));
        }
        let ctx = prop_u32(&root, "execution-ctx-count")?.ok_or(ManifestError::Missing("execution-ctx-count"))?;
        if ctx == 0 || ctx as usize > max_cpus {
            return Err(ManifestError::Invalid("execution-ctx-count"));
        }
        let exception_level = prop_u32(&root, "exception-level")?.ok_or(ManifestError::Missing("exception-level"))?;
        if exception_level != EL_S_EL1 {
            // S-EL0 partitions need an S-EL1 shim; only S-EL1 SPs are supported.
            return Err(ManifestError::Invalid("exception-level (only S-EL1 = 2 supported)"));
        }
        if prop_u32(&root, "execution-state")?.unwrap_or(0) != 0 {
            return Err(ManifestError::Invalid("execution-state (only AArch64 supported)"));
        }
        if prop_u32(&root, "xlat-granule")?.unwrap_or(0) != 0 {
            return Err(ManifestError::Invalid("xlat-granule (only 4 KiB supported)"));
        }
        let load_address = prop_addr(&root, "load-address")?;
        let entrypoint_offset = prop_addr(&root, "entrypoint-offset")?;
        if entrypoint_offset.is_some_and(|o| o % 4 != 0) {
            return Err(ManifestError::Invalid("entrypoint-offset"));
        }
        let boot_order = prop_u32(&root, "boot-order")?.unwrap_or(0xffff);
        if boot_order > 0xffff {
            return Err(ManifestError::Invalid("boot-order"));
        }
        let messaging_method = prop_u32(&root, "messaging-method")?.ok_or(ManifestError::Missing("messaging-method"))?;
        Ok(Self {
            description,
            ffa_version,
            uuid,
            id: id as u16,
            execution_ctx_count: ctx as u16,
            exception_level,
            load_address,
            entrypoint_offset,
            boot_order: boot_order as u16,
            messaging_method,
        })
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

    #[test]
    fn unsupported_exception_level_is_an_error() {
        let b = include_bytes!("../../tests/data/sp_bad_el.dtb");
        assert!(matches!(PartitionManifest::parse(b, 4), Err(ManifestError::Invalid(_))));
    }

    #[test]
    fn missing_id_is_an_error() {
        let b = include_bytes!("../../tests/data/sp_no_id.dtb");
        assert_eq!(PartitionManifest::parse(b, 4), Err(ManifestError::Missing("id")));
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
