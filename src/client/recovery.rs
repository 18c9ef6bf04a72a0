//! The device's half of a recovery exchange: a one-time key (X-Wing for an `hpke-xwing`
//! envelope, so that the answer is post-quantum too; P-256 otherwise), the MFA nonce
//! that binds the identity provider's assertion to this request, the signed request, and
//! opening the service's answer, which only that one-time key can do.

use core::fmt;

use zeroize::Zeroizing;

use super::error::ClientError;
use crate::crypto::hpke;
use crate::crypto::provider::{provider, Failure, P256Agreement};
use crate::crypto::secret::RecoverySecret;
use crate::crypto::xwing::{self, XWingPrivate};
use crate::envelope::Envelope;
use crate::keys::signing::SigningKey;
use crate::protocol::request::{self, OneTimeKem, RecoveryRequest};
use crate::protocol::response::{RecoveryResponse, RESPONSE_LABEL};

/// A recovery in progress: holds the one-time key until the answer arrives. Dropping it
/// wipes the key, after which no answer to its request can be opened.
///
/// # Examples
/// ```
/// # let (svc, container, _dir) = pin_recovery::testkit::StandIn::enrolled_device()?;
/// # let me = container.status()?.identity;
/// use pin_recovery::client::Pin;
/// use pin_recovery::RecoveryResponse;
///
/// let mut pending = container.begin_recovery()?;
/// // The identity provider puts this nonce in the MFA assertion it issues.
/// let assertion = svc.mfa(&me, pending.mfa_nonce())?;
/// let request = pending.request(&assertion)?;
/// let answer = RecoveryResponse::from_json(&svc.send_recovery(&request.to_json()).unwrap())?;
/// let reset = container.complete_recovery(pending, &answer, &Pin::new("730145"), &svc.fetch_key_document()?)?;
/// assert_eq!(reset.credential_public_key, container.status()?.credential_public_key);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PendingRecovery {
    envelope: Envelope,
    device_key: SigningKey,
    ephemeral: OneTimeKey,
    nonce: String,
    request_hash: Option<[u8; 32]>,
}

impl PendingRecovery {
    /// Starts a recovery for `envelope`, whose requests `device_key` signs (usually
    /// through [`crate::client::Container::begin_recovery`], which takes the container's
    /// own envelope and device key).
    ///
    /// # Errors
    /// [`ClientError::Crypto`] if the one-time key cannot be generated.
    pub fn for_envelope(envelope: Envelope, device_key: SigningKey) -> Result<Self, ClientError> {
        let ephemeral = match OneTimeKem::for_suite(envelope.suite()) {
            OneTimeKem::XWing => OneTimeKey::XWing(Box::new(XWingPrivate::generate(provider())?)),
            OneTimeKem::P256 => OneTimeKey::P256(provider().p256_agreement_generate()?),
        };
        let nonce = request::mfa_nonce(&envelope.envelope_id(), ephemeral.public_key());
        Ok(PendingRecovery {
            envelope,
            device_key,
            ephemeral,
            nonce,
            request_hash: None,
        })
    }

    /// The nonce to put in the MFA assertion request to the identity provider.
    pub fn mfa_nonce(&self) -> &str {
        &self.nonce
    }

    /// The envelope being recovered.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The one-time public key the answer will be sealed to: 65 bytes (P-256), or 1216
    /// (X-Wing) for an `hpke-xwing` envelope.
    pub fn ephemeral_public_key(&self) -> &[u8] {
        self.ephemeral.public_key()
    }

    /// Builds the request carrying `assertion` (the identity provider's, issued for
    /// [`PendingRecovery::mfa_nonce`]), signed by the device key.
    ///
    /// It may be called again, with a new assertion for the same nonce, after a refusal
    /// that advises reauthenticating ([`crate::Advice::Reauthenticate`]); the service's
    /// answer then opens only for the last request built.
    ///
    /// # Errors
    /// [`ClientError::BadAssertion`] if the assertion is longer than
    /// [`crate::MAX_ASSERTION_LEN`] or not a compact JWS; [`ClientError::Crypto`] if
    /// signing fails.
    pub fn request(&mut self, assertion: &str) -> Result<RecoveryRequest, ClientError> {
        let eph = self.ephemeral.public_key();
        let signed = request::request_signed_bytes(&self.envelope, eph, assertion)
            .map_err(ClientError::BadAssertion)?;
        let signature = self.device_key.sign(&signed)?;
        let request = RecoveryRequest::new(
            self.envelope.clone(),
            eph.to_vec(),
            assertion.to_owned(),
            signature,
            signed,
        );
        self.request_hash = Some(request.request_hash());
        Ok(request)
    }

