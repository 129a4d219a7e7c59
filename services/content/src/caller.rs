//! Whose content a request works on. A user works on their own items (an admin may
//! read anyone's). A service token works on its own items, or — with the
//! `content:act_as` scope — on the items of the user named in `X-On-Behalf-Of`, who
//! must be the user auth minted the token for (`act_for`, a delegation that user
//! gave); this is how the ingestion service writes a user's documents.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use paperclip::actix::OperationModifier;
use peermesh_common::auth::Principal;
use peermesh_common::ApiError;

pub const ON_BEHALF_OF: &str = "x-on-behalf-of";
pub const SCOPE_WRITE: &str = "content:write";
pub const SCOPE_ACT_AS: &str = "content:act_as";

#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The owner whose items this request reads and writes.
    pub owner: String,
    /// A service acting for the user `owner`.
    pub acting: bool,
}

impl Caller {
    fn is_service(&self) -> bool {
        self.principal.claims.has_role("service")
    }

    /// An admin user (not a service acting for one) may read every owner's items.
    pub fn reads_everything(&self) -> bool {
        !self.acting && !self.is_service() && self.principal.is_admin()
    }

    /// The owner filter for reads: `None` means any owner.
    pub fn read_scope(&self) -> Option<String> {
        (!self.reads_everything()).then(|| self.owner.clone())
    }

    /// Writes need a user, a service acting for one, or a service with `content:write`.
    pub fn writable_owner(&self) -> Result<String, ApiError> {
        if self.is_service() && !self.acting && !self.principal.has_scope(SCOPE_WRITE) {
            return Err(ApiError::forbidden(format!(
                "this service token lacks the {SCOPE_WRITE} scope"
            ))
            .with_code("insufficient_scope"));
        }
        Ok(self.owner.clone())
    }

    fn resolve(principal: Principal, on_behalf_of: Option<&str>) -> Result<Self, ApiError> {
        let Some(user) = on_behalf_of else {
            let owner = principal.subject().to_owned();
            return Ok(Self {
                principal,
                owner,
                acting: false,
            });
        };
        if !principal.has_scope(SCOPE_ACT_AS) {
            return Err(ApiError::forbidden(format!(
                "X-On-Behalf-Of needs a service token with the {SCOPE_ACT_AS} scope"
            ))
            .with_code("insufficient_scope"));
        }
        let user = uuid::Uuid::parse_str(user.trim())
            .map_err(|_| {
                ApiError::bad_request("invalid_on_behalf_of", "X-On-Behalf-Of must be a user id")
            })?
            .hyphenated()
            .to_string();
        // The scope alone is not enough: auth names, in the token, the one user who
        // delegated to this client. A client cannot pick anyone else.
        if principal.claims.act_for.as_deref() != Some(user.as_str()) {
            return Err(ApiError::forbidden(
                "this service token does not act for that user (the user has not delegated to this client)",
            )
            .with_code("not_delegated"));
        }
        Ok(Self {
            principal,
            owner: user,
            acting: true,
        })
    }
}

impl FromRequest for Caller {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        let header = req
            .headers()
            .get(ON_BEHALF_OF)
            .map(|v| v.to_str().map(str::to_owned));
        Box::pin(async move {
            let principal = principal.await?;
            let on_behalf_of = match header {
                None => None,
                Some(Ok(value)) => Some(value),
                Some(Err(_)) => {
                    return Err(ApiError::bad_request(
                        "invalid_on_behalf_of",
                        "X-On-Behalf-Of must be a user id",
                    )
                    .into())
                }
            };
            Ok(Caller::resolve(principal, on_behalf_of.as_deref())?)
        })
    }
}

impl paperclip::v2::schema::Apiv2Schema for Caller {
    fn security_scheme() -> Option<paperclip::v2::models::SecurityScheme> {
        <Principal as paperclip::v2::schema::Apiv2Schema>::security_scheme()
    }
}
impl OperationModifier for Caller {}
