//! A tenant's versioned service keys: one current key (devices seal to it), older keys
//! that still open their envelopes, and retired keys whose envelopes get a clear error.

use crate::protocol::key_document::{KeyDocument, PublishedKey, PublishedStatus};
use crate::keys::{KeyId, ServicePrivateKey};

use super::error::ServiceError;

/// The lifecycle state of a key in a keyring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Devices seal to it; it opens.
    Current,
    /// It still opens; devices reseal away from it at their next sign-in.
    Active,
    /// Its private key is gone; its envelopes are refused with
    /// [`ServiceError::RetiredKey`].
    Retired,
}

struct Entry {
    version: u32,
    key_id: KeyId,
    state: KeyState,
    key: Option<ServicePrivateKey>,
}

/// One tenant's keys, by version.
pub struct TenantKeyring {
    tenant: String,
    entries: Vec<Entry>,
    serial: u64,
}

impl TenantKeyring {
    /// An empty keyring for `tenant`.
    pub fn new(tenant: impl Into<String>) -> Self {
        TenantKeyring {
            tenant: tenant.into(),
            entries: Vec::new(),
            serial: 0,
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Adds `key` as the new current key (the previous current key stays active) and
    /// returns its version. Re-adding a key already present changes nothing.
    pub fn add_current(&mut self, key: ServicePrivateKey) -> u32 {
        if let Some(e) = self.entries.iter().find(|e| e.key_id == key.key_id()) {
            return e.version;
        }
        for e in &mut self.entries {
            if e.state == KeyState::Current {
                e.state = KeyState::Active;
            }
        }
        let version = self
            .entries
            .iter()
            .map(|e| e.version)
            .max()
            .map_or(1, |v| v.saturating_add(1));
        self.entries.push(Entry {
            version,
            key_id: key.key_id(),
            state: KeyState::Current,
            key: Some(key),
        });
        self.serial = self.serial.saturating_add(1);
        version
    }

    /// Retires a key that is not current: its private key is dropped (and wiped).
    /// Returns whether a key was retired.
    pub fn retire(&mut self, key_id: KeyId) -> bool {
        match self
            .entries
            .iter_mut()
            .find(|e| e.key_id == key_id && e.state == KeyState::Active)
        {
            Some(e) => {
                e.state = KeyState::Retired;
                e.key = None;
                self.serial = self.serial.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// The state of a key, if this keyring ever had it.
    pub fn state(&self, key_id: KeyId) -> Option<KeyState> {
        self.entries
            .iter()
            .find(|e| e.key_id == key_id)
            .map(|e| e.state)
    }

    /// The version number of a key.
    pub fn version(&self, key_id: KeyId) -> Option<u32> {
        self.entries
            .iter()
            .find(|e| e.key_id == key_id)
            .map(|e| e.version)
    }

    /// The key that opens envelopes sealed to `key_id`.
    ///
    /// # Errors
    /// [`ServiceError::UnknownKey`] or [`ServiceError::RetiredKey`].
    pub fn opener(&self, key_id: KeyId) -> Result<&ServicePrivateKey, ServiceError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.key_id == key_id)
            .ok_or(ServiceError::UnknownKey)?;
        entry
            .key
            .as_ref()
            .ok_or(ServiceError::RetiredKey { key_id })
    }

    /// The key document listing the current and active keys, numbered by a serial that
    /// increases with every change to the keyring.
    pub fn key_document(&self, issuer: &str, issued_at: u64, lifetime: u64) -> KeyDocument {
        let keys = self
            .entries
            .iter()
            .filter_map(|e| {
                let status = match e.state {
                    KeyState::Current => PublishedStatus::Current,
                    KeyState::Active => PublishedStatus::Active,
                    KeyState::Retired => return None,
                };
                e.key.as_ref().map(|k| PublishedKey {
                    key: k.public_key().clone(),
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
