//! Typed configuration from environment variables (envy), one prefix per service.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing required environment variable {0}")]
    Missing(String),
    #[error("invalid environment variable {name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// Loads `T` from the variables starting with `prefix` (e.g. `AUTH_`). Field `port`
/// reads `AUTH_PORT`. Errors name the full variable.
pub fn from_env<T: DeserializeOwned>(prefix: &str) -> Result<T, ConfigError> {
    from_iter(prefix, std::env::vars())
}

/// Same as [`from_env`] over an explicit set of variables (used by tests and tools).
pub fn from_iter<T, I>(prefix: &str, vars: I) -> Result<T, ConfigError>
where
    T: DeserializeOwned,
    I: IntoIterator<Item = (String, String)>,
{
    // Empty values count as unset, so `AUTH_PORT=` falls back to the default.
    let vars = vars.into_iter().filter(|(_, v)| !v.is_empty());
    envy::prefixed(prefix)
        .from_iter(vars)
        .map_err(|err| match err {
            envy::Error::MissingValue(field) => {
                ConfigError::Missing(format!("{prefix}{}", field.to_uppercase()))
            }
            envy::Error::Custom(msg) => custom_error(prefix, &msg),
        })
}

/// envy reports bad values as "... while parsing value 'x' provided by FIELD";
/// turn that into the full variable name.
fn custom_error(prefix: &str, msg: &str) -> ConfigError {
    match msg.rsplit_once(" provided by ") {
        Some((reason, field)) => ConfigError::Invalid {
            name: format!("{prefix}{}", field.to_uppercase()),
            // Never echo the value itself: it may be a secret.
            reason: reason
                .split(" while parsing value")
                .next()
                .unwrap_or(reason)
                .to_owned(),
        },
        None => ConfigError::Invalid {
            name: format!("{prefix}*"),
            reason: msg.to_owned(),
        },
    }
}

/// A service's settings: sections read from the variables under its prefix, then
/// checked as a whole. [`load`] is the one way every service reads them.
pub trait ServiceSettings: Sized {
    /// `AUTH_`, `INGEST_`, `CONTENT_`.
    const PREFIX: &'static str;
    /// The port used when `<PREFIX>PORT` is not set.
    const DEFAULT_PORT: u16;

    /// Reads each section from `vars` (`vars.server()`, `vars.section()`).
    fn read(vars: &Vars) -> Result<Self, ConfigError>;

    /// What the types alone cannot say (one value against another, a name's form);
    /// start-up stops with the variable named.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    fn server(&self) -> &ServerSettings;
}

/// The variables one service reads its sections from.
pub struct Vars {
    prefix: &'static str,
    vars: Vec<(String, String)>,
}

impl Vars {
    /// One section: its field `port` reads `<PREFIX>PORT`.
    pub fn section<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        from_iter(self.prefix, self.vars.iter().cloned())
    }

    /// The settings every service has, with the shared names as fallbacks.
    pub fn server(&self) -> Result<ServerSettings, ConfigError> {
        ServerSettings::from_iter(self.prefix, self.vars.clone())
    }
}

/// Reads and checks a service's settings from `vars` (`std::env::vars()` in a
/// binary, an explicit list in tests and tools).
pub fn load<S: ServiceSettings>(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<S, ConfigError> {
    let settings = S::read(&Vars {
        prefix: S::PREFIX,
        vars: vars.into_iter().collect(),
    })?;
    settings.validate()?;
    Ok(settings)
}

impl ConfigError {
    /// A value that is well formed but not acceptable, for `validate()`.
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// Addresses (`10.0.0.7`) and networks (`172.16.0.0/12`), comma separated, read from one
/// variable (in containers an address is often known only by its network).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<ipnet::IpNet>);

impl Networks {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::str::FromStr for Networks {
    type Err = String;

    fn from_str(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("{s:?} is not an IP address or network"))
            })
            .collect::<Result<_, _>>()
            .map(Networks)
    }
}

impl Networks {
    /// Reads the list held by variable `name` (named in the error).
    pub fn from_var(name: &str, list: &str) -> Result<Self, ConfigError> {
        list.parse().map_err(|reason| ConfigError::Invalid {
            name: name.to_owned(),
            reason,
        })
    }
}

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Settings every service has, read with the service's prefix (`AUTH_PORT`, …),
/// falling back to the unprefixed shared name where one exists (`DATABASE_URL`,
/// `LOG_LEVEL`) so a container can use the short names.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    #[serde(default = "default_host")]
    pub host: String,
    pub port: Option<u16>,
    pub database_url: Option<Secret>,
    #[serde(default = "default_true")]
    pub run_migrations: bool,
    #[serde(default = "default_pool_size")]
    pub db_pool_size: u32,
    pub log_level: Option<String>,
    /// HTTP worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_secs: u64,
    /// Largest JSON body accepted, in bytes.
    #[serde(default = "default_json_limit")]
    pub json_limit_bytes: usize,
    /// On SQLite, refuse to start while another process of the same kind uses the
    /// database file. The container images set it: SQLite mode runs one replica per
    /// service, PostgreSQL mode scales.
    #[serde(default)]
    pub sqlite_single_instance: bool,
    /// On SQLite, how many bytes of the file are read through a memory map (0: none).
    #[serde(default = "default_sqlite_mmap_bytes")]
    pub sqlite_mmap_bytes: u64,
    /// An OpenTelemetry collector's OTLP/HTTP base URL (`http://collector:4318`):
    /// each request's span is sent there. Unset (the default): no export.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct SharedEnv {
    database_url: Option<Secret>,
    log_level: Option<String>,
    /// OpenTelemetry's standard name, for all services at once.
    otel_exporter_otlp_endpoint: Option<String>,
}

