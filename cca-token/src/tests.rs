use super::*;
use std::vec::Vec;

/// The Realm Attestation Key TF-A 2.12's qemu platform hands out (48-byte
/// P-384 scalar; see docs/rmm.md, "Attestation").
pub const QEMU_SAMPLE_RAK: [u8; 48] = [
    0x20, 0x11, 0xC7, 0xF0, 0x3C, 0xEE, 0x43, 0x25, 0x17, 0x6E, 0x52, 0x4F, 0x03, 0x3C, 0x0C, 0xE1,
    0xE2, 0x1A, 0x76, 0xE6, 0xC1, 0xA4, 0xF0, 0xB8, 0x39, 0xAA, 0x1D, 0xF6, 0x1E, 0x0E, 0x8A, 0x5C,
    0x8A, 0x05, 0x74, 0x0F, 0x9B, 0x69, 0xEF, 0xA7, 0xEB, 0x1A, 0x41, 0x85, 0xBD, 0x11, 0x7F, 0x68,
];

fn claims<'a>(
    algo: HashAlgo,
    ch: &'a [u8; 64],
    rpv: &'a [u8; 64],
    m: &'a [[u8; 64]; 5],
) -> RealmClaims<'a> {
    let n = algo.size();
    RealmClaims {
        challenge: ch,
        personalization_value: rpv,
        hash_algo: algo,
        rim: &m[0][..n],
        rems: [&m[1][..n], &m[2][..n], &m[3][..n], &m[4][..n]],
    }
}

fn inputs() -> ([u8; 64], [u8; 64], [[u8; 64]; 5]) {
    let mut m = [[0u8; 64]; 5];
    for (i, s) in m.iter_mut().enumerate() {
        s.fill(0x10 * i as u8 + 1);
    }
    ([0xc5; 64], [0x7a; 64], m)
}

/// A stand-in platform token: an ES384 COSE_Sign1 whose challenge is `challenge`.
fn platform_token(challenge: &[u8]) -> Vec<u8> {
    let key = SigningKey::from_slice(&[0x42; 48]).unwrap();
    let payload = to_vec(&Value::Map(vec![
        (
            int(265),
            Value::Text("tag:arm.com,2023:cca_platform#1.0.0".into()),
        ),
        (int(10), Value::Bytes(challenge.to_vec())),
    ]))
    .unwrap();
    CoseSign1Builder::new()
        .protected(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::ES384)
                .build(),
        )
        .payload(payload)
        .create_signature(&[], |tbs| {
            let s: Signature = key.sign(tbs);
            s.to_bytes().to_vec()
        })
        .build()
        .to_tagged_vec()
        .unwrap()
}

#[test]
fn claims_decode_as_encoded_with_the_cddl_types() {
    let rak = RealmAttestationKey::from_el3(&QEMU_SAMPLE_RAK).unwrap();
    let (ch, rpv, m) = inputs();
    for algo in [HashAlgo::Sha256, HashAlgo::Sha512] {
        let c = claims(algo, &ch, &rpv, &m);
        let payload = encode_realm_claims(&c, &rak).unwrap();
        // Raw CBOR: a map of 7 integer keys.
        let Value::Map(entries) = from_slice(&payload).unwrap() else {
            panic!("not a map")
        };
        let keys: Vec<i64> = entries.iter().map(|(k, _)| key_of(k).unwrap()).collect();
        assert_eq!(keys, [265, 10, 44235, 44238, 44239, 44236, 44237, 44240]);
        let d = decode_realm_claims(&payload).unwrap();
        assert_eq!(d.challenge, ch);
        assert_eq!(d.personalization_value, rpv);
        assert_eq!(d.rim, &m[0][..algo.size()]);
        assert_eq!(d.rems.len(), 4);
        for i in 0..4 {
            assert_eq!(d.rems[i], &m[1 + i][..algo.size()]);
        }
        assert_eq!(d.hash_algo_id, algo.name());
        assert_eq!(d.public_key, rak.public_key());
        assert_eq!(d.public_key_sec1, rak.public_key_sec1());
        assert_eq!(d.public_key_sec1[0], 0x04);
        assert_eq!(d.profile.as_deref(), Some(REALM_PROFILE));
        assert_eq!(d.public_key_hash_algo_id, "sha-256");
    }
}

