//! Signed SP packages (issue H): the signer side of spmc's
//! `partition/signature.rs`, written again here from the format in
//! docs/spmc.md ("Signed SP packages") so each side checks the other.
//!
//! - setup makes a test key, `~/.cache/quadrant/keys/sp-test.key` (never in
//!   the repository); `cargo xtask build` signs our SPs with it and puts its
//!   public key into the SPMC manifest it builds;
//! - `cargo xtask sign-sp` signs anyone's packages (sptool's `.pkg` files).
//!
//! A key file is the 32-byte ed25519 seed as 64 hex digits on one line.

use crate::util::{self, Result};
use ed25519_compact::{KeyPair, Seed};
use std::path::{Path, PathBuf};

pub const USAGE: &str = "  sign-sp [--key FILE] PKG...
                   sign SP packages (sptool's .pkg) in place with an ed25519 key
                   (default: the test key setup made, ~/.cache/quadrant/keys/sp-test.key)
  sign-sp --new-key FILE
                   make a key; prints the SPMC manifest line that trusts it
  sign-sp [--key FILE] --manifest-line
                   print `quadrant,trusted-keys = [..];` for the key";

const SPKG_MAGIC: u32 = 0x474b_5053;
/// The signature block (docs/spmc.md): offset in the package, size, fields.
pub const BLOCK_OFFSET: usize = 0x800;
pub const BLOCK_SIZE: usize = 128;
const MAGIC: u32 = 0x4749_5351; // "QSIG"
const VERSION: u32 = 1;
const ALG_ED25519: u32 = 1;

/// The test key's file.
pub fn test_key_file() -> PathBuf {
    util::cache_dir().join("keys").join("sp-test.key")
}

/// setup: the test key, made once from the kernel's random numbers.
pub fn ensure_test_key() -> Result<PathBuf> {
    let f = test_key_file();
    if !f.exists() {
        util::step("SP signing test key (~/.cache/quadrant/keys/sp-test.key)", || new_key(&f))?;
    }
    Ok(f)
}

/// Writes a new random key to `file` (which must not exist).
pub fn new_key(file: &Path) -> Result {
    if file.exists() {
        return Err(format!("{}: exists; not overwriting a key", file.display()));
    }
    let mut seed = [0u8; 32];
    let mut rng = std::fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
    std::io::Read::read_exact(&mut rng, &mut seed).map_err(|e| format!("/dev/urandom: {e}"))?;
    if let Some(d) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        util::mkdirs(d)?;
    }
    // A secret: created readable by its owner only, never over another file.
    let mut f = std::fs::OpenOptions::new();
    std::os::unix::fs::OpenOptionsExt::mode(f.write(true).create_new(true), 0o600);
    let mut out = f.open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    std::io::Write::write_all(&mut out, format!("{}\n", hex(&seed)).as_bytes()).map_err(|e| format!("{}: {e}", file.display()))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn load_key(file: &Path) -> Result<KeyPair> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let t = text.trim();
    if t.len() != 64 || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{}: not a key file (64 hex digits: an ed25519 seed)", file.display()));
    }
    let mut seed = [0u8; 32];
    for (i, s) in seed.iter_mut().enumerate() {
        *s = u8::from_str_radix(&t[i * 2..i * 2 + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(KeyPair::from_seed(Seed::new(seed)))
}

/// The SPMC manifest property trusting `keys` (Hafnium-format DTS).
pub fn manifest_line(keys: &[[u8; 32]]) -> String {
    let bytes: Vec<String> = keys.iter().flatten().map(|b| format!("{b:02x}")).collect();
    format!("quadrant,trusted-keys = [{}];", bytes.join(" "))
}

/// `template` (an SPMC manifest .dts) with `line` as the first property of
/// its `hypervisor` node: the keys trusted for every SP.
pub fn manifest_with_keys(template: &str, line: &str) -> Result<String> {
    let start = template.find("\thypervisor {").ok_or("SPMC manifest: no `hypervisor {` node")?;
    let at = start + template[start..].find('\n').ok_or("SPMC manifest: unterminated hypervisor node")? + 1;
    Ok(format!("{}\t\t/* Written by cargo xtask build: SP packages must be signed by this key. */\n\t\t{line}\n{}", &template[..at], &template[at..]))
}

fn word(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i * 4..i * 4 + 4)?.try_into().ok()?))
}

