//! TLS set-up shared by the MP client and the gRPC server.

use secrecy::{ExposeSecret, SecretSlice};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::{ConfigError, TlsFiles};

/// Makes ring the process's rustls crypto provider (idempotent).
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The PEM material for serving gRPC over TLS.
#[derive(Debug, Clone)]
pub struct GrpcTls {
    pub cert_pem: Vec<u8>,
    pub key_pem: SecretSlice<u8>,
    /// Set: clients must present a certificate signed by this CA.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl GrpcTls {
    /// Reads the files `GRPC_TLS_*` name; an unreadable one is a configuration error.
    pub fn read(files: &TlsFiles) -> Result<Self, ConfigError> {
        Ok(Self {
            cert_pem: read_pem("GRPC_TLS_CERT", &files.cert)?,
            key_pem: read_pem("GRPC_TLS_KEY", &files.key)?.into(),
            client_ca_pem: files
                .client_ca
                .as_deref()
                .map(|ca| read_pem("GRPC_TLS_CLIENT_CA", ca))
                .transpose()?,
        })
    }

    /// The server side: this identity, and client certificates required when a CA is set.
    pub fn server_config(&self) -> ServerTlsConfig {
        install_crypto_provider();
        let identity = Identity::from_pem(&self.cert_pem, self.key_pem.expose_secret());
        let config = ServerTlsConfig::new().identity(identity);
        match &self.client_ca_pem {
            Some(ca) => config.client_ca_root(Certificate::from_pem(ca)),
            None => config,
        }
    }
}

fn read_pem(variable: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    let pem = std::fs::read(path).map_err(|e| ConfigError {
        variable,
        reason: format!("cannot read {path:?}: {e}"),
    })?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(ConfigError {
            variable,
            reason: format!("{path:?} is not a PEM file"),
        });
    }
    Ok(pem)
}
