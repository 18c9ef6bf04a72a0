//! Guides for newcomers: how to write a device and how to write a recovery service with
//! this crate, from the docs alone. Their code compiles and runs as part of the tests.

#[doc = include_str!("../docs/guides/device.md")]
pub mod device {}

#[doc = include_str!("../docs/guides/service.md")]
pub mod service {}
