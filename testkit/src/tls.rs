//! Certificates made for a test with rcgen: a CA, servers' and clients'
//! certificates signed by it.

use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use slipway_server::config::ServeConfig;
use tempfile::TempDir;

/// A certificate authority made for one test.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// Whether a leaf certificate is valid now or expired.
#[derive(Clone, Copy, PartialEq)]
pub enum Validity {
    Current,
    Expired,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let certificate = params.self_signed(&key).expect("CA certificate");
        Ca {
            pem: certificate.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `names` signed by this CA, and its key (both PEM).
    pub fn leaf(
        &self,
        names: &[&str],
        purposes: &[ExtendedKeyUsagePurpose],
        validity: Validity,
    ) -> (String, String) {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].clone());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = purposes.to_vec();
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let certificate = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        (certificate.pem(), key.serialize_pem())
    }

    /// A client certificate and its key.
    pub fn client(&self, validity: Validity) -> (String, String) {
        self.leaf(
            &["test-client"],
            &[ExtendedKeyUsagePurpose::ClientAuth],
            validity,
        )
    }
}

/// A server's certificate files, for 127.0.0.1, signed by `ca`. The
/// certificate serves as a client's too: a node presents it to the nodes it
/// forwards calls to.
pub struct ServerFiles {
    _dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl ServerFiles {
    pub fn new(ca: &Ca) -> ServerFiles {
        let dir = TempDir::new().expect("certificate dir");
        let (cert, key) = ca.leaf(
            &["127.0.0.1", "localhost"],
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
            Validity::Current,
        );
        let write = |name: &str, contents: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).expect("write a PEM file");
            path
        };
        ServerFiles {
            cert: write("server.pem", &cert),
            key: write("server.key", &key),
            ca: write("ca.pem", &ca.pem),
            _dir: dir,
        }
    }

    /// TLS on the server (and mutual TLS with `mutual`).
    pub fn apply(&self, config: &mut ServeConfig, mutual: bool) {
        config.transport.tls_cert = Some(self.cert.clone());
        config.transport.tls_key = Some(self.key.clone());
        if mutual {
            config.transport.tls_client_ca = Some(self.ca.clone());
        }
    }
}