impl ServerSettings {
    /// Reads the prefixed settings and fills gaps from the shared names.
    pub fn from_env(prefix: &str) -> Result<Self, ConfigError> {
        Self::from_iter(prefix, std::env::vars().collect::<Vec<_>>())
    }

    pub fn from_iter(prefix: &str, vars: Vec<(String, String)>) -> Result<Self, ConfigError> {
        let mut settings: Self = from_iter(prefix, vars.clone())?;
        let shared: SharedEnv = from_iter("", vars)?;
        settings.database_url = settings.database_url.or(shared.database_url);
        settings.log_level = settings.log_level.or(shared.log_level);
        settings.otlp_endpoint = settings
            .otlp_endpoint
            .or(shared.otel_exporter_otlp_endpoint)
            .filter(|e| !e.trim().is_empty());
        Ok(settings)
    }

    /// Where spans go (`<endpoint>/v1/traces`), when export is on.
    pub fn otlp_traces_endpoint(&self) -> Option<String> {
        self.otlp_endpoint
            .as_deref()
            .map(|e| format!("{}/v1/traces", e.trim().trim_end_matches('/')))
    }

    /// The database URL, or the embedded SQLite default for this service.
    pub fn database_url_or(&self, default: &str) -> String {
        self.database_url
            .as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_else(|| default.to_owned())
    }
}

fn default_host() -> String {
    "127.0.0.1".into()
}

fn default_true() -> bool {
    true
}

/// How much of a SQLite file is read through a memory map by default: SQLite's own
/// ceiling on Linux, 2 GiB - 64 KiB (why, in `peermesh_db`).
pub const DEFAULT_SQLITE_MMAP_BYTES: u64 = 0x7fff_0000;

fn default_sqlite_mmap_bytes() -> u64 {
    DEFAULT_SQLITE_MMAP_BYTES
}

fn default_pool_size() -> u32 {
    8
}

fn default_shutdown_timeout() -> u64 {
    30
}

fn default_json_limit() -> usize {
    1024 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn prefixed_values_win_over_shared_ones() {
        let s = ServerSettings::from_iter(
            "AUTH_",
            vars(&[
                ("AUTH_PORT", "9000"),
                ("DATABASE_URL", "postgres://shared"),
                ("AUTH_DATABASE_URL", "sqlite://own.db"),
                ("LOG_LEVEL", "debug"),
            ]),
        )
        .unwrap();
        assert_eq!(s.port, Some(9000));
        assert_eq!(s.database_url_or("x"), "sqlite://own.db");
        assert_eq!(s.log_level.as_deref(), Some("debug"));
        assert!(s.run_migrations);
    }

    #[test]
    fn invalid_value_names_the_variable() {
        let err = ServerSettings::from_iter("AUTH_", vars(&[("AUTH_PORT", "eighty")])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("AUTH_PORT"), "{msg}");
    }

    #[test]
    fn missing_value_names_the_variable() {
        #[derive(Debug, Deserialize)]
        struct Needs {
            #[allow(dead_code)]
            signing_key_file: String,
        }
        let err = from_iter::<Needs, _>("AUTH_", vars(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required environment variable AUTH_SIGNING_KEY_FILE"
        );
    }

    #[test]
    fn load_reads_every_section_under_the_prefix_then_validates() {
        #[derive(Debug, Deserialize)]
        struct Limits {
            #[serde(default)]
            min: u32,
            max: u32,
        }
        #[derive(Debug)]
        struct Service {
            server: ServerSettings,
            limits: Limits,
        }
        impl ServiceSettings for Service {
            const PREFIX: &'static str = "SVC_";
            const DEFAULT_PORT: u16 = 1;
            fn read(vars: &Vars) -> Result<Self, ConfigError> {
                Ok(Self {
                    server: vars.server()?,
                    limits: vars.section()?,
                })
            }
            fn validate(&self) -> Result<(), ConfigError> {
                if self.limits.min > self.limits.max {
                    return Err(ConfigError::invalid("SVC_MIN", "must not exceed SVC_MAX"));
                }
                Ok(())
            }
            fn server(&self) -> &ServerSettings {
                &self.server
            }
        }

        let s: Service = load(vars(&[("SVC_PORT", "7"), ("SVC_MAX", "3"), ("MAX", "9")])).unwrap();
        assert_eq!(
            (s.server().port, s.limits.min, s.limits.max),
            (Some(7), 0, 3)
        );
        let err = load::<Service>(vars(&[("SVC_MIN", "4"), ("SVC_MAX", "3")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid environment variable SVC_MIN: must not exceed SVC_MAX"
        );
        let err = load::<Service>(vars(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing required environment variable SVC_MAX"
        );
    }

    #[test]
    fn networks_are_addresses_or_networks() {
        let nets: Networks = " 10.9.9.9, 172.16.0.0/12,::1 ,".parse().unwrap();
        let has = |ip: &str| nets.contains(ip.parse().unwrap());
        assert!(has("10.9.9.9"));
        assert!(!has("10.9.9.8"));
        assert!(has("172.18.0.5"));
        assert!(!has("172.32.0.1"));
        assert!(has("::1"));
        assert!("gateway".parse::<Networks>().is_err());
        assert!("10.0.0.0/33".parse::<Networks>().is_err());
        assert!("".parse::<Networks>().unwrap().is_empty());

        let err = Networks::from_var("X_NETS", "10.0.0.1,nope").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid environment variable X_NETS: \"nope\" is not an IP address or network"
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }
}
