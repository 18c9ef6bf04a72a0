//! Bytes in, values out: the binary reader and writers every format here uses, canonical
//! unpadded base64url, and lowercase hex ids. Nothing in this layer knows a key.

pub(crate) mod base64url;
pub(crate) mod hex_id;
mod reader;

pub(crate) use reader::{put_vec16, put_vec8, text, Reader};
