//! The Arm CCA attestation token as DEN0137 RMM 1.0 describes it ("Attestation
//! token format" in the RMM specification's attestation chapter), built by
//! the rmm and checked by `cargo xtask verify-token`.
//!
//! - The CCA token collection: CBOR tag 399 around a map whose key 44234
//!   holds the CCA platform token and key 44241 the Realm delegated token,
//!   each a byte string holding a COSE_Sign1.
//! - The Realm token: a tagged COSE_Sign1 (tag 18) with protected header
//!   `{alg: ES384}` (ECDSA P-384 with SHA-384), signed with the Realm
//!   Attestation Key (RAK).  ECDSA nonces follow RFC 6979, so the same claims
//!   and key give the same bytes.
//! - The Realm claims (a CBOR map, integer keys): profile (265, text
//!   "tag:arm.com,2023:realm#1.0.0"), challenge (10, 64 bytes),
//!   personalization value (44235, 64 bytes), hash algorithm id (44236, text,
//!   "sha-256" or "sha-512": the Realm's measurement algorithm), RAK public
//!   key (44237, a byte string holding the RAK as a CBOR COSE_Key: EC2,
//!   P-384, `{1: 2, -1: 2, -2: x, -3: y}`, 107 bytes), RIM (44238, a digest),
//!   REMs (44239, an array of 4 digests) and the RAK public key hash
//!   algorithm id (44240, text: the algorithm of the platform token's
//!   challenge, which is that hash of the 44237 bytes).  TF-A qemu's sample
//!   platform token has as challenge exactly SHA-256 of this encoding of
//!   TF-A qemu's sample RAK (a test checks it), so the binding holds there.
//!   (Earlier drafts, and Veraison's ccatoken 0.1, put the 97-byte SEC1
//!   point 0x04 || X || Y in 44237 and had no profile.)
//!
//! The platform token is opaque here: EL3 provides it, already signed.
//! Everything needs `alloc` (coset and ciborium build values on the heap).
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use ciborium::value::{Integer, Value};
use coset::{
    CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana,
};
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The CCA token collection's CBOR tag.
pub const CCA_TOKEN_COLLECTION_TAG: u64 = 399;
/// Collection key of the CCA platform token.
pub const CCA_PLATFORM_TOKEN: i64 = 44234;
/// Collection key of the Realm delegated token.
pub const CCA_REALM_DELEGATED_TOKEN: i64 = 44241;

/// Realm claim keys.
pub const CCA_REALM_PROFILE: i64 = 265;
pub const CCA_REALM_CHALLENGE: i64 = 10;
pub const CCA_REALM_PERSONALIZATION_VALUE: i64 = 44235;
pub const CCA_REALM_HASH_ALGO_ID: i64 = 44236;
pub const CCA_REALM_PUBLIC_KEY: i64 = 44237;
pub const CCA_REALM_INITIAL_MEASUREMENT: i64 = 44238;
pub const CCA_REALM_EXTENSIBLE_MEASUREMENTS: i64 = 44239;
pub const CCA_REALM_PUBLIC_KEY_HASH_ALGO_ID: i64 = 44240;
/// The platform token's challenge claim (as in the Realm token).
pub const CCA_PLATFORM_CHALLENGE: i64 = 10;

/// Size of the RAK as EL3 hands it over: the raw P-384 private scalar, big-endian.
pub const RAK_PRIVATE_KEY_SIZE: usize = 48;
/// The Realm token profile (claim 265).
pub const REALM_PROFILE: &str = "tag:arm.com,2023:realm#1.0.0";
/// Size of the RAK public key as a SEC1 uncompressed point (0x04 || X || Y).
pub const RAK_PUBLIC_KEY_SIZE: usize = 97;
/// Size of the RAK public key claim: the COSE_Key encoding.
pub const RAK_COSE_KEY_SIZE: usize = 107;
/// Challenge and personalization value sizes.
pub const CHALLENGE_SIZE: usize = 64;
/// The number of REMs.
pub const REM_COUNT: usize = 4;
/// Upper bound of an encoded Realm token (checked by the tests with the
/// largest claims: SHA-512 measurements).
pub const REALM_TOKEN_MAX: usize = 1024;
/// Upper bound of what the collection adds around the two tokens (tag,
/// map, keys and byte-string headers for tokens shorter than 64 KiB).
pub const COLLECTION_OVERHEAD: usize = 32;