#[test]
fn measurement_size_must_match_the_algorithm() {
    let rak = RealmAttestationKey::from_el3(&QEMU_SAMPLE_RAK).unwrap();
    let (ch, rpv, m) = inputs();
    let mut c = claims(HashAlgo::Sha256, &ch, &rpv, &m);
    c.rim = &m[0][..48];
    assert!(matches!(
        encode_realm_claims(&c, &rak),
        Err(Error::Claim(_))
    ));
}

#[test]
fn realm_token_is_deterministic_verifies_and_fits_the_bound() {
    let rak = RealmAttestationKey::from_el3(&QEMU_SAMPLE_RAK).unwrap();
    let (ch, rpv, m) = inputs();
    for algo in [HashAlgo::Sha256, HashAlgo::Sha512] {
        let c = claims(algo, &ch, &rpv, &m);
        let t1 = realm_token(&c, &rak).unwrap();
        let t2 = realm_token(&c, &rak).unwrap();
        assert_eq!(t1, t2, "RFC 6979: same inputs, same token");
        assert!(t1.len() <= REALM_TOKEN_MAX, "{} > bound", t1.len());
        assert_eq!(&t1[..1], &[0xd2], "COSE_Sign1 tag 18");
        let d = verify_realm_token(&t1).unwrap();
        assert_eq!(d.challenge, ch);
        // Another challenge, another token.
        let ch2 = [0u8; 64];
        let c2 = claims(algo, &ch2, &rpv, &m);
        assert_ne!(realm_token(&c2, &rak).unwrap(), t1);
    }
}

#[test]
fn collection_round_trips_and_binds() {
    let rak = RealmAttestationKey::from_el3(&QEMU_SAMPLE_RAK).unwrap();
    let (ch, rpv, m) = inputs();
    let realm = realm_token(&claims(HashAlgo::Sha256, &ch, &rpv, &m), &rak).unwrap();
    let plat = platform_token(&rak.public_key_hash());
    let token = collection(&plat, &realm).unwrap();
    assert!(token.len() <= token_size_bound(plat.len()));
    assert_eq!(&token[..3], &[0xd9, 0x01, 0x8f], "tag 399");
    let c = decode_collection(&token).unwrap();
    assert_eq!(c.platform_token, plat);
    assert_eq!(c.realm_token, realm);
    let d = verify_realm_token(&c.realm_token).unwrap();
    let pch = platform_challenge(&c.platform_token).unwrap();
    assert_eq!(
        hash_by_name(&d.public_key_hash_algo_id, &d.public_key).unwrap(),
        pch
    );
    // Trailing bytes and wrong tags are refused.
    let mut longer = token.clone();
    longer.push(0);
    assert_eq!(decode_collection(&longer), Err(Error::Decode));
    let mut wrong_tag = token.clone();
    wrong_tag[2] = 0x90;
    assert_eq!(decode_collection(&wrong_tag), Err(Error::Decode));
}

#[test]
fn every_flipped_byte_of_the_realm_token_is_caught() {
    let rak = RealmAttestationKey::from_el3(&QEMU_SAMPLE_RAK).unwrap();
    let (ch, rpv, m) = inputs();
    let realm = realm_token(&claims(HashAlgo::Sha256, &ch, &rpv, &m), &rak).unwrap();
    for i in 0..realm.len() {
        let mut bad = realm.clone();
        bad[i] ^= 0x01;
        match verify_realm_token(&bad) {
            Err(_) => {}
            // A flip that still decodes must at least change the claims.
            Ok(d) => panic!("byte {i} flipped and still verified: {d:?}"),
        }
    }
}

#[test]
fn malformed_keys_from_el3_are_errors() {
    assert_eq!(
        RealmAttestationKey::from_el3(&[]).err(),
        Some(Error::KeySize)
    );
    assert_eq!(
        RealmAttestationKey::from_el3(&[1; 47]).err(),
        Some(Error::KeySize)
    );
    assert_eq!(
        RealmAttestationKey::from_el3(&[1; 49]).err(),
        Some(Error::KeySize)
    );
    assert_eq!(
        RealmAttestationKey::from_el3(&[0; 48]).err(),
        Some(Error::KeyInvalid)
    );
    assert_eq!(
        RealmAttestationKey::from_el3(&[0xff; 48]).err(),
        Some(Error::KeyInvalid),
        ">= group order"
    );
    assert!(RealmAttestationKey::from_el3(&[1; 48]).is_ok());
}

