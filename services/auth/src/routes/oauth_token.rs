//! `POST /token`: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) for other
//! modules. Errors carry RFC 6749 §5.2's `error`/`error_description` as
//! `application/json`, beside the usual problem members.

use actix_web::http::{header, StatusCode};
use actix_web::HttpRequest;
use base64::Engine as _;
use paperclip::actix::{api_v2_operation, web, Apiv2Schema};
use peermesh_common::jwt::JwtValidator;
use peermesh_common::ApiError;
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use crate::metrics::Grant;
use crate::store::{clients, delegations};
use crate::tokens::{secret_hash, AccessGrant};
use crate::AppState;
use peermesh_common::reply::Reply;

#[derive(Debug, Serialize, Apiv2Schema)]
pub struct ClientTokenOut {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    /// The scopes granted, space separated.
    pub scope: String,
    /// Token exchange only (RFC 8693): always the access-token type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// An RFC 6749 §5.2 error.
fn oauth_error(status: StatusCode, error: &'static str, description: &str) -> ApiError {
    ApiError::new(status, error, description.to_owned())
        .with_extension("error", error)
        .with_extension("error_description", description)
        .with_content_type("application/json")
        .with_header(header::CACHE_CONTROL, "no-store")
}

fn invalid_request(description: &str) -> ApiError {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_client(basic: bool) -> ApiError {
    let err = oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed",
    );
    if basic {
        err.with_header(header::WWW_AUTHENTICATE, "Basic realm=\"peermesh\"")
    } else {
        err
    }
}

/// `client_id:client_secret` from HTTP Basic (each form-urlencoded, RFC 6749 §2.3.1).
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| invalid_client(true))?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(invalid_client(true));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_client(true));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid_client(true))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| invalid_client(true))?;
    let unescape = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|(_, v)| v)
    };
    match (unescape(id), unescape(secret)) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        _ => Err(invalid_client(true)),
    }
}

/// RFC 8693's grant type and token type for an access token.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The scope that lets a client act for a user (who must have delegated to it).
pub const ACT_AS_SCOPE: &str = "content:act_as";

/// The form parameters of one token request, each given at most once.
struct TokenForm(Vec<(String, String)>);

impl TokenForm {
    fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, ApiError> {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(invalid_request(
                "send the parameters as application/x-www-form-urlencoded",
            ));
        }
        serde_urlencoded::from_bytes(body)
            .map(Self)
            .map_err(|_| invalid_request("malformed form body"))
    }

    fn get(&self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next().cloned();
        if values.next().is_some() {
            return Err(invalid_request(&format!("{name} is given more than once")));
        }
        Ok(first.filter(|v| !v.is_empty()))
    }
}

/// The client authenticated by HTTP Basic or by the body's credentials (not both).
async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    form: &TokenForm,
) -> Result<clients::ServiceClient, ApiError> {
    let basic = basic_credentials(req)?;
    let used_basic = basic.is_some();
    let (client_id, secret) = match (basic, form.get("client_id")?, form.get("client_secret")?) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(invalid_request(
                "use one client authentication method, not two",
            ))
        }
        (Some(creds), None, None) => creds,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => return Err(invalid_client(false)),
    };
    let client = state
        .db
        .run(move |conn| clients::active_by_id(conn, &client_id))
        .await
        .map_err(ApiError::from)?;
    let presented = secret_hash(&secret);
    client
        .filter(|c| bool::from(c.secret_hash.as_bytes().ct_eq(presented.as_bytes())))
        .ok_or_else(|| invalid_client(used_basic))
}

/// The scopes to grant: all the client may have, or the requested subset of them.
fn granted_scopes(allowed: &[String], requested: Option<String>) -> Result<String, ApiError> {
    let granted: Vec<String> = match requested {
        None => allowed.to_vec(),
        Some(requested) => {
            let requested: Vec<String> = requested.split_whitespace().map(str::to_owned).collect();
            if requested.is_empty() || requested.iter().any(|s| !allowed.contains(s)) {
                return Err(invalid_scope(
                    "the requested scope exceeds what this client may have",
                ));
            }
            requested
        }
    };
    Ok(granted.join(" "))
}