/// Why a token could not be made or checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The RAK from EL3 is not 48 bytes.
    KeySize,
    /// The RAK from EL3 is not a valid P-384 scalar (zero or >= the order).
    KeyInvalid,
    /// CBOR/COSE encoding failed.
    Encoding,
    /// Not well-formed CBOR/COSE, or not the expected structure.
    Decode,
    /// A claim is missing, duplicated, of the wrong type or size.
    Claim(&'static str),
    /// The signature does not verify, or the algorithm is not ES384.
    Signature,
}

/// A Realm measurement hash algorithm, named as the token names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgo {
    Sha256,
    Sha512,
}

impl HashAlgo {
    /// The text of the hash algorithm id claims.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
        }
    }
    /// Digest size in bytes.
    pub fn size(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

/// The Realm Attestation Key and its public key claim.
pub struct RealmAttestationKey {
    key: SigningKey,
    public: [u8; RAK_PUBLIC_KEY_SIZE],
    cose_key: [u8; RAK_COSE_KEY_SIZE],
}

/// COSE_Key (RFC 9052/9053) of a P-384 public key, deterministic encoding:
/// map(4) {1 (kty): 2 (EC2), -1 (crv): 2 (P-384), -2 (x): bstr 48, -3 (y): bstr 48}.
pub fn cose_key_p384(sec1: &[u8; RAK_PUBLIC_KEY_SIZE]) -> [u8; RAK_COSE_KEY_SIZE] {
    let mut k = [0u8; RAK_COSE_KEY_SIZE];
    k[..8].copy_from_slice(&[0xa4, 0x01, 0x02, 0x20, 0x02, 0x21, 0x58, 0x30]);
    k[8..56].copy_from_slice(&sec1[1..49]);
    k[56..59].copy_from_slice(&[0x22, 0x58, 0x30]);
    k[59..].copy_from_slice(&sec1[49..]);
    k
}

/// The SEC1 point of a COSE_Key claim: any well-formed EC2 P-384 COSE_Key
/// with 48-byte x and y (the point itself is checked when verifying).
pub fn cose_key_to_sec1(bytes: &[u8]) -> Result<[u8; RAK_PUBLIC_KEY_SIZE], Error> {
    use coset::{KeyType, Label};
    let bad = Error::Claim("public key");
    let k = coset::CoseKey::from_slice(bytes).map_err(|_| bad)?;
    if k.kty != KeyType::Assigned(iana::KeyType::EC2) {
        return Err(bad);
    }
    let param = |l: i64| k.params.iter().find(|(label, _)| *label == Label::Int(l)).map(|(_, v)| v);
    let crv_ok = matches!(param(-1), Some(Value::Integer(i)) if i64::try_from(*i) == Ok(iana::EllipticCurve::P_384 as i64));
    let (Some(Value::Bytes(x)), Some(Value::Bytes(y))) = (param(-2), param(-3)) else {
        return Err(bad);
    };
    if !crv_ok || x.len() != 48 || y.len() != 48 || k.alg.as_ref().is_some_and(|a| *a != coset::RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384)) {
        return Err(bad);
    }
    let mut p = [0u8; RAK_PUBLIC_KEY_SIZE];
    p[0] = 0x04;
    p[1..49].copy_from_slice(x);
    p[49..].copy_from_slice(y);
    Ok(p)
}

impl RealmAttestationKey {
    /// Takes the key as RMM_ATTEST_GET_REALM_KEY returns it for the
    /// ECC SECP384R1 curve: the 48-byte big-endian private scalar.
    pub fn from_el3(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != RAK_PRIVATE_KEY_SIZE {
            return Err(Error::KeySize);
        }
        let key = SigningKey::from_slice(bytes).map_err(|_| Error::KeyInvalid)?;
        let point = key.verifying_key().to_encoded_point(false);
        let public = point.as_bytes().try_into().map_err(|_| Error::KeyInvalid)?;
        Ok(Self { key, public, cose_key: cose_key_p384(&public) })
    }

    /// The RAK public key claim: its COSE_Key encoding.
    pub fn public_key(&self) -> &[u8; RAK_COSE_KEY_SIZE] {
        &self.cose_key
    }

    /// The RAK public key as a SEC1 point: 0x04 || X || Y.
    pub fn public_key_sec1(&self) -> &[u8; RAK_PUBLIC_KEY_SIZE] {
        &self.public
    }

    /// The algorithm of [`Self::public_key_hash`] (claim 44240).
    pub const PUBLIC_KEY_HASH_ALGO: HashAlgo = HashAlgo::Sha256;