/// Signs the SP package `pkg` (an SPKG v2 file) with `key`: writes the
/// signature block into its header page.  Deterministic (RFC 8032): signing
/// a signed package again with the same key changes nothing.
pub fn sign_package(pkg: &mut [u8], key: &KeyPair) -> Result {
    if word(pkg, 0) != Some(SPKG_MAGIC) {
        return Err("not an SP package (no SPKG magic)".into());
    }
    let version = word(pkg, 1).unwrap_or(0);
    if !(1..=2).contains(&version) {
        return Err(format!("SP package version {version}: only 1 and 2 are known"));
    }
    let (pm_offset, img_offset, img_size) = (word(pkg, 2).unwrap_or(0) as usize, word(pkg, 4).unwrap_or(0) as usize, word(pkg, 5).unwrap_or(0) as usize);
    if pm_offset < BLOCK_OFFSET + BLOCK_SIZE {
        return Err(format!("manifest offset {pm_offset:#x}: no room for the signature block at {BLOCK_OFFSET:#x}"));
    }
    let end = img_offset.checked_add(img_size).filter(|&e| e <= pkg.len() && img_offset >= pm_offset).ok_or("image outside the package")?;
    let mut msg = pkg[..end].to_vec();
    msg[BLOCK_OFFSET..BLOCK_OFFSET + BLOCK_SIZE].fill(0);
    let sig = key.sk.sign(&msg, None);
    let block = &mut pkg[BLOCK_OFFSET..BLOCK_OFFSET + BLOCK_SIZE];
    if block.iter().any(|&b| b != 0) && word(block, 0) != Some(MAGIC) {
        return Err(format!("bytes {BLOCK_OFFSET:#x}..{:#x} are in use: not sptool's zero padding", BLOCK_OFFSET + BLOCK_SIZE));
    }
    block.fill(0);
    for (i, w) in [MAGIC, VERSION, ALG_ED25519, BLOCK_SIZE as u32].iter().enumerate() {
        block[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    block[16..48].copy_from_slice(key.pk.as_ref());
    block[48..112].copy_from_slice(sig.as_ref());
    Ok(())
}

/// Signs the package file `file` in place; rewrites it only if it changed.
/// Returns whether it did.
pub fn sign_file(file: &Path, key: &KeyPair) -> Result<bool> {
    let old = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut new = old.clone();
    sign_package(&mut new, key).map_err(|e| format!("{}: {e}", file.display()))?;
    if new == old {
        return Ok(false);
    }
    util::write_atomic(file, &new)?;
    Ok(true)
}

/// `cargo xtask sign-sp ...`
pub fn main(args: &[String]) -> Result<bool> {
    let mut key_file: Option<PathBuf> = None;
    let mut pkgs = Vec::new();
    let mut print_line = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--key" => key_file = Some(it.next().ok_or("--key needs a file")?.into()),
            "--new-key" => {
                let f = PathBuf::from(it.next().ok_or("--new-key needs a file")?);
                if it.next().is_some() {
                    return Err("--new-key takes no other argument".into());
                }
                new_key(&f)?;
                let k = load_key(&f)?;
                println!("new key: {} (keep it secret)\nSPMC manifest, in the hypervisor node (every SP) or in one SP's node:\n    {}", f.display(), manifest_line(&[*k.pk]));
                return Ok(true);
            }
            "--manifest-line" => print_line = true,
            s if s.starts_with('-') => return Err(format!("unknown option {s}\n{USAGE}")),
            _ => pkgs.push(PathBuf::from(a)),
        }
    }
    let key_file = match key_file {
        Some(f) => f,
        None if test_key_file().exists() => test_key_file(),
        None => return Err(format!("no --key, and no test key yet ({}): run `cargo xtask setup`", test_key_file().display())),
    };
    let key = load_key(&key_file)?;
    if print_line {
        println!("{}", manifest_line(&[*key.pk]));
        return Ok(true);
    }
    if pkgs.is_empty() {
        return Err(format!("no package to sign\n{USAGE}"));
    }
    for p in &pkgs {
        let changed = sign_file(p, &key)?;
        println!("{}: {} (ed25519 key {}..)", p.display(), if changed { "signed" } else { "already signed, unchanged" }, &hex(key.pk.as_ref())[..8]);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package() -> Vec<u8> {
        let mut v = vec![0u8; 0x5000];
        for (i, w) in [SPKG_MAGIC, 2, 0x1000, 0x10, 0x4000, 0x1000].iter().enumerate() {
            v[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        v[0x4000..].fill(0xaa);
        v
    }

    fn key(n: u8) -> KeyPair {
        KeyPair::from_seed(Seed::new([n; 32]))
    }

    #[test]
    fn signature_verifies_over_the_package_with_the_block_zeroed() {
        let mut p = package();
        sign_package(&mut p, &key(1)).unwrap();
        assert_eq!(word(&p[BLOCK_OFFSET..], 0), Some(MAGIC));
        assert_eq!(&p[BLOCK_OFFSET + 16..BLOCK_OFFSET + 48], key(1).pk.as_ref());
        let sig = ed25519_compact::Signature::from_slice(&p[BLOCK_OFFSET + 48..BLOCK_OFFSET + 112]).unwrap();
        let mut msg = p.clone();
        msg[BLOCK_OFFSET..BLOCK_OFFSET + BLOCK_SIZE].fill(0);
        key(1).pk.verify(&msg, &sig).unwrap();
        // Idempotent; another key replaces the block.
        let once = p.clone();
        sign_package(&mut p, &key(1)).unwrap();
        assert_eq!(p, once);
        sign_package(&mut p, &key(2)).unwrap();
        assert_eq!(&p[BLOCK_OFFSET + 16..BLOCK_OFFSET + 48], key(2).pk.as_ref());
    }

    #[test]
    fn refuses_what_it_cannot_sign() {
        let mut p = package();
        p[0] = 0;
        assert!(sign_package(&mut p, &key(1)).is_err());
        let mut p = package();
        p[8..12].copy_from_slice(&0x800u32.to_le_bytes());
        assert!(sign_package(&mut p, &key(1)).is_err(), "manifest over the block");
        let mut p = package();
        p[20..24].copy_from_slice(&0x2000u32.to_le_bytes());
        assert!(sign_package(&mut p, &key(1)).is_err(), "image past the end");
        let mut p = package();
        p[BLOCK_OFFSET + 5] = 1;
        assert!(sign_package(&mut p, &key(1)).is_err(), "padding in use");
        assert!(sign_package(&mut [0u8; 10], &key(1)).is_err());
    }

    #[test]
    fn manifest_gets_the_key_line() {
        let t = "/ {\n\thypervisor {\n\t\tcompatible = \"hafnium,hafnium\";\n\t};\n};\n";
        let line = manifest_line(&[[0xab; 32]]);
        assert!(line.starts_with("quadrant,trusted-keys = [ab ab ") && line.ends_with(" ab];"));
        let m = manifest_with_keys(t, &line).unwrap();
        assert!(m.contains(&format!("\thypervisor {{\n\t\t/* Written by cargo xtask build: SP packages must be signed by this key. */\n\t\t{line}\n\t\tcompatible")));
    }

    #[test]
    fn sign_sp_command() {
        let dir = std::env::temp_dir().join(format!("quadrant-sign-sp-{}", std::process::id()));
        util::mkdirs(&dir).unwrap();
        let (k, pkg) = (dir.join("k.key").display().to_string(), dir.join("x.pkg"));
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(main(&args(&["--new-key", &k])), Ok(true));
        assert!(main(&args(&["--new-key", &k])).is_err(), "an existing key is kept");
        std::fs::write(&pkg, package()).unwrap();
        let p = pkg.display().to_string();
        assert_eq!(main(&args(&["--key", &k, &p])), Ok(true));
        let signed = std::fs::read(&pkg).unwrap();
        assert_eq!(&signed[BLOCK_OFFSET + 16..BLOCK_OFFSET + 48], load_key(Path::new(&k)).unwrap().pk.as_ref());
        assert_eq!(main(&args(&["--key", &k, &p])), Ok(true), "signing again is a no-op");
        assert_eq!(std::fs::read(&pkg).unwrap(), signed);
        assert_eq!(main(&args(&["--key", &k, "--manifest-line"])), Ok(true));
        assert!(main(&args(&["--key", &k])).is_err(), "no package");
        assert!(main(&args(&["--key", &k, "--bogus", &p])).is_err());
        assert!(main(&args(&["--key"])).is_err());
        std::fs::write(&pkg, b"not a package").unwrap();
        assert!(main(&args(&["--key", &k, &p])).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn key_files() {
        let dir = std::env::temp_dir().join(format!("quadrant-sign-test-{}", std::process::id()));
        let f = dir.join("k.key");
        new_key(&f).unwrap();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&f).unwrap().permissions()) & 0o777, 0o600);
        assert!(new_key(&f).is_err(), "never overwrites");
        let k = load_key(&f).unwrap();
        assert_eq!(load_key(&f).unwrap().pk, k.pk);
        std::fs::write(&f, "xyz\n").unwrap();
        assert!(load_key(&f).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
