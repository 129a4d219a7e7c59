//! Administrative commands of the auth binary, for operators and deployment scripts:
//!   peermesh-auth promote-admin <email>
//!   peermesh-auth create-client <name> <scope>...
//! They use the same settings (AUTH_DATABASE_URL, …) as the server.

use crate::routes::admin::{check_client, new_client};
use crate::{domain, store, Settings, DEFAULT_DATABASE_URL, MIGRATIONS};

pub const USAGE: &str = "usage:
  peermesh-auth                                 run the service
  peermesh-auth promote-admin <email>           give an existing account the admin role
  peermesh-auth create-client <name> <scope>... create a service client; prints its secret once
  peermesh-auth healthcheck                     exit 0 when the local service answers /health";

/// Runs a command given on the command line; `None` when there is none (serve).
pub fn run(args: &[String]) -> Option<Result<String, String>> {
    let command = args.first()?;
    Some(match command.as_str() {
        "promote-admin" => promote_admin(&args[1..]),
        "create-client" => create_client(&args[1..]),
        "help" | "--help" | "-h" => Ok(USAGE.to_owned()),
        // Answered by the shared server main (container health checks).
        "healthcheck" => return None,
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    })
}

fn open_db() -> Result<peermesh_db::Db, String> {
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let url = settings.server.database_url_or(DEFAULT_DATABASE_URL);
    let db = peermesh_db::Db::connect(&url, 1, &MIGRATIONS).map_err(|e| e.to_string())?;
    db.migrate().map_err(|e| e.to_string())?;
    Ok(db)
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> Result<T, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    Ok(rt.block_on(f))
}

fn promote_admin(args: &[String]) -> Result<String, String> {
    let [email] = args else {
        return Err(USAGE.to_owned());
    };
    let email = domain::Email::parse(email)
        .map_err(|e| e.message)?
        .into_string();
    let db = open_db()?;
    let shown = email.clone();
    let found = block_on(db.write(move |conn| store::users::promote_admin(conn, &email)))?
        .map_err(|e| e.to_string())?;
    if found {
        Ok(format!("{shown} is an administrator"))
    } else {
        Err(format!("no account with email {shown}; register it first"))
    }
}

fn create_client(args: &[String]) -> Result<String, String> {
    let Some((name, scopes)) = args.split_first() else {
        return Err(USAGE.to_owned());
    };
    let scopes = check_client(name, scopes).map_err(|e| e.to_string())?;
    let (client, secret) = new_client(name, scopes, None);
    let out = serde_json::json!({
        "client_id": client.id,
        "client_secret": secret,
        "scopes": client.scope_list(),
    });
    let db = open_db()?;
    block_on(db.write(move |conn| store::clients::insert(conn, &client)))?
        .map_err(|e| e.to_string())?;
    Ok(out.to_string())
}
