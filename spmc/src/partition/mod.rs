//! Secure partitions as the SPMC sees them before running them: the SP
//! package in memory ([`package`]) and its partition manifest ([`manifest`]),
//! both turned into plain data once at boot, and the package's signature
//! ([`signature`]) when the SPMC manifest lists trusted keys.
pub mod boot_info;
pub mod layout;
pub mod manifest;
pub mod package;
pub mod signature;

pub use manifest::{PartitionManifest, Uuid};
pub use package::SpPackage;
