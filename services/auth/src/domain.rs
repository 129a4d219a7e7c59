//! Input parsed into the shapes the service works with (parse, don't validate).

use peermesh_common::FieldError;

/// A normalised email address: trimmed, lower-case, one `@`, a dotted domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim().to_lowercase();
        let bad = |why: &str| Err(FieldError::new("email", why));
        if email.is_empty() || email.len() > 254 {
            return bad("must be an email address of at most 254 characters");
        }
        let Some((local, domain)) = email.split_once('@') else {
            return bad("must be an email address");
        };
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if local.is_empty()
            || local.len() > 64
            || !domain_ok
            || email.chars().any(char::is_whitespace)
        {
            return bad("must be an email address");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A display name: trimmed, 1..=100 characters, no control characters.
pub fn parse_display_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > 100 || name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "display_name",
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(name.to_owned())
}

pub const ROLES: &[&str] = &["user", "admin"];

/// Roles as stored: space separated, known names only, sorted, no duplicates.
pub fn parse_roles(roles: &[String]) -> Result<String, FieldError> {
    let mut out: Vec<&str> = Vec::new();
    for role in roles {
        let Some(known) = ROLES.iter().find(|r| **r == role.as_str()) else {
            return Err(FieldError::new(
                "roles",
                format!("unknown role {role:?}; use user or admin"),
            ));
        };
        if !out.contains(known) {
            out.push(known);
        }
    }
    if !out.contains(&"user") {
        out.push("user");
    }
    out.sort_unstable();
    Ok(out.join(" "))
}

pub fn roles_vec(stored: &str) -> Vec<String> {
    stored.split_whitespace().map(str::to_owned).collect()
}

/// A scope name like `content:write`.
pub fn parse_scope(scope: &str) -> Result<&str, FieldError> {
    let ok = scope.len() <= 64
        && scope.split_once(':').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_lowercase())
                && b.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
        });
    if ok {
        Ok(scope)
    } else {
        Err(FieldError::new(
            "scopes",
            format!("{scope:?} is not a scope like content:write"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a da@example.com",
            "ada@exa_mple.com",
            "ada@.example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_are_known_sorted_and_always_include_user() {
        assert_eq!(parse_roles(&["admin".into()]).unwrap(), "admin user");
        assert_eq!(parse_roles(&[]).unwrap(), "user");
        assert!(parse_roles(&["root".into()]).is_err());
    }

    #[test]
    fn scopes_have_a_fixed_shape() {
        assert!(parse_scope("content:write").is_ok());
        assert!(parse_scope("content:act_as").is_ok());
        for bad in [
            "content",
            ":x",
            "Content:write",
            "content:write extra",
            "content:",
        ] {
            assert!(parse_scope(bad).is_err(), "{bad}");
        }
    }
}