fn invalid_scope(description: &str) -> ApiError {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", description)
}

fn invalid_grant(description: &str) -> ApiError {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// The user a token exchange is for: the subject of a valid user access token.
async fn exchanged_user(validator: &JwtValidator, form: &TokenForm) -> Result<String, ApiError> {
    if form.get("subject_token_type")?.as_deref() != Some(ACCESS_TOKEN_TYPE) {
        return Err(invalid_request(&format!(
            "subject_token_type must be {ACCESS_TOKEN_TYPE}"
        )));
    }
    let token = form
        .get("subject_token")?
        .ok_or_else(|| invalid_request("subject_token is required"))?;
    let claims = validator
        .verify(&token)
        .await
        .map_err(|_| invalid_grant("the subject_token is not a valid access token"))?;
    if claims.has_role("service") {
        return Err(invalid_grant("the subject_token must be a user's token"));
    }
    Ok(claims.sub.clone())
}

/// Issues an access token to a service client: `grant_type=client_credentials`
/// (optionally `act_for=<user id>` — a user who has delegated to this client), or the
/// token exchange (RFC 8693) by which a user delegates: the client presents the user's
/// own access token as `subject_token`.
#[api_v2_operation(
    summary = "Client-credentials token (RFC 6749 §4.4) or token exchange (RFC 8693)",
    tags(clients)
)]
pub async fn token(
    state: web::Data<AppState>,
    validator: web::Data<JwtValidator>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<Reply<ClientTokenOut>, ApiError> {
    let form = TokenForm::parse(&req, &body)?;
    let grant_type = form.get("grant_type")?;
    let exchange = match grant_type.as_deref() {
        Some("client_credentials") => false,
        Some(TOKEN_EXCHANGE) => true,
        Some(_) => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be client_credentials or token exchange (RFC 8693)",
            ))
        }
        None => return Err(invalid_request("grant_type is required")),
    };
    let client = authenticate(&state, &req, &form).await?;
    // A client stored with the scope before it was reserved never gets it.
    let allowed: Vec<String> = client
        .scope_list()
        .into_iter()
        .filter(|s| s != peermesh_common::auth::SCOPE_DELETE_ACCOUNTS)
        .collect();
    let scope = granted_scopes(&allowed, form.get("scope")?)?;
    let act_for = if exchange {
        Some(exchanged_user(&validator, &form).await?)
    } else {
        form.get("act_for")?
    };
    if let Some(user_id) = &act_for {
        if !allowed.iter().any(|s| s == ACT_AS_SCOPE) {
            return Err(invalid_scope(&format!(
                "acting for a user needs the {ACT_AS_SCOPE} scope"
            )));
        }
        let (client_id, user_id, ttl) = (client.id.clone(), user_id.clone(), state.delegation_ttl);
        let delegated = state
            .db
            .write(move |conn| {
                let Some(user) = crate::store::users::by_id(conn, &user_id)? else {
                    return Ok(false);
                };
                if user.disabled {
                    return Ok(false);
                }
                if exchange {
                    delegations::grant(conn, &client_id, &user_id)?;
                    return Ok(true);
                }
                delegations::is_live(conn, &client_id, &user_id, ttl)
            })
            .await
            .map_err(ApiError::from)?;
        if !delegated {
            return Err(invalid_grant(
                "that user has not let this client act for them (or the account is disabled); \
                 the user's own request must come first (token exchange)",
            ));
        }
    }
    let access_token = state
        .issuer
        .sign(AccessGrant {
            sub: client.id.clone(),
            roles: vec!["service".into()],
            scope: scope.clone(),
            sid: None,
            act_for,
        })
        .await
        .map_err(ApiError::internal)?;
    state.metrics.issued(Grant::ClientCredentials);
    Ok(Reply::new(ClientTokenOut {
        access_token,
        token_type: "Bearer".into(),
        expires_in: state.issuer.access_ttl_secs(),
        scope,
        issued_token_type: exchange.then(|| ACCESS_TOKEN_TYPE.to_owned()),
    })
    .no_store())
}
