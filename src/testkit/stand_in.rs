//! An in-process stand-in for a recovery service and an identity provider, for the
//! guides' examples and quick experiments: what a device reaches over HTTP, answered by a
//! service over an in-memory store. Not for production. Each method names the HTTP
//! request it stands for (docs/PROTOCOL.md §8): a device replaces them with those.

use std::path::Path;
use std::sync::Arc;

use super::TestIdentityProvider;
use crate::client::{Argon2Profile, Container, ContainerPolicy, FileStore, Pin, ServiceTrust};
use crate::clock::{Clock, SystemClock};
use crate::envelope::binding::Binding;
use crate::keys::{ServicePrivateKey, SigningKey, VerifyingKey};
use crate::protocol::device::DeviceRegistration;
use crate::protocol::key_document::{KeyDocumentSigner, SignedKeyDocument};
use crate::protocol::refusal::Refusal;
use crate::service::{
    blocking, IssuerTrust, KeyEncryptionKey, MemoryStore, MfaPolicy, RecoveryService,
    RequestContext, ServiceConfig,
};

type Failure = Box<dyn std::error::Error>;

/// The audience the stand-in service requires.
pub const AUDIENCE: &str = "https://recovery.contoso.example";

/// A service for tenant `contoso` (one key), trusting one test identity provider.
pub struct StandIn {
    service: blocking::RecoveryService,
    idp: TestIdentityProvider,
}

fn config() -> ServiceConfig {
    ServiceConfig {
        issuer: AUDIENCE.into(),
        mfa: MfaPolicy::new(AUDIENCE),
        key_document_lifetime: 86_400,
    }
}

fn service_trusting(idp: &TestIdentityProvider) -> Result<blocking::RecoveryService, Failure> {
    let trust = IssuerTrust::new().trust("contoso", idp.trusted_issuer()?);
    let signer = KeyDocumentSigner::new(SigningKey::generate()?);
    let kek = KeyEncryptionKey::generate()?;
    let service = blocking::RecoveryService::start(|| async move {
        RecoveryService::builder(config(), signer, trust, Arc::new(MemoryStore::new()), kek)
            .build()
            .await
    })?;
    Ok(service)
}

fn ctx() -> RequestContext {
    RequestContext {
        client_ip: "203.0.113.7".into(),
        client_type: "stand-in".into(),
    }
}

/// A fast Argon2 profile: examples only.
fn policy() -> ContainerPolicy {
    ContainerPolicy {
        recovery_enabled: true,
        argon2: Argon2Profile::INSECURE_TEST_ONLY,
        ..ContainerPolicy::default()
    }
}

impl StandIn {
    /// Starts it, with a current key for `contoso`.
    ///
    /// # Errors
    /// If the service does not start.
    pub fn start() -> Result<Self, Failure> {
        let idp = TestIdentityProvider::new("https://login.contoso.example")?;
        let service = service_trusting(&idp)?;
        service.add_current_key("contoso", ServicePrivateKey::generate_p256()?)?;
        Ok(StandIn { service, idp })
    }

    /// The key devices pin.
    pub fn key_document_key(&self) -> VerifyingKey {
        *self.service.key_document_key()
    }

    /// The current key document (`GET /keys/contoso`: 200 with the compact JWS text;
    /// a device reads it with `SignedKeyDocument::new(body)`).
    ///
    /// # Errors
    /// If the service fails.
    pub fn fetch_key_document(&self) -> Result<SignedKeyDocument, Failure> {
        Ok(self.service.key_document("contoso")?)
    }

    /// Registers a device (`POST /devices` with a `DeviceRegistration`'s JSON, 204):
    /// what the identity provider's provisioning or an administrator does.
    ///
    /// # Errors
    /// The service's refusal.
    pub fn provision_device(&self, binding: &Binding, key: VerifyingKey) -> Result<(), Refusal> {
        self.service
            .register_device(binding, key, &ctx())
            .map_err(|e| e.refusal())
    }

    /// Re-registers a device under a new key (`POST /devices` with `replace: true`).
    ///
    /// # Errors
    /// The service's refusal.
    pub fn reprovision_device(&self, binding: &Binding, key: VerifyingKey) -> Result<(), Refusal> {
        self.service
            .reregister_device(binding, key, &ctx())
            .map_err(|e| e.refusal())
    }

    /// Sends an envelope registration (`POST /envelopes`: 204, or a refusal).
    ///
    /// # Errors
    /// The service's refusal.
    pub fn send_registration(&self, json: &[u8]) -> Result<(), Refusal> {
        self.service
            .register_envelope_json(json, &ctx())
            .map_err(|e| e.refusal())
    }

    /// Sends a recovery request (`POST /recover`): the 200 response body, or the
    /// refusal's body.
    ///
    /// # Errors
    /// The refusal's JSON body.
    pub fn send_recovery(&self, json: &[u8]) -> Result<Vec<u8>, Vec<u8>> {
        self.service
            .handle_json(json, &ctx())
            .map_err(|e| e.refusal().to_json())
    }

    /// The identity provider's MFA assertion for `binding`, bound to `nonce`: the token a
    /// real device gets from its identity provider after MFA (for OpenID Connect, an ID
    /// token requested with this `nonce`); the recovery service never issues it.
    ///
    /// # Errors
    /// If signing fails.
    pub fn mfa(&self, binding: &Binding, nonce: &str) -> Result<String, Failure> {
        Ok(self
            .idp
            .mfa_assertion(AUDIENCE, binding, nonce, SystemClock.now())?)
    }

