//! Sign-in with Google (OpenID Connect, through the `openidconnect` crate: discovery,
//! PKCE, nonce, ID-token verification against the provider's JWKS) and GitHub (OAuth 2.0
//! through `oauth2`, then its REST API for the user and their verified emails).
//! The HTTP client never follows redirects (the libraries' SSRF advice).

use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use peermesh_common::config::Secret;
use serde::Deserialize;

use crate::store::oauth::ProviderIdentity;

/// How long discovered Google metadata (and its keys) is trusted before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Google,
    GitHub,
}

impl Provider {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "google" => Some(Self::Google),
            "github" => Some(Self::GitHub),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::GitHub => "github",
        }
    }
}

/// `AUTH_*` settings of social sign-in.
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthSettings {
    /// Exact client URIs the flow may return to, comma separated.
    #[serde(default)]
    pub oauth_redirect_allowlist: String,
    /// Public origin where the gateway serves `/api/v1/auth` (the providers send the
    /// browser back to `{this}/api/v1/auth/oauth/{provider}/callback`).
    #[serde(default = "default_public_url")]
    pub oauth_callback_base_url: String,
    /// How long a started sign-in may take to come back.
    #[serde(default = "default_state_ttl")]
    pub oauth_state_ttl_secs: i64,
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<Secret>,
    #[serde(default = "default_google_issuer")]
    pub google_issuer_url: String,
    pub github_client_id: Option<String>,
    pub github_client_secret: Option<Secret>,
    #[serde(default = "default_github_base")]
    pub github_base_url: String,
    #[serde(default = "default_github_api")]
    pub github_api_url: String,
}

fn default_public_url() -> String {
    "http://localhost:8080".into()
}
fn default_state_ttl() -> i64 {
    600
}
fn default_google_issuer() -> String {
    "https://accounts.google.com".into()
}
fn default_github_base() -> String {
    "https://github.com".into()
}
fn default_github_api() -> String {
    "https://api.github.com".into()
}

struct Google {
    client_id: String,
    client_secret: Secret,
    issuer: IssuerUrl,
    metadata: tokio::sync::Mutex<Option<(Instant, CoreProviderMetadata)>>,
}

struct GitHub {
    client_id: String,
    client_secret: Secret,
    base_url: String,
    api_url: String,
}

/// What the callback needs to finish a flow (kept in `oauth_states`).
pub struct Started {
    pub url: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

pub struct OAuth {
    pub state_ttl: chrono::TimeDelta,
    allowlist: Vec<String>,
    callback_base: String,
    google: Option<Google>,
    github: Option<GitHub>,
    http: reqwest::Client,
}

impl OAuth {
    pub fn new(settings: &OAuthSettings) -> Result<Self, String> {
        let pair = |id: &Option<String>, secret: &Option<Secret>, name: &str| match (id, secret) {
            (Some(id), Some(secret)) if !id.is_empty() => Ok(Some((id.clone(), secret.clone()))),
            (None, None) => Ok(None),
            _ => Err(format!(
                "AUTH_{name}_CLIENT_ID and AUTH_{name}_CLIENT_SECRET go together"
            )),
        };
        let google = pair(
            &settings.google_client_id,
            &settings.google_client_secret,
            "GOOGLE",
        )?
        .map(|(client_id, client_secret)| {
            Ok::<_, String>(Google {
                client_id,
                client_secret,
                issuer: IssuerUrl::new(settings.google_issuer_url.clone())
                    .map_err(|e| format!("AUTH_GOOGLE_ISSUER_URL: {e}"))?,
                metadata: tokio::sync::Mutex::new(None),
            })
        })
        .transpose()?;
        let github = pair(
            &settings.github_client_id,
            &settings.github_client_secret,
            "GITHUB",
        )?
        .map(|(client_id, client_secret)| GitHub {
            client_id,
            client_secret,
            base_url: settings.github_base_url.trim_end_matches('/').to_owned(),
            api_url: settings.github_api_url.trim_end_matches('/').to_owned(),
        });
        let allowlist: Vec<String> = settings
            .oauth_redirect_allowlist
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        for uri in &allowlist {
            url::Url::parse(uri)
                .map_err(|e| format!("AUTH_OAUTH_REDIRECT_ALLOWLIST: {uri:?}: {e}"))?;
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .user_agent("PeerMesh")
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            state_ttl: chrono::TimeDelta::seconds(settings.oauth_state_ttl_secs.max(1)),
            allowlist,
            callback_base: settings
                .oauth_callback_base_url
                .trim_end_matches('/')
                .to_owned(),
            google,
            github,
            http,
        })
    }