    /// Opens the answer without consuming the one-time key: for tests that try many
    /// answers against one request.
    #[doc(hidden)]
    pub fn __open_response(
        &self,
        response: &RecoveryResponse,
    ) -> Result<RecoverySecret, ClientError> {
        self.open_ref(response)
    }

    /// Opens the service's answer; consumes (and wipes) the one-time key. Keep the
    /// secret until [`crate::client::Container::reset_with_secret`] succeeds: a failed
    /// reset can be retried with it, without a second MFA or a second release.
    ///
    /// # Errors
    /// [`ClientError::ResponseMismatch`] if the answer is not for this request or does
    /// not open.
    pub fn open(self, response: &RecoveryResponse) -> Result<RecoverySecret, ClientError> {
        self.open_ref(response)
    }

    fn open_ref(&self, response: &RecoveryResponse) -> Result<RecoverySecret, ClientError> {
        let hash = self.request_hash.ok_or(ClientError::ResponseMismatch)?;
        if response.envelope_id() != self.envelope.envelope_id() {
            return Err(ClientError::ResponseMismatch);
        }
        let p = provider();
        let sealed = response.sealed_secret();
        let mut info = RESPONSE_LABEL.to_vec();
        info.extend_from_slice(&hash);
        // An answer sealed with the other KEM has the other length, and is refused here.
        let (mut ctx, ct) = self
            .ephemeral
            .receiver(sealed, &info)
            .map_err(|_| ClientError::ResponseMismatch)?;
        if ct.len() != RecoverySecret::LEN + 16 {
            return Err(ClientError::ResponseMismatch);
        }
        let mut buf = Zeroizing::new(ct.to_vec());
        let pt = ctx
            .open(p, b"", &mut buf)
            .map_err(|_| ClientError::ResponseMismatch)?;
        let mut secret = <[u8; RecoverySecret::LEN]>::try_from(&pt[..])
            .map_err(|_| ClientError::ResponseMismatch)?;
        Ok(RecoverySecret::from_bytes(&mut secret))
    }
}

impl fmt::Debug for PendingRecovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingRecovery")
            .field("envelope_id", &self.envelope.envelope_id())
            .field("nonce", &self.nonce)
            .finish_non_exhaustive()
    }
}

/// The device's one-time private key, of the KEM the envelope's suite asks for.
enum OneTimeKey {
    P256(Box<dyn P256Agreement>),
    XWing(Box<XWingPrivate>),
}

impl OneTimeKey {
    fn public_key(&self) -> &[u8] {
        match self {
            OneTimeKey::P256(k) => k.public_key(),
            OneTimeKey::XWing(k) => k.public_key(),
        }
    }

    /// `SetupBaseR` for a sealed secret `enc || ct` of this key's KEM; also returns `ct`.
    fn receiver<'a>(
        &self,
        sealed: &'a [u8],
        info: &[u8],
    ) -> Result<(hpke::ReceiverContext, &'a [u8]), Failure> {
        let p = provider();
        match self {
            OneTimeKey::P256(sk) => {
                let (enc, ct) = sealed.split_at_checked(hpke::ENC_LEN).ok_or(Failure)?;
                let enc = <&[u8; hpke::ENC_LEN]>::try_from(enc).map_err(|_| Failure)?;
                Ok((hpke::setup_base_r(p, enc, sk.as_ref(), info)?, ct))
            }
            OneTimeKey::XWing(sk) => {
                let (enc, ct) = sealed.split_at_checked(xwing::ENC_LEN).ok_or(Failure)?;
                let enc = <&[u8; xwing::ENC_LEN]>::try_from(enc).map_err(|_| Failure)?;
                Ok((hpke::setup_base_r_xwing(p, enc, sk, info)?, ct))
            }
        }
    }
}
