//! Fixed-size public identifiers shown and parsed as lowercase hex.

/// Defines a 16-byte id type that displays as 32 lowercase hex digits, parses only that
/// form, and serializes as that string.
macro_rules! hex_id {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $name::LEN]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = 16;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
                $name(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; Self::LEN] {
                &self.0
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(&$crate::codec::base64url::hex(&self.0))
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl core::str::FromStr for $name {
            type Err = $crate::error::DecodeError;
            /// Parses exactly 32 lowercase hex digits.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut id = [0u8; Self::LEN];
                if s.len() != 2 * Self::LEN {
                    return Err($crate::error::DecodeError::BadLength { field: $what, found: s.len() });
                }
                base16ct::lower::decode(s, &mut id)
                    .map_err(|_| $crate::error::DecodeError::BadText { field: $what })?;
                Ok($name(id))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use hex_id;