#[test]
fn bad_claims_maps_are_refused() {
    let rak = RealmAttestationKey::from_el3(&QEMU_SAMPLE_RAK).unwrap();
    let (ch, rpv, m) = inputs();
    let good = encode_realm_claims(&claims(HashAlgo::Sha256, &ch, &rpv, &m), &rak).unwrap();
    let Value::Map(entries) = from_slice(&good).unwrap() else {
        unreachable!()
    };
    // Each claim missing in turn.
    // Each mandatory claim missing in turn (entry 0, the profile, is optional).
    for i in 1..entries.len() {
        let mut e = entries.clone();
        e.remove(i);
        assert!(
            matches!(
                decode_realm_claims(&to_vec(&Value::Map(e)).unwrap()),
                Err(Error::Claim(_))
            ),
            "without claim {i}"
        );
    }
    // Duplicated challenge; challenge of 63 bytes; 3 REMs; text RIM.
    let mut e = entries.clone();
    e.push(e[1].clone());
    assert!(decode_realm_claims(&to_vec(&Value::Map(e)).unwrap()).is_err());
    let mut e = entries.clone();
    e[1].1 = Value::Bytes(vec![0; 63]);
    assert!(decode_realm_claims(&to_vec(&Value::Map(e)).unwrap()).is_err());
    let mut e = entries.clone();
    e[4].1 = Value::Array(vec![Value::Bytes(vec![0; 32]); 3]);
    assert!(decode_realm_claims(&to_vec(&Value::Map(e)).unwrap()).is_err());
    let mut e = entries.clone();
    e[3].1 = Value::Text("rim".into());
    assert!(decode_realm_claims(&to_vec(&Value::Map(e)).unwrap()).is_err());
    // Without the profile: accepted; another profile: refused.
    let mut e = entries.clone();
    e.remove(0);
    assert_eq!(decode_realm_claims(&to_vec(&Value::Map(e)).unwrap()).unwrap().profile, None);
    let mut e = entries.clone();
    e[0].1 = Value::Text("http://arm.com/CCA-SSD/1.0.0".into());
    assert!(decode_realm_claims(&to_vec(&Value::Map(e)).unwrap()).is_err());
    // Not CBOR at all, and truncated.
    assert!(decode_realm_claims(&[0xff, 0x00]).is_err());
    assert!(decode_realm_claims(&good[..good.len() - 1]).is_err());
}

#[test]
fn rak_cose_key_binds_to_qemus_sample_platform_token() {
    // TF-A 2.12 qemu's sample platform token carries this challenge: SHA-256
    // of the COSE_Key of qemu's sample RAK, as this crate encodes it.
    let rak = RealmAttestationKey::from_el3(&QEMU_SAMPLE_RAK).unwrap();
    let hex: std::string::String = rak.public_key_hash().iter().map(|b| std::format!("{b:02x}")).collect();
    assert_eq!(hex, "0d22e08a98469058486318283489bdb36f09dbefeb1864df433fa6e54ea2d711");
    // coset reads our encoding back as the same key.
    assert_eq!(&cose_key_to_sec1(rak.public_key()).unwrap(), rak.public_key_sec1());
    let k = coset::CoseKey::from_slice(rak.public_key()).unwrap();
    assert_eq!(k.to_vec().unwrap(), rak.public_key().to_vec(), "canonical: coset re-encodes the same bytes");
}

#[test]
fn malformed_cose_keys_are_refused() {
    let rak = RealmAttestationKey::from_el3(&QEMU_SAMPLE_RAK).unwrap();
    let good = *rak.public_key();
    let mut p256 = good;
    p256[4] = 0x01; // crv P-256
    let mut okp = good;
    okp[2] = 0x01; // kty OKP
    let mut short = good.to_vec();
    short.truncate(100);
    for bad in [&p256[..], &okp[..], &short[..], &[][..], &[0xa0][..], rak.public_key_sec1()] {
        assert!(cose_key_to_sec1(bad).is_err(), "{bad:02x?}");
    }
}
