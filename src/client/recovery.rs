//! The device's half of a recovery exchange: a one-time P-256 key, the MFA nonce that
//! binds the identity provider's assertion to this request, the signed request, and
//! opening the service's answer, which only that one-time key can do.

use core::fmt;

use zeroize::Zeroizing;

use super::error::ClientError;
use crate::crypto::hpke::{self, ENC_LEN};
use crate::crypto::provider::{provider, P256Agreement};
use crate::crypto::secret::RecoverySecret;
use crate::envelope::Envelope;
use crate::keys::signing::SigningKey;
use crate::protocol::request::{self, RecoveryRequest};
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
    ephemeral: Box<dyn P256Agreement>,
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
        let ephemeral = provider().p256_agreement_generate()?;
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

    /// The one-time public key the answer will be sealed to.
    pub fn ephemeral_public_key(&self) -> &[u8; ENC_LEN] {
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
        let eph = *self.ephemeral.public_key();
        let signed = request::request_signed_bytes(&self.envelope, &eph, assertion)
            .map_err(ClientError::BadAssertion)?;
        let signature = self.device_key.sign(&signed)?;
        let request = RecoveryRequest::new(
            self.envelope.clone(),
            eph,
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
        let (enc, ct) = sealed.split_at(ENC_LEN);
        let enc = <&[u8; ENC_LEN]>::try_from(enc).map_err(|_| ClientError::ResponseMismatch)?;
        let mut info = RESPONSE_LABEL.to_vec();
        info.extend_from_slice(&hash);
        let mut ctx = hpke::setup_base_r(p, enc, self.ephemeral.as_ref(), &info)
            .map_err(|_| ClientError::ResponseMismatch)?;
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
