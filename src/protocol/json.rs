//! The messages between device and service are versioned, size-limited, canonical JSON:
//! binary fields are unpadded base64url; unknown fields, duplicate fields and any
//! non-canonical layout are refused, so `to_json(from_json(b)) == b` for every accepted
//! `b`.

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, JsonProblem};

/// The wire version this implementation speaks.
pub const WIRE_VERSION: u8 = 1;
/// The largest JSON message accepted; longer input is refused before parsing.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024;

/// Parses `bytes` as `T` and insists that they are exactly `T`'s canonical encoding.
pub(crate) fn from_canonical_json<T, W>(bytes: &[u8]) -> Result<T, DecodeError>
where
    W: for<'de> Deserialize<'de> + Serialize,
    T: TryFrom<W, Error = DecodeError>,
    for<'a> &'a T: Into<W>,
{
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(DecodeError::TooLong {
            max: MAX_MESSAGE_LEN,
        });
    }
    let wire: W = serde_json::from_slice(bytes).map_err(|e| DecodeError::BadJson {
        problem: match e.classify() {
            serde_json::error::Category::Eof => JsonProblem::Truncated,
            serde_json::error::Category::Data => JsonProblem::Shape,
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
                JsonProblem::Syntax
            }
        },
        line: e.line(),
        column: e.column(),
    })?;
    let value = T::try_from(wire)?;
    let canonical: W = (&value).into();
    if serde_json::to_vec(&canonical).ok().as_deref() != Some(bytes) {
        return Err(DecodeError::BadDocument {
            reason: "not in canonical form",
        });
    }
    Ok(value)
}

pub(crate) fn check_version(v: u8) -> Result<(), DecodeError> {
    if v == WIRE_VERSION {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedVersion(v))
    }
}
