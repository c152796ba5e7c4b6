//! Access tokens: minting (RS256 JWTs registered in the recorder) and checking what comes back to the DCR.
//!
//! The clouds of one process share a signing key — RSA key generation was the slowest step of starting a cloud —
//! and each has its own random nonce in every `jti` (`{nonce}.{token id}`): a token minted by another mock cloud
//! verifies but carries a nonce this one never issued, so it is still refused as "not issued by this mock".

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::{KeyPair, PKCS_RSA_SHA256};
use serde::{Deserialize, Serialize};

use super::CloudError;
use super::ca::unix_now;
use super::recorder::{IssuedToken, Principal, Recorder, Service, TokenId};

/// How long before issue an "already expired" token expired.
pub(crate) const EXPIRED_AGO: Duration = Duration::from_secs(60);

/// The lifetime fields of a token response: `expires_in` (negative when already expired), `expires_on` (unix
/// seconds) and, if set, `refresh_in`.
pub(crate) fn lifetime_fields(terms: &super::fault::Terms) -> (i64, u64, Option<u64>) {
    let now = unix_now();
    if terms.expired {
        let ago = EXPIRED_AGO.as_secs();
        (-(ago as i64), now - ago, None)
    } else {
        let secs = terms.lifetime.as_secs();
        (secs as i64, now + secs, terms.refresh_in.map(|r| r.as_secs()))
    }
}

/// Claims of the access tokens the mock issues (a subset of Entra's v1 access tokens).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    aud: String,
    iss: String,
    tid: String,
    oid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    appid: Option<String>,
    idtyp: String,
    iat: u64,
    nbf: u64,
    exp: u64,
    jti: String,
}

/// Signs and recognises this cloud's access tokens.
pub(crate) struct TokenMint {
    encoding: EncodingKey,
    decoding: DecodingKey,
    nonce: String,
}

impl std::fmt::Debug for TokenMint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenMint").finish_non_exhaustive()
    }
}

fn signing_key() -> Result<(EncodingKey, DecodingKey), CloudError> {
    let key = KeyPair::generate_for(&PKCS_RSA_SHA256).map_err(|e| CloudError::Key(format!("token key: {e}")))?;
    let encoding = EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes())
        .map_err(|e| CloudError::Key(format!("token key: {e}")))?;
    Ok((encoding, DecodingKey::from_rsa_der(key.public_key_raw())))
}

/// A minted token: the JWT to hand out (never recorded) and its registration.
pub(crate) struct Minted {
    pub jwt: String,
    pub issued: IssuedToken,
}

impl TokenMint {
    pub(crate) fn generate() -> Result<TokenMint, CloudError> {
        static KEY: std::sync::OnceLock<(EncodingKey, DecodingKey)> = std::sync::OnceLock::new();
        let (encoding, decoding) = match KEY.get() {
            Some(k) => k.clone(),
            None => {
                let generated = signing_key()?;
                KEY.get_or_init(|| generated).clone()
            }
        };
        Ok(TokenMint { encoding, decoding, nonce: uuid::Uuid::new_v4().simple().to_string() })
    }

    /// Issues a token and registers it with the recorder (mock-clock `issued_at`/`expires_at`). An `expired` token
    /// expired [`EXPIRED_AGO`] before it was issued.
    #[cfg(test)]
    pub(crate) fn mint(
        &self,
        recorder: &Recorder,
        issuer: Service,
        tenant: &str,
        principal: Principal,
        audience: &str,
        lifetime: Duration,
    ) -> Minted {
        self.mint_with(recorder, issuer, tenant, principal, audience, lifetime, false)
    }

    /// [`TokenMint::mint`], possibly already expired.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mint_with(
        &self,
        recorder: &Recorder,
        issuer: Service,
        tenant: &str,
        principal: Principal,
        audience: &str,
        lifetime: Duration,
        expired: bool,
    ) -> Minted {
        let now_mock = recorder.now();
        let issued = recorder.issue(|id| IssuedToken {
            id,
            issuer,
            tenant: tenant.to_owned(),
            principal: principal.clone(),
            audience: audience.to_owned(),
            issued_at: now_mock,
            expires_at: if expired { now_mock.saturating_sub(EXPIRED_AGO) } else { now_mock + lifetime },
        });
        let now = unix_now();
        let (oid, appid) = match &principal {
            Principal::SystemAssigned { object_id } => (object_id.clone(), None),
            Principal::UserAssigned { client_id } | Principal::App { client_id } => {
                (client_id.clone(), Some(client_id.clone()))
            }
        };
        let claims = AccessClaims {
            aud: audience.to_owned(),
            iss: format!("https://sts.windows.net/{tenant}/"),
            tid: tenant.to_owned(),
            oid,
            appid,
            idtyp: "app".into(),
            iat: now,
            nbf: now,
            exp: if expired { now - EXPIRED_AGO.as_secs() } else { now + lifetime.as_secs() },
            jti: format!("{}.{}", self.nonce, issued.id.0),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        let jwt = jsonwebtoken::encode(&header, &claims, &self.encoding).expect("signing with a generated RSA key");
        recorder.keep_token_value(issued.id, &jwt);
        Minted { jwt, issued }
    }

    /// Which registered token this is, or why it is not one of ours. Expiry and audience are judged by the caller
    /// against the recorded [`IssuedToken`].
    pub(crate) fn recognise(&self, recorder: &Recorder, jwt: &str) -> Result<IssuedToken, String> {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<AccessClaims>(jwt, &self.decoding, &validation)
            .map_err(|e| format!("not issued by this mock cloud (signature or format: {e})"))?
            .claims;
        let id = claims
            .jti
            .strip_prefix(&self.nonce)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| "not issued by this mock cloud (unknown jti)".to_owned())?;
        recorder.token(TokenId(id)).ok_or_else(|| format!("token #{id} was never registered"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_recognised_only_by_their_own_cloud() {
        let recorder = Recorder::new();
        let mint = TokenMint::generate().unwrap();
        let other = TokenMint::generate().unwrap();
        let principal = Principal::App { client_id: "c".into() };
        let m =
            mint.mint(&recorder, Service::Entra, "t", principal, "https://monitor.azure.com/", Duration::from_secs(60));
        assert_eq!(mint.recognise(&recorder, &m.jwt).unwrap().id, TokenId(1));
        // Same process, same signing key: the nonce alone keeps the clouds apart.
        assert!(other.recognise(&recorder, &m.jwt).unwrap_err().contains("not issued by this mock"));
        assert!(mint.recognise(&recorder, "garbage").is_err());
    }
}
