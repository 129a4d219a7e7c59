//! `DELETE /content/accounts/{id}`: a deleted account's items go, with their chunks,
//! tags, links and vectors, and its exports. The auth service calls it (scope `accounts:delete`) until
//! it answers 204; calling it again is harmless.

use paperclip::actix::{api_v2_operation, web, NoContent};
use peermesh_common::auth::{ClosedAccounts, Principal};
use peermesh_common::ApiError;
use peermesh_db::closed_accounts;

use crate::store::items;
use crate::AppState;

/// Items deleted per transaction.
const BATCH: i64 = 500;

/// Erases everything the account owned here; its tokens are refused from now on.
#[api_v2_operation(summary = "Erase a deleted account's content", tags(accounts))]
pub async fn erase(
    state: web::Data<AppState>,
    closed: web::Data<ClosedAccounts>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<NoContent, ApiError> {
    let owner = closed_accounts::close_on_request(&state.db, &closed, &principal, &path).await?;
    loop {
        let who = owner.clone();
        let deleted = state
            .db
            .write(move |conn| items::delete_some_of_owner(conn, &who, BATCH))
            .await?;
        if deleted == 0 {
            break;
        }
    }
    let who = owner.clone();
    state
        .db
        .write(move |conn| items::delete_owner_records(conn, &who))
        .await?;
    crate::export::remove_expired(
        &state.db,
        &state.exports.dir(),
        Some(owner.clone()),
        &state.logger,
    )
    .await;
    state.vectors.forget_owner(&owner);
    Ok(NoContent)
}
