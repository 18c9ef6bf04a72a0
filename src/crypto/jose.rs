//! jsonwebtoken's process-wide crypto provider. jsonwebtoken 10 picks its backend from
//! its crate features and panics on first use when a build enables both of them (this
//! crate enables RustCrypto's; an application beside it may enable aws-lc's). So the one
//! that matches this build's provider is installed before this crate first signs or
//! verifies a token. If the application installed one first, that one stays: any
//! complete provider signs and verifies the same tokens.

use std::sync::Once;

/// Installs the provider once; every path into jsonwebtoken calls it first.
pub(crate) fn ensure_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(feature = "aws-lc")]
        let chosen = &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
        #[cfg(not(feature = "aws-lc"))]
        let chosen = &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER;
        // An error means one is installed already, which is fine (see above).
        let _ = chosen.install_default();
    });
}