    /// SHA-256 of the public key claim: the platform token's challenge.
    pub fn public_key_hash(&self) -> [u8; 32] {
        Sha256::digest(self.cose_key).into()
    }
}

/// What the Realm token says about a Realm.
pub struct RealmClaims<'a> {
    pub challenge: &'a [u8; CHALLENGE_SIZE],
    pub personalization_value: &'a [u8; CHALLENGE_SIZE],
    pub hash_algo: HashAlgo,
    /// The RIM's digest bytes (`hash_algo.size()` long).
    pub rim: &'a [u8],
    /// The REMs' digest bytes.
    pub rems: [&'a [u8]; REM_COUNT],
}

fn int(k: i64) -> Value {
    Value::Integer(Integer::from(k))
}

fn to_vec(v: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).map_err(|_| Error::Encoding)?;
    Ok(out)
}

/// The Realm claims map (the Realm token's payload).
pub fn encode_realm_claims(c: &RealmClaims, rak: &RealmAttestationKey) -> Result<Vec<u8>, Error> {
    let size = c.hash_algo.size();
    if c.rim.len() != size || c.rems.iter().any(|r| r.len() != size) {
        return Err(Error::Claim(
            "measurement size differs from the hash algorithm's",
        ));
    }
    let map = Value::Map(vec![
        (int(CCA_REALM_PROFILE), Value::Text(REALM_PROFILE.into())),
        (int(CCA_REALM_CHALLENGE), Value::Bytes(c.challenge.to_vec())),
        (
            int(CCA_REALM_PERSONALIZATION_VALUE),
            Value::Bytes(c.personalization_value.to_vec()),
        ),
        (
            int(CCA_REALM_INITIAL_MEASUREMENT),
            Value::Bytes(c.rim.to_vec()),
        ),
        (
            int(CCA_REALM_EXTENSIBLE_MEASUREMENTS),
            Value::Array(c.rems.iter().map(|r| Value::Bytes(r.to_vec())).collect()),
        ),
        (
            int(CCA_REALM_HASH_ALGO_ID),
            Value::Text(c.hash_algo.name().into()),
        ),
        (
            int(CCA_REALM_PUBLIC_KEY),
            Value::Bytes(rak.public_key().to_vec()),
        ),
        (
            int(CCA_REALM_PUBLIC_KEY_HASH_ALGO_ID),
            Value::Text(RealmAttestationKey::PUBLIC_KEY_HASH_ALGO.name().into()),
        ),
    ]);
    to_vec(&map)
}

/// The Realm token: tagged COSE_Sign1, ES384, signed with the RAK.
pub fn realm_token(c: &RealmClaims, rak: &RealmAttestationKey) -> Result<Vec<u8>, Error> {
    let payload = encode_realm_claims(c, rak)?;
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES384)
        .build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .payload(payload)
        .create_signature(&[], |tbs| {
            let s: Signature = rak.key.sign(tbs);
            s.to_bytes().to_vec()
        })
        .build();
    sign1.to_tagged_vec().map_err(|_| Error::Encoding)
}

/// The CCA token collection around the platform and Realm tokens.
pub fn collection(platform_token: &[u8], realm_token: &[u8]) -> Result<Vec<u8>, Error> {
    let map = Value::Map(vec![
        (
            int(CCA_PLATFORM_TOKEN),
            Value::Bytes(platform_token.to_vec()),
        ),
        (
            int(CCA_REALM_DELEGATED_TOKEN),
            Value::Bytes(realm_token.to_vec()),
        ),
    ]);
    to_vec(&Value::Tag(CCA_TOKEN_COLLECTION_TAG, Box::new(map)))
}

/// An upper bound of the collection's size for a platform token of `platform_len` bytes.
pub const fn token_size_bound(platform_len: usize) -> usize {
    platform_len + REALM_TOKEN_MAX + COLLECTION_OVERHEAD
}

// ---------------------------------------------------------------------------
// Decoding and checking (the verifier and the tests).
// ---------------------------------------------------------------------------

/// One whole CBOR item: trailing bytes are an error.
fn from_slice(bytes: &[u8]) -> Result<Value, Error> {
    let mut rest = bytes;
    let v: Value = ciborium::de::from_reader(&mut rest).map_err(|_| Error::Decode)?;
    if !rest.is_empty() {
        return Err(Error::Decode);
    }
    Ok(v)
}

