//! The cryptography under everything: the provider seam (ring + p256, or aws-lc) with
//! its primitives, HPKE (RFC 9180) on top of it with DHKEM(P-256) or the X-Wing hybrid
//! KEM, the suite registry, the recovery secret
//! type, and the probes that let tests check the order of operations on open.

pub(crate) mod hpke;
pub(crate) mod jose;
pub(crate) mod probe;
pub(crate) mod provider;
pub(crate) mod secret;
pub(crate) mod suite;
pub(crate) mod xwing;