    /// A device of `alice` at `dir`, enrolled with PIN 482913 and registered.
    ///
    /// # Errors
    /// If any step fails.
    pub fn enrolled_device_in(&self, dir: &Path) -> Result<Container<FileStore>, Failure> {
        let trust = ServiceTrust {
            key_document_key: self.key_document_key(),
        };
        let c = Container::new(
            FileStore::new(dir.join("alice.container")),
            policy(),
            Some(trust),
        );
        let me = Binding::new("contoso", "alice@contoso.example", "LAPTOP-7F3K")?;
        let enrolment = c.enrol(&me, &Pin::new("482913"), Some(&self.fetch_key_document()?))?;
        self.provision_device(&me, enrolment.device_public_key)?;
        if let Some(reg) = c.pending_registration()? {
            self.send_registration(&reg.to_json())?;
            c.confirm_registration(reg.envelope().envelope_id())?;
        }
        Ok(c)
    }

    /// A stand-in service, a device of `alice` enrolled and registered with it (PIN
    /// 482913), and the directory its container is in.
    ///
    /// # Errors
    /// If any step fails.
    pub fn enrolled_device() -> Result<(Self, Container<FileStore>, tempfile::TempDir), Failure> {
        let stand_in = Self::start()?;
        let dir = tempfile::tempdir()?;
        let container = stand_in.enrolled_device_in(dir.path())?;
        Ok((stand_in, container, dir))
    }

    /// A blocking service with no keys (for the service guide), and a scratch directory.
    ///
    /// # Errors
    /// If it does not start.
    pub fn blocking_service() -> Result<(blocking::RecoveryService, tempfile::TempDir), Failure> {
        let idp = TestIdentityProvider::new("https://login.contoso.example")?;
        Ok((service_trusting(&idp)?, tempfile::tempdir()?))
    }

    /// A service for `contoso` and a device that has enrolled against it but is not yet
    /// registered (for the service guide's endpoints).
    ///
    /// # Errors
    /// If any step fails.
    pub fn service_and_device(
    ) -> Result<(blocking::RecoveryService, StandInDevice, tempfile::TempDir), Failure> {
        let stand_in = StandIn::start()?;
        let dir = tempfile::tempdir()?;
        let trust = ServiceTrust {
            key_document_key: stand_in.key_document_key(),
        };
        let container = Container::new(
            FileStore::new(dir.path().join("device")),
            policy(),
            Some(trust),
        );
        let binding = Binding::new("contoso", "alice@contoso.example", "LAPTOP-7F3K")?;
        let enrolment = container.enrol(
            &binding,
            &Pin::new("482913"),
            Some(&stand_in.fetch_key_document()?),
        )?;
        let device = StandInDevice {
            device_public_key: enrolment.device_public_key,
            container,
            binding,
            idp: stand_in.idp,
        };
        Ok((stand_in.service, device, dir))
    }

    /// A JWKS document shaped like Microsoft Entra ID's (RSA keys with `x5c`, `x5t` and
    /// `issuer`), for examples.
    pub fn entra_like_jwks() -> Vec<u8> {
        use rsa::pkcs8::DecodePrivateKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(include_str!(
            "../../test-vectors/keys/rsa2048-idp.pem"
        ));
        let cert: String = include_str!("../../test-vectors/keys/rsa2048-idp.crt.pem")
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let b64 = crate::codec::base64url::b64_encode;
        let (n, e) = match &key {
            Ok(k) => (b64(&k.n().to_bytes_be()), b64(&k.e().to_bytes_be())),
            Err(_) => (String::new(), String::new()),
        };
        serde_json::json!({"keys": [{
            "kty": "RSA", "use": "sig", "kid": "KQ2tAcrE7lBaVVGBmc5FobgdJo4",
            "x5t": "KQ2tAcrE7lBaVVGBmc5FobgdJo4", "n": n, "e": e, "x5c": [cert],
            "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
        }]})
        .to_string()
        .into_bytes()
    }
}

/// A device enrolled against a stand-in service, producing the messages it would send.
pub struct StandInDevice {
    device_public_key: VerifyingKey,
    container: Container<FileStore>,
    binding: Binding,
    idp: TestIdentityProvider,
}

impl StandInDevice {
    /// Its device registration, as the provisioning would send it.
    pub fn device_registration_json(&self) -> Vec<u8> {
        DeviceRegistration::new(&self.binding, self.device_public_key, false).to_json()
    }

    /// Its pending envelope registration.
    ///
    /// # Errors
    /// If there is none, or the container fails.
    pub fn envelope_registration_json(&self) -> Result<Vec<u8>, Failure> {
        Ok(self
            .container
            .pending_registration()?
            .ok_or("no pending registration")?
            .to_json())
    }

    /// A recovery request with a fresh MFA assertion.
    ///
    /// # Errors
    /// If the container fails.
    pub fn recovery_request_json(&self) -> Result<Vec<u8>, Failure> {
        let mut p = self.container.begin_recovery()?;
        let a =
            self.idp
                .mfa_assertion(AUDIENCE, &self.binding, p.mfa_nonce(), SystemClock.now())?;
        Ok(p.request(&a)?.to_json())
    }
}
