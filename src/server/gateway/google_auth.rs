//! Vertex AI with a service-account key: the gateway signs a JWT with the account's private key
//! (RS256), exchanges it at the account's `token_uri` for an OAuth access token, and caches the
//! token until shortly before it expires.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// A token is renewed this long before Google says it expires.
const EARLY: Duration = Duration::from_secs(120);

#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default = "default_token_uri")]
    token_uri: String,
    #[serde(default)]
    project_id: Option<String>,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default = "default_expiry")]
    expires_in: u64,
}

fn default_expiry() -> u64 {
    3600
}

/// An access token, and the project the service account belongs to.
#[derive(Clone)]
pub struct Token {
    pub access_token: String,
    pub project_id: Option<String>,
}

#[derive(Default)]
pub struct GoogleTokens {
    cache: Mutex<HashMap<String, (Token, Instant)>>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The DER bytes of a PEM `PRIVATE KEY` (PKCS#8), as service-account files hold.
fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && !l.is_empty())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("the service account's private_key is not PEM: {e}"))
}

/// The signed assertion for Google's JWT-bearer grant.
fn assertion(sa: &ServiceAccount, now_secs: u64) -> Result<String, String> {
    let key = ring::signature::RsaKeyPair::from_pkcs8(&pem_to_der(&sa.private_key)?)
        .map_err(|e| format!("the service account's private_key is not an RSA PKCS#8 key: {e}"))?;
    let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = b64url(
        serde_json::json!({
            "iss": sa.client_email,
            "scope": SCOPE,
            "aud": sa.token_uri,
            "iat": now_secs,
            "exp": now_secs + 3600,
        })
        .to_string()
        .as_bytes(),
    );
    let signing_input = format!("{header}.{claims}");
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing the token request failed".to_string())?;
    Ok(format!("{signing_input}.{}", b64url(&signature)))
}

impl GoogleTokens {
    /// An access token for the service account in `key_json`, from the cache or Google.
    pub async fn token(&self, http: &reqwest::Client, key_json: &str) -> Result<Token, String> {
        let sa: ServiceAccount = serde_json::from_str(key_json)
            .map_err(|e| format!("the integration's key is not a service-account JSON key: {e}"))?;
        if let Some((token, until)) = self.cache().get(&sa.client_email) {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let body = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={}",
            assertion(&sa, now)?
        );
        let response = http
            .post(&sa.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("could not reach {}: {e}", sa.token_uri))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!(
                "{} refused the service account ({status}): {}",
                sa.token_uri,
                text.trim()
            ));
        }
        let answer: TokenAnswer = serde_json::from_str(&text)
            .map_err(|e| format!("{} answered an unreadable token: {e}", sa.token_uri))?;
        let token = Token {
            access_token: answer.access_token,
            project_id: sa.project_id,
        };
        let until = Instant::now() + Duration::from_secs(answer.expires_in).saturating_sub(EARLY);
        self.cache().insert(sa.client_email, (token.clone(), until));
        Ok(token)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Token, Instant)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway 2048-bit key made for this test (`openssl genpkey -algorithm RSA`).
    const TEST_KEY: &str = include_str!("../../../tests/data/test-service-account-key.pem");

    #[test]
    fn assertion_is_a_verifiable_rs256_jwt() {
        let sa = ServiceAccount {
            client_email: "bot@proj.iam.gserviceaccount.com".into(),
            private_key: TEST_KEY.into(),
            token_uri: "http://127.0.0.1:9/token".into(),
            project_id: None,
        };
        let jwt = assertion(&sa, 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap()
        };
        let claims: serde_json::Value = serde_json::from_slice(&decode(parts[1])).unwrap();
        assert_eq!(claims["iss"], "bot@proj.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "http://127.0.0.1:9/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["exp"], 1_700_003_600);
        let key = ring::signature::RsaKeyPair::from_pkcs8(&pem_to_der(TEST_KEY).unwrap()).unwrap();
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public().as_ref(),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        assert!(public.verify(signed.as_bytes(), &decode(parts[2])).is_ok());
        assert!(public.verify(b"tampered", &decode(parts[2])).is_err());
    }

    #[test]
    fn bad_keys_are_explained() {
        let sa = ServiceAccount {
            client_email: "x".into(),
            private_key: "-----BEGIN PRIVATE KEY-----\nnot base64!\n-----END PRIVATE KEY-----"
                .into(),
            token_uri: default_token_uri(),
            project_id: None,
        };
        assert!(assertion(&sa, 0).unwrap_err().contains("not PEM"));
    }
}
