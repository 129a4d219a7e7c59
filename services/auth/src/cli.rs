//! The auth binary's command line: serve (the default), `migrate`, `healthcheck`, and
//! the operators' commands on accounts, service clients and signing keys. They use the
//! same settings (AUTH_DATABASE_URL, …) as the server.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use peermesh_common::server::BasicCommand;

use crate::routes::admin::{check_client, new_client};
use crate::{domain, keys, password, store, Settings, DEFAULT_DATABASE_URL, MIGRATIONS};

/// The PeerMesh auth service: accounts, tokens, signing keys.
#[derive(Parser)]
#[command(name = "peermesh-auth", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    #[command(flatten)]
    Basic(BasicCommand),
    /// Accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Service clients (OAuth2 client credentials) of other modules.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// The key that signs access tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create an account whose address the operator vouches for (verified). The
    /// password is read from --password-file, or from standard input.
    Create {
        email: String,
        /// Give it the admin role.
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        password_file: Option<PathBuf>,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Give an existing account the admin role.
    Promote { email: String },
}

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Create a client; prints its id and secret (shown once) as JSON.
    Create {
        name: String,
        #[arg(required = true)]
        scopes: Vec<String>,
    },
    /// The active clients, one JSON object per line (never their secrets).
    List,
    /// Revoke a client: its secret stops working at once.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Replace the signing key in FILE (AUTH_SIGNING_KEY_FILE) by a new one. The old key
    /// moves to FILE.previous and stays published in the JWKS while
    /// AUTH_PUBLISHED_KEY_FILES names it, so tokens it signed keep verifying until they
    /// expire (15 min); restart auth afterwards.
    Rotate {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = KeyKind::Rsa)]
        kind: KeyKind,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum KeyKind {
    /// RSA 2048 (RS256), the default.
    Rsa,
    /// Ed25519 (EdDSA).
    Ed25519,
}

/// Runs an operator's command; the text to print, or why it failed.
pub fn run(command: Command) -> Result<String, String> {
    match command {
        Command::Basic(_) => Err("served by the server's main".to_owned()),
        Command::User(UserCommand::Promote { email }) => promote_admin(&email),
        Command::User(UserCommand::Create {
            email,
            admin,
            password_file,
            display_name,
        }) => create_user(&email, admin, password_file.as_deref(), display_name),
        Command::Clients(command) => clients(command),
        Command::Keys(KeysCommand::Rotate { file, kind }) => rotate_key(&file, kind),
    }
}

/// One connection, on a database brought up to date first.
fn open_db() -> Result<peermesh_db::Db, String> {
    let settings =
        peermesh_common::config::load::<Settings>(std::env::vars()).map_err(|e| e.to_string())?;
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

fn parse_email(email: &str) -> Result<String, String> {
    Ok(domain::Email::parse(email)
        .map_err(|e| e.message)?
        .into_string())
}

fn promote_admin(email: &str) -> Result<String, String> {
    let email = parse_email(email)?;
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

fn create_user(
    email: &str,
    admin: bool,
    password_file: Option<&Path>,
    display_name: Option<String>,
) -> Result<String, String> {
    let email = parse_email(email)?;
    let display_name = display_name
        .map(|name| domain::parse_display_name(&name).map_err(|e| e.message))
        .transpose()?;
    let password = match password_file {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())?,
    };
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    password::check_new_password("password", &password)
        .map_err(|e| format!("password: {}", e.message))?;
    let db = open_db()?;
    let hash = block_on(async {
        password::Hasher::new(1)?
            .hash(password)
            .await
            .map_err(|e| e.to_string())
    })??;
    let shown = email.clone();
    let id = block_on(db.write(move |conn| {
        if store::users::by_email(conn, &email)?.is_some() {
            return Ok(None);
        }
        let mut user = store::users::User::new(email.clone(), display_name, hash);
        user.email_verified = true;
        store::users::insert(conn, &user)?;
        if admin {
            store::users::promote_admin(conn, &email)?;
        }
        Ok(Some(user.id))
    }))?
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("an account with email {shown} exists already"))?;
    let role = if admin { "administrator" } else { "user" };
    Ok(format!("created {role} {shown} ({id})"))
}

fn clients(command: ClientsCommand) -> Result<String, String> {
    let db = open_db()?;
    match command {
        ClientsCommand::Create { name, scopes } => {
            let scopes = check_client(&name, &scopes).map_err(|e| e.to_string())?;
            let (client, secret) = new_client(&name, scopes, None);
            let out = serde_json::json!({
                "client_id": client.id,
                "client_secret": secret,
                "scopes": client.scope_list(),
            });
            block_on(db.write(move |conn| store::clients::insert(conn, &client)))?
                .map_err(|e| e.to_string())?;
            Ok(out.to_string())
        }
        ClientsCommand::List => {
            let clients =
                block_on(db.run(store::clients::list_active))?.map_err(|e| e.to_string())?;
            Ok(clients
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "client_id": c.id,
                        "name": c.name,
                        "scopes": c.scope_list(),
                        "created_at": store::rfc3339(c.created_at),
                    })
                    .to_string()
                })
                .collect::<Vec<_>>()
                .join("\n"))
        }
        ClientsCommand::Revoke { id } => {
            let client = id.clone();
            let revoked = block_on(db.write(move |conn| store::clients::revoke(conn, &client)))?
                .map_err(|e| e.to_string())?;
            if revoked {
                Ok(format!("client {id} revoked"))
            } else {
                Err(format!("no active client {id}"))
            }
        }
    }
}

fn rotate_key(file: &Path, kind: KeyKind) -> Result<String, String> {
    let old = keys::KeyRing::load(&file.to_string_lossy(), None)?;
    let pem = keys::generate_pem(match kind {
        KeyKind::Rsa => keys::KeyKind::Rsa,
        KeyKind::Ed25519 => keys::KeyKind::Ed25519,
    })?;
    let previous = PathBuf::from(format!("{}.previous", file.display()));
    let fresh = PathBuf::from(format!("{}.new", file.display()));
    write_private(&fresh, &pem)?;
    // The new key must load as the server will load it before the old one moves.
    let new = keys::KeyRing::load(&fresh.to_string_lossy(), None)?;
    std::fs::rename(file, &previous).map_err(|e| format!("{}: {e}", file.display()))?;
    std::fs::rename(&fresh, file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(format!(
        "signing key {} replaced by {}; the old key is in {}.\n\
         Restart auth with AUTH_PUBLISHED_KEY_FILES={} so tokens it signed keep verifying; \
         drop that setting (and the file) after 15 minutes.",
        old.current_kid(),
        new.current_kid(),
        previous.display(),
        previous.display()
    ))
}

fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    out.write_all(contents.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}
