//! Tenant keyrings as the service uses them: read from the store, private keys unwrapped
//! with the key-encryption key, cached per tenant; key documents are built from them.
//! The store stays the authority: a release commits only if its key is still not
//! retired there, so a replica's cache can lag without letting a retired key open.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::error::ServiceError;
use super::kek::KeyEncryptionKey;
use super::store::{KeyState, StoredKeyring};
use crate::keys::{KeyId, ServicePrivateKey, ServicePublicKey};
use crate::protocol::key_document::{KeyDocument, PublishedKey, PublishedStatus};

/// A key of a tenant, as an administrator sees it.
///
/// # Examples
/// ```
/// use pin_recovery::service::KeyState;
/// use pin_recovery::ServicePrivateKey;
/// # let (service, _dir) = pin_recovery::testkit::StandIn::blocking_service()?;
///
/// // A rotation: a new current key, the old one active until devices reseal, then retired.
/// assert_eq!(service.add_current_key("contoso", ServicePrivateKey::generate_p256()?)?, 1);
/// assert_eq!(service.add_current_key("contoso", ServicePrivateKey::generate_p256()?)?, 2);
/// let keys = service.keys("contoso")?;
/// let states: Vec<_> = keys.iter().map(|k| (k.version, k.state)).collect();
/// assert_eq!(states, [(1, KeyState::Active), (2, KeyState::Current)]);
/// assert!(service.retire_key("contoso", keys[0].key_id)?);
/// assert_eq!(service.keys("contoso")?[0].state, KeyState::Retired);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its version, from 1.
    pub version: u32,
    /// Its key id.
    pub key_id: KeyId,
    /// Current, active or retired.
    pub state: KeyState,
}

struct LoadedKey {
    info: KeyInfo,
    public: ServicePublicKey,
    private: Option<Arc<ServicePrivateKey>>,
}

/// Why a stored keyring could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UnreadableKey {
    pub(crate) key_id: KeyId,
    pub(crate) reason: &'static str,
}

/// One tenant's keys with their private halves unwrapped.
pub(crate) struct LoadedKeyring {
    tenant: String,
    serial: u64,
    keys: Vec<LoadedKey>,
}

impl LoadedKeyring {
    /// Unwraps every private key of `stored`; any key that does not unwrap or import is
    /// an error (nothing is half loaded).
    pub(crate) fn load(
        stored: StoredKeyring,
        kek: &KeyEncryptionKey,
    ) -> Result<Self, UnreadableKey> {
        let mut keys = Vec::with_capacity(stored.keys.len());
        for k in stored.keys {
            let unreadable = |reason| UnreadableKey {
                key_id: k.key_id,
                reason,
            };
            let public = ServicePublicKey::from_spki_der(&k.public_spki)
                .map_err(|_| unreadable("its public key does not import"))?;
            if public.key_id() != k.key_id {
                return Err(unreadable("its key id is not its public key's"));
            }
            let private = match &k.wrapped {
                None => None,
                Some(w) => {
                    let der = kek.unwrap(&stored.tenant, k.key_id, w).map_err(|_| {
                        unreadable("it does not unwrap with this key-encryption key")
                    })?;
                    let key = ServicePrivateKey::from_pkcs8_der(&der)
                        .map_err(|_| unreadable("its private key does not import"))?;
                    if key.key_id() != k.key_id {
                        return Err(unreadable("its private key is not its public key's"));
                    }
                    Some(Arc::new(key))
                }
            };
            keys.push(LoadedKey {
                info: KeyInfo {
                    version: k.version,
                    key_id: k.key_id,
                    state: k.state,
                },
                public,
                private,
            });
        }
        Ok(LoadedKeyring {
            tenant: stored.tenant,
            serial: stored.serial,
            keys,
        })
    }

    pub(crate) fn infos(&self) -> Vec<KeyInfo> {
        self.keys.iter().map(|k| k.info.clone()).collect()
    }

    /// Whether the keyring has ever had `key_id`.
    pub(crate) fn has(&self, key_id: KeyId) -> bool {
        self.keys.iter().any(|k| k.info.key_id == key_id)
    }

    /// The key that opens envelopes sealed to `key_id`.
    ///
    /// # Errors
    /// [`ServiceError::UnknownKey`] or [`ServiceError::RetiredKey`].
    pub(crate) fn opener(&self, key_id: KeyId) -> Result<Arc<ServicePrivateKey>, ServiceError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.info.key_id == key_id)
            .ok_or(ServiceError::UnknownKey)?;
        key.private
            .clone()
            .filter(|_| key.info.state != KeyState::Retired)
            .ok_or(ServiceError::RetiredKey { key_id })
    }

    /// The key document listing the current and active keys.
    pub(crate) fn key_document(&self, issuer: &str, issued_at: u64, lifetime: u64) -> KeyDocument {
        let keys = self
            .keys
            .iter()
            .filter_map(|k| {
                let status = match k.info.state {
                    KeyState::Current => PublishedStatus::Current,
                    KeyState::Active => PublishedStatus::Active,
                    KeyState::Retired => return None,
                };
                Some(PublishedKey {
                    key: k.public.clone(),
                    status,
                })
            })
            .collect();
        KeyDocument {
            issuer: issuer.to_owned(),
            tenant: self.tenant.clone(),
            serial: self.serial,
            issued_at,
            expires_at: issued_at.saturating_add(lifetime),
            keys,
        }
    }
}

/// Loaded keyrings by tenant. A lock is held only to read or swap an `Arc`, never
/// across I/O.
#[derive(Default)]
pub(crate) struct KeyringCache(RwLock<HashMap<String, Arc<LoadedKeyring>>>);

impl KeyringCache {
    pub(crate) fn get(&self, tenant: &str) -> Option<Arc<LoadedKeyring>> {
        self.0.read().ok()?.get(tenant).cloned()
    }

    /// Keeps `ring` unless a newer one (by serial) is already cached.
    pub(crate) fn put(&self, tenant: &str, ring: Arc<LoadedKeyring>) {
        if let Ok(mut map) = self.0.write() {
            match map.get(tenant) {
                Some(old) if old.serial > ring.serial => {}
                _ => {
                    map.insert(tenant.to_owned(), ring);
                }
            }
        }
    }
}