fn key_of(k: &Value) -> Result<i64, Error> {
    match k {
        Value::Integer(i) => i64::try_from(*i).map_err(|_| Error::Decode),
        _ => Err(Error::Decode),
    }
}

/// The two tokens of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    pub platform_token: Vec<u8>,
    pub realm_token: Vec<u8>,
}

/// Splits a CCA token collection: tag 399, a map with exactly the keys
/// 44234 and 44241, byte-string values.
pub fn decode_collection(bytes: &[u8]) -> Result<Collection, Error> {
    let Value::Tag(CCA_TOKEN_COLLECTION_TAG, inner) = from_slice(bytes)? else {
        return Err(Error::Decode);
    };
    let Value::Map(entries) = *inner else {
        return Err(Error::Decode);
    };
    let (mut platform_token, mut realm_token) = (None, None);
    for (k, v) in entries {
        let slot = match key_of(&k)? {
            CCA_PLATFORM_TOKEN => &mut platform_token,
            CCA_REALM_DELEGATED_TOKEN => &mut realm_token,
            _ => return Err(Error::Decode),
        };
        let Value::Bytes(b) = v else {
            return Err(Error::Decode);
        };
        if slot.replace(b).is_some() {
            return Err(Error::Decode);
        }
    }
    match (platform_token, realm_token) {
        (Some(platform_token), Some(realm_token)) => Ok(Collection {
            platform_token,
            realm_token,
        }),
        _ => Err(Error::Decode),
    }
}

/// The Realm claims as decoded, checked against the token's CDDL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRealmClaims {
    pub challenge: Vec<u8>,
    pub personalization_value: Vec<u8>,
    pub hash_algo_id: String,
    pub rim: Vec<u8>,
    pub rems: Vec<Vec<u8>>,
    /// The claim's bytes (a COSE_Key), which the binding hashes.
    pub public_key: Vec<u8>,
    /// The same key as a SEC1 point.
    pub public_key_sec1: Vec<u8>,
    pub public_key_hash_algo_id: String,
    /// The profile claim, when present (it must then be [`REALM_PROFILE`]).
    pub profile: Option<String>,
}

/// Decodes a Realm claims map: every claim present once, byte strings of
/// the sizes the CDDL allows (challenge and personalization value 64, RIM
/// and each of the 4 REMs 32, 48 or 64), the public key an EC2 P-384
/// COSE_Key, text hash ids; the profile, if there, ours.
pub fn decode_realm_claims(payload: &[u8]) -> Result<DecodedRealmClaims, Error> {
    let Value::Map(entries) = from_slice(payload)? else {
        return Err(Error::Decode);
    };
    let mut seen = 0u32;
    let mut c = DecodedRealmClaims {
        challenge: Vec::new(),
        personalization_value: Vec::new(),
        hash_algo_id: String::new(),
        rim: Vec::new(),
        rems: Vec::new(),
        public_key: Vec::new(),
        public_key_sec1: Vec::new(),
        public_key_hash_algo_id: String::new(),
        profile: None,
    };
    let bytes = |v: Value, name: &'static str, sizes: &[usize]| match v {
        Value::Bytes(b) if sizes.contains(&b.len()) => Ok(b),
        _ => Err(Error::Claim(name)),
    };
    let text = |v: Value, name: &'static str| match v {
        Value::Text(t) => Ok(t),
        _ => Err(Error::Claim(name)),
    };
    const DIGEST: &[usize] = &[32, 48, 64];
    for (k, v) in entries {
        let k = key_of(&k)?;
        let (bit, name) = match k {
            CCA_REALM_CHALLENGE => (0, "challenge"),
            CCA_REALM_PERSONALIZATION_VALUE => (1, "personalization value"),
            CCA_REALM_HASH_ALGO_ID => (2, "hash algorithm id"),
            CCA_REALM_PUBLIC_KEY => (3, "public key"),
            CCA_REALM_INITIAL_MEASUREMENT => (4, "initial measurement"),
            CCA_REALM_EXTENSIBLE_MEASUREMENTS => (5, "extensible measurements"),
            CCA_REALM_PUBLIC_KEY_HASH_ALGO_ID => (6, "public key hash algorithm id"),
            CCA_REALM_PROFILE => (7, "profile"),
            _ => continue, // unknown claims are allowed by the CDDL's extension point
        };
        if seen & (1 << bit) != 0 {
            return Err(Error::Claim(name));
        }
        seen |= 1 << bit;
        match bit {
            0 => c.challenge = bytes(v, name, &[CHALLENGE_SIZE])?,
            1 => c.personalization_value = bytes(v, name, &[CHALLENGE_SIZE])?,
            2 => c.hash_algo_id = text(v, name)?,
            3 => {
                let Value::Bytes(b) = v else {
                    return Err(Error::Claim(name));
                };
                c.public_key_sec1 = cose_key_to_sec1(&b)?.to_vec();
                c.public_key = b;
            }
            7 => match v {
                Value::Text(t) if t == REALM_PROFILE => c.profile = Some(t),
                _ => return Err(Error::Claim(name)),
            },
            4 => c.rim = bytes(v, name, DIGEST)?,
            5 => {
                let Value::Array(a) = v else {
                    return Err(Error::Claim(name));
                };
                if a.len() != REM_COUNT {
                    return Err(Error::Claim(name));
                }
                c.rems = a
                    .into_iter()
                    .map(|r| bytes(r, name, DIGEST))
                    .collect::<Result<_, _>>()?;
            }
            _ => c.public_key_hash_algo_id = text(v, name)?,
        }
    }
    const NAMES: [&str; 7] = [
        "challenge",
        "personalization value",
        "hash algorithm id",
        "public key",
        "initial measurement",
        "extensible measurements",
        "public key hash algorithm id",
    ];
    if let Some(missing) = (0..7).find(|b| seen & (1 << b) == 0) {
        return Err(Error::Claim(NAMES[missing]));
    }
    Ok(c)
}

