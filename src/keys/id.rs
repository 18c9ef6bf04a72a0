use crate::codec::hex_id::hex_id;
use crate::crypto::provider::provider;

hex_id!(
    /// A key id: the first 16 bytes of SHA-256 over the public key's
    /// SubjectPublicKeyInfo DER. Written in every envelope so the service can pick the
    /// key; a hint, never a substitute for the cryptographic check.
    KeyId,
    "key id"
);

impl KeyId {
    /// The key id of a SubjectPublicKeyInfo DER document.
    pub fn of_spki_der(spki_der: &[u8]) -> Self {
        let digest = provider().sha256(&[spki_der]);
        let mut id = [0u8; Self::LEN];
        id.copy_from_slice(&digest[..Self::LEN]);
        KeyId(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_canonical_lowercase_hex() {
        let id = KeyId::from_bytes([0xab; 16]);
        let s = id.to_string();
        assert_eq!(s, "ab".repeat(16));
        assert_eq!(s.parse::<KeyId>().unwrap(), id);
        assert!(s.to_uppercase().parse::<KeyId>().is_err());
        assert!(s[..30].parse::<KeyId>().is_err());
        assert!(format!("{s}00").parse::<KeyId>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), id);
    }
}
