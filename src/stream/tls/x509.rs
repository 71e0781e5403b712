//! Just enough DER to read a certificate's subject and issuer names.
//!
//! rpyc's `SSLAuthenticator` hands a service `ssl.getpeercert()`, whose
//! `subject` is a list of `(attribute, value)` pairs such as
//! `("commonName", "alice")`. This module turns a DER certificate into the
//! same pairs for [`PeerCertificate`](super::tls::PeerCertificate). It reads
//! only the outer structure of `tbsCertificate`, never trusts a length that
//! runs past its buffer, and gives up (returning nothing) on anything it
//! does not understand: the certificate was already verified by rustls, so
//! these names are for display and authorisation only.

/// One DER element: its tag and contents.
struct Element<'a> {
    tag: u8,
    body: &'a [u8],
}

/// Splits the first DER element off `data`; `None` on malformed input.
fn next<'a>(data: &mut &'a [u8]) -> Option<Element<'a>> {
    let (&tag, rest) = data.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        // Certificates are far below 4 GiB: more length bytes are garbage.
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (body, after) = rest.split_at(len);
    *data = after;
    Some(Element { tag, body })
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0] EXPLICIT Version` at the start of `tbsCertificate`.
const VERSION: u8 = 0xa0;

/// A distinguished name as `(attribute, value)` pairs, in certificate order.
pub(crate) type Name = Vec<(String, String)>;

/// The subject and issuer of a DER certificate; `None` when it cannot be
/// read.
pub(crate) fn names(der: &[u8]) -> Option<(Name, Name)> {
    let mut data = der;
    let cert = next(&mut data).filter(|e| e.tag == SEQUENCE)?;
    let mut cert_body = cert.body;
    let tbs = next(&mut cert_body).filter(|e| e.tag == SEQUENCE)?;
    let mut fields = tbs.body;
    // An optional version, then the serial number.
    if next(&mut fields)?.tag == VERSION {
        let _serial = next(&mut fields)?;
    }
    let _signature_algorithm = next(&mut fields)?;
    let issuer = next(&mut fields).filter(|e| e.tag == SEQUENCE)?;
    let _validity = next(&mut fields)?;
    let subject = next(&mut fields).filter(|e| e.tag == SEQUENCE)?;
    Some((name(subject.body)?, name(issuer.body)?))
}

/// A `Name`: a sequence of sets of `(OID, value)` sequences.
fn name(mut rdns: &[u8]) -> Option<Name> {
    let mut out = Vec::new();
    while !rdns.is_empty() {
        let set = next(&mut rdns).filter(|e| e.tag == SET)?;
        let mut atvs = set.body;
        while !atvs.is_empty() {
            let atv = next(&mut atvs).filter(|e| e.tag == SEQUENCE)?;
            let mut parts = atv.body;
            let oid = next(&mut parts).filter(|e| e.tag == OID)?;
            let value = next(&mut parts)?;
            out.push((attribute_name(oid.body), string_value(value.tag, value.body)));
        }
    }
    Some(out)
}

/// Python's `ssl` names for the common attributes; others as dotted OIDs.
fn attribute_name(oid: &[u8]) -> String {
    let known = match oid {
        [0x55, 0x04, 0x03] => "commonName",
        [0x55, 0x04, 0x04] => "surname",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x55, 0x04, 0x06] => "countryName",
        [0x55, 0x04, 0x07] => "localityName",
        [0x55, 0x04, 0x08] => "stateOrProvinceName",
        [0x55, 0x04, 0x09] => "streetAddress",
        [0x55, 0x04, 0x0a] => "organizationName",
        [0x55, 0x04, 0x0b] => "organizationalUnitName",
        [0x55, 0x04, 0x2a] => "givenName",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "domainComponent",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "userId",
        _ => return dotted(oid),
    };
    known.to_owned()
}

fn dotted(oid: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut n: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        n = (n << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() && i < oid.len() {
                let first = (n / 40).min(2);
                parts.push(first.to_string());
                parts.push((n - first * 40).to_string());
            } else {
                parts.push(n.to_string());
            }
            n = 0;
        }
    }
    parts.join(".")
}

/// A directory string's text: UTF-8, printable, IA5 and teletex strings
/// read as (lossy) UTF-8, BMP strings as UTF-16.
fn string_value(tag: u8, body: &[u8]) -> String {
    const BMP_STRING: u8 = 0x1e;
    if tag == BMP_STRING {
        let units: Vec<u16> = body.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        return String::from_utf16_lossy(&units);
    }
    String::from_utf8_lossy(body).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_gives_nothing() {
        assert!(names(b"").is_none());
        assert!(names(&[0x30, 0x85, 1, 2, 3, 4, 5]).is_none());
        assert!(names(&[0x30, 0x10, 0x30]).is_none());
        assert!(names(&[0x30, 0x82, 0xff]).is_none());
    }

    #[test]
    fn oid_names() {
        assert_eq!(attribute_name(&[0x55, 0x04, 0x03]), "commonName");
        assert_eq!(dotted(&[0x2b, 0x06, 0x01]), "1.3.6.1");
    }
}
