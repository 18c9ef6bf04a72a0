//! A synchronous front for the service, for callers without an async runtime (a command
//! line tool, a test, a simple daemon): it owns a small tokio runtime on which the store
//! and every call run, and blocks the calling thread until each call is done. It may be
//! called from many threads at once. Do not call it from inside an async runtime; use
//! [`super::RecoveryService`] there.

use std::future::Future;
use std::sync::Arc;

use super::audit::RequestContext;
use super::error::ServiceError;
use super::issuers::IssuerTrust;
use super::keyring::KeyInfo;
use super::start::StartError;
use super::store::{ServiceStore, StorageFailure};
use crate::envelope::binding::Binding;
use crate::keys::{KeyId, ServicePrivateKey, VerifyingKey};
use crate::protocol::key_document::SignedKeyDocument;
use crate::protocol::registration::EnvelopeRegistration;
use crate::protocol::request::RecoveryRequest;
use crate::protocol::response::RecoveryResponse;

/// The recovery service behind blocking calls. See [`super::RecoveryService`] for what
/// each method does.
pub struct RecoveryService {
    runtime: tokio::runtime::Runtime,
    inner: Arc<super::RecoveryService>,
}

impl RecoveryService {
    /// Starts a runtime, then runs `build` on it: open the store there (SQL pools belong
    /// to the runtime that made them) and build the service.
    ///
    /// # Errors
    /// [`StartError`]: the runtime could not start, or `build` failed.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use pin_recovery::service::{blocking, IssuerTrust, KeyEncryptionKey, MemoryStore, MfaPolicy,
    ///     RecoveryService, ServiceConfig};
    /// use pin_recovery::{KeyDocumentSigner, ServicePrivateKey, SigningKey};
    /// # let idp = pin_recovery::testkit::TestIdentityProvider::new("https://idp.contoso.example")?;
    /// let trust = IssuerTrust::new().trust("contoso", idp.trusted_issuer()?); // see IssuerTrust
    ///
    /// let config = ServiceConfig {
    ///     issuer: "https://recovery.example".into(),
    ///     mfa: MfaPolicy::new("https://recovery.example"),
    ///     key_document_lifetime: 86_400,
    /// };
    /// let signer = KeyDocumentSigner::new(SigningKey::generate()?);
    /// let kek = KeyEncryptionKey::generate()?;
    /// let service = blocking::RecoveryService::start(|| async {
    ///     let store = Arc::new(MemoryStore::new()); // a deployment opens a SqliteStore here
    ///     RecoveryService::builder(config, signer, trust, store, kek).build().await
    /// })?;
    /// assert_eq!(service.add_current_key("contoso", ServicePrivateKey::generate_p256()?)?, 1);
    /// let doc = service.key_document("contoso")?;
    /// # let _ = doc;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start<F, Fut>(build: F) -> Result<Self, StartError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<super::RecoveryService, StartError>>,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pin-recovery-service")
            .enable_all()
            .build()
            .map_err(|e| {
                StartError::Store(StorageFailure::with_source("start the service runtime", e))
            })?;
        let inner = runtime.block_on(build())?;
        Ok(RecoveryService {
            runtime,
            inner: Arc::new(inner),
        })
    }

    /// The async service (to share with async code running on [`Self::block_on`]).
    pub fn inner(&self) -> &Arc<super::RecoveryService> {
        &self.inner
    }

    /// Runs `future` on the service's runtime and waits for it.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// See [`super::RecoveryService::handle`].
    ///
    /// # Errors
    /// As there.
    pub fn handle(
        &self,
        request: &RecoveryRequest,
        ctx: &RequestContext,
    ) -> Result<RecoveryResponse, ServiceError> {
        self.block_on(self.inner.handle(request, ctx))
    }

    /// See [`super::RecoveryService::handle_json`].
    ///
    /// # Errors
    /// As there.
    pub fn handle_json(
        &self,
        request: &[u8],
        ctx: &RequestContext,
    ) -> Result<Vec<u8>, ServiceError> {
        self.block_on(self.inner.handle_json(request, ctx))
    }

    /// See [`super::RecoveryService::register_envelope`].
    ///
    /// # Errors
    /// As there.
    pub fn register_envelope(
        &self,
        registration: &EnvelopeRegistration,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        self.block_on(self.inner.register_envelope(registration, ctx))
    }

    /// See [`super::RecoveryService::register_envelope_json`].
    ///
    /// # Errors
    /// As there.
    pub fn register_envelope_json(
        &self,
        registration: &[u8],
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        self.block_on(self.inner.register_envelope_json(registration, ctx))
    }

    /// See [`super::RecoveryService::register_device`].
    ///
    /// # Errors
    /// As there.
    pub fn register_device(
        &self,
        binding: &Binding,
        key: VerifyingKey,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        self.block_on(self.inner.register_device(binding, key, ctx))
    }

    /// See [`super::RecoveryService::reregister_device`].
    ///
    /// # Errors
    /// As there.
    pub fn reregister_device(
        &self,
        binding: &Binding,
        key: VerifyingKey,
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        self.block_on(self.inner.reregister_device(binding, key, ctx))
    }

    /// See [`super::RecoveryService::register_device_json`].
    ///
    /// # Errors
    /// As there.
    pub fn register_device_json(
        &self,
        registration: &[u8],
        ctx: &RequestContext,
    ) -> Result<(), ServiceError> {
        self.block_on(self.inner.register_device_json(registration, ctx))
    }

    /// See [`super::RecoveryService::add_current_key`].
    ///
    /// # Errors
    /// As there.
    pub fn add_current_key(
        &self,
        tenant: &str,
        key: ServicePrivateKey,
    ) -> Result<u32, ServiceError> {
        self.block_on(self.inner.add_current_key(tenant, key))
    }

    /// See [`super::RecoveryService::retire_key`].
    ///
    /// # Errors
    /// As there.
    pub fn retire_key(&self, tenant: &str, key_id: KeyId) -> Result<bool, ServiceError> {
        self.block_on(self.inner.retire_key(tenant, key_id))
    }

    /// See [`super::RecoveryService::keys`].
    ///
    /// # Errors
    /// As there.
    pub fn keys(&self, tenant: &str) -> Result<Vec<KeyInfo>, ServiceError> {
        self.block_on(self.inner.keys(tenant))
    }

    /// See [`super::RecoveryService::key_document`].
    ///
    /// # Errors
    /// As there.
    pub fn key_document(&self, tenant: &str) -> Result<SignedKeyDocument, ServiceError> {
        self.block_on(self.inner.key_document(tenant))
    }

    /// See [`super::RecoveryService::purge`].
    ///
    /// # Errors
    /// As there.
    pub fn purge(&self) -> Result<u64, ServiceError> {
        self.block_on(self.inner.purge())
    }

    /// See [`super::RecoveryService::key_document_key`].
    pub fn key_document_key(&self) -> &VerifyingKey {
        self.inner.key_document_key()
    }

    /// See [`super::RecoveryService::replace_issuer_trust`].
    ///
    /// # Errors
    /// As there.
    pub fn replace_issuer_trust(&self, trust: IssuerTrust) -> Result<(), ServiceError> {
        self.inner.replace_issuer_trust(trust)
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ServiceStore> {
        self.inner.store()
    }

    /// See [`super::RecoveryService::audit_failures`].
    pub fn audit_failures(&self) -> u64 {
        self.inner.audit_failures()
    }

    /// See [`super::RecoveryService::mirror_failures`].
    pub fn mirror_failures(&self) -> u64 {
        self.inner.mirror_failures()
    }

    /// See [`super::RecoveryService::notifier_failures`].
    pub fn notifier_failures(&self) -> u64 {
        self.inner.notifier_failures()
    }
}
