//! The X-Wing KEM (ML-KEM-768 + X25519, draft-connolly-cfrg-xwing-kem) as HPKE uses it
//! (draft-ietf-hpke-pq, KEM id 0x647a), on the RustCrypto `x-wing` crate. A private key
//! is its 32-byte seed; everything else is expanded from it.
//!
//! The randomness of an encapsulation is drawn here (from the provider's random source,
//! or from the caller for vectors) and handed to the crate's deterministic
//! encapsulation, so that no second random-number interface enters the crate.

use x_wing::{Decapsulate, Decapsulator, KeyExport, KeyInit, TryKeyInit};
use zeroize::Zeroizing;

use crate::crypto::provider::{CryptoProvider, Failure, Secret32};

/// `Npk`: an encapsulation key, ML-KEM-768's then X25519's.
pub(crate) const PUBLIC_KEY_LEN: usize = x_wing::ENCAPSULATION_KEY_SIZE;
/// `Nenc`: a ciphertext, ML-KEM-768's then X25519's.
pub(crate) const ENC_LEN: usize = x_wing::CIPHERTEXT_SIZE;
/// `Nsk`: the seed a decapsulation key is expanded from.
pub(crate) const SEED_LEN: usize = x_wing::DECAPSULATION_KEY_SIZE;
/// The randomness one encapsulation consumes.
pub(crate) const ENCAP_RANDOMNESS_LEN: usize = x_wing::ENCAPSULATION_RANDOMNESS_SIZE;

const KEM_ID: u16 = 0x647a;

/// A decapsulation key. The crate's type wipes its seed when dropped.
pub(crate) struct XWingPrivate {
    key: x_wing::DecapsulationKey,
    public: Box<[u8; PUBLIC_KEY_LEN]>,
}

impl XWingPrivate {
    /// The key a seed expands to.
    pub(crate) fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let key = x_wing::DecapsulationKey::new(&(*seed).into());
        let mut public = Box::new([0u8; PUBLIC_KEY_LEN]);
        public.copy_from_slice(&key.encapsulation_key().to_bytes());
        XWingPrivate { key, public }
    }

    /// A fresh key from the provider's random source.
    pub(crate) fn generate(p: &dyn CryptoProvider) -> Result<Self, Failure> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        p.fill_random(&mut seed[..])?;
        Ok(Self::from_seed(&seed))
    }

    /// draft-ietf-hpke-pq `DeriveKeyPair(ikm)`: the seed is
    /// `SHAKE256.LabeledDerive(ikm, "DeriveKeyPair", "", 32)`.
    pub(crate) fn derive(ikm: &[u8]) -> Self {
        use shake::{ExtendableOutput, Update, XofReader};
        let label = b"DeriveKeyPair";
        let mut xof = shake::Shake256::default();
        xof.update(ikm);
        xof.update(b"HPKE-v1");
        xof.update(b"KEM");
        xof.update(&KEM_ID.to_be_bytes());
        xof.update(&u16::try_from(label.len()).unwrap_or(0).to_be_bytes());
        xof.update(label);
        xof.update(&u16::try_from(SEED_LEN).unwrap_or(0).to_be_bytes());
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        xof.finalize_xof().read(&mut seed[..]);
        Self::from_seed(&seed)
    }

    /// The seed: the whole private key, for export only.
    pub(crate) fn seed(&self) -> Zeroizing<[u8; SEED_LEN]> {
        Zeroizing::new(self.key.to_bytes().into())
    }

    pub(crate) fn public_key(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.public
    }

    /// `Decap(enc, skR)`. Never fails: ML-KEM rejects implicitly, and an X25519 share of
    /// low order gives a shared secret the AEAD will refuse.
    pub(crate) fn decap(&self, enc: &[u8; ENC_LEN]) -> Secret32 {
        let ct = x_wing::Ciphertext::from(*enc);
        Zeroizing::new(self.key.decapsulate(&ct).into())
    }
}

/// Where an encapsulation's randomness comes from.
pub(crate) enum Randomness<'a> {
    /// From the provider's random source.
    Fresh,
    /// Given: the vectors' `ikmE`, 64 bytes, ML-KEM's 32 then X25519's 32.
    Given(&'a [u8; ENCAP_RANDOMNESS_LEN]),
}

/// `Encap(pkR)`: the encapsulated key and the shared secret.
pub(crate) fn encap(
    p: &dyn CryptoProvider,
    pk_r: &[u8; PUBLIC_KEY_LEN],
    randomness: Randomness<'_>,
) -> Result<(Box<[u8; ENC_LEN]>, Secret32), Failure> {
    let key = x_wing::EncapsulationKey::new(&(*pk_r).into()).map_err(|_| Failure)?;
    let mut drawn = Zeroizing::new([0u8; ENCAP_RANDOMNESS_LEN]);
    let eseed: &[u8; ENCAP_RANDOMNESS_LEN] = match randomness {
        Randomness::Fresh => {
            p.fill_random(&mut drawn[..])?;
            &drawn
        }
        Randomness::Given(given) => given,
    };
    let (ct, ss) = key.encapsulate_deterministic(&(*eseed).into());
    let mut enc = Box::new([0u8; ENC_LEN]);
    enc.copy_from_slice(&ct);
    Ok((enc, Zeroizing::new(ss.into())))
}

/// Whether `bytes` is an encapsulation key the KEM accepts (ML-KEM-768's modulus check).
pub(crate) fn public_key_is_valid(bytes: &[u8; PUBLIC_KEY_LEN]) -> bool {
    x_wing::EncapsulationKey::new(&(*bytes).into()).is_ok()
}
