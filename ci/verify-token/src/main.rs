//! `cargo xtask verify-token FILE [...]` (this binary, which xtask runs): checks a CCA attestation token on
//! the host, twice over: with Veraison's `ccatoken` crate and with our own
//! `cca-token` + `p384` code.
//!
//! What is checked: the collection (tag 399, keys 44234 and 44241); the
//! Realm token's claims (types and sizes) and its ES384 signature with the
//! RAK it carries (ccatoken, then p384); the platform token's signature when
//! `--platform-key` gives its key; the binding (platform challenge = hash of
//! the RAK public key, with the Realm's claim 44240 algorithm); and the
//! claims `--challenge` / `--expect-rim` name.
//!
//! Where ccatoken 0.1 falls short (it follows an early draft of the token):
//! it accepts only the platform profile "http://arm.com/CCA-SSD/1.0.0", so
//! it refuses the whole collection of a token whose platform token uses
//! "tag:arm.com,2023:cca_platform#1.0.0", as TF-A qemu's sample does; and
//! it wants the RAK claim (44237) as a 97-byte SEC1 point, not the COSE_Key
//! rmm puts there, so it refuses our Realm claims too.  What it can still
//! do is check the Realm token's COSE_Sign1 signature (cose-rust + openssl)
//! once given the RAK, which we take from the claim.  It cannot verify the
//! platform signature without the platform key (CPAK), and TF-A does not ship
//! the key of qemu's sample platform token.  `--expect-rem I:HEX` (I = 1..4,
//! the RSI_MEASUREMENT_EXTEND index; repeatable) checks a REM claim.
//! The binding does hold on qemu:
//! the sample's challenge is SHA-256 of qemu's sample RAK as a COSE_Key.

use base64::Engine as _;

const USAGE: &str = "FILE [--challenge HEX] [--expect-rim HEX] [--expect-rem I:HEX]... [--platform-key HEX] [--expect-platform-token FILE] [--flip-every-byte]";

#[derive(Default, Debug)]
pub struct Options {
    /// The challenge the Realm passed (zero-padded to 64 bytes).
    pub challenge: Option<Vec<u8>>,
    pub expect_rim: Option<Vec<u8>>,
    /// (RSI index 1..=4, value) of REMs to check.
    pub expect_rems: Vec<(usize, Vec<u8>)>,
    /// SEC1 public key of the platform token's signer.
    pub platform_key: Option<Vec<u8>>,
    /// The platform token the collection must carry, byte for byte: a
    /// reference value for a platform whose signing key nobody has (TF-A
    /// qemu's fixed sample, docs/rmm.md).
    pub platform_token: Option<Vec<u8>>,
    /// After accepting the token, flip each of its bytes in turn: every
    /// such token must be refused.
    pub flip_every_byte: bool,
}

pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits in {s:?}"));
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("not hex: {s:?}"))).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn parse(args: &[String]) -> Result<(String, Options), String> {
    let mut file = None;
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value")).and_then(|v| parse_hex(v));
        match a.as_str() {
            "--challenge" => o.challenge = Some(value("--challenge")?),
            "--expect-rim" => o.expect_rim = Some(value("--expect-rim")?),
            "--platform-key" => o.platform_key = Some(value("--platform-key")?),
            "--expect-platform-token" => {
                let f = it.next().ok_or("--expect-platform-token needs a FILE")?;
                o.platform_token = Some(std::fs::read(f).map_err(|e| format!("{f}: {e}"))?);
            }
            "--flip-every-byte" => o.flip_every_byte = true,
            "--expect-rem" => {
                let v = it.next().ok_or("--expect-rem needs I:HEX")?;
                let (i, h) = v.split_once(':').ok_or(format!("--expect-rem {v:?}: not I:HEX"))?;
                let i: usize = i.parse().ok().filter(|i| (1..=4).contains(i)).ok_or(format!("--expect-rem {v:?}: the index is 1..4"))?;
                o.expect_rems.push((i, parse_hex(h)?));
            }
            f if file.is_none() && !f.starts_with("--") => file = Some(f.to_string()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if o.challenge.as_ref().is_some_and(|c| c.len() > 64) {
        return Err("--challenge is at most 64 bytes".into());
    }
    Ok((file.ok_or("no token file given")?, o))
}

/// The token's bytes: binary CBOR as is, anything else as base64 text
/// (whitespace ignored).
pub fn token_bytes(raw: &[u8]) -> Result<Vec<u8>, String> {
    if raw.first() == Some(&0xd9) {
        return Ok(raw.to_vec());
    }
    let text: String = String::from_utf8_lossy(raw).chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("neither CBOR (tag 399) nor base64: {e}"))
}

/// Every check; the notes say what was verified and what could not be.
pub fn verify(token: &[u8], o: &Options) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let c = cca_token::decode_collection(token).map_err(|e| format!("collection: {e:?}"))?;
    if let Some(want) = &o.platform_token {
        if &c.platform_token != want {
            return Err("the platform token is not the expected one (--expect-platform-token)".into());
        }
        notes.push("platform token: byte for byte the expected one (--expect-platform-token)".into());
    }

    // Our own checks first: ccatoken's COSE layer (cose-rust 0.1.9) panics
    // on some malformed tokens (a slice past a short signature), so it only
    // sees tokens that passed these.
    let claims = cca_token::verify_realm_token(&c.realm_token).map_err(|e| format!("realm token: {e:?}"))?;
    notes.push("p384: realm token ES384 signature verified with the RAK (claim 44237)".into());
    let size = match claims.hash_algo_id.as_str() {
        "sha-256" => 32,
        "sha-512" => 64,
        other => return Err(format!("hash algorithm id {other:?} is not one a Realm can have")),
    };
    if claims.rim.len() != size || claims.rems.iter().any(|r| r.len() != size) {
        return Err(format!("measurements are not {size} bytes as {} says", claims.hash_algo_id));
    }
    match &o.platform_key {
        Some(k) => {
            cca_token::verify_es384(&c.platform_token, k).map_err(|e| format!("platform token signature: {e:?}"))?;
            notes.push("p384: platform token ES384 signature verified with --platform-key".into());
        }
        None => notes.push("platform token signature NOT verified: no --platform-key (TF-A does not ship the key of qemu's sample)".into()),
    }
    let platform_challenge = cca_token::platform_challenge(&c.platform_token).map_err(|e| format!("platform token: {e:?}"))?;
    let rak_hash = cca_token::hash_by_name(&claims.public_key_hash_algo_id, &claims.public_key).ok_or(format!("unknown RAK hash algorithm {:?}", claims.public_key_hash_algo_id))?;
    if platform_challenge == rak_hash {
        notes.push(format!("binding: platform challenge = {}(RAK public key)", claims.public_key_hash_algo_id));
    } else {
        return Err(format!("binding: platform challenge {} != {}(RAK public key) {}", hex(&platform_challenge), claims.public_key_hash_algo_id, hex(&rak_hash)));
    }
    if let Some(ch) = &o.challenge {
        let mut want = ch.clone();
        want.resize(64, 0);
        if claims.challenge != want {
            return Err(format!("challenge {} != expected {}", hex(&claims.challenge), hex(&want)));
        }
        notes.push("claims: challenge as expected".into());
    }
    if let Some(rim) = &o.expect_rim {
        if &claims.rim != rim {
            return Err(format!("RIM {} != expected {}", hex(&claims.rim), hex(rim)));
        }
        notes.push("claims: RIM as expected".into());
    }
    for (i, want) in &o.expect_rems {
        let got = &claims.rems[i - 1];
        if got != want {
            return Err(format!("REM {i} {} != expected {}", hex(got), hex(want)));
        }
        notes.push(format!("claims: REM {i} as expected"));
    }
    // Veraison ccatoken, as a second opinion.
    notes.extend(ccatoken_check(token, &c.realm_token, &claims.public_key_sec1)?);
    notes.push(format!("claims: RIM {} ({}), personalization value {}", hex(&claims.rim), claims.hash_algo_id, hex(&claims.personalization_value)));
    for (i, r) in claims.rems.iter().enumerate() {
        notes.push(format!("claims: REM {} {}", i + 1, hex(r)));
    }
    Ok(notes)
}

