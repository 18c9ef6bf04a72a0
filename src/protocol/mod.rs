//! What crosses between device and service, both halves in one place: the signed key
//! document that tells a device which key to seal to, and the recovery request, its
//! response and the envelope registration, with the bytes each side signs or proves.

pub(crate) mod device;
pub(crate) mod json;
pub(crate) mod key_document;
pub(crate) mod refusal;
pub(crate) mod registration;
pub(crate) mod request;
pub(crate) mod response;
