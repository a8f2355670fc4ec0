//! Test certificates made at run time, and rustls client configurations that trust them.
//!
//! Each private Dovecot gets its own CA and a leaf for `localhost` and `127.0.0.1`, so a test
//! can prove both sides of certificate checking: a client that trusts the CA connects, one that
//! does not is refused. Nothing is read from or written to the system trust store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName};

/// Paths of a generated CA and of the server certificate it signed (all PEM).
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate: give it to clients that should trust the server.
    pub ca_cert: PathBuf,
    /// The server (leaf) certificate, valid for `localhost` and `127.0.0.1`.
    pub server_cert: PathBuf,
    /// The server's private key (PKCS#8).
    pub server_key: PathBuf,
}

/// Makes a CA and a leaf certificate (`basicConstraints CA:FALSE`, as rustls/webpki insist)
/// for `localhost` and `127.0.0.1`, and writes them as PEM files into `dir`.
pub fn generate_pki(dir: &Path) -> Result<TestPki> {
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    let mut ca_name = DistinguishedName::new();
    ca_name.push(DnType::CommonName, "Mailferry test CA");
    ca_params.distinguished_name = ca_name;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("self-signing the CA")?;

    let leaf_key = KeyPair::generate().context("generating the server key")?;
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let mut leaf_name = DistinguishedName::new();
    leaf_name.push(DnType::CommonName, "localhost");
    leaf_params.distinguished_name = leaf_name;
    leaf_params.is_ca = IsCa::ExplicitNoCa;
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf_params
        .signed_by(&leaf_key, &ca_cert, &ca_key)
        .context("signing the server certificate")?;

    let pki = TestPki {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    };
    std::fs::write(&pki.ca_cert, ca_cert.pem())?;
    std::fs::write(&pki.server_cert, leaf_cert.pem())?;
    std::fs::write(&pki.server_key, leaf_key.serialize_pem())?;
    Ok(pki)
}

/// A rustls client configuration that trusts exactly the CA(s) in the PEM file `ca_pem`.
pub fn client_config_trusting(ca_pem: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(ca_pem).with_context(|| format!("reading {}", ca_pem.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert: CertificateDer<'static> = cert.context("parsing the CA PEM")?;
        roots.add(cert).context("adding the CA to the root store")?;
    }
    if roots.is_empty() {
        return Err(anyhow!("{} holds no certificate", ca_pem.display()));
    }
    client_config_with_roots(roots)
}

/// A rustls client configuration with an empty trust store: every server certificate is
/// refused. Tests use it to prove that verification is really on.
pub fn client_config_trusting_nothing() -> Result<Arc<rustls::ClientConfig>> {
    client_config_with_roots(rustls::RootCertStore::empty())
}

fn client_config_with_roots(roots: rustls::RootCertStore) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The server name to verify when connecting to a test server on `host`.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_string()).map_err(|e| anyhow!("bad server name {host:?}: {e}"))
}