/// The CBOR head at `pos`: (major type, argument, head length).  Enough
/// for the byte and text strings, arrays, maps and tags of a token.
fn cbor_head(b: &[u8], pos: usize) -> Option<(u8, u64, usize)> {
    let first = *b.get(pos)?;
    let (major, info) = (first >> 5, first & 0x1f);
    let (arg, len) = match info {
        0..=23 => (info as u64, 1),
        24..=27 => {
            let n = 1usize << (info - 24);
            let bytes = b.get(pos + 1..pos + 1 + n)?;
            (bytes.iter().fold(0u64, |a, x| a << 8 | *x as u64), 1 + n)
        }
        _ => return None,
    };
    Some((major, arg, len))
}

/// Where the parts of a tagged COSE_Sign1 at `start` lie in `b`:
/// (name, start, end) of its head, protected header, unprotected header,
/// payload and signature.  None if it is not laid out as rmm and TF-A make
/// it (tag 18, a 4-array, an empty unprotected map).
fn cose_regions(b: &[u8], start: usize, who: &str) -> Option<Vec<(String, usize, usize)>> {
    let (m, tag, t) = cbor_head(b, start)?;
    let (m2, n, a) = cbor_head(b, start + t)?;
    if (m, tag, m2, n) != (6, 18, 4, 4) {
        return None;
    }
    let mut at = start + t + a;
    let mut out = vec![(format!("{who} COSE head"), start, at)];
    for part in ["protected header", "unprotected header", "payload", "signature"] {
        let (major, arg, h) = cbor_head(b, at)?;
        let len = match major {
            2 => arg as usize,
            5 if arg == 0 => 0,
            _ => return None,
        };
        out.push((format!("{who} {part}"), at, at + h + len));
        at += h + len;
    }
    Some(out)
}

/// Flips (inverts) each byte of an accepted `token` in turn and checks that
/// `verify` refuses every result; says how many bytes of each part (the
/// collection's own CBOR, then each token's COSE head, protected header,
/// payload, signature) were flipped.  A panic in a verifier aborts the
/// process (panic = "abort"), which `cargo xtask` reports as a failure.
pub fn flip_every_byte(token: &[u8], o: &Options) -> Result<Vec<String>, String> {
    let c = cca_token::decode_collection(token).map_err(|e| format!("collection: {e:?}"))?;
    let find = |t: &[u8]| token.windows(t.len()).position(|w| w == t);
    let p = find(&c.platform_token).ok_or("platform token not found in the collection")?;
    let r = find(&c.realm_token).ok_or("realm token not found in the collection")?;
    let mut regions = cose_regions(token, p, "platform").ok_or("platform token: not a COSE_Sign1 laid out as expected")?;
    regions.extend(cose_regions(token, r, "realm").ok_or("realm token: not a COSE_Sign1 laid out as expected")?);
    let mut counts: Vec<(String, usize)> = regions.iter().map(|(n, ..)| (n.clone(), 0)).collect();
    counts.push(("collection CBOR".into(), 0));
    let mut accepted = Vec::new();
    for i in 0..token.len() {
        let mut bad = token.to_vec();
        bad[i] ^= 0xff;
        if verify(&bad, o).is_ok() {
            accepted.push(i);
        }
        let k = regions.iter().position(|(_, s, e)| (*s..*e).contains(&i)).unwrap_or(counts.len() - 1);
        counts[k].1 += 1;
    }
    if !accepted.is_empty() {
        return Err(format!("{} of {} flipped bytes still accepted, at {:?}", accepted.len(), token.len(), &accepted[..accepted.len().min(16)]));
    }
    let parts: Vec<String> = counts.iter().map(|(n, k)| format!("{n} {k}")).collect();
    Ok(vec![format!("flip-every-byte: all {} single-byte flips refused ({})", token.len(), parts.join(", "))])
}

