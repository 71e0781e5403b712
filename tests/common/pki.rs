//! Certificates made at test time (rcgen): a CA, a server certificate for
//! `localhost` / 127.0.0.1, a client certificate (CN `alice`), and the bad
//! ones the error tests need: expired, for another host, and a chain from a
//! CA nobody trusts. Written as PEM files into a [`TempDir`] that is removed
//! with the `Pki`; no key ever leaves the test run.

use std::path::PathBuf;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};

use super::TempDir;

/// A certificate and key file pair.
#[derive(Debug, Clone)]
pub struct Pair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Every certificate the TLS tests use.
pub struct Pki {
    pub dir: TempDir,
    /// The trusted CA (PEM).
    pub ca: PathBuf,
    /// localhost + 127.0.0.1, signed by the CA.
    pub server: Pair,
    /// CN=alice, O=rpyc-rs tests, signed by the CA.
    pub client: Pair,
    /// localhost + 127.0.0.1, signed by the CA, expired in 2020.
    pub expired: Pair,
    /// other.example only, signed by the CA.
    pub wrong_host: Pair,
    /// A second CA that nobody trusts.
    pub rogue_ca: PathBuf,
    /// localhost + 127.0.0.1, signed by the rogue CA.
    pub rogue_server: Pair,
    /// CN=mallory, signed by the rogue CA.
    pub rogue_client: Pair,
    /// localhost + 127.0.0.1, self-signed with CA:TRUE (what `openssl req
    /// -x509` makes), to be trusted as its own CA.
    pub self_signed: Pair,
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str, dir: &TempDir, file: &str) -> (Ca, PathBuf) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let cert = params.self_signed(&key).expect("CA cert");
    let path = dir.join(file);
    std::fs::write(&path, cert.pem()).expect("write CA");
    (Ca { issuer: Issuer::new(params, key) }, path)
}

fn leaf(ca: &Ca, dir: &TempDir, name: &str, cn: &str, sans: &[&str], client: bool, expired: bool) -> Pair {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
        .expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.distinguished_name.push(DnType::OrganizationName, "rpyc-rs tests");
    params.extended_key_usages =
        vec![if client { ExtendedKeyUsagePurpose::ClientAuth } else { ExtendedKeyUsagePurpose::ServerAuth }];
    if expired {
        params.not_before = date_time_ymd(2019, 1, 1);
        params.not_after = date_time_ymd(2020, 1, 1);
    }
    let cert = params.signed_by(&key, &ca.issuer).expect("sign leaf");
    let pair = Pair { cert: dir.join(&format!("{name}.pem")), key: dir.join(&format!("{name}.key")) };
    std::fs::write(&pair.cert, cert.pem()).expect("write cert");
    std::fs::write(&pair.key, key.serialize_pem()).expect("write key");
    pair
}

fn self_signed(dir: &TempDir) -> Pair {
    let key = KeyPair::generate().expect("key");
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = params.self_signed(&key).expect("self-signed cert");
    let pair = Pair { cert: dir.join("self-signed.pem"), key: dir.join("self-signed.key") };
    std::fs::write(&pair.cert, cert.pem()).expect("write cert");
    std::fs::write(&pair.key, key.serialize_pem()).expect("write key");
    pair
}

impl Pki {
    /// Makes everything in a fresh temporary directory.
    pub fn new() -> Pki {
        let dir = TempDir::new();
        let (good, ca_path) = ca("rpyc-rs test CA", &dir, "ca.pem");
        let (rogue, rogue_path) = ca("rogue CA", &dir, "rogue-ca.pem");
        let here = ["localhost", "127.0.0.1"];
        Pki {
            server: leaf(&good, &dir, "server", "localhost", &here, false, false),
            client: leaf(&good, &dir, "client", "alice", &[], true, false),
            expired: leaf(&good, &dir, "expired", "localhost", &here, false, true),
            wrong_host: leaf(&good, &dir, "wrong-host", "other.example", &["other.example"], false, false),
            rogue_server: leaf(&rogue, &dir, "rogue-server", "localhost", &here, false, false),
            rogue_client: leaf(&rogue, &dir, "rogue-client", "mallory", &[], true, false),
            self_signed: self_signed(&dir),
            ca: ca_path,
            rogue_ca: rogue_path,
            dir,
        }
    }
}
