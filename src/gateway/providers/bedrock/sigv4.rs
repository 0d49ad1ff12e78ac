//! AWS Signature Version 4 for header-signed requests (providers.md section 5.1), written as a
//! pure function of the request, the credentials and the clock so it can be checked against
//! AWS's published test suite.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::OffsetDateTime;

pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// Temporary credentials' token, sent and signed as `x-amz-security-token`.
    pub session_token: Option<&'a str>,
}

pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// Signs one request. `headers` are the headers to send and sign besides `host` (taken from
/// the URL) and the `x-amz-*` ones added here. Returns the headers to add to the request:
/// `x-amz-date`, `x-amz-security-token` when the credentials have one, and `authorization`.
pub fn sign(
    method: &str,
    url: &url::Url,
    headers: &[(String, String)],
    body: &[u8],
    creds: &Credentials,
    scope: &Scope,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let amz_date = now
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .expect("a UTC timestamp formats");
    let date = &amz_date[..8];

    let mut added = vec![("x-amz-date".to_string(), amz_date.clone())];
    if let Some(token) = creds.session_token.filter(|t| !t.is_empty()) {
        added.push(("x-amz-security-token".into(), token.into()));
    }

    let mut signed: Vec<(String, String)> = headers
        .iter()
        .chain(&added)
        .map(|(k, v)| (k.to_ascii_lowercase(), canonical_value(v)))
        .collect();
    signed.push(("host".into(), host(url)));
    signed.sort();
    // Repeated names are signed once, their values joined by commas in the order sent.
    let mut merged: Vec<(String, String)> = Vec::with_capacity(signed.len());
    for (name, value) in signed {
        match merged.last_mut() {
            Some((last, values)) if *last == name => {
                values.push(',');
                values.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    let signed_headers = merged
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = merged.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();

    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        canonical_uri(url.path()),
        canonical_query(url),
        hex(&Sha256::digest(body)),
    );
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{credential_scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );

    let k_date = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, scope.region.as_bytes());
    let k_service = hmac(&k_region, scope.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    let signature = hex(&hmac(&k_signing, string_to_sign.as_bytes()));

    added.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
            creds.access_key_id
        ),
    ));
    added
}

/// The `Host` header an HTTP client sends for `url`: the port only when not the default.
fn host(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Trimmed, with runs of spaces collapsed to one.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// For every service but S3 the path as sent (already percent-encoded) is encoded once more,
/// segment by segment: `/model/a%3A0/converse` is signed as `/model/a%253A0/converse`.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(uri_encode)
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(url: &url::Url) -> String {
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (uri_encode(&k), uri_encode(&v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// SigV4's URI encoding: everything but `A-Z a-z 0-9 - _ . ~` as upper-case `%XX`.
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// The AWS SigV4 test suite's shared setup: AKIDEXAMPLE, 20150830T123600Z, us-east-1,
    /// service `service`, host example.amazonaws.com, no body.
    fn suite(method: &str, url: &str) -> String {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: SUITE_SECRET,
            session_token: None,
        };
        let scope = Scope {
            region: "us-east-1",
            service: "service",
        };
        let added = sign(
            method,
            &url::Url::parse(url).unwrap(),
            &[],
            b"",
            &creds,
            &scope,
            datetime!(2015-08-30 12:36:00 UTC),
        );
        assert_eq!(added[0], ("x-amz-date".into(), "20150830T123600Z".into()));
        added.last().unwrap().1.clone()
    }

    #[test]
    fn matches_the_aws_sigv4_test_suite() {
        let prefix = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=";
        for (name, method, url, signature) in [
            (
                "get-vanilla",
                "GET",
                "https://example.amazonaws.com/",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "post-vanilla",
                "POST",
                "https://example.amazonaws.com/",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                "get-vanilla-query-order-key-case",
                "GET",
                "https://example.amazonaws.com/?Param2=value2&Param1=value1",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ] {
            assert_eq!(suite(method, url), format!("{prefix}{signature}"), "{name}");
        }
    }

    #[test]
    fn canonical_uri_encodes_the_sent_path_again() {
        assert_eq!(
            canonical_uri("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"
        );
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(uri_encode("a:b/c d~"), "a%3Ab%2Fc%20d~");
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let creds = Credentials {
            access_key_id: "AKID",
            secret_access_key: "secret",
            session_token: Some("tok"),
        };
        let scope = Scope {
            region: "eu-west-1",
            service: "bedrock",
        };
        let url = url::Url::parse("http://127.0.0.1:8080/model/m/converse").unwrap();
        let headers = [("Content-Type".to_string(), "application/json".to_string())];
        let added = sign(
            "POST",
            &url,
            &headers,
            b"{}",
            &creds,
            &scope,
            datetime!(2024-01-02 03:04:05 UTC),
        );
        assert_eq!(added[1], ("x-amz-security-token".into(), "tok".into()));
        assert!(added[2].1.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKID/20240102/eu-west-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
        ));
    }
}