    pub fn is_configured(&self, provider: Provider) -> bool {
        match provider {
            Provider::Google => self.google.is_some(),
            Provider::GitHub => self.github.is_some(),
        }
    }

    /// Whether `uri` is exactly one of the allowed client URIs.
    pub fn allows(&self, uri: &str) -> bool {
        self.allowlist.iter().any(|a| a == uri)
    }

    /// Where errors go when the flow's own redirect URI is not known (a forged state).
    pub fn fallback_redirect(&self) -> Option<&str> {
        self.allowlist.first().map(String::as_str)
    }

    /// Cookies are `Secure` unless the public URL is plain-HTTP localhost (development).
    pub fn secure_cookies(&self) -> bool {
        !(self.callback_base.starts_with("http://localhost")
            || self.callback_base.starts_with("http://127.0.0.1"))
    }

    fn callback_url(&self, provider: Provider) -> String {
        format!(
            "{}/api/v1/auth/oauth/{}/callback",
            self.callback_base,
            provider.name()
        )
    }

    async fn google_client(
        &self,
        google: &Google,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        String,
    > {
        let mut cached = google.metadata.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < METADATA_TTL);
        if !fresh {
            let metadata = CoreProviderMetadata::discover_async(google.issuer.clone(), &self.http)
                .await
                .map_err(|e| format!("discovery: {e}"))?;
            *cached = Some((Instant::now(), metadata));
        }
        let metadata = cached
            .as_ref()
            .map(|(_, m)| m.clone())
            .ok_or("no metadata")?;
        let redirect =
            RedirectUrl::new(self.callback_url(Provider::Google)).map_err(|e| e.to_string())?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(google.client_id.clone()),
            Some(ClientSecret::new(google.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's authorization URL for a new flow with `state`.
    pub async fn start(&self, provider: Provider, state: &str) -> Result<Started, String> {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let csrf = CsrfToken::new(state.to_owned());
        match provider {
            Provider::Google => {
                let google = self.google.as_ref().ok_or("google is not configured")?;
                let client = self.google_client(google).await?;
                let (url, _, nonce) = client
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        move || csrf,
                        Nonce::new_random,
                    )
                    .add_scope(Scope::new("email".into()))
                    .add_scope(Scope::new("profile".into()))
                    .set_pkce_challenge(challenge)
                    .url();
                Ok(Started {
                    url: url.to_string(),
                    nonce: nonce.secret().clone(),
                    pkce_verifier: verifier.secret().clone(),
                })
            }
            Provider::GitHub => {
                let github = self.github.as_ref().ok_or("github is not configured")?;
                let client = github_client(github, &self.callback_url(Provider::GitHub))?;
                let (url, _) = client
                    .authorize_url(move || csrf)
                    .add_scope(oauth2::Scope::new("read:user".into()))
                    .add_scope(oauth2::Scope::new("user:email".into()))
                    .set_pkce_challenge(challenge)
                    .url();
                Ok(Started {
                    url: url.to_string(),
                    nonce: String::new(),
                    pkce_verifier: verifier.secret().clone(),
                })
            }
        }
    }

    /// Trades the provider's code for who signed in, verifying everything the protocol
    /// lets us verify. Errors are for the log; the client only hears `provider_error`.
    pub async fn finish(
        &self,
        provider: Provider,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<ProviderIdentity, String> {
        match provider {
            Provider::Google => {
                let google = self.google.as_ref().ok_or("google is not configured")?;
                let client = self.google_client(google).await?;
                let tokens = client
                    .exchange_code(AuthorizationCode::new(code.to_owned()))
                    .map_err(|e| e.to_string())?
                    .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
                    .request_async(&self.http)
                    .await
                    .map_err(|e| format!("token endpoint: {e}"))?;
                let id_token = tokens
                    .id_token()
                    .ok_or("no ID token in the token response")?;
                let verifier = client.id_token_verifier();
                let claims = id_token
                    .claims(&verifier, &Nonce::new(nonce.to_owned()))
                    .map_err(|e| format!("ID token: {e}"))?;
                if let Some(expected) = claims.access_token_hash() {
                    let alg = id_token.signing_alg().map_err(|e| e.to_string())?;
                    let key = id_token.signing_key(&verifier).map_err(|e| e.to_string())?;
                    let actual =
                        openidconnect::AccessTokenHash::from_token(tokens.access_token(), alg, key)
                            .map_err(|e| e.to_string())?;
                    if actual != *expected {
                        return Err("ID token: at_hash does not match the access token".into());
                    }
                }
                Ok(ProviderIdentity {
                    provider: Provider::Google.name(),
                    subject: format!("{} {}", claims.issuer().as_str(), claims.subject().as_str()),
                    email: claims.email().and_then(|e| valid_email(e.as_str())),
                    email_verified: claims.email_verified().unwrap_or(false),
                    name: claims
                        .name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.as_str().to_owned()),
                })
            }
            Provider::GitHub => {
                let github = self.github.as_ref().ok_or("github is not configured")?;
                let client = github_client(github, &self.callback_url(Provider::GitHub))?;
                let tokens = client
                    .exchange_code(oauth2::AuthorizationCode::new(code.to_owned()))
                    .set_pkce_verifier(oauth2::PkceCodeVerifier::new(pkce_verifier.to_owned()))
                    .request_async(&self.http)
                    .await
                    .map_err(|e| format!("token endpoint: {e}"))?;
                let token = tokens.access_token().secret();
                self.github_user(github, token).await
            }
        }
    }

    async fn github_user(&self, github: &GitHub, token: &str) -> Result<ProviderIdentity, String> {
        #[derive(Deserialize)]
        struct User {
            id: u64,
            login: String,
            name: Option<String>,
        }
        #[derive(Deserialize)]
        struct Email {
            email: String,
            primary: bool,
            verified: bool,
        }
        let get = |path: &str| {
            self.http
                .get(format!("{}{path}", github.api_url))
                .bearer_auth(token)
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .send()
        };
        let user: User = get("/user")
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("GitHub /user: {e}"))?
            .json()
            .await
            .map_err(|e| format!("GitHub /user: {e}"))?;
        let emails: Vec<Email> = get("/user/emails")
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("GitHub /user/emails: {e}"))?
            .json()
            .await
            .map_err(|e| format!("GitHub /user/emails: {e}"))?;
        // The primary address if verified, else any verified one, else the unverified primary.
        let chosen = emails
            .iter()
            .find(|e| e.primary && e.verified)
            .or_else(|| emails.iter().find(|e| e.verified))
            .or_else(|| emails.iter().find(|e| e.primary));
        Ok(ProviderIdentity {
            provider: Provider::GitHub.name(),
            subject: user.id.to_string(),
            email: chosen.and_then(|e| valid_email(&e.email)),
            email_verified: chosen.is_some_and(|e| e.verified),
            name: user.name.or(Some(user.login)),
        })
    }
}

/// The provider's address in our normal form, or none if it is not a usable address.
fn valid_email(raw: &str) -> Option<String> {
    crate::domain::Email::parse(raw)
        .ok()
        .map(|e| e.into_string())
}

fn github_client(
    github: &GitHub,
    callback: &str,
) -> Result<
    oauth2::basic::BasicClient<
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    String,
> {
    let url = |s: String| oauth2::AuthUrl::new(s).map_err(|e| e.to_string());
    Ok(
        oauth2::basic::BasicClient::new(oauth2::ClientId::new(github.client_id.clone()))
            .set_client_secret(oauth2::ClientSecret::new(
                github.client_secret.expose().to_owned(),
            ))
            .set_auth_uri(url(format!("{}/login/oauth/authorize", github.base_url))?)
            .set_token_uri(
                oauth2::TokenUrl::new(format!("{}/login/oauth/access_token", github.base_url))
                    .map_err(|e| e.to_string())?,
            )
            .set_redirect_uri(
                oauth2::RedirectUrl::new(callback.to_owned()).map_err(|e| e.to_string())?,
            ),
    )
}
