//! Canonical text encodings: unpadded base64url that refuses every non-canonical form,
//! and lowercase hex for ids.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::error::DecodeError;

/// Unpadded base64url. Decoding refuses padding, whitespace and non-zero trailing bits,
/// so each byte string has exactly one accepted text form.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Decodes at most `max` bytes; longer text is refused before decoding.
pub(crate) fn b64_decode(text: &str, max: usize) -> Result<Vec<u8>, DecodeError> {
    if text.len() > base64::encoded_len(max, false).unwrap_or(usize::MAX) {
        return Err(DecodeError::TooLong { max });
    }
    B64.decode(text).map_err(|_| DecodeError::BadBase64)
}

/// Decodes exactly `N` bytes.
pub(crate) fn b64_decode_array<const N: usize>(text: &str) -> Result<[u8; N], DecodeError> {
    let v = b64_decode(text, N)?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| DecodeError::BadLength {
        field: "base64 value",
        found: v.len(),
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_padding_whitespace_and_trailing_bits() {
        assert_eq!(b64_encode(b"ab"), "YWI");
        assert_eq!(b64_decode("YWI", 8).unwrap(), b"ab");
        assert_eq!(b64_decode("YWI=", 8), Err(DecodeError::BadBase64));
        assert_eq!(b64_decode("YW I", 8), Err(DecodeError::BadBase64));
        // 'J' sets trailing bits that 'I' leaves zero.
        assert_eq!(b64_decode("YWJ", 8), Err(DecodeError::BadBase64));
        assert_eq!(b64_decode("YW+", 8), Err(DecodeError::BadBase64));
    }

    #[test]
    fn refuses_text_longer_than_the_bound_before_decoding() {
        assert_eq!(
            b64_decode("AAAAAAAA", 3),
            Err(DecodeError::TooLong { max: 3 })
        );
        assert!(b64_decode_array::<2>("AAAA").is_err());
        assert_eq!(b64_decode_array::<3>("AAAA").unwrap(), [0, 0, 0]);
    }
}