fn decode_sign1(token: &[u8]) -> Result<CoseSign1, Error> {
    CoseSign1::from_tagged_slice(token)
        .or_else(|_| CoseSign1::from_slice(token))
        .map_err(|_| Error::Decode)
}

fn is_es384(s: &CoseSign1) -> bool {
    s.protected.header.alg
        == Some(coset::RegisteredLabelWithPrivate::Assigned(
            iana::Algorithm::ES384,
        ))
}

/// Checks an ES384 COSE_Sign1 against a SEC1-encoded P-384 public key;
/// returns its payload.
pub fn verify_es384(token: &[u8], public_key: &[u8]) -> Result<Vec<u8>, Error> {
    let s = decode_sign1(token)?;
    if !is_es384(&s) {
        return Err(Error::Signature);
    }
    let key = VerifyingKey::from_sec1_bytes(public_key).map_err(|_| Error::Signature)?;
    s.verify_signature(&[], |sig, tbs| {
        let sig = Signature::from_slice(sig).map_err(|_| Error::Signature)?;
        key.verify(tbs, &sig).map_err(|_| Error::Signature)
    })?;
    s.payload.ok_or(Error::Decode)
}

/// Decodes a Realm token and checks its signature with the public key it
/// carries (the RAK, which the platform token vouches for).
pub fn verify_realm_token(token: &[u8]) -> Result<DecodedRealmClaims, Error> {
    let s = decode_sign1(token)?;
    let claims = decode_realm_claims(s.payload.as_deref().ok_or(Error::Decode)?)?;
    verify_es384(token, &claims.public_key_sec1)?;
    Ok(claims)
}

/// The payload of a COSE_Sign1 without checking its signature.
pub fn unverified_payload(token: &[u8]) -> Result<Vec<u8>, Error> {
    decode_sign1(token)?.payload.ok_or(Error::Decode)
}

/// The platform token's challenge claim (10), unverified.
pub fn platform_challenge(platform_token: &[u8]) -> Result<Vec<u8>, Error> {
    let Value::Map(entries) = from_slice(&unverified_payload(platform_token)?)? else {
        return Err(Error::Decode);
    };
    let mut found = None;
    for (k, v) in entries {
        if key_of(&k)? == CCA_PLATFORM_CHALLENGE {
            let Value::Bytes(b) = v else {
                return Err(Error::Claim("platform challenge"));
            };
            if found.replace(b).is_some() {
                return Err(Error::Claim("platform challenge"));
            }
        }
    }
    found.ok_or(Error::Claim("platform challenge"))
}

/// The hash the binding uses: `algo_id` of `data`.
pub fn hash_by_name(algo_id: &str, data: &[u8]) -> Option<Vec<u8>> {
    match algo_id {
        "sha-256" => Some(Sha256::digest(data).to_vec()),
        "sha-384" => Some(sha2::Sha384::digest(data).to_vec()),
        "sha-512" => Some(sha2::Sha512::digest(data).to_vec()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
