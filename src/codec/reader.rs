//! The one place where untrusted bytes are read: a borrowed reader whose every access is
//! bounds-checked and returns a typed error, and the matching writer helpers.
#![warn(clippy::indexing_slicing)]

use crate::error::DecodeError;

/// Reads a byte slice front to back. Never panics, never allocates.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A structure's 4-byte magic and its version byte, refusing any other.
    pub(crate) fn magic_and_version(
        &mut self,
        magic: [u8; 4],
        version: u8,
    ) -> Result<(), DecodeError> {
        if self.array::<4>()? != magic {
            return Err(DecodeError::BadMagic);
        }
        match self.u8()? {
            v if v == version => Ok(()),
            other => Err(DecodeError::UnsupportedVersion(other)),
        }
    }

    /// A u8-length-prefixed byte string whose length must lie in `min..=max`.
    pub(crate) fn vec8(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u8()?);
        check_len(field, len, min, max)?;
        self.take(len)
    }

    /// A u16-length-prefixed byte string whose length must lie in `min..=max`. The
    /// length is checked before anything is read, so `max` bounds every allocation a
    /// caller makes from the result.
    pub(crate) fn vec16(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u16()?);
        check_len(field, len, min, max)?;
        self.take(len)
    }

    /// The bytes read so far.
    pub(crate) fn consumed(&self) -> &'a [u8] {
        self.buf.get(..self.pos).unwrap_or_default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Succeeds only if every byte was read.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

fn check_len(field: &'static str, len: usize, min: usize, max: usize) -> Result<(), DecodeError> {
    if (min..=max).contains(&len) {
        Ok(())
    } else {
        Err(DecodeError::BadLength { field, found: len })
    }
}

/// Appends a u8-length-prefixed string.
///
/// # Errors
/// [`DecodeError::TooLong`] (and nothing appended) if `bytes` is longer than 255.
pub(crate) fn put_vec8(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), DecodeError> {
    let len = u8::try_from(bytes.len()).map_err(|_| DecodeError::TooLong {
        max: usize::from(u8::MAX),
    })?;
    out.push(len);
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends a u16-length-prefixed string.
///
/// # Errors
/// [`DecodeError::TooLong`] (and nothing appended) if `bytes` is longer than 65535.
pub(crate) fn put_vec16(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), DecodeError> {
    let len = u16::try_from(bytes.len()).map_err(|_| DecodeError::TooLong {
        max: usize::from(u16::MAX),
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Reads the whole of `input` as UTF-8 text without control characters.
pub(crate) fn text<'a>(field: &'static str, input: &'a [u8]) -> Result<&'a str, DecodeError> {
    let s = core::str::from_utf8(input).map_err(|_| DecodeError::BadText { field })?;
    if s.chars().any(char::is_control) {
        return Err(DecodeError::BadText { field });
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_truncated_reads() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert_eq!(r.u16(), Err(DecodeError::Truncated));
        assert_eq!(r.u8().unwrap(), 3);
        assert!(r.finish().is_ok());
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut r = Reader::new(&[0, 0]);
        r.u8().unwrap();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes));
    }

    #[test]
    fn rejects_lengths_outside_the_field_range_before_reading() {
        let mut r = Reader::new(&[0, 5, 1, 2, 3, 4, 5]);
        assert_eq!(
            r.vec16("f", 0, 4),
            Err(DecodeError::BadLength {
                field: "f",
                found: 5
            })
        );
        let mut r = Reader::new(&[0]);
        assert_eq!(
            r.vec8("f", 1, 4),
            Err(DecodeError::BadLength {
                field: "f",
                found: 0
            })
        );
        let mut r = Reader::new(&[0xff, 0xff]);
        assert_eq!(r.vec16("f", 0, usize::MAX), Err(DecodeError::Truncated));
    }

    #[test]
    fn can_round_trip_length_prefixed_strings() {
        let mut out = Vec::new();
        put_vec8(&mut out, b"abc").unwrap();
        put_vec16(&mut out, b"de").unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.vec8("a", 1, 3).unwrap(), b"abc");
        assert_eq!(r.vec16("b", 1, 3).unwrap(), b"de");
        assert_eq!(r.consumed(), &out[..]);
        r.finish().unwrap();
    }

    #[test]
    fn rejects_overlong_strings_on_encode() {
        let mut out = vec![7];
        assert_eq!(
            put_vec8(&mut out, &[0; 256]),
            Err(DecodeError::TooLong { max: 255 })
        );
        assert_eq!(
            put_vec16(&mut out, &vec![0; 65_536]),
            Err(DecodeError::TooLong { max: 65_535 })
        );
        assert_eq!(out, vec![7], "nothing appended");
    }

    #[test]
    fn text_refuses_invalid_utf8_and_controls() {
        assert!(text("t", b"ok").is_ok());
        assert!(text("t", b"\xff").is_err());
        assert!(text("t", b"a\nb").is_err());
        assert!(text("t", "a\u{85}b".as_bytes()).is_err());
    }
}