/// ccatoken's view: the whole collection if it accepts it, else the Realm
/// token alone: its claims if it can read them, and its signature with the
/// RAK `rak_sec1` (from our reading of the claims when it cannot).
fn ccatoken_check(token: &[u8], realm_token: &[u8], rak_sec1: &[u8]) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    match ccatoken::token::Evidence::decode(&token.to_vec()) {
        Ok(mut e) => {
            e.verify_realm_token().map_err(|e| format!("ccatoken: realm token: {e:?}"))?;
            notes.push("ccatoken: collection and both claim sets decoded; realm token signature verified".into());
        }
        Err(err) => {
            notes.push(format!("ccatoken: refuses the collection ({err:?}); checking the realm token alone"));
            let mut e = ccatoken::token::Evidence::new();
            e.realm.bytes = realm_token.to_vec();
            e.realm.init_decoder(None).map_err(|e| format!("ccatoken: realm token COSE: {e:?}"))?;
            match ccatoken::token::Realm::decode(&e.realm.payload) {
                Ok(claims) => {
                    e.realm_claims = claims;
                    notes.push("ccatoken: realm claims decoded".into());
                }
                Err(err) => {
                    notes.push(format!("ccatoken: refuses the realm claims ({err:?}); giving it the RAK from claim 44237"));
                    e.realm_claims.rak = rak_sec1.try_into().map_err(|_| "RAK is not a 97-byte SEC1 point".to_string())?;
                }
            }
            e.verify_realm_token().map_err(|e| format!("ccatoken: realm token: {e:?}"))?;
            notes.push("ccatoken: realm token ES384 signature verified".into());
        }
    }
    Ok(notes)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("verify-token: {e}\nusage: verify-token {USAGE}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Prints what was verified; false when the token fails.
pub fn run(args: &[String]) -> Result<bool, String> {
    let (file, o) = parse(args)?;
    let raw = std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?;
    let token = token_bytes(&raw)?;
    match verify(&token, &o).and_then(|mut n| {
        if o.flip_every_byte {
            n.extend(flip_every_byte(&token, &o)?);
        }
        Ok(n)
    }) {
        Ok(notes) => {
            for n in notes {
                println!("verify-token: {n}");
            }
            println!("verify-token: ok");
            Ok(true)
        }
        Err(e) => {
            println!("verify-token: FAILED: {e}");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coset::{CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
    use p384::ecdsa::signature::Signer;

    const QEMU_SAMPLE_RAK: [u8; 48] = [
        0x20, 0x11, 0xC7, 0xF0, 0x3C, 0xEE, 0x43, 0x25, 0x17, 0x6E, 0x52, 0x4F, 0x03, 0x3C, 0x0C, 0xE1, 0xE2, 0x1A, 0x76, 0xE6, 0xC1, 0xA4, 0xF0, 0xB8, 0x39, 0xAA, 0x1D, 0xF6, 0x1E, 0x0E, 0x8A, 0x5C, 0x8A, 0x05,
        0x74, 0x0F, 0x9B, 0x69, 0xEF, 0xA7, 0xEB, 0x1A, 0x41, 0x85, 0xBD, 0x11, 0x7F, 0x68,
    ];

    /// A platform token signed by a test key, challenge = `challenge`; its public key.
    fn platform_token(challenge: &[u8]) -> (Vec<u8>, Vec<u8>) {
        use ciborium::value::Value;
        let key = p384::ecdsa::SigningKey::from_slice(&[0x42; 48]).unwrap();
        let map = Value::Map(vec![(Value::Integer(265.into()), Value::Text("tag:arm.com,2023:cca_platform#1.0.0".into())), (Value::Integer(10.into()), Value::Bytes(challenge.to_vec()))]);
        let mut payload = Vec::new();
        ciborium::ser::into_writer(&map, &mut payload).unwrap();
        let t = CoseSign1Builder::new()
            .protected(HeaderBuilder::new().algorithm(iana::Algorithm::ES384).build())
            .payload(payload)
            .create_signature(&[], |tbs| {
                let s: p384::ecdsa::Signature = key.sign(tbs);
                s.to_bytes().to_vec()
            })
            .build()
            .to_tagged_vec()
            .unwrap();
        (t, key.verifying_key().to_encoded_point(false).as_bytes().to_vec())
    }

    /// A token as rmm makes it (cca-token, the same code), with its platform key.
    fn token() -> (Vec<u8>, Vec<u8>, [u8; 64], Vec<u8>) {
        let rak = cca_token::RealmAttestationKey::from_el3(&QEMU_SAMPLE_RAK).unwrap();
        let ch = [0x33u8; 64];
        let rpv = [0u8; 64];
        let m = [[7u8; 32], [0; 32], [0; 32], [9; 32], [0; 32]];
        let claims = cca_token::RealmClaims { challenge: &ch, personalization_value: &rpv, hash_algo: cca_token::HashAlgo::Sha256, rim: &m[0], rems: [&m[1], &m[2], &m[3], &m[4]] };
        let realm = cca_token::realm_token(&claims, &rak).unwrap();
        let (plat, pkey) = platform_token(&rak.public_key_hash());
        (cca_token::collection(&plat, &realm).unwrap(), pkey, ch, m[0].to_vec())
    }

    #[test]
    fn valid_token_is_accepted_and_every_flipped_byte_rejected() {
        let (t, pkey, ch, rim) = token();
        let o = Options { challenge: Some(ch.to_vec()), expect_rim: Some(rim), expect_rems: vec![(1, vec![0; 32]), (3, vec![9; 32])], platform_key: Some(pkey), ..Default::default() };
        let notes = verify(&t, &o).unwrap();
        assert!(notes.iter().any(|n| n.starts_with("binding: platform challenge")), "{notes:?}");
        assert!(notes.iter().any(|n| n == "ccatoken: realm token ES384 signature verified"), "{notes:?}");
        for i in 0..t.len() {
            let mut bad = t.clone();
            bad[i] ^= 0x01;
            assert!(verify(&bad, &o).is_err(), "byte {i} of {} flipped, still accepted", t.len());
        }
    }

    #[test]
    fn the_platform_token_pinned_instead_of_its_key() {
        // As on qemu: no platform key, the platform token known byte for byte.
        let (t, _, ch, rim) = token();
        let c = cca_token::decode_collection(&t).unwrap();
        let o = Options { challenge: Some(ch.to_vec()), expect_rim: Some(rim), platform_token: Some(c.platform_token.clone()), ..Default::default() };
        assert!(verify(&t, &o).unwrap().iter().any(|n| n.starts_with("platform token: byte for byte")));
        let mut other = c.platform_token.clone();
        let n = other.len();
        other[n - 1] ^= 1;
        assert!(verify(&t, &Options { platform_token: Some(other), ..o }).unwrap_err().starts_with("the platform token is not the expected one"));
    }

    #[test]
    fn every_flipped_byte_rejected_with_the_platform_token_pinned_instead_of_its_key() {
        // As on qemu: no platform key, the platform token known byte for byte.
        let (t, _, ch, rim) = token();
        let c = cca_token::decode_collection(&t).unwrap();
        let o = Options { challenge: Some(ch.to_vec()), expect_rim: Some(rim), platform_token: Some(c.platform_token.clone()), ..Default::default() };
        assert!(verify(&t, &o).unwrap().iter().any(|n| n.starts_with("platform token: byte for byte")));
        let notes = flip_every_byte(&t, &o).unwrap();
        assert!(notes[0].starts_with(&format!("flip-every-byte: all {} single-byte flips refused", t.len())), "{notes:?}");
        for part in ["platform protected header 5", "platform payload", "platform signature 98", "realm protected header 5", "realm signature 98", "collection CBOR"] {
            assert!(notes[0].contains(part), "{part}: {notes:?}");
        }
        // Without the pin (and without the key) a flip in the platform
        // signature goes unnoticed: the check says so.
        let loose = Options { platform_token: None, ..o };
        assert!(flip_every_byte(&t, &loose).unwrap_err().contains("still accepted"));
    }

    #[test]
    fn ccatoken_alone_rejects_a_bad_realm_signature() {
        let (t, ..) = token();
        let c = cca_token::decode_collection(&t).unwrap();
        let rak = cca_token::RealmAttestationKey::from_el3(&QEMU_SAMPLE_RAK).unwrap();
        let sec1 = rak.public_key_sec1();
        assert!(ccatoken_check(&t, &c.realm_token, sec1).is_ok());
        // Another key: ccatoken's signature check fails.
        let other = cca_token::RealmAttestationKey::from_el3(&[7; 48]).unwrap();
        assert!(ccatoken_check(&t, &c.realm_token, other.public_key_sec1()).is_err());
        for i in [1, 20, 48] {
            let mut realm = c.realm_token.clone();
            let n = realm.len();
            realm[n - i] ^= 0x80; // inside the 96-byte signature
            assert!(ccatoken_check(&cca_token::collection(&c.platform_token, &realm).unwrap(), &realm, sec1).is_err());
        }
    }

    #[test]
    fn wrong_expectations_are_rejected() {
        let (t, pkey, ch, rim) = token();
        let base = || Options { challenge: Some(ch.to_vec()), expect_rim: Some(rim.clone()), expect_rems: vec![(3, vec![9; 32])], platform_key: Some(pkey.clone()), ..Default::default() };
        assert!(verify(&t, &base()).is_ok());
        assert!(verify(&t, &Options { expect_rems: vec![(3, vec![0; 32])], ..base() }).unwrap_err().starts_with("REM 3"));
        assert!(verify(&t, &Options { expect_rems: vec![(1, vec![9; 32])], ..base() }).unwrap_err().starts_with("REM 1"));
        assert!(verify(&t, &Options { challenge: Some(vec![0x34; 64]), ..base() }).is_err());
        assert!(verify(&t, &Options { expect_rim: Some(vec![0; 32]), ..base() }).is_err());
        assert!(verify(&t, &Options { platform_key: Some(p384::ecdsa::SigningKey::from_slice(&[0x43; 48]).unwrap().verifying_key().to_encoded_point(false).as_bytes().to_vec()), ..base() }).is_err());
        // A platform token not bound to the RAK is refused.
        let c = cca_token::decode_collection(&t).unwrap();
        let (plat, pkey2) = platform_token(&[0u8; 32]);
        let unbound = cca_token::collection(&plat, &c.realm_token).unwrap();
        let o = Options { platform_key: Some(pkey2), ..Default::default() };
        assert!(verify(&unbound, &o).unwrap_err().starts_with("binding"));
    }

    #[test]
    fn expect_rem_arguments() {
        let a = |v: &[&str]| parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let (_, o) = a(&["t", "--expect-rem", "1:00ff", "--expect-rem", "4:01"]).unwrap();
        assert_eq!(o.expect_rems, vec![(1, vec![0, 0xff]), (4, vec![1])]);
        for bad in ["0:00", "5:00", "1", "x:00", "1:0"] {
            assert!(a(&["t", "--expect-rem", bad]).is_err(), "{bad}");
        }
        assert!(a(&["t", "--expect-rem"]).is_err());
    }

    #[test]
    fn base64_and_binary_inputs() {
        let (t, ..) = token();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&t);
        let wrapped: String = b64.as_bytes().chunks(64).map(|l| format!("{}\n", std::str::from_utf8(l).unwrap())).collect();
        assert_eq!(token_bytes(wrapped.as_bytes()).unwrap(), t);
        assert_eq!(token_bytes(&t).unwrap(), t);
        assert!(token_bytes(b"not base64 !").is_err());
    }
}
