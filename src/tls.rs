//! TLS set-up shared by the MP client and the gRPC server.

/// Makes ring the process's rustls crypto provider (idempotent).
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
