//! Realm attestation (DEN0137 RMM 1.0, RSI_ATTESTATION_TOKEN_INIT and
//! RSI_ATTESTATION_TOKEN_CONTINUE): the material from EL3 and the token.
//!
//! The Realm Attestation Key and the platform token are fetched from EL3 on
//! first use and kept: the platform token's challenge is the hash of the RAK
//! public key, which never changes, so one platform token serves every Realm
//! token.  A failed fetch is not kept: the next attempt asks EL3 again.
//!
//! The token is made again, in full, at each RSI_ATTESTATION_TOKEN_CONTINUE
//! from what RSI_ATTESTATION_TOKEN_INIT captured in the REC (challenge and
//! measurements) plus the Realm's immutable RPV and hash algorithm; ECDSA
//! with RFC 6979 nonces makes it the same bytes each time, so a Realm that
//! reads it in parts gets parts of one token, and no token is held between
//! calls (nothing stays on the heap).

use crate::el3::El3;
use alloc::vec::Vec;
use cca_token::{RealmAttestationKey, RealmClaims};

/// The largest platform token we take from EL3 (the shared buffer's page).
pub const MAX_PLATFORM_TOKEN: usize = 0x1000;
/// What RSI_ATTESTATION_TOKEN_INIT reports: no token is longer.
pub const TOKEN_SIZE_BOUND: usize = cca_token::token_size_bound(MAX_PLATFORM_TOKEN);

struct Keys {
    rak: RealmAttestationKey,
    platform_token: Vec<u8>,
}

/// Why no token could be made (all end as RSI_ERROR_UNKNOWN for the Realm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttestError {
    /// EL3 refused RMM_ATTEST_GET_REALM_KEY (its E_RMM_* code).
    RealmKey(i64),
    /// EL3's key is not a P-384 private key.
    BadKey(cca_token::Error),
    /// EL3 refused RMM_ATTEST_GET_PLAT_TOKEN (its E_RMM_* code).
    PlatformToken(i64),
    /// Encoding or signing failed.
    Token(cca_token::Error),
}

/// The attestation material, shared by all CPUs.
pub struct Attest {
    keys: spin::Once<Keys>,
}

impl Attest {
    pub const fn new() -> Self {
        Self {
            keys: spin::Once::new(),
        }
    }

    fn keys(&self, el3: &dyn El3) -> Result<&Keys, AttestError> {
        self.keys.try_call_once(|| {
            let raw = el3.realm_key().map_err(AttestError::RealmKey)?;
            let rak = RealmAttestationKey::from_el3(&raw).map_err(AttestError::BadKey)?;
            let platform_token = el3
                .platform_token(&rak.public_key_hash(), MAX_PLATFORM_TOKEN)
                .map_err(AttestError::PlatformToken)?;
            if platform_token.len() > MAX_PLATFORM_TOKEN {
                return Err(AttestError::PlatformToken(
                    shared::abi::rmm_el3::E_RMM_NOMEM,
                ));
            }
            Ok(Keys {
                rak,
                platform_token,
            })
        })
    }

    /// The CCA token collection for `claims`.
    pub fn token(&self, el3: &dyn El3, claims: &RealmClaims) -> Result<Vec<u8>, AttestError> {
        let keys = self.keys(el3)?;
        let realm = cca_token::realm_token(claims, &keys.rak).map_err(AttestError::Token)?;
        cca_token::collection(&keys.platform_token, &realm).map_err(AttestError::Token)
    }
}
